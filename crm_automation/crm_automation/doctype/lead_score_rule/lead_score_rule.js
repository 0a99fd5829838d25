// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.ui.form.on("Lead Score Rule", {
	refresh(frm) {
		frm.trigger("setup_field_pickers");
		if (!frm.is_new()) {
			frm.add_custom_button(__("Test"), () => crm_automation.test_rule(frm));
			frm.add_custom_button(__("Recompute Now"), () =>
				frm.call("recompute_now").then((r) => frappe.show_alert(r.message))
			);
			frm.add_custom_button(__("Criterion Lift"), () =>
				frappe.set_route("query-report", "Lead Score Criterion Lift", { rule: frm.doc.name })
			);
		}
		frappe.realtime.off("progress");
		frappe.realtime.on("progress", (data) => {
			if (data.docname === frm.doc.name) {
				frm.dashboard.show_progress(__("Recomputing scores"), data.percent);
				if (data.percent >= 100) frm.reload_doc();
			}
		});
	},
	document_type(frm) {
		frm.trigger("setup_field_pickers");
	},
	async setup_field_pickers(frm) {
		if (!frm.doc.document_type) return;
		const fields = await crm_automation.get_fields(frm.doc.document_type);
		frm.fields_dict.bands.grid.update_docfield_property(
			"set_field",
			"options",
			[""].concat(fields.filter((f) => !f.fieldname.startsWith("crm_score")).map((f) => f.fieldname))
		);
	},
});

frappe.ui.form.on("Lead Score Rule Criterion", {
	form_render(frm, cdt, cdn) {
		crm_automation.attach_row_builder(frm, "criteria", cdt, cdn);
	},
});
