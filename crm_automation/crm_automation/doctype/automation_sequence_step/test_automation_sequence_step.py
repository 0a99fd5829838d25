# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

"""Follow-up sequences on a real site with a controlled clock: every wait kind, exits on save,
delete and cancel, skip and cancel by users, two processes sweeping at once, downtime catch-up,
stale claims and a rule edited while sequences are in flight. Nothing sleeps: the start time is
patched and every sweep is given its moment."""

import datetime
import json
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.crm_automation.doctype.escalation_policy.test_escalation_policy import (
	business_calendar,
	make_holiday_list,
	make_policy,
)
from crm_automation.sequences import runs as sequence_runs
from crm_automation.sequences import steps as sequences
from crm_automation.tests.concurrency import run_in_processes
from crm_automation.tests.factories import (
	delete_test_rules,
	make_lead,
	make_opportunity,
	make_rule,
	make_user,
	new_request,
)

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "Holiday List", "Role", "User Group", "Email Template"]
T0 = datetime.datetime(2026, 11, 18, 10, 0)  # a Wednesday
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
SALES_USER = "seq.sales@example.com"
OUTSIDER = "seq.outsider@example.com"


def leaf(field, op, value=None):
	return {"field": field, "op": op, "value": value}


def comment(text, step=None, **extra):
	return {"action_type": "Add Comment", "message": text, "step": step, **extra}


def make_sequence_rule(name, steps, actions, document_type="Lead", trigger="New", **fields):
	for row in steps:
		for key in ("until_conditions", "step_conditions"):
			if isinstance(row.get(key), dict):
				row[key] = json.dumps(row[key])
	if isinstance(fields.get("stop_conditions"), dict):
		fields["stop_conditions"] = json.dumps(fields["stop_conditions"])
	return make_rule(name, document_type, trigger, actions, steps=steps, **fields)


def wait(name, amount=1, unit="Hours", kind="Duration", **row):
	return {"step_name": name, "wait_type": kind, "wait_amount": amount, "wait_unit": unit, **row}


def start(factory, at=T0, **fields):
	"""Insert a document at the frozen moment ``at`` (what starts its sequence)."""
	new_request()
	with patch("crm_automation.sequences.steps.now", return_value=at):
		return factory(**fields)


def sweep(at):
	new_request()
	with patch("crm_automation.sequences.steps.now", return_value=at), patch.object(frappe.db, "commit"):
		return sequence_runs.sweep(now_at=at)


def comments(doc, text=None):
	filters = {"reference_doctype": doc.doctype, "reference_name": doc.name, "comment_type": "Comment"}
	rows = frappe.get_all("Comment", filters=filters, pluck="content", order_by="creation asc")
	return [r for r in rows if text is None or text in (r or "")]


def steps_of(doc):
	return frappe.get_all(
		"Automation Sequence Step",
		filters={"reference_doctype": doc.doctype, "reference_name": doc.name},
		fields=[
			"name",
			"step_index",
			"step_name",
			"status",
			"due_at",
			"reason",
			"sequence",
			"automation_log",
		],
		order_by="creation asc, step_index asc",
	)


def pending(doc):
	return [row for row in steps_of(doc) if row.status == "Pending"]


class SequenceTestCase(FrappeTestCase):
	"""Each test rolls back what it wrote: a deleted Lead gives its name back to the series, and a
	later test's Lead must not meet the earlier one's steps."""

	def setUp(self):
		frappe.db.set_single_value(
			"CRM Automation Settings", {"enabled": 1, "time_trigger_catchup_hours": 24}
		)
		make_user(SALES_USER, roles=["Sales User"])
		make_user(OUTSIDER, roles=["Website Manager"])
		new_request()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		from crm_automation.runtime.workflow_rules import clear_rule_cache

		clear_rule_cache()


