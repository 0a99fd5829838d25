// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.ui.form.on("Workflow Rule", {
	setup(frm) {
		frm.set_query("document_type", () => ({ filters: { istable: 0, issingle: 0 } }));
	},

	refresh(frm) {
		// Only a System Manager may choose whom a rule runs as; for anyone else it is who saves it.
		frm.set_df_property("run_as", "read_only", !frappe.user.has_role("System Manager"));
		// The stored JSON and the Python condition are for System Managers; everyone else reads the
		// builder and the sentence (which says when an advanced condition applies).
		frm.toggle_display("section_advanced", frappe.user.has_role("System Manager"));
		if (frm.is_new() && !frm.doc.document_type) {
			frm.scroll_to_field("document_type");
		}
		frm.trigger("toggle_action_columns");
		frm.trigger("filter_action_types");
		frm.trigger("setup_field_pickers");
		frm.trigger("render_condition_builder");
		frm.trigger("render_summary");
		crm_automation.setup_inbound_webhook(frm);
		if (!frm.is_new()) {
			frm.add_custom_button(__("Test"), () => crm_automation.test_rule(frm));
			frm.add_custom_button(__("Replay Last 30 Days"), () =>
				frappe.xcall("crm_automation.api.automations.replay_rule_on_documents", { rule: frm.doc.name, days: 30 }).then((r) =>
					frappe.msgprint({
						title: __("Replay: {0} documents", [r.documents]),
						message: `<pre>${frappe.utils.escape_html(JSON.stringify({ outcomes: r.outcomes, branches: r.branches, actions: r.actions }, null, 2))}</pre>`,
					})
				)
			);
			frm.add_custom_button(__("Automation Log"), () =>
				frappe.set_route("List", "Automation Log", { rule_type: "Workflow Rule", rule: frm.doc.name })
			);
			// Versions in words, revert, replay two versions: public/js/rule_history.js, loaded when asked.
			frm.add_custom_button(__("History"), () =>
				frappe.require("/assets/crm_automation/js/rule_history.js", () => crm_automation.show_rule_history(frm))
			);
		}
	},

	document_type(frm) {
		frm.trigger("setup_field_pickers");
		frm.trigger("render_condition_builder");
		frm.trigger("render_summary");
	},

	validate(frm) {
		frm.trigger("render_summary");
	},

	trigger(frm) {
		frm.trigger("filter_action_types");
		frm.trigger("render_summary");
		crm_automation.toggle_inbound_fields(frm);
	},

	webhook_create_missing: (frm) => crm_automation.toggle_inbound_fields(frm),

	// Validate runs before the save: it can only set values or reject; Reject needs Validate.
	// Action types already in rows stay listed, so a changed trigger never blanks a row (the save
	// says what no longer fits).
	filter_action_types(frm) {
		const grid = frm.fields_dict.actions.grid;
		const all = (frappe.meta.get_docfield("Workflow Rule Action", "action_type").options || "").split("\n");
		const fits = (type) => (frm.doc.trigger === "Validate" ? ["Set Value", "Reject"].includes(type) : type !== "Reject");
		const used = new Set((frm.doc.actions || []).map((a) => a.action_type));
		grid.update_docfield_property("action_type", "options", all.filter((type) => fits(type) || used.has(type)).join("\n"));
	},

	stop_conditions: (frm) => frm.trigger("schedule_summary"),
	stop_when_unmatched: (frm) => frm.trigger("schedule_summary"),
	// A Schedule rule's sentence starts with its schedule ("Every Monday at 09:00 ...").
	schedule_frequency: (frm) => frm.trigger("schedule_summary"),
	schedule_interval: (frm) => frm.trigger("schedule_summary"),
	schedule_weekday: (frm) => frm.trigger("schedule_summary"),
	schedule_day_of_month: (frm) => frm.trigger("schedule_summary"),
	schedule_time: (frm) => frm.trigger("schedule_summary"),
	schedule_calendar: (frm) => frm.trigger("schedule_summary"),
	condition_expression: (frm) => frm.trigger("schedule_summary"),

	conditions(frm) {
		if (frm.condition_builder && !frm.__setting_conditions) {
			frm.condition_builder.set_value(frm.doc.conditions);
		}
		frm.trigger("render_summary");
	},

	async setup_field_pickers(frm) {
		if (!frm.doc.document_type) return;
		const fields = await crm_automation.get_fields(frm.doc.document_type);
		const option = (f) => ({ value: f.fieldname, label: `${__(f.label)} (${f.fieldname})` });
		const options = (filter) => [""].concat(fields.filter(filter).map(option));
		frm.set_df_property("trigger_field", "options", options(() => true));
		frm.set_df_property("time_field", "options", options((f) => ["Date", "Datetime"].includes(f.fieldtype)));
		frm.set_df_property("webhook_match_field", "options", options((f) => !["Table", "Table MultiSelect"].includes(f.fieldtype)));
		const grid = frm.fields_dict.actions.grid;
		grid.update_docfield_property(
			"to_field",
			"options",
			options((f) => (f.fieldtype === "Link" && f.options === "User") || ["Data", "Small Text", "Read Only"].includes(f.fieldtype))
		);
		grid.update_docfield_property(
			"target_field",
			"options",
			options((f) => !["name", "owner", "creation", "modified", "modified_by", "docstatus", "idx"].includes(f.fieldname))
		);
		frm.trigger("update_branch_options");
		crm_automation.setup_action_pickers(frm, "actions");
	},

	update_branch_options(frm) {
		const names = [""].concat((frm.doc.branches || []).map((b) => b.branch_name).filter(Boolean));
		frm.fields_dict.actions.grid.update_docfield_property("branch", "options", names);
		frm.trigger("toggle_action_columns");
	},

	// An action's Branch and Step pickers only mean something once the rule has branches or steps.
	toggle_action_columns(frm) {
		const grid = frm.fields_dict.actions.grid;
		const show = { branch: !!(frm.doc.branches || []).length, step: !!(frm.doc.steps || []).length };
		const changed = Object.entries(show).filter(([fieldname, visible]) => !grid.get_docfield(fieldname).hidden !== visible);
		if (!changed.length) return;
		changed.forEach(([fieldname, visible]) => grid.update_docfield_property(fieldname, "hidden", visible ? 0 : 1));
		grid.reset_grid(); // the list's columns are worked out once; start them over

	},

	schedule_summary(frm) {
		// Child rows change field by field: describe the rule once typing settles.
		clearTimeout(frm.__summary_timer);
		frm.__summary_timer = setTimeout(() => frm.trigger("render_summary"), 400);
	},

	render_condition_builder(frm) {
		const wrapper = frm.fields_dict.conditions_html.$wrapper;
		frm.condition_builder = new crm_automation.ConditionBuilder({
			wrapper,
			doctype: frm.doc.document_type,
			value: frm.doc.conditions,
			on_change(tree) {
				frm.__setting_conditions = true;
				frm.set_value("conditions", tree ? JSON.stringify(tree, null, 1) : "").then(
					() => (frm.__setting_conditions = false)
				);
			},
		});
	},

	render_summary(frm) {
		// Describes the form as it is now, unsaved values included.
		const wrapper = frm.fields_dict.rule_summary.$wrapper;
		if (!frm.doc.document_type || !frm.doc.trigger) {
			wrapper.html(`<p class="text-muted">${__("Choose a document type and a trigger.")}</p>`);
			return;
		}
		// Not frm.call: a document method's reply is synced back into the form and would drop rows
		// added while it ran.
		frappe.xcall("crm_automation.api.rule_sentence.get_rule_sentence", { doc: frm.doc }).then((text) => {
			wrapper.html(`<div class="crm-automation-summary alert alert-info" style="font-size: var(--text-lg)">${frappe.utils.escape_html(text || "")}</div>`);
		}, () => {
			// Half-filled rows (a field not chosen yet) describe nothing; the save says what is missing.
			wrapper.find(".crm-automation-summary").addClass("text-muted");
		});
	},
});

