// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.ui.form.on("Automation Log", {
	refresh(frm) {
		frm.trigger("render_run_view");
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

	// The reason, the actions' results and the trace are for System Managers as stored (permission
	// level 1). Anyone else gets them from the server as they may read them (values of fields they
	// may not read hidden), shown here as text.
	render_run_view(frm) {
		const wrapper = frm.get_field("run_view").$wrapper;
		if (frappe.perm.has_perm(frm.doctype, 1, "read")) {
			wrapper.empty();
			return;
		}
		const esc = (value) => frappe.utils.escape_html(value == null ? "" : String(value));
		let trace = [];
		try {
			trace = frm.doc.trace ? JSON.parse(frm.doc.trace) : [];
		} catch (e) {
			trace = [];
		}
		const actions = (frm.doc.actions || [])
			.map(
				(a) =>
					`<li>${esc(__(a.action_type))} (${esc(__(a.status))}): ${esc(a.result)}${a.response ? `<pre class="small">${esc(a.response)}</pre>` : ""}</li>`
			)
			.join("");
		const why = Array.isArray(trace) ? crm_automation.trace_items(trace, __("was")) : "";
		wrapper.html(`<div class="crm-automation-run">
			${frm.doc.reason ? `<p>${esc(frm.doc.reason)}</p>` : ""}
			${actions ? `<div>${__("Did")}:<ul>${actions}</ul></div>` : ""}
			${why ? `<div>${__("Because")}:<ul>${why}</ul></div>` : ""}
			${frm.doc.error ? `<pre class="small">${esc(frm.doc.error)}</pre>` : ""}
		</div>`);
	},
});
