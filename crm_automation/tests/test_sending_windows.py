"""Sending windows (issue 22): e-mails, SMS and System Notifications due outside a rule's (or a
step's) Send Only Within calendar are deferred to its next opening, never skipped, never sent twice.
Nothing sleeps: the clock of each module is patched to the moment a test needs."""

import datetime
import json
from contextlib import contextmanager
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation import dry_run
from crm_automation.actions import send_windows
from crm_automation.actions.sms import deliver_sms, retry_due_sms
from crm_automation.crm_automation.doctype.escalation_policy.test_escalation_policy import make_policy
from crm_automation.sequences import runs as sequence_runs
from crm_automation.sequences import steps as sequences
from crm_automation.tests.factories import delete_test_rules, make_lead, make_rule, make_user, new_request
from crm_automation.tests.test_reach import Gateway

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "Holiday List", "Role", "User Group", "Email Template"]

SATURDAY_3AM = datetime.datetime(2026, 12, 12, 3, 0)
MONDAY_9AM = datetime.datetime(2026, 12, 14, 9, 0)
TUESDAY_9AM = datetime.datetime(2026, 12, 15, 9, 0)
WEDNESDAY_10AM = datetime.datetime(2026, 12, 9, 10, 0)
OFFICE = "_Test SW Office"
OFFICE_WITH_HOLIDAY = "_Test SW Office Holiday"
ALWAYS_OPEN = "_Test SW Always Open"
HOLIDAYS = "_Test SW Holidays"
NOTIFIED = "sw.notified@example.com"
ATTACKER = "sw.attacker@example.com"
VICTIM = "sw.victim@example.com"
VICTIM_MOBILE = "+79990001122"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def office_hours(holiday_list=None):
	return {
		"enabled": 0,  # only its calendar is used: it must not escalate the tests' documents
		"calendar_mode": "Working Hours",
		"holiday_list": holiday_list,
		"working_hours": [{"weekday": d, "start_time": "09:00:00", "end_time": "18:00:00"} for d in WEEKDAYS],
	}


def level():
	return [{"level": 1, "after": 100, "unit": "Days", "action_type": "Add Comment", "message": "x"}]


@contextmanager
def clock(moment):
	"""Every module that reads the time for a message sees ``moment``."""
	with (
		patch("crm_automation.actions.send_windows.now_datetime", return_value=moment),
		patch("crm_automation.actions.sms.now_datetime", return_value=moment),
		patch("crm_automation.sequences.steps.now", return_value=moment),
	):
		yield


def action_rows(log, action_type):
	return frappe.get_all(
		"Automation Log Action",
		filters={"parent": log, "action_type": action_type},
		fields=["name", "status", "result", "next_attempt_on", "payload", "attempts"],
		order_by="idx asc",
	)


def log_of(doc, rule):
	return frappe.get_all(
		"Automation Log",
		filters={"reference_doctype": doc.doctype, "reference_name": doc.name, "rule": rule},
		pluck="name",
		order_by="creation asc",
	)


def alerts_for(user, doc):
	return frappe.get_all(
		"Notification Log",
		filters={"for_user": user, "document_type": doc.doctype, "document_name": doc.name},
		pluck="subject",
	)


class SendingWindowCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		if not frappe.db.exists("Holiday List", HOLIDAYS):
			frappe.get_doc(
				{
					"doctype": "Holiday List",
					"holiday_list_name": HOLIDAYS,
					"from_date": "2026-01-01",
					"to_date": "2027-12-31",
					"holidays": [{"holiday_date": "2026-12-14", "description": "Office closed"}],
				}
			).insert(ignore_permissions=True)
		make_policy(OFFICE, "Issue", level(), **office_hours())
		make_policy(OFFICE_WITH_HOLIDAY, "Issue", level(), **office_hours(HOLIDAYS))
		make_policy(ALWAYS_OPEN, "Issue", level(), enabled=0, calendar_mode="24x7")
		make_user(NOTIFIED, roles=["Sales User"])
		make_user(ATTACKER, roles=["CRM Automation Manager", "Sales User"])
		make_user(VICTIM, roles=["Sales User"])
		frappe.db.set_value("User", VICTIM, "mobile_no", VICTIM_MOBILE)
		frappe.db.set_single_value("CRM Automation Settings", "enabled", 1)
		delete_test_rules("_Test SW %")
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		delete_test_rules("_Test SW %")
		frappe.db.commit()
		super().tearDownClass()

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()
		# No message waiting from another test or module; delivery commits per row, here it stays in
		# the test's transaction, which tearDown rolls back.
		frappe.db.delete(
			"Automation Log Action",
			{
				"action_type": ("in", ("Send SMS", "System Notification")),
				"status": ("in", ("Queued", "Sending")),
			},
		)
		self.enterContext(patch.object(frappe.db, "commit"))

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()

	def notify_rule(self, window=OFFICE, **fields):
		return make_rule(
			"_Test SW Notify",
			"Lead",
			"New",
			actions=[
				{
					"action_type": "System Notification",
					"to_users": NOTIFIED,
					"subject": "New lead {{ doc.first_name }}",
				}
			],
			send_window_policy=window,
			**fields,
		)


