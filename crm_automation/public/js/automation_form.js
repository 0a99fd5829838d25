// On every form: "Automations" → why automation did what it did here, and Manual rules to run.
frappe.provide("crm_automation");

// Who manages rules: the same pair as RULE_MANAGER_ROLES in crm_automation/trust/roles.py (the server
// decides; this only spares others a link they could not open).
crm_automation.RULE_MANAGER_ROLES = ["CRM Automation Manager", "System Manager"];

const CRM_AUTOMATION_SKIP = new Set(["Workflow Rule", "Automation Log", "Automation Occurrence", "CRM Automation Settings"]);

$(document).on("form-refresh", function (event, frm) {
	if (!frm || frm.is_new() || CRM_AUTOMATION_SKIP.has(frm.doctype) || frm.meta.istable) return;
	frm.add_custom_button(
		__("Why? (Automation History)"),
		() => crm_automation.show_history(frm),
		__("Automations")
	);
	frm.add_custom_button(
		__("Which Automations Apply?"),
		() =>
			frappe
				.xcall("crm_automation.api.get_applicable_automations", { doctype: frm.doctype, name: frm.doc.name })
				.then((rows) =>
					frappe.msgprint({
						title: __("Automations for {0}", [frm.doc.name]),
						message: (rows || []).length
							? `<ul>${rows.map((r) => `<li><b>${frappe.utils.escape_html(r.rule)}</b> (${frappe.utils.escape_html(__(r.trigger, null, "Workflow Rule"))}): ${frappe.utils.escape_html(__(r.would))}${r.branch ? `, ${frappe.utils.escape_html(r.branch)}` : ""}${r.reason ? ` — ${frappe.utils.escape_html(r.reason)}` : ""}</li>`).join("")}</ul>`
							: __("No enabled Workflow Rule watches {0}.", [__(frm.doctype)]),
					})
				),
		__("Automations")
	);
	frappe
		.xcall("crm_automation.api.get_manual_rules", { doctype: frm.doctype })
		.then((rules) => {
			(rules || []).forEach((rule) => {
				frm.add_custom_button(
					rule.name,
					() =>
						frappe
							.xcall("crm_automation.api.run_manual_rule", {
								rule: rule.name,
								doctype: frm.doctype,
								name: frm.doc.name,
							})
							.then((r) => {
								frappe.show_alert({
									message: __("{0}: {1}", [rule.name, __(r.outcome)]),
									indicator: r.outcome === "Success" ? "green" : "orange",
								});
								frm.reload_doc();
							}),
					__("Automations")
				);
			});
		});
});

// A condition trace as list items. An entry on a field the reader may not read comes without its
// values and result (the server hides them): it shows the test, not how it came out.
crm_automation.trace_items = function (trace, verb) {
	const esc = frappe.utils.escape_html;
	return (trace || [])
		.map((t) => {
			if (t.hidden) {
				return `<li>• ${esc(t.label)} ${esc(t.op)} — ${esc(__("hidden: you may not read this field"))}</li>`;
			}
			const mark = t.result == null ? "•" : t.result ? "✔" : "✘";
			return `<li>${mark} ${esc(t.label)} ${esc(t.op)} ${esc(JSON.stringify(t.expected))} — ${esc(verb)} ${esc(JSON.stringify(t.actual))}</li>`;
		})
		.join("");
};

crm_automation.show_history = function (frm) {
	frappe
		.xcall("crm_automation.api.get_automation_history", { doctype: frm.doctype, name: frm.doc.name })
		.then((logs) => {
			const rows = (logs || [])
				.map((log) => {
					const actions = (log.actions || [])
						.map((a) => `<li>${frappe.utils.escape_html(__(a.action_type))}: ${frappe.utils.escape_html(a.result || __(a.status))}</li>`)
						.join("");
					const why = crm_automation.trace_items(log.trace, __("was"));
					const open_log = frappe.user.has_role(crm_automation.RULE_MANAGER_ROLES)
						? ` <a href="/app/automation-log/${encodeURIComponent(log.name)}" class="small">${__("Open log")}</a>`
						: "";
					return `<div class="mb-3"><b>${frappe.utils.escape_html(log.rule)}</b>${open_log}
						<span class="indicator-pill ${log.outcome === "Success" ? "green" : log.outcome === "Failed" ? "red" : "gray"}">${frappe.utils.escape_html(__(log.outcome))}</span>
						<span class="text-muted small">${frappe.datetime.comment_when(log.creation)}</span>
						${log.branch ? `<div>${__("Branch", null, "Workflow Rule")}: ${frappe.utils.escape_html(log.branch)}</div>` : ""}
						${log.reason ? `<div class="text-muted">${frappe.utils.escape_html(log.reason)}</div>` : ""}
						${why ? `<div>${__("Because")}:<ul>${why}</ul></div>` : ""}
						${actions ? `<div>${__("Did")}:<ul>${actions}</ul></div>` : ""}</div>`;
				})
				.join("");
			const dialog = new frappe.ui.Dialog({
				title: __("Automation on {0}", [frm.doc.name]),
				size: "large",
				fields: [{ fieldtype: "HTML", fieldname: "history" }],
			});
			dialog.fields_dict.history.$wrapper.html(rows || `<p class="text-muted">${__("No automation has run on this document.")}</p>`);
			dialog.show();
		});
};

