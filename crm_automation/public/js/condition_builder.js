// Condition builder: field picker → only the operators that fit → a value widget by fieldtype.
// Reads and writes the engine's tree: {"all"|"any": [{field, op, value}, ...]}. Deeper nesting is
// kept intact (System Managers see the stored JSON under Advanced).
// On Workflow Rules the field list also offers fields of linked documents ("customer.territory")
// and child-table aggregates ({field: "items.qty", agg: "any"|"all"|"sum"}, {field: "items",
// agg: "count"}), grouped under the link or table they come from.
frappe.provide("crm_automation");

crm_automation.fields_cache = {};
crm_automation.linked_fields_cache = {};
crm_automation.pickers_cache = {};

// One answer per doctype and page: a failed call is forgotten, so the next form asks again instead
// of every builder of the session staying empty on a remembered failure.
crm_automation.cached_call = function (cache, key, method, args) {
	if (!cache[key]) {
		cache[key] = frappe.xcall(method, args).catch((error) => {
			delete cache[key];
			throw error;
		});
	}
	return cache[key];
};

crm_automation.get_linked_fields = function (doctype) {
	return crm_automation.cached_call(
		crm_automation.linked_fields_cache,
		doctype,
		"crm_automation.api.linked_field_pickers.get_linked_condition_fields",
		{ doctype }
	);
};

// The key of a field-list entry and of a condition row: the path, prefixed by its aggregate.
crm_automation.condition_key = (item) => (item.agg ? `${item.agg}:${item.field || item.fieldname}` : item.field || item.fieldname);

// The action form's pickers (Workflow Rule actions, Escalation Policy levels): phone fields, whose
// contact gets an SMS, and the linked document an action may act on.
crm_automation.setup_action_pickers = async function (frm, table_field) {
	if (!frm.doc.document_type) return;
	const doctype = frm.doc.document_type;
	if (!crm_automation.pickers_cache[doctype]) {
		crm_automation.pickers_cache[doctype] = frappe.xcall("crm_automation.api.linked_field_pickers.get_action_pickers", {
			doctype,
		});
	}
	const pickers = await crm_automation.pickers_cache[doctype];
	const grid = frm.fields_dict[table_field].grid;
	const with_empty = (options) => [{ value: "", label: "" }].concat(options);
	const set = (fieldname, options) => {
		if (frappe.meta.has_field(grid.doctype, fieldname)) {
			grid.update_docfield_property(fieldname, "options", with_empty(options));
		}
	};
	set("sms_phone_field", pickers.phone_fields);
	set("sms_contact_of", pickers.contact_of);
	set("target_link_field", pickers.link_targets);
	// "Assign to the user in field" may also name a user field of a linked document
	// (the Customer's account manager): added after the document's own user fields.
	const to_field = frappe.meta.has_field(grid.doctype, "to_field") && grid.get_docfield("to_field");
	if (to_field && pickers.linked_user_fields.length) {
		const own = (Array.isArray(to_field.options) ? to_field.options : (to_field.options || "").split("\n"))
			.filter((o) => !(o && o.value && o.value.includes(".")));
		grid.update_docfield_property("to_field", "options", own.concat(pickers.linked_user_fields));
	}
};

crm_automation.get_fields = function (doctype) {
	return crm_automation.cached_call(crm_automation.fields_cache, doctype, "crm_automation.api.get_condition_fields", {
		doctype,
	});
};

