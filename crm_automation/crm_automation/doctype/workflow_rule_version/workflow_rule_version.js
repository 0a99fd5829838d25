// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

// Versions are read here and restored from the rule's History; nothing to edit.
frappe.ui.form.on("Workflow Rule Version", {
	refresh(frm) {
		frm.disable_save();
		if (frm.doc.rule) {
			frm.add_custom_button(__("Open the Rule"), () => frappe.set_route("Form", "Workflow Rule", frm.doc.rule));
		}
	},
});
