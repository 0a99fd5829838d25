// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

// Due rows are written by the app; skip or cancel one from its document's Automations panel.
frappe.ui.form.on("Automation Sequence Step", {
	refresh(frm) {
		if (frm.doc.reference_doctype && frm.doc.reference_name) {
			frm.add_custom_button(__("Open {0}", [frm.doc.reference_name]), () =>
				frappe.set_route("Form", frm.doc.reference_doctype, frm.doc.reference_name)
			);
		}
	},
});