class TestWaits(SequenceTestCase):
	def test_duration_steps_run_in_order_exactly_once_and_are_logged_with_their_sequence(self):
		make_sequence_rule(
			"_Test Seq Nurture",
			[wait("Remind", 24), wait("Supervisor", 24)],
			[comment("welcome"), comment("remind owner", "Remind"), comment("tell supervisor", "Supervisor")],
		)
		lead = start(make_lead)
		self.assertEqual(comments(lead, "welcome"), ["welcome"])
		[row] = pending(lead)
		self.assertEqual((row.step_name, row.due_at), ("Remind", T0 + 24 * HOUR))

		sweep(T0 + 23 * HOUR)
		self.assertEqual(comments(lead, "remind"), [])
		sweep(T0 + 24 * HOUR)
		sweep(T0 + 24 * HOUR)  # a second sweep at the same moment finds nothing to do
		self.assertEqual(comments(lead, "remind"), ["remind owner"])
		[row] = pending(lead)
		self.assertEqual((row.step_name, row.due_at), ("Supervisor", T0 + 48 * HOUR))
		sweep(T0 + 60 * HOUR)
		self.assertEqual(comments(lead, "supervisor"), ["tell supervisor"])
		rows = steps_of(lead)
		self.assertEqual([r.status for r in rows], ["Done", "Done"])
		self.assertEqual(len({r.sequence for r in rows}), 1)
		log = frappe.get_doc("Automation Log", rows[1].automation_log)
		self.assertEqual(
			(log.sequence, log.sequence_step, log.outcome), (rows[1].sequence, "2: Supervisor", "Success")
		)

	def test_only_if_condition_skips_the_step_and_the_sequence_goes_on(self):
		make_sequence_rule(
			"_Test Seq Only If",
			[wait("If open", 1, step_conditions={"all": [leaf("status", "=", "Open")]}), wait("Always", 1)],
			[comment("only if open", "If open"), comment("always", "Always")],
		)
		lead = start(make_lead)  # status Lead, not Open
		sweep(T0 + 2 * HOUR)
		sweep(T0 + 2 * HOUR)
		self.assertEqual(comments(lead, "only if"), [])
		self.assertEqual(comments(lead, "always"), ["always"])
		self.assertEqual([r.status for r in steps_of(lead)], ["Skipped", "Done"])

	def test_business_time_wait_uses_the_escalation_policy_calendar(self):
		policy = make_policy(
			"_Test Seq Office",
			"Issue",
			[{"level": 1, "after": 1, "unit": "Hours", "action_type": "Add Comment", "message": "x"}],
			**business_calendar(make_holiday_list()),
		)
		make_sequence_rule(
			"_Test Seq Business",
			[wait("Next working day", 1, "Days", "Business Time", calendar_policy=policy.name)],
			[comment("working day later", "Next working day")],
		)
		friday_4pm = datetime.datetime(2026, 11, 20, 16, 0)  # Monday the 23rd is the list's holiday
		lead = start(make_lead, at=friday_4pm)
		[row] = pending(lead)
		self.assertEqual(row.due_at, datetime.datetime(2026, 11, 24, 16, 0))
		self.assertIn(
			"working day", frappe.get_doc("Workflow Rule", "_Test Seq Business").steps[0].wait_summary
		)

	def test_date_field_wait_and_a_changed_date_moves_it(self):
		make_sequence_rule(
			"_Test Seq Close Date",
			[
				wait(
					"Before close",
					7,
					"Days",
					"Until Date Field",
					date_field="expected_closing",
					at_time="09:00",
				)
			],
			[comment("a week before closing", "Before close")],
			document_type="Opportunity",
		)
		opportunity = start(make_opportunity, expected_closing="2026-12-31")
		[row] = pending(opportunity)
		self.assertEqual(row.due_at, datetime.datetime(2026, 12, 24, 9, 0))
		opportunity.expected_closing = "2027-01-10"
		with patch("crm_automation.sequences.steps.now", return_value=T0 + HOUR):
			opportunity.save()
		[row] = pending(opportunity)
		self.assertEqual(row.due_at, datetime.datetime(2027, 1, 3, 9, 0))
		sweep(datetime.datetime(2027, 1, 3, 9, 0))
		self.assertEqual(comments(opportunity, "a week before"), ["a week before closing"])

	def test_date_already_passed_is_passed_over_not_sent_late(self):
		make_sequence_rule(
			"_Test Seq Renewal",
			[
				wait(
					f"{n} days", n, "Days", "Until Date Field", date_field="expected_closing", at_time="09:00"
				)
				for n in (30, 14, 7)
			],
			[comment(f"{n} days to go", f"{n} days") for n in (30, 14, 7)],
			document_type="Opportunity",
		)
		opportunity = start(make_opportunity, expected_closing="2026-12-10")  # 22 days after T0
		rows = steps_of(opportunity)
		self.assertEqual(
			[(r.step_name, r.status) for r in rows], [("30 days", "Skipped"), ("14 days", "Pending")]
		)
		self.assertIn("already passed", rows[0].reason)

	def test_a_step_without_a_time_waits_until_nine_not_until_the_time_it_was_saved(self):
		make_sequence_rule(
			"_Test Seq No Time",
			[wait("Monday", 0, kind="Until Weekday and Time", weekday="Monday")],
			[comment("monday", "Monday")],
		)
		lead = start(make_lead)
		[row] = pending(lead)
		self.assertEqual(row.due_at, datetime.datetime(2026, 11, 23, 9, 0))

	def test_weekday_wait(self):
		make_sequence_rule(
			"_Test Seq Monday",
			[wait("Monday", 0, kind="Until Weekday and Time", weekday="Monday", at_time="09:00")],
			[comment("monday morning", "Monday")],
		)
		lead = start(make_lead)  # Wednesday 10:00
		[row] = pending(lead)
		self.assertEqual(row.due_at, datetime.datetime(2026, 11, 23, 9, 0))

	def until_replied_rule(self):
		return make_sequence_rule(
			"_Test Seq Until Replied",
			[
				wait(
					"Reply",
					3,
					"Days",
					"Until Condition",
					until_conditions={"all": [leaf("status", "=", "Replied")]},
				)
			],
			[comment("thank you", "Reply"), comment("reminder", "Reply", on_timeout=1)],
		)

	def test_until_condition_met_on_save_takes_the_met_path_at_once(self):
		self.until_replied_rule()
		lead = start(make_lead)
		lead.status = "Replied"
		with patch("crm_automation.sequences.steps.now", return_value=T0 + 5 * HOUR):
			lead.save()
		[row] = pending(lead)
		self.assertEqual(row.due_at, T0 + 5 * HOUR)
		sweep(T0 + 5 * HOUR)
		self.assertEqual(comments(lead), ["thank you"])

	def test_until_condition_timeout_takes_the_other_path(self):
		self.until_replied_rule()
		lead = start(make_lead)
		sweep(T0 + 3 * DAY - HOUR)
		self.assertEqual(comments(lead), [])
		sweep(T0 + 3 * DAY)
		self.assertEqual(comments(lead), ["reminder"])
		log = frappe.get_doc("Automation Log", steps_of(lead)[0].automation_log)
		self.assertIn("timeout", log.reason)


