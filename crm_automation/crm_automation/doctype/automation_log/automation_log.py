# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import json

import frappe
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
		# The form shows a log as the history panel does: where messages and webhooks went only to
		# those who may edit rules, should anyone else ever be given read access to logs.
		from crm_automation.trust.record_access import may_edit_rules, redact_action, redact_text

		if may_edit_rules():
			return
		self.reason = redact_text(self.reason)
		self.error = redact_text(self.error)
		for row in self.actions:
			shown = redact_action(row.as_dict(), sees_recipients=False)
			row.result, row.response = shown.get("result"), shown.get("response")

	@staticmethod
	def clear_old_logs(days=90):
		"""Called by Frappe's Log Settings and by our daily job: delete logs older than ``days``."""
		table = frappe.qb.DocType("Automation Log")
		frappe.db.delete(table, filters=(table.creation < (Now() - Interval(days=days))))


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
):
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
