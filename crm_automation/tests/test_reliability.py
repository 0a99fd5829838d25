# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt
"""Nothing lost, nothing blocked, turns taken in order (issue #12, site side).

- Sweeps lose nothing: one failing document is rolled back alone (its occurrence claim with it),
  logged naming the document, and fired by the next sweep; the others commit.
- A sweep in a worker whose compiled index predates the rule still finds the rule.
- A broken Validate rule never blocks a save: only a deliberate Reject does.
- Round robin follows the list (Listed Users, User Group order; Role alphabetically), also with
  two processes saving at once.
"""

import datetime
from collections import Counter
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import get_datetime

from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.concurrency import reports, run_in_processes
from crm_automation.tests.factories import (
	delete_test_rules,
	ensure,
	logs_for,
	make_lead,
	make_rule,
	make_sales_order,
	make_user,
	new_request,
	open_assignees,
)

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User Group", "Email Template", "Tag", "User"]

# Listed out of alphabetical order on purpose: the order of the list, not of the names, decides.
ZOE, ADAM, MIKE = (f"crm-rr-{name}@example.com" for name in ("zoe", "adam", "mike"))
LISTED = [ZOE, ADAM, MIKE]
RR_ROLE = "_Test CRM Round Robin"
RR_GROUP = "_Test CRM Round Robin Group"
RR_TERRITORY = "_Test CRM Round Robin"


def comments(doc, text):
	return frappe.db.count(
		"Comment",
		{"reference_doctype": doc.doctype, "reference_name": doc.name, "content": ("like", f"%{text}%")},
	)


def error_logs_naming(name):
	return frappe.get_all("Error Log", filters={"reference_name": name}, pluck="method")


def delete_committed(doctype, names):
	if not names:
		return
	frappe.db.delete("Comment", {"reference_doctype": doctype, "reference_name": ("in", names)})
	frappe.db.delete("ToDo", {"reference_type": doctype, "reference_name": ("in", names)})
	frappe.db.delete("Automation Log", {"reference_name": ("in", names)})
	frappe.db.delete("Automation Occurrence", {"reference_name": ("in", names)})
	frappe.db.delete("Escalation State", {"reference_name": ("in", names)})
	frappe.db.delete("Error Log", {"reference_name": ("in", names)})
	for name in names:
		frappe.delete_doc(doctype, name, force=True, ignore_permissions=True)


def failing_for(name, real):
	"""carry_out that raises for one document only: a document whose run breaks mid-sweep."""

	def carry_out(intents, doc, before, rule):
		if doc.name == name:
			raise RuntimeError(f"breaks on {name}")
		return real(intents, doc, before, rule)

	return carry_out


class TestTimeSweepLosesNothing(FrappeTestCase):
	"""The time sweep commits per chunk; a failing document must not take the chunk with it."""

	def setUp(self):
		new_request()
		self.orders = []

	def tearDown(self):
		frappe.db.rollback()
		delete_committed("Sales Order", [o.name for o in self.orders])
		delete_test_rules("_Test Reliability%")
		frappe.db.commit()

	def time_rule(self):
		return make_rule(
			"_Test Reliability Sweep",
			"Sales Order",
			"Time",
			time_field="delivery_date",
			time_offset=2,
			time_unit="Days",
			time_direction="Before",
			actions=[{"action_type": "Add Comment", "message": "reliable sweep"}],
		)

	def test_a_failing_document_is_retried_and_the_others_commit(self):
		from crm_automation import actions
		from crm_automation.scheduler import run_time_trigger

		self.time_rule()
		self.orders = [make_sales_order(delivery_in_days=2) for _ in range(3)]
		broken = self.orders[1]
		frappe.db.commit()
		with patch.object(actions, "carry_out", failing_for(broken.name, actions.carry_out)):
			self.assertEqual(run_time_trigger("_Test Reliability Sweep"), 2)
		frappe.db.rollback()  # read what the sweep committed, nothing else
		self.assertEqual([comments(o, "reliable sweep") for o in self.orders], [1, 0, 1])
		self.assertFalse(
			frappe.db.exists("Automation Occurrence", {"reference_name": broken.name}),
			"the failing document's claim is rolled back with it",
		)
		self.assertEqual(len(error_logs_naming(broken.name)), 1)
		self.assertIn(broken.name, error_logs_naming(broken.name)[0])

		new_request()
		self.assertEqual(run_time_trigger("_Test Reliability Sweep"), 1, "the next sweep fires it")
		frappe.db.rollback()
		self.assertEqual([comments(o, "reliable sweep") for o in self.orders], [1, 1, 1])

	def test_a_worker_whose_index_predates_the_rule_still_sweeps_it(self):
		"""A long-lived worker can hold an index built in a snapshot older than the rule, under the
		current version token; the sweep of that rule must rebuild rather than fire nothing."""
		from crm_automation.runtime.workflow_rules import _rules_cache, get_compiled_rule
		from crm_automation.scheduler import run_time_trigger

		self.time_rule()
		self.orders = [make_sales_order(delivery_in_days=2)]
		frappe.db.commit()
		self.assertIsNotNone(get_compiled_rule("_Test Reliability Sweep"))
		version = _rules_cache._by_site[frappe.local.site][0]
		_rules_cache._by_site[frappe.local.site] = (version, {})  # as if built before the rule existed
		try:
			self.assertEqual(run_time_trigger("_Test Reliability Sweep"), 1)
		finally:
			clear_rule_cache()


