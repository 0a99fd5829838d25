# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, now_datetime

from crm_automation.tests.factories import make_user

IGNORE_TEST_RECORD_DEPENDENCIES = ["User"]

USER = "av-doctype@example.com"


class TestUserAvailability(FrappeTestCase):
	"""The record itself; who may mark whom away and what Assign does with it are in
	crm_automation/tests/test_availability.py."""

	def setUp(self):
		make_user(USER, roles=["Sales User"])

	def tearDown(self):
		frappe.set_user("Administrator")
		if frappe.db.exists("User Availability", USER):
			frappe.delete_doc("User Availability", USER, force=True, ignore_permissions=True)

	def test_named_by_its_user_and_a_period_must_end_after_it_starts(self):
		frappe.set_user(USER)
		doc = frappe.get_doc({"doctype": "User Availability", "user": USER}).insert()
		self.assertEqual(doc.name, USER)
		doc.append("away_periods", {"from_datetime": now_datetime(), "to_datetime": add_days(now_datetime(), -1)})
		with self.assertRaisesRegex(frappe.ValidationError, "must be after"):
			doc.save()
		frappe.set_user("Administrator")
		self.assertEqual(frappe.db.count("User Availability Period", {"parent": USER}), 0)
