"""Webhooks on a real site: delivered exactly once with two workers and the sweep at once (also when
the receiver fails the first attempts), from a snapshot of the document, one bad row never blocking
the others, and only to targets the network guard allows."""

import json
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_to_date, now_datetime

from crm_automation.actions import deliver_webhooks, retry_due_webhooks
from crm_automation.tests.concurrency import run_in_processes
from crm_automation.tests.factories import delete_test_rules, make_lead, make_rule, new_request
from crm_automation.tests.webhook_receiver import Receiver, loopback_allowed
from crm_automation.trust.outbound_http import ALLOWLIST_KEY

RULE_PREFIX = "_Test Hook"


def _hold_retries():
	"""In a worker process: a failed attempt waits hours, so no worker retries it within the same
	round however slow the machine; the test makes retries due itself."""
	from crm_automation.actions import webhooks

	webhooks.WEBHOOK_BACKOFF_MINUTES = (600,) * 10


def deliver_all_logs(prefix):
	"""A worker process: run the delivery job of every log of the test rules (as if each job had been
	started twice, once per worker)."""
	_hold_retries()
	logs = frappe.get_all(
		"Automation Log", filters={"rule": ("like", f"{prefix}%")}, pluck="name", order_by="creation"
	)
	for log in logs:
		deliver_webhooks(log)
	print("delivered", len(logs))


def sweep():
	_hold_retries()
	retry_due_webhooks()
	print("swept")


def webhook_rows(prefix=RULE_PREFIX):
	return frappe.db.sql(
		"""select a.name, a.status, a.attempts, a.claimed_by, a.result, a.payload, a.response
		from `tabAutomation Log Action` a join `tabAutomation Log` l on l.name = a.parent
		where l.rule like %s and a.action_type = 'Webhook'""",
		(f"{prefix}%",),
		as_dict=True,
	)


def make_hooks(url, rules, documents, **action):
	"""``rules`` Workflow Rules each with a webhook to ``url`` on new Leads, and ``documents`` Leads;
	the delivery jobs are not started (the test starts the workers itself)."""
	with patch("frappe.enqueue"):
		for r in range(rules):
			make_rule(
				f"{RULE_PREFIX} {r}",
				"Lead",
				"New",
				actions=[{"action_type": "Webhook", "url": url, "timeout": 10, "retries": 3, **action}],
			)
		return [make_lead(first_name=f"Hooked {i}", company_name=f"Hooked Co {i}") for i in range(documents)]


def clean_up(leads):
	names = [lead.name for lead in leads]
	logs = frappe.get_all("Automation Log", filters={"rule": ("like", f"{RULE_PREFIX}%")}, pluck="name")
	frappe.db.delete("Automation Log Action", {"parent": ("in", logs or [""])})
	frappe.db.delete("Automation Log", {"name": ("in", logs or [""])})
	for name in names:
		if frappe.db.exists("Lead", name):
			frappe.delete_doc("Lead", name, force=True, ignore_permissions=True)
	delete_test_rules(f"{RULE_PREFIX}%")
	frappe.db.commit()