class TestOccurrenceClaims(FrappeTestCase):
	def tearDown(self):
		frappe.db.rollback()

	def test_losing_a_claim_race_leaves_no_message_for_the_user(self):
		"""In a snapshot older than the rival's commit the early check says "not yet" and the unique
		index refuses the insert; that refusal is the expected outcome, not an error to show."""
		from crm_automation.crm_automation.doctype.automation_occurrence.automation_occurrence import (
			claim_occurrence,
		)

		args = ("Workflow Rule", "_Test Reliability Claim", "Lead", "LEAD-RACE", "once")
		self.assertTrue(claim_occurrence(*args))
		frappe.local.message_log = []
		with patch.object(frappe.db, "exists", return_value=False):  # the stale snapshot's answer
			self.assertFalse(claim_occurrence(*args))
		self.assertEqual(frappe.local.message_log, [])
		self.assertEqual(frappe.db.count("Automation Occurrence", {"rule": "_Test Reliability Claim"}), 1)


class TestEscalationSweepLosesNothing(FrappeTestCase):
	def setUp(self):
		new_request()
		self.leads = []

	def tearDown(self):
		from crm_automation.escalation import clear_policy_cache

		frappe.db.rollback()
		delete_committed("Lead", [lead.name for lead in self.leads])
		if frappe.db.exists("Escalation Policy", "_Test Reliability Escalation"):
			frappe.delete_doc("Escalation Policy", "_Test Reliability Escalation", force=True)
		clear_policy_cache()
		frappe.db.commit()

	def test_a_failing_clock_is_retried_and_the_others_commit(self):
		from crm_automation import escalation
		from crm_automation.crm_automation.doctype.escalation_policy.test_escalation_policy import make_policy

		make_policy(
			"_Test Reliability Escalation",
			"Lead",
			clock_start="Creation",
			levels=[
				{
					"level": 1,
					"after": 1,
					"unit": "Hours",
					"action_type": "Add Comment",
					"message": "escalated reliably",
				}
			],
		)
		self.leads = [make_lead(first_name=f"Escalate {i}") for i in range(3)]
		broken = self.leads[1]
		frappe.db.commit()
		later = get_datetime(self.leads[-1].creation) + datetime.timedelta(hours=2)
		real_fire = escalation.fire

		def fire(policy, doc, due, now):
			if doc.name == broken.name:
				raise RuntimeError(f"breaks on {broken.name}")
			return real_fire(policy, doc, due, now)

		with patch.object(escalation, "fire", fire):
			self.assertEqual(escalation.sweep(later), 2)
		frappe.db.rollback()
		self.assertEqual([comments(lead, "escalated reliably") for lead in self.leads], [1, 0, 1])
		self.assertFalse(frappe.db.exists("Automation Occurrence", {"reference_name": broken.name}))
		self.assertEqual(len(error_logs_naming(broken.name)), 1)

		new_request()
		self.assertEqual(escalation.sweep(later), 1, "still due: the next sweep fires it")
		frappe.db.rollback()
		self.assertEqual([comments(lead, "escalated reliably") for lead in self.leads], [1, 1, 1])

	def test_a_worker_whose_index_predates_the_policy_does_not_stop_its_clocks(self):
		"""Without the policy in its index, the sweep took the policy for deleted and stopped the
		clock: every escalation of that document lost."""
		from crm_automation import escalation
		from crm_automation.crm_automation.doctype.escalation_policy.test_escalation_policy import make_policy

		make_policy(
			"_Test Reliability Escalation",
			"Lead",
			clock_start="Creation",
			levels=[
				{
					"level": 1,
					"after": 1,
					"unit": "Hours",
					"action_type": "Add Comment",
					"message": "escalated reliably",
				}
			],
		)
		self.leads = [make_lead(first_name="Escalate Stale")]
		frappe.db.commit()
		later = get_datetime(self.leads[0].creation) + datetime.timedelta(hours=2)
		self.assertTrue(escalation.get_policies("Lead"))  # built under the token that stays current
		version = escalation._policy_cache._by_site[frappe.local.site][0]
		escalation._policy_cache._by_site[frappe.local.site] = (version, {"by_doctype": {}, "by_name": {}})
		frappe.local.crm_automation_refreshed_policies = set()
		try:
			self.assertEqual(escalation.sweep(later), 1)
		finally:
			escalation.clear_policy_cache()
		frappe.db.rollback()
		self.assertEqual(comments(self.leads[0], "escalated reliably"), 1)
		state = escalation.get_state("_Test Reliability Escalation", self.leads[0])
		self.assertNotEqual(state.status, "Stopped")


