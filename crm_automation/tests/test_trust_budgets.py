"""Every evaluation has a budget (issue 20), proven on a site as an attacker holding only CRM
Automation Manager (+ Sales User): each bomb is put in a rule the manager writes and fired by a
Lead saved by the Administrator. The save is kept (the Lead is in the database), the run is logged
Failed with the reason, the failure counts toward the rule's health (auto-disable), and nothing the
bomb was meant to do happened. The per-save bound on Create Document and the cap on the recursion
depth a manager may set are checked in the database too.
"""

import json
import time
from contextlib import contextmanager
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.engine import budget
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import logs_for, make_lead, make_user, new_request

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User"]

MANAGER = "crm-tb2-budget-manager@example.com"
SYSTEM_MANAGER = "crm-tb2-budget-sysmgr@example.com"
RULE_PREFIX = "_Test TB2 Budget"
SETTINGS = "CRM Automation Settings"

# Three nested loops over a 100-character value: a million rounds, and as many comments.
LOOP_BOMB = (
	"{% for a in doc.company_name %}{% for b in doc.company_name %}{% for c in doc.company_name %}"
	"x{% endfor %}{% endfor %}{% endfor %}"
)
# No written-out number over the save-time check's limit: the size comes from the document.
SIZE_BOMBS = (
	"{% set a = doc.company_name * 10000 %}{{ (a * 10000)|length }}",
	"{% set a = doc.company_name ~ doc.company_name %}" + "{% set a = a ~ a %}" * 30,
	"{{ ''.zfill(100000000) }}",
	"{{ '%0100000000d' % 0 }}",
	"{{ '{:>100000000}'.format(1) }}",
	"{{ (doc.company_name * 1000)|join(doc.company_name * 1000) }}",
	"{{ ''|center(100000000) }}",
)
CONDITION_BOMBS = (
	"doc.company_name.zfill(100000000) != ''",
	"'%0100000000d' % 0 != ''",
	"'%0*d' % (100000000, 0) != ''",
	"(doc.company_name * 10000).replace('a', doc.company_name * 10000) != ''",
)
# Sorting 50,000 characters a thousand times: seconds of work in few steps.
SLOW_TEMPLATE = "{% for n in 'x' * 1000 %}{{ ('abcdefghij' * 5000)|list|sort|length }}{% endfor %}"


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
	"""Conditions that keep a rule to this test's Leads."""
	return json.dumps({"all": [{"field": "company_name", "op": "=", "value": company}]})


def comments_on(doc):
	return frappe.get_all(
		"Comment",
		filters={"reference_doctype": doc.doctype, "reference_name": doc.name, "comment_type": "Comment"},
		pluck="content",
	)


def last_log(doc, rule):
	logs = logs_for(doc, rule)
	return frappe.get_doc("Automation Log", logs[-1].name) if logs else None


def failures(rule):
	return frappe.db.get_value("Workflow Rule", rule, "consecutive_failures") or 0


class BudgetTestCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_user(MANAGER, roles=["CRM Automation Manager", "Sales User"])
		make_user(SYSTEM_MANAGER, roles=["System Manager", "CRM Automation Manager", "Sales User"])
		frappe.db.set_single_value(
			SETTINGS,
			{"enabled": 1, "max_recursion_depth": 3, "failure_threshold": 5, "max_documents_per_save": 10},
		)
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
		frappe.db.set_single_value(
			SETTINGS, {"max_recursion_depth": 3, "failure_threshold": 5, "max_documents_per_save": 10}
		)
		frappe.clear_document_cache(SETTINGS, SETTINGS)

	def assert_failed_and_kept(self, lead, rule, reason, before=0):
		"""The save is kept, the run is logged Failed with `reason`, and it counts toward health."""
		self.assertTrue(frappe.db.exists("Lead", lead.name), "the user's save is kept")
		log = last_log(lead, rule)
		self.assertIsNotNone(log, "the run is logged")
		self.assertEqual(log.outcome, "Failed")
		said = " ".join([log.reason or "", *(row.result or "" for row in log.actions)])
		self.assertRegex(said, reason)
		self.assertEqual(failures(rule), before + 1, "the failure counts toward auto-disable")
		return log


