# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

"""What automation did and what it saved: runs, outcomes, durations, actions by type and minutes
saved per rule, with the rules most often skipped, the slowest and the failing ones, hours saved per
week, and before/after figures where the data allows."""

import frappe
from frappe import _
from frappe.utils import add_days, flt, get_datetime, getdate

from crm_automation.crm_automation.report.automation_efficacy.sequence_dropoff import drop_off_html

FIRED = ("Success", "Failed", "Rejected")


def execute(filters=None):
	filters = frappe._dict(filters or {})
	logs = load_logs(filters)
	rows = per_rule(logs)
	parts = (before_after(filters), drop_off_html(filters), rule_outcome_link())
	message = "".join(part for part in parts if part) or None
	return columns(), rows, message, chart(logs), summary(logs, rows)


def rule_outcome_link():
	"""Hours saved say nothing of whether a rule changes the outcome: the rules with a hold-out or a
	split are compared in the Rule Outcome report."""
	rules = frappe.get_list(
		"Workflow Rule",
		or_filters=[["holdout_percent", ">", 0], ["branch_mode", "=", "Percentage Split"]],
		pluck="name",
		limit_page_length=0,
	)
	if not rules:
		return None
	text = _("{0} rules have a hold-out or a split: does each change the outcome? See the Rule Outcome report").format(
		len(rules)
	)
	return f'<p><a href="/app/query-report/Rule Outcome">{frappe.utils.escape_html(text)}</a></p>'


def load_logs(filters):
	conditions = {
		"creation": ("between", [getdate(filters.from_date or add_days(None, -30)), add_days(getdate(filters.to_date), 1)]),
		"outcome": ("!=", "Dry Run"),
	}
	for key in ("rule_type", "rule", "reference_doctype"):
		if filters.get(key):
			conditions[key] = filters[key]
	logs = frappe.get_all(
		"Automation Log",
		filters=conditions,
		fields=["name", "rule_type", "rule", "reference_doctype", "outcome", "duration_ms", "minutes_saved", "creation"],
		limit=None,
	)
	actions = frappe.get_all(
		"Automation Log Action",
		filters={"parent": ("in", [log.name for log in logs] or [""]), "parenttype": "Automation Log"},
		fields=["parent", "action_type", "status"],
		limit=None,
	)
	by_log = {}
	for action in actions:
		by_log.setdefault(action.parent, []).append(action)
	for log in logs:
		log.actions = by_log.get(log.name, [])
	return logs


def percentile(values, share):
	if not values:
		return 0
	ordered = sorted(values)
	return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def per_rule(logs):
	groups = {}
	for log in logs:
		groups.setdefault((log.rule_type, log.rule), []).append(log)
	rows = []
	for (rule_type, rule), items in sorted(groups.items(), key=lambda item: -len(item[1])):
		outcomes = [log.outcome for log in items]
		fired = sum(outcome in FIRED for outcome in outcomes)
		failed = outcomes.count("Failed")
		durations = [flt(log.duration_ms) for log in items]
		action_counts = {}
		for log in items:
			for action in log.actions:
				action_counts[action.action_type] = action_counts.get(action.action_type, 0) + 1
		rows.append(
			{
				"rule_type": rule_type,
				"rule": rule,
				"runs": len(items),
				"fired": fired,
				"skipped": outcomes.count("Skipped"),
				"failed": failed,
				"success_rate": (fired - failed) / fired * 100 if fired else None,
				"avg_ms": sum(durations) / len(durations) if durations else 0,
				"p95_ms": percentile(durations, 0.95),
				"actions": ", ".join(f"{kind} {count}" for kind, count in sorted(action_counts.items())),
				"minutes_saved": sum(flt(log.minutes_saved) for log in items),
			}
		)
	return rows


