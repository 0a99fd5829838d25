# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, now_datetime

from crm_automation.tests.factories import logs_for, make_lead, make_rule, make_user

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "DocType"]


class TestAutomationLog(FrappeTestCase):
	def test_old_logs_are_deleted_after_retention(self):
		"""Log Settings' clean-up deletes logs (and their action rows) older than the retention period."""
		from crm_automation.runtime.retention import clear_automation_logs

		make_rule("_Test Log Retention", "Lead", "New", actions=[{"action_type": "Add Comment", "message": "kept?"}])
		old, recent = make_lead(first_name="Old"), make_lead(first_name="Recent")
		old_log = logs_for(old)[0].name
		frappe.db.set_value("Automation Log", old_log, "creation", add_days(now_datetime(), -91), update_modified=False)
		with patch.object(frappe.db, "commit"):
			clear_automation_logs(90)
		self.assertFalse(frappe.db.exists("Automation Log", old_log))
		self.assertFalse(frappe.db.exists("Automation Log Action", {"parent": old_log}))
		self.assertTrue(logs_for(recent))

	def test_skipped_runs_are_logged_with_the_reason_when_asked(self):
		"""With 'Log Skipped Runs', a rule that did not fire is logged with why, and its trace."""
		make_rule(
			"_Test Skip Reason",
			"Lead",
			"New",
			conditions={"all": [{"field": "source", "op": "=", "value": "Exhibition"}]},
			actions=[{"action_type": "Add Comment", "message": "x"}],
		)
		frappe.db.set_single_value("CRM Automation Settings", "log_skipped_runs", 1)
		frappe.clear_document_cache("CRM Automation Settings", "CRM Automation Settings")
		try:
			lead = make_lead(first_name="Skipped")
		finally:
			frappe.db.set_single_value("CRM Automation Settings", "log_skipped_runs", 0)
		log = frappe.get_doc("Automation Log", logs_for(lead, "_Test Skip Reason")[0].name)
		self.assertEqual((log.outcome, log.reason), ("Skipped", "conditions not met"))
		self.assertIn('"expected": "Exhibition"', log.trace)

	def test_history_explains_why_to_a_user_who_can_read_the_document(self):
		"""End users see on a document why automation did what it did."""
		from crm_automation.api import get_automation_history

		make_rule(
			"_Test History",
			"Lead",
			"New",
			conditions={"all": [{"field": "first_name", "op": "like", "value": "Hist%"}]},
			actions=[{"action_type": "Add Comment", "message": "explained"}],
		)
		lead = make_lead(first_name="Historic")
		sales = make_user("crm-auto-history@example.com", roles=["Sales User"])
		frappe.set_user(sales)
		try:
			history = get_automation_history("Lead", lead.name)
		finally:
			frappe.set_user("Administrator")
		entry = next(h for h in history if h.rule == "_Test History")
		self.assertEqual(entry.outcome, "Success")
		self.assertEqual(entry.trace[0]["actual"], "Historic")
		self.assertTrue(entry.trace[0]["result"])
		self.assertEqual(entry.actions[0].action_type, "Add Comment")