class TestTemplateBudgets(BudgetTestCase):
	def test_nested_loops_stop_and_fail_the_run(self):
		company = "a" * 100
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Loops",
			[{"action_type": "Add Comment", "message": LOOP_BOMB}],
			conditions=only_for(company),
		)
		started = time.monotonic()
		lead = make_lead(first_name="TB2 Loops", company_name=company)
		self.assertLess(time.monotonic() - started, budget.EVALUATION_SECONDS * 5 + 10)
		self.assert_failed_and_kept(lead, rule.name, f"more than {budget.MAX_STEPS} steps")
		self.assertEqual(comments_on(lead), [], "nothing was written")

	def test_size_bombs_stop_and_fail_the_run(self):
		company = "TB2 Size " + "b" * 40
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Size",
			[{"action_type": "Add Comment", "message": "placeholder"}],
			conditions=only_for(company),
		)
		for count, template in enumerate(SIZE_BOMBS):
			with self.subTest(template=template):
				frappe.db.set_value("Workflow Rule Action", rule.actions[0].name, "message", template)
				frappe.db.set_value("Workflow Rule", rule.name, {"enabled": 1, "consecutive_failures": 0})
				clear_rule_cache()
				new_request()
				lead = make_lead(first_name=f"TB2 Size {count}", company_name=company)
				self.assert_failed_and_kept(lead, rule.name, "characters is not allowed in a template")
				self.assertEqual(comments_on(lead), [])

	def test_a_size_bomb_in_a_set_value_keeps_the_field_as_it_was(self):
		company = "TB2 Set Value"
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Set Value",
			[
				{
					"action_type": "Set Value",
					"target_field": "job_title",
					"value": "{{ ''.ljust(100000000, 'x') }}",
				}
			],
			conditions=only_for(company),
		)
		lead = make_lead(first_name="TB2 Set Value", company_name=company, job_title="Buyer")
		self.assert_failed_and_kept(lead, rule.name, "characters is not allowed")
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "job_title"), "Buyer")

	def test_repeated_bombs_switch_the_rule_off(self):
		company = "TB2 Disable"
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Disable",
			[{"action_type": "Add Comment", "message": SIZE_BOMBS[0]}],
			conditions=only_for(company),
		)
		for count in range(5):
			new_request()
			lead = make_lead(first_name=f"TB2 Disable {count}", company_name=company)
			self.assertTrue(frappe.db.exists("Lead", lead.name))
		self.assertEqual(frappe.db.get_value("Workflow Rule", rule.name, "enabled"), 0)
		self.assertIn(
			"characters is not allowed", frappe.db.get_value("Workflow Rule", rule.name, "disabled_reason")
		)

	def test_a_run_stops_after_its_total_budget(self):
		"""Each template stops at its own limit; together they stop at the run's, and the actions after
		that are not carried out. (Budgets made small here so the test is quick.)"""
		company = "TB2 Run Budget"
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Run Budget",
			[
				{"action_type": "Add Comment", "message": SLOW_TEMPLATE},
				{"action_type": "Add Comment", "message": SLOW_TEMPLATE},
				{"action_type": "Add Comment", "message": SLOW_TEMPLATE},
				{"action_type": "Add Comment", "message": "not templated, after the budget"},
			],
			conditions=only_for(company),
		)
		with patch.object(budget, "RUN_SECONDS", 0.6), patch.object(budget, "EVALUATION_SECONDS", 0.25):
			started = time.monotonic()
			lead = make_lead(first_name="TB2 Run Budget", company_name=company)
			self.assertLess(time.monotonic() - started, 0.6 * 5 + 10)
		log = self.assert_failed_and_kept(lead, rule.name, "time budget of 0.6 s")
		self.assertRegex(log.reason, "^Stopped: the run went over its time budget of 0.6 s")
		statuses = [row.status for row in log.actions]
		self.assertEqual(statuses, ["Failed"] * 4)
		self.assertIn("Not carried out", log.actions[-1].result)
		self.assertEqual(comments_on(lead), [], "no action ran after the budget was spent")

	def test_an_ordinary_rule_of_the_manager_still_works(self):
		company = "TB2 Ordinary"
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Ordinary",
			[
				{
					"action_type": "Add Comment",
					"message": "{% for c in doc.first_name %}{{ c|upper }}{% endfor %} {{ '%05d' % 42 }}",
				}
			],
			conditions=only_for(company),
			condition_expression="doc.first_name.zfill(12).endswith('Ordinary')",
		)
		lead = make_lead(first_name="TB2 Ordinary", company_name=company)
		log = last_log(lead, rule.name)
		self.assertEqual(log.outcome, "Success")
		self.assertEqual(failures(rule.name), 0)
		self.assertEqual(len(comments_on(lead)), 1)
		self.assertIn("TB2 ORDINARY 00042", comments_on(lead)[0])

	def test_a_dry_run_of_a_bomb_stops_too(self):
		company = "TB2 Dry Run"
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Dry Run",
			[{"action_type": "Add Comment", "message": "{{ '%0*d' % (100000000, 0) }}"}],
			conditions=only_for(company),
		)
		frappe.db.set_value("Workflow Rule", rule.name, "enabled", 0)
		clear_rule_cache()
		lead = make_lead(first_name="TB2 Dry Run", company_name=company)
		from crm_automation.api import dry_run_rule

		# The bomb fails its action in the answer, not the whole request (test_attack_budgets).
		with as_user(MANAGER):
			result = dry_run_rule(rule.name, names=json.dumps([lead.name]))
		action = result["results"][0]["actions"][0]
		self.assertEqual(action["status"], "Failed")
		self.assertRegex(action["summary"], "characters is not allowed")
		self.assertEqual(comments_on(lead), [])


