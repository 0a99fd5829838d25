# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import datetime
import json
from unittest.mock import patch

import frappe
from frappe.desk.form import assign_to
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, get_datetime, nowdate

from crm_automation.crm_automation.doctype.workflow_rule.test_workflow_rule import ensure_email_account
from crm_automation.escalation import clear_policy_cache, get_state, sweep, sync_document
from crm_automation.tests.concurrency import run_in_processes
from crm_automation.tests.factories import default_company, ensure, make_lead, make_user, new_request

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "Holiday List", "Role", "User Group", "Email Template"]
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
FRIDAY = datetime.datetime(2026, 11, 20, 16, 0)  # a Friday; Monday 2026-11-23 is a holiday below
HOLIDAY = datetime.date(2026, 11, 23)


def make_policy(name, document_type, levels, **fields):
	if frappe.db.exists("Escalation Policy", name):
		frappe.delete_doc("Escalation Policy", name, force=True)
	for key in ("conditions", "stop_conditions"):
		if isinstance(fields.get(key), dict):
			fields[key] = json.dumps(fields[key])
	policy = frappe.get_doc({"doctype": "Escalation Policy", "policy_name": name, "document_type": document_type, "enabled": 1, "levels": levels, **fields})
	policy.insert()
	clear_policy_cache()
	return policy


def business_calendar(holiday_list=None):
	return {
		"calendar_mode": "Working Hours",
		"holiday_list": holiday_list,
		"working_hours": [{"weekday": day, "start_time": "09:00:00", "end_time": "17:00:00"} for day in WEEKDAYS],
	}


def make_holiday_list():
	if not frappe.db.exists("Holiday List", "_Test CRM Holidays"):
		frappe.get_doc(
			{
				"doctype": "Holiday List",
				"holiday_list_name": "_Test CRM Holidays",
				"from_date": "2026-01-01",
				"to_date": "2026-12-31",
				"holidays": [{"holiday_date": HOLIDAY, "description": "Company day off"}],
			}
		).insert()
	return "_Test CRM Holidays"


def make_employee(user, reports_to=None):
	existing = frappe.db.get_value("Employee", {"user_id": user})
	if existing:
		return existing
	return frappe.get_doc(
		{
			"doctype": "Employee",
			"first_name": user.split("@")[0],
			"gender": frappe.get_all("Gender", pluck="name", limit=1)[0],
			"date_of_birth": "1990-01-01",
			"date_of_joining": "2020-01-01",
			"company": default_company(),
			"user_id": user,
			"reports_to": reports_to,
			"status": "Active",
		}
	).insert().name


def notified(user, doc, text=""):
	return frappe.get_all(
		"Notification Log",
		filters={"for_user": user, "document_type": doc.doctype, "document_name": doc.name, "subject": ("like", f"%{text}%")},
		pluck="subject",
	)


def restart_clock_at(doc, moment):
	"""The document as if it had been created at ``moment``: what tests cannot wait for."""
	frappe.db.set_value(doc.doctype, doc.name, {"creation": moment, "modified": moment}, update_modified=False)
	frappe.db.delete("Escalation State", {"reference_doctype": doc.doctype, "reference_name": doc.name})
	doc = frappe.get_doc(doc.doctype, doc.name)
	sync_document(doc, now=moment)
	return doc


