"""Inbound webhooks (issue 22): a Webhook Received rule's URL, signed calls, the worker that finds or
creates the Lead and runs the rule with `payload`, and what an attacker cannot do with it.

Calls go through Frappe's request machinery as far as a test can without a server: a werkzeug
request for the endpoint's URL, Frappe's make_form_dict and handler.execute_cmd as Guest (its
whitelist, allow_guest and POST-only checks). The queued job is taken from frappe.enqueue and run
here, as a worker would run it.
"""

import json
from contextlib import contextmanager
from unittest.mock import patch

import frappe
from frappe.app import make_form_dict
from frappe.handler import execute_cmd
from frappe.tests.utils import FrappeTestCase
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from crm_automation.api import inbound_webhooks as api
from crm_automation.engine import inbound
from crm_automation.packs import export_pack
from crm_automation.runtime import inbound_webhooks as runtime
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import ensure, make_user, new_request

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User", "Territory"]

OWNER = "crm-iw-owner@example.com"
ATTACKER = "crm-iw-attacker@example.com"
PREFIX = "_Test IW"
TERRITORY = "_Test IW Territory"
LEVEL_ONE = "crm_iw_level_one"
BODY_MARKER = "IW-BODY-MARKER"
METHOD = "crm_automation.api.inbound_webhooks.receive"


@contextmanager
def as_user(user):
	previous = frappe.session.user
	frappe.set_user(user)
	try:
		yield
	finally:
		frappe.set_user(previous)


def lead_payload(email, **more):
	return {
		"event": "signup",
		"note": BODY_MARKER,
		"contact": {"email": email, "first_name": "Webhook", "title": "CTO"},
		"company": "IW Co",
		**more,
	}


