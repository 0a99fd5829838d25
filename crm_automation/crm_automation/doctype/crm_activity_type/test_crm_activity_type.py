# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe.tests.utils import FrappeTestCase


class TestCRMActivityType(FrappeTestCase):
	def test_named_by_its_label_and_unique(self):
		"""An activity type is named by its label, so API callers can use the name they see."""
		doc = frappe.get_doc({"doctype": "CRM Activity Type", "activity_type_name": "_Test Webinar Attended"}).insert()
		self.assertEqual(doc.name, "_Test Webinar Attended")
		with self.assertRaises(frappe.DuplicateEntryError):
			frappe.get_doc({"doctype": "CRM Activity Type", "activity_type_name": "_Test Webinar Attended"}).insert()
