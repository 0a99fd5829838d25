// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.query_reports["Overdue Escalations"] = {
	filters: [
		{ fieldname: "policy", label: __("Escalation Policy"), fieldtype: "Link", options: "Escalation Policy" },
		{ fieldname: "level", label: __("At Least Level"), fieldtype: "Int" },
	],
};
