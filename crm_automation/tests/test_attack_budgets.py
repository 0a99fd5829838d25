"""Time, size and markup, attacked by a CRM Automation Manager (+ Sales User) on a site (issue 20).

A bomb in one action of a dry run used to fail the whole request (the Test dialog showed an error and
nothing else), and the dry run left the advanced condition out altogether, so it said "Fired" for a
rule whose save would fail. Here the dry run answers per action, as a save logs it, and applies the
advanced condition as the save does. A Validate rule that goes over its budget keeps the user's save,
as it is, and counts toward auto-disable. Each is checked in the database afterwards, and the same
rule written by a System Manager still works.
"""

import json
import time
from contextlib import contextmanager

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.engine import budget
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import logs_for, make_lead, make_user, new_request

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User"]

MANAGER = "crm-atk-budget-manager@example.com"
SYSTEM_MANAGER = "crm-atk-budget-sysmgr@example.com"
RULE_PREFIX = "_Test ATK Budget"
SETTINGS = "CRM Automation Settings"

SIZE_BOMB = "{{ '%0*d' % (100000000, 0) }}"
# Sorting 50,000 characters a thousand times: seconds of work in few steps.
SLOW_BOMB = "{% for n in 'x' * 1000 %}{{ ('abcdefghij' * 5000)|list|sort|length }}{% endfor %}"
CONDITION_BOMB = "doc.company_name.zfill(100000000) != ''"


@contextmanager
def as_user(user):
	previous = frappe.session.user
	frappe.set_user(user)
	try:
		yield
	finally:
		frappe.set_user(previous)


def save_rule_as(user, name, actions, trigger="New", **fields):
	with as_user(user):
		rule = frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": name,
				"document_type": "Lead",
				"trigger": trigger,
				"enabled": 1,
				"actions": list(actions),
				**fields,
			}
		).insert()
	clear_rule_cache()
	return rule


def only_for(company):
	return json.dumps({"all": [{"field": "company_name", "op": "=", "value": company}]})


def comments_on(doc):
	return frappe.get_all(
		"Comment",
		filters={"reference_doctype": doc.doctype, "reference_name": doc.name, "comment_type": "Comment"},
		pluck="content",
	)


def failures(rule):
	return frappe.db.get_value("Workflow Rule", rule, "consecutive_failures") or 0


def dry_run_as(user, rule, lead):
	from crm_automation.api import dry_run_rule

	with as_user(user):
		return dry_run_rule(rule, names=json.dumps([lead.name]))["results"][0]


class AttackBudgetTestCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_user(MANAGER, roles=["CRM Automation Manager", "Sales User"])
		make_user(SYSTEM_MANAGER, roles=["System Manager", "CRM Automation Manager", "Sales User"])
		frappe.db.set_single_value(SETTINGS, {"enabled": 1, "max_recursion_depth": 3, "failure_threshold": 5})
		frappe.clear_document_cache(SETTINGS, SETTINGS)
		frappe.db.commit()

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()

	def tearDown(self):
		frappe.set_user("Administrator")
		for name in frappe.get_all(
			"Workflow Rule", filters={"name": ("like", f"{RULE_PREFIX}%")}, pluck="name"
		):
			frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
		clear_rule_cache()
		frappe.db.set_single_value(SETTINGS, {"failure_threshold": 5})
		frappe.clear_document_cache(SETTINGS, SETTINGS)


