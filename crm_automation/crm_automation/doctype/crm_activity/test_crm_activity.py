# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

from unittest.mock import patch

import frappe
from frappe.tests.test_api import FrappeAPITestCase
from frappe.utils import now_datetime

from crm_automation.crm_automation.doctype.lead_score_rule.test_lead_score_rule import make_score_rule
from crm_automation.scoring import clear_score_cache, reset_rate_limit
from crm_automation.tests.factories import ensure, make_lead, make_user

METHOD = "/api/method/crm_automation.api.track_activity"


class TestTrackActivityAPI(FrappeAPITestCase):
	"""crm_automation.api.track_activity over HTTP, authenticated with an API key."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		ensure("CRM Activity Type", "_Test Product Page View", activity_type_name="_Test Product Page View")
		ensure("CRM Activity Type", "_Test Inquiry", activity_type_name="_Test Inquiry")
		cls.user = make_user("crm-auto-tracker@example.com", roles=["Sales User"])
		user = frappe.get_doc("User", cls.user)
		cls.api_key = frappe.generate_hash(length=15)
		cls.api_secret = frappe.generate_hash(length=15)
		user.api_key = cls.api_key
		user.api_secret = cls.api_secret
		user.save(ignore_permissions=True)
		make_score_rule("_Test API Score Rule")
		cls.lead = make_lead(first_name="Tracked").name
		frappe.db.commit()  # the API request runs on its own connection

	@classmethod
	def tearDownClass(cls):
		frappe.db.delete("CRM Activity", {"reference_name": cls.lead})
		frappe.delete_doc("Lead", cls.lead, force=True)
		frappe.delete_doc("Lead Score Rule", "_Test API Score Rule", force=True)
		frappe.db.set_single_value("CRM Automation Settings", "track_activity_rate_limit", 120)
		frappe.db.commit()
		clear_score_cache()
		super().tearDownClass()

	def setUp(self):
		# One frozen minute and an empty counter per test: the rate limit counts exactly this test's
		# requests, whatever ran before and however slow the machine is.
		clock = patch("crm_automation.scoring.now_datetime", return_value=now_datetime())
		clock.start()
		self.addCleanup(clock.stop)
		reset_rate_limit(self.user)
		self.addCleanup(reset_rate_limit, self.user)

	def headers(self, secret=None):
		return {"Authorization": f"token {self.api_key}:{secret or self.api_secret}"}

	def test_valid_key_records_the_activity_and_returns_the_score(self):
		"""A valid key records a CRM Activity and returns the new score and grade."""
		before = frappe.db.get_value("Lead", self.lead, "crm_score") or 0
		response = self.post(METHOD, {"document": self.lead, "activity_type": "_Test Inquiry"}, headers=self.headers())
		self.assertEqual(response.status_code, 200, response.json)
		message = response.json["message"]
		self.assertEqual(message["score"], before + 3)
		frappe.db.commit()  # a new snapshot: the request committed on its own connection
		self.assertEqual(message["grade"], frappe.db.get_value("Lead", self.lead, "crm_score_grade"))
		self.assertEqual(message["score"], frappe.db.get_value("Lead", self.lead, "crm_score"))
		self.assertEqual(frappe.db.get_value("CRM Activity", message["activity"], "recorded_by"), self.user)

	def test_bad_key_is_refused(self):
		"""A wrong secret never records anything."""
		before = frappe.db.count("CRM Activity", {"reference_name": self.lead})
		response = self.post(METHOD, {"document": self.lead, "activity_type": "_Test Inquiry"}, headers=self.headers("wrong"))
		self.assertIn(response.status_code, (401, 403))
		self.assertEqual(frappe.db.count("CRM Activity", {"reference_name": self.lead}), before)

	def test_bad_input_gets_a_clear_error(self):
		"""Unknown activity types and documents are named in the error; a missing document gets the
		answer a forbidden one gets, so the API never tells which names exist."""
		response = self.post(METHOD, {"document": self.lead, "activity_type": "Telepathy"}, headers=self.headers())
		self.assertEqual(response.status_code, 417)
		self.assertIn("Unknown activity type <strong>Telepathy</strong>", str(response.json))
		response = self.post(METHOD, {"document": "NO-SUCH-LEAD", "activity_type": "_Test Inquiry"}, headers=self.headers())
		self.assertEqual(response.status_code, 403)
		self.assertIn("NO-SUCH-LEAD</strong> was not found, or you may not change it", str(response.json))

	def test_a_flood_from_one_key_is_rate_limited(self):
		"""Past the per-minute limit, one key's requests are refused."""
		frappe.db.set_single_value("CRM Automation Settings", "track_activity_rate_limit", 2)
		frappe.db.commit()
		codes = [
			self.post(METHOD, {"document": self.lead, "activity_type": "_Test Product Page View"}, headers=self.headers()).status_code
			for _ in range(4)
		]
		self.assertEqual(codes, [200, 200, 429, 429])
		frappe.db.set_single_value("CRM Automation Settings", "track_activity_rate_limit", 120)
		frappe.db.commit()
