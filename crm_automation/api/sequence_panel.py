"""What people see of follow-up sequences: the pending steps of a document (due times in the
reader's time zone) with skip and cancel, the timeline of a rule in words, and the same timeline in
a dry run."""

import json
import zoneinfo

import frappe
from frappe import _
from frappe.utils import get_datetime, get_system_timezone

from crm_automation.engine.i18n import translating
from crm_automation.engine.sequence_story import timeline, timeline_text
from crm_automation.runtime.workflow_rules import compile_workflow_rule_doc, get_fields
from crm_automation.sequences import steps as sequences
from crm_automation.sequences.timeline import immediate_actions
from crm_automation.trust.record_access import permitted_document

PANEL_STATUSES = ("Pending", "Running")


@frappe.whitelist()
def get_pending_steps(doctype: str, name: str):
	"""The document's pending follow-up steps, for anyone who may read the document; ``can_control``
	says whether this user may skip or cancel them (rule managers, and users who may write it). A
	missing and a forbidden document get the same answer."""
	permitted_document(doctype, name)
	if doctype not in (sequences.sequence_doctypes() or ()):
		return []  # every form asks; most doctypes never had a sequence
	rows = frappe.get_all(
		sequences.STEP_DOCTYPE,
		filters={"reference_doctype": doctype, "reference_name": name, "status": ("in", PANEL_STATUSES)},
		fields=[
			"name",
			"workflow_rule",
			"step_index",
			"step_name",
			"status",
			"due_at",
			"sequence",
			"condition_met",
		],
		order_by="due_at asc",
	)
	if not rows:
		return []
	document = frappe._dict(reference_doctype=doctype, reference_name=name)
	can_control = sequences.may_control(document, frappe.session.user)
	user_zone = user_time_zone()
	for row in rows:
		row.due_at_user = in_zone(row.due_at, user_zone)
		row.time_zone = user_zone
		row.can_control = can_control
	return rows


@frappe.whitelist(methods=["POST"])
def skip_step(name: str):
	return sequences.skip_or_cancel(name, "skip")


@frappe.whitelist(methods=["POST"])
def cancel_step(name: str):
	return sequences.skip_or_cancel(name, "cancel")


def user_time_zone(user=None):
	user = user or frappe.session.user
	return frappe.db.get_value("User", user, "time_zone") or get_system_timezone()


def in_zone(moment, zone):
	"""A naive moment of the site's time zone as ``YYYY-MM-DD HH:MM`` in ``zone``."""
	if not moment:
		return None
	system = zoneinfo.ZoneInfo(get_system_timezone())
	aware = get_datetime(moment).replace(tzinfo=system)
	return aware.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


@frappe.whitelist()
def describe_timeline(doc: str | dict):
	"""The timeline of a Workflow Rule as its form holds it now (unsaved edits included)."""
	if not frappe.has_permission("Workflow Rule", "read"):
		raise frappe.PermissionError
	values = json.loads(doc) if isinstance(doc, str) else doc
	rule = frappe.get_doc({**values, "doctype": "Workflow Rule"})
	if not rule.document_type or not rule.get("steps"):
		return ""
	try:
		compiled = compile_workflow_rule_doc(rule)
	except Exception:
		return ""  # the form shows the problems when saved
	with translating(_):  # the timeline in the reader's language
		return timeline_text(
			timeline(immediate_actions(rule), compiled.sequence, get_fields(rule.document_type))
		)
