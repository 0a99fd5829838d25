"""The trust boundary: a rule never does more than the user it runs as may do.

Every rule records a run-as user (the user who last enabled or edited it; only a System Manager may
name someone else). Actions are checked against that user's rights with Frappe's permission API,
and security and system doctypes are out of reach of rules unless that user is a System Manager.
"""

from contextlib import contextmanager

import frappe
from frappe import _

SYSTEM_MANAGER = "System Manager"

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
	}
)

# What each action asks of the run-as user on the document the rule runs on.
ACTION_RIGHTS = {
	"Assign": "read",
	"Unassign": "read",
	"Send Email": "email",
	"System Notification": "read",
	"Create ToDo": "read",
	"Set Value": "write",
	"Add Tag": "write",
	"Add Comment": "read",
	"Create Document": "read",
	"Webhook": "read",
	"Reject": "read",
}

# Fields no rule writes: identity and state that Frappe itself manages.
UNWRITABLE_FIELDS = frozenset(
	{
		"name",
		"owner",
		"creation",
		"modified",
		"modified_by",
		"docstatus",
		"idx",
		"parent",
		"parenttype",
		"parentfield",
	}
)


def is_system_manager(user):
	return bool(user) and (user == "Administrator" or SYSTEM_MANAGER in frappe.get_roles(user))


def is_protected(doctype):
	"""True for a security or system doctype, or a child table of one (Has Role of User, DocPerm of
	DocType, a rule's action rows)."""
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


def parents_of_child_table(doctype):
	table_fields = ("Table", "Table MultiSelect")
	parents = frappe.get_all(
		"DocField", filters={"options": doctype, "fieldtype": ("in", table_fields)}, pluck="parent"
	)
	parents += frappe.get_all(
		"Custom Field", filters={"options": doctype, "fieldtype": ("in", table_fields)}, pluck="dt"
	)
	return set(parents)


def check_not_protected(doctype, user, what):
	"""Refuse `what` (a sentence naming the action) on a protected doctype unless `user` is a System
	Manager; raises frappe.PermissionError with a message naming the doctype."""
	if is_protected(doctype) and not is_system_manager(user):
		raise frappe.PermissionError(
			_("{0}: {1} is a protected doctype; only rules running as a System Manager may do this").format(
				what, frappe.bold(doctype)
			)
		)


# ----------------------------------------------------------------------------------------------
# Who a rule runs as


def run_as_of(rule):
	"""The user a compiled rule (or a rule document) runs as: its run-as user, else its owner; a
	rule that names neither runs as Guest, that is with no rights at all."""
	return getattr(rule, "run_as", None) or getattr(rule, "owner", None) or "Guest"


def set_run_as(doc):
	"""validate of every rule doctype: the run-as user is whoever saves the rule, unless a System
	Manager names another. A user who is not a System Manager may not name anyone but themself."""
	user = frappe.session.user
	if is_system_manager(user):
		if not doc.run_as:
			doc.run_as = user
		return
	chosen = doc.run_as
	named_by_this_save = doc.is_new() or doc.has_value_changed("run_as")
	if chosen and chosen != user and named_by_this_save:
		frappe.throw(
			_(
				"Run As: only a System Manager may make a rule run as another user ({0}); leave it empty to run as yourself"
			).format(frappe.bold(chosen)),
			frappe.PermissionError,
			title=_("Not Permitted"),
		)
	doc.run_as = user


@contextmanager
def acting_as(user):
	"""Inside this block Frappe sees `user` as the one acting: a document inserted here is theirs
	(owner, modified_by) and controllers that default to the session user use them. Lighter than
	frappe.set_user, which would also empty the request's form_dict and caches mid-save."""
	session = frappe.local.session
	previous_user, previous_perms = session.user, frappe.local.user_perms
	session.user, frappe.local.user_perms = user, None
	try:
		yield
	finally:
		session.user, frappe.local.user_perms = previous_user, previous_perms