class TestBrokenValidateRule(FrappeTestCase):
	"""Only a deliberate Reject may stop a save."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		frappe.db.set_single_value("CRM Automation Settings", {"enabled": 1, "failure_threshold": 5})

	def setUp(self):
		new_request()
		frappe.local.message_log = []

	def tearDown(self):
		frappe.db.rollback()
		# A rejection is logged after the rollback and committed (runner._log_after_rollback).
		frappe.db.delete("Automation Log", {"rule": ("like", "_Test Reliability%")})
		frappe.db.commit()
		clear_rule_cache()

	def validate_rule(self, *actions, name="_Test Reliability Validate"):
		return make_rule(name, "Lead", "Validate", actions=list(actions))

	def assert_saved_with_one_notice(self, lead, rule="_Test Reliability Validate"):
		self.assertTrue(frappe.db.exists("Lead", lead.name))
		self.assertEqual([row.outcome for row in logs_for(lead, rule)], ["Failed"])
		messages = [frappe.parse_json(m).get("message", "") for m in frappe.local.message_log]
		self.assertEqual(len(messages), 1, messages)
		self.assertIn(rule, messages[0])
		self.assertNotIn("Traceback", messages[0])

	def test_a_value_its_field_refuses_does_not_block_the_save(self):
		"""A Select value that is not an option would fail Frappe's check after validate."""
		self.validate_rule(
			{"action_type": "Set Value", "target_field": "status", "value": "{{ doc.first_name }}"}
		)
		lead = make_lead(first_name="Bogus Status")
		self.assert_saved_with_one_notice(lead)
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "status"), "Lead")

	def test_a_link_to_nothing_is_not_saved_unchecked(self):
		"""Frappe checks links before validate: a link set here would be saved without a check."""
		self.validate_rule(
			{"action_type": "Set Value", "target_field": "territory", "value": "{{ doc.first_name }}"}
		)
		lead = make_lead(first_name="Nowhere Land")
		self.assert_saved_with_one_notice(lead)
		self.assertNotEqual(frappe.db.get_value("Lead", lead.name, "territory"), "Nowhere Land")

	def test_a_template_that_fails_undoes_what_the_rule_already_set(self):
		self.validate_rule(
			{"action_type": "Set Value", "target_field": "company_name", "value": "Changed by rule"},
			{"action_type": "Set Value", "target_field": "job_title", "value": "{{ doc.first_name + 1 }}"},
		)
		lead = make_lead(first_name="Half Done", company_name="Original Co")
		self.assert_saved_with_one_notice(lead)
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "company_name"), "Original Co")
		self.assertEqual(lead.company_name, "Original Co", "undone in memory too")

	def test_a_deliberate_reject_still_stops_the_save(self):
		self.validate_rule(
			{"action_type": "Set Value", "target_field": "status", "value": "{{ doc.first_name }}"},
			{"action_type": "Reject", "message": "No leads today"},
		)
		with self.assertRaisesRegex(frappe.ValidationError, "No leads today"):
			make_lead(first_name="Rejected Anyway")

	def test_the_rule_switches_itself_off_after_repeated_failures(self):
		frappe.db.set_single_value("CRM Automation Settings", "failure_threshold", 2)
		try:
			self.validate_rule(
				{"action_type": "Set Value", "target_field": "status", "value": "{{ doc.first_name }}"}
			)
			for i in range(2):
				new_request()
				make_lead(first_name=f"Failing {i}")
			rule = frappe.get_doc("Workflow Rule", "_Test Reliability Validate")
			self.assertEqual((rule.enabled, rule.consecutive_failures), (0, 2))
			new_request()
			lead = make_lead(first_name="After Switch Off")
			self.assertEqual(logs_for(lead, "_Test Reliability Validate"), [])
		finally:
			frappe.db.set_single_value("CRM Automation Settings", "failure_threshold", 5)


def setup_round_robin_users():
	ensure("Role", RR_ROLE, role_name=RR_ROLE)
	ensure("Territory", RR_TERRITORY, territory_name=RR_TERRITORY, parent_territory="All Territories")
	for user in LISTED:
		make_user(user, roles=["Sales User", RR_ROLE])
	if not frappe.db.exists("User Group", RR_GROUP):
		frappe.get_doc(
			{"doctype": "User Group", "name": RR_GROUP, "user_group_members": [{"user": u} for u in LISTED]}
		).insert(ignore_permissions=True)
	frappe.db.commit()  # kept, like the other tests' users; other processes must see them


