"""Hold-out control groups, percentage splits and the Rule Outcome report on a real site (issue 23).

- A 20 % hold-out over 500 new Leads holds out 100 ± 25, logged Held Out with no action, the same
  ones after a re-run and as the engine (and so the offline simulator) computes them.
- A 50/50 split sends each arm its own e-mail.
- A planted effect (treated 30 % converted, held out 10 %) is significant with the right sign; no
  effect (20 % and 20 %) is not; tiny groups give "not enough data".
- An attacker (CRM Automation Manager + Sales User limited to one territory) sees only the leads they
  may read in the report.
"""

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.crm_automation.report.rule_outcome import rule_outcome as report
from crm_automation.engine.groups import HELD_OUT, is_held_out
from crm_automation.outcomes import statistics
from crm_automation.outcomes.rule_outcome import compare_rule
from crm_automation.runtime.groups import members_by_group
from crm_automation.runtime.runner import run_rule
from crm_automation.runtime.workflow_rules import get_compiled_rule
from crm_automation.tests.factories import (
	ensure,
	make_lead,
	make_opportunity,
	make_rule,
	make_user,
	new_request,
)

PREFIX = "_Test OUT"
MANAGER_A = "out-manager-a@example.com"
TERRITORY_A, TERRITORY_B = "_Test OUT Territory A", "_Test OUT Territory B"


def comment_rule(name, like, **fields):
	return make_rule(
		name,
		"Lead",
		"New",
		conditions={"all": [{"field": "first_name", "op": "like", "value": like}]},
		actions=[{"action_type": "Add Comment", "message": "welcomed"}],
		**fields,
	)


def insert_leads(first_name, count, **fields):
	# No email_id: a lead with one looks up its gravatar on insert.
	names = []
	for i in range(count):
		new_request()
		names.append(make_lead(first_name=f"{first_name} {i:04d}", **fields).name)
	return names


