// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.ui.form.on("Automation Log", {
	refresh(frm) {
		if (frm.doc.reference_doctype && frm.doc.reference_name) {
			frm.add_custom_button(__("Open {0}", [__(frm.doc.reference_doctype)]), () =>
				frappe.set_route("Form", frm.doc.reference_doctype, frm.doc.reference_name)
			);
		}
		if (frm.doc.rule_type && frm.doc.rule) {
			frm.add_custom_button(__("Open Rule"), () =>
				frappe.set_route("Form", frm.doc.rule_type, frm.doc.rule)
			);
		}
		const failed = (frm.doc.actions || []).some((row) => row.status === "Failed");
		if (failed && frm.doc.rule_type === "Workflow Rule") {
			frm.add_custom_button(__("Retry Failed Actions"), () =>
				frappe
					.xcall("crm_automation.api.retry_failed_actions", { log: frm.doc.name })
					.then(() => frm.reload_doc())
			);
		}
	},
});
