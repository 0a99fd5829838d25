# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.api import get_escalation_status
from crm_automation.crm_automation.doctype.escalation_policy.test_escalation_policy import make_policy
from crm_automation.escalation import clear_policy_cache
from crm_automation.tests.factories import make_lead


class TestEscalationState(FrappeTestCase):
	def tearDown(self):
		frappe.delete_doc("Escalation Policy", "_Test State Policy", force=True)
		clear_policy_cache()

	def test_document_shows_its_level_and_next_escalation(self):
		"""The form asks for the running clocks: level and the next escalation with its time."""
		make_policy(
			"_Test State Policy",
			"Lead",
			clock_start="Creation",
			levels=[{"level": 1, "after": 3, "unit": "Hours", "action_type": "Add Comment", "message": "late"}],
		)
		lead = make_lead(first_name="Watched")
		states = get_escalation_status("Lead", lead.name)
		self.assertEqual(len(states), 1)
		self.assertEqual((states[0].policy, states[0].current_level, states[0].next_escalation), ("_Test State Policy", 0, "Level 1"))
		lead.delete()
		self.assertFalse(frappe.db.exists("Lead", lead.name), "a clock never blocks deleting its document")