class TestExits(SequenceTestCase):
	def nurture(self, **fields):
		return make_sequence_rule(
			"_Test Seq Exit",
			[wait("Remind", 24), wait("Later", 24)],
			[comment("remind", "Remind"), comment("later", "Later")],
			conditions={"all": [leaf("status", "in", ["Lead", "Open"])]},
			stop_conditions={"all": [leaf("status", "=", "Converted")]},
			**fields,
		)

	def test_stop_condition_ends_pending_steps_on_the_save_that_makes_it_true(self):
		self.nurture()
		lead = start(make_lead)
		lead.status = "Open"
		lead.save()
		self.assertEqual(len(pending(lead)), 1)  # still matching, no stop condition yet
		lead.db_set("status", "Converted")  # ERPNext sets statuses with db_set: on_change sees it
		self.assertEqual(pending(lead), [])
		self.assertIn("stop when", steps_of(lead)[0].reason)
		sweep(T0 + 10 * DAY)
		self.assertEqual(comments(lead), [])

	def test_no_longer_matching_the_rule_ends_them_when_asked(self):
		self.nurture(stop_when_unmatched=1)
		lead = start(make_lead)
		lead.status = "Interested"
		lead.save()
		self.assertEqual(pending(lead), [])
		self.assertIn("no longer matches", steps_of(lead)[0].reason)

	def test_without_stop_when_unmatched_a_non_matching_save_does_not_end_them(self):
		self.nurture()
		lead = start(make_lead)
		lead.status = "Interested"
		lead.save()
		self.assertEqual(len(pending(lead)), 1)

	def test_saves_of_a_doctype_without_sequences_never_read_the_steps(self):
		self.nurture()  # Lead has a sequence; ToDo does not
		statements = []
		original = frappe.db.sql

		def spy(query, *args, **kwargs):
			statements.append(str(query))
			return original(query, *args, **kwargs)

		todo = frappe.get_doc({"doctype": "ToDo", "description": "no sequences here"}).insert()
		with patch.object(frappe.db, "sql", side_effect=spy):
			todo.description = "still none"
			todo.save()
		self.assertTrue(statements)
		self.assertFalse([q for q in statements if "Automation Sequence" in q])

	def test_a_broken_sequence_never_breaks_the_users_save(self):
		self.nurture()
		with patch("crm_automation.sequences.steps._insert_step", side_effect=RuntimeError("disk full")):
			lead = start(make_lead)
		self.assertTrue(frappe.db.exists("Lead", lead.name))
		self.assertEqual(steps_of(lead), [])
		self.assertTrue(frappe.db.exists("Error Log", {"method": ("like", "%could not start%")}))
		lead = start(make_lead)
		with patch("crm_automation.sequences.steps.compiled_definition", side_effect=RuntimeError("version lost")):
			lead.status = "Open"
			lead.save()
			frappe.delete_doc("Lead", lead.name, force=True)
		self.assertFalse(frappe.db.exists("Lead", lead.name))
		self.assertTrue(frappe.db.exists("Error Log", {"method": ("like", "%could not follow a save%")}))

	def test_deleting_the_document_ends_its_steps(self):
		self.nurture()
		lead = start(make_lead)
		[row] = pending(lead)
		frappe.delete_doc("Lead", lead.name, force=True)
		self.assertEqual(frappe.db.get_value("Automation Sequence Step", row.name, "status"), "Exited")
		sweep(T0 + 10 * DAY)
		self.assertEqual(frappe.db.get_value("Automation Sequence Step", row.name, "status"), "Exited")

	def test_cancelling_the_document_ends_its_steps(self):
		from crm_automation.tests.factories import make_sales_order

		make_sequence_rule(
			"_Test Seq Order",
			[wait("Follow up", 2, "Days")],
			[comment("follow up", "Follow up")],
			document_type="Sales Order",
			trigger="Submit",
		)
		order = make_sales_order(submit=True)
		[row] = pending(order)
		order.cancel()
		self.assertEqual(frappe.db.get_value("Automation Sequence Step", row.name, "status"), "Exited")

	def test_a_rule_firing_again_does_not_start_a_second_sequence(self):
		make_sequence_rule(
			"_Test Seq Save", [wait("Remind", 24)], [comment("remind", "Remind")], trigger="Save"
		)
		lead = start(make_lead)
		lead.save()
		new_request()
		lead.save()
		self.assertEqual(len(pending(lead)), 1)

	def test_disabled_rule_cancels_its_steps_when_they_come_due(self):
		self.nurture()
		lead = start(make_lead)
		frappe.db.set_value("Workflow Rule", "_Test Seq Exit", "enabled", 0)
		sweep(T0 + DAY)
		self.assertEqual(steps_of(lead)[0].status, "Cancelled", steps_of(lead)[0].reason)
		self.assertEqual(comments(lead), [])