// "Why this score": each criterion with its points, the activity totals, decay and the total.
$(document).on("form-refresh", function (event, frm) {
	if (!frm || !frm.fields_dict || !frm.fields_dict.crm_score_explanation) return;
	const wrapper = frm.fields_dict.crm_score_explanation.$wrapper;
	let data = null;
	try {
		data = frm.doc.crm_score_breakdown ? JSON.parse(frm.doc.crm_score_breakdown) : null;
	} catch (e) {
		data = null;
	}
	if (!data) {
		wrapper.html(`<p class="text-muted">${__("Not scored yet.")}</p>`);
		return;
	}
	const rows = (data.breakdown || [])
		.map((entry) => {
			// The breakdown is stored on the document: every part of it is shown as text, never markup.
			const esc = (value) => frappe.utils.escape_html(String(value ?? ""));
			const note = entry.capped_from != null ? ` <span class="text-muted">(${__("capped from {0}", [esc(entry.capped_from)])})</span>` : "";
			const count = entry.count ? ` × ${esc(entry.count)}` : "";
			return `<tr><td>${esc(entry.label)}${count}${note}</td><td class="text-right">${entry.points > 0 ? "+" : ""}${esc(entry.points)}</td></tr>`;
		})
		.join("");
	wrapper.html(`<table class="table table-sm crm-score-explanation">
		<tbody>${rows || `<tr><td class="text-muted">${__("No criterion matched")}</td><td></td></tr>`}</tbody>
		<tfoot><tr><th>${__("Score")} ${data.grade ? `· ${frappe.utils.escape_html(String(data.grade))}` : ""}</th><th class="text-right">${frappe.utils.escape_html(String(data.score ?? ""))}</th></tr></tfoot>
	</table>`);
});

// Escalation clocks: the current level and the next escalation, at the top of the form.
$(document).on("form-refresh", function (event, frm) {
	if (!frm || frm.is_new() || CRM_AUTOMATION_SKIP.has(frm.doctype) || frm.meta.istable) return;
	frappe
		.xcall("crm_automation.api.get_escalation_status", { doctype: frm.doctype, name: frm.doc.name })
		.then((states) => {
			(states || []).forEach((state) => {
				const next = state.next_escalation_on
					? __("{0} {1}", [frappe.utils.escape_html(state.next_escalation || ""), frappe.datetime.comment_when(state.next_escalation_on)])
					: __("paused");
				frm.dashboard.add_comment(
					__("Escalation ({0}): level {1}; next: {2}", [frappe.utils.escape_html(state.policy), cint(state.current_level), next]),
					state.current_level ? "orange" : "blue",
					true
				);
			});
		});
});

// Follow-up sequences: the document's pending steps with their due times (in the reader's time
// zone); rule managers and users who may write the document can skip or cancel one.
$(document).on("form-refresh", function (event, frm) {
	if (!frm || frm.is_new() || CRM_AUTOMATION_SKIP.has(frm.doctype) || frm.meta.istable) return;
	frappe
		.xcall("crm_automation.api.sequence_panel.get_pending_steps", { doctype: frm.doctype, name: frm.doc.name })
		.then((steps) => {
			if (!(steps || []).length) return;
			const next = steps[0];
			frm.dashboard.add_comment(
				__("Follow-up: {0} ({1}) due {2} {3}", [
					frappe.utils.escape_html(next.step_name),
					frappe.utils.escape_html(next.workflow_rule),
					frappe.utils.escape_html(next.due_at_user || ""),
					frappe.utils.escape_html(next.time_zone || ""),
				]),
				"blue",
				true
			);
			frm.add_custom_button(__("Pending Follow-ups"), () => crm_automation.show_pending_steps(frm, steps), __("Automations"));
		});
});

crm_automation.show_pending_steps = function (frm, steps) {
	const esc = frappe.utils.escape_html;
	const dialog = new frappe.ui.Dialog({
		title: __("Pending follow-ups on {0}", [frm.doc.name]),
		size: "large",
		fields: [{ fieldtype: "HTML", fieldname: "steps" }],
	});
	const rows = steps
		.map(
			(s) => `<tr><td>${esc(s.workflow_rule)}</td><td>${cint(s.step_index)}. ${esc(s.step_name)}</td>
				<td>${esc(s.due_at_user)} <span class="text-muted small">${esc(s.time_zone)}</span></td>
				<td>${esc(__(s.status))}</td>
				<td>${s.can_control && s.status === "Pending"
					? `<button class="btn btn-xs btn-default" data-action="skip_step" data-name="${esc(s.name)}">${__("Skip")}</button>
					   <button class="btn btn-xs btn-danger" data-action="cancel_step" data-name="${esc(s.name)}">${__("Cancel")}</button>`
					: ""}</td></tr>`
		)
		.join("");
	dialog.fields_dict.steps.$wrapper.html(`<table class="table table-sm">
		<thead><tr><th>${__("Rule")}</th><th>${__("Step")}</th><th>${__("Due")}</th><th>${__("Status")}</th><th></th></tr></thead>
		<tbody>${rows}</tbody></table>
		<p class="text-muted small">${__("Skip: this step does not run and the next one is scheduled. Cancel: the sequence ends here.")}</p>`);
	dialog.fields_dict.steps.$wrapper.on("click", "button[data-action]", function () {
		const method = `crm_automation.api.sequence_panel.${$(this).attr("data-action")}`;
		frappe.xcall(method, { name: $(this).attr("data-name") }).then((status) => {
			frappe.show_alert({ message: __("Follow-up {0}", [__(status)]), indicator: "green" });
			dialog.hide();
			frm.reload_doc();
		});
	});
	dialog.show();
};
