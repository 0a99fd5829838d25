# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document

from crm_automation.runtime.retention import register_in_log_settings
from crm_automation.runtime.run_state import DEFAULT_DOCUMENTS_PER_SAVE

# How deep one automation may start another, as anyone who may edit these settings may set it; a
# System Manager may allow up to MAX_RECURSION_DEPTH. Each level can multiply what one save does.
MANAGER_MAX_RECURSION_DEPTH = 3
MAX_RECURSION_DEPTH = 10
# Documents Create Document actions may make in all while one document is saved (runner.py).
MAX_DOCUMENTS_PER_SAVE = 100


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
		max_documents_per_save: DF.Int
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
		self.validate_documents_per_save()
		self.validate_retention()
		self.validate_minutes_saved()

	def on_update(self):
		frappe.clear_document_cache(self.doctype, self.doctype)
		if self.has_value_changed("log_retention_days"):
			# Frappe's Log Settings does the clearing; this setting is its Automation Log line.
			register_in_log_settings({"Automation Log": self.log_retention_days})

	def validate_recursion_depth(self):
		if not 1 <= (self.max_recursion_depth or 0) <= MAX_RECURSION_DEPTH:
			frappe.throw(
				_("Max Recursion Depth must be from 1 to 10, not {0}").format(frappe.bold(self.max_recursion_depth))
			)
		if (
			self.max_recursion_depth > MANAGER_MAX_RECURSION_DEPTH
			and self._changed("max_recursion_depth", MANAGER_MAX_RECURSION_DEPTH)
			and not _is_system_manager()
		):
			frappe.throw(
				_("Max Recursion Depth above {0} may be set by a System Manager only, not {1}").format(
					MANAGER_MAX_RECURSION_DEPTH, frappe.bold(self.max_recursion_depth)
				)
			)

	def validate_documents_per_save(self):
		if self.max_documents_per_save is None:
			self.max_documents_per_save = DEFAULT_DOCUMENTS_PER_SAVE  # a site from before the setting
		value = self.max_documents_per_save
		if not 1 <= (value or 0) <= MAX_DOCUMENTS_PER_SAVE:
			frappe.throw(
				_("Max Documents Created per Save must be from 1 to {0}, not {1}").format(
					MAX_DOCUMENTS_PER_SAVE, frappe.bold(value)
				)
			)
		if self._changed("max_documents_per_save", DEFAULT_DOCUMENTS_PER_SAVE) and not _is_system_manager():
			frappe.throw(
				_(
					"Max Documents Created per Save may be changed by a System Manager only, not to {0}"
				).format(frappe.bold(value))
			)

	def _changed(self, fieldname, default):
		before = self.get_doc_before_save()
		previous = before.get(fieldname) if before else None
		return (self.get(fieldname) or 0) != (previous if previous is not None else default)

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


def _is_system_manager():
	return "System Manager" in frappe.get_roles()
