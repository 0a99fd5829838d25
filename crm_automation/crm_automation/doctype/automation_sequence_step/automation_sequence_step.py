# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe.model.document import Document


class AutomationSequenceStep(Document):
	pass


def on_doctype_update():
	# The sweep reads (status, due_at) ranges; the save hooks read a document's pending steps.
	frappe.db.add_index("Automation Sequence Step", ["status", "due_at"])
	frappe.db.add_index("Automation Sequence Step", ["reference_doctype", "reference_name", "status"])
