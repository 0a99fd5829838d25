# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document

from crm_automation.runtime.retention import clear_activities


class CRMActivity(Document):
	@staticmethod
	def clear_old_logs(days=90):
		# Called by Frappe's Log Settings clean-up; see runtime/retention.py for what is kept.
		clear_activities(days)

	def validate(self):
		self.validate_reference()
		self.recorded_by = self.recorded_by or frappe.session.user

	def validate_reference(self):
		if not frappe.db.exists(self.reference_doctype, self.reference_name):
			frappe.throw(
				_("{0} {1} does not exist").format(_(self.reference_doctype), frappe.bold(self.reference_name)),
				frappe.DoesNotExistError,
			)