class TestSkipAndCancel(SequenceTestCase):
	def setUp(self):
		super().setUp()
		make_sequence_rule(
			"_Test Seq Control",
			[wait("First", 24), wait("Second", 24)],
			[comment("first", "First"), comment("second", "Second")],
		)

	def test_user_who_may_write_the_document_skips_a_step_and_the_next_is_scheduled(self):
		lead = start(make_lead)
		[row] = pending(lead)
		frappe.set_user(SALES_USER)
		self.assertEqual(sequences.skip_or_cancel(row.name, "skip"), "Skipped")
		frappe.set_user("Administrator")
		[nxt] = pending(lead)
		self.assertEqual((nxt.step_name, nxt.due_at), ("Second", T0 + 48 * HOUR))
		self.assertIn(SALES_USER, steps_of(lead)[0].reason)

	def test_cancel_ends_the_sequence(self):
		lead = start(make_lead)
		[row] = pending(lead)
		sequences.skip_or_cancel(row.name, "cancel")
		self.assertEqual(pending(lead), [])
		sweep(T0 + 10 * DAY)
		self.assertEqual(comments(lead), [])

	def test_a_user_without_write_permission_is_refused_and_nothing_changes(self):
		lead = start(make_lead)
		[row] = pending(lead)
		frappe.set_user(OUTSIDER)
		with self.assertRaises(frappe.PermissionError):
			sequences.skip_or_cancel(row.name, "cancel")
		frappe.set_user("Administrator")
		self.assertEqual(len(pending(lead)), 1)

	def test_a_step_no_longer_pending_cannot_be_skipped_twice_or_with_a_made_up_action(self):
		lead = start(make_lead)
		[row] = pending(lead)
		with self.assertRaises(frappe.ValidationError):
			sequences.skip_or_cancel(row.name, "delete")
		sequences.skip_or_cancel(row.name, "cancel")
		with self.assertRaises(frappe.ValidationError):
			sequences.skip_or_cancel(row.name, "skip")
		with self.assertRaises(frappe.DoesNotExistError):
			sequences.skip_or_cancel("no-such-step", "skip")


