"""What the desk offers for linked documents: fields of linked documents and child-table aggregates
for the condition builder, and the pickers of the action form (phone fields, contact sources,
linked documents an action may target). Paths and aggregates are the engine's (engine/linked.py).
"""

import frappe
from frappe import _

from crm_automation.engine.fieldtypes import UNSUPPORTED, is_numeric, kind_of
from crm_automation.engine.linked_paths import AGGREGATES
from crm_automation.engine.operators import describe_operators, get_operator
from crm_automation.engine.sms import CONTACT_OF_SELF, is_phone_field
from crm_automation.runtime.workflow_rules import EXCLUDED_DOCTYPES

# Link fields every document has or that lead to system records, not to business documents.
_SKIPPED_LINKS = frozenset({"owner", "modified_by", "amended_from", "naming_series"})
# A Dynamic Link names its type in another field; these are the party types CRM rules follow.
PARTY_TYPES = ("Customer", "Lead", "Prospect", "Supplier")
MAX_LINKED_DOCTYPES = 40


def _label(df):
	return _(df.label or df.fieldname)


def _operators(fieldtype):
	# The linked document's earlier value is not known: no "changed" operators.
	return [o for o in describe_operators(fieldtype) if not get_operator(o["operator"]).needs_before]


def link_hops(meta):
	"""(path prefix, label, doctype) for every Link (and party Dynamic Link) of a document type."""
	hops = []
	for df in meta.fields:
		if df.fieldname in _SKIPPED_LINKS or not df.fieldname:
			continue
		if (
			df.fieldtype == "Link"
			and df.options
			and df.options not in EXCLUDED_DOCTYPES
			and df.options != "DocType"
		):
			hops.append((df.fieldname, _label(df), df.options))
		elif df.fieldtype == "Dynamic Link":
			for doctype in PARTY_TYPES:
				hops.append((f"{df.fieldname}[{doctype}]", f"{_label(df)} ({_(doctype)})", doctype))
	return hops


@frappe.whitelist()
def get_linked_condition_fields(doctype: str):
	"""Fields of linked documents (one Link away) and aggregates of child tables, each with its
	label, fieldtype and the operators that fit: what the condition builder adds to its list."""
	frappe.has_permission("Workflow Rule", "read", throw=True)
	meta = frappe.get_meta(doctype)
	entries = []
	for prefix, label, linked_doctype in link_hops(meta)[:MAX_LINKED_DOCTYPES]:
		if not frappe.db.exists("DocType", linked_doctype):
			continue
		linked_meta = frappe.get_meta(linked_doctype)
		if linked_meta.istable:
			continue
		for df in linked_meta.fields:
			if not df.fieldname or kind_of(df.fieldtype) == UNSUPPORTED:
				continue
			entries.append(
				{
					"fieldname": f"{prefix}.{df.fieldname}",
					"label": f"{label} › {_label(df)}",
					"fieldtype": df.fieldtype,
					"options": df.options,
					"group": label,
					"operators": _operators(df.fieldtype),
				}
			)
	for table in meta.get_table_fields():
		entries.extend(_aggregates(table))
	return entries


def _aggregates(table):
	label = _label(table)
	entries = [
		{
			"fieldname": table.fieldname,
			"agg": "count",
			"label": _("Number of {0}").format(label),
			"fieldtype": "Int",
			"group": label,
			"operators": _operators("Int"),
		}
	]
	for df in frappe.get_meta(table.options).fields:
		kind = kind_of(df.fieldtype)
		if not df.fieldname or kind == UNSUPPORTED:
			continue
		aggs = ["any", "all"] + (["sum"] if is_numeric(kind) else [])
		for agg in aggs:
			entries.append(
				{
					"fieldname": f"{table.fieldname}.{df.fieldname}",
					"agg": agg,
					"label": _AGG_LABELS[agg](label, _label(df)),
					"fieldtype": df.fieldtype,
					"options": df.options,
					"group": label,
					"operators": _operators(df.fieldtype),
				}
			)
	return entries


_AGG_LABELS = {
	"any": lambda table, field: _("Any row of {0}: {1}").format(table, field),
	"all": lambda table, field: _("Every row of {0}: {1}").format(table, field),
	"sum": lambda table, field: _("Sum of {0}: {1}").format(table, field),
}
assert set(_AGG_LABELS) | {"count"} == set(AGGREGATES)


@frappe.whitelist()
def get_action_pickers(doctype: str):
	"""Options of the action form's pickers for this document type."""
	frappe.has_permission("Workflow Rule", "read", throw=True)
	meta = frappe.get_meta(doctype)
	fields = {
		df.fieldname: {"fieldtype": df.fieldtype, "options": df.options} for df in meta.fields if df.fieldname
	}
	phone = [
		{"value": df.fieldname, "label": f"{_label(df)} ({df.fieldname})"}
		for df in meta.fields
		if df.fieldname and is_phone_field(df.fieldname, fields[df.fieldname])
	]
	hops = [(prefix, label, linked) for prefix, label, linked in link_hops(meta) if linked != "User"]
	targets = [{"value": prefix, "label": f"{label} ({prefix})"} for prefix, label, _linked in hops]
	contact_of = [{"value": CONTACT_OF_SELF, "label": _("This Document")}] + [
		option
		for option, (_prefix, _label_text, linked) in zip(targets, hops, strict=True)
		if linked in PARTY_TYPES
	]
	users = [
		{"value": f"{prefix}.{df.fieldname}", "label": f"{label} › {_label(df)} ({prefix}.{df.fieldname})"}
		for prefix, label, linked in hops
		if frappe.db.exists("DocType", linked) and not frappe.get_meta(linked).istable
		for df in frappe.get_meta(linked).fields
		if df.fieldtype == "Link" and df.options == "User" and df.fieldname not in _SKIPPED_LINKS
	]
	return {
		"phone_fields": phone,
		"link_targets": targets,
		"contact_of": contact_of,
		"linked_user_fields": users,
	}