class TestConditionBudgets(BudgetTestCase):
	def test_condition_size_bombs_fail_the_run_and_keep_the_save(self):
		company = "TB2 Condition " + "a" * 20
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Condition",
			[{"action_type": "Add Comment", "message": "fired"}],
			conditions=only_for(company),
			condition_expression="doc.company_name != ''",
		)
		for count, expression in enumerate(CONDITION_BOMBS):
			with self.subTest(expression=expression):
				frappe.db.set_value(
					"Workflow Rule",
					rule.name,
					{"condition_expression": expression, "consecutive_failures": 0},
				)
				clear_rule_cache()
				new_request()
				started = time.monotonic()
				lead = make_lead(first_name=f"TB2 Condition {count}", company_name=company)
				self.assertLess(time.monotonic() - started, budget.EVALUATION_SECONDS * 5 + 10)
				log = self.assert_failed_and_kept(
					lead, rule.name, "The advanced condition failed: a value longer than .* in a condition"
				)
				self.assertEqual(log.actions, [])
				self.assertEqual(comments_on(lead), [])

	def test_a_backtracking_like_pattern_does_not_hold_the_save(self):
		"""`%%%...X` took minutes as a regular expression on one Lead save."""
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Like",
			[{"action_type": "Add Comment", "message": "ends in X"}],
			conditions=json.dumps(
				{"all": [{"field": "company_name", "op": "like", "value": "%" * 60 + "X"}]}
			),
		)
		started = time.monotonic()
		lead = make_lead(first_name="TB2 Like", company_name="a" * 130)
		self.assertLess(time.monotonic() - started, 10)
		self.assertEqual(comments_on(lead), [], "the pattern does not match")
		new_request()
		lead = make_lead(first_name="TB2 Like X", company_name="a" * 129 + "x")
		self.assertEqual(comments_on(lead), ["ends in X"], "like is case-insensitive, as before")
		self.assertEqual(last_log(lead, rule.name).outcome, "Success")


