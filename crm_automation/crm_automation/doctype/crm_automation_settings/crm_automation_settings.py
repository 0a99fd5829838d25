# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document


class CRMAutomationSettings(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		enabled: DF.Check
		failure_threshold: DF.Int
		log_retention_days: DF.Int
		log_skipped_runs: DF.Check
		max_recursion_depth: DF.Int
		minutes_add_comment: DF.Float
		minutes_add_tag: DF.Float
		minutes_assign: DF.Float
		minutes_create_document: DF.Float
		minutes_create_todo: DF.Float
		minutes_reject: DF.Float
		minutes_send_email: DF.Float
		minutes_set_value: DF.Float
		minutes_system_notification: DF.Float
		minutes_unassign: DF.Float
		minutes_webhook: DF.Float
		time_trigger_catchup_hours: DF.Int
	# end: auto-generated types

	def validate(self):
		self.validate_recursion_depth()
		self.validate_retention()
		self.validate_minutes_saved()

	def on_update(self):
		frappe.clear_document_cache(self.doctype, self.doctype)

	def validate_recursion_depth(self):
		if not 1 <= (self.max_recursion_depth or 0) <= 10:
			frappe.throw(
				_("Max Recursion Depth must be from 1 to 10, not {0}").format(frappe.bold(self.max_recursion_depth))
			)

	def validate_retention(self):
		if (self.log_retention_days or 0) < 1:
			frappe.throw(
				_("Log Retention (Days) must be at least 1, not {0}").format(frappe.bold(self.log_retention_days))
			)

	def validate_minutes_saved(self):
		for df in self.meta.fields:
			if df.fieldname.startswith("minutes_") and (self.get(df.fieldname) or 0) < 0:
				frappe.throw(
					_("Minutes saved for {0} cannot be negative: {1}").format(
						frappe.bold(_(df.label)), frappe.bold(self.get(df.fieldname))
					)
				)
