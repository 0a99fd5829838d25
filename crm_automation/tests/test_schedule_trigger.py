"""The Schedule trigger on a real site (issue 22): every Monday 09:00, for each open Opportunity whose
Expected Closing is this week, a ToDo for its owner, once per (rule, document, moment) however often
the scheduler and its jobs run; after a 3-day stop it catches up once; a working-days calendar skips
a holiday; the run-as user's record and field rights bound what a schedule reaches.

Time is fixed by passing ``now`` to the scheduler and patching the rule's now_datetime at save; the
jobs the scheduler queues are captured and run here, each as a fresh job (new_request)."""

import datetime
import json
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation import scheduler
from crm_automation.runtime import schedule_runs
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import ensure, make_opportunity, make_rule, make_user, new_request

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "Territory", "Holiday List"]

PREFIX = "_Test SCH"
ATTACKER = "crm-sch-attacker@example.com"
TERRITORY_A, TERRITORY_B = "_Test SCH Territory A", "_Test SCH Territory B"
HOLIDAYS = "_Test SCH Holidays"
POLICY = "_Test SCH Office"
LATER_FIELD = "sch_later_secret"

FRIDAY_NOON = datetime.datetime(2027, 2, 26, 12, 0)
MONDAY_9 = datetime.datetime(2027, 3, 1, 9, 0)
WEEK = ("2027-03-01", "2027-03-07")
WEDNESDAY = datetime.date(2027, 3, 3)  # a holiday in the office's calendar

WEEKLY = {
	"schedule_frequency": "Weekly",
	"schedule_weekday": "Monday",
	"schedule_time": "09:00:00",
}
OPEN_AND_CLOSING_THIS_WEEK = {
	"all": [
		{"field": "status", "op": "=", "value": "Open"},
		{"field": "expected_closing", "op": "between", "value": list(WEEK)},
	]
}
TODO = {"action_type": "Create ToDo", "message": "Closing this week: {{ doc.name }}", "to_owner": 1}


def saved_at(moment):
	"""The rule's save (which works out its next moment) as if at ``moment``."""
	return patch(
		"crm_automation.crm_automation.doctype.workflow_rule.workflow_rule.now_datetime", return_value=moment
	)


def todos(doc):
	return frappe.db.count("ToDo", {"reference_type": doc.doctype, "reference_name": doc.name})


def opportunity(closing, status="Open", territory=TERRITORY_A):
	new_request()
	opp = make_opportunity(expected_closing=closing, territory=territory)
	if status != "Open":
		opp.db_set("status", status)
	return opp


