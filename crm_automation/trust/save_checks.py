"""Checks every rule doctype runs when saved: who the rule runs as, what it may target, templates
that are read-only, and actions within the run-as user's rights. The same checks run again when
an action runs (run_as.py, field_writes.py), since rights and records change after a rule is saved."""

import json

import frappe
from frappe import _

from crm_automation.engine.field_reads import fields_in_expression, fields_in_template
from crm_automation.engine.i18n import translating
from crm_automation.engine.template_check import check_template, reads_in_template
from crm_automation.engine.templates import TemplateError
from crm_automation.engine.workflow import is_template
from crm_automation.trust import field_writes, protected_doctypes
from crm_automation.trust import run_as as permissions
from crm_automation.trust.field_access import hidden_fields
from crm_automation.trust.roles import is_system_manager
from crm_automation.trust.run_as_reads import check_constant_reads

TEMPLATE_FIELDS = ("subject", "message", "value", "tag", "sms_message")


def check_run_as_and_target(rule, what):
	"""validate of a rule: set its run-as user, then refuse a protected doctype or one that user
	cannot read. `what` names the rule kind in messages ("Workflow Rules")."""
	permissions.set_run_as(rule)
	user = rule.run_as
	if protected_doctypes.is_protected_document_type(rule.document_type) and not is_system_manager(user):
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


def check_templates(rows, table_label, run_as, document_type=None):
	"""Every template of every action row parses and uses only what templates may, and reads (with
	get_value) only what `run_as` may read: a clear error names the row and the field. An Email
	Template used by a row is checked the same way. With `document_type`, the fields of the
	document a template names (and a Create Document mapping copies) must be ones `run_as` may read."""
	for row in rows:
		doctype = document_type and _row_doctype(document_type, row)
		for fieldname in TEMPLATE_FIELDS:
			_check_one(row.get(fieldname), row, table_label, row.meta.get_label(fieldname), run_as, doctype)
		for target, source in _field_map(row).items():
			if not isinstance(source, str):
				continue
			label = _("Field Mapping ({0})").format(target)
			_check_one(source, row, table_label, label, run_as, doctype)
			if doctype and source.startswith("doc.") and not is_template(source):
				where = _("{0}, row {1}, {2}").format(_(table_label), row.idx, label)
				check_readable_fields(doctype, {source[4:]}, run_as, where)
		if doctype:
			_check_named_fields(document_type, doctype, row, table_label, run_as)
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
				_check_one(template.subject, row, table_label, label, run_as, doctype)
				_check_one(body, row, table_label, label, run_as, doctype)


def _check_one(text, row, table_label, field_label, run_as, doctype=None):
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
	if doctype:
		check_readable_fields(doctype, fields_in_template(text), run_as, where)


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
		if action_type == "Reject":
			permissions.check_can_reject_doctype(document_type, run_as, where)
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
	if protected_doctypes.is_protected_document_type(doctype) and not is_system_manager(user):
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
	if fieldname in field_writes.UNWRITABLE_FIELDS:
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


def check_create_rights(doctype, field_map, user, where):
	"""Create Document's save-time check, for any creator: an unprotected doctype `user` may create,
	and every mapped field within their permission levels (inbound webhooks reuse it)."""
	_check_create(doctype, field_map, user, where)


def _check_create(doctype, field_map, user, where):
	if not frappe.db.exists("DocType", doctype):
		return  # the compiler says the doctype does not exist
	if protected_doctypes.is_protected(doctype) and not is_system_manager(user):
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
	return set(meta.get_permlevel_access("write", user=user))


# ----------------------------------------------------------------------------------------------
# Fields a rule reads: within its run-as user's permission levels


def check_readable_fields(doctype, reads, user, where):
	"""At save: every field of `doctype` a condition or template names is one `user` may read, as
	Frappe's get_doc for that user would show it (field_access.py); else a PermissionError naming
	`where`, the field and its permission level. `reads`: fieldnames, or (table fieldname, row
	fieldname) pairs for fields of child rows."""
	hidden = hidden_fields(doctype, user)
	if not hidden:
		return
	meta = frappe.get_meta(doctype)
	for read in sorted(reads, key=str):
		table, fieldname = read if isinstance(read, tuple) else (None, read)
		if not hidden.hides(fieldname, table):
			continue
		field_meta = frappe.get_meta(meta.get_field(table).options) if table else meta
		frappe.throw(
			_("{0}: run-as user {1} may not read {2} of {3} (permission level {4})").format(
				frappe.bold(where),
				frappe.bold(user),
				frappe.bold(fieldname),
				frappe.bold(field_meta.name),
				field_meta.get_field(fieldname).permlevel,
			),
			frappe.PermissionError,
			title=_("Read Not Allowed"),
		)


