// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.ui.form.on("CRM Automation Settings", {
	refresh(frm) {
		// Only a System Manager may change it (crm_automation_settings.py): shown read-only to others.
		frm.set_df_property(
			"max_documents_per_save",
			"read_only",
			frappe.user.has_role("System Manager") ? 0 : 1
		);
		frm.add_custom_button(__("Automation Log"), () => frappe.set_route("List", "Automation Log"));
		frm.add_custom_button(__("Workflow Rules"), () => frappe.set_route("List", "Workflow Rule"));
	},
});
