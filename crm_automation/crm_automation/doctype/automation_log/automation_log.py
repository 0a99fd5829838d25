# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe.model.document import Document
from frappe.query_builder import Interval
from frappe.query_builder.functions import Now

from crm_automation.runtime.run_log import (
	make_log,
)
from crm_automation.trust.record_access import may_edit_rules, redact_action, redact_text


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
