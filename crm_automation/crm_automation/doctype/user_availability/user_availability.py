# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import get_datetime

from crm_automation.trust.availability_access import may_manage_availability


class UserAvailability(Document):
	def validate(self):
		self.validate_may_manage()
		self.validate_periods()

	def validate_may_manage(self):
		"""Again at save, beside the permission hook: a save with ignore_permissions from code is the
		caller's business, every other save is checked here too."""
		if self.flags.ignore_permissions:
			return
		if not may_manage_availability(frappe.session.user, self.user):
			frappe.throw(
				_("You may set when {0} is away only for yourself or your team").format(frappe.bold(self.user)),
				frappe.PermissionError,
			)

	def validate_periods(self):
		for row in self.away_periods:
			if get_datetime(row.to_datetime) <= get_datetime(row.from_datetime):
				frappe.throw(
					_("Row {0}: Back At ({1}) must be after Away From ({2})").format(
						row.idx, frappe.bold(row.to_datetime), frappe.bold(row.from_datetime)
					)
				)
