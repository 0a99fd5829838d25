# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.engine import Evaluation
from crm_automation.runtime.groups import members_by_group, record_group


class FakeRule:
	name = "_Test Group Member Rule"
	holdout_percent = 10
	split_arms = ()


class TestAutomationGroupMember(FrappeTestCase):
	def test_the_first_group_is_kept(self):
		"""A document keeps the first group it fell in for a rule; a second record is a no-op."""
		doc = frappe._dict(doctype="Lead", name="_Test GM Lead")
		record_group(FakeRule, doc, Evaluation(FakeRule.name, Evaluation.HELD_OUT))
		record_group(FakeRule, doc, Evaluation(FakeRule.name, Evaluation.FIRED))
		self.assertEqual(members_by_group(FakeRule.name), {"_Test GM Lead": "Held Out"})
		self.assertEqual(frappe.db.count("Automation Group Member", {"rule": FakeRule.name}), 1)