frappe.ui.form.on("Workflow Rule Branch", {
	branch_name(frm) {
		frm.trigger("update_branch_options");
		frm.trigger("schedule_summary");
	},
	is_else(frm) {
		frm.trigger("schedule_summary");
	},
	conditions(frm) {
		frm.trigger("schedule_summary");
	},
	branches_add(frm) {
		frm.trigger("update_branch_options");
	},
	branches_remove(frm) {
		frm.trigger("update_branch_options");
		frm.trigger("schedule_summary");
	},
	form_render(frm, cdt, cdn) {
		crm_automation.attach_row_builder(frm, "branches", cdt, cdn);
	},
});

const SUMMARY_ACTION_FIELDS = [
	"action_type", "branch", "step", "on_timeout", "assign_to_type", "assign_strategy", "only_if_unassigned",
	"skip_away", "skip_off_hours", "fallback_user", "fallback_role",
	"to_users", "to_role", "user_group", "to_field", "to_owner", "to_assignees", "email_template", "subject",
	"due_in", "due_unit", "target_field", "value", "tag", "target_doctype", "url", "target_link_field",
	"sms_phone_field", "sms_contact_of", "sms_to_users", "sms_to_role", "actions_add", "actions_remove",
];
frappe.ui.form.on(
	"Workflow Rule Action",
	Object.fromEntries(SUMMARY_ACTION_FIELDS.map((fieldname) => [fieldname, (frm) => frm.trigger("schedule_summary")]))
);

