// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.query_reports["Lead Score Criterion Lift"] = {
	filters: [
		{
			fieldname: "rule",
			label: __("Lead Score Rule"),
			fieldtype: "Link",
			options: "Lead Score Rule",
			reqd: 1,
		},
	],
};
