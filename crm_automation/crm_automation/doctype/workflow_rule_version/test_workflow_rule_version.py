# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.tests.factories import make_rule


class TestWorkflowRuleVersion(FrappeTestCase):
	"""The feature's tests are in crm_automation/tests/test_rule_versions.py; here, the doctype's
	own promise: named by rule and number, written only by a save of the rule."""

	def test_a_version_is_named_by_its_rule_and_number(self):
		tag = [{"action_type": "Add Tag", "tag": "x"}]
		rule = make_rule("_Test VER Doctype", "Lead", "Manual", tag, enabled=0)
		self.assertTrue(frappe.db.exists("Workflow Rule Version", "_Test VER Doctype v1"))
		version = frappe.get_doc("Workflow Rule Version", "_Test VER Doctype v1")
		version.summary = "by hand"
		self.assertRaises(frappe.PermissionError, version.save, ignore_permissions=True)
		frappe.delete_doc("Workflow Rule", rule.name, force=True, ignore_permissions=True)
		self.assertFalse(frappe.db.exists("Workflow Rule Version", "_Test VER Doctype v1"))