class TestScheduleTrigger(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		for territory in (TERRITORY_A, TERRITORY_B):
			ensure("Territory", territory, territory_name=territory, parent_territory="All Territories")
		make_user(ATTACKER, roles=["CRM Automation Manager", "Sales User"])
		if not frappe.db.exists("User Permission", {"user": ATTACKER, "allow": "Territory"}):
			frappe.get_doc(
				{
					"doctype": "User Permission",
					"user": ATTACKER,
					"allow": "Territory",
					"for_value": TERRITORY_A,
					"apply_to_all_doctypes": 0,
					"applicable_for": "Opportunity",
				}
			).insert(ignore_permissions=True)
		if not frappe.db.exists("Custom Field", {"dt": "Opportunity", "fieldname": LATER_FIELD}):
			# DDL commits: created once, removed in tearDownClass.
			frappe.get_doc(
				{
					"doctype": "Custom Field",
					"dt": "Opportunity",
					"fieldname": LATER_FIELD,
					"label": "SCH Later",
					"fieldtype": "Data",
					"permlevel": 0,
				}
			).insert(ignore_permissions=True)
		if not frappe.db.exists("Holiday List", HOLIDAYS):
			frappe.get_doc(
				{
					"doctype": "Holiday List",
					"holiday_list_name": HOLIDAYS,
					"from_date": "2027-01-01",
					"to_date": "2027-12-31",
					"holidays": [{"holiday_date": WEDNESDAY, "description": "Office closed"}],
				}
			).insert(ignore_permissions=True)
		frappe.db.set_single_value("CRM Automation Settings", {"enabled": 1, "failure_threshold": 50})
		frappe.clear_cache(user=ATTACKER)

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		frappe.delete_doc("Custom Field", f"Opportunity-{LATER_FIELD}", force=True, ignore_permissions=True)
		frappe.db.delete("User Permission", {"user": ATTACKER})
		frappe.clear_cache(user=ATTACKER)
		clear_rule_cache()
		super().tearDownClass()

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()
		self.jobs = []
		# The scheduler and its jobs commit; here everything stays in the test's savepoint.
		self.enterContext(patch.object(frappe.db, "commit"))
		self.enterContext(
			patch("frappe.enqueue", side_effect=lambda method, **kw: self.jobs.append((method, kw)))
		)
		frappe.db.savepoint("sch_test")

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback(save_point="sch_test")
		frappe.db.set_value("Custom Field", f"Opportunity-{LATER_FIELD}", "permlevel", 0)
		frappe.clear_cache(doctype="Opportunity")
		clear_rule_cache()

	def rule(self, name, at=FRIDAY_NOON, conditions=OPEN_AND_CLOSING_THIS_WEEK, **fields):
		with saved_at(at):
			return make_rule(
				f"{PREFIX} {name}", "Opportunity", "Schedule", [TODO], conditions, **{**WEEKLY, **fields}
			)

	def sweep(self, now):
		"""One scheduler run at ``now``; returns the (rule, moment) jobs it queued, not yet run."""
		before = len(self.jobs)
		scheduler.run_schedules_for_all_rules(now=now)
		return [kw for method, kw in self.jobs[before:] if method.endswith("run_scheduled_rule")]

	def run_jobs(self):
		"""Run every queued job (and what those queue) as a worker would, each a fresh job."""
		while self.jobs:
			method, kw = self.jobs.pop(0)
			kw = {k: v for k, v in kw.items() if k not in ("queue", "job_id", "deduplicate", "timeout")}
			new_request()
			frappe.get_attr(method)(**kw)

	def moments(self, rule):
		return frappe.db.get_value(
			"Workflow Rule", rule.name, ["schedule_last_moment", "schedule_next_moment"], as_dict=True
		)

	def test_every_monday_a_todo_for_each_open_opportunity_closing_this_week_once(self):
		"""The issue's example fires once per document, though the scheduler runs twice, the rule's job
		runs twice and one chunk job runs twice (two workers)."""
		rule = self.rule("Weekly")
		self.assertEqual(rule.schedule_next_moment, MONDAY_9, "the form shows the next moment from the save")
		due = opportunity("2027-03-03")
		next_week = opportunity("2027-03-10")
		closed = opportunity("2027-03-04", status="Closed")

		self.assertEqual(self.sweep(MONDAY_9 - datetime.timedelta(minutes=1)), [], "not due before 09:00")
		jobs = self.sweep(MONDAY_9 + datetime.timedelta(seconds=30))
		self.assertEqual([job["moment"] for job in jobs], [str(MONDAY_9)])
		self.assertEqual(
			self.sweep(MONDAY_9 + datetime.timedelta(minutes=1)), [], "a second scheduler: nothing"
		)
		self.run_jobs()
		self.assertEqual((todos(due), todos(next_week), todos(closed)), (1, 0, 0))
		todo = frappe.get_all(
			"ToDo", filters={"reference_name": due.name}, fields=["allocated_to", "description"]
		)[0]
		self.assertEqual(todo.allocated_to, due.owner)
		self.assertEqual(todo.description, f"Closing this week: {due.name}")

		# Two workers: the rule's job and its chunk job again, for the same moment.
		new_request()
		schedule_runs.run_scheduled_rule(rule.name, str(MONDAY_9))
		new_request()
		schedule_runs.fire_scheduled_documents(rule.name, str(MONDAY_9), [due.name])
		self.run_jobs()
		self.assertEqual(todos(due), 1)
		self.assertEqual(
			frappe.db.count(
				"Automation Log", {"rule": rule.name, "reference_name": due.name, "event": "scheduled"}
			),
			1,
		)
		self.assertEqual(
			self.moments(rule),
			{"schedule_last_moment": MONDAY_9, "schedule_next_moment": MONDAY_9 + datetime.timedelta(days=7)},
		)

	def test_two_schedulers_reading_the_rule_at_once_fan_out_once(self):
		"""Both read the rule as due; the conditional update lets only the first claim the moment."""
		rule = self.rule("Rivals")
		now = MONDAY_9 + datetime.timedelta(seconds=5)
		[seen_by_rival] = [row for row in schedule_runs.due_rules(now) if row.name == rule.name]
		self.assertEqual(len(self.sweep(now)), 1)
		self.assertIsNone(schedule_runs.claim_moment(seen_by_rival, now))

	def test_a_three_day_stop_catches_up_once(self):
		"""Daily at 09:00; the scheduler stops Monday 08:00 and is back Thursday 10:00: one run, for
		Thursday 09:00, not four."""
		rule = self.rule("Daily", at=MONDAY_9 - datetime.timedelta(hours=2), schedule_frequency="Daily")
		due = opportunity("2027-03-05")
		self.assertEqual(self.sweep(MONDAY_9 - datetime.timedelta(hours=1)), [])
		back = MONDAY_9 + datetime.timedelta(days=3, hours=1)
		jobs = self.sweep(back)
		self.assertEqual([job["moment"] for job in jobs], [str(MONDAY_9 + datetime.timedelta(days=3))])
		self.run_jobs()
		self.assertEqual(self.sweep(back + datetime.timedelta(minutes=1)), [])
		self.assertEqual(todos(due), 1)
		self.assertEqual(
			self.moments(rule)["schedule_next_moment"], MONDAY_9 + datetime.timedelta(days=4), "Friday 09:00"
		)

	def test_working_days_calendar_skips_the_holiday(self):
		"""Daily at 09:00 on the office's working days: Wednesday, a holiday, is passed over."""
		from crm_automation.crm_automation.doctype.escalation_policy.test_escalation_policy import (
			business_calendar,
			make_policy,
		)

		make_policy(
			POLICY,
			"Opportunity",
			clock_start="Creation",
			levels=[{"level": 1, "after": 2, "unit": "Hours", "action_type": "Add Comment", "message": "x"}],
			**business_calendar(HOLIDAYS),
		)
		tuesday_10 = MONDAY_9 + datetime.timedelta(days=1, hours=1)
		rule = self.rule("Office Days", at=tuesday_10, schedule_frequency="Daily", schedule_calendar=POLICY)
		thursday_9 = MONDAY_9 + datetime.timedelta(days=3)
		self.assertEqual(rule.schedule_next_moment, thursday_9)
		due = opportunity("2027-03-05")
		self.assertEqual(self.sweep(datetime.datetime.combine(WEDNESDAY, datetime.time(9, 30))), [])
		self.assertEqual([job["moment"] for job in self.sweep(thursday_9)], [str(thursday_9)])
		self.run_jobs()
		self.assertEqual(todos(due), 1)
		summary = rule.get_summary()
		self.assertIn(f"Every day at 09:00 (working days of {POLICY})", summary)

	def test_a_schedule_reaches_only_what_its_run_as_user_may_read(self):
		"""An attacker (CRM Automation Manager + Sales User, Opportunities of territory A only) saves a
		schedule over every Opportunity: the one in territory B is never selected nor touched."""
		frappe.set_user(ATTACKER)
		try:
			with saved_at(FRIDAY_NOON):
				rule = frappe.get_doc(
					{
						"doctype": "Workflow Rule",
						"rule_name": f"{PREFIX} Attacker",
						"document_type": "Opportunity",
						"trigger": "Schedule",
						"enabled": 1,
						"conditions": json.dumps(OPEN_AND_CLOSING_THIS_WEEK),
						"actions": [TODO],
						**WEEKLY,
					}
				).insert()
		finally:
			frappe.set_user("Administrator")
		clear_rule_cache()
		mine = opportunity("2027-03-02", territory=TERRITORY_A)
		theirs = opportunity("2027-03-02", territory=TERRITORY_B)
		self.sweep(MONDAY_9)
		self.run_jobs()
		self.assertEqual((todos(mine), todos(theirs)), (1, 0))
		self.assertFalse(
			frappe.get_all("Automation Log", filters={"rule": rule.name, "reference_name": theirs.name})
		)
		# Called directly on the other territory's document, the chunk job still does nothing to it.
		new_request()
		schedule_runs.fire_scheduled_documents(rule.name, str(MONDAY_9), [theirs.name])
		self.assertEqual(todos(theirs), 0)

	def test_a_field_its_run_as_user_may_no_longer_read_matches_nothing(self):
		"""A condition on a field raised above the attacker's levels after the save: absent, so the
		schedule selects nothing; naming it at save is refused."""
		conditions = {"all": [{"field": LATER_FIELD, "op": "=", "value": "hot"}]}
		frappe.set_user(ATTACKER)
		try:
			with saved_at(FRIDAY_NOON):
				rule = frappe.get_doc(
					{
						"doctype": "Workflow Rule",
						"rule_name": f"{PREFIX} Later Secret",
						"document_type": "Opportunity",
						"trigger": "Schedule",
						"enabled": 1,
						"conditions": json.dumps(conditions),
						"actions": [TODO],
						**WEEKLY,
					}
				).insert()
		finally:
			frappe.set_user("Administrator")
		hot = opportunity("2027-03-02")
		hot.db_set(LATER_FIELD, "hot")
		frappe.db.set_value("Custom Field", f"Opportunity-{LATER_FIELD}", "permlevel", 5)
		frappe.clear_cache(doctype="Opportunity")
		clear_rule_cache()
		self.sweep(MONDAY_9)
		self.run_jobs()
		self.assertEqual(todos(hot), 0)
		frappe.set_user(ATTACKER)
		try:
			with self.assertRaises((frappe.PermissionError, frappe.ValidationError)), saved_at(FRIDAY_NOON):
				frappe.get_doc(
					{**rule.as_dict(), "name": None, "rule_name": f"{PREFIX} Secret Again"}
				).insert()
		finally:
			frappe.set_user("Administrator")

	def test_bad_schedules_are_refused_naming_field_and_value(self):
		"""Each wrong field is named with the value given, and nothing is saved."""
		cases = [
			({"schedule_frequency": "Every N Minutes", "schedule_interval": 0}, ("Every", "0")),
			({"schedule_frequency": "Weekly", "schedule_weekday": ""}, ("On Weekday",)),
			({"schedule_frequency": "Monthly", "schedule_day_of_month": 32}, ("On Day of Month", "32")),
			({"schedule_frequency": "Daily", "schedule_time": ""}, ("At",)),
			(
				{"schedule_frequency": "Daily", "schedule_calendar": "_Test SCH No Policy"},
				("_Test SCH No Policy",),
			),
		]
		for fields, words in cases:
			with self.subTest(fields=fields):
				frappe.clear_messages()
				with self.assertRaises(frappe.ValidationError) as caught:
					self.rule("Bad", **fields)
				for word in words:
					self.assertIn(word, str(caught.exception))
		self.assertFalse(frappe.db.exists("Workflow Rule", f"{PREFIX} Bad"))
