"""A document as a rule's run-as user may read it, field by field.

Conditions, Advanced Conditions, templates, webhook payloads, Create Document mappings, linked-field
reads and log traces see the document as Frappe's own get_doc shows it to that user
(Document.apply_fieldlevel_read_permissions): a field at a permission level the user has no read
right on is absent (its key removed, not emptied), and so is a field of a child row at such a level.
Administrator and System Managers see every field, as before.

What a user may not read is worked out once per (doctype, user) and kept on the doctype's Meta,
tagged with the user's roles. Frappe drops a Meta when the DocType, its fields, its child tables or
its permissions change (frappe.clear_cache), and a change of roles changes the tag, so nothing here
outlives what Frappe itself caches. A doctype without fields above level 0 (most of them) costs one
attribute lookup on its Meta and nothing else.
"""

from collections.abc import Mapping

import frappe
from frappe.model.base_document import BaseDocument

from crm_automation.trust.roles import is_system_manager

_LEVELS = "_crm_automation_high_levels"
_HIDDEN = "_crm_automation_hidden_by_user"


class Hidden:
	"""The fields one user may not read of one doctype: ``own`` fieldnames, and ``tables`` mapping a
	table field to the fieldnames of its rows. False when nothing is hidden."""

	__slots__ = ("own", "tables")

	def __init__(self, own=frozenset(), tables=None):
		self.own = own
		self.tables = tables or {}

	def __bool__(self):
		return bool(self.own or self.tables)

	def hides(self, fieldname, table=None):
		if table:
			return fieldname in self.tables.get(table, ())
		return fieldname in self.own


NOTHING = Hidden()


def _high_levels(meta):
	"""({fieldname: permlevel}, {table field: {fieldname: permlevel}}) of the fields above level 0,
	or None when there are none; kept on the Meta (Frappe drops it when any of these change)."""
	levels = getattr(meta, _LEVELS, False)
	if levels is not False:
		return levels
	own = {df.fieldname: df.permlevel for df in meta.fields if df.fieldname and (df.permlevel or 0) > 0}
	tables = {}
	for table in meta.get_table_fields():
		child = frappe.get_meta(table.options)
		high = {df.fieldname: df.permlevel for df in child.fields if df.fieldname and (df.permlevel or 0) > 0}
		if high:
			tables[table.fieldname] = high
	levels = (own, tables) if own or tables else None
	setattr(meta, _LEVELS, levels)
	return levels


def fields_above_level_zero(doctype):
	"""The doctype's own fields some user may be unable to read (permission level above 0)."""
	levels = _high_levels(frappe.get_meta(doctype))
	return frozenset(levels[0]) if levels else frozenset()


def hidden_fields(doctype, user):
	"""What `user` may not read of `doctype` (a Hidden; false when nothing is)."""
	meta = frappe.get_meta(doctype)
	levels = _high_levels(meta)
	if levels is None or is_system_manager(user):
		return NOTHING
	roles = frozenset(frappe.get_roles(user))
	by_user = getattr(meta, _HIDDEN, None)
	if by_user is None:
		by_user = {}
		setattr(meta, _HIDDEN, by_user)
	known = by_user.get(user)
	if known is not None and known[0] == roles:
		return known[1]
	# Child rows are read by the parent's levels, which is what Frappe's answer for the parent gives.
	readable = set(meta.get_permlevel_access("read", user=user))
	own, tables = levels
	hidden = Hidden(
		frozenset(fieldname for fieldname, level in own.items() if level not in readable),
		{
			table: frozenset(fieldname for fieldname, level in fields.items() if level not in readable)
			for table, fields in tables.items()
			if any(level not in readable for level in fields.values())
		},
	)
	by_user[user] = (roles, hidden if hidden else NOTHING)
	return by_user[user][1]


def readable_values(values, doctype, user):
	"""`values` (a dict of a document's values; child rows as dicts or Documents) without the fields
	`user` may not read: a new dict, or `values` itself when nothing is hidden."""
	if values is None:
		return None
	hidden = hidden_fields(doctype, user)
	if not hidden:
		return values
	return without_hidden(values, hidden)


def without_hidden(values, hidden):
	shown = {}
	for key, value in values.items():
		if key in hidden.own:
			continue
		row_hidden = hidden.tables.get(key)
		if row_hidden and isinstance(value, list | tuple):
			value = [_row_without(row, row_hidden) for row in value]
		shown[key] = value
	return shown


def _row_without(row, hidden):
	if isinstance(row, BaseDocument):
		row = row.as_dict(no_nulls=False)
	if not isinstance(row, Mapping):
		return row
	return {key: value for key, value in row.items() if key not in hidden}


class ReadableView(Mapping):
	"""A live view of a document's values without the hidden fields. Live, not a copy: a value an
	earlier rule sets on the document is seen by the next rule, as through the document itself."""

	__slots__ = ("_hidden", "_values")

	def __init__(self, values, hidden):
		self._values = values
		self._hidden = hidden

	def __getitem__(self, key):
		hidden = self._hidden
		if key in hidden.own:
			raise KeyError(key)
		value = self._values[key]
		row_hidden = hidden.tables.get(key)
		if row_hidden and value and isinstance(value, list | tuple):
			return [ReadableView(_values_of(row), Hidden(row_hidden)) for row in value]
		return value

	def get(self, key, default=None):
		try:
			return self[key]
		except KeyError:
			return default

	def __contains__(self, key):
		return key not in self._hidden.own and key in self._values

	def __iter__(self):
		own = self._hidden.own
		return (key for key in self._values if key not in own)

	def __len__(self):
		return sum(1 for _key in self)


def _values_of(row):
	return row if isinstance(row, Mapping) else getattr(row, "__dict__", {})


def readable_view(values, doctype, user):
	"""`values` as `user` may read them (a ReadableView), or `values` itself when nothing is hidden."""
	if values is None:
		return None
	hidden = hidden_fields(doctype, user)
	return ReadableView(values, hidden) if hidden else values


def may_read_record(doc, user):
	"""Whether `user` may read this document (roles, User Permissions, shares, owner-only rights), as
	Frappe's has_permission answers; Administrator and System Managers read every document."""
	if is_system_manager(user):
		return True
	return frappe.has_permission(doc.doctype, "read", doc=doc, user=user, throw=False)


def may_read_doctype(doctype, user):
	return is_system_manager(user) or frappe.has_permission(doctype, "read", user=user, throw=False)