// Follow-up steps: the Stop When builder, the step and date-field pickers, condition builders in
// each step and the timeline in words ("now: ...; +24 h if ...: ...").
frappe.ui.form.on("Workflow Rule", {
	refresh(frm) {
		crm_automation.refresh_sequence_form(frm);
	},
	document_type(frm) {
		crm_automation.refresh_sequence_form(frm);
	},
	validate(frm) {
		crm_automation.render_sequence_timeline(frm);
	},
});

frappe.ui.form.on("Workflow Rule Step", {
	step_name(frm) {
		crm_automation.update_step_options(frm);
		frm.trigger("schedule_summary");
	},
	steps_add(frm) {
		crm_automation.update_step_options(frm);
	},
	steps_remove(frm) {
		crm_automation.update_step_options(frm);
		frm.trigger("schedule_summary");
	},
	wait_type: (frm) => frm.trigger("schedule_summary"),
	wait_amount: (frm) => frm.trigger("schedule_summary"),
	wait_unit: (frm) => frm.trigger("schedule_summary"),
	until_conditions: (frm) => frm.trigger("schedule_summary"),
	step_conditions: (frm) => frm.trigger("schedule_summary"),
	form_render(frm, cdt, cdn) {
		const grid_row = frm.fields_dict.steps.grid.grid_rows_by_docname[cdn];
		const titles = { until_conditions: __("Wait until"), step_conditions: __("Only if") };
		["until_conditions", "step_conditions"].forEach((fieldname) => {
			// The builder lives in the row's HTML field; the JSON field itself stays hidden.
			const holder = grid_row.grid_form.fields_dict[`${fieldname}_html`].$wrapper;
			holder.empty().addClass("mb-3 crm-automation-step-builder"); // the row form is reused
			$('<div class="control-label mb-1"></div>').text(titles[fieldname]).appendTo(holder);
			new crm_automation.ConditionBuilder({
				wrapper: $("<div></div>").appendTo(holder),
				doctype: frm.doc.document_type,
				value: locals[cdt][cdn][fieldname],
				on_change(tree) {
					frappe.model.set_value(cdt, cdn, fieldname, tree ? JSON.stringify(tree, null, 1) : "");
				},
			});
		});
	},
});

