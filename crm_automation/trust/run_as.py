"""The trust boundary: a rule never does more than the user it runs as may do.

Every rule records a run-as user (the user who last enabled or edited it; only a System Manager may
name someone else). Actions are checked against that user's rights with Frappe's permission API.
Which doctypes no rule may touch is in protected_doctypes.py; which fields and states a rule may
write, in field_writes.py.
"""

from contextlib import contextmanager

import frappe
from frappe import _

from crm_automation.trust.protected_doctypes import check_not_protected
from crm_automation.trust.roles import is_system_manager

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
	# A veto of someone else's save is a write: the run-as user must be able to make that save
	# (create, for a new document: see check_can_reject).
	"Reject": "write",
}


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
	check_not_protected(doc.doctype, user, _("Rules on {0}").format(_(doc.doctype)), document_type=True)
	check_right(doc, ACTION_RIGHTS.get(action_type, "write"), user)


def check_can_write_document(doc, user):
	"""What the run-as user's own save of `doc` would need: write on it, and on a document being
	inserted create as well (a right to create is no right to change what someone else creates)."""
	if doc.is_new():
		check_right(doc, "create", user)
	check_right(doc, "write", user)


def check_can_reject(doc, user):
	"""A Reject vetoes someone else's save of `doc`: the run-as user must be able to make that save
	(create for a new document, write otherwise), on a doctype that is not protected."""
	check_run_as_user(user)
	check_not_protected(doc.doctype, user, _("Reject"), document_type=True)
	check_right(doc, "create" if doc.is_new() else "write", user)


def check_can_reject_doctype(doctype, user, where):
	"""At rule save: a Reject on `doctype` is refused when the run-as user may neither create nor write
	any document of it (what is left, per document, is checked when the rule runs)."""
	if any(frappe.has_permission(doctype, ptype, user=user, throw=False) for ptype in ("write", "create")):
		return
	frappe.throw(
		_(
			"{0}: run-as user {1} may not reject saves of {2}: they have neither write nor create permission on it"
		).format(frappe.bold(where), frappe.bold(user), frappe.bold(_(doctype))),
		frappe.PermissionError,
		title=_("Not Permitted"),
	)