class TestInboundWebhooks(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_user(OWNER, roles=["CRM Automation Manager", "Sales Manager", "Sales User"])
		make_user(ATTACKER, roles=["CRM Automation Manager", "Sales User"])
		ensure("Territory", TERRITORY, territory_name=TERRITORY, parent_territory="All Territories")
		if not frappe.db.exists("Custom Field", {"dt": "Lead", "fieldname": LEVEL_ONE}):
			frappe.get_doc(
				{
					"doctype": "Custom Field",
					"dt": "Lead",
					"fieldname": LEVEL_ONE,
					"label": "IW Level One",
					"fieldtype": "Data",
					"permlevel": 1,
				}
			).insert(ignore_permissions=True)
		frappe.db.set_single_value("CRM Automation Settings", {"enabled": 1, "failure_threshold": 50})
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.db.rollback()
		for name in frappe.get_all("Workflow Rule", {"name": ("like", f"{PREFIX}%")}, pluck="name"):
			frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
		for name in frappe.get_all("Lead", {"email_id": ("like", "iw-%@example.com")}, pluck="name"):
			frappe.delete_doc("Lead", name, force=True, ignore_permissions=True)
		frappe.db.delete("User Permission", {"user": ATTACKER})
		frappe.db.commit()
		clear_rule_cache()
		super().tearDownClass()

	def setUp(self):
		new_request()
		# Only the test of unreadable Leads restricts the attacker (a rule's save may commit).
		frappe.db.delete("User Permission", {"user": ATTACKER})
		frappe.clear_cache(user=ATTACKER)
		self.enqueued = []
		self.enterContext(patch("frappe.enqueue", side_effect=lambda *a, **kw: self.enqueued.append(kw)))

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		clear_rule_cache()

	# ------------------------------------------------------------------------------------------
	# helpers

	def make_webhook_rule(self, name, user=OWNER, actions=None, **fields):
		values = self.rule_values(name, actions, **fields)
		with as_user(user):
			rule = frappe.get_doc(values).insert()
			credentials = api.generate_webhook_url(rule.name)
		clear_rule_cache()
		return rule.name, credentials

	def rule_values(self, name, actions=None, **fields):
		return {
			"doctype": "Workflow Rule",
			"rule_name": f"{PREFIX} {name}",
			"document_type": "Lead",
			"trigger": "Webhook Received",
			"enabled": 1,
			"webhook_match_field": "email_id",
			"webhook_match_path": "contact.email",
			"webhook_create_missing": 1,
			"webhook_field_map": json.dumps(
				{
					"first_name": "{{ payload.contact.first_name }}",
					"email_id": "{{ payload.contact.email }}",
					"company_name": "{{ payload.company }}",
				}
			),
			"condition_expression": 'payload.event != "ignore"',
			"actions": actions
			if actions is not None
			else [
				{
					"action_type": "Set Value",
					"target_field": "job_title",
					"value": "{{ payload.contact.title }} via {{ payload.event }}",
				}
			],
			**fields,
		}

	def call(self, credentials, payload=None, body=None, headers=None, sign_with=None, token=None, **kw):
		"""POST to the endpoint as another system would; returns (status, message)."""
		if body is None:
			body = json.dumps(payload).encode()
		secret = sign_with if sign_with is not None else credentials["secret"]
		signed = inbound.sign(secret, body) if secret else {}
		if kw.get("frappe_style"):
			signed.pop(inbound.SIGNATURE_HEADER, None)
		else:
			signed.pop(inbound.FRAPPE_SIGNATURE_HEADER, None)
		token = token if token is not None else credentials["url"].split("token=", 1)[1]
		environ = EnvironBuilder(
			method="POST",
			path=f"/api/method/{METHOD}",
			query_string={"token": token},
			data=body,
			headers={**signed, **(headers or {})},
			content_type=kw.get("content_type", "application/json"),
		).get_environ()
		request = Request(environ)
		previous_request = getattr(frappe.local, "request", None)
		frappe.set_user("Guest")
		frappe.local.request = request
		frappe.local.response = frappe._dict()
		try:
			make_form_dict(request)
			message = execute_cmd(METHOD)
			return frappe.local.response.get("http_status_code") or 200, message
		finally:
			frappe.local.request = previous_request
			frappe.set_user("Administrator")

	def run_jobs(self):
		jobs, self.enqueued = self.enqueued, []
		for job in jobs:
			self.assertEqual(job.get("enqueue_after_commit"), True)
			new_request()
			runtime.process_delivery(
				rule=job["rule"],
				payload=job["payload"],
				delivery_id=job["delivery_id"],
				received_log=job["received_log"],
			)
		return len(jobs)

	def counts(self):
		return {
			doctype: frappe.db.count(doctype)
			for doctype in ("Lead", "Automation Occurrence", "Automation Log", "Comment", "ToDo")
		}

	def last_log(self, rule=None):
		filters = {"trigger": "Webhook Received"}
		if rule:
			filters["rule"] = rule
		return frappe.get_all(
			"Automation Log",
			filters=filters,
			fields=["name", "rule", "outcome", "reason", "trace", "error", "reference_name"],
			order_by="creation desc, name desc",
			limit=1,
		)[0]

	def assert_refused(self, before, status, expected_status, rule=None):
		self.assertEqual(status, expected_status)
		after = self.counts()
		self.assertEqual(after["Automation Log"], before["Automation Log"] + 1)
		for doctype in ("Lead", "Automation Occurrence", "Comment", "ToDo"):
			self.assertEqual(after[doctype], before[doctype], doctype)
		self.assertEqual(self.enqueued, [])
		log = self.last_log(rule)
		self.assertEqual(log.outcome, "Rejected")
		for text in (log.reason, log.trace, log.error):
			self.assertNotIn(BODY_MARKER, text or "")

	# ------------------------------------------------------------------------------------------
	# the good path

	def test_good_signature_creates_the_lead_once(self):
		"""A signed call is answered 202 and queued; the worker creates the Lead from the field map
		(as the run-as user), then runs the rule with `payload`; the same delivery id again does
		nothing but answer 200."""
		rule, credentials = self.make_webhook_rule("Create")
		self.assertTrue(credentials["url"].endswith(credentials["token_hint"]))
		self.assertTrue(credentials["secret"])
		email = "iw-new@example.com"
		headers = {"X-Webhook-Delivery-Id": "delivery-1"}
		status, message = self.call(credentials, lead_payload(email), headers=headers)
		self.assertEqual((status, message), (202, "Accepted"))
		self.assertEqual(self.run_jobs(), 1)
		leads = frappe.get_all("Lead", {"email_id": email}, ["name", "first_name", "job_title", "owner"])
		self.assertEqual(len(leads), 1)
		self.assertEqual(leads[0].first_name, "Webhook")
		self.assertEqual(leads[0].job_title, "CTO via signup")
		self.assertEqual(leads[0].owner, OWNER)
		run = self.last_log(rule)
		self.assertEqual((run.outcome, run.reference_name), ("Success", leads[0].name))

		before = self.counts()
		status, message = self.call(credentials, lead_payload(email), headers=headers)
		self.assertEqual((status, message), (200, "Already received"))
		self.assertEqual(self.enqueued, [])
		self.assertEqual(frappe.db.count("Lead", {"email_id": email}), 1)
		self.assertEqual(self.counts()["Automation Log"], before["Automation Log"] + 1)
		self.assertEqual(self.last_log(rule).outcome, "Skipped")

	def test_an_existing_lead_is_found_and_updated(self):
		"""The Lead whose email_id is the payload's contact.email is the one the rule acts on."""
		rule, credentials = self.make_webhook_rule("Update")
		email = "iw-existing@example.com"
		lead = frappe.get_doc(
			{"doctype": "Lead", "first_name": "Existing", "email_id": email, "company_name": "X"}
		).insert(ignore_permissions=True)
		status, _message = self.call(credentials, lead_payload(email, event="renewal"))
		self.assertEqual(status, 202)
		self.run_jobs()
		self.assertEqual(frappe.db.count("Lead", {"email_id": email}), 1)
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "job_title"), "CTO via renewal")
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "first_name"), "Existing")

	def test_conditions_see_the_payload(self):
		"""The advanced condition reads `payload`: an event the rule ignores changes nothing."""
		rule, credentials = self.make_webhook_rule("Condition")
		email = "iw-ignored@example.com"
		lead = frappe.get_doc(
			{"doctype": "Lead", "first_name": "Ignored", "email_id": email, "company_name": "X"}
		).insert(ignore_permissions=True)
		self.call(credentials, lead_payload(email, event="ignore"))
		self.run_jobs()
		self.assertFalse(frappe.db.get_value("Lead", lead.name, "job_title"))

	def test_frappe_style_signature_is_accepted(self):
		"""X-Frappe-Webhook-Signature (base64 of the HMAC-SHA256) alone is enough."""
		_rule, credentials = self.make_webhook_rule("Frappe Style")
		status, _message = self.call(credentials, lead_payload("iw-frappe@example.com"), frappe_style=True)
		self.assertEqual(status, 202)
		self.run_jobs()
		self.assertEqual(frappe.db.count("Lead", {"email_id": "iw-frappe@example.com"}), 1)

	# ------------------------------------------------------------------------------------------
	# refused calls: nothing written but the log row

	def test_bad_calls_are_refused_with_only_a_log_row(self):
		"""Bad signature 401, unknown token 404, a huge body 413, a body that is not JSON or not an
		object 400, over the rate limit 429: each leaves one Rejected log row without the body."""
		rule, credentials = self.make_webhook_rule("Refusals", webhook_rate_limit=1000)
		payload = lead_payload("iw-refused@example.com")

		before = self.counts()
		status, _m = self.call(credentials, payload, sign_with="not the secret")
		self.assert_refused(before, status, 401, rule)

		before = self.counts()
		status, _m = self.call(credentials, payload, sign_with="")
		self.assert_refused(before, status, 401, rule)

		before = self.counts()
		status, _m = self.call(credentials, payload, token="wrong-token-" + "x" * 30)
		self.assert_refused(before, status, 404)

		before = self.counts()
		huge = json.dumps({"note": BODY_MARKER, "pad": "x" * inbound.MAX_BODY_BYTES}).encode()
		status, _m = self.call(credentials, body=huge)
		self.assert_refused(before, status, 413, rule)

		before = self.counts()
		status, _m = self.call(
			credentials, body=b"{not json " + BODY_MARKER.encode(), content_type="text/plain"
		)
		self.assert_refused(before, status, 400, rule)

		before = self.counts()
		status, _m = self.call(credentials, body=json.dumps([BODY_MARKER]).encode())
		self.assert_refused(before, status, 400, rule)

		# Sent as application/json, a body that is not JSON stops in Frappe's own parsing, before
		# the app: nothing is written at all.
		before = self.counts()
		with self.assertRaises(ValueError):
			self.call(credentials, body=b"{not json")
		self.assertEqual(self.counts(), before)

	def test_over_the_rate_limit_is_refused(self):
		"""The rule's Calls per Minute, counted in frappe.cache for all web workers."""
		rule, credentials = self.make_webhook_rule("Rate", webhook_rate_limit=2)
		for i in range(2):
			status, _m = self.call(credentials, lead_payload(f"iw-rate-{i}@example.com"))
			self.assertEqual(status, 202)
		self.enqueued = []
		before = self.counts()
		status, _m = self.call(credentials, lead_payload("iw-rate-3@example.com"))
		self.assert_refused(before, status, 429, rule)

	# ------------------------------------------------------------------------------------------
	# the token's life

	def test_rotate_and_revoke(self):
		"""Rotate: the old URL stops working at once, the new one works (with a new secret if asked);
		revoke: the URL answers as an unknown token does."""
		rule, old = self.make_webhook_rule("Rotate")
		with as_user(OWNER):
			new = api.rotate(rule)
		self.assertIsNone(new["secret"])  # kept: the sender already has it
		self.assertEqual(self.call(old, lead_payload("iw-rot@example.com"))[0], 404)
		self.assertEqual(
			self.call({**new, "secret": old["secret"]}, lead_payload("iw-rot@example.com"))[0], 202
		)
		with as_user(OWNER):
			newer = api.rotate(rule, new_secret=1)
		self.assertNotEqual(newer["secret"], old["secret"])
		self.assertEqual(
			self.call(newer, lead_payload("iw-rot@example.com"), sign_with=old["secret"])[0], 401
		)
		self.assertEqual(self.call(newer, lead_payload("iw-rot@example.com"))[0], 202)
		with as_user(OWNER):
			api.revoke(rule)
		self.assertFalse(frappe.db.get_value("Workflow Rule", rule, "webhook_token_hash"))
		self.assertEqual(self.call(newer, lead_payload("iw-rot@example.com"))[0], 404)

	def test_another_rules_token_hash_cannot_be_copied_by_a_save(self):
		"""The hash changes only through generate / rotate / revoke: a manager who copies another
		rule's hash onto their own rule (REST, or a duplicate) gets nothing, and the URL keeps
		reaching its own rule."""
		victim, credentials = self.make_webhook_rule("Victim")
		stolen = frappe.db.get_value("Workflow Rule", victim, "webhook_token_hash")
		with as_user(ATTACKER):
			own = frappe.get_doc({**self.rule_values("Copier"), "webhook_token_hash": stolen}).insert()
			self.assertFalse(own.webhook_token_hash)
			own.webhook_token_hash = stolen
			own.save()
		self.assertFalse(frappe.db.get_value("Workflow Rule", own.name, "webhook_token_hash"))
		self.assertEqual(frappe.db.get_value("Workflow Rule", victim, "webhook_token_hash"), stolen)
		self.assertEqual(self.call(credentials, lead_payload("iw-copy@example.com"))[0], 202)

	def test_the_token_is_not_stored_and_the_secret_not_shown(self):
		"""Only the token's hash and last four characters are stored; REST, a pack and a duplicate
		of the rule carry neither the token nor the secret, for the attacker as for anyone."""
		rule, credentials = self.make_webhook_rule("Secrets")
		token = credentials["url"].split("token=", 1)[1]
		row = frappe.db.sql("select * from `tabWorkflow Rule` where name = %s", rule, as_dict=True)[0]
		stored = json.dumps(row, default=str)
		self.assertNotIn(token, stored)
		self.assertNotIn(credentials["secret"], stored)
		self.assertEqual(row.webhook_token_hash, inbound.token_hash(token))
		with as_user(ATTACKER):
			through_rest = frappe.call("frappe.client.get", "Workflow Rule", rule)
			# only_for lets every test through; outside tests it holds for the attacker.
			frappe.flags.in_test = False
			try:
				with self.assertRaises(frappe.PermissionError):
					frappe.call("frappe.client.get_password", "Workflow Rule", rule, "webhook_secret")
			finally:
				frappe.flags.in_test = True
			pack = export_pack({"workflow_rules": [rule]})
		self.assertNotIn(credentials["secret"], json.dumps(through_rest, default=str))
		self.assertNotIn(token, json.dumps(through_rest, default=str))
		exported = json.dumps(pack, default=str)
		for secret in (
			token,
			credentials["secret"],
			row.webhook_token_hash,
			"webhook_secret",
			"webhook_token",
		):
			self.assertNotIn(secret, exported)
		copy = frappe.copy_doc(
			frappe.get_doc("Workflow Rule", rule), ignore_no_copy=False
		)  # as the desk duplicates
		self.assertFalse(copy.webhook_token_hash or copy.webhook_secret or copy.webhook_token_hint)

	def test_a_new_url_by_someone_else_runs_as_them(self):
		"""An attacker who may edit the rule may make it a new URL, but that is a save of the rule:
		it then runs as the attacker, never with the owner's rights."""
		rule, _credentials = self.make_webhook_rule("Taken Over")
		with as_user(ATTACKER):
			api.rotate(rule)
		self.assertEqual(frappe.db.get_value("Workflow Rule", rule, "run_as"), ATTACKER)
		with as_user("Guest"), self.assertRaises(frappe.PermissionError):
			api.rotate(rule)

	# ------------------------------------------------------------------------------------------
	# the run-as user's rights

	def test_payload_cannot_reach_fields_the_run_as_user_cannot_write(self):
		"""A field map naming a field above the attacker's permission levels is refused at save; one
		slipped into the database fails the run at creation, nothing created."""
		field_map = {
			"first_name": "x",
			"email_id": "{{ payload.contact.email }}",
			LEVEL_ONE: "{{ payload.note }}",
		}
		with self.assertRaises(frappe.PermissionError):
			self.make_webhook_rule("Level", user=ATTACKER, webhook_field_map=json.dumps(field_map))
		rule, credentials = self.make_webhook_rule("Level Slipped", user=ATTACKER)
		frappe.db.set_value("Workflow Rule", rule, "webhook_field_map", json.dumps(field_map))
		clear_rule_cache()
		self.assertEqual(self.call(credentials, lead_payload("iw-level@example.com"))[0], 202)
		self.run_jobs()
		self.assertEqual(frappe.db.count("Lead", {"email_id": "iw-level@example.com"}), 0)
		log = self.last_log(rule)
		self.assertEqual(log.outcome, "Failed")
		self.assertIn(LEVEL_ONE, log.reason)

	def test_a_lead_the_run_as_user_may_not_read_is_not_touched(self):
		"""The attacker reads only Leads of their territory: the matching Lead outside it is not found,
		so it is left as it was."""
		frappe.get_doc(
			{
				"doctype": "User Permission",
				"user": ATTACKER,
				"allow": "Territory",
				"for_value": TERRITORY,
				"apply_to_all_doctypes": 0,
				"applicable_for": "Lead",
			}
		).insert(ignore_permissions=True)
		frappe.clear_cache(user=ATTACKER)
		email = "iw-private@example.com"
		lead = frappe.get_doc(
			{"doctype": "Lead", "first_name": "Private", "email_id": email, "company_name": "X"}
		).insert(ignore_permissions=True)
		rule, credentials = self.make_webhook_rule("Unreadable", user=ATTACKER, webhook_create_missing=0)
		self.assertEqual(self.call(credentials, lead_payload(email))[0], 202)
		self.run_jobs()
		self.assertFalse(frappe.db.get_value("Lead", lead.name, "job_title"))
		log = self.last_log(rule)
		self.assertEqual(log.outcome, "Skipped")
		self.assertFalse(log.reference_name)

	# ------------------------------------------------------------------------------------------
	# the rule's save

	def test_settings_are_checked_at_save(self):
		"""A match field the doctype lacks, a path that is not one, a field map naming no field."""
		for fields in (
			{"webhook_match_field": "no_such_field"},
			{"webhook_match_path": "contact..email"},
			{"webhook_match_path": ""},
			{"webhook_field_map": json.dumps({"no_such_field": "x"})},
			{"webhook_field_map": json.dumps({"first_name": "{{ payload.__class__ }}"})},
		):
			with self.subTest(fields=fields), self.assertRaises(frappe.ValidationError):
				self.make_webhook_rule("Invalid", **fields)