def check_run_as_user(user):
	"""The run-as user must exist and be enabled: a rule of a departed user stops acting. Read from
	Frappe's document cache, which a change to the User clears."""
	enabled = frappe.get_cached_value("User", user, "enabled")
	if enabled is None:
		raise frappe.ValidationError(_("Run-as user {0} does not exist").format(frappe.bold(user)))
	if not enabled:
		raise frappe.ValidationError(_("Run-as user {0} is disabled").format(frappe.bold(user)))


# ----------------------------------------------------------------------------------------------
# Rights of the run-as user, checked before an action writes


def check_right(doc, ptype, user):
	"""`user` must have `ptype` on `doc` (Frappe's has_permission, with user permissions and shares)."""
	if not frappe.has_permission(doc.doctype, ptype, doc=doc, user=user, throw=False):
		raise frappe.PermissionError(
			_("Run-as user {0} has no {1} permission on {2} {3}").format(
				frappe.bold(user), frappe.bold(ptype), frappe.bold(_(doc.doctype)), frappe.bold(doc.name)
			)
		)


def check_action_allowed(action_type, doc, user):
	"""What every action needs: a live run-as user, a doctype that is not protected and the right the
	action asks of that user on the document."""
	check_run_as_user(user)
	check_not_protected(doc.doctype, user, _("Rules on {0}").format(_(doc.doctype)))
	check_right(doc, ACTION_RIGHTS.get(action_type, "write"), user)


def allowed_permlevels(doc, user, ptype="write"):
	roles = set(frappe.get_roles(user))
	return {perm.permlevel for perm in doc.get_permissions() if perm.role in roles and perm.get(ptype)}


def check_field_writable(doc, fieldname, user):
	"""A field `user` may write on `doc` through the desk: not a system field, within the user's
	permlevels, and on a submitted document only if the field allows edits on submit."""
	if fieldname in UNWRITABLE_FIELDS:
		raise frappe.PermissionError(_("Rules may not write the field {0}").format(frappe.bold(fieldname)))
	df = doc.meta.get_field(fieldname)
	if not df:
		raise frappe.ValidationError(
			_("{0} has no field {1}").format(frappe.bold(_(doc.doctype)), frappe.bold(fieldname))
		)
	if user != "Administrator" and (df.permlevel or 0) not in allowed_permlevels(doc, user):
		raise frappe.PermissionError(
			_("Run-as user {0} may not write {1} of {2} (permission level {3})").format(
				frappe.bold(user), frappe.bold(fieldname), frappe.bold(_(doc.doctype)), df.permlevel
			)
		)
	if doc.docstatus == 2 or (doc.docstatus == 1 and not df.allow_on_submit):
		raise frappe.PermissionError(
			_("{0} {1} is {2}: its field {3} cannot be changed").format(
				frappe.bold(_(doc.doctype)),
				frappe.bold(doc.name),
				_("cancelled") if doc.docstatus == 2 else _("submitted"),
				frappe.bold(fieldname),
			)
		)


def check_can_create(new, fieldnames, user):
	"""Creating `new` as `user`: not a protected doctype, create permission, and every mapped field
	within the user's permlevels."""
	check_not_protected(new.doctype, user, _("Create Document"))
	if not frappe.has_permission(new.doctype, "create", doc=new, user=user, throw=False):
		raise frappe.PermissionError(
			_("Run-as user {0} has no {1} permission on {2}").format(
				frappe.bold(user), frappe.bold("create"), frappe.bold(_(new.doctype))
			)
		)
	if user == "Administrator":
		return
	levels = allowed_permlevels(new, user)
	for fieldname in fieldnames:
		if fieldname in UNWRITABLE_FIELDS:
			raise frappe.PermissionError(
				_("Rules may not write the field {0}").format(frappe.bold(fieldname))
			)
		df = new.meta.get_field(fieldname)
		if df and (df.permlevel or 0) not in levels:
			raise frappe.PermissionError(
				_("Run-as user {0} may not write {1} of {2} (permission level {3})").format(
					frappe.bold(user), frappe.bold(fieldname), frappe.bold(_(new.doctype)), df.permlevel
				)
			)
