# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import json

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.query_builder import Interval
from frappe.query_builder.functions import Now


class AutomationLog(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from crm_automation.crm_automation.doctype.automation_log_action.automation_log_action import (
			AutomationLogAction,
		)

		actions: DF.Table[AutomationLogAction]
		branch: DF.Data | None
		depth: DF.Int
		duration_ms: DF.Float
		error: DF.Code | None
		event: DF.Data | None
		minutes_saved: DF.Float
		outcome: DF.Literal["Success", "Skipped", "Failed", "Rejected", "Dry Run"]
		reason: DF.SmallText | None
		reference_doctype: DF.Link | None
		reference_name: DF.DynamicLink | None
		rule: DF.DynamicLink | None
		rule_type: DF.Link | None
		trace: DF.Code | None
		trigger: DF.Data | None
	# end: auto-generated types

	def onload(self):
		# The form shows a log as the history panel does (see redact_for_reader).
		self.redact_for_reader()

	def validate(self):
		if self.flags.redacted_for:
			# What a reader was shown is not what was logged: it must never replace it.
			frappe.throw(
				_("This log was loaded as {0} may read it and cannot be saved").format(
					self.flags.redacted_for
				)
			)

	def apply_fieldlevel_read_permissions(self):
		# Every way of reading one log (the form, frappe.client.get, /api/resource) comes through
		# here. The run's texts are at permission level 1, for System Managers: anyone else gets them
		# back as they may read them, never the stored ones (lists and reports leave them out).
		self.redact_for_reader()
		shown = {key: self.get(key) for key in _RUN_TEXTS}
		rows = [{key: row.get(key) for key in _ROW_TEXTS} for row in self.actions]
		super().apply_fieldlevel_read_permissions()
		if frappe.session.user == "Administrator" or self.flags.redacted_for is None:
			return
		self.update(shown)
		for row, values in zip(self.actions, rows, strict=True):
			row.update(values)

	def redact_for_reader(self):
		"""The log as the session user may read it, in place (it is then never saved): where messages
		and webhooks went only for those who may edit rules; values of fields they may not read (of
		the document, its linked documents and Set Value results) hidden for everyone but System
		Managers. Done once per loaded document."""
		from crm_automation.record_access import Reader, may_edit_rules, redact_log

		user = frappe.session.user
		if self.flags.redacted_for == user:
			return
		reader = Reader(user)
		if reader.everything:
			self.flags.redacted_for = None
			return
		self.flags.redacted_for = user
		doc = _reference_document(self.reference_doctype, self.reference_name)
		log = {
			"reason": self.reason,
			"error": self.error,
			"trace": self.trace,
			"actions": [row.as_dict() for row in self.actions],
		}
		redact_log(log, may_edit_rules(user), reader, self.reference_doctype, doc)
		self.reason, self.error, self.trace = log["reason"], log["error"], log["trace"]
		for row, shown in zip(self.actions, log["actions"], strict=True):
			row.result, row.response = shown.get("result"), shown.get("response")
			row.payload = None

	@staticmethod
	def clear_old_logs(days=90):
		"""Called by Frappe's Log Settings and by our daily job: delete logs older than ``days``."""
		table = frappe.qb.DocType("Automation Log")
		frappe.db.delete(table, filters=(table.creation < (Now() - Interval(days=days))))


# The run's texts (permission level 1 in the doctypes): what redact_for_reader rewrites for a reader.
_RUN_TEXTS = ("reason", "error", "trace")
_ROW_TEXTS = ("result", "response")


def _reference_document(doctype, name):
	"""The document a log is about, as it is now, or None (deleted, or never saved)."""
	if not doctype or not name or not frappe.db.exists("DocType", doctype):
		return None
	if frappe.get_meta(doctype).istable or not frappe.db.exists(doctype, name):
		return None
	return frappe.get_doc(doctype, name)


def make_log(
	*,
	rule_type,
	rule,
	trigger,
	event,
	doc,
	outcome,
	branch=None,
	reason=None,
	trace=(),
	results=(),
	duration_ms=0.0,
	minutes_saved=0.0,
	depth=0,
	error=None,
	run_as=None,
):
	"""Write one run's log. Its trace keeps no value of a field the rule's run-as user (`run_as`, or
	as the rule names it now) may not read: what a dry run evaluated as someone else included."""
	if trace:
		trace = readable_trace(trace, doc.doctype, run_as or _run_as_of(rule_type, rule))
	log = frappe.new_doc("Automation Log")
	log.update(
		{
			"rule_type": rule_type,
			"rule": rule,
			"trigger": trigger,
			"event": event,
			"reference_doctype": doc.doctype,
			"reference_name": doc.name,
			"outcome": outcome,
			"branch": branch,
			"reason": reason,
			"trace": json.dumps(trace, default=str, indent=1) if trace else None,
			"duration_ms": duration_ms,
			"minutes_saved": minutes_saved,
			"depth": depth,
			"error": error,
		}
	)
	for result in results:
		log.append(
			"actions",
			{
				"action_type": result.get("action_type"),
				"action_row": result.get("action_row"),
				"status": result.get("status"),
				"result": result.get("result"),
				"value_field": result.get("value_field"),
				"created_doctype": result.get("created_doctype"),
				"created_name": result.get("created_name"),
				"attempts": result.get("attempts") or 0,
				"minutes_saved": result.get("minutes_saved") or 0,
				"response": result.get("error") or result.get("response"),
				"payload": result.get("payload"),
			},
		)
	# The document may be a rejected or deleted one; the log must not fail on that link.
	log.flags.ignore_links = True
	log.insert(ignore_permissions=True)
	return log.name


_RULE_TYPES = ("Workflow Rule", "Escalation Policy", "Lead Score Rule")


def _run_as_of(rule_type, rule):
	from crm_automation.permissions import run_as_of

	if rule_type not in _RULE_TYPES or not rule or not frappe.db.exists(rule_type, rule):
		return "Guest"  # reads no field above level 0
	return run_as_of(frappe.db.get_value(rule_type, rule, ["run_as", "owner"], as_dict=True))


def readable_trace(trace, doctype, user):
	"""The trace as `user` may read it: an entry on a field above that user's permission levels (its
	own, of a child row, along a linked path) keeps its test and result, not the values. A live run
	evaluated on the document as that user reads it, so this only holds the line for any caller
	that did not (a dry run evaluates as the system reads)."""
	from crm_automation.field_access import hidden_fields
	from crm_automation.permissions import is_system_manager

	if is_system_manager(user):
		return trace
	linked = any(isinstance(entry, dict) and "." in str(entry.get("field") or "") for entry in trace)
	if not linked and not hidden_fields(doctype, user):
		return trace
	shown = []
	for entry in trace:
		field = str(entry.get("field") or "") if isinstance(entry, dict) else ""
		if field and _hides(doctype, field.split("."), user):
			entry = {key: value for key, value in entry.items() if key not in ("actual", "before")}
		shown.append(entry)
	return shown


def _hides(doctype, segments, user):
	"""Whether `user` may not read the field `segments` names from `doctype` (a field, a child table's
	row field, or a linked path such as customer.territory or party_name[Customer].tax_id)."""
	from frappe.model import table_fields

	from crm_automation.field_access import hidden_fields

	hidden = hidden_fields(doctype, user)
	fieldname, _bracket, declared = segments[0].partition("[")
	if fieldname in hidden.own:
		return True
	if len(segments) == 1:
		return False
	df = frappe.get_meta(doctype).get_field(fieldname)
	if df is None:
		return False
	if df.fieldtype in table_fields:
		return hidden.hides(segments[1], fieldname)
	target = declared.rstrip("]") or (df.options if df.fieldtype == "Link" else None)
	if not target or not frappe.db.exists("DocType", target):
		return False
	return _hides(target, segments[1:], user)
