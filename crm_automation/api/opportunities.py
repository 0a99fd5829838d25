"""Automation Opportunities in the desk: a proposal turned into a (disabled) Workflow Rule, and a rule
replayed over the site's own history (mining/opportunities.py does the work)."""

import frappe
from frappe import _

from crm_automation.engine.errors import RuleError
from crm_automation.engine.i18n import translating
from crm_automation.engine.mining_replay import replay
from crm_automation.mining import history_export
from crm_automation.mining.opportunities import (  # find_opportunities: the report's entry, here too
	find_opportunities,
	parse_days,
	parse_proposed_rule,
	proposal_rule_values,
)
from crm_automation.offline.history_files import rule_problems
from crm_automation.runtime.workflow_rules import get_fields, rule_as_dict
from crm_automation.trust.record_access import permitted_document
from crm_automation.trust.roles import check_rule_manager


@frappe.whitelist(methods=["POST"])
def create_rule_from_proposal(rule, days=90):
	"""Create the proposed Workflow Rule **disabled** and replay it over the same history."""
	check_rule_manager()
	rule = parse_proposed_rule(rule)
	doctype = rule.get("document_type")
	if not frappe.has_permission(doctype, "read"):
		frappe.throw(_("You may not read {0}").format(frappe.bold(doctype)), frappe.PermissionError)
	problems = rule_problems(rule, get_fields(doctype))
	if problems:
		frappe.throw(_("The proposed rule does not fit this site: {0}").format("; ".join(problems)))
	doc = frappe.get_doc(proposal_rule_values(rule)).insert()
	return {"rule": doc.name, "rule_doctype": doctype, "replay": replay_rule_on_history(doc.name, days)}


@frappe.whitelist()
def replay_rule_on_history(rule_name, days=90):
	"""What a Workflow Rule would have done over the last ``days`` days of the caller's readable
	history, against what people did. Writes nothing."""
	check_rule_manager()
	# One answer whether the rule is missing or the caller may not read it.
	doc = permitted_document("Workflow Rule", rule_name)
	rule = rule_as_dict(doc)
	readable, _refused = history_export.readable_doctypes([rule["document_type"]])
	if not readable:
		frappe.throw(
			_("You may not read {0}").format(frappe.bold(rule["document_type"])), frappe.PermissionError
		)
	since, until = history_export.period(parse_days(days))
	try:
		with translating(_):  # why a rule cannot be replayed, in the reader's language
			result = replay(
				rule, history_export.iter_events(readable, since, until), get_fields(readable[0]), until=until
			)
	except RuleError as error:
		frappe.throw(_("This rule cannot be replayed over the history: {0}").format(error))
	result["enabled"] = bool(doc.enabled)
	return result


# Whitelisted as crm_automation.opportunities.replay_rule until this release (hooks.py maps the old path).
replay_rule = replay_rule_on_history
