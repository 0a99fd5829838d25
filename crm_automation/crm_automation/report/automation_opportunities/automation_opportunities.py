# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

"""Repeated manual work found in the site's history (Version, ToDo, Communication, Comment), each
pattern with its support, confidence, people and hours saved per week, and the rule that would do
it (created disabled from the report's Create Rule button)."""

import json

import frappe
from frappe import _

from crm_automation.mining.opportunities import find_opportunities


def execute(filters=None):
	filters = frappe._dict(filters or {})
	report = find_opportunities(
		doctypes=filters.get("doctypes"),
		days=filters.get("days") or 90,
		min_support=filters.get("min_support"),
		min_confidence=filters.get("min_confidence"),
	)
	return columns(), rows(report), message(report), None, summary(report)


def columns():
	return [
		{"fieldname": "pattern", "label": _("Pattern"), "fieldtype": "Data", "width": 420},
		{
			"fieldname": "document_type",
			"label": _("Document Type"),
			# Data, not a Link to DocType: the desk would check the reader's rights on DocType itself
			"fieldtype": "Data",
			"width": 120,
		},
		{"fieldname": "action_type", "label": _("Action"), "fieldtype": "Data", "width": 110},
		{"fieldname": "support", "label": _("Support"), "fieldtype": "Int", "width": 80},
		{"fieldname": "observed", "label": _("Condition Held"), "fieldtype": "Int", "width": 110},
		{"fieldname": "confidence", "label": _("Confidence"), "fieldtype": "Percent", "width": 100},
		{"fieldname": "people", "label": _("Done By"), "fieldtype": "Data", "width": 220},
		{
			"fieldname": "hours_per_week",
			"label": _("Hours Saved per Week"),
			"fieldtype": "Float",
			"precision": 2,
			"width": 150,
		},
		{"fieldname": "create_rule", "label": _("Rule"), "fieldtype": "Data", "width": 110},
		{"fieldname": "rule_json", "label": _("Proposed Rule"), "fieldtype": "Code", "hidden": 1},
		{"fieldname": "proposal_id", "label": _("Pattern ID"), "fieldtype": "Data", "hidden": 1},
		{"fieldname": "problems", "label": _("Problems"), "fieldtype": "Data", "width": 200},
	]


def rows(report):
	return [
		{
			"pattern": _with_alternatives(proposal),
			"document_type": proposal["doctype"],
			"action_type": _(proposal["action_type"]),
			"support": proposal["support"],
			"observed": proposal["observed"],
			"confidence": round(proposal["confidence"] * 100, 1),
			"people": ", ".join(f"{person['user']} ({person['count']})" for person in proposal["people"][:5]),
			"hours_per_week": proposal["hours_per_week"],
			"create_rule": _("Create Rule") if not proposal["problems"] else "",
			"rule_json": json.dumps(proposal["rule"], ensure_ascii=False),
			"proposal_id": proposal["id"],
			"problems": "; ".join(proposal["problems"]),
		}
		for proposal in report["proposals"]
	]


def _with_alternatives(proposal):
	alternatives = ", ".join(f"{a['field']} = {a['value']}" for a in proposal.get("alternatives") or ())
	if not alternatives:
		return proposal["summary"]
	return _("{0}; the same documents: {1}").format(proposal["summary"], alternatives)


def message(report):
	parts = []
	if report["refused_doctypes"]:
		parts.append(
			_("Not analysed (you may not read them): {0}").format(", ".join(report["refused_doctypes"]))
		)
	for doctype in report.get("untracked_doctypes") or ():
		parts.append(
			_(
				"Field changes of {0} are not recorded (Track Changes is off in its Customize Form): no field patterns for it until it is on."
			).format(_(doctype))
		)
	if report["excluded"]:
		left_out = ", ".join(f"{count} {kind}" for kind, count in sorted(report["excluded"].items()))
		parts.append(_("Left out as automation or data import: {0}").format(left_out))
	return "<br>".join(frappe.utils.escape_html(part) for part in parts) or None


def summary(report):
	return [
		{"label": _("Documents Analysed"), "value": sum(report["documents"].values()), "datatype": "Int"},
		{
			"label": _("Patterns Found"),
			"value": len(report["proposals"]),
			"datatype": "Int",
			"indicator": "Blue",
		},
		{
			"label": _("Hours Saved per Week"),
			"value": round(sum(p["hours_per_week"] for p in report["proposals"]), 2),
			"datatype": "Float",
			"indicator": "Green",
		},
	]
