"""Checks every rule doctype runs when saved: who the rule runs as, what it may target, templates
that are read-only, and actions within the run-as user's rights. The same checks run again when
an action runs (permissions.py), since rights and records change after a rule is saved."""

import json

import frappe
from frappe import _

from crm_automation.engine.i18n import translating
from crm_automation.engine.template_check import check_template, reads_in_template
from crm_automation.engine.templates import TemplateError
from crm_automation.engine.workflow import is_template
from crm_automation.trust import run_as as permissions
from crm_automation.trust.run_as_reads import check_constant_reads

TEMPLATE_FIELDS = ("subject", "message", "value", "tag", "sms_message")


def check_run_as_and_target(rule, what):
	"""validate of a rule: set its run-as user, then refuse a protected doctype or one that user
	cannot read. `what` names the rule kind in messages ("Workflow Rules")."""
	permissions.set_run_as(rule)
	user = rule.run_as
	if permissions.is_protected(rule.document_type) and not permissions.is_system_manager(user):
		frappe.throw(
			_(
				"{0} cannot run on {1}: it is a protected doctype, only rules running as a System Manager may"
			).format(what, frappe.bold(rule.document_type)),
			frappe.PermissionError,
			title=_("Protected Document Type"),
		)
	if not frappe.has_permission(rule.document_type, "read", user=user, throw=False):
		frappe.throw(
			_("Run As: {0} has no read permission on {1}").format(
				frappe.bold(user), frappe.bold(rule.document_type)
			),
			frappe.PermissionError,
			title=_("Not Permitted"),
		)


def check_templates(rows, table_label, run_as):
	"""Every template of every action row parses and uses only what templates may, and reads (with
	get_value) only what `run_as` may read: a clear error names the row and the field. An Email
	Template used by a row is checked the same way."""
	for row in rows:
		for fieldname in TEMPLATE_FIELDS:
			_check_one(row.get(fieldname), row, table_label, row.meta.get_label(fieldname), run_as)
		for target, source in _field_map(row).items():
			if isinstance(source, str):
				_check_one(source, row, table_label, _("Field Mapping ({0})").format(target), run_as)
		if row.get("email_template"):
			template = frappe.db.get_value(
				"Email Template",
				row.email_template,
				["subject", "response", "response_html", "use_html"],
				as_dict=True,
			)
			if template:
				body = template.response_html if template.use_html else template.response
				label = _("Email Template {0}").format(row.email_template)
				_check_one(template.subject, row, table_label, label, run_as)
				_check_one(body, row, table_label, label, run_as)


def _check_one(text, row, table_label, field_label, run_as):
	if not is_template(text):
		return
	try:
		with translating(_):  # the engine's reason in the reader's language
			check_template(text)
	except TemplateError as error:
		reason = error.first.message
		if reason.startswith(_("template does not parse: {0} (line {1})").split("{0}")[0]):
			reason = _("the Jinja template does not compile ({0})").format(reason)
		frappe.throw(
			_("{0}, row {1}, {2}: {3}").format(_(table_label), row.idx, frappe.bold(field_label), reason),
			title=_("Invalid Template"),
		)
	where = _("{0}, row {1}, {2}").format(_(table_label), row.idx, field_label)
	check_constant_reads(reads_in_template(text), run_as, where)


def _field_map(row):
	value = row.get("field_map")
	if not value:
		return {}
	try:
		mapping = json.loads(value) if isinstance(value, str) else value
	except ValueError:
		return {}  # the compiler reports JSON that does not parse, with the field's name
	return mapping if isinstance(mapping, dict) else {}


def check_action_rights(rows, document_type, run_as, table_label):
	"""What the actions write must be within the run-as user's rights as far as can be told without
	a document: Set Value fields within the user's permission levels, Create Document targets that
	are not protected and that the user may create."""
	meta = frappe.get_meta(document_type)
	for row in rows:
		where = _("{0}, row {1}").format(_(table_label), row.idx)
		action_type = row.get("action_type")
		target_meta = _linked_target_meta(meta, row, run_as, where) or meta
		if action_type == "Set Value" and row.get("target_field"):
			_check_field(target_meta, row.target_field, run_as, where)
		if action_type == "Create Document" and row.get("target_doctype"):
			_check_create(row.target_doctype, _field_map(row), run_as, where)


def _linked_target_meta(meta, row, user, where):
	"""An action on the document in a Link field acts on that doctype: it must not be protected,
	and the run-as user must be able to read it. None when the row acts on the document itself."""
	raw = (row.get("target_link_field") or "").strip()
	if not raw:
		return None
	fieldname, _sep, rest = raw.partition("[")
	doctype = rest.rstrip("]") if rest else (meta.get_field(fieldname) or frappe._dict()).get("options")
	if not doctype or not frappe.db.exists("DocType", doctype):
		return None  # the compiler reports a target that is not a Link field
	if permissions.is_protected(doctype) and not permissions.is_system_manager(user):
		frappe.throw(
			_("{0}: actions on the linked {1} are refused: it is a protected doctype").format(
				frappe.bold(where), frappe.bold(doctype)
			),
			frappe.PermissionError,
			title=_("Protected Document Type"),
		)
	if not frappe.has_permission(doctype, "read", user=user, throw=False):
		frappe.throw(
			_("{0}: run-as user {1} has no read permission on {2}").format(
				frappe.bold(where), frappe.bold(user), frappe.bold(doctype)
			),
			frappe.PermissionError,
		)
	return frappe.get_meta(doctype)


def check_field_rights(document_type, fieldname, user, where):
	_check_field(frappe.get_meta(document_type), fieldname, user, where)


def _check_field(meta, fieldname, user, where):
	if fieldname in permissions.UNWRITABLE_FIELDS:
		frappe.throw(
			_("{0}: rules may not write the field {1}").format(frappe.bold(where), frappe.bold(fieldname)),
			frappe.PermissionError,
		)
	df = meta.get_field(fieldname)
	if df and user != "Administrator" and (df.permlevel or 0) not in _permlevels(meta, user):
		frappe.throw(
			_("{0}: run-as user {1} may not write {2} of {3} (permission level {4})").format(
				frappe.bold(where),
				frappe.bold(user),
				frappe.bold(fieldname),
				frappe.bold(meta.name),
				df.permlevel,
			),
			frappe.PermissionError,
		)


def _check_create(doctype, field_map, user, where):
	if not frappe.db.exists("DocType", doctype):
		return  # the compiler says the doctype does not exist
	if permissions.is_protected(doctype) and not permissions.is_system_manager(user):
		frappe.throw(
			_(
				"{0}: Create Document of {1} is refused: it is a protected doctype, only rules running as a System Manager may create it"
			).format(frappe.bold(where), frappe.bold(doctype)),
			frappe.PermissionError,
			title=_("Protected Document Type"),
		)
	if not frappe.has_permission(doctype, "create", user=user, throw=False):
		frappe.throw(
			_("{0}: run-as user {1} has no create permission on {2}").format(
				frappe.bold(where), frappe.bold(user), frappe.bold(doctype)
			),
			frappe.PermissionError,
		)
	meta = frappe.get_meta(doctype)
	for fieldname in field_map:
		_check_field(meta, fieldname, user, where)


def _permlevels(meta, user):
	roles = set(frappe.get_roles(user))
	return {perm.permlevel for perm in meta.permissions if perm.role in roles and perm.get("write")}
