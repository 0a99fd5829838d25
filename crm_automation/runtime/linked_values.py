"""The values a rule reads from linked documents, fetched once per evaluation.

A compiled rule lists the linked paths its conditions read (``rule.linked_paths``, see
engine/linked.py). Before evaluating, the runner fetches them all in one go: one query per linked
document, whatever the number of leaves or rules reading it. The values are read as the rule's
run-as user may read them: a linked document that user may not read reads as missing, and its
fields above that user's permission levels are not given (field_access.py). Who saved the order
does not matter: a condition may test the customer's territory even when that person cannot open
the customer.
"""

from collections import ChainMap

import frappe

from crm_automation.engine.linked_paths import fetch_linked_values, linked_paths_of
from crm_automation.trust.field_access import ReadableView, hidden_fields, may_read_record
from crm_automation.trust.roles import is_system_manager

__all__ = [
	"evaluation_values",
	"field_values",
	"linked_paths_of",
	"linked_values_as",
	"load_linked",
	"load_linked_as",
	"readable_view_of",
	"with_linked_values",
]


def load_linked(doctype, name, fieldnames):
	if not frappe.db.exists(doctype, name):
		return None
	meta = frappe.get_meta(doctype)
	columns = [f for f in fieldnames if f == "name" or f == "owner" or meta.has_field(f)]
	return frappe.db.get_value(doctype, name, columns, as_dict=True) if columns else {}


def load_linked_as(user):
	"""The load of fetch_linked_values for `user`: only documents that user may read, and of them
	only the fields at the user's permission levels; a missing and a forbidden document both read
	as None. Without a user (or for a System Manager) documents are read as the system reads them."""
	if not user or is_system_manager(user):
		return load_linked

	def load(doctype, name, fieldnames):
		if not frappe.db.exists(doctype, name):
			return None
		# Frappe's document cache, which a save or set_value of the record clears.
		record = frappe.get_cached_doc(doctype, name)
		if not may_read_record(record, user):
			return None
		hidden, meta = hidden_fields(doctype, user).own, record.meta
		return {
			f: record.get(f)
			for f in fieldnames
			if f not in hidden and (f == "name" or f == "owner" or meta.has_field(f))
		}

	return load


def linked_values_as(values, linked_paths, user=None):
	"""{path: value} of `linked_paths` for the document `values`, as `user` may read them."""
	return fetch_linked_values(values, linked_paths, load_linked_as(user))


def with_linked_values(values, before_values, linked_paths, user=None):
	"""(values, before_values) with the linked paths filled in, as `user` may read them (see
	load_linked_as). The document before the save sees the linked documents as they are now: their
	earlier state is not known."""
	if not linked_paths or values is None:
		return values, before_values
	found = linked_values_as(values, linked_paths, user)
	# Views, not copies: a value an earlier rule sets on the document is seen by the next rule.
	values = ChainMap(found, values)
	if before_values is not None:
		before_values = ChainMap(found, before_values)
	return values, before_values


def field_values(doc):
	"""The plain dict the engine reads: a Document's own attributes, or a dict as it is."""
	if doc is None or isinstance(doc, dict):
		return doc
	return doc.__dict__


def evaluation_values(doc, before, rules, user=None):
	"""(values, before values) for evaluating ``rules``: the documents' own dicts, plus the linked
	values the rules read, fetched once for all of them (above). With ``user``: as that user may
	read them, fields above their permission levels absent (trust/field_access.py)."""
	own, own_before = field_values(doc), field_values(before)
	if user is None:
		return with_linked_values(own, own_before, linked_paths_of(rules))
	hidden = hidden_fields(doc.doctype, user)
	if hidden:
		own, own_before = readable_view_of(own, hidden), readable_view_of(own_before, hidden)
	return with_linked_values(own, own_before, linked_paths_of(rules), user)


def readable_view_of(values, hidden):
	return None if values is None else ReadableView(values, hidden)
