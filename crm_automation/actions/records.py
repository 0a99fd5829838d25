"""Set Value, Add Tag, Add Comment, Create Document and Reject: actions on records."""

import copy

import frappe
from frappe import _
from frappe.desk.doctype.tag.tag import add_tag as frappe_add_tag
from frappe.model import no_value_fields
from frappe.utils import escape_html
from frappe.utils.html_utils import sanitize_html

from crm_automation.actions.common import ActionError, default_minutes, error_summary, render
from crm_automation.engine import workflow as wf
from crm_automation.runtime.run_state import creating_document
from crm_automation.trust import field_writes, protected_doctypes
from crm_automation.trust import run_as as permissions
from crm_automation.trust.field_access import hidden_fields, without_hidden
from crm_automation.trust.run_as_reads import reading_as

# ERPNext's own mappers, used when a Create Document action asks for them.
STANDARD_MAPPERS = {
	("Opportunity", "Quotation"): "erpnext.crm.doctype.opportunity.opportunity.make_quotation",
	(
		"Opportunity",
		"Supplier Quotation",
	): "erpnext.crm.doctype.opportunity.opportunity.make_supplier_quotation",
	("Lead", "Opportunity"): "erpnext.crm.doctype.lead.lead.make_opportunity",
	("Lead", "Customer"): "erpnext.crm.doctype.lead.lead.make_customer",
	("Lead", "Quotation"): "erpnext.crm.doctype.lead.lead.make_quotation",
	("Quotation", "Sales Order"): "erpnext.selling.doctype.quotation.quotation.make_sales_order",
	("Sales Order", "Sales Invoice"): "erpnext.selling.doctype.sales_order.sales_order.make_sales_invoice",
	("Sales Order", "Delivery Note"): "erpnext.selling.doctype.sales_order.sales_order.make_delivery_note",
}


def value_for(intent, doc, before):
	return render(intent["value"], doc, before) if intent["is_template"] else intent["value"]


def check_value_fits(doc, fieldname, value):
	"""db_set skips the document's validation, so a Link or Select value is checked here."""
	if value in (None, ""):
		return
	df = doc.meta.get_field(fieldname)
	if not df:
		return
	if df.fieldtype == "Link" and not frappe.db.exists(df.options, value):
		raise ActionError(
			_("{0} {1} does not exist (for {2})").format(df.options, frappe.bold(value), fieldname)
		)
	if df.fieldtype == "Select":
		options = (df.options or "").split("\n")
		if value not in options:
			raise ActionError(_("{0} is not an option of {1}").format(frappe.bold(value), fieldname))


def checked_change(doc, fieldname, value, user):
	"""What the run-as user's own save of ``fieldname = value`` on a saved ``doc`` would be checked
	for besides the field itself: a value that fits the field, a link their User Permissions allow,
	and a Frappe Workflow state moved only by a transition they may take. Returns the "Skipped"
	result when the field already holds the value, else None."""
	check_value_fits(doc, fieldname, value)
	field_writes.check_link_permitted(doc, fieldname, value, user)
	old = doc.get(fieldname)
	if str(old if old is not None else "") == str(value if value is not None else ""):
		return {"status": "Skipped", "result": _("{0} already is {1}").format(fieldname, value)}
	field_writes.check_workflow_change(doc, fieldname, value, user)
	return None


def set_value(intent, doc, before, rule):
	user = permissions.run_as_of(rule)
	field_writes.check_field_writable(doc, intent["field"], user)
	value = field_writes.as_a_save_stores(doc, intent["field"], value_for(intent, doc, before))
	old = doc.get(intent["field"])
	skipped = checked_change(doc, intent["field"], value, user)
	if skipped:
		return skipped
	# db_set writes once, without another save; Frappe runs on_change, so Value Change rules on
	# this field still see it (the runner stops this rule from re-firing itself).
	if doc.get_doc_before_save() is None and not doc.is_new():
		# Right after an insert db_set would read the whole document back from the database as the
		# "before" its on_change handlers compare with; the document in hand is that state, and this
		# transaction already holds its row.
		doc._doc_before_save = copy.copy(doc)
	doc.db_set(intent["field"], value)
	return {
		"result": _("{0}: {1} → {2}").format(intent["field"], old, value),
		"minutes_saved": default_minutes(wf.SET_VALUE),
	}


