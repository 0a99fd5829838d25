"""The trust boundary: a rule never does more than the user it runs as may do.

Every rule records a run-as user (the user who last enabled or edited it; only a System Manager may
name someone else). Actions are checked against that user's rights with Frappe's permission API,
and security and system doctypes are out of reach of rules unless that user is a System Manager.
"""

from contextlib import contextmanager

import frappe
from frappe import _
from frappe.model.base_document import BaseDocument

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
	if df.set_only_once and not doc.is_new() and not doc.meta.istable:
		# Frappe's validate_set_only_once refuses any change once the document exists.
		raise frappe.PermissionError(
			_("{0} of {1} {2} is set only once and cannot be changed").format(
				frappe.bold(fieldname), frappe.bold(_(doc.doctype)), frappe.bold(doc.name)
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


def check_workflow_change(doc, fieldname, value, user, before=None):
	"""A field a Frappe Workflow controls changes only through a transition `user` may take, as
	Frappe's validate_workflow allows it for the user's own save: from the state the document was in
	(`before`'s, or the document's own when it is not being saved) to `value`, by a transition allowed
	to one of the user's roles, whose condition holds and that the user may approve. A new document
	may only start in the first state. Raises frappe.PermissionError saying why."""
	from frappe.model.workflow import (
		get_workflow,
		get_workflow_name,
		has_approval_access,
		is_transition_condition_satisfied,
	)

	if not get_workflow_name(doc.doctype):
		return
	workflow = get_workflow(doc.doctype)
	if fieldname != workflow.workflow_state_field:
		return
	first_state = workflow.states[0].state if workflow.states else None
	source = before if before is not None else (None if doc.is_new() else doc)
	current = (source.get(fieldname) if source is not None else None) or first_state
	if not value or value == current or value == doc.get(fieldname):
		return  # no move, or none made by the rule (Frappe checks the saver's own move)
	label = _("Workflow {0}").format(frappe.bold(workflow.name))
	if source is None:
		raise frappe.PermissionError(
			_("{0}: a new {1} starts in {2}; it cannot be set to {3}").format(
				label, _(doc.doctype), frappe.bold(first_state), frappe.bold(value)
			)
		)
	transitions = [t for t in workflow.transitions if t.state == current and t.next_state == value]
	roles = set(frappe.get_roles(user))
	allowed = [t for t in transitions if t.allowed in roles]
	if not allowed:
		raise frappe.PermissionError(
			_("{0}: run-as user {1} may not move {2} {3} from {4} to {5}").format(
				label,
				frappe.bold(user),
				_(doc.doctype),
				frappe.bold(doc.name),
				frappe.bold(current),
				frappe.bold(value),
			)
		)
	# The condition reads the session (frappe.session.user): it is the run-as user's.
	with acting_as(user):
		allowed = [t for t in allowed if is_transition_condition_satisfied(t, source)]
	if not allowed:
		raise frappe.PermissionError(
			_("{0}: the condition of the transition from {1} to {2} does not hold").format(
				label, frappe.bold(current), frappe.bold(value)
			)
		)
	if not any(has_approval_access(user, source, t) for t in allowed):
		raise frappe.PermissionError(
			_("{0}: run-as user {1} may not approve their own {2} {3}").format(
				label, frappe.bold(user), _(doc.doctype), frappe.bold(doc.name)
			)
		)
	states = {state.state: state for state in workflow.states}
	next_status = int((states.get(value) or frappe._dict()).get("doc_status") or 0)
	if next_status != doc.docstatus:
		raise frappe.PermissionError(
			_("{0}: moving to {1} submits or cancels the document; take the workflow action instead").format(
				label, frappe.bold(value)
			)
		)


def as_a_save_stores(doc, fieldname, value):
	"""The value Frappe's own save of `doc` would store in `fieldname`: db_set skips the HTML
	sanitising of BaseDocument._sanitize_content (Text Editor, HTML and every other text field, unless
	the field ignores the XSS filter or holds code, an e-mail address or an attachment), so it runs
	here on a stand-in that has only this field, with the document's type and status."""
	if not isinstance(value, str) or ("<" not in value and ">" not in value):
		return value
	probe = _Probe({"doctype": doc.doctype, "docstatus": doc.docstatus, fieldname: value})
	probe._sanitize_content()
	return probe.get(fieldname)


class _Probe(BaseDocument):
	"""A bare document of a doctype, for Frappe's field checks alone (no controller, no database)."""

	def __init__(self, values):
		self.flags = frappe._dict()
		super().__init__(values)


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
