// A Workflow Rule's History: its versions in words, revert to one, and a version replayed side by
// side with the rule as saved now. Loaded on demand by workflow_rule.js. Every value from the
// server is escaped; the only markup is ours (*quoted* words become <em> after escaping).

frappe.provide("crm_automation");

crm_automation.show_rule_history = function (frm) {
	frappe
		.xcall("crm_automation.api.rule_versions.get_rule_versions", { rule: frm.doc.name })
		.then((r) => crm_automation.render_rule_history(frm, r));
};

crm_automation.words_html = function (text) {
	return frappe.utils.escape_html(text || "").replace(/\*([^*]+)\*/g, "<em>$1</em>");
};

crm_automation.render_rule_history = function (frm, r) {
	const esc = frappe.utils.escape_html;
	const dialog = new frappe.ui.Dialog({ title: __("History of {0}", [esc(frm.doc.name)]), size: "large" });
	const body = $('<div class="crm-automation-history"></div>').appendTo(dialog.body);
	if (!r.versions.length) {
		body.append($('<p class="text-muted"></p>').text(__("No versions yet: the next save of the rule records one.")));
	}
	r.versions.forEach((v) => {
		const row = $('<div class="border-bottom py-3"></div>').appendTo(body);
		const head = $('<div class="d-flex justify-content-between align-items-baseline"></div>').appendTo(row);
		const title = v.version_no > 1 ? __("v{0} → v{1}", [v.version_no - 1, v.version_no]) : __("v{0}", [v.version_no]);
		$('<strong></strong>').text(title).appendTo(head);
		$('<span class="text-muted small"></span>')
			.text(__("{0}, {1}", [v.saved_by_name || v.saved_by || "", frappe.datetime.str_to_user(v.saved_on)]))
			.appendTo(head);
		if (v.reverted_to) {
			$('<div class="small text-warning"></div>').text(__("Reverted to version {0}", [v.reverted_to])).appendTo(row);
		}
		const list = $('<ul class="mb-2"></ul>').appendTo(row);
		(v.sentences.length ? v.sentences : [__("saved")]).forEach((s) => $("<li></li>").html(crm_automation.words_html(s)).appendTo(list));
		if (v.current) {
			$('<span class="indicator-pill green"></span>').text(__("Current")).appendTo(row);
			return;
		}
		const buttons = $("<div></div>").appendTo(row);
		$('<button class="btn btn-xs btn-default mr-2"></button>')
			.text(__("Revert to this version"))
			.on("click", () => crm_automation.revert_rule(frm, v.version_no, dialog))
			.appendTo(buttons);
		$('<button class="btn btn-xs btn-default"></button>')
			.text(__("Compare with current (replay)"))
			.on("click", () => crm_automation.compare_rule_versions(frm, v.version_no))
			.appendTo(buttons);
	});
	if (r.more) {
		body.append($('<p class="text-muted small mt-2"></p>').text(__("Older versions are listed under Workflow Rule Version.")));
	}
	dialog.show();
};

crm_automation.revert_rule = function (frm, version_no, dialog) {
	if (frm.is_dirty()) {
		frappe.msgprint(__("Save or discard your changes first."));
		return;
	}
	frappe.confirm(__("Revert {0} to version {1}? This saves the rule as it was then, as a new version.", [frappe.utils.escape_html(frm.doc.name), version_no]), () =>
		frappe.xcall("crm_automation.api.rule_versions.revert_rule", { rule: frm.doc.name, version_no }).then((r) => {
			dialog.hide();
			frm.reload_doc();
			if (r.version_no) {
				frappe.show_alert({ message: __("Reverted: saved as version {0}", [r.version_no]), indicator: "green" });
			}
		})
	);
};

crm_automation.compare_rule_versions = function (frm, version_no) {
	frappe.prompt(
		[{ fieldname: "days", fieldtype: "Int", label: __("Days"), default: 30, reqd: 1 }],
		(values) =>
			frappe
				.xcall("crm_automation.api.rule_versions.compare_rule_versions", { rule: frm.doc.name, version_a: version_no, days: values.days })
				.then((r) => crm_automation.render_version_replay(r)),
		__("Replay version {0} and the current rule", [version_no]),
		__("Replay")
	);
};

crm_automation.render_version_replay = function (r) {
	const esc = frappe.utils.escape_html;
	const dialog = new frappe.ui.Dialog({ title: __("Version {0} and the current rule, side by side", [r.version_a]), size: "extra-large" });
	const body = $("<div></div>").appendTo(dialog.body);
	const lines = [
		__("{0} documents of {1} days", [r.documents, r.days]),
		__("acted on by version {0}: {1}; by the current rule: {2}", [r.version_a, r.acted_on_by_a, r.acted_on_by_b]),
		__("they differ on {0}", [r.differ.length]),
	];
	if (r.capped) lines.push(__("only the newest {0} documents were replayed", [r.max_documents]));
	$('<p></p>').text(lines.join(" · ")).appendTo(body);
	const differing = r.rows.filter((row) => row.differs);
	if (!differing.length) {
		$('<p class="text-muted"></p>').text(__("Both would have done the same on every document.")).appendTo(body);
		dialog.show();
		return;
	}
	const side = (s) =>
		[esc(__(s.outcome)), s.branch ? esc(__("branch {0}", [s.branch])) : "", ...s.actions.map((a) => "→ " + esc(a)), s.reason && !s.acts ? `<span class="text-muted">${esc(s.reason)}</span>` : ""]
			.filter(Boolean)
			.join("<br>");
	const rows = differing.slice(0, 200).map(
		(row) =>
			`<tr><td><a href="/app/${encodeURIComponent(frappe.router.slug(r.document_type))}/${encodeURIComponent(row.document)}">${esc(row.document)}</a></td><td>${side(row.a)}</td><td>${side(row.b)}</td></tr>`
	);
	$(`<table class="table table-bordered table-sm small"><thead><tr><th>${esc(__(r.document_type))}</th><th>${esc(__("Version {0}", [r.version_a]))}</th><th>${esc(__("Current"))}</th></tr></thead><tbody>${rows.join("")}</tbody></table>`).appendTo(body);
	if (differing.length > 200) {
		$('<p class="text-muted small"></p>').text(__("The first 200 of {0} documents where they differ.", [differing.length])).appendTo(body);
	}
	dialog.show();
};
