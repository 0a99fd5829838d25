"""Scale on a site: rules loaded in bulk compile as get_doc loads them, an edit recompiles one rule,
the runner evaluates candidates (and looks again after a rule changed the document), a new
document is scored without activity queries, and saves of doctypes without work read no index."""

import json
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation import doc_events as events
from crm_automation.runtime import workflow_rules as rules
from crm_automation.runtime.compiled_cache import forget_request_memos
from crm_automation.tests.factories import delete_test_rules, make_lead, make_rule, new_request


class TestRuleIndexOnSite(FrappeTestCase):
	def setUp(self):
		delete_test_rules("_Test Scale %")
		new_request()

	def tearDown(self):
		frappe.db.rollback()
		rules.clear_rule_cache()

	def test_rules_loaded_in_bulk_are_the_rules_get_doc_loads(self):
		rule = make_rule(
			"_Test Scale Bulk",
			"Lead",
			"Save",
			[
				{"action_type": "Add Tag", "tag": "big", "branch": "big"},
				{"action_type": "Add Comment", "message": "small one", "branch": "small"},
			],
			conditions={"all": [{"field": "status", "op": "=", "value": "Open"}]},
			branches=[
				{"branch_name": "big", "conditions": {"field": "annual_revenue", "op": ">", "value": 1000}},
				{"branch_name": "small", "is_else": 1},
			],
		)
		(loaded,) = rules._load_rules([rule.name])
		self.assertEqual(
			json.dumps(rules.rule_as_dict(loaded), sort_keys=True, default=str),
			json.dumps(
				rules.rule_as_dict(frappe.get_doc("Workflow Rule", rule.name)), sort_keys=True, default=str
			),
		)

	def test_saving_one_rule_recompiles_that_rule_only(self):
		for i in range(3):
			make_rule(
				f"_Test Scale Edit {i}",
				"Lead",
				"Save",
				[{"action_type": "Add Tag", "tag": "t"}],
				conditions={"field": "territory", "op": "=", "value": f"Nowhere {i}"},
			)
		rules.get_rules("Lead", "on_update")
		edited = frappe.get_doc("Workflow Rule", "_Test Scale Edit 1")
		edited.conditions = json.dumps({"field": "territory", "op": "=", "value": "Somewhere"})
		with patch.object(rules, "compile_workflow_rule_doc", wraps=rules.compile_workflow_rule_doc) as compile_rule:
			edited.save()
			found = rules.get_rules("Lead", "on_update")
		self.assertEqual([call.args[0].name for call in compile_rule.call_args_list], ["_Test Scale Edit 1"])
		self.assertEqual(
			[
				rule.name
				for rule in found.candidates({"territory": "Somewhere"})
				if rule.name.startswith("_Test Scale")
			],
			["_Test Scale Edit 1"],
		)

	def test_a_full_clear_recompiles_every_rule(self):
		make_rule("_Test Scale Full", "Lead", "Save", [{"action_type": "Add Tag", "tag": "t"}])
		rules.get_rules("Lead", "on_update")
		with patch.object(rules, "compile_workflow_rule_doc", wraps=rules.compile_workflow_rule_doc) as compile_rule:
			rules.clear_rule_cache()
			rules.get_rules("Lead", "on_update")
		self.assertIn("_Test Scale Full", [call.args[0].name for call in compile_rule.call_args_list])

	def test_a_rule_that_changes_the_document_makes_later_rules_candidates(self):
		make_rule(
			"_Test Scale First",
			"Lead",
			"Validate",
			[{"action_type": "Set Value", "target_field": "qualification_status", "value": "In Process"}],
			conditions={"field": "company_name", "op": "=", "value": "Scale Co"},
			priority=10,
		)
		make_rule(
			"_Test Scale Second",
			"Lead",
			"Validate",
			[{"action_type": "Set Value", "target_field": "job_title", "value": "seen in process"}],
			conditions={"field": "qualification_status", "op": "=", "value": "In Process"},
			priority=1,
		)
		lead = make_lead(first_name="Scale", company_name="Scale Co")
		self.assertEqual(lead.qualification_status, "In Process")
		self.assertEqual(lead.job_title, "seen in process")

	def test_non_candidates_are_not_evaluated(self):
		make_rule(
			"_Test Scale Elsewhere",
			"Lead",
			"Save",
			[{"action_type": "Add Tag", "tag": "t"}],
			conditions={"field": "territory", "op": "=", "value": "Nowhere at all"},
		)
		compiled = rules.get_compiled_rule("_Test Scale Elsewhere")
		with patch.object(
			type(compiled), "condition_holds", side_effect=AssertionError("evaluated")
		) as holds:
			make_lead(first_name="Scale Candidate")
		holds.assert_not_called()