class TestDeferral(SendingWindowCase):
	def test_email_due_saturday_3am_goes_out_monday_9am(self):
		"""Frappe's Email Queue holds it until the opening; the log says when."""
		make_rule(
			"_Test SW Email",
			"Lead",
			"New",
			actions=[
				{
					"action_type": "Send Email",
					"to_field": "email_id",
					"subject": "Hi {{ doc.first_name }}",
					"message": "Hello",
				}
			],
			send_window_policy=OFFICE,
		)
		with clock(SATURDAY_3AM):
			lead = make_lead(first_name="Sam", email_id="sw.sam@example.com")
		(log,) = log_of(lead, "_Test SW Email")
		(row,) = action_rows(log, "Send Email")
		self.assertIn("deferred to Monday 2026-12-14 09:00", row.result)
		queue = frappe.get_all(
			"Email Queue", filters={"reference_name": lead.name}, fields=["send_after", "status"]
		)
		self.assertEqual([(q.send_after, q.status) for q in queue], [(MONDAY_9AM, "Not Sent")])

	def test_notification_waits_for_the_opening_and_goes_once(self):
		self.notify_rule()
		with clock(SATURDAY_3AM):
			lead = make_lead(first_name="Nia")
		(log,) = log_of(lead, "_Test SW Notify")
		(row,) = action_rows(log, "System Notification")
		self.assertEqual((row.status, row.next_attempt_on), ("Queued", MONDAY_9AM))
		self.assertIn("deferred to Monday 2026-12-14 09:00", row.result)
		self.assertEqual(alerts_for(NOTIFIED, lead), [], "nothing is sent at 3 a.m.")
		self.assertEqual(send_windows.send_due_alerts(MONDAY_9AM - datetime.timedelta(minutes=1)), 0)
		self.assertEqual(alerts_for(NOTIFIED, lead), [])
		# Two sweeps (two workers) at the opening: one claim wins, one alert.
		self.assertTrue(send_windows.send_alert_row(row.name, MONDAY_9AM))
		self.assertFalse(send_windows.send_alert_row(row.name, MONDAY_9AM))
		self.assertEqual(send_windows.send_due_alerts(MONDAY_9AM + datetime.timedelta(minutes=5)), 0)
		self.assertEqual(alerts_for(NOTIFIED, lead), ["New lead Nia"])
		(row,) = action_rows(log, "System Notification")
		self.assertEqual(row.status, "Success")

	def test_a_holiday_moves_it_to_the_next_working_day(self):
		self.notify_rule(OFFICE_WITH_HOLIDAY)
		with clock(SATURDAY_3AM):
			lead = make_lead(first_name="Hal")
		(log,) = log_of(lead, "_Test SW Notify")
		(row,) = action_rows(log, "System Notification")
		self.assertEqual(row.next_attempt_on, TUESDAY_9AM)
		self.assertIn("deferred to Tuesday 2026-12-15 09:00", row.result)
		self.assertEqual(send_windows.send_due_alerts(MONDAY_9AM), 0)
		self.assertEqual(send_windows.send_due_alerts(TUESDAY_9AM), 1)
		self.assertEqual(send_windows.send_due_alerts(TUESDAY_9AM), 0)
		self.assertEqual(alerts_for(NOTIFIED, lead), ["New lead Hal"])

	def test_inside_the_window_it_is_sent_at_once(self):
		self.notify_rule()
		with clock(WEDNESDAY_10AM):
			lead = make_lead(first_name="Ida")
		(log,) = log_of(lead, "_Test SW Notify")
		(row,) = action_rows(log, "System Notification")
		self.assertEqual((row.status, row.next_attempt_on), ("Success", None))
		self.assertNotIn("deferred", row.result)
		self.assertEqual(alerts_for(NOTIFIED, lead), ["New lead Ida"])

	def test_sms_deferred_then_sent_once_by_the_sweep(self):
		with Gateway() as gateway:
			make_rule(
				"_Test SW SMS",
				"Lead",
				"New",
				actions=[
					{
						"action_type": "Send SMS",
						"sms_phone_field": "mobile_no",
						"sms_message": "Hi {{ doc.first_name }}",
					}
				],
				send_window_policy=OFFICE,
			)
			with clock(SATURDAY_3AM):
				lead = make_lead(first_name="Sid", mobile_no="13800138000")
				(log,) = log_of(lead, "_Test SW SMS")
				deliver_sms(log)  # the after-commit job: the row is not due
			self.assertEqual(gateway.received, [])
			summary, row = action_rows(log, "Send SMS")
			self.assertEqual((row.status, row.next_attempt_on), ("Queued", MONDAY_9AM))
			self.assertIn("deferred to Monday 2026-12-14 09:00", summary.result)
			with clock(MONDAY_9AM):
				retry_due_sms()
				retry_due_sms()
		self.assertEqual(gateway.received, [("13800138000", "Hi Sid")])
		self.assertEqual([r.status for r in action_rows(log, "Send SMS")], ["Success", "Success"])

	def test_dry_run_shows_when_it_would_send(self):
		rule = self.notify_rule()
		lead = make_lead(first_name="Dry")
		with clock(SATURDAY_3AM):
			result = dry_run.dry_run(rule.name, names=[lead.name], log=False)
		(action,) = result["results"][0]["actions"] if "results" in result else result[0]["actions"]
		self.assertEqual(action["deferred_to"], str(MONDAY_9AM))
		self.assertIn("would send Monday 2026-12-14 09:00", action["summary"])