class TestDryRunReportsPerAction(AttackBudgetTestCase):
	def disabled_rule(self, user, name, actions, company, **fields):
		rule = save_rule_as(user, name, actions, conditions=only_for(company), **fields)
		frappe.db.set_value("Workflow Rule", rule.name, "enabled", 0)
		clear_rule_cache()
		return rule

	def test_a_bomb_in_one_action_fails_that_action_only(self):
		company = "ATK Dry Run Actions"
		rule = self.disabled_rule(
			MANAGER,
			f"{RULE_PREFIX} Dry Actions",
			[
				{"action_type": "Add Comment", "message": SIZE_BOMB},
				{"action_type": "Add Comment", "message": "after the bomb {{ doc.first_name }}"},
			],
			company,
		)
		lead = make_lead(first_name="ATK Dry", company_name=company)
		frappe.clear_messages()  # what setting up users and leads left; the dry run must add none
		started = time.monotonic()
		entry = dry_run_as(MANAGER, rule.name, lead)
		self.assertLess(time.monotonic() - started, budget.RUN_SECONDS + 10)
		self.assertEqual(entry["outcome"], "Fired")
		bomb, ordinary = entry["actions"]
		self.assertEqual(bomb["status"], "Failed")
		self.assertRegex(bomb["summary"], "^would fail: .*characters is not allowed in a template")
		self.assertNotIn("status", ordinary)
		self.assertEqual(ordinary["message"], "after the bomb ATK Dry")
		self.assertEqual(frappe.local.message_log, [], "no error dialog for the whole request")
		# Nothing was done; the Dry Run log says which action would fail.
		self.assertEqual(comments_on(lead), [])
		self.assertEqual(failures(rule.name), 0, "a dry run does not count toward auto-disable")
		log = frappe.get_doc("Automation Log", logs_for(lead, rule.name)[-1].name)
		self.assertEqual(log.outcome, "Dry Run")
		self.assertEqual([row.status for row in log.actions], ["Dry Run", "Dry Run"])
		self.assertIn("would fail", log.actions[0].result)

	def test_a_slow_action_fails_and_the_ones_after_the_run_budget_too(self):
		company = "ATK Dry Run Slow"
		rule = self.disabled_rule(
			MANAGER,
			f"{RULE_PREFIX} Dry Slow",
			[{"action_type": "Add Comment", "message": SLOW_BOMB}] * 4,
			company,
		)
		lead = make_lead(first_name="ATK Dry Slow", company_name=company)
		started = time.monotonic()
		entry = dry_run_as(MANAGER, rule.name, lead)
		self.assertLess(time.monotonic() - started, budget.RUN_SECONDS + 10)
		self.assertEqual([a.get("status") for a in entry["actions"]], ["Failed"] * 4)
		# Stopped by the run's time budget, or on a fast machine first by what one evaluation may
		# build: either way a budget, never a hang.
		self.assertRegex(entry["actions"][-1]["summary"], "time budget|built values of more than")

	def test_an_advanced_condition_bomb_is_the_runs_failure(self):
		company = "ATK Dry Run Cond " + "a" * 20
		rule = self.disabled_rule(
			MANAGER,
			f"{RULE_PREFIX} Dry Condition",
			[{"action_type": "Add Comment", "message": "fired"}],
			company,
			condition_expression=CONDITION_BOMB,
		)
		lead = make_lead(first_name="ATK Dry Cond", company_name=company)
		entry = dry_run_as(MANAGER, rule.name, lead)
		self.assertEqual(entry["outcome"], "Failed")
		self.assertRegex(entry["reason"], "The advanced condition failed: a value longer than")
		self.assertEqual(entry["actions"], [])
		self.assertEqual(comments_on(lead), [])

	def test_the_advanced_condition_decides_as_on_a_save(self):
		company = "ATK Dry Run False"
		for user, expression, outcome in (
			(MANAGER, "doc.first_name == 'someone else'", "Skipped"),
			(SYSTEM_MANAGER, "doc.first_name.zfill(12).endswith('Cond')", "Fired"),
		):
			with self.subTest(user=user):
				rule = self.disabled_rule(
					user,
					f"{RULE_PREFIX} Dry {outcome}",
					[{"action_type": "Add Comment", "message": "{{ doc.first_name|upper }}"}],
					company,
					condition_expression=expression,
				)
				lead = make_lead(first_name="ATK Dry Cond", company_name=company)
				entry = dry_run_as(user, rule.name, lead)
				self.assertEqual(entry["outcome"], outcome)
				if outcome == "Fired":
					self.assertEqual(entry["actions"][0]["message"], "ATK DRY COND")

	def test_a_system_managers_rule_previews_as_before(self):
		company = "ATK Dry Run SM"
		rule = self.disabled_rule(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Dry SM",
			[{"action_type": "Add Comment", "message": "{{ '%05d' % 42 }} {{ doc.first_name }}"}],
			company,
		)
		lead = make_lead(first_name="ATK SM", company_name=company)
		entry = dry_run_as(SYSTEM_MANAGER, rule.name, lead)
		self.assertEqual(entry["outcome"], "Fired")
		self.assertEqual(entry["actions"][0]["message"], "00042 ATK SM")
		self.assertEqual(comments_on(lead), [])


