"""The values a rule reads from linked documents, fetched once per evaluation.

A compiled rule lists the linked paths its conditions read (``rule.linked_paths``, see
engine/linked.py). Before evaluating, the runner fetches them all in one go: one query per linked
document, whatever the number of leaves or rules reading it. The values are read as the system
reads a fetch_from field: a condition may test the customer's territory even when the user who
saved the order cannot open the customer.
"""

from collections import ChainMap

import frappe

from crm_automation.engine.linked_paths import fetch_linked_values, linked_paths_of

__all__ = ["evaluation_values", "field_values", "linked_paths_of", "load_linked", "with_linked_values"]


def load_linked(doctype, name, fieldnames):
	if not frappe.db.exists(doctype, name):
		return None
	meta = frappe.get_meta(doctype)
	columns = [f for f in fieldnames if f == "name" or f == "owner" or meta.has_field(f)]
	return frappe.db.get_value(doctype, name, columns, as_dict=True) if columns else {}


def with_linked_values(values, before_values, linked_paths):
	"""(values, before_values) with the linked paths filled in. The document before the save sees
	the linked documents as they are now: their earlier state is not known."""
	if not linked_paths or values is None:
		return values, before_values
	found = fetch_linked_values(values, linked_paths, load_linked)
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


def evaluation_values(doc, before, rules):
	"""(values, before values) for evaluating ``rules``: the documents' own dicts, plus the linked
	values the rules read, fetched once for all of them (above)."""
	return with_linked_values(field_values(doc), field_values(before), linked_paths_of(rules))
