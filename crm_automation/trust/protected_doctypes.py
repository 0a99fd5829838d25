"""Doctypes out of reach of rules: security and system doctypes (users, roles, code, settings,
credentials, this app's own rules and logs, records every user writes) may be read, watched or
written by a rule only when it runs as a System Manager.

Names are compared as the database resolves them (`canonical_doctype`), and a child table counts as
protected when one of its parents is.
"""

import frappe
from frappe import _

from crm_automation.trust.roles import is_system_manager

# Doctypes that grant rights, run code or templates with full access, hold credentials, or steer
# this app. A rule that could write them could make its author a System Manager.
PROTECTED_DOCTYPES = frozenset(
	{
		# users, roles and sharing
		"User",
		"Role",
		"Has Role",
		"Role Profile",
		"Module Profile",
		"User Type",
		"User Permission",
		"DocShare",
		"DocPerm",
		"Custom DocPerm",
		"Custom Role",
		# code, schema and templates run with full access
		"DocType",
		"DocField",
		"Custom Field",
		"Property Setter",
		"Server Script",
		"Client Script",
		"Scheduled Job Type",
		"Report",
		"Print Format",
		"Letter Head",
		"Notification",
		"Email Template",
		"Webhook",
		"Auto Email Report",
		"Web Page",
		"Web Form",
		"Workflow",
		"Assignment Rule",
		# settings and credentials
		"System Settings",
		"Email Account",
		"OAuth Client",
		"Social Login Key",
		"LDAP Settings",
		"Installed Applications",
		"Module Def",
		# this app's rules, settings and records of what they did
		"Workflow Rule",
		"Lead Score Rule",
		"Escalation Policy",
		"Escalation State",
		"CRM Automation Settings",
		"Automation Log",
		"Automation Occurrence",
		"Automation Sequence Step",
		"Automation Sequence Definition",
		# written by every user, and guarding or recording other records: files (is_private decides
		# who reads them), messages, comments, the history of changes, sharing keys, assignments'
		# alerts, tags, per-user settings and logs. A rule on these would run on everyone's uploads
		# and saves; a rule that writes them could open a private file or forge a record's history.
		"File",
		"Communication",
		"Communication Link",
		"Comment",
		"Version",
		"Deleted Document",
		"Access Log",
		"Activity Log",
		"View Log",
		"Route History",
		"Error Log",
		"Scheduled Job Log",
		"Webhook Request Log",
		"Integration Request",
		"Email Queue",
		"Email Queue Recipient",
		"Email Unsubscribe",
		"Unhandled Email",
		"Notification Log",
		"Notification Settings",
		"Tag",
		"Tag Link",
		"Document Follow",
		"Document Share Key",
		"Dashboard Settings",
		"List View Settings",
		"Energy Point Log",
		"Energy Point Rule",
		"Energy Point Settings",
		"Submission Queue",
		"Prepared Report",
		"Data Import",
		"Data Export",
		"Auto Repeat",
		"Personal Data Deletion Request",
		"Personal Data Download Request",
		"Workflow Action",
		"Workflow State",
		"Workflow Action Master",
		"User Group",
		"User Group Member",
		"Session Default Settings",
		# markup, scripts and templates shown to or run for every user
		"Translation",
		"Address Template",
		"Custom HTML Block",
		"Website Script",
		"Website Theme",
		"Website Settings",
		"Web Template",
		"Portal Settings",
		"Navbar Settings",
		"Print Style",
		"Print Settings",
		"Workspace",
		"Page",
		"Dashboard Chart Source",
		"Number Card",
		"Document Naming Rule",
		"Document Naming Settings",
		"Role Permission for Page and Report",
		"Log Settings",
		# credentials of integrations
		"OAuth Bearer Token",
		"OAuth Authorization Code",
		"Token Cache",
		"Connected App",
		"SMS Settings",
		"Google Settings",
		"Dropbox Settings",
		"S3 Backup Settings",
	}
)

# Protected only as the doctype a rule runs on (or acts on through a link), not as something a rule
# creates or reads: ToDos are written by every assignment on the site, so a rule on ToDo would watch
# and steer everyone's assignments, while Create ToDo, Assign and a Create Document of a ToDo write
# ones the run-as user gives, checked against that user's create right.
PROTECTED_RULE_DOCTYPES = frozenset({"ToDo"})


def canonical_doctype(doctype):
	"""The DocType's own name for `doctype` as the database finds it: MariaDB compares names without
	case, trailing spaces or accents ("file", "User ", "Fíle"), so a name is compared with the lists
	here only after the database has said which DocType it means. Unknown names come back as given.
	Looked up once per name per request."""
	if not isinstance(doctype, str) or not doctype:
		return doctype
	names = frappe.local.cache.setdefault("crm_automation_doctype_names", {})
	if doctype not in names:
		names[doctype] = frappe.db.get_value("DocType", doctype, "name") or doctype
	return names[doctype]


def is_protected(doctype):
	"""True for a security or system doctype, or a child table of one (Has Role of User, DocPerm of
	DocType, a rule's action rows), however its name is spelled."""
	doctype = canonical_doctype(doctype)
	if not doctype:
		return False
	if doctype in PROTECTED_DOCTYPES:
		return True
	try:
		meta = frappe.get_meta(doctype)  # cached: no query on the path every action takes
	except frappe.DoesNotExistError:
		return False
	if not meta.istable:
		return False
	return any(parent in PROTECTED_DOCTYPES for parent in parents_of_child_table(doctype))


def is_protected_document_type(doctype):
	"""is_protected, and also the doctypes no rule may run on (PROTECTED_RULE_DOCTYPES)."""
	return canonical_doctype(doctype) in PROTECTED_RULE_DOCTYPES or is_protected(doctype)


def parents_of_child_table(doctype):
	table_fields = ("Table", "Table MultiSelect")
	parents = frappe.get_all(
		"DocField", filters={"options": doctype, "fieldtype": ("in", table_fields)}, pluck="parent"
	)
	parents += frappe.get_all(
		"Custom Field", filters={"options": doctype, "fieldtype": ("in", table_fields)}, pluck="dt"
	)
	return set(parents)


def check_not_protected(doctype, user, what, document_type=False):
	"""Refuse `what` (a sentence naming the action) on a protected doctype unless `user` is a System
	Manager; raises frappe.PermissionError with a message naming the doctype. `document_type`: the
	doctype is the one the rule runs (or acts) on, where PROTECTED_RULE_DOCTYPES count too."""
	protected = is_protected_document_type(doctype) if document_type else is_protected(doctype)
	if protected and not is_system_manager(user):
		raise frappe.PermissionError(
			_("{0}: {1} is a protected doctype; only rules running as a System Manager may do this").format(
				what, frappe.bold(canonical_doctype(doctype))
			)
		)