class TestReliability(SequenceTestCase):
	def test_downtime_catch_up_runs_recent_steps_and_marks_older_ones_missed(self):
		make_sequence_rule(
			"_Test Seq Downtime",
			[wait("Old", 1), wait("Recent", 2, "Days")],
			[comment("old step", "Old"), comment("recent step", "Recent")],
		)
		lead = start(make_lead)
		# The site was down from T0 until T0 + 2 days + 5 hours: "Old" (due T0 + 1 h) is 52 h late,
		# beyond the 24-hour window; "Recent" (due T0 + 1 h + 2 days) is 4 hours late.
		back = T0 + 2 * DAY + 5 * HOUR
		sweep(back)
		sweep(back)
		self.assertEqual(
			[(r.step_name, r.status) for r in steps_of(lead)], [("Old", "Missed"), ("Recent", "Done")]
		)
		self.assertEqual(comments(lead), ["recent step"])
		log = frappe.get_doc("Automation Log", steps_of(lead)[0].automation_log)
		self.assertIn("Missed", log.reason)

	def test_a_stale_claim_becomes_due_again(self):
		make_sequence_rule("_Test Seq Stale", [wait("Step", 1)], [comment("ran", "Step")])
		lead = start(make_lead)
		[row] = pending(lead)
		with patch.object(frappe.db, "commit"):
			self.assertTrue(sequence_runs.claim(row.name, T0 + HOUR))  # a worker claimed it and died
		sweep(T0 + HOUR + 5 * datetime.timedelta(minutes=1))
		self.assertEqual(comments(lead), [])  # the claim is still fresh
		sweep(T0 + HOUR + sequence_runs.STALE_CLAIM_AFTER + datetime.timedelta(minutes=1))
		self.assertEqual(comments(lead), ["ran"])

	def test_a_slow_worker_whose_claim_was_taken_over_undoes_its_run(self):
		make_sequence_rule("_Test Seq Slow", [wait("Step", 1)], [comment("ran", "Step")])
		lead = start(make_lead)
		[row] = pending(lead)
		with patch.object(frappe.db, "commit"):
			token = sequence_runs.claim(row.name, T0 + HOUR)  # this worker then stalls
		sweep(T0 + HOUR + sequence_runs.STALE_CLAIM_AFTER + datetime.timedelta(minutes=1))
		self.assertEqual(comments(lead), ["ran"])  # another worker took the step over
		frappe.db.savepoint("slow_worker")
		with self.assertRaises(sequence_runs.LostClaim):
			sequence_runs.fire_claimed(row.name, T0 + 2 * HOUR, datetime.timedelta(hours=24), token)
		frappe.db.rollback(save_point="slow_worker")  # what fire_steps does with a lost claim
		self.assertEqual(comments(lead), ["ran"])

	def test_saving_a_rule_without_changes_keeps_its_version(self):
		from crm_automation.runtime.workflow_rules import clear_rule_cache, get_compiled_rule

		make_sequence_rule("_Test Seq Same", [wait("Step", 1)], [comment("same", "Step")])
		before = get_compiled_rule("_Test Seq Same").sequence_definition
		frappe.get_doc("Workflow Rule", "_Test Seq Same").save()
		clear_rule_cache()
		self.assertEqual(get_compiled_rule("_Test Seq Same").sequence_definition, before)

	def test_rule_edited_mid_flight_keeps_the_version_the_sequence_started_with(self):
		make_sequence_rule("_Test Seq Version", [wait("Step", 1)], [comment("version one", "Step")])
		old = start(make_lead)
		rule = frappe.get_doc("Workflow Rule", "_Test Seq Version")
		rule.actions[0].message = "version two"
		rule.save()
		from crm_automation.runtime.workflow_rules import clear_rule_cache

		clear_rule_cache()
		new = start(make_lead, at=T0 + 10 * datetime.timedelta(minutes=1))
		self.assertNotEqual(pending(old)[0].name, pending(new)[0].name)
		sweep(T0 + 2 * HOUR)
		self.assertEqual(comments(old), ["version one"])
		self.assertEqual(comments(new), ["version two"])

	def test_steps_act_as_the_user_the_rule_runs_as_when_they_run(self):
		"""Started while the rule ran as Administrator, then handed to a user who may not write
		Leads (someone who changed roles): the step's Set Value is refused."""
		rule = make_sequence_rule(
			"_Test Seq Run As",
			[wait("Step", 1)],
			[{"action_type": "Set Value", "target_field": "status", "value": "Open", "step": "Step"}],
		)
		lead = start(make_lead)
		frappe.db.set_value("Workflow Rule", rule.name, "run_as", OUTSIDER)
		sweep(T0 + HOUR)
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "status"), "Lead")
		self.assertEqual(steps_of(lead)[0].status, "Failed")


def fire_all_due(at):
	"""A worker handed every due step at once (run in a separate process by the tests)."""
	names = frappe.get_all(
		"Automation Sequence Step", filters={"status": "Pending", "due_at": ("<=", at)}, pluck="name"
	)
	print("fired", sequence_runs.fire_steps(sorted(names), now_at=at))
	frappe.db.commit()


