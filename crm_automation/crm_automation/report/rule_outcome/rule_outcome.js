// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

// Without a rule: every rule with a hold-out or a split and its current verdict on the default
// outcome of its document type. With a rule: its groups, side by side.
frappe.query_reports["Rule Outcome"] = {
	filters: [
		{
			fieldname: "rule",
			label: __("Rule"),
			fieldtype: "Link",
			options: "Workflow Rule",
			get_query: () => ({ query: "crm_automation.api.rule_outcome.rules_with_groups" }),
		},
		{
			fieldname: "outcome",
			label: __("Outcome"),
			fieldtype: "Select",
			options: "\nConverted\nReached Status\nWon\nOrder Value\nFirst Response Time\nResolution Time\nField",
		},
		{ fieldname: "field", label: __("Field"), fieldtype: "Data", depends_on: "eval:doc.outcome=='Field'" },
		{ fieldname: "value", label: __("Value"), fieldtype: "Data", depends_on: "eval:['Field', 'Reached Status'].includes(doc.outcome)" },
		{ fieldname: "lower_is_better", label: __("Lower Is Better"), fieldtype: "Check", depends_on: "eval:doc.outcome=='Field'" },
	],
};