def set_value_before_save(intent, doc, before, rule=None):
	"""Set Value of a Validate rule, on the document being saved. A value the rule may not write or
	cannot render is not set and the action is reported Failed; the user's save goes on."""
	result = {"action_type": wf.SET_VALUE, "action_row": intent.get("row")}
	old = doc.get(intent["field"])
	try:
		user = permissions.run_as_of(rule) if rule else frappe.session.user
		permissions.check_run_as_user(user)
		protected_doctypes.check_not_protected(
			doc.doctype, user, _("Rules on {0}").format(_(doc.doctype)), document_type=True
		)
		permissions.check_can_write_document(doc, user)
		field_writes.check_field_writable(doc, intent["field"], user)
		value = field_writes.as_a_save_stores(doc, intent["field"], value_for(intent, doc, before))
		field_writes.check_link_permitted(doc, intent["field"], value, user)
		field_writes.check_workflow_change(doc, intent["field"], value, user, before=before)
	except (frappe.ValidationError, frappe.PermissionError) as error:
		return {**result, "status": "Failed", "result": error_summary(error)}
	doc.set(intent["field"], value)
	return {
		**result,
		"status": "Success",
		"result": _("{0}: {1} → {2}").format(intent["field"], old, value),
		"minutes_saved": default_minutes(wf.SET_VALUE),
	}


def add_tag(intent, doc, before, rule):
	# A tag is a name, shown in lists and the sidebar: no markup in it (Frappe refuses < and > in
	# names, but DocTags writes the document's _user_tags before the Tag is named).
	tag = frappe.utils.strip_html(render(intent["tag"], doc, before))
	tag = tag.replace("<", "").replace(">", "").strip()
	if not tag:
		raise ActionError(_("The tag is empty"))
	frappe_add_tag(tag, doc.doctype, doc.name)
	return {"result": _("Tagged {0}").format(tag), "minutes_saved": default_minutes(wf.ADD_TAG)}


def add_comment(intent, doc, before, rule):
	# Rich text, sanitised as Frappe's Comment sanitises what a user types: simple formatting stays,
	# scripts, handlers and forms go (also for text that looks like JSON, which sanitize_html skips).
	text = sanitize_html(
		render(intent["message"], doc, before),
		always_sanitize=True,
		disallowed_tags=["form", "input", "button"],
	)
	# The comment is the run-as user's, not the words of whoever's save set the rule off: its author
	# (comment_email, shown on the timeline), owner (who may edit it) and mentions' sender.
	run_as = permissions.run_as_of(rule)
	with permissions.acting_as(run_as):
		comment = doc.add_comment(
			"Comment", text=text, comment_email=run_as, comment_by=frappe.utils.get_fullname(run_as)
		)
	return {
		"result": _("Commented"),
		"created_doctype": "Comment",
		"created_name": comment.name,
		"minutes_saved": default_minutes(wf.ADD_COMMENT),
	}