class TestFanOut(SequenceTestCase):
	def test_many_due_steps_go_to_chunk_jobs_that_fire_them(self):
		make_sequence_rule("_Test Seq Fan Out", [wait("Step", 1)], [comment("fanned out", "Step")])
		leads = [start(make_lead, first_name=f"Fan {i}") for i in range(12)]
		jobs = []
		with (
			patch.object(sequence_runs, "CHUNK_SIZE", 5),
			patch.object(frappe, "enqueue", side_effect=lambda method, **kw: jobs.append((method, kw))),
		):
			self.assertEqual(sweep(T0 + HOUR), 12)
		self.assertEqual([len(kw["names"]) for _method, kw in jobs], [5, 5, 2])
		self.assertTrue(
			all(m == "crm_automation.sequences.runs.fire_steps" and kw["deduplicate"] for m, kw in jobs)
		)
		with patch.object(frappe.db, "commit"):
			for _method, kw in jobs:
				sequence_runs.fire_steps(kw["names"], now_at=kw["now_at"])
		self.assertEqual([len(comments(lead, "fanned out")) for lead in leads], [1] * 12)


class TestConcurrentSweeps(FrappeTestCase):
	"""Two processes sweep the same due rows at the same moment: each step runs once."""

	def test_two_sweeps_at_once(self):
		frappe.db.set_single_value(
			"CRM Automation Settings", {"enabled": 1, "time_trigger_catchup_hours": 24}
		)
		make_sequence_rule("_Test Seq Concurrent", [wait("Step", 1)], [comment("concurrent step", "Step")])
		leads = [start(make_lead, first_name=f"Concurrent {i}") for i in range(20)]
		frappe.db.commit()
		names = [lead.name for lead in leads]
		try:
			at = (T0 + 2 * HOUR).isoformat()
			this_module = (
				"crm_automation.crm_automation.doctype.automation_sequence_step.test_automation_sequence_step"
			)
			# Two sweeps and two workers handed the same steps, all at the same moment.
			run_in_processes(
				frappe.local.site,
				[("crm_automation.sequences.runs.sweep", (at,))] * 2
				+ [(f"{this_module}.fire_all_due", (at,))] * 2,
			)
			frappe.db.rollback()  # read what the other processes committed
			for lead in leads:
				self.assertEqual(comments(lead, "concurrent step"), ["concurrent step"], lead.name)
			self.assertEqual(
				frappe.db.count(
					"Automation Sequence Step", {"reference_name": ("in", names), "status": "Done"}
				),
				20,
			)
		finally:
			frappe.db.delete("Comment", {"reference_doctype": "Lead", "reference_name": ("in", names)})
			frappe.db.delete("Automation Log", {"reference_doctype": "Lead", "reference_name": ("in", names)})
			frappe.db.delete("Automation Sequence Step", {"reference_name": ("in", names)})
			frappe.db.delete("Lead", {"name": ("in", names)})
			delete_test_rules()
			frappe.db.commit()