class TestExactlyOnceDelivery(FrappeTestCase):
	"""N rules by M documents, two workers and the sweep at the same moment."""

	def setUp(self):
		new_request()
		self.enterContext(loopback_allowed(also_for_other_processes=True))

	def run_workers(self):
		run_in_processes(
			frappe.local.site,
			[
				("crm_automation.tests.test_webhook_delivery.deliver_all_logs", (RULE_PREFIX,)),
				("crm_automation.tests.test_webhook_delivery.deliver_all_logs", (RULE_PREFIX,)),
				("crm_automation.tests.test_webhook_delivery.sweep", ()),
			],
		)
		frappe.db.rollback()  # a fresh snapshot: see what the workers committed

	def test_two_workers_and_the_sweep_deliver_each_webhook_once(self):
		with Receiver() as receiver:
			leads = make_hooks(receiver.url, rules=3, documents=4)
			frappe.db.commit()
			try:
				self.run_workers()
				expected = {(f"{RULE_PREFIX} {r}", lead.name) for r in range(3) for lead in leads}
				self.assertEqual(set(receiver.accepted), expected)
				self.assertEqual(set(receiver.accepted.values()), {1}, receiver.accepted)
				self.assertEqual(sum(receiver.attempts.values()), 12)
				rows = webhook_rows()
				self.assertEqual(len(rows), 12)
				self.assertEqual({(r.status, r.attempts, r.claimed_by) for r in rows}, {("Success", 1, None)})
			finally:
				clean_up(leads)

	def test_exactly_once_when_the_receiver_fails_the_first_two_attempts(self):
		"""Each delivery is refused twice and accepted on the third attempt; time is moved on by
		making the next attempts due, not by waiting."""
		with Receiver(fail_first=2) as receiver:
			leads = make_hooks(receiver.url, rules=2, documents=3)
			frappe.db.commit()
			try:
				for attempt in (1, 2):
					self.run_workers()
					rows = webhook_rows()
					self.assertEqual({(r.status, r.attempts) for r in rows}, {("Queued", attempt)})
					self.assertEqual(receiver.accepted, {})
					# Not due yet: a sweep now sends nothing.
					retry_due_webhooks()
					self.assertEqual(sum(receiver.attempts.values()), 6 * attempt)
					frappe.db.sql(
						"update `tabAutomation Log Action` set next_attempt_on = %s where name in %s",
						(add_to_date(now_datetime(), minutes=-1), [r.name for r in rows]),
					)
					frappe.db.commit()
				self.run_workers()
				self.assertEqual(len(receiver.accepted), 6)
				self.assertEqual(set(receiver.accepted.values()), {1})
				self.assertEqual(set(receiver.attempts.values()), {3})
				self.assertEqual({(r.status, r.attempts) for r in webhook_rows()}, {("Success", 3)})
			finally:
				clean_up(leads)


