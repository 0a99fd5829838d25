# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document

# Set by crm_automation.versions.snapshots, the one writer of versions.
WRITER_FLAG = "crm_automation_version_writer"


class WorkflowRuleVersion(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		reverted_to: DF.Int
		rule: DF.Link
		saved_by: DF.Link | None
		saved_on: DF.Datetime | None
		snapshot: DF.JSON | None
		summary: DF.SmallText | None
		version_no: DF.Int
	# end: auto-generated types

	def autoname(self):
		# One name per rule and number: two saves claiming the same number cannot both succeed.
		self.name = f"{self.rule} v{self.version_no}"

	def validate(self):
		self.validate_writer()

	def validate_writer(self):
		"""A version is what a revert restores: written by the app when a rule is saved, never by
		hand (not even by someone a site grants write permission), so it cannot smuggle in content
		that no save of the rule checked."""
		if not self.flags.get(WRITER_FLAG):
			frappe.throw(
				_("Versions of a Workflow Rule are written by saving the rule, not by hand"),
				frappe.PermissionError,
			)

	def on_trash(self):
		if not self.flags.get(WRITER_FLAG):
			frappe.throw(
				_("Versions of a Workflow Rule are deleted with the rule, not one by one"),
				frappe.PermissionError,
			)
