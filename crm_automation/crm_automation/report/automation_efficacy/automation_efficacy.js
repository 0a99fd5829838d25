// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.query_reports["Automation Efficacy"] = {
	filters: [
		{ fieldname: "from_date", label: __("From", null, "Automation Efficacy"), fieldtype: "Date", default: frappe.datetime.add_days(frappe.datetime.get_today(), -30), reqd: 1 },
		{ fieldname: "to_date", label: __("To", null, "Automation Efficacy"), fieldtype: "Date", default: frappe.datetime.get_today(), reqd: 1 },
		{ fieldname: "rule_type", label: __("Rule Type"), fieldtype: "Select", options: "\nWorkflow Rule\nEscalation Policy" },
		{ fieldname: "rule", label: __("Rule"), fieldtype: "Data" },
		{ fieldname: "reference_doctype", label: __("Document Type"), fieldtype: "Link", options: "DocType" },
	],
};
