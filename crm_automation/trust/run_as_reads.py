"""What `get_value(doctype, name, fieldname)` reads on a site: only what the run-as user may read.

A rule's conditions and templates run while someone else saves a document, often in a background
job as Administrator, so every read is checked against the rule's run-as user: the doctype must not
be protected (unless that user is a System Manager) nor a child table, the field must exist, not be
a Password, and sit at a permlevel the user may read; the record must be one the user may read
(roles, user permissions, shares). A missing and a forbidden record both read as None.

The user is set around whatever renders or evaluates for a rule (`reading_as`); outside of that,
reads run as Guest, who may read nothing, so a forgotten wrapper fails closed.
"""

from contextlib import contextmanager

import frappe
from frappe import _
from frappe.model import default_fields
from frappe.utils import escape_html

from crm_automation.engine.reads import READ_HELPER, ReadRefused
from crm_automation.trust import protected_doctypes
from crm_automation.trust.roles import is_system_manager

_READ_AS = "crm_automation_read_as"


@contextmanager
def reading_as(user):
	"""Reads made by templates and conditions inside this block are checked against `user`."""
	previous = getattr(frappe.local, _READ_AS, None)
	setattr(frappe.local, _READ_AS, user)
	try:
		yield
	finally:
		setattr(frappe.local, _READ_AS, previous)


def current_reader():
	return reader_for(reading_user())


def reading_user():
	"""The user the current template or condition reads as (Guest outside of `reading_as`)."""
	return getattr(frappe.local, _READ_AS, None) or "Guest"


def reader_for(user):
	"""The `read(doctype, name, fieldname)` engine/reads.py calls, reading as `user`."""

	def read(doctype, name, fieldname):
		meta = readable_meta(doctype, user)
		check_readable_field(meta, fieldname, user)
		if isinstance(name, dict):
			for field in name:
				check_readable_field(meta, field, user)
			rows = frappe.get_list(
				doctype, filters=name, fields=[fieldname], limit_page_length=1, user=user, as_list=True
			)
			return rows[0][0] if rows else None
		if not frappe.db.exists(doctype, name):
			return None
		doc = frappe.get_doc(doctype, name)
		if not frappe.has_permission(doctype, "read", doc=doc, user=user, throw=False):
			return None
		return doc.get(fieldname)

	return read


def readable_meta(doctype, user):
	"""The meta of a doctype `user`'s rules may read from, or ReadRefused naming the doctype."""
	if not frappe.db.exists("DocType", doctype):
		raise ReadRefused(_("{0}: there is no document type {1}").format(READ_HELPER, _shown(doctype)))
	if protected_doctypes.is_protected(doctype) and not is_system_manager(user):
		raise ReadRefused(
			_("{0}: {1} is a protected doctype; only rules running as a System Manager may read it").format(
				READ_HELPER, _shown(doctype)
			)
		)
	meta = frappe.get_meta(doctype)
	if meta.istable:
		raise ReadRefused(
			_("{0}: {1} is a child table; read its rows through the document they belong to").format(
				READ_HELPER, doctype
			)
		)
	if not frappe.has_permission(doctype, "read", user=user, throw=False):
		raise ReadRefused(_("{0}: {1} may not read {2}").format(READ_HELPER, user, _shown(doctype)))
	return meta


def check_readable_field(meta, fieldname, user):
	"""A field of `meta` that `user` may read: not a Password, at a readable permlevel."""
	if fieldname in default_fields and fieldname not in ("parent", "parentfield", "parenttype"):
		return
	field = meta.get_field(fieldname)
	if field is None:
		raise ReadRefused(_("{0}: {1} has no field {2}").format(READ_HELPER, meta.name, _shown(fieldname)))
	if field.fieldtype == "Password":
		raise ReadRefused(
			_("{0}: {1} is a password and cannot be read").format(READ_HELPER, _shown(fieldname))
		)
	if fieldname not in meta.get_permitted_fieldnames(user=user):
		raise ReadRefused(
			_("{0}: {1} may not read the field {2} of {3}").format(
				READ_HELPER, user, _shown(fieldname), meta.name
			)
		)


def check_constant_reads(reads, user, where):
	"""At save: the reads a rule writes out (engine/reads.py constant_reads) are ones its run-as
	user may make. Raises frappe.ValidationError naming `where` (the field) and the reason."""
	for doctype, fieldname, filter_fields in reads:
		try:
			meta = readable_meta(doctype, user)
			for field in (fieldname, *filter_fields):
				if isinstance(field, str):
					check_readable_field(meta, field, user)
		except ReadRefused as refused:
			frappe.throw(
				_("{0}: {1}").format(frappe.bold(where), refused.first.message),
				frappe.PermissionError,
				title=_("Read Not Allowed"),
			)


def check_linked_reads(linked_paths, doctype, user, where):
	"""At save: a condition on a linked document (``customer.territory``) reads each document along
	the way, so each must be one `user` may read from, as `get_value` would (engine/linked.py)."""
	reads = []
	for linked in linked_paths.values():
		doctypes = [hop.doctype for hop in linked.hops]
		fields = [hop.fieldname for hop in linked.hops[1:]] + [linked.fieldname]
		reads.extend((hop_doctype, field, ()) for hop_doctype, field in zip(doctypes, fields, strict=True))
	check_constant_reads(reads, user, where)


def _shown(text):
	"""A name the rule's author typed, as it may appear in a message shown as HTML."""
	return escape_html(str(text))[:140]
