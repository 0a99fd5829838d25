"""doc_events → engine. Every handler returns at once for a doctype without enabled rules."""

import frappe

from crm_automation.rules import EXCLUDED_DOCTYPES, get_rules
from crm_automation.setup.custom_fields import SCORED_DOCTYPES


def on_validate(doc, method=None):
	if doc.doctype in SCORED_DOCTYPES:
		from crm_automation.scoring import get_score_rule, score_on_save

		if get_score_rule(doc.doctype) and not skip_automation():
			score_on_save(doc)
	_run(doc, "validate")


def on_after_insert(doc, method=None):
	_run(doc, "after_insert")


def on_update(doc, method=None):
	if doc.flags.crm_score_band_change:
		from crm_automation.scoring import after_save

		after_save(doc)
	_run(doc, "on_update")


def on_change(doc, method=None):
	_run(doc, "on_change")
	_sync_escalations(doc)


def on_submit(doc, method=None):
	_run(doc, "on_submit")


def on_cancel(doc, method=None):
	_run(doc, "on_cancel")


def on_trash(doc, method=None):
	_run(doc, "on_trash")


def _run(doc, event):
	if doc.doctype in EXCLUDED_DOCTYPES:
		return
	rules = get_rules(doc.doctype, event)
	if not rules or skip_automation():
		return
	from crm_automation.runner import run_rules

	run_rules(doc, event, rules)


def _sync_escalations(doc):
	"""on_change runs after every save and every db_set: the one place to keep clocks in step."""
	if doc.doctype in EXCLUDED_DOCTYPES or doc.doctype == "Escalation State":
		return
	from crm_automation.escalation import get_policies, sync_document

	if get_policies(doc.doctype) and not skip_automation():
		sync_document(doc)


def skip_automation():
	"""The one guard: no automation while installing, patching, migrating, importing data or running
	the setup wizard, nor when switched off in CRM Automation Settings."""
	flags = frappe.flags
	if flags.in_install or flags.in_patch or flags.in_migrate or flags.in_import or flags.in_setup_wizard:
		return True
	return not frappe.db.get_single_value("CRM Automation Settings", "enabled", cache=True)
