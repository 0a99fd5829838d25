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
from crm_automation.trust.field_access import hidden_fields
from crm_automation.trust.protected_doctypes import is_protected
from crm_automation.trust.roles import is_system_manager

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


def picker_meta(doctype):
	"""The meta of a doctype the asker may offer in a rule's pickers. The pickers listed every field
	(level 5 included) of any doctype (User, Server Script...), which told a manager the schema of
	what they may not read and offered fields the rule's save then refuses. A doctype they may not
	read, or a protected one, gets one answer whether it exists or not."""
	user = frappe.session.user
	if isinstance(doctype, str) and doctype and frappe.db.exists("DocType", doctype):
		meta = frappe.get_meta(doctype)
		if is_system_manager(user) or (
			not is_protected(doctype) and (meta.istable or frappe.has_permission(doctype, "read", user=user))
		):
			return meta
	frappe.throw(
		_("{0} was not found, or you may not read it").format(
			frappe.bold(frappe.utils.escape_html(str(doctype)))
		),
		frappe.PermissionError,
	)


def readable_fields(meta):
	"""The fields of `meta` the asker may read (permission levels; child tables by their own)."""
	hidden = hidden_fields(meta.name, frappe.session.user)
	return [df for df in meta.fields if df.fieldname and not hidden.hides(df.fieldname)]


def _may_read_linked(doctype):
	return is_system_manager(frappe.session.user) or (
		not is_protected(doctype) and frappe.has_permission(doctype, "read")
	)


@frappe.whitelist()
def get_linked_condition_fields(doctype: str):
	"""Fields of linked documents (one Link away) and aggregates of child tables, each with its
	label, fieldtype and the operators that fit: what the condition builder adds to its list."""
	frappe.has_permission("Workflow Rule", "read", throw=True)
	meta = picker_meta(doctype)
	own = {df.fieldname for df in readable_fields(meta)}
	entries = []
	for prefix, label, linked_doctype in link_hops(meta)[:MAX_LINKED_DOCTYPES]:
		if prefix.split("[")[0] not in own or not frappe.db.exists("DocType", linked_doctype):
			continue
		linked_meta = frappe.get_meta(linked_doctype)
		# The rule's save refuses a path through a doctype its user may not read: not offered.
		if linked_meta.istable or not _may_read_linked(linked_doctype):
			continue
		for df in readable_fields(linked_meta):
			if kind_of(df.fieldtype) == UNSUPPORTED:
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
	hidden = hidden_fields(meta.name, frappe.session.user)
	for table in meta.get_table_fields():
		if table.fieldname in own:
			entries.extend(_aggregates(table, hidden.tables.get(table.fieldname, ())))
	return entries


def _aggregates(table, hidden=()):
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
		if not df.fieldname or kind == UNSUPPORTED or df.fieldname in hidden:
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
	meta = picker_meta(doctype)
	readable = readable_fields(meta)
	own = {df.fieldname for df in readable}
	fields = {df.fieldname: {"fieldtype": df.fieldtype, "options": df.options} for df in readable}
	phone = [
		{"value": df.fieldname, "label": f"{_label(df)} ({df.fieldname})"}
		for df in readable
		if is_phone_field(df.fieldname, fields[df.fieldname])
	]
	hops = [
		(prefix, label, linked)
		for prefix, label, linked in link_hops(meta)
		if linked != "User" and prefix.split("[")[0] in own
	]
	targets = [{"value": prefix, "label": f"{label} ({prefix})"} for prefix, label, _linked in hops]
	contact_of = [{"value": CONTACT_OF_SELF, "label": _("This Document")}] + [
		option
		for option, (_prefix, _label_text, linked) in zip(targets, hops, strict=True)
		if linked in PARTY_TYPES
	]
	users = [
		{"value": f"{prefix}.{df.fieldname}", "label": f"{label} › {_label(df)} ({prefix}.{df.fieldname})"}
		for prefix, label, linked in hops
		if frappe.db.exists("DocType", linked)
		and not frappe.get_meta(linked).istable
		and _may_read_linked(linked)
		for df in readable_fields(frappe.get_meta(linked))
		if df.fieldtype == "Link" and df.options == "User" and df.fieldname not in _SKIPPED_LINKS
	]
	return {
		"phone_fields": phone,
		"link_targets": targets,
		"contact_of": contact_of,
		"linked_user_fields": users,
	}
