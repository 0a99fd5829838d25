# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

"""Retention: Frappe's Log Settings clears what the app writes for itself, and never what is still
needed (deliveries to make, steps waiting, experiments' group records, activity a score counts)."""

from unittest.mock import patch

import frappe
from frappe.core.doctype.log_settings.log_settings import run_log_clean_up
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, now_datetime

from crm_automation.runtime import retention
from crm_automation.tests.factories import logs_for, make_lead, make_rule

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "DocType"]
RULE = "_Test RET Comment"
EXPERIMENT = "_Test RET Experiment"


def age(doctype, name, days, field="creation"):
	frappe.db.set_value(doctype, name, field, add_days(now_datetime(), -days), update_modified=False)


class TestRetention(FrappeTestCase):
	def setUp(self):
		frappe.set_user("Administrator")

	def no_commit(self):
		# Clearing commits per batch; the test's own rows must stay in its transaction.
		return patch.object(frappe.db, "commit")

	def comment_rule(self, name=RULE, **fields):
		return make_rule(name, "Lead", "New", actions=[{"action_type": "Add Comment", "message": "hi"}], **fields)

	def test_app_doctypes_are_listed_in_log_settings(self):
		retention.register_in_log_settings()
		listed = {row.ref_doctype: row.days for row in frappe.get_single("Log Settings").logs_to_clear}
		self.assertEqual(listed.get("Automation Log"), 90)
		self.assertEqual(listed.get("Automation Sequence Step"), 90)
		self.assertEqual(listed.get("CRM Activity"), 365)

	def test_settings_retention_becomes_the_log_settings_line(self):
		settings = frappe.get_single("CRM Automation Settings")
		settings.log_retention_days = 45
		settings.save()
		listed = {row.ref_doctype: row.days for row in frappe.get_single("Log Settings").logs_to_clear}
		self.assertEqual(listed["Automation Log"], 45)

	def test_frappe_clean_up_clears_old_logs_and_their_action_rows(self):
		self.comment_rule()
		old, recent = make_lead(first_name="RET Old"), make_lead(first_name="RET Recent")
		old_log, recent_log = logs_for(old)[0].name, logs_for(recent)[0].name
		self.assertTrue(frappe.db.exists("Automation Log Action", {"parent": old_log}))
		age("Automation Log", old_log, 91)
		with self.no_commit():
			retention.register_in_log_settings({"Automation Log": 90})
			run_log_clean_up()
		self.assertFalse(frappe.db.exists("Automation Log", old_log))
		self.assertFalse(frappe.db.exists("Automation Log Action", {"parent": old_log}))
		self.assertTrue(frappe.db.exists("Automation Log", recent_log))

	def test_a_log_with_a_delivery_still_to_make_is_kept(self):
		self.comment_rule()
		queued, done = make_lead(first_name="RET Queued"), make_lead(first_name="RET Done")
		queued_log, done_log = logs_for(queued)[0].name, logs_for(done)[0].name
		frappe.db.set_value("Automation Log Action", {"parent": queued_log}, "status", "Queued")
		for name in (queued_log, done_log):
			age("Automation Log", name, 200)
		with self.no_commit():
			retention.clear_automation_logs(90)
		self.assertTrue(frappe.db.exists("Automation Log", queued_log))
		self.assertFalse(frappe.db.exists("Automation Log", done_log))

	def test_a_log_a_waiting_step_points_to_is_kept(self):
		self.comment_rule()
		lead = make_lead(first_name="RET Waiting")
		log = logs_for(lead)[0].name
		step = frappe.get_doc(
			{
				"doctype": "Automation Sequence Step",
				"status": "Pending",
				"due_at": add_days(now_datetime(), 1),
				"workflow_rule": RULE,
				"step_index": 0,
				"step_name": "later",
				"reference_doctype": "Lead",
				"reference_name": lead.name,
				"automation_log": log,
			}
		).insert(ignore_permissions=True)
		age("Automation Log", log, 200)
		with self.no_commit():
			retention.clear_automation_logs(90)
		self.assertTrue(frappe.db.exists("Automation Log", log))
		frappe.db.set_value("Automation Sequence Step", step.name, "status", "Done")
		with self.no_commit():
			retention.clear_automation_logs(90)
		self.assertFalse(frappe.db.exists("Automation Log", log))

	def test_logs_of_a_rule_running_an_experiment_are_kept(self):
		self.comment_rule(EXPERIMENT, holdout_percent=50)
		self.comment_rule()
		lead = make_lead(first_name="RET Experiment")
		experiment_logs = [log.name for log in logs_for(lead, EXPERIMENT)]
		plain_logs = [log.name for log in logs_for(lead, RULE)]
		self.assertTrue(experiment_logs and plain_logs)
		for name in experiment_logs + plain_logs:
			age("Automation Log", name, 200)
		with self.no_commit():
			retention.clear_automation_logs(90)
		self.assertTrue(all(frappe.db.exists("Automation Log", name) for name in experiment_logs))
		self.assertFalse(any(frappe.db.exists("Automation Log", name) for name in plain_logs))

	def test_only_finished_steps_are_cleared(self):
		lead = make_lead(first_name="RET Steps")
		names = {}
		for status in ("Pending", "Done", "Exited"):
			names[status] = frappe.get_doc(
				{
					"doctype": "Automation Sequence Step",
					"status": status,
					"due_at": add_days(now_datetime(), -200),
					"step_index": 0,
					"step_name": status,
					"reference_doctype": "Lead",
					"reference_name": lead.name,
				}
			).insert(ignore_permissions=True).name
			age("Automation Sequence Step", names[status], 200, field="modified")
		with self.no_commit():
			retention.clear_finished_steps(90)
		self.assertTrue(frappe.db.exists("Automation Sequence Step", names["Pending"]))
		self.assertFalse(frappe.db.exists("Automation Sequence Step", names["Done"]))
		self.assertFalse(frappe.db.exists("Automation Sequence Step", names["Exited"]))

	def test_activity_a_score_still_counts_is_kept(self):
		lead = make_lead(first_name="RET Activity")
		if not frappe.db.exists("CRM Activity Type", "_Test RET Visit"):
			frappe.get_doc({"doctype": "CRM Activity Type", "activity_type_name": "_Test RET Visit"}).insert(
				ignore_permissions=True
			)
		activities = {}
		for days in (100, 500):
			activity = frappe.get_doc(
				{
					"doctype": "CRM Activity",
					"reference_doctype": "Lead",
					"reference_name": lead.name,
					"activity_type": "_Test RET Visit",
				}
			).insert(ignore_permissions=True)
			age("CRM Activity", activity.name, days)
			activities[days] = activity.name
		# A score counting 400 days back keeps the 100-day-old visit although the setting says 30.
		with self.no_commit(), patch.object(retention, "longest_activity_window", return_value=400):
			retention.clear_activities(30)
		self.assertTrue(frappe.db.exists("CRM Activity", activities[100]))
		self.assertFalse(frappe.db.exists("CRM Activity", activities[500]))
		with self.no_commit(), patch.object(retention, "longest_activity_window", return_value=0):
			retention.clear_activities(30)
		self.assertFalse(frappe.db.exists("CRM Activity", activities[100]))
