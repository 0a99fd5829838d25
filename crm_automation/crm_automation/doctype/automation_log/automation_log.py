# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document

from crm_automation.runtime.retention import clear_automation_logs
from crm_automation.runtime.run_log import (
	make_log,
)
from crm_automation.trust.redaction import Reader, redact_action, redact_log, redact_text
from crm_automation.trust.roles import may_edit_rules


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
		outcome: DF.Literal["Success", "Skipped", "Failed", "Rejected", "Dry Run", "Held Out"]
		reason: DF.SmallText | None
		reference_doctype: DF.Link | None
		reference_name: DF.DynamicLink | None
		rule: DF.DynamicLink | None
		rule_type: DF.Link | None
		trace: DF.Code | None
		trigger: DF.Data | None
	# end: auto-generated types

	@staticmethod
	def clear_old_logs(days=90):
		# Called by Frappe's Log Settings clean-up; see runtime/retention.py for what is kept.
		clear_automation_logs(days)

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


def on_doctype_update():
	# Log Settings' clean-up walks old logs oldest first (runtime/retention.py). Frappe adds the same
	# index itself when it alters a table sorted by creation: never twice.
	if not frappe.db.get_column_index("tabAutomation Log", "creation", unique=False):
		frappe.db.add_index("Automation Log", ["creation"])
