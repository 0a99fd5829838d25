// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.ui.form.on("CRM Automation Settings", {
	refresh(frm) {
		frm.add_custom_button(__("Automation Log"), () => frappe.set_route("List", "Automation Log"));
		frm.add_custom_button(__("Workflow Rules"), () => frappe.set_route("List", "Workflow Rule"));
	},
});
