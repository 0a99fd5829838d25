"""Validate rules inside the document's own validate: they may set values on it or reject the save.

Only a deliberate Reject stops the user's save, and only one the rule's run-as user could make (that
user may create, or write, the document). Anything else in a Validate rule that fails (a template
that does not render, a value its field refuses, a field that is gone, a Reject its author may not
make) is the rule's failure, not the user's: what the rule set is undone, in memory and in the
database (a savepoint), the run is logged Failed and counted towards the rule's health, and the user
sees one short notice.

Frappe checks links before validate and mandatory fields, options, lengths and e-mail addresses
after it, so a value set here is checked here too: a bad one would otherwise fail the save later
(or, for a link, be saved unchecked).
"""

import frappe
from frappe import _
from frappe.utils import cstr, escape_html

from crm_automation import actions
from crm_automation.actions.common import ActionError, error_summary
from crm_automation.engine.workflow import REJECT
from crm_automation.trust import run_as as permissions
from crm_automation.trust.redaction import value_field_of
from crm_automation.trust.run_as import run_as_of
from crm_automation.trust.run_as_reads import reading_as

SAVEPOINT = "crm_automation_validate_rule"
# Fieldtypes stored as varchar: a longer value fails Frappe's length check after validate.
VARCHAR_FIELDTYPES = frozenset({"Data", "Link", "Dynamic Link", "Select", "Read Only", "Autocomplete"})


def apply_intents(rule, doc, before, intents):
	"""Carry out a Validate rule's Set Values in order, up to its Reject if it has one.
	Returns (results, the Reject intent or None). Never raises for a failing Set Value.
	Templates read as the rule's run-as user."""
	with reading_as(run_as_of(rule)):
		return _apply_intents(rule, doc, before, intents)


def _apply_intents(rule, doc, before, intents):
	originals = {}
	messages_before = len(frappe.local.message_log)
	frappe.db.savepoint(SAVEPOINT)
	results = []
	for position, intent in enumerate(intents):
		if intent["type"] == REJECT:
			refused = _refused_reject(intent, doc, rule)
			if refused is None:
				return results, intent
			# A Reject its author could not make is the rule's failure: the save goes on, undone.
			results.append(refused)
			_undo(doc, originals, messages_before)
			_mark_undone(results[:-1])
			return results, None
		try:
			originals.setdefault(intent["field"], doc.get(intent["field"]))
			result = actions.set_value_before_save(intent, doc, before, rule)
			if result["status"] != "Failed":
				check_value_fits(doc, intent["field"])
		except Exception as error:
			result = {
				"action_type": intent["type"],
				"action_row": intent.get("row"),
				"status": "Failed",
				"result": error_summary(error),
				"error": frappe.get_traceback(),
			}
		result["value_field"] = value_field_of(intent)
		results.append(result)
		if result["status"] == "Failed":
			_undo(doc, originals, messages_before)
			_mark_undone(results[:-1])
			# The rule's Reject, if it has one, still stands: it is the author's decision, not a fault;
			# unless its author may not make it.
			rest = intents[position + 1 :]
			rejection = next((i for i in rest if i["type"] == REJECT), None)
			refused = rejection and _refused_reject(rejection, doc, rule)
			if refused:
				results.append(refused)
				return results, None
			return results, rejection
	return results, None


def _refused_reject(intent, doc, rule):
	"""None when the rule's run-as user may reject this save (permissions.check_can_reject), else the
	Failed result saying why."""
	try:
		permissions.check_can_reject(doc, run_as_of(rule))
	except (frappe.ValidationError, frappe.PermissionError) as error:
		return {
			"action_type": intent["type"],
			"action_row": intent.get("row"),
			"status": "Failed",
			"result": error_summary(error),
		}
	return None


def _mark_undone(results):
	for done in results:
		if done["status"] == "Success":
			done.update(status="Skipped", result=_("Undone: another action of the rule failed"))


def _undo(doc, originals, messages_before):
	frappe.db.rollback(save_point=SAVEPOINT)
	for fieldname, value in originals.items():
		doc.set(fieldname, value)
	# The red dialog of a failed automation would tell the user their save failed; it does not.
	del frappe.local.message_log[messages_before:]


def check_value_fits(doc, fieldname):
	"""What Frappe would refuse about this field's new value later in the save, refused now."""
	df = doc.meta.get_field(fieldname)
	if not df:
		raise ActionError(_("{0} has no field {1}").format(_(doc.doctype), frappe.bold(fieldname)))
	value = doc.get(fieldname)
	label = _(df.label or fieldname)
	if value in (None, ""):
		if df.reqd:
			raise ActionError(_("{0} is mandatory and would be emptied").format(label))
		return
	if df.fieldtype == "Link" and not frappe.db.exists(df.options, value):
		raise ActionError(
			_("{0} {1} does not exist (for {2})").format(_(df.options), frappe.bold(value), label)
		)
	if df.fieldtype == "Select" and cstr(value) not in (df.options or "").split("\n"):
		raise ActionError(_("{0} is not an option of {1}").format(frappe.bold(value), label))
	if df.fieldtype in VARCHAR_FIELDTYPES:
		limit = df.length or frappe.db.VARCHAR_LEN
		if len(cstr(value)) > limit:
			raise ActionError(_("{0} would be longer than {1} characters").format(label, limit))
	if df.fieldtype == "Data" and df.options == "Email":
		frappe.utils.validate_email_address(cstr(value), throw=True)


def notify_failure(rule):
	frappe.msgprint(
		_("Automation rule {0} failed and was skipped; it did not change this document.").format(
			frappe.bold(escape_html(rule.name))
		),
		indicator="orange",
		alert=True,
	)