def round_robin_rule(source, **fields):
	return make_rule(
		"_Test Reliability Round Robin",
		"Lead",
		"New",
		conditions={"all": [{"field": "territory", "op": "=", "value": RR_TERRITORY}]},
		actions=[{"action_type": "Assign", "assign_to_type": source, **fields}],
	)


def assignees_in_order(count):
	leads = []
	for i in range(count):
		new_request()
		leads.append(make_lead(first_name=f"Turn {i}", territory=RR_TERRITORY))
	return [user for lead in leads for user in open_assignees(lead)]


class TestRoundRobinFollowsTheList(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		setup_round_robin_users()
		frappe.db.set_single_value("CRM Automation Settings", "enabled", 1)

	def tearDown(self):
		frappe.db.rollback()
		clear_rule_cache()

	def test_listed_users_take_turns_in_the_listed_order(self):
		round_robin_rule("Listed Users", to_users="\n".join(LISTED))
		self.assertEqual(assignees_in_order(6), [ZOE, ADAM, MIKE, ZOE, ADAM, MIKE])

	def test_two_listed_users_share_four_leads(self):
		round_robin_rule("Listed Users", to_users=f"{MIKE}\n{ADAM}")
		self.assertEqual(assignees_in_order(4), [MIKE, ADAM, MIKE, ADAM])

	def test_user_group_in_the_groups_order(self):
		round_robin_rule("User Group", user_group=RR_GROUP)
		self.assertEqual(assignees_in_order(4), [ZOE, ADAM, MIKE, ZOE])

	def test_role_alphabetically(self):
		round_robin_rule("Role", to_role=RR_ROLE)
		self.assertEqual(assignees_in_order(4), [ADAM, MIKE, ZOE, ADAM])

	def test_the_last_one_removed_from_the_list_or_disabled(self):
		rule = round_robin_rule("Listed Users", to_users="\n".join(LISTED))
		self.assertEqual(assignees_in_order(2), [ZOE, ADAM])
		# Adam, who had the last turn, is disabled: the turn passes on to the one after him.
		frappe.db.set_value("User", ADAM, "enabled", 0)
		self.assertEqual(assignees_in_order(2), [MIKE, ZOE])
		frappe.db.set_value("User", ADAM, "enabled", 1)
		# Zoe, who had the last turn, leaves the list: the turn starts again from the first.
		rule.reload()
		rule.actions[0].to_users = f"{ADAM}\n{MIKE}"
		rule.save(ignore_permissions=True)
		clear_rule_cache()
		self.assertEqual(assignees_in_order(3), [ADAM, MIKE, ADAM])


class TestRoundRobinUnderConcurrentSaves(FrappeTestCase):
	"""Two processes saving 30 Leads each → 20/20/20, for each source of users."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		setup_round_robin_users()
		ensure("Industry Type", "_Test CRM IT", industry="_Test CRM IT")
		frappe.db.set_single_value("CRM Automation Settings", "enabled", 1)
		frappe.db.commit()  # the other processes must see the users, the group and the role

	def tearDown(self):
		frappe.db.rollback()
		leads = frappe.get_all("Lead", filters={"territory": RR_TERRITORY}, pluck="name")
		delete_committed("Lead", leads)
		delete_test_rules("_Test Reliability%")
		frappe.db.commit()

	def assert_fair(self, source, **fields):
		round_robin_rule(source, **fields)
		frappe.db.commit()
		outputs = run_in_processes(
			frappe.local.site,
			[
				(
					"crm_automation.tests.concurrency.insert_leads",
					(30, f"RR {p}", RR_TERRITORY, "_Test CRM IT"),
				)
				for p in ("A", "B")
			],
		)
		frappe.db.rollback()  # a fresh snapshot: what both processes committed
		leads = frappe.get_all("Lead", filters={"territory": RR_TERRITORY}, pluck="name")
		self.assertEqual(len(leads), 60)
		todos = frappe.get_all(
			"ToDo",
			filters={"reference_type": "Lead", "reference_name": ("in", leads), "status": "Open"},
			pluck="allocated_to",
		)
		self.assertEqual(Counter(todos), Counter({user: 20 for user in LISTED}), reports(outputs))

	def test_listed_users(self):
		self.assert_fair("Listed Users", to_users="\n".join(LISTED))

	def test_role(self):
		self.assert_fair("Role", to_role=RR_ROLE)

	def test_user_group(self):
		self.assert_fair("User Group", user_group=RR_GROUP)
