"""The Rule Outcome report's rule picker and the workspace's verdicts (crm_automation/outcomes)."""

import frappe

from crm_automation.outcomes import rule_outcome
from crm_automation.trust.roles import check_rule_manager


@frappe.whitelist()
@frappe.validate_and_sanitize_search_inputs
def rules_with_groups(doctype, txt, searchfield, start, page_len, filters):
	"""Link-field query: Workflow Rules with a hold-out or a percentage split."""
	txt = (txt or "").lower()
	rules = [r for r in rule_outcome.rules_with_groups() if txt in r.name.lower()]
	return [(r.name, r.document_type) for r in rules[int(start) : int(start) + int(page_len)]]


@frappe.whitelist()
def current_verdicts():
	"""Every rule with a hold-out or split and its verdict on its default outcome."""
	check_rule_manager()
	return rule_outcome.current_verdicts()