class TestPanelAndTimeline(SequenceTestCase):
	def setUp(self):
		super().setUp()
		make_sequence_rule(
			"_Test Seq Panel",
			[
				wait("Remind", 24, step_conditions={"all": [leaf("status", "=", "Lead")]}),
				wait("Supervisor", 24),
			],
			[comment("welcome"), comment("remind", "Remind"), comment("tell supervisor", "Supervisor")],
		)

	def test_pending_steps_show_due_times_in_the_readers_time_zone(self):
		import zoneinfo

		from frappe.utils import get_system_timezone

		from crm_automation.api.sequence_panel import get_pending_steps

		lead = start(make_lead)
		frappe.db.set_value("User", SALES_USER, "time_zone", "America/New_York")
		frappe.set_user(SALES_USER)
		[row] = get_pending_steps("Lead", lead.name)
		expected = (
			(T0 + 24 * HOUR)
			.replace(tzinfo=zoneinfo.ZoneInfo(get_system_timezone()))
			.astimezone(zoneinfo.ZoneInfo("America/New_York"))
		)
		self.assertEqual(row.due_at_user, expected.strftime("%Y-%m-%d %H:%M"))
		self.assertEqual(
			(row.time_zone, row.step_name, row.can_control), ("America/New_York", "Remind", True)
		)

	def test_a_user_who_may_not_read_the_document_sees_nothing(self):
		from crm_automation.api.sequence_panel import get_pending_steps

		lead = start(make_lead)
		frappe.set_user(OUTSIDER)
		with self.assertRaises(frappe.PermissionError):
			get_pending_steps("Lead", lead.name)

	def test_dry_run_shows_the_timeline(self):
		from crm_automation.dry_run import dry_run

		lead = start(make_lead)
		with patch("crm_automation.dry_run.now_datetime", return_value=T0):
			result = dry_run("_Test Seq Panel", names=[lead.name], log=False)["results"][0]
		self.assertEqual(
			result["timeline"],
			"now (2026-11-18 10:00): add a comment; +24 h (2026-11-19 10:00) if Status is Lead: add a comment; "
			"+48 h (2026-11-20 10:00): add a comment",
		)
		self.assertEqual(result["schedule"][0]["at"], "2026-11-19 10:00:00")

	def test_rule_form_timeline_and_step_summaries(self):
		from crm_automation.api.sequence_panel import describe_timeline

		rule = frappe.get_doc("Workflow Rule", "_Test Seq Panel")
		self.assertEqual([s.wait_summary for s in rule.steps], ["wait 24 hours", "wait 24 hours"])
		text = describe_timeline(rule.as_dict())
		self.assertTrue(text.startswith("now: add a comment; +24 h if Status is Lead"), text)

	def test_bad_step_is_refused_with_the_row_and_field_named_and_nothing_saved(self):
		with self.assertRaises(frappe.ValidationError) as caught:
			make_sequence_rule("_Test Seq Bad", [wait("Never", 0)], [comment("x", "Never")])
		self.assertIn("Steps, row 1, Wait Amount", str(caught.exception))
		self.assertFalse(frappe.db.exists("Workflow Rule", "_Test Seq Bad"))


class TestPacksRoundTrip(SequenceTestCase):
	def test_steps_and_exit_conditions_survive_export_and_import(self):
		from crm_automation.packs import export_pack, import_pack

		policy = make_policy(
			"_Test Seq Pack Office",
			"Issue",
			[{"level": 1, "after": 1, "unit": "Hours", "action_type": "Add Comment", "message": "x"}],
			**business_calendar(),
		)
		make_sequence_rule(
			"_Test Seq Pack",
			[
				wait(
					"Wait reply",
					2,
					"Days",
					"Until Condition",
					until_conditions={"all": [leaf("status", "=", "Replied")]},
				),
				wait("Office", 4, "Hours", "Business Time", calendar_policy=policy.name),
			],
			[
				comment("thanks", "Wait reply"),
				comment("nudge", "Wait reply", on_timeout=1),
				comment("office", "Office"),
			],
			stop_conditions={"all": [leaf("status", "=", "Converted")]},
			stop_when_unmatched=1,
		)
		pack = export_pack({"workflow_rules": ["_Test Seq Pack"], "escalation_policies": [policy.name]})
		exported = pack["workflow_rules"][0]
		self.assertEqual(exported["steps"][0]["until_conditions"], {"all": [leaf("status", "=", "Replied")]})
		frappe.delete_doc("Workflow Rule", "_Test Seq Pack", force=True)
		frappe.delete_doc("Escalation Policy", policy.name, force=True)
		report = import_pack(json.loads(json.dumps(pack)), enable=True)
		self.assertEqual(report["problems"], [])
		rule = frappe.get_doc("Workflow Rule", "_Test Seq Pack")
		self.assertEqual([s.step_name for s in rule.steps], ["Wait reply", "Office"])
		self.assertEqual(json.loads(rule.stop_conditions), {"all": [leaf("status", "=", "Converted")]})
		self.assertEqual(
			[(a.step, a.on_timeout) for a in rule.actions],
			[("Wait reply", 0), ("Wait reply", 1), ("Office", 0)],
		)
		again = import_pack(json.loads(json.dumps(pack)))
		self.assertEqual(again["updated"], [])


class TestEfficacyDropOff(SequenceTestCase):
	def test_drop_off_per_step(self):
		from crm_automation.crm_automation.report.automation_efficacy.automation_efficacy import execute
		from crm_automation.crm_automation.report.automation_efficacy.sequence_dropoff import drop_off

		make_sequence_rule(
			"_Test Seq Funnel",
			[wait("First", 1), wait("Second", 1)],
			[comment("first", "First"), comment("second", "Second")],
			stop_conditions={"all": [leaf("status", "=", "Replied")]},
		)
		leads = [start(make_lead, first_name=f"Funnel {i}") for i in range(4)]
		sweep(T0 + HOUR)  # all four ran step 1
		for lead in leads[:2]:
			lead.db_set("status", "Replied")  # two leave while waiting for step 2
		sweep(T0 + 2 * HOUR)
		filters = {"from_date": "2026-11-01", "to_date": "2026-11-30", "rule": "_Test Seq Funnel"}
		first, second = drop_off(filters)["_Test Seq Funnel"]
		self.assertEqual((first["reached"], first["ran"]), (4, 4))
		self.assertEqual((second["reached"], second["ran"], second["exited"]), (4, 2, 2))
		message = execute({**filters, "rule_type": "Workflow Rule"})[2]
		self.assertIn("Follow-up steps of", message)