class TestEscalationScenarios(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		ensure_email_account()
		cls.rep = make_user("crm-auto-rep@example.com", roles=["Sales User"])
		cls.boss = make_user("crm-auto-boss@example.com", roles=["Sales Manager"])
		make_employee(cls.rep, reports_to=make_employee(cls.boss))
		cls.agent = make_user("crm-auto-agent@example.com", roles=["Support Team"])
		cls.support_manager = make_user("crm-auto-support-lead@example.com", roles=["Support Team"])
		ensure("Issue Priority", "High")
		ensure("Issue Priority", "Medium")

	def setUp(self):
		new_request()
		# The sweep commits per chunk; here everything stays in the test's transaction.
		self.enterContext(patch.object(frappe.db, "commit"))

	def tearDown(self):
		for name in frappe.get_all("Escalation Policy", filters={"name": ("like", "_Test %")}, pluck="name"):
			frappe.delete_doc("Escalation Policy", name, force=True)
		clear_policy_cache()

	def idle_lead_policy(self):
		return make_policy(
			"_Test Idle Lead",
			"Lead",
			clock_start="Date Field",
			start_field="modified",
			stop_conditions={"any": [{"field": "status", "op": "in", "value": ["Converted", "Do Not Contact"]}]},
			levels=[
				{"level": 1, "after": 24, "unit": "Hours", "action_type": "System Notification", "to_owner": 1, "subject": "{{ doc.name }} untouched for a day"},
				{"level": 1, "after": 24, "unit": "Hours", "action_type": "Send Email", "to_owner": 1, "subject": "Reminder: {{ doc.name }}", "message": "Please follow up."},
				{"level": 2, "after": 48, "unit": "Hours", "action_type": "System Notification", "to_owner": 1, "to_managers": 1, "subject": "{{ doc.name }} untouched for two days"},
			],
		)

	def test_idle_lead_reminds_owner_then_manager(self):
		"""Scenario 1: not updated for 24 hours → the owner (notification and email); at 48 hours the
		owner's manager too. Updating the Lead restarts the clock."""
		self.idle_lead_policy()
		frappe.set_user(self.rep)
		try:
			lead = make_lead(first_name="Idle")
		finally:
			frappe.set_user("Administrator")
		start = get_datetime(lead.modified)
		state = get_state("_Test Idle Lead", lead)
		self.assertEqual(get_datetime(state.next_escalation_on), start + datetime.timedelta(hours=24))
		self.assertEqual(sweep(start + datetime.timedelta(hours=23)), 0)
		self.assertEqual(sweep(start + datetime.timedelta(hours=24, minutes=1)), 1, "level 1: one level, two actions")
		self.assertEqual(notified(self.rep, lead, "for a day"), [f"{lead.name} untouched for a day"])
		self.assertTrue(frappe.db.exists("Email Queue", {"reference_name": lead.name, "message": ("like", "%Reminder%")}))
		self.assertEqual(notified(self.boss, lead), [], "the manager is not told yet")
		sweep(start + datetime.timedelta(hours=48, minutes=1))
		self.assertEqual(notified(self.boss, lead, "two days"), [f"{lead.name} untouched for two days"])
		self.assertEqual(len(notified(self.rep, lead, "two days")), 1)
		self.assertEqual(get_state("_Test Idle Lead", lead).current_level, 2)

		lead.reload()
		lead.company_name = "Touched Co"
		lead.save()
		state = get_state("_Test Idle Lead", lead)
		self.assertEqual((state.current_level, get_datetime(state.clock_started_on)), (0, get_datetime(lead.modified)))

	def test_missed_levels_fire_once_in_order_marked_late(self):
		"""After downtime, every missed level fires once, in order, and the log says it was late."""
		self.idle_lead_policy()
		lead = make_lead(first_name="Forgotten")
		start = get_datetime(lead.modified)
		self.assertEqual(sweep(start + datetime.timedelta(hours=60)), 2)
		self.assertEqual(sweep(start + datetime.timedelta(hours=61)), 0)
		logs = frappe.get_all(
			"Automation Log",
			filters={"rule": "_Test Idle Lead", "reference_name": lead.name},
			fields=["event", "reason"],
			order_by="creation asc, event asc",
		)
		self.assertEqual([log.event for log in logs], ["Level 1", "Level 2"])
		self.assertTrue(all("late by" in log.reason for log in logs))

	def support_policy(self):
		return make_policy(
			"_Test Issue Response",
			"Issue",
			clock_start="Creation",
			stop_conditions={"any": [{"field": "first_responded_on", "op": "is set"}, {"field": "status", "op": "in", "value": ["Replied", "Resolved", "Closed"]}]},
			pause_field="status",
			pause_values="On Hold",
			levels=[
				{"level": 1, "after": 2, "unit": "Hours", "action_type": "System Notification", "to_assignees": 1, "subject": "Respond to {{ doc.name }}"},
				{"level": 2, "after": 4, "unit": "Hours", "action_type": "Reassign", "reassign_to": "User", "to_users": self.support_manager},
				{"level": 2, "after": 4, "unit": "Hours", "action_type": "Set Value", "target_field": "priority", "value": "High"},
			],
			**business_calendar(make_holiday_list()),
		)

	def new_issue(self, moment):
		issue = frappe.get_doc({"doctype": "Issue", "subject": "Printer on fire", "priority": "Medium"}).insert()
		assign_to.add({"assign_to": [self.agent], "doctype": "Issue", "name": issue.name}, ignore_permissions=True)
		return restart_clock_at(issue, moment)

	def test_issue_response_in_business_hours(self):
		"""Scenario 2: no response within 2 business hours → the assignee is told; at 4 → reassigned
		to the support manager, priority High. The weekend and the holiday do not count."""
		self.support_policy()
		issue = self.new_issue(FRIDAY)
		self.assertEqual(get_datetime(get_state("_Test Issue Response", issue).next_escalation_on), datetime.datetime(2026, 11, 24, 10, 0))
		self.assertEqual(sweep(datetime.datetime(2026, 11, 23, 16, 0)), 0, "Monday is a holiday")
		self.assertEqual(sweep(datetime.datetime(2026, 11, 24, 9, 30)), 0, "1.5 business hours so far")
		sweep(datetime.datetime(2026, 11, 24, 10, 0))
		self.assertEqual(notified(self.agent, issue, "Respond to"), [f"Respond to {issue.name}"])
		sweep(datetime.datetime(2026, 11, 24, 12, 0))
		issue.reload()
		self.assertEqual(issue.priority, "High")
		assignees = frappe.get_all("ToDo", filters={"reference_name": issue.name, "status": "Open"}, pluck="allocated_to")
		self.assertEqual(assignees, [self.support_manager])

	def test_clock_pauses_while_on_hold(self):
		"""Scenario 3: two hours on hold push the escalation two business hours later."""
		self.support_policy()
		tuesday = datetime.datetime(2026, 11, 24, 9, 0)
		issue = self.new_issue(tuesday)
		frappe.db.set_value("Issue", issue.name, "status", "On Hold")
		sync_document(frappe.get_doc("Issue", issue.name), now=tuesday + datetime.timedelta(hours=1))
		self.assertIsNone(get_state("_Test Issue Response", issue).next_escalation_on)
		self.assertEqual(sweep(tuesday + datetime.timedelta(hours=2)), 0, "paused: nothing fires")
		frappe.db.set_value("Issue", issue.name, "status", "Open")
		sync_document(frappe.get_doc("Issue", issue.name), now=tuesday + datetime.timedelta(hours=3))
		state = get_state("_Test Issue Response", issue)
		self.assertEqual(get_datetime(state.next_escalation_on), tuesday + datetime.timedelta(hours=4))
		self.assertEqual(state.paused_seconds, 7200)

	def test_stop_and_reopen(self):
		"""A response stops the clock; reopening restarts it, as the policy says."""
		self.support_policy()
		issue = self.new_issue(datetime.datetime(2026, 11, 24, 9, 0))
		issue.reload()
		issue.status = "Replied"
		issue.save()
		state = get_state("_Test Issue Response", issue)
		self.assertEqual((state.status, state.next_escalation_on), ("Stopped", None))
		issue.status = "Open"
		issue.save()
		state = get_state("_Test Issue Response", issue)
		self.assertEqual((state.status, state.current_level), ("Active", 0))
		self.assertIsNotNone(state.next_escalation_on)


	def test_warning_then_level_then_repeats_and_the_overdue_report(self):
		"""A warning before the level, the level, then repeats every hour until the clock stops; the
		Overdue Escalations report lists the document at its level."""
		from crm_automation.crm_automation.report.overdue_escalations.overdue_escalations import execute

		make_policy(
			"_Test Nagging",
			"Lead",
			clock_start="Creation",
			stop_conditions={"all": [{"field": "status", "op": "=", "value": "Do Not Contact"}]},
			levels=[{"level": 1, "after": 2, "warn_before": 1, "repeat_every": 1, "unit": "Hours", "action_type": "Add Comment", "message": "follow up"}],
		)
		lead = make_lead(first_name="Nagged")
		start = get_datetime(lead.creation)
		hours = lambda h: start + datetime.timedelta(hours=h, minutes=1)  # noqa: E731
		events = []
		for h in (1, 2, 3, 4):
			sweep(hours(h))
			events.append(get_state("_Test Nagging", lead).next_escalation)
		comments = frappe.get_all("Comment", filters={"reference_name": lead.name, "content": ("like", "%follow up%")}, pluck="content", order_by="creation asc")
		self.assertEqual(comments[0], "Warning: follow up")
		self.assertEqual(comments[1:], ["follow up"] * 3, "the level, then two repeats")
		self.assertEqual(events, ["Level 1", "Level 1 (repeat 1)", "Level 1 (repeat 2)", "Level 1 (repeat 3)"])
		columns, rows = execute({"policy": "_Test Nagging"})
		self.assertEqual([(r.reference_name, r.current_level) for r in rows], [(lead.name, 1)])
		# A rule manager who may not read Leads learns nothing of this one from the report.
		make_user("crm-overdue-reader@example.com", roles=["CRM Automation Manager"])
		frappe.set_user("crm-overdue-reader@example.com")
		try:
			self.assertEqual(execute({"policy": "_Test Nagging"})[1], [])
		finally:
			frappe.set_user("Administrator")
		lead.reload()
		lead.status = "Do Not Contact"
		lead.save()
		self.assertEqual(sweep(hours(10)), 0, "stopped: no more repeats")
		self.assertEqual(execute({"policy": "_Test Nagging"})[1], [])


class TestConcurrentEscalationSweeps(FrappeTestCase):
	def test_two_sweeps_fire_each_level_once(self):
		"""Scenario 4: two sweeps at the same moment fire each level once."""
		make_policy(
			"_Test Concurrent Escalation",
			"Lead",
			clock_start="Creation",
			levels=[{"level": 1, "after": 1, "unit": "Hours", "action_type": "Add Comment", "message": "escalated once"}],
		)
		leads = [make_lead(first_name=f"Sweep {i}") for i in range(5)]
		frappe.db.commit()
		later = get_datetime(leads[-1].creation) + datetime.timedelta(hours=2)
		try:
			run_in_processes(frappe.local.site, [("crm_automation.escalation.sweep", (str(later),))] * 2)
			# Read what the two processes committed in a fresh transaction: a snapshot this process
			# opened before they committed would show none of it (REPEATABLE READ).
			frappe.db.rollback()
			for lead in leads:
				self.assertEqual(
					frappe.db.count("Comment", {"reference_name": lead.name, "content": ("like", "%escalated once%")}), 1
				)
		finally:
			names = [lead.name for lead in leads]
			frappe.db.delete("Comment", {"reference_name": ("in", names)})
			frappe.db.delete("Automation Log", {"reference_name": ("in", names)})
			frappe.db.delete("Automation Occurrence", {"reference_name": ("in", names)})
			frappe.db.delete("Escalation State", {"reference_name": ("in", names)})
			for lead in leads:
				frappe.delete_doc("Lead", lead.name, force=True)
			frappe.delete_doc("Escalation Policy", "_Test Concurrent Escalation", force=True)
			frappe.db.commit()


class TestEscalationPolicyBadInput(FrappeTestCase):
	def assert_rejected(self, pattern, levels=None, **fields):
		levels = levels or [{"level": 1, "after": 1, "unit": "Hours", "action_type": "Add Comment", "message": "x"}]
		with self.assertRaisesRegex(frappe.ValidationError, pattern):
			make_policy("_Test Bad Policy", "Issue", levels=levels, **fields)
		self.assertFalse(frappe.db.exists("Escalation Policy", "_Test Bad Policy"))

	def test_levels_out_of_order(self):
		self.assert_rejected(
			"levels out of order: level 2 comes after 1:00:00 but level 1 after 2:00:00",
			levels=[
				{"level": 1, "after": 2, "unit": "Hours", "action_type": "Add Comment", "message": "x"},
				{"level": 2, "after": 1, "unit": "Hours", "action_type": "Add Comment", "message": "y"},
			],
		)

	def test_zero_or_negative_durations(self):
		self.assert_rejected(
			"Levels, row 1.*-3.0 is not a duration above zero",
			levels=[{"level": 1, "after": -3, "unit": "Hours", "action_type": "Add Comment", "message": "x"}],
		)

	def test_calendar_with_no_working_hours(self):
		self.assert_rejected("a working-hours calendar needs at least one working interval", calendar_mode="Working Hours")

	def test_missing_holiday_list(self):
		self.assert_rejected("Could not find Holiday List: No Such Holidays|Holiday List .*No Such Holidays.* does not exist", **{**business_calendar(), "holiday_list": "No Such Holidays"})

	def test_stop_condition_that_does_not_compile(self):
		self.assert_rejected('stop_conditions.all\\[0\\]: unknown field "responded"|unknown field "responded"', stop_conditions={"all": [{"field": "responded", "op": "is set"}]})