class TestRuleOutcome(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		frappe.set_user("Administrator")
		cls.rule = comment_rule(f"{PREFIX} Holdout", "OUTH %", holdout_percent=20)
		cls.leads = insert_leads("OUTH", 500)

	def setUp(self):
		new_request()
		frappe.set_user("Administrator")

	def tearDown(self):
		frappe.set_user("Administrator")

	def test_twenty_percent_of_500_held_out_the_same_ones_again(self):
		logs = frappe.get_all(
			"Automation Log",
			filters={"rule": self.rule.name, "reference_name": ("in", self.leads)},
			fields=["reference_name", "outcome", "reason"],
			limit_page_length=0,
		)
		held = sorted(log.reference_name for log in logs if log.outcome == "Held Out")
		self.assertTrue(75 <= len(held) <= 125, len(held))
		self.assertEqual(len(logs), 500)
		self.assertEqual(sorted(set(self.leads) - set(held)), sorted(log.reference_name for log in logs if log.outcome == "Success"))
		self.assertIn("control group", next(log.reason for log in logs if log.outcome == "Held Out"))
		# The same ones as the engine (and so the offline simulator) computes them.
		self.assertEqual(held, sorted(n for n in self.leads if is_held_out(self.rule.name, n, 20)))
		# Held out: no action at all; treated: commented.
		commented = set(
			frappe.get_all(
				"Comment",
				filters={"reference_doctype": "Lead", "reference_name": ("in", self.leads), "content": ("like", "%welcomed%")},
				pluck="reference_name",
				limit_page_length=0,
			)
		)
		self.assertFalse(commented & set(held))
		self.assertEqual(len(commented), 500 - len(held))
		members = members_by_group(self.rule.name)
		self.assertEqual(sorted(n for n, g in members.items() if g == HELD_OUT and n in self.leads), held)
		# A re-run holds out the same documents and keeps the first group of each.
		compiled = get_compiled_rule(self.rule.name)
		for name in self.leads[:100]:
			new_request()
			run_rule(compiled, frappe.get_doc("Lead", name), None, "after_insert")
		again = frappe.get_all(
			"Automation Log",
			filters={"rule": self.rule.name, "outcome": "Held Out", "reference_name": ("in", self.leads[:100])},
			pluck="reference_name",
			limit_page_length=0,
		)
		self.assertEqual(set(again), set(held) & set(self.leads[:100]))
		self.assertEqual(members_by_group(self.rule.name), members)

	def test_turning_the_hold_out_off_keeps_who_was_in_it(self):
		before = members_by_group(self.rule.name)
		rule = frappe.get_doc("Workflow Rule", self.rule.name)
		rule.holdout_percent = 0
		rule.save(ignore_permissions=True)
		try:
			new_request()
			lead = make_lead(first_name="OUTH late")
			self.assertEqual(
				frappe.db.get_value("Automation Log", {"rule": rule.name, "reference_name": lead.name}, "outcome"),
				"Success",
			)
			# The rule no longer has groups: nothing recorded, earlier members untouched.
			self.assertEqual(members_by_group(self.rule.name), before)
		finally:
			rule.reload()
			rule.holdout_percent = 20
			rule.save(ignore_permissions=True)

	def test_split_sends_each_arm_its_own_email(self):
		rule = make_rule(
			f"{PREFIX} Split",
			"Lead",
			"New",
			conditions={"all": [{"field": "first_name", "op": "like", "value": "OUTS %"}]},
			branch_mode="Percentage Split",
			branches=[{"branch_name": "Short", "split_share": 50}, {"branch_name": "Long", "split_share": 50}],
			actions=[
				{"action_type": "Send Email", "branch": arm, "to_users": "out-split@example.com", "subject": f"Welcome {arm}", "message": arm}
				for arm in ("Short", "Long")
			],
		)
		leads = insert_leads("OUTS", 40)
		logs = frappe.get_all(
			"Automation Log",
			filters={"rule": rule.name},
			fields=["name", "reference_name", "branch", "outcome"],
			limit_page_length=0,
		)
		self.assertEqual(len(logs), 40)
		self.assertEqual({log.branch for log in logs}, {"Short", "Long"})
		members = members_by_group(rule.name)
		for log in logs:
			self.assertEqual(log.outcome, "Success")
			self.assertEqual(members[log.reference_name], log.branch)
			results = frappe.get_all("Automation Log Action", filters={"parent": log.name}, pluck="result")
			self.assertEqual(len(results), 1)
			self.assertIn(f"Welcome {log.branch}", results[0])
			queued = frappe.get_all("Email Queue", filters={"reference_name": log.reference_name}, pluck="name")
			self.assertEqual(len(queued), 1, log.reference_name)
		self.assertEqual(set(members), set(leads))

	def test_a_bad_split_is_refused_on_save(self):
		with self.assertRaises(frappe.ValidationError) as raised:
			make_rule(
				f"{PREFIX} Bad Split",
				"Lead",
				"New",
				branch_mode="Percentage Split",
				branches=[{"branch_name": "A", "split_share": 60}, {"branch_name": "B", "split_share": 30}],
				actions=[{"action_type": "Add Comment", "message": "x"}],
			)
		self.assertIn("90", str(raised.exception))
		self.assertFalse(frappe.db.exists("Workflow Rule", f"{PREFIX} Bad Split"))

	def test_planted_effect_and_no_effect(self):
		rule = comment_rule(f"{PREFIX} Effect", "OUTE %", holdout_percent=50)
		insert_leads("OUTE", 300)
		members = members_by_group(rule.name)
		treated = sorted(n for n, g in members.items() if g != HELD_OUT)
		held = sorted(n for n, g in members.items() if g == HELD_OUT)
		self.assertEqual(len(treated) + len(held), 300)
		converted = treated[: round(len(treated) * 0.3)] + held[: round(len(held) * 0.1)]
		for name in converted[:3]:  # a few through a real Opportunity, the rest by status
			make_opportunity(lead=name)
		for name in converted[3:]:
			frappe.db.set_value("Lead", name, "status", "Converted", update_modified=False)
		groups, sentences, _measure = compare_rule(rule.name, "Converted")
		comparison = groups[1].comparison
		self.assertEqual(groups[0].group, HELD_OUT)
		self.assertEqual(comparison.verdict, statistics.HELPS, sentences)
		self.assertGreater(comparison.ci_low, 0)
		self.assertAlmostEqual(comparison.difference, 0.2, delta=0.02)
		self.assertIn("the rule helps", sentences[0])
		# The report itself (before the statuses below overwrite some conversions): a row per group and the verdict in words.
		columns, rows, message = report.execute({"rule": rule.name, "outcome": "Converted"})
		self.assertEqual([row["group"] for row in rows], [HELD_OUT, "Treated"])
		self.assertEqual(sum(row["documents"] for row in rows), 300)
		self.assertIn("the rule helps", message)
		self.assertIn(rule.name, [row["rule"] for row in report.execute({})[1]])
		# No effect: 20 % of each group reached Replied.
		for group in (treated, held):
			for name in group[: round(len(group) * 0.2)]:
				frappe.db.set_value("Lead", name, "status", "Replied", update_modified=False)
		groups, sentences, _measure = compare_rule(rule.name, "Reached Status", value="Replied")
		self.assertEqual(groups[1].comparison.verdict, statistics.NO_DIFFERENCE, sentences)
		self.assertLess(groups[1].comparison.ci_low, 0)
		self.assertGreater(groups[1].comparison.ci_high, 0)

	def test_tiny_groups_are_not_enough_data(self):
		rule = comment_rule(f"{PREFIX} Tiny", "OUTT %", holdout_percent=50)
		insert_leads("OUTT", 12)
		groups, sentences, _measure = compare_rule(rule.name, "Converted")
		self.assertEqual(groups[1].comparison.verdict, statistics.NOT_ENOUGH)
		self.assertIsNone(groups[1].comparison.ci_low)
		self.assertIn("not enough data yet", sentences[0])

	def test_markup_in_the_filters_comes_back_as_text(self):
		"""A link to the report with markup in its filters, sent to someone else: the error names the
		value as text, never as HTML."""
		rule = comment_rule(f"{PREFIX} Markup", "OUTM %", holdout_percent=50)
		markup = '<img src=x onerror="alert(1)">'
		for filters in (
			{"rule": rule.name, "outcome": markup},
			{"rule": rule.name, "outcome": "Field", "field": markup},
		):
			with self.assertRaises(frappe.ValidationError) as raised:
				report.execute(filters)
			self.assertNotIn("<img", str(raised.exception))
			self.assertIn("&lt;img", str(raised.exception))

	def test_attacker_sees_only_leads_they_may_read(self):
		for territory in (TERRITORY_A, TERRITORY_B):
			ensure("Territory", territory, territory_name=territory, parent_territory="All Territories")
		make_user(MANAGER_A, roles=["Sales User", "CRM Automation Manager"])
		frappe.get_doc(
			{"doctype": "User Permission", "user": MANAGER_A, "allow": "Territory", "for_value": TERRITORY_A, "apply_to_all_doctypes": 1}
		).insert(ignore_permissions=True)
		frappe.clear_cache(user=MANAGER_A)
		rule = comment_rule(f"{PREFIX} Attack", "OUTA %", holdout_percent=50)
		in_a = insert_leads("OUTA a", 20, territory=TERRITORY_A)
		insert_leads("OUTA b", 30, territory=TERRITORY_B)
		groups, _sentences, _measure = compare_rule(rule.name, "Converted")
		self.assertEqual(sum(g.documents for g in groups), 50)
		frappe.set_user(MANAGER_A)
		try:
			groups, _sentences, _measure = compare_rule(rule.name, "Converted")
			_columns, rows, _message = report.execute({"rule": rule.name, "outcome": "Converted"})
		finally:
			frappe.set_user("Administrator")
			frappe.clear_cache(user=MANAGER_A)
		self.assertEqual(sum(g.documents for g in groups), 20)
		self.assertEqual(sum(row["documents"] for row in rows), len(in_a))