crm_automation.refresh_sequence_form = async function (frm) {
	crm_automation.update_step_options(frm);
	crm_automation.render_sequence_timeline(frm);
	if (!frm.doc.document_type) return;
	const stop_wrapper = frm.fields_dict.stop_conditions_html.$wrapper.empty();
	$('<div class="control-label mb-1"></div>').text(__("Stop the follow-up steps when")).appendTo(stop_wrapper);
	new crm_automation.ConditionBuilder({
		wrapper: $("<div></div>").appendTo(stop_wrapper),
		doctype: frm.doc.document_type,
		value: frm.doc.stop_conditions,
		on_change(tree) {
			frm.set_value("stop_conditions", tree ? JSON.stringify(tree, null, 1) : "");
		},
	});
	const fields = await crm_automation.get_fields(frm.doc.document_type);
	const dates = fields.filter((f) => ["Date", "Datetime"].includes(f.fieldtype));
	frm.fields_dict.steps.grid.update_docfield_property(
		"date_field",
		"options",
		[""].concat(dates.map((f) => ({ value: f.fieldname, label: `${__(f.label)} (${f.fieldname})` })))
	);
};

crm_automation.update_step_options = function (frm) {
	const names = [""].concat((frm.doc.steps || []).map((s) => s.step_name).filter(Boolean));
	frm.fields_dict.actions.grid.update_docfield_property("step", "options", names);
	frm.trigger("toggle_action_columns");
};

crm_automation.render_sequence_timeline = function (frm) {
	const wrapper = frm.fields_dict.sequence_timeline.$wrapper;
	if (!(frm.doc.steps || []).length) {
		wrapper.html("");
		return;
	}
	frappe.xcall("crm_automation.api.sequence_panel.describe_timeline", { doc: frm.doc }).then((text) => {
		wrapper.html(text ? `<div class="alert alert-info">${__("Timeline")}: ${frappe.utils.escape_html(text)}</div>` : "");
	});
};

// Webhook Received: the field map shows when documents are created; the URL's buttons call
// api/inbound_webhooks.py, which shows the URL and secret once (only the last 4 characters stay).
crm_automation.toggle_inbound_fields = function (frm) {
	frm.toggle_display("webhook_field_map", frm.doc.trigger === "Webhook Received" && !!frm.doc.webhook_create_missing);
};

crm_automation.setup_inbound_webhook = function (frm) {
	const inbound = frm.doc.trigger === "Webhook Received";
	crm_automation.toggle_inbound_fields(frm);
	const wrapper = frm.fields_dict.webhook_html && frm.fields_dict.webhook_html.$wrapper;
	if (!inbound || frm.is_new()) {
		if (wrapper) wrapper.empty();
		return;
	}
	const hint = frm.doc.webhook_token_hint;
	if (wrapper) {
		wrapper.html(
			`<p class="text-muted">${
				hint
					? frappe.utils.escape_html(__("This rule has a URL ending in {0}; it was shown once, when made.", [hint]))
					: frappe.utils.escape_html(__("This rule has no URL yet."))
			}</p>`
		);
	}
	const group = __("Webhook URL");
	const call = (method, args) =>
		frappe.xcall(`crm_automation.api.inbound_webhooks.${method}`, { rule: frm.doc.name, ...args }).then((r) => {
			frm.reload_doc();
			return r;
		});
	const show_once = (r) => {
		const rows = [[__("URL"), r.url]];
		if (r.secret) rows.push([__("Signing Secret"), r.secret]);
		frappe.msgprint({
			title: __("Copy these now: they are not shown again"),
			indicator: "orange",
			message: rows
				.map(([label, value]) => `<p><b>${frappe.utils.escape_html(label)}</b><br><code>${frappe.utils.escape_html(value)}</code></p>`)
				.join(""),
		});
	};
	if (!hint) {
		frm.add_custom_button(__("Generate URL"), () => call("generate_webhook_url").then(show_once), group);
		return;
	}
	frm.add_custom_button(
		__("Rotate URL"),
		() => frappe.confirm(__("The current URL stops working at once. Go on?"), () => call("rotate").then(show_once)),
		group
	);
	frm.add_custom_button(
		__("Rotate URL and Secret"),
		() =>
			frappe.confirm(__("The current URL and secret stop working at once. Go on?"), () =>
				call("rotate", { new_secret: 1 }).then(show_once)
			),
		group
	);
	frm.add_custom_button(
		__("Revoke URL"),
		() => frappe.confirm(__("Calls to this rule's URL will be refused. Go on?"), () => call("revoke")),
		group
	);
};
