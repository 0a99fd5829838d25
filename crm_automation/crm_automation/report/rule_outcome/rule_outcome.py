# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

"""Does a rule change the outcome? Its hold-out (or split) groups side by side on an outcome the
user picks, with the difference, its 95 % interval and a verdict in words (crm_automation/outcomes:
measures.py reads the outcome as the asker may, statistics.py tests it with statsmodels). Without a
rule: every rule with a hold-out or split and its current verdict on its default outcome."""

import frappe
from frappe import _
from frappe.utils import escape_html

from crm_automation.outcomes.rule_outcome import compare_rule, current_verdicts


def execute(filters=None):
	filters = frappe._dict(filters or {})
	if not filters.rule:
		return overview()
	groups, sentences, measure = compare_rule(
		filters.rule, filters.outcome, filters.field, filters.value, bool(filters.lower_is_better)
	)
	rows = [row(group, measure) for group in groups]
	message = "".join(f"<p>{escape_html(sentence)}</p>" for sentence in sentences)
	return columns(measure), rows, message


def overview():
	cols = [
		{
			"fieldname": "rule",
			"label": _("Rule"),
			"fieldtype": "Link",
			"options": "Workflow Rule",
			"width": 220,
		},
		{
			"fieldname": "document_type",
			"label": _("Document Type"),
			"fieldtype": "Link",
			"options": "DocType",
			"width": 120,
		},
		{"fieldname": "outcome", "label": _("Outcome"), "fieldtype": "Data", "width": 140},
		{"fieldname": "verdict", "label": _("Verdict"), "fieldtype": "Data", "width": 640},
	]
	# Frappe shows a Data cell as HTML: a verdict names branches and fields the authors typed.
	return cols, [{**row, "verdict": escape_html(row.verdict)} for row in current_verdicts()]


def columns(measure):
	value_label = _("Rate (%)") if measure.kind == "proportion" else _("Mean")
	cols = [
		{"fieldname": "group", "label": _("Group"), "fieldtype": "Data", "width": 140},
		{"fieldname": "documents", "label": _("Documents"), "fieldtype": "Int", "width": 100},
	]
	if measure.kind == "proportion":
		cols.append({"fieldname": "successes", "label": _("Successes"), "fieldtype": "Int", "width": 100})
	return [
		*cols,
		{"fieldname": "value", "label": value_label, "fieldtype": "Float", "precision": 1, "width": 100},
		{
			"fieldname": "difference",
			"label": _("Difference"),
			"fieldtype": "Float",
			"precision": 1,
			"width": 110,
		},
		{
			"fieldname": "ci_low",
			"label": _("95 % CI From"),
			"fieldtype": "Float",
			"precision": 1,
			"width": 110,
		},
		{
			"fieldname": "ci_high",
			"label": _("95 % CI To"),
			"fieldtype": "Float",
			"precision": 1,
			"width": 110,
		},
		{"fieldname": "p_value", "label": _("p-value"), "fieldtype": "Float", "precision": 4, "width": 90},
		{"fieldname": "verdict", "label": _("Verdict"), "fieldtype": "Data", "width": 160},
		{"fieldname": "test", "label": _("Test"), "fieldtype": "Data", "width": 200},
	]


def row(group, measure):
	# Rates in percent and differences in points; means and their differences in the measure's unit.
	scale = 100 if measure.kind == "proportion" else measure.scale
	result = {
		"group": escape_html(_(group.group)),
		"documents": group.documents,
		"successes": group.get("successes"),
		"value": group.value * scale,
	}
	comparison = group.comparison
	if comparison is not None:
		factor = 100 if measure.kind == "proportion" else 1
		result.update(
			difference=None if comparison.difference is None else comparison.difference * factor,
			ci_low=None if comparison.ci_low is None else comparison.ci_low * factor,
			ci_high=None if comparison.ci_high is None else comparison.ci_high * factor,
			p_value=comparison.p_value,
			verdict=_(comparison.verdict),
			test=_(comparison.test),
		)
	return result
