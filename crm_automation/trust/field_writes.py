"""What a rule's run-as user may write into a document, checked before an action writes: fields
within their permission levels (never the ones Frappe manages, nor one set only once or locked by
submission), workflow states only through a transition they may take, values sanitised as Frappe's
own save would, and new documents they may create.
"""

import frappe
from frappe import _
from frappe.core.doctype.user_permission.user_permission import get_user_permissions
from frappe.model import no_value_fields, table_fields
from frappe.model.base_document import BaseDocument
from frappe.model.workflow import (
	get_workflow,
	get_workflow_name,
	has_approval_access,
	is_transition_condition_satisfied,
)
from frappe.permissions import get_allowed_docs_for_doctype

from crm_automation.engine.fieldtypes import STANDARD_FIELDS
from crm_automation.trust.protected_doctypes import check_not_protected
from crm_automation.trust.run_as import acting_as

# Fields no rule writes: identity and state that Frappe itself manages.
UNWRITABLE_FIELDS = frozenset({*STANDARD_FIELDS, "parent", "parenttype", "parentfield"})
# Field types a Set Value cannot write as one value: tables hold rows, a password is stored
# encrypted by a save (db_set would store it in clear), the rest hold no value.
UNSETTABLE_FIELDTYPES = frozenset({*table_fields, *no_value_fields, "Password"})


def allowed_permlevels(doc, user, ptype="write"):
	# Frappe's own answer; a child row follows its parent's permissions, as doc.get_permissions does.
	parenttype = doc.parenttype if doc.meta.istable else None
	return set(doc.meta.get_permlevel_access(ptype, parenttype, user=user))


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
	if df.fieldtype in UNSETTABLE_FIELDTYPES:
		# Refused at rule save; a rule stored before that check (or edited in the database) must not
		# write a table as text (the save then breaks) nor a password in clear (db_set skips encryption).
		raise frappe.PermissionError(
			_("Rules may not set {0} of {1}: it is a {2} field").format(
				frappe.bold(fieldname), frappe.bold(_(doc.doctype)), _(df.fieldtype)
			)
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


def check_link_permitted(doc, fieldname, value, user):
	"""A Link value `user` may store: Frappe's own save refuses, through has_permission, a document
	that links to a record the user's User Permissions leave out (has_user_permission checks every
	link field). The action checks the document before the rule's value is in it, so that value is
	checked here, as Frappe checks it for the user's save."""
	df = doc.meta.get_field(fieldname)
	if not df or df.fieldtype != "Link" or df.ignore_user_permissions or value in (None, ""):
		return
	if user == "Administrator":
		return
	restrictions = get_user_permissions(user).get(df.options)
	if not restrictions:
		return
	allowed = get_allowed_docs_for_doctype(restrictions, doc.doctype)
	if allowed and str(value) not in allowed:
		raise frappe.PermissionError(
			_("Run-as user {0} may not link {1} of {2} to {3} {4} (User Permissions)").format(
				frappe.bold(user),
				frappe.bold(fieldname),
				frappe.bold(_(doc.doctype)),
				_(df.options),
				frappe.bold(value),
			)
		)


def check_workflow_change(doc, fieldname, value, user, before=None):
	"""A field a Frappe Workflow controls changes only through a transition `user` may take, as
	Frappe's validate_workflow allows it for the user's own save: from the state the document was in
	(`before`'s, or the document's own when it is not being saved) to `value`, by a transition allowed
	to one of the user's roles, whose condition holds and that the user may approve. A new document
	may only start in the first state. Raises frappe.PermissionError saying why."""
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