class TestDeliveryRows(FrappeTestCase):
	"""One process; commits inside the delivery are muted (nothing here outlives the test)."""

	def setUp(self):
		new_request()
		self.enterContext(loopback_allowed())
		self.enterContext(patch.object(frappe.db, "commit"))
		self.enterContext(patch("frappe.enqueue"))

	def tearDown(self):
		frappe.db.rollback()
		delete_test_rules(f"{RULE_PREFIX}%")

	def test_delete_trigger_delivers_the_document_as_it_was(self):
		with Receiver() as receiver:
			make_rule(
				f"{RULE_PREFIX} Delete",
				"Lead",
				"Delete",
				actions=[{"action_type": "Webhook", "url": receiver.url}],
			)
			lead = make_lead(first_name="Soon Gone", company_name="Gone Co")
			name = lead.name
			frappe.delete_doc("Lead", name, ignore_permissions=True)
			self.assertFalse(frappe.db.exists("Lead", name))
			log = frappe.get_all("Automation Log", filters={"rule": f"{RULE_PREFIX} Delete"}, pluck="name")[0]
			deliver_webhooks(log)
		self.assertEqual(len(receiver.bodies), 1)
		self.assertEqual(
			(receiver.bodies[0]["name"], receiver.bodies[0]["doc"]["first_name"]), (name, "Soon Gone")
		)
		self.assertEqual([r.status for r in webhook_rows()], ["Success"])

	def test_one_drain_job_delivers_the_webhooks_of_many_runs(self):
		"""Each run that queued a webhook asks for delivery once committed; while a drain job waits on
		the queue no other is queued (one worker fork for all of them), and that job delivers every
		queued row. It clears its flag before it reads, so a later run queues the next job."""
		from crm_automation.actions import webhooks

		flag = frappe.cache.make_key(webhooks._DRAIN_FLAG)
		frappe.cache.delete(flag)
		self.addCleanup(frappe.cache.delete, flag)
		with Receiver() as receiver:
			frappe.db.after_commit.reset()
			make_hooks(receiver.url, rules=2, documents=3)
			asked = [f for f in frappe.db.after_commit._functions if f is webhooks.request_delivery]
			frappe.db.after_commit.reset()
			self.assertEqual(len(asked), 6, "one request per run, run after the commit")
			with patch("frappe.enqueue") as enqueue:
				for request in asked:
					request()
			self.assertEqual([c.args[0] for c in enqueue.call_args_list], [webhooks.DRAIN_JOB])
			webhooks.deliver_queued_webhooks()
			self.assertEqual(len(receiver.bodies), 6)
			self.assertEqual({r.status for r in webhook_rows()}, {"Success"})
			with patch("frappe.enqueue") as enqueue:
				webhooks.request_delivery()
			enqueue.assert_called_once()

	def test_a_later_edit_does_not_change_what_is_sent(self):
		with Receiver() as receiver:
			make_rule(
				f"{RULE_PREFIX} New", "Lead", "New", actions=[{"action_type": "Webhook", "url": receiver.url}]
			)
			lead = make_lead(first_name="Before Edit")
			frappe.db.set_value("Lead", lead.name, "first_name", "After Edit")
			deliver_webhooks(
				frappe.get_all("Automation Log", filters={"rule": f"{RULE_PREFIX} New"}, pluck="name")[0]
			)
		self.assertEqual(receiver.bodies[0]["doc"]["first_name"], "Before Edit")

	def test_one_bad_row_never_blocks_the_others(self):
		"""A row whose rule action is gone, a row whose snapshot is corrupt and a row claimed by a worker
		that died are each settled on their own; the good rows are delivered by the same sweep."""
		with Receiver() as receiver:
			make_hooks(receiver.url, rules=1, documents=4)
			rows = sorted(webhook_rows(), key=lambda r: r.name)
			gone, corrupt, stale, good = rows[0], rows[1], rows[2], rows[3]
			frappe.db.set_value("Automation Log Action", corrupt.name, "payload", "{not json")
			frappe.db.set_value(
				"Automation Log Action",
				stale.name,
				{
					"status": "Sending",
					"claimed_by": "dead-worker",
					"claim_expires": add_to_date(now_datetime(), minutes=-1),
				},
			)
			frappe.db.set_value("Automation Log Action", gone.name, "action_row", 99)  # no such row
			retry_due_webhooks()
			after = {r.name: r for r in webhook_rows()}
		self.assertEqual(after[good.name].status, "Success")
		self.assertEqual(after[stale.name].status, "Success")  # the expired claim was taken over
		self.assertEqual(after[gone.name].status, "Failed")
		self.assertIn("no longer exists", after[gone.name].result)
		self.assertEqual((after[corrupt.name].status, after[corrupt.name].claimed_by), ("Queued", None))
		self.assertIn("retrying", after[corrupt.name].result)
		self.assertEqual(len(receiver.bodies), 2)
		delivered_for = [
			frappe.db.get_value(
				"Automation Log",
				frappe.db.get_value("Automation Log Action", r.name, "parent"),
				"reference_name",
			)
			for r in (stale, good)
		]
		self.assertEqual(sorted(b["name"] for b in receiver.bodies), sorted(delivered_for))

	def test_a_live_claim_is_left_alone(self):
		with Receiver() as receiver:
			make_hooks(receiver.url, rules=1, documents=1)
			row = webhook_rows()[0]
			frappe.db.set_value(
				"Automation Log Action",
				row.name,
				{
					"status": "Sending",
					"claimed_by": "busy-worker",
					"claim_expires": add_to_date(now_datetime(), minutes=5),
				},
			)
			retry_due_webhooks()
			deliver_webhooks(frappe.db.get_value("Automation Log Action", row.name, "parent"))
		self.assertEqual(receiver.attempts, {})
		self.assertEqual(webhook_rows()[0].claimed_by, "busy-worker")

	def test_secret_and_headers_never_stored_or_logged_in_clear(self):
		token = "Bearer tok-1234567890-secret"
		with Receiver() as receiver:
			make_hooks(
				receiver.url,
				rules=1,
				documents=1,
				headers=json.dumps({"Authorization": token}),
				secret="hmac-s3cret",
			)
			action = frappe.get_all(
				"Workflow Rule Action",
				filters={"parent": f"{RULE_PREFIX} 0"},
				fields=["name", "headers", "secret"],
			)[0]
			self.assertEqual(set(action.headers), {"*"})
			self.assertEqual(set(action.secret), {"*"})
			deliver_webhooks(
				frappe.get_all("Automation Log", filters={"rule": f"{RULE_PREFIX} 0"}, pluck="name")[0]
			)
		row = webhook_rows()[0]
		self.assertEqual(row.status, "Success")
		for text in (row.result, row.response, row.payload):
			self.assertNotIn("tok-1234567890", text or "")
			self.assertNotIn("hmac-s3cret", text or "")
		log = frappe.get_doc(
			"Automation Log", frappe.db.get_value("Automation Log Action", row.name, "parent")
		)
		self.assertNotIn("tok-1234567890", json.dumps(log.as_dict(), default=str))


