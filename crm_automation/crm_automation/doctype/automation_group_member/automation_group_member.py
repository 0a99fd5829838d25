# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe.model.document import Document


class AutomationGroupMember(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		group_name: DF.Data
		reference_doctype: DF.Link
		reference_name: DF.DynamicLink
		rule: DF.Link
	# end: auto-generated types

	pass


def on_doctype_update():
	# The Rule Outcome report counts a rule's groups: rule first, then the group.
	frappe.db.add_index("Automation Group Member", ["rule", "group_name"])
