"""The app's "*" doc_events never break a save of another doctype: not while its tables are missing
(install, migrate, a half-installed site) and not when its rules cannot be loaded."""

from unittest.mock import patch

import frappe
import pymysql
from frappe.tests.utils import FrappeTestCase

from crm_automation import doc_events as events


def missing_table_error(table="tabWorkflow Rule"):
	return pymysql.err.ProgrammingError(1146, f"Table '{table}' doesn't exist")


# What the handlers see when ToDo has Workflow Rules: they go on to look the rules up.
TODO_HAS_RULES = {
	"any": frozenset({"ToDo"}),
	"rules": frozenset({"ToDo"}),
	"escalation": frozenset(),
	"score": frozenset(),
	"sequence": frozenset(),
}


def make_todo(description):
	return frappe.get_doc({"doctype": "ToDo", "description": description}).insert(ignore_permissions=True)


class TestStarHooksNeverBreakSaves(FrappeTestCase):
	def setUp(self):
		events._load_failures_logged.clear()

	def tearDown(self):
		frappe.db.rollback()

	def test_save_goes_through_while_the_rule_table_is_missing(self):
		"""As during install-app before the doctypes are synced: the save succeeds, nothing is logged."""
		errors_before = frappe.db.count("Error Log")
		with (
			patch.object(events, "_work", return_value=TODO_HAS_RULES),
			patch.object(events, "get_rules", side_effect=missing_table_error()),
			patch(
				"crm_automation.escalation.get_policies",
				side_effect=missing_table_error("tabEscalation Policy"),
			),
		):
			todo = make_todo("saved while the app's tables are missing")
			todo.description = "edited while the app's tables are missing"
			todo.save(ignore_permissions=True)
		self.assertEqual(frappe.db.get_value("ToDo", todo.name, "description"), todo.description)
		self.assertEqual(frappe.db.count("Error Log"), errors_before)

	def test_save_goes_through_when_the_settings_doctype_is_missing(self):
		with patch.object(
			events,
			"_automation_enabled",
			side_effect=frappe.DoesNotExistError("DocType CRM Automation Settings not found"),
		):
			self.assertTrue(events.skip_automation())

	def test_a_failing_rule_loader_is_logged_once_and_the_save_kept(self):
		errors_before = frappe.db.count("Error Log", {"method": ("like", "%could not load its rules%")})
		with (
			patch.object(events, "_work", return_value=TODO_HAS_RULES),
			patch.object(events, "get_rules", side_effect=RuntimeError("index broken")),
		):
			first = make_todo("first save with a broken loader")
			second = make_todo("second save with a broken loader")
		self.assertTrue(frappe.db.exists("ToDo", first.name))
		self.assertTrue(frappe.db.exists("ToDo", second.name))
		logged = frappe.db.count("Error Log", {"method": ("like", "%could not load its rules%")})
		self.assertEqual(logged, errors_before + 1)

	def test_flags_skip_before_any_lookup(self):
		"""The setup wizard (ERPNext's before_tests) saves System Settings before our tables exist."""
		frappe.flags.in_setup_wizard = True
		try:
			with patch.object(events, "get_rules", side_effect=AssertionError("looked up rules")) as lookup:
				make_todo("saved by the setup wizard")
			lookup.assert_not_called()
		finally:
			frappe.flags.in_setup_wizard = False
