"""The efficacy figures: what automation did and saved, per rule and per week."""

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, nowdate

from crm_automation.api import hours_saved_this_week
from crm_automation.crm_automation.report.automation_efficacy.automation_efficacy import execute
from crm_automation.tests.factories import delete_test_rules, make_lead, make_rule, new_request


class TestAutomationEfficacy(FrappeTestCase):
	def tearDown(self):
		delete_test_rules()

	def test_runs_outcomes_actions_and_minutes_saved_per_rule(self):
		"""Fired, skipped and failed runs, actions by type, durations and minutes saved, with the
		summary cards and the hours-saved chart."""
		frappe.db.set_single_value("CRM Automation Settings", {"minutes_add_comment": 3, "log_skipped_runs": 1})
		frappe.clear_document_cache("CRM Automation Settings", "CRM Automation Settings")
		try:
			make_rule(
				"_Test Efficacy",
				"Lead",
				"New",
				conditions={"all": [{"field": "first_name", "op": "like", "value": "Eff%"}]},
				actions=[{"action_type": "Add Comment", "message": "hi"}, {"action_type": "Add Tag", "tag": "Efficacy"}],
			)
			for name in ("Eff 1", "Eff 2", "Other"):
				new_request()
				make_lead(first_name=name)
		finally:
			frappe.db.set_single_value("CRM Automation Settings", "log_skipped_runs", 0)
		columns, rows, message, chart, summary = execute({"from_date": add_days(nowdate(), -1), "to_date": nowdate(), "rule": "_Test Efficacy"})
		row = rows[0]
		self.assertEqual((row["runs"], row["fired"], row["skipped"], row["failed"]), (3, 2, 1, 0))
		self.assertEqual(row["success_rate"], 100)
		self.assertEqual(row["actions"], "Add Comment 2, Add Tag 2")
		self.assertEqual(row["minutes_saved"], 2 * (3 + 0.5))
		self.assertGreater(row["p95_ms"], 0)
		self.assertEqual(chart["data"]["datasets"][0]["values"][-1], round(7 / 60, 2))
		cards = {card["label"]: card["value"] for card in summary}
		self.assertEqual((cards["Runs"], cards["Success Rate"], cards["Most Skipped"]), (3, 100, "_Test Efficacy"))
		self.assertGreaterEqual(hours_saved_this_week()["value"], round(7 / 60, 1))

	def test_workspace_and_cards_are_installed(self):
		"""The CRM Automation workspace links every doctype and report, with its cards and chart."""
		workspace = frappe.get_doc("Workspace", "CRM Automation")
		linked = {link.link_to for link in workspace.links if link.type == "Link"}
		self.assertTrue({"Workflow Rule", "Lead Score Rule", "Escalation Policy", "Automation Log", "Automation Efficacy", "Overdue Escalations"} <= linked)
		self.assertTrue(frappe.db.exists("Number Card", "Hours Saved This Week"))
		self.assertTrue(frappe.db.exists("Number Card", "Failing Rules"))
		self.assertTrue(frappe.db.exists("Dashboard Chart", "Hours Saved per Week"))

	def test_before_and_after_figures_where_the_data_allows(self):
		"""First response before and after an Issue policy, and conversion by score band."""
		from crm_automation.crm_automation.doctype.escalation_policy.test_escalation_policy import make_policy
		from crm_automation.crm_automation.report.automation_efficacy.automation_efficacy import before_after

		make_policy("_Test Before After", "Issue", levels=[{"level": 1, "after": 1, "unit": "Hours", "action_type": "Add Comment", "message": "x"}])
		issue = frappe.get_doc({"doctype": "Issue", "subject": "Answered"}).insert()
		frappe.db.set_value("Issue", issue.name, "first_responded_on", frappe.utils.add_to_date(issue.creation, hours=3))
		lead = make_lead(first_name="Banded")
		frappe.db.set_value("Lead", lead.name, {"crm_score_grade": "_Test Band", "status": "Converted"})
		html = before_after(frappe._dict())
		self.assertIn("_Test Before After", html)
		self.assertIn("h to first response", html)
		self.assertIn("<strong>_Test Band</strong>: 1 / 1 converted (100%)", html)
		frappe.delete_doc("Escalation Policy", "_Test Before After", force=True)
