// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.query_reports["Automation Opportunities"] = {
	filters: [
		{
			fieldname: "doctypes",
			label: __("Document Types"),
			fieldtype: "MultiSelectList",
			default: ["Lead", "Opportunity", "Sales Order", "Issue"],
			get_data: (text) => frappe.db.get_link_options("DocType", text, { istable: 0, issingle: 0 }),
		},
		{ fieldname: "days", label: __("Period (Days)"), fieldtype: "Int", default: 90, reqd: 1 },
		{ fieldname: "min_support", label: __("Minimum Support"), fieldtype: "Int", default: 20, reqd: 1 },
		{ fieldname: "min_confidence", label: __("Minimum Confidence (%)"), fieldtype: "Percent", default: 80, reqd: 1 },
	],

	formatter(value, row, column, data, default_formatter) {
		if (column.fieldname === "create_rule" && data && data.create_rule) {
			const id = encodeURIComponent(data.proposal_id);
			return `<button class="btn btn-xs btn-primary crm-create-rule" data-proposal="${id}">${__("Create Rule")}</button>`;
		}
		return default_formatter(value, row, column, data);
	},

	onload(report) {
		$(report.page.wrapper).on("click", ".crm-create-rule", (event) => {
			const id = decodeURIComponent($(event.currentTarget).attr("data-proposal"));
			const data = (report.data || []).find((row) => row.proposal_id === id);
			if (data) crm_automation_create_rule(report, data);
		});
	},
};

function crm_automation_create_rule(report, data) {
	frappe.confirm(
		__("Create the rule {0}, disabled, and replay it over the same history?", [frappe.utils.escape_html(JSON.parse(data.rule_json).rule_name)]),
		() => {
			frappe.call({
				method: "crm_automation.api.opportunities.create_rule_from_proposal",
				args: { rule: data.rule_json, days: report.get_filter_value("days") },
				freeze: true,
				freeze_message: __("Creating the rule and replaying the history..."),
				callback: (r) => r.message && crm_automation_show_replay(r.message),
			});
		}
	);
}

function crm_automation_show_replay(result) {
	const counts = result.replay.counts;
	const examples = result.replay.examples || {};
	const doctype = result.rule_doctype || "";
	const links = (names) =>
		(names || [])
			.slice(0, 5)
			.map((name) => `<a href="/app/${frappe.router.slug(doctype)}/${encodeURIComponent(name)}">${frappe.utils.escape_html(name)}</a>`)
			.join(", ");
	const rows = [
		[__("Would have done what people did"), "same"],
		[__("Would have done something else than people did"), "different"],
		[__("Would have acted where nobody did"), "rule_only"],
		[__("People acted where the rule would not have"), "people_only"],
	]
		.map(
			([label, key]) =>
				`<tr><td>${label}</td><td class="text-right">${counts[key]}</td><td>${doctype ? links(examples[key]) : ""}</td></tr>`
		)
		.join("");
	const dialog = new frappe.ui.Dialog({
		title: __("Rule {0} created (disabled)", [frappe.utils.escape_html(result.rule)]),
		fields: [{ fieldtype: "HTML", fieldname: "replay" }],
		primary_action_label: __("Open the Rule"),
		primary_action: () => frappe.set_route("Form", "Workflow Rule", result.rule),
	});
	dialog.fields_dict.replay.$wrapper.html(
		`<p>${__("Replay over the same history: confidence {0}%. Nothing is enabled until you enable the rule.", [
			(result.replay.confidence * 100).toFixed(1),
		])}</p><table class="table table-bordered">${rows}</table>`
	);
	dialog.show();
}