crm_automation.ConditionBuilder = class ConditionBuilder {
	constructor({ wrapper, doctype, value, on_change, linked }) {
		this.wrapper = $(wrapper);
		this.doctype = doctype;
		this.on_change = on_change;
		// Only Workflow Rules compile linked paths and aggregates (scores and escalations do not).
		this.linked = linked ?? (window.cur_frm && cur_frm.doctype === "Workflow Rule");
		this.set_value(value);
	}

	set_value(value) {
		let tree = value;
		if (typeof tree === "string") {
			try {
				tree = tree ? JSON.parse(tree) : null;
			} catch (e) {
				tree = null;
			}
		}
		// A single condition is a whole tree too ({field, op, value}, as the API and packs may
		// store it): read as a group of one, or the builder would show nothing and drop it on change.
		if (tree && typeof tree === "object" && !Array.isArray(tree) && tree.field) tree = { all: [tree] };
		this.mode = tree && tree.any ? "any" : "all";
		const items = (tree && (tree.all || tree.any)) || [];
		this.rows = items.filter((item) => item && item.field);
		this.nested = items.filter((item) => item && !item.field);
		this.render();
	}

	get_value() {
		const items = this.rows
			.filter((row) => row.field && row.op)
			.map((row) => {
				const item = { field: row.field, op: row.op };
				if (row.agg) item.agg = row.agg;
				if (row.value !== undefined && row.value !== null) item.value = row.value;
				return item;
			})
			.concat(this.nested);
		return items.length ? { [this.mode]: items } : null;
	}

	changed() {
		this.on_change && this.on_change(this.get_value());
	}

	async render() {
		if (!this.doctype) {
			this.wrapper.html(`<p class="text-muted">${__("Choose a Document Type first.")}</p>`);
			return;
		}
		try {
			this.fields = await crm_automation.get_fields(this.doctype);
		} catch (e) {
			// The rows stay as saved (nothing is written back); the builder says why it shows none.
			this.wrapper.html(
				`<p class="text-muted crm-automation-condition-error">${__("The fields of {0} could not be loaded: reload the page to see the conditions.", [frappe.utils.escape_html(__(this.doctype))])}</p>`
			);
			return;
		}
		// Fields of linked documents are an extra: without them the document's own rows still show.
		this.linked_fields = this.linked ? await crm_automation.get_linked_fields(this.doctype).catch(() => []) : [];
		this.by_name = Object.fromEntries(
			this.fields.concat(this.linked_fields).map((f) => [crm_automation.condition_key(f), f])
		);
		this.wrapper.empty();
		const head = $(`<div class="crm-automation-condition-head mb-2">
			${__("Match")} <select class="input-xs match-mode">
				<option value="all">${__("all of")}</option><option value="any">${__("any of")}</option>
			</select> ${__("these conditions")}</div>`).appendTo(this.wrapper);
		head.find(".match-mode")
			.val(this.mode)
			.on("change", (e) => {
				this.mode = e.target.value;
				this.changed();
			});
		this.rows.forEach((row, index) => this.render_row(row, index));
		if (this.nested.length) {
			$(`<p class="text-muted small">${__("{0} nested group(s) are kept as they are (the sentence above says what they check).", [
				this.nested.length,
			])}</p>`).appendTo(this.wrapper);
		}
		$(`<button class="btn btn-xs btn-default add-condition">${__("+ Add Condition")}</button>`)
			.appendTo(this.wrapper)
			.on("click", () => {
				this.rows.push({ field: "", op: "", value: null });
				this.render();
			});
	}

	render_row(row, index) {
		const line = $(`<div class="crm-automation-condition row mb-2" data-index="${index}">
			<div class="col-sm-4 field-area"></div>
			<div class="col-sm-3 op-area"></div>
			<div class="col-sm-4 value-area"></div>
			<div class="col-sm-1"><button class="btn btn-xs btn-default remove">×</button></div>
		</div>`).appendTo(this.wrapper);
		const field_select = $(`<select class="form-control input-sm condition-field"></select>`).appendTo(
			line.find(".field-area")
		);
		field_select.append(`<option value="">${__("Field")}</option>`);
		// Labels as the document's form shows them; the fieldname only tells apart two equal labels.
		const label_count = {};
		this.fields.forEach((f) => (label_count[__(f.label)] = (label_count[__(f.label)] || 0) + 1));
		this.fields.forEach((f) =>
			field_select.append(
				$("<option>")
					.attr("value", f.fieldname)
					.attr("title", f.fieldname)
					.text(label_count[__(f.label)] > 1 ? `${__(f.label)} (${f.fieldname})` : __(f.label))
			)
		);
		const groups = {};
		this.linked_fields.forEach((f) => {
			if (!groups[f.group]) {
				groups[f.group] = $("<optgroup>").attr("label", f.group).appendTo(field_select);
			}
			groups[f.group].append($("<option>").attr("value", crm_automation.condition_key(f)).text(f.label));
		});
		field_select.val(crm_automation.condition_key(row)).on("change", (e) => {
			const chosen = this.by_name[e.target.value];
			row.field = chosen ? chosen.fieldname : "";
			row.agg = chosen && chosen.agg ? chosen.agg : undefined;
			row.op = "";
			row.value = null;
			this.render();
			this.changed();
		});
		line.find(".remove").on("click", () => {
			this.rows.splice(index, 1);
			this.render();
			this.changed();
		});
		const field = this.by_name[crm_automation.condition_key(row)];
		if (!field) return;
		const op_select = $(`<select class="form-control input-sm condition-op"></select>`).appendTo(
			line.find(".op-area")
		);
		op_select.append(`<option value="">${__("Operator")}</option>`);
		// With their own context: Frappe's "Like" and "In" mean other things in zh and ru.
		field.operators.forEach((o) =>
			op_select.append($("<option>").attr("value", o.operator).text(__(o.label, null, "Condition Operator")))
		);
		op_select.val(row.op).on("change", (e) => {
			row.op = e.target.value;
			row.value = null;
			this.render();
			this.changed();
		});
		const operator = field.operators.find((o) => o.operator === row.op);
		if (operator) this.render_value(line.find(".value-area"), field, operator, row);
	}

	render_value(area, field, operator, row) {
		if (operator.value === "none") return;
		const make = (value, on_set, placeholder) => {
			// Showing the saved value is not a change: a control may rewrite it as it shows it (a
			// Datetime in the user's time zone, a Link that no longer exists), and the form must
			// neither turn dirty nor store the rewritten value. Only what follows is the user's.
			let shown = false;
			const df = {
				fieldtype: ["Link", "Select", "Date", "Datetime", "Time", "Check"].includes(field.fieldtype)
					? field.fieldtype
					: ["Int", "Float", "Currency", "Percent"].includes(field.fieldtype)
					? "Float"
					: "Data",
				options: field.options,
				// A condition may name a value that does not exist yet (or any more): kept, not cleared.
				ignore_link_validation: 1,
				placeholder: placeholder || __(field.label),
				onchange() {
					if (shown) on_set(this.get_value());
				},
			};
			if (operator.value === "list" && df.fieldtype !== "Link") df.fieldtype = "Data";
			const control = frappe.ui.form.make_control({
				parent: $("<div>").appendTo(area),
				df,
				render_input: true,
				only_input: true,
			});
			Promise.resolve(control.set_value(value == null ? "" : value)).then(() => (shown = true));
			return control;
		};
		if (operator.value === "pair") {
			const pair = Array.isArray(row.value) ? row.value : [null, null];
			make(pair[0], (v) => ((pair[0] = v), (row.value = pair), this.changed()), __("From", null, "Workflow Rule"));
			make(pair[1], (v) => ((pair[1] = v), (row.value = pair), this.changed()), __("To", null, "Workflow Rule"));
		} else if (operator.value === "list") {
			const text = Array.isArray(row.value) ? row.value.join(", ") : row.value || "";
			make(text, (v) => {
				row.value = (v || "").split(",").map((s) => s.trim()).filter(Boolean);
				this.changed();
			}, __("Comma separated"));
		} else {
			make(row.value, (v) => ((row.value = v), this.changed()));
		}
	}
};

