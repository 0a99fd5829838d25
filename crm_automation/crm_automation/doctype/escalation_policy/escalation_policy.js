// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.ui.form.on("Escalation Policy", {
	setup(frm) {
		frm.set_query("document_type", () => ({ filters: { istable: 0, issingle: 0 } }));
	},
	refresh(frm) {
		frm.trigger("setup_field_pickers");
		frm.trigger("render_condition_builder");
		if (!frm.is_new()) {
			frm.add_custom_button(__("Test"), () => crm_automation.test_rule(frm));
			frm.add_custom_button(__("Overdue Escalations"), () =>
				frappe.set_route("query-report", "Overdue Escalations", { policy: frm.doc.name })
			);
		}
	},
	document_type(frm) {
		frm.trigger("setup_field_pickers");
		frm.trigger("render_condition_builder");
	},
	async setup_field_pickers(frm) {
		if (!frm.doc.document_type) return;
		const fields = await crm_automation.get_fields(frm.doc.document_type);
		const names = (filter) => [""].concat(fields.filter(filter).map((f) => f.fieldname));
		frm.set_df_property("start_field", "options", names((f) => ["Date", "Datetime"].includes(f.fieldtype)));
		frm.set_df_property("pause_field", "options", names((f) => ["Select", "Link", "Data"].includes(f.fieldtype)));
		frm.fields_dict.levels.grid.update_docfield_property("target_field", "options", names(() => true));
		crm_automation.setup_action_pickers(frm, "levels");
	},
	render_condition_builder(frm) {
		new crm_automation.ConditionBuilder({
			wrapper: frm.fields_dict.conditions_html.$wrapper,
			doctype: frm.doc.document_type,
			value: frm.doc.conditions,
			on_change(tree) {
				frm.set_value("conditions", tree ? JSON.stringify(tree, null, 1) : "");
			},
		});
	},
});