class TestHeadersPatch(FrappeTestCase):
	def tearDown(self):
		frappe.db.rollback()
		delete_test_rules(f"{RULE_PREFIX}%")

	def test_plain_headers_stored_before_are_encrypted(self):
		from crm_automation.patches import encrypt_webhook_headers

		with patch("frappe.enqueue"):
			rule = make_rule(
				f"{RULE_PREFIX} Old Headers",
				"Lead",
				"New",
				actions=[{"action_type": "Webhook", "url": "https://hooks.example.com/in"}],
			)
		row = rule.actions[0].name
		plain = json.dumps({"Authorization": "Bearer old-plain-token"})
		# As the JSON field stored it before it became a Password field.
		frappe.db.sql("update `tabWorkflow Rule Action` set headers = %s where name = %s", (plain, row))
		encrypt_webhook_headers.execute()
		encrypt_webhook_headers.execute()  # idempotent: a second run finds only the mask
		stored = frappe.db.sql("select headers from `tabWorkflow Rule Action` where name = %s", row)[0][0]
		self.assertEqual(set(stored), {"*"})
		self.assertEqual(frappe.get_doc("Workflow Rule", rule.name).actions[0].get_password("headers"), plain)


class TestWebhookTargets(FrappeTestCase):
	"""The network guard at save and at delivery."""

	def setUp(self):
		new_request()
		self.enterContext(patch("frappe.enqueue"))

	def tearDown(self):
		frappe.db.rollback()
		delete_test_rules(f"{RULE_PREFIX}%")

	def hook(self, url, **extra):
		return make_rule(
			f"{RULE_PREFIX} Target", "Lead", "New", actions=[{"action_type": "Webhook", "url": url, **extra}]
		)

	def test_private_and_metadata_targets_refused_at_save_naming_the_row(self):
		for url in (
			"http://169.254.169.254/latest/meta-data/",
			"http://127.0.0.1:8000/api/method/frappe.auth.get_logged_user",
			"http://[::ffff:127.0.0.1]/",
			"http://10.1.2.3/hook",
			"http://localhost/",
			"ftp://example.com/x",
			"http://2130706433/",
		):
			with self.subTest(url=url), self.assertRaisesRegex(frappe.ValidationError, "Actions, row 1.*URL"):
				self.hook(url)
			self.assertFalse(frappe.db.exists("Workflow Rule", f"{RULE_PREFIX} Target"))

	def test_allowlisted_internal_target_is_accepted(self):
		with patch.dict(frappe.conf, {ALLOWLIST_KEY: ["10.0.0.0/8", "erp.internal"]}):
			self.hook("http://10.1.2.3/hook")
			self.hook("http://erp.internal/hook")

	def test_bad_headers_refused_at_save(self):
		for headers, reason in (
			("not json", "not valid JSON"),
			('["a"]', "JSON object"),
			('{"X-A": "1\\r\\nX-Injected: 1"}', "line break"),
			('{"Host": "internal"}', "set by the app"),
			('{"Bad Name": "x"}', "not a valid header name"),
		):
			with self.subTest(headers=headers), self.assertRaisesRegex(frappe.ValidationError, reason):
				self.hook("https://hooks.example.com/in", headers=headers)

	def test_public_name_that_resolves_to_metadata_is_refused_at_delivery(self):
		"""Accepted at save (a public-looking name), refused when sent: the name resolves to the cloud
		metadata address. Nothing is sent, and the row fails with the reason."""
		import socket

		def resolve(host, port, *args, **kwargs):
			return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

		with patch.object(frappe.db, "commit"), patch("socket.getaddrinfo", resolve):
			self.hook("https://hooks.attacker.example/in")
			make_lead(first_name="Rebound")
			deliver_webhooks(
				frappe.get_all("Automation Log", filters={"rule": f"{RULE_PREFIX} Target"}, pluck="name")[0]
			)
			row = webhook_rows()[0]
		self.assertEqual(row.status, "Failed")
		self.assertIn("169.254.169.254", row.result)
		self.assertIn("metadata", row.result)

	def test_target_refused_at_delivery_when_no_longer_allowed(self):
		"""Saved while allowlisted; the allowlist is then emptied: nothing is sent, the row fails with
		the reason and is not retried."""
		with Receiver() as receiver, patch.object(frappe.db, "commit"):
			with loopback_allowed():
				self.hook(receiver.url)
				make_lead(first_name="Not Sent")
			deliver_webhooks(
				frappe.get_all("Automation Log", filters={"rule": f"{RULE_PREFIX} Target"}, pluck="name")[0]
			)
			row = webhook_rows()[0]
		self.assertEqual(receiver.attempts, {})
		self.assertEqual(row.status, "Failed")
		self.assertIn("Refused", row.result)
		self.assertIn("loopback", row.result)