// The Test button of Workflow Rule, Lead Score Rule and Escalation Policy: a dry run.
crm_automation.test_rule = function (frm) {
	const dialog = new frappe.ui.Dialog({
		title: __("Test {0}", [frm.doc.name]),
		fields: [
			{ fieldname: "document", fieldtype: "Link", options: frm.doc.document_type, label: __("Document") },
			{ fieldname: "last", fieldtype: "Int", label: __("Or the latest N documents"), default: 5 },
		],
		primary_action_label: __("Run Dry Run"),
		primary_action(values) {
			frappe
				.xcall("crm_automation.api.dry_run_rule", {
					rule: frm.doc.name,
					names: values.document ? JSON.stringify([values.document]) : null,
					last: values.document ? null : values.last,
				})
				.then((result) => {
					dialog.hide();
					crm_automation.show_dry_run(result);
				});
		},
	});
	dialog.show();
};

crm_automation.show_dry_run = function (result) {
	const esc = frappe.utils.escape_html;
	const html = (result.results || [])
		.map((entry) => {
			const trace = crm_automation.trace_items(entry.trace, __("is"));
			const acts = (entry.actions || [])
				// An action that would fail says so on its own line; the others are still shown.
				.map((a) => `<li>${a.status === "Failed" ? `<span class="indicator-pill red">${esc(__("Failed"))}</span> ` : ""}<b>${esc(a.type)}</b>: ${esc(a.summary)}${a.message ? `<div class="small text-muted">${esc(a.message)}</div>` : ""}</li>`)
				.join("");
			const steps = (entry.schedule || []).map((s) => `<li>${esc(s.at)} — ${esc(s.what)}</li>`).join("");
			const score = entry.score ? `<div>${__("Score")} ${esc(String(entry.score.score))}: ${esc(entry.explained)}</div>` : "";
			return `<div class="mb-3"><b>${esc(entry.document)}</b> → ${esc(entry.outcome)}${entry.branch ? ` (${esc(entry.branch)})` : ""}
				${entry.reason ? `<div class="text-muted">${esc(entry.reason)}</div>` : ""}${score}
				${trace ? `<ul>${trace}</ul>` : ""}${acts ? `<div>${__("Would")}:</div><ul>${acts}</ul>` : ""}${steps ? `<ul>${steps}</ul>` : ""}</div>`;
		})
		.join("");
	const dialog = new frappe.ui.Dialog({ title: __("Dry run: nothing was written"), size: "large", fields: [{ fieldtype: "HTML", fieldname: "out" }] });
	dialog.fields_dict.out.$wrapper.html(html || __("No documents to test on."));
	dialog.show();
};

// The builder inside a child row's form (Workflow Rule branches, Lead Score Rule criteria), writing
// that row's conditions.
crm_automation.attach_row_builder = function (frm, table_field, cdt, cdn) {
	const row = locals[cdt][cdn];
	const grid_row = frm.fields_dict[table_field].grid.grid_rows_by_docname[cdn];
	const field = grid_row.grid_form.fields_dict.conditions;
	const holder = $('<div class="mb-3"></div>').insertBefore(field.$wrapper);
	new crm_automation.ConditionBuilder({
		wrapper: holder,
		doctype: frm.doc.document_type,
		value: row.conditions,
		on_change(tree) {
			frappe.model.set_value(cdt, cdn, "conditions", tree ? JSON.stringify(tree, null, 1) : "");
		},
	});
};
