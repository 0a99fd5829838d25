# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

"""For each criterion of a Lead Score Rule: how often documents that met it converted, against those
that did not. The lift (ratio of the two rates) tells an administrator which points to raise or cut."""

import frappe
from frappe import _

from crm_automation.scoring import compile_score_rule_doc
from crm_automation.trust.field_access import readable_view

BATCH = 5000


def execute(filters=None):
	filters = frappe._dict(filters or {})
	if not filters.rule:
		return columns(), []
	rule = compile_score_rule_doc(frappe.get_doc("Lead Score Rule", filters.rule))
	stats = criterion_stats(rule)
	data = [row for row in stats]
	chart = {
		"data": {"labels": [r["criterion"] for r in data], "datasets": [{"name": _("Lift"), "values": [r["lift"] or 0 for r in data]}]},
		"type": "bar",
	}
	return columns(), data, None, chart


def columns():
	return [
		{"fieldname": "criterion", "label": _("Criterion"), "fieldtype": "Data", "width": 220},
		{"fieldname": "points", "label": _("Points"), "fieldtype": "Float", "width": 80},
		{"fieldname": "met", "label": _("Met"), "fieldtype": "Int", "width": 80},
		{"fieldname": "met_converted_rate", "label": _("Converted When Met %"), "fieldtype": "Percent", "width": 170},
		{"fieldname": "not_met", "label": _("Not Met"), "fieldtype": "Int", "width": 90},
		{"fieldname": "not_met_converted_rate", "label": _("Converted When Not Met %"), "fieldtype": "Percent", "width": 190},
		{"fieldname": "lift", "label": _("Lift"), "fieldtype": "Float", "width": 80},
	]


def converted_names(doctype, names):
	"""Which documents converted: a Lead that became an Opportunity or Customer (or is marked so),
	an Opportunity that was converted, a Customer that ordered."""
	if doctype == "Lead":
		converted = set(
			frappe.get_all("Lead", filters={"name": ("in", names), "status": ("in", ("Opportunity", "Quotation", "Converted"))}, pluck="name")
		)
		converted |= set(frappe.get_all("Opportunity", filters={"opportunity_from": "Lead", "party_name": ("in", names)}, pluck="party_name"))
		converted |= set(frappe.get_all("Customer", filters={"lead_name": ("in", names)}, pluck="lead_name"))
		return converted
	if doctype == "Opportunity":
		return set(frappe.get_all("Opportunity", filters={"name": ("in", names), "status": "Converted"}, pluck="name"))
	return set(frappe.get_all("Sales Order", filters={"customer": ("in", names), "docstatus": 1}, pluck="customer"))


def criterion_stats(rule):
	fields = sorted({"name", *rule.fields})
	counts = [{"met": 0, "met_converted": 0, "not_met": 0, "not_met_converted": 0} for _ in rule.criteria]
	last = ""
	while True:
		# The reader's records and fields only: counts over criteria on other records or on fields
		# above their levels told a manager those values (a criterion naming one record is met 0 or 1).
		rows = frappe.get_list(rule.document_type, filters={"name": (">", last)}, fields=fields, order_by="name asc", limit=BATCH)
		if not rows:
			break
		last = rows[-1]["name"]
		converted = converted_names(rule.document_type, [r["name"] for r in rows])
		for row in rows:
			is_converted = row["name"] in converted
			shown = readable_view(row, rule.document_type, frappe.session.user)
			for criterion, count in zip(rule.criteria, counts, strict=True):
				key = "met" if criterion.condition.matches(shown, None) else "not_met"
				count[key] += 1
				count[f"{key}_converted"] += int(is_converted)
	result = []
	for criterion, count in zip(rule.criteria, counts, strict=True):
		met_rate = count["met_converted"] / count["met"] * 100 if count["met"] else None
		not_rate = count["not_met_converted"] / count["not_met"] * 100 if count["not_met"] else None
		lift = round(met_rate / not_rate, 2) if met_rate is not None and not_rate else None
		result.append(
			{
				"criterion": criterion.label,
				"points": criterion.points,
				"met": count["met"],
				"met_converted_rate": met_rate,
				"not_met": count["not_met"],
				"not_met_converted_rate": not_rate,
				"lift": lift,
			}
		)
	return result