def condition_reads(condition):
	"""The fields of the document a compiled condition reads: its own fields, the link fields its
	linked paths start from, and child tables with the row fields their aggregates test."""
	reads = set()
	if condition is None or condition.root is None:
		return reads
	reads |= condition.fields
	reads.update(linked.own_field for linked in condition.linked_paths.values())
	for leaf in _leaves(condition.root):
		if getattr(leaf, "table", None):
			reads.add(leaf.table)
			if leaf.row_field:
				reads.add((leaf.table, leaf.row_field))
	return reads


def _leaves(node):
	children = getattr(node, "children", None)
	if children is None:
		yield node
		return
	for child in children:
		yield from _leaves(child)


def check_workflow_rule_reads(rule, compiled):
	"""At save of a Workflow Rule: its conditions, trigger and time fields, branches, stop
	conditions and follow-up steps read only fields its run-as user may read."""
	user, doctype, meta = rule.run_as, rule.document_type, rule.meta

	def label(fieldname, child_meta=meta):
		return _(child_meta.get_label(fieldname), context=child_meta.name)

	def row_where(table, index, fieldname, child_doctype):
		return _("{0}, {1}").format(
			_("{0}, row {1}").format(label(table), index), label(fieldname, frappe.get_meta(child_doctype))
		)

	check_readable_fields(doctype, condition_reads(compiled.condition), user, label("conditions"))
	for fieldname in ("trigger_field", "time_field"):
		if rule.get(fieldname):
			where = _("{0}, {1}").format(label("trigger"), label(fieldname))
			check_readable_fields(doctype, {rule.get(fieldname)}, user, where)
	for index, branch in enumerate(compiled.branches, start=1):
		where = row_where("branches", index, "conditions", "Workflow Rule Branch")
		check_readable_fields(doctype, condition_reads(branch.condition), user, where)
	sequence = compiled.sequence
	if not sequence:
		return
	check_readable_fields(doctype, condition_reads(sequence.stop), user, label("stop_conditions"))
	for step in sequence.steps:
		for attribute, fieldname in (("check", "step_conditions"), ("until", "until_conditions")):
			where = row_where("steps", step.index, fieldname, "Workflow Rule Step")
			check_readable_fields(doctype, condition_reads(getattr(step, attribute)), user, where)
		if step.date_field:
			where = row_where("steps", step.index, "date_field", "Workflow Rule Step")
			check_readable_fields(doctype, {step.date_field}, user, where)


def check_expression_reads(doctype, expression, user, where):
	"""At save: the fields an Advanced Condition names are ones `user` may read."""
	check_readable_fields(doctype, fields_in_expression(expression), user, where)


# Action fields that name a field of the document the action runs on, whose value they read.
_FIELD_NAMING = ("to_field", "sms_phone_field", "sms_contact_of")


def _check_named_fields(document_type, doctype, row, table_label, user):
	"""Recipients read from a field, and the link a linked-document action follows, are reads too."""
	for fieldname in _FIELD_NAMING:
		if row.get(fieldname) and isinstance(row.get(fieldname), str):
			where = _("{0}, row {1}, {2}").format(_(table_label), row.idx, row.meta.get_label(fieldname))
			_check_field_path(doctype, row.get(fieldname).strip(), user, where)
	link = (row.get("target_link_field") or "").strip().partition("[")[0]
	if link:
		where = _("{0}, row {1}, {2}").format(
			_(table_label), row.idx, row.meta.get_label("target_link_field")
		)
		check_readable_fields(document_type, {link}, user, where)


def _check_field_path(doctype, path, user, where):
	"""A field, or a path through link fields (``customer.account_manager``): each field along it
	within `user`'s levels on its doctype."""
	for _hop in range(3):
		fieldname, _sep, rest = path.partition(".")
		fieldname, _bracket, declared = fieldname.partition("[")
		check_readable_fields(doctype, {fieldname}, user, where)
		field = frappe.get_meta(doctype).get_field(fieldname)
		doctype = declared.rstrip("]") or (field.options if field and field.fieldtype == "Link" else None)
		if not rest or not doctype or not frappe.db.exists("DocType", doctype):
			return
		path = rest


def _row_doctype(document_type, row):
	"""The doctype an action row's templates read: the linked document's for an action on a linked
	document (``customer`` or ``party_name[Customer]``), else the rule's."""
	raw = (row.get("target_link_field") or "").strip()
	if not raw:
		return document_type
	fieldname, _sep, rest = raw.partition("[")
	field = frappe.get_meta(document_type).get_field(fieldname)
	doctype = rest.rstrip("]") if rest else (field.options if field else None)
	return doctype if doctype and frappe.db.exists("DocType", doctype) else document_type