class TestNoWorkNoLookups(FrappeTestCase):
	def tearDown(self):
		frappe.db.rollback()
		forget_request_memos()

	def test_a_doctype_without_policies_or_sequences_reads_neither(self):
		forget_request_memos()
		with (
			patch.object(
				events,
				"_work",
				return_value={
					"any": frozenset({"ToDo"}),  # as if ToDo had Workflow Rules: only those are read
					"rules": frozenset({"ToDo"}),
					"escalation": frozenset(),
					"score": frozenset(),
					"sequence": frozenset(),
				},
			),
			patch(
				"crm_automation.escalation.get_policies", side_effect=AssertionError("read policies")
			) as policies,
			patch(
				"crm_automation.sequences.steps.on_document_change", side_effect=AssertionError("followed")
			) as follow,
		):
			frappe.get_doc({"doctype": "ToDo", "description": "no work here"}).insert(ignore_permissions=True)
		policies.assert_not_called()
		follow.assert_not_called()

	def test_the_work_memo_is_dropped_when_an_index_is_cleared(self):
		from crm_automation.scoring import clear_score_cache

		first = events._work()
		self.assertIs(events._work(), first)
		clear_score_cache()
		self.assertIsNot(events._work(), first)


class TestScoreOnInsert(FrappeTestCase):
	def tearDown(self):
		frappe.db.rollback()
		from crm_automation.scoring import clear_score_cache

		clear_score_cache()

	def make_score_rule(self):
		from crm_automation.scoring import clear_score_cache

		frappe.db.sql("update `tabLead Score Rule` set enabled = 0 where document_type = 'Lead'")
		if not frappe.db.exists("CRM Activity Type", "_Test Scale Visit"):
			frappe.get_doc(
				{"doctype": "CRM Activity Type", "activity_type_name": "_Test Scale Visit"}
			).insert()
		rule = frappe.get_doc(
			{
				"doctype": "Lead Score Rule",
				"rule_name": "_Test Scale Score",
				"document_type": "Lead",
				"enabled": 1,
				"criteria": [
					{
						"label": "city",
						"points": 4,
						"conditions": json.dumps({"field": "city", "op": "is set"}),
					},
				],
				"activity_criteria": [
					{
						"activity_source": "CRM Activity",
						"activity_type": "_Test Scale Visit",
						"days": 30,
						"points": 2,
						"cap": 10,
					},
				],
				"decay_mode": "Half-life",
				"half_life_days": 14,
				"bands": [{"min_score": -100, "grade": "Cold"}, {"min_score": 3, "grade": "Warm"}],
			}
		)
		with (
			patch("crm_automation.scoring.enqueue_recompute"),
			patch("crm_automation.crm_automation.doctype.lead_score_rule.lead_score_rule.enqueue_recompute"),
		):
			rule.insert(ignore_permissions=True)
		clear_score_cache()

	def test_a_new_lead_is_scored_without_activity_queries_as_a_full_scoring_would(self):
		from crm_automation import scoring

		self.make_score_rule()
		with (
			patch.object(scoring, "count_activity", side_effect=AssertionError("queried activities")),
			patch.object(scoring, "last_activity", side_effect=AssertionError("queried last activity")),
		):
			lead = make_lead(first_name="Scored", city="Pune")
		full = scoring.score_documents(scoring.get_score_rule("Lead"), [lead.__dict__], lead.crm_scored_on)[
			lead.name
		]
		self.assertEqual((lead.crm_score, lead.crm_score_grade), (full.score, full.grade))
		self.assertEqual(lead.crm_score, 4)