class TestValidateRuleBudgets(AttackBudgetTestCase):
	def assert_kept_and_failed(self, lead, rule, reason, field, value):
		self.assertTrue(frappe.db.exists("Lead", lead.name), "the user's save is kept")
		self.assertEqual(
			frappe.db.get_value("Lead", lead.name, field), value, "the field is as the user saved it"
		)
		log = frappe.get_doc("Automation Log", logs_for(lead, rule)[-1].name)
		self.assertEqual(log.outcome, "Failed")
		said = " ".join([log.reason or "", *(row.result or "" for row in log.actions)])
		self.assertRegex(said, reason)
		self.assertEqual(failures(rule), 1, "the failure counts toward auto-disable")

	def test_a_size_bomb_in_a_validate_set_value_keeps_the_save(self):
		company = "ATK Validate Size"
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Validate Size",
			[{"action_type": "Set Value", "target_field": "job_title", "value": SIZE_BOMB}],
			trigger="Validate",
			conditions=only_for(company),
		)
		started = time.monotonic()
		lead = make_lead(first_name="ATK Validate", company_name=company, job_title="Buyer")
		self.assertLess(time.monotonic() - started, budget.RUN_SECONDS + 10)
		self.assert_kept_and_failed(lead, rule.name, "characters is not allowed", "job_title", "Buyer")

	def test_a_slow_validate_set_value_keeps_the_save(self):
		company = "ATK Validate Slow"
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Validate Slow",
			[{"action_type": "Set Value", "target_field": "job_title", "value": SLOW_BOMB}],
			trigger="Validate",
			conditions=only_for(company),
		)
		started = time.monotonic()
		lead = make_lead(first_name="ATK Validate Slow", company_name=company, job_title="Buyer")
		self.assertLess(time.monotonic() - started, budget.RUN_SECONDS + 10)
		self.assert_kept_and_failed(
			lead, rule.name, "took longer than|time budget|built values of more than", "job_title", "Buyer"
		)

	def test_a_condition_bomb_on_a_validate_rule_keeps_the_save(self):
		company = "ATK Validate Cond " + "a" * 20
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Validate Condition",
			[{"action_type": "Set Value", "target_field": "job_title", "value": "changed"}],
			trigger="Validate",
			conditions=only_for(company),
			condition_expression="doc.company_name != ''",
		)
		frappe.db.set_value("Workflow Rule", rule.name, "condition_expression", CONDITION_BOMB)
		clear_rule_cache()
		lead = make_lead(first_name="ATK Validate Cond", company_name=company, job_title="Buyer")
		self.assert_kept_and_failed(lead, rule.name, "The advanced condition failed", "job_title", "Buyer")

	def test_the_system_managers_validate_rule_still_sets_the_value(self):
		company = "ATK Validate SM"
		rule = save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Validate SM",
			[{"action_type": "Set Value", "target_field": "job_title", "value": "{{ '%05d' % 7 }}"}],
			trigger="Validate",
			conditions=only_for(company),
		)
		lead = make_lead(first_name="ATK Validate SM", company_name=company, job_title="Buyer")
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "job_title"), "00007")
		self.assertEqual(failures(rule.name), 0)
