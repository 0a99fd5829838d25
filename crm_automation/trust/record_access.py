"""Reading records on a user's behalf: the sandbox, the history panel and the logs show a person only
the records they may read themselves (trust/redaction.py then hides what they may not read in them).

- `permitted_document` loads one record the session user may read (or change); a missing and a
  forbidden record get the same answer, so the answer never tells whether a name exists.
- `readable_names_query` is the SQL of the names of a doctype a user may read (Frappe's own list
  permissions: roles, User Permissions, owner rules, shares), or None when they may read them all.
- `has_reference_permission` and the query conditions make the records about records (logs,
  occurrences, escalation states, activities, sequence steps) readable only with their document.
"""

import frappe
from frappe import _
from frappe.utils import escape_html

from crm_automation.setup.custom_fields import SCORED_DOCTYPES
from crm_automation.trust.roles import is_system_manager, may_edit_rules


def permitted_document(doctype, name, ptypes=("read",)):
	"""The document, if the session user holds every right in `ptypes` on it. Otherwise one
	PermissionError whose message is the same whether the record is missing or forbidden."""
	if _exists(doctype, name):
		doc = frappe.get_doc(doctype, name)
		if all(doc.has_permission(ptype) for ptype in ptypes):
			return doc
	if "write" in ptypes:
		message = _("{0} {1} was not found, or you may not change it")
	else:
		message = _("{0} {1} was not found, or you may not read it")
	# Both come from the caller: shown, never rendered.
	shown_doctype, shown_name = escape_html(_(str(doctype))), escape_html(str(name))
	frappe.throw(message.format(shown_doctype, frappe.bold(shown_name)), frappe.PermissionError)


def _exists(doctype, name):
	if not (isinstance(doctype, str) and isinstance(name, str) and doctype and name):
		return False
	if not frappe.db.exists("DocType", doctype) or frappe.get_meta(doctype).istable:
		return False
	return bool(frappe.db.exists(doctype, name))


def readable_names_query(doctype, user=None):
	"""SQL selecting the names of `doctype` the user may read, "" when they may read none, or None
	when nothing restricts them (every record of the doctype is readable)."""
	user = user or frappe.session.user
	if not frappe.db.exists("DocType", doctype) or not frappe.has_permission(doctype, "read", user=user):
		return ""
	query = frappe.get_list(doctype, fields=["name"], user=user, run=0, order_by="", limit_page_length=0)
	unrestricted = f"select `name`\nfrom `tab{doctype}`"
	if query.strip() == unrestricted:
		return None
	return query


def readable_names(doctype, filters=None, order_by="creation desc", limit=None):
	"""Names of documents the session user may read, newest first: what a sandbox may load."""
	if not frappe.has_permission(doctype, "read"):
		return []
	return frappe.get_list(doctype, filters=filters or {}, pluck="name", order_by=order_by, limit=limit)


# ----------------------------------------------------------------------------------------------
# Records about records (Automation Log, Automation Occurrence, Escalation State, CRM Activity):
# readable only with the document they describe (System Managers read all). Logs name recipients and
# webhook targets, so they are for those who may edit rules even where a role grants more; everyone
# else reads a document's runs, redacted, in its history. One about a document
# that no longer exists (deleted, or rejected before its first save) is readable by those whom
# nothing restricts on its document type. Wired in hooks.py (has_permission and
# permission_query_conditions).


def has_reference_permission(doc, ptype="read", user=None, **kwargs):
	user = user or frappe.session.user
	if is_system_manager(user):
		return None
	if doc.doctype == "Automation Log" and not may_edit_rules(user):
		return False
	doctype, name = doc.get("reference_doctype"), doc.get("reference_name")
	if not doctype or not frappe.db.exists("DocType", doctype):
		return False
	if name and frappe.db.exists(doctype, name):
		return bool(frappe.has_permission(doctype, "read", doc=name, user=user))
	return readable_names_query(doctype, user) is None


def reference_query_conditions(user=None, doctype=None):
	"""List conditions for a doctype with reference_doctype/reference_name: per referenced doctype,
	all rows when nothing restricts the user on it, else the rows of the documents they may read."""
	user = user or frappe.session.user
	if is_system_manager(user) or not doctype:
		return ""
	if doctype == "Automation Log" and not may_edit_rules(user):
		return "1=0"
	table = f"`tab{doctype}`"
	clauses = []
	for reference_doctype in _referenced_doctypes(doctype):
		names = readable_names_query(reference_doctype, user)
		if names == "":
			continue
		clause = f"{table}.`reference_doctype` = {frappe.db.escape(reference_doctype)}"
		if names is not None:
			clause = f"({clause} and {table}.`reference_name` in ({names}))"
		clauses.append(clause)
	return "(" + " or ".join(clauses) + ")" if clauses else "1=0"


def log_action_query_conditions(user=None, doctype=None):
	"""Action rows listed on their own (report view of the child table) follow their log."""
	logs = reference_query_conditions(user, "Automation Log")
	if not logs:
		return ""
	return f"`tabAutomation Log Action`.`parent` in (select `name` from `tabAutomation Log` where {logs})"


def _referenced_doctypes(doctype):
	if doctype == "Automation Log":  # reference_doctype is indexed there: every doctype logged
		return [
			d for d in frappe.db.sql_list("select distinct reference_doctype from `tabAutomation Log`") if d
		]
	# Elsewhere, the doctypes rules and scoring can touch; rows about any other are for System Managers.
	ruled = frappe.db.sql_list(
		"""select document_type from `tabWorkflow Rule` union select document_type from `tabLead Score Rule`
		union select document_type from `tabEscalation Policy`"""
	)
	return sorted({d for d in (*ruled, *SCORED_DOCTYPES) if d})
