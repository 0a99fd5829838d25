# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

"""Drop-off per step of each follow-up sequence: how many documents reached a step, how many ran
it, were skipped, missed it, left the sequence while waiting for it, or wait for it still."""

import frappe
from frappe import _
from frappe.utils import add_days, getdate

# A due row's status → the column it counts in.
COLUMN_OF_STATUS = {
	"Done": "ran",
	"Failed": "ran",
	"Skipped": "skipped",
	"Missed": "missed",
	"Exited": "exited",
	"Cancelled": "exited",
	"Pending": "waiting",
	"Running": "waiting",
}
COLUMNS = ("reached", "ran", "skipped", "missed", "exited", "waiting")


def drop_off(filters):
	"""{rule: [{"step", "step_name", "reached", "ran", ...}]} for sequences started or continued in
	the report's date range. Every due row is one document reaching one step."""
	conditions = ["creation >= %(low)s", "creation < %(high)s"]
	values = {
		"low": getdate(filters.get("from_date") or add_days(None, -30)),
		"high": add_days(getdate(filters.get("to_date")), 1),
	}
	if filters.get("rule"):
		conditions.append("workflow_rule = %(rule)s")
		values["rule"] = filters["rule"]
	if filters.get("reference_doctype"):
		conditions.append("reference_doctype = %(doctype)s")
		values["doctype"] = filters["reference_doctype"]
	rows = frappe.db.sql(
		f"""select workflow_rule, step_index, max(step_name), status, count(*)
		from `tabAutomation Sequence Step` where {" and ".join(conditions)}
		group by workflow_rule, step_index, status order by workflow_rule, step_index""",
		values,
	)
	by_rule = {}
	for rule, index, name, status, count in rows:
		steps = by_rule.setdefault(rule, {})
		step = steps.setdefault(index, {"step": index, "step_name": name, **dict.fromkeys(COLUMNS, 0)})
		step["reached"] += count
		step[COLUMN_OF_STATUS.get(status, "waiting")] += count
	return {rule: [steps[i] for i in sorted(steps)] for rule, steps in by_rule.items()}


def drop_off_html(filters):
	if filters.get("rule_type") not in (None, "", "Workflow Rule"):
		return None
	tables = []
	for rule, steps in drop_off(filters).items():
		head = "".join(f"<th>{_(label.title())}</th>" for label in COLUMNS)
		body = "".join(
			f"<tr><td>{step['step']}. {frappe.utils.escape_html(step['step_name'] or '')}</td>"
			+ "".join(f"<td>{step[label]}</td>" for label in COLUMNS)
			+ "</tr>"
			for step in steps
		)
		tables.append(
			f"<p>{_('Follow-up steps of {0}').format(frappe.bold(rule))}</p>"
			f"<table class='table table-sm'><thead><tr><th>{_('Step')}</th>{head}</tr></thead><tbody>{body}</tbody></table>"
		)
	return "".join(tables) or None
