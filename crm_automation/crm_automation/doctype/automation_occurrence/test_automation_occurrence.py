# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.crm_automation.doctype.automation_occurrence.automation_occurrence import (
	claim_occurrence,
)


class TestAutomationOccurrence(FrappeTestCase):
	def test_an_occurrence_is_claimed_once(self):
		"""The first claim of (rule, document, what) wins; every later one is refused."""
		args = ("Workflow Rule", "_Test Claim", "Lead", "LEAD-X", "time:2026-01-01")
		self.assertTrue(claim_occurrence(*args))
		self.assertFalse(claim_occurrence(*args))
		self.assertTrue(claim_occurrence(*args[:4], "time:2026-01-02"))
		self.assertEqual(frappe.db.count("Automation Occurrence", {"rule": "_Test Claim"}), 2)
