# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe.model.document import Document

from crm_automation.runtime.retention import clear_finished_steps


class AutomationSequenceStep(Document):
	@staticmethod
	def clear_old_logs(days=90):
		# Called by Frappe's Log Settings clean-up; see runtime/retention.py for what is kept.
		clear_finished_steps(days)


def on_doctype_update():
	# The sweep reads (status, due_at) ranges; the save hooks read a document's pending steps.
	frappe.db.add_index("Automation Sequence Step", ["status", "due_at"])
	frappe.db.add_index("Automation Sequence Step", ["reference_doctype", "reference_name", "status"])
	# Retention keeps a log while a waiting step points to it.
	frappe.db.add_index("Automation Sequence Step", ["automation_log"])