class TestStepWindow(SendingWindowCase):
	def test_the_steps_own_window_overrides_the_rules(self):
		"""Rule: the office with Monday off; step: the plain office. The step's message goes Monday."""
		start = datetime.datetime(2026, 12, 11, 20, 0)  # Friday evening; the step is due 3 a.m.
		make_rule(
			"_Test SW Steps",
			"Lead",
			"New",
			actions=[
				{
					"action_type": "System Notification",
					"to_users": NOTIFIED,
					"subject": "Step for {{ doc.first_name }}",
					"step": "Later",
				}
			],
			steps=[
				{
					"step_name": "Later",
					"wait_type": "Duration",
					"wait_amount": 7,
					"wait_unit": "Hours",
					"send_window_policy": OFFICE,
				}
			],
			send_window_policy=OFFICE_WITH_HOLIDAY,
		)
		with clock(start):
			lead = make_lead(first_name="Stu")
		with clock(SATURDAY_3AM):
			new_request()
			sequence_runs.sweep(now_at=SATURDAY_3AM)
		(log,) = frappe.get_all(
			"Automation Log", filters={"reference_name": lead.name, "event": "sequence step"}, pluck="name"
		)
		(row,) = action_rows(log, "System Notification")
		self.assertEqual((row.status, row.next_attempt_on), ("Queued", MONDAY_9AM))
		self.assertEqual(alerts_for(NOTIFIED, lead), [])
		self.assertIsNotNone(sequences)


class TestRuleSave(SendingWindowCase):
	def test_a_24x7_policy_is_refused_as_a_window(self):
		with self.assertRaisesRegex(frappe.ValidationError, "24x7"):
			self.notify_rule(ALWAYS_OPEN)
		self.assertFalse(frappe.db.exists("Workflow Rule", "_Test SW Notify"))

	def test_a_working_hours_policy_is_accepted(self):
		self.assertEqual(self.notify_rule(OFFICE).send_window_policy, OFFICE)


class TestAttacker(SendingWindowCase):
	def test_deferral_neither_stores_nor_shows_a_number_the_run_as_user_may_not_read(self):
		"""The attacker's rule texts another user's mobile: deferred, the number is in no row, read
		only when the SMS goes out, and never written into the log afterwards either."""
		with Gateway() as gateway:
			frappe.set_user(ATTACKER)
			make_rule(
				"_Test SW Attack",
				"Lead",
				"New",
				actions=[{"action_type": "Send SMS", "sms_to_users": VICTIM, "sms_message": "Hi"}],
				send_window_policy=OFFICE,
			)
			frappe.set_user("Administrator")
			with clock(SATURDAY_3AM):
				lead = make_lead(first_name="Eve")
			(log,) = log_of(lead, "_Test SW Attack")
			for row in action_rows(log, "Send SMS"):
				self.assertNotIn(VICTIM_MOBILE.lstrip("+"), json.dumps(row, default=str))
			with clock(MONDAY_9AM):
				retry_due_sms()
		for row in action_rows(log, "Send SMS"):
			self.assertNotIn(VICTIM_MOBILE.lstrip("+"), json.dumps(row, default=str))
		self.assertEqual(len(gateway.received), 1, "sent once, at the opening")
		# The attacker may read the log, not its results or payloads (level 1).
		frappe.set_user(ATTACKER)
		doc = frappe.get_doc("Automation Log", log)
		doc.apply_fieldlevel_read_permissions()
		shown = doc.as_dict()
		frappe.set_user("Administrator")
		self.assertNotIn(VICTIM_MOBILE.lstrip("+"), json.dumps(shown, default=str))
