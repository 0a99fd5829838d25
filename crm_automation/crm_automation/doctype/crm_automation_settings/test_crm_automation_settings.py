# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt


import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.setup import install
from crm_automation.tests.factories import make_user

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "Role"]


class TestInstall(FrappeTestCase):
	def test_install_created_the_manager_role_and_settings(self):
		"""install-app creates the CRM Automation Manager role and the settings with their defaults."""
		self.assertTrue(frappe.db.exists("Role", "CRM Automation Manager"))
		settings = frappe.get_single("CRM Automation Settings")
		self.assertEqual(settings.max_recursion_depth, 3)
		self.assertEqual(settings.log_retention_days, 90)
		self.assertEqual(settings.time_trigger_catchup_hours, 24)
		self.assertEqual(settings.enabled, 1)
		self.assertEqual(settings.log_skipped_runs, 0)
		self.assertEqual(settings.minutes_send_email, 4)

	def test_custom_fields_are_created_and_removed_symmetrically(self):
		"""Custom fields registered by a feature are made at install and dropped at uninstall."""
		from frappe.custom.doctype.custom_field.custom_field import create_custom_fields

		fields = {"Lead": [{"fieldname": "crm_automation_probe", "fieldtype": "Data", "label": "Probe"}]}
		create_custom_fields(fields, ignore_validate=True)
		self.assertTrue(frappe.db.exists("Custom Field", {"dt": "Lead", "fieldname": "crm_automation_probe"}))
		self.assertTrue(frappe.db.has_column("Lead", "crm_automation_probe"))
		install.delete_custom_fields(fields)
		self.assertFalse(frappe.db.exists("Custom Field", {"dt": "Lead", "fieldname": "crm_automation_probe"}))
		self.assertFalse(frappe.db.has_column("Lead", "crm_automation_probe"))
		self.assertNotIn("crm_automation_probe", [df.fieldname for df in frappe.get_meta("Lead").fields])


class TestPermissions(FrappeTestCase):
	def test_only_managers_may_create_or_edit_rules(self):
		"""Only CRM Automation Manager and System Manager create or edit rules and settings."""
		manager = make_user("crm-auto-manager@example.com", roles=["CRM Automation Manager"])
		sales = make_user("crm-auto-sales-only@example.com", roles=["Sales User"])
		for doctype in ("Workflow Rule", "CRM Automation Settings"):
			self.assertTrue(frappe.has_permission(doctype, "write", user=manager), doctype)
			self.assertTrue(frappe.has_permission(doctype, "write", user="Administrator"), doctype)
			self.assertFalse(frappe.has_permission(doctype, "write", user=sales), doctype)
			self.assertFalse(frappe.has_permission(doctype, "read", user=sales), doctype)
		self.assertTrue(frappe.has_permission("Workflow Rule", "create", user=manager))
		self.assertFalse(frappe.has_permission("Workflow Rule", "create", user=sales))
		self.assertFalse(frappe.has_permission("Automation Log", "create", user=manager), "logs are written by the app")

	def test_whitelisted_methods_check_permission(self):
		"""Each whitelisted method refuses a user without the permission it needs."""
		from crm_automation.api import automations as api

		sales = make_user("crm-auto-sales-only@example.com", roles=["Sales User"])
		frappe.set_user(sales)
		try:
			with self.assertRaises(frappe.PermissionError):
				api.get_condition_fields("Lead")
			with self.assertRaises(frappe.PermissionError):
				api.retry_failed_actions("nothing")
		finally:
			frappe.set_user("Administrator")
		from crm_automation.tests.factories import make_rule

		make_rule("_Test Private Rule", "Lead", "New", actions=[{"action_type": "Add Comment", "message": "x"}])
		frappe.set_user(sales)
		try:
			with self.assertRaises(frappe.PermissionError):
				api.get_automation_history("Workflow Rule", "_Test Private Rule")
			with self.assertRaises(frappe.PermissionError):
				api.run_manual_rule("_Test Private Rule", "Workflow Rule", "_Test Private Rule")
		finally:
			frappe.set_user("Administrator")


class TestSettingsValidation(FrappeTestCase):
	def test_bad_values_name_the_field_and_value(self):
		"""Bad settings are rejected with the field and the value, and nothing is saved."""
		settings = frappe.get_single("CRM Automation Settings")
		for fieldname, value, message in (
			("max_recursion_depth", 0, "Max Recursion Depth must be from 1 to 10, not <strong>0</strong>"),
			("log_retention_days", 0, "Log Retention \\(Days\\) must be at least 1"),
			("minutes_assign", -1, "Minutes saved for <strong>Assign</strong> cannot be negative"),
		):
			fresh = frappe.get_single("CRM Automation Settings")
			fresh.set(fieldname, value)
			with self.assertRaisesRegex(frappe.ValidationError, message):
				fresh.save()
			self.assertEqual(frappe.db.get_single_value("CRM Automation Settings", fieldname), settings.get(fieldname))

	def test_switching_off_stops_all_automation(self):
		"""With automation switched off, an enabled matching rule does nothing."""
		from crm_automation.tests.factories import logs_for, make_lead, make_rule

		make_rule("_Test Switched Off", "Lead", "New", actions=[{"action_type": "Add Comment", "message": "on"}])
		frappe.db.set_single_value("CRM Automation Settings", "enabled", 0)
		frappe.clear_document_cache("CRM Automation Settings", "CRM Automation Settings")
		try:
			lead = make_lead(first_name="Off")
			self.assertEqual(logs_for(lead, "_Test Switched Off"), [])
		finally:
			frappe.db.set_single_value("CRM Automation Settings", "enabled", 1)
		lead = make_lead(first_name="On")
		self.assertEqual([log.outcome for log in logs_for(lead, "_Test Switched Off")], ["Success"])