class TestSimulatorAgreesWithSite(SequenceTestCase):
	"""The same records, changes and clock through the site (saves, a sweep every hour) and through
	the engine's virtual clock (what the offline simulator runs): the same steps, outcomes and times."""

	def test_site_and_virtual_clock_agree(self):
		from crm_automation.engine.sequence_story import run_sequence
		from crm_automation.engine.sequences import RAN, SKIPPED
		from crm_automation.runtime.workflow_rules import get_compiled_rule

		make_sequence_rule(
			"_Test Seq Agree",
			[
				wait(
					"Wait reply",
					2,
					"Days",
					"Until Condition",
					until_conditions={"all": [leaf("status", "=", "Replied")]},
				),
				wait("Check", 1, "Days", step_conditions={"all": [leaf("status", "=", "Open")]}),
				wait("Final", 2, "Days"),
			],
			[
				comment("thanks", "Wait reply"),
				comment("nudge", "Wait reply", on_timeout=1),
				comment("check", "Check"),
				comment("final", "Final"),
			],
			stop_conditions={"all": [leaf("status", "=", "Converted")]},
		)
		scenarios = {
			"quiet": [],
			"replies early": [(T0 + 10 * HOUR, "Replied")],
			"opens": [(T0 + 5 * HOUR, "Open")],
			"converts": [(T0 + 50 * HOUR, "Converted")],
		}
		until = T0 + 4 * DAY
		leads = {label: start(make_lead, first_name=label) for label in scenarios}
		sequence = get_compiled_rule("_Test Seq Agree").sequence
		changes = sorted((at, label, status) for label, items in scenarios.items() for at, status in items)
		moment = T0
		while moment <= until:
			for at, label, status in [c for c in changes if moment - HOUR < c[0] <= moment]:
				with patch("crm_automation.sequences.steps.now", return_value=at):
					leads[label].db_set("status", status)
			sweep(moment)
			moment += HOUR

		names = {RAN: "Done", SKIPPED: "Skipped", "Exited": "Exited"}
		for label, items in scenarios.items():
			run = run_sequence(
				sequence, {"status": "Lead"}, T0, until, [(at, {"status": s}) for at, s in items]
			)
			expected = [(index, names[status]) for _at, index, status, _detail in run.events]
			if run.status == "Pending":
				expected.append((run.pending_step, "Pending"))
			live = [(row.step_index, row.status) for row in steps_of(leads[label])]
			self.assertEqual(live, expected, label)
			ran_at = [at for at, _index, status, _detail in run.events if status == RAN]
			live_at = [row.due_at for row in steps_of(leads[label]) if row.status == "Done"]
			self.assertEqual(live_at, ran_at, label)
			if run.status == "Pending":
				self.assertEqual(pending(leads[label])[0].due_at, run.pending_due, label)


class TestDoctypesWithSequences(SequenceTestCase):
	"""Saves of a doctype are followed while it has an enabled sequence rule or steps still pending:
	a site that once tried a Lead sequence does not pay a query on every Lead save for ever."""

	def test_a_stopped_rule_keeps_its_doctype_followed_only_while_steps_are_pending(self):
		from crm_automation.runtime.workflow_rules import clear_rule_cache

		rule = make_sequence_rule("_Test Seq Followed", [wait("Remind", 24)], [comment("remind", "Remind")])
		self.assertIn("Lead", sequences.sequence_doctypes())
		lead = start(make_lead)
		self.assertEqual(len(pending(lead)), 1)
		frappe.db.set_value("Workflow Rule", rule.name, "enabled", 0)
		clear_rule_cache()
		new_request()
		self.assertIn("Lead", sequences.sequence_doctypes(), "its pending step must still follow saves")
		frappe.db.set_value(
			"Automation Sequence Step",
			{"reference_name": lead.name, "status": "Pending"},
			"status",
			"Cancelled",
		)
		clear_rule_cache()  # the next rule change
		new_request()
		self.assertNotIn("Lead", sequences.sequence_doctypes(), "a stored version alone is no work")
		self.assertTrue(frappe.db.exists("Automation Sequence Definition", {"document_type": "Lead"}))