def columns():
	return [
		{"fieldname": "rule_type", "label": _("Rule Type"), "fieldtype": "Data", "width": 130},
		{"fieldname": "rule", "label": _("Rule"), "fieldtype": "Dynamic Link", "options": "rule_type", "width": 200},
		{"fieldname": "runs", "label": _("Runs"), "fieldtype": "Int", "width": 70},
		{"fieldname": "fired", "label": _("Fired"), "fieldtype": "Int", "width": 70},
		{"fieldname": "skipped", "label": _("Skipped"), "fieldtype": "Int", "width": 80},
		{"fieldname": "failed", "label": _("Failed"), "fieldtype": "Int", "width": 70},
		{"fieldname": "success_rate", "label": _("Success %"), "fieldtype": "Percent", "width": 90},
		{"fieldname": "avg_ms", "label": _("Avg ms"), "fieldtype": "Float", "precision": 1, "width": 80},
		{"fieldname": "p95_ms", "label": _("95th pct ms"), "fieldtype": "Float", "precision": 1, "width": 100},
		{"fieldname": "actions", "label": _("Actions by Type"), "fieldtype": "Data", "width": 260},
		{"fieldname": "minutes_saved", "label": _("Minutes Saved"), "fieldtype": "Float", "precision": 1, "width": 110},
	]


def hours_per_week(logs):
	weeks = {}
	for log in logs:
		day = getdate(log.creation)
		monday = add_days(day, -day.weekday())
		weeks[monday] = weeks.get(monday, 0) + flt(log.minutes_saved) / 60
	return dict(sorted(weeks.items()))


def chart(logs):
	weeks = hours_per_week(logs)
	return {
		"data": {"labels": [str(week) for week in weeks], "datasets": [{"name": _("Hours saved"), "values": [round(v, 2) for v in weeks.values()]}]},
		"type": "bar",
	}


def summary(logs, rows):
	fired = sum(row["fired"] for row in rows)
	failed = sum(row["failed"] for row in rows)
	most_skipped = max(rows, key=lambda row: row["skipped"], default=None)
	slowest = max(rows, key=lambda row: row["p95_ms"], default=None)
	return [
		{"label": _("Runs"), "value": len(logs), "datatype": "Int"},
		{"label": _("Success Rate"), "value": round((fired - failed) / fired * 100, 1) if fired else 0, "datatype": "Percent", "indicator": "Green" if not failed else "Orange"},
		{"label": _("Hours Saved"), "value": round(sum(row["minutes_saved"] for row in rows) / 60, 1), "datatype": "Float", "indicator": "Blue"},
		{"label": _("Failing Rules"), "value": sum(1 for row in rows if row["failed"]), "datatype": "Int", "indicator": "Red" if failed else "Green"},
		{"label": _("Most Skipped"), "value": most_skipped["rule"] if most_skipped and most_skipped["skipped"] else "-", "datatype": "Data"},
		{"label": _("Slowest (p95)"), "value": slowest["rule"] if slowest else "-", "datatype": "Data"},
	]


def before_after(filters):
	"""First response before and after each Issue escalation policy was switched on (30 days each
	side), and conversion rate by Lead score band: shown where the data exists."""
	parts = []
	for policy in frappe.get_all("Escalation Policy", filters={"document_type": "Issue"}, fields=["name", "creation"]):
		start = get_datetime(policy.creation)
		figures = []
		for label, low, high in ((_("before"), add_days(start, -30), start), (_("after"), start, add_days(start, 30))):
			row = frappe.db.sql(
				"""select count(*), avg(timestampdiff(minute, creation, first_responded_on))
				from `tabIssue` where creation >= %s and creation < %s and first_responded_on is not null""",
				(low, high),
			)[0]
			figures.append(
				_("{0}: {1} issues, {2} h to first response").format(label, row[0], f"{flt(row[1]) / 60:.1f}")
				if row[0]
				else _("{0}: no responded issues").format(label)
			)
		parts.append(f"<li>{frappe.bold(policy.name)}: {'; '.join(figures)}</li>")
	if frappe.db.has_column("Lead", "crm_score_grade"):
		bands = frappe.db.sql(
			"""select crm_score_grade, count(*), sum(status in ('Opportunity', 'Quotation', 'Converted'))
			from `tabLead` where crm_score_grade is not null group by crm_score_grade"""
		)
		for grade, total, converted in bands:
			share = f"{flt(converted) / total * 100:.0f}"
			line = _("Leads graded {0}: {1} / {2} converted ({3}%)").format(
				frappe.bold(grade), int(converted or 0), total, share
			)
			parts.append(f"<li>{line}</li>")
	return f"<ul>{''.join(parts)}</ul>" if parts else None