def create_document(intent, doc, before, rule):
	target_doctype = intent["doctype"]
	run_as = permissions.run_as_of(rule)
	protected_doctypes.check_not_protected(target_doctype, run_as, _("Create Document"))
	mapper = STANDARD_MAPPERS.get((doc.doctype, target_doctype)) if intent["use_mapper"] else None
	hidden = hidden_fields(doc.doctype, run_as)
	if mapper:
		# ERPNext's mapper checks read on the source and create on the target for the session user,
		# the one whose save set the rule off: it runs as the run-as user. It copies the source as
		# it loads it, so what it copied from fields that user may not read is taken out again.
		with permissions.acting_as(run_as):
			new = frappe.get_attr(mapper)(doc.name)
		_drop_hidden_copies(new, doc, hidden)
	else:
		new = frappe.new_doc(target_doctype)
	for fieldname, source in intent["field_map"].items():
		if isinstance(source, str) and source.startswith("doc.") and not wf.is_template(source):
			# Copied as the run-as user may read it: a field above that user's levels is absent.
			if not hidden.hides(source[4:]):
				new.set(fieldname, _readable_source(doc, source[4:], hidden))
		else:
			new.set(fieldname, render(source, doc, before) if isinstance(source, str) else source)
	link_back(new, doc)
	# The run-as user's create right and field levels are checked here, for that user rather than
	# the one whose save started the rule; insert then goes on without a second check for the saver.
	field_writes.check_can_create(new, intent["field_map"], run_as)
	# Fields above the levels the run-as user may write go back to their defaults, as that user's
	# own insert would have them (Frappe's validate_higher_perm_levels, skipped by ignore_permissions).
	with permissions.acting_as(run_as):
		new.validate_higher_perm_levels()
	# A draft for a person to complete: ERPNext's mandatory fields (items, rates) come later.
	new.flags.ignore_mandatory = True
	# The document is the run-as user's, whoever's save started the rule: its creator, "only if
	# creator" rights and the defaults its controller takes from the session are that user's.
	# It counts toward the documents automation may create in one save (runner.creating_document).
	with creating_document(doc), permissions.acting_as(run_as):
		new.insert(ignore_permissions=True)
	return {
		"result": _("Created {0} {1}").format(target_doctype, new.name),
		"created_doctype": target_doctype,
		"created_name": new.name,
		"minutes_saved": default_minutes(wf.CREATE_DOCUMENT),
	}


def _drop_hidden_copies(new, source, hidden):
	"""Empty every field of `new` (its rows too) that holds a value of a field of `source` that the
	run-as user may not read: a mapper copies by its own field map, so the copies are found by value."""
	if not hidden:
		return
	secrets = {source.get(fieldname) for fieldname in hidden.own}
	for table, fieldnames in hidden.tables.items():
		for row in source.get(table) or []:
			secrets.update(row.get(fieldname) for fieldname in fieldnames)
	secrets = {str(value) for value in secrets if value not in (None, "", 0) and not isinstance(value, list)}
	if not secrets:
		return
	for row in (new, *new.get_all_children()):
		for df in row.meta.fields:
			value = row.get(df.fieldname)
			if df.fieldtype not in no_value_fields and value not in (None, "") and str(value) in secrets:
				row.set(df.fieldname, None)


def _readable_source(doc, fieldname, hidden):
	value = doc.get(fieldname)
	if fieldname not in hidden.tables or not isinstance(value, list):
		return value
	# Rows without the fields the run-as user may not read, as new rows of the created document.
	identity = ("name", "parent", "parentfield", "parenttype", "idx", "doctype")
	rows = without_hidden({fieldname: value}, hidden)[fieldname]
	return [{key: item for key, item in row.items() if key not in identity} for row in rows]


def link_back(new, source):
	for df in new.meta.get_link_fields():
		if df.options == source.doctype and not new.get(df.fieldname):
			new.set(df.fieldname, source.name)
			return
	for df in new.meta.get_dynamic_link_fields():
		if not new.get(df.fieldname) and not new.get(df.options):
			new.set(df.options, source.doctype)
			new.set(df.fieldname, source.name)
			return


def reject(intent, doc, before, rule):
	# Reject only runs on Validate (the engine refuses it elsewhere); see runner._run_before_save.
	raise ActionError(reject_message(intent, doc, before, rule))


def reject_message(intent, doc, before, rule):
	"""The message a Reject shows, as plain text (escape it where it is shown as HTML: shown_text);
	a template that fails still rejects, with a plain message."""
	try:
		with reading_as(permissions.run_as_of(rule)):
			return render(intent["message"], doc, before)
	except ActionError:
		frappe.log_error(title=f"Reject message of {rule.name} could not be rendered")
		return _("Rejected by the automation rule {0}").format(rule.name)


def shown_text(text):
	"""Plain text a rule made (its template over values users typed), safe to show where the desk
	renders HTML (server messages, alert subjects): nothing in it becomes markup."""
	return escape_html(frappe.utils.cstr(text))