class TestCreateDocumentBound(BudgetTestCase):
	def chain_rule(self, company, fan_out=3):
		field_map = json.dumps({"first_name": "TB2 Chain Child", "company_name": company})
		return save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Chain",
			[{"action_type": "Create Document", "target_doctype": "Lead", "field_map": field_map}] * fan_out,
			conditions=only_for(company),
		)

	def children(self, company):
		return frappe.db.count("Lead", {"company_name": company, "first_name": "TB2 Chain Child"})

	def test_one_insert_creates_at_most_the_bound(self):
		"""Three Create Document actions, each Lead starting the rule again: 3 + 9 + 27 = 39 Leads
		before; now at most Max Documents Created per Save (10) in all."""
		company = "TB2 Chain Co"
		rule = self.chain_rule(company)
		lead = make_lead(first_name="TB2 Chain Root", company_name=company)
		self.assertTrue(frappe.db.exists("Lead", lead.name))
		self.assertEqual(self.children(company), 10)
		log = last_log(lead, rule.name)
		self.assertEqual(log.outcome, "Failed")
		self.assertTrue(
			any(
				"Not created: automation may create at most 10 documents" in (row.result or "")
				for row in log.actions
			)
		)
		self.assertGreaterEqual(failures(rule.name), 1)

	def test_a_system_manager_sets_the_bound(self):
		company = "TB2 Chain Two"
		with as_user(SYSTEM_MANAGER):
			single = frappe.get_single(SETTINGS)
			single.max_documents_per_save = 2
			single.save()
		self.chain_rule(company)
		make_lead(first_name="TB2 Chain Root", company_name=company)
		self.assertEqual(self.children(company), 2)

	def test_the_bound_is_per_saved_document(self):
		"""Two Leads saved in one request (an import) each get their own bound."""
		company = "TB2 Chain Each"
		self.chain_rule(company, fan_out=1)
		frappe.db.set_single_value(SETTINGS, "max_recursion_depth", 1)
		frappe.clear_document_cache(SETTINGS, SETTINGS)
		make_lead(first_name="TB2 Chain Root", company_name=company)
		make_lead(first_name="TB2 Chain Root", company_name=company)
		self.assertEqual(self.children(company), 2)


class TestSettingsCaps(BudgetTestCase):
	def save_settings_as(self, user, **values):
		with as_user(user):
			single = frappe.get_single(SETTINGS)
			single.update(values)
			single.save()

	def test_a_manager_cannot_raise_the_recursion_depth_above_the_cap(self):
		with self.assertRaisesRegex(
			frappe.ValidationError,
			"Max Recursion Depth above 3 may be set by a System Manager only, not <strong>10</strong>",
		):
			self.save_settings_as(MANAGER, max_recursion_depth=10)
		self.assertEqual(frappe.db.get_single_value(SETTINGS, "max_recursion_depth"), 3)
		self.save_settings_as(MANAGER, max_recursion_depth=2)
		self.assertEqual(frappe.db.get_single_value(SETTINGS, "max_recursion_depth"), 2)

	def test_nor_through_rest(self):
		from frappe.client import set_value

		with as_user(MANAGER), self.assertRaisesRegex(frappe.ValidationError, "System Manager only"):
			set_value(SETTINGS, SETTINGS, "max_recursion_depth", 5)
		self.assertEqual(frappe.db.get_single_value(SETTINGS, "max_recursion_depth"), 3)

	def test_a_system_manager_may_and_the_manager_may_then_edit_the_rest(self):
		self.save_settings_as(SYSTEM_MANAGER, max_recursion_depth=6)
		self.assertEqual(frappe.db.get_single_value(SETTINGS, "max_recursion_depth"), 6)
		# Keeping what a System Manager set is not raising it.
		self.save_settings_as(MANAGER, log_retention_days=60)
		self.assertEqual(frappe.db.get_single_value(SETTINGS, "log_retention_days"), 60)
		with self.assertRaisesRegex(frappe.ValidationError, "not <strong>7</strong>"):
			self.save_settings_as(MANAGER, max_recursion_depth=7)
		self.save_settings_as(SYSTEM_MANAGER, max_recursion_depth=3, log_retention_days=90)

	def test_only_a_system_manager_changes_the_documents_bound(self):
		with self.assertRaisesRegex(
			frappe.ValidationError,
			"Max Documents Created per Save may be changed by a System Manager only, not to <strong>50</strong>",
		):
			self.save_settings_as(MANAGER, max_documents_per_save=50)
		with self.assertRaisesRegex(frappe.ValidationError, "System Manager only"):
			self.save_settings_as(MANAGER, max_documents_per_save=1)
		self.assertEqual(frappe.db.get_single_value(SETTINGS, "max_documents_per_save"), 10)
		with self.assertRaisesRegex(
			frappe.ValidationError, "must be from 1 to 100, not <strong>1000</strong>"
		):
			self.save_settings_as(SYSTEM_MANAGER, max_documents_per_save=1000)
		self.save_settings_as(SYSTEM_MANAGER, max_documents_per_save=20)
		self.assertEqual(frappe.db.get_single_value(SETTINGS, "max_documents_per_save"), 20)
