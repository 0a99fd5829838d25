# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

"""Replies on a real site (issue 22): a Communication inserted as Frappe's mail pull inserts it
(Received, Email, filed against a document, timeline links added by Frappe) fires Communication
Received rules on the documents it belongs to, ends sequences that stop on a reply and Until Reply
waits; a sent one does nothing; a rule sees of the e-mail only what its run-as user may see; and
nothing a rule does can fail the insert of the e-mail. The clock is patched, nothing sleeps."""

import datetime
import json
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.sequences import runs as sequence_runs
from crm_automation.tests.factories import (
	logs_for,
	make_customer,
	make_lead,
	make_rule,
	make_user,
	new_request,
)

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "Role", "Customer"]
PREFIX = "_Test RPL"
T0 = datetime.datetime(2026, 11, 18, 10, 0)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
ATTACKER = "rpl.attacker@example.com"
BUYER = "rpl.buyer@example.com"
OWN_CUSTOMER = "_Test RPL Own Customer"
FORBIDDEN_CUSTOMER = "_Test RPL Forbidden Customer"
SECRET = "RPL-SECRET-7731"


def receive(subject="Re: your offer", sender=BUYER, reference=None, content="<p>Hello</p>", **fields):
	"""A Communication as the mail pull inserts it (frappe.email.receive.InboundMail)."""
	data = {
		"doctype": "Communication",
		"subject": subject,
		"content": content,
		"sent_or_received": "Received",
		"sender_full_name": "RPL Buyer",
		"sender": sender,
		"recipients": "sales@example.com",
		"communication_medium": "Email",
		"message_id": frappe.generate_hash(length=16) + "@example.com",
		"communication_date": frappe.utils.now_datetime(),
		"seen": 0,
		**fields,
	}
	if reference is not None:
		data.update(reference_doctype=reference.doctype, reference_name=reference.name)
	communication = frappe.get_doc(data)
	communication.flags.in_receive = True
	return communication.insert(ignore_permissions=True)


def comments(doc):
	return frappe.get_all(
		"Comment",
		filters={"reference_doctype": doc.doctype, "reference_name": doc.name, "comment_type": "Comment"},
		pluck="content",
		order_by="creation asc",
	)


def reply_rule(name, message, document_type="Lead", conditions=None, **fields):
	return make_rule(
		f"{PREFIX} {name}",
		document_type,
		"Communication Received",
		[{"action_type": "Add Comment", "message": message}],
		conditions=conditions,
		**fields,
	)


def lead_without_contact(email, **fields):
	"""A Lead whose address is known only on the Lead (no Contact, so Frappe adds no timeline link)."""
	lead = make_lead(first_name="RPL", **fields)
	lead.db_set("email_id", email)
	return lead


def steps_of(doc):
	return frappe.get_all(
		"Automation Sequence Step",
		filters={"reference_doctype": doc.doctype, "reference_name": doc.name},
		fields=["name", "step_name", "status", "due_at", "reason", "condition_met"],
		order_by="creation asc",
	)


def step(name, kind, amount, unit="Hours"):
	return {"step_name": name, "wait_type": kind, "wait_amount": amount, "wait_unit": unit}


def sweep(at):
	new_request()
	with patch("crm_automation.sequences.steps.now", return_value=at), patch.object(frappe.db, "commit"):
		return sequence_runs.sweep(now_at=at)


def started_at(at, factory, **fields):
	new_request()
	with patch("crm_automation.sequences.steps.now", return_value=at):
		return factory(**fields)


def received_at(at, **fields):
	new_request()
	with patch("crm_automation.sequences.steps.now", return_value=at):
		return receive(**fields)


class RepliesTestCase(FrappeTestCase):
	"""Each test rolls back what it wrote."""

	def setUp(self):
		frappe.set_user("Administrator")
		frappe.db.set_single_value(
			"CRM Automation Settings", {"enabled": 1, "time_trigger_catchup_hours": 24}
		)
		new_request()

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		clear_rule_cache()


class TestCommunicationReceived(RepliesTestCase):
	def test_an_email_filed_against_a_lead_fires_the_rule_with_its_values(self):
		"""The reference document hears the reply; conditions test the e-mail, templates show it."""
		rule = reply_rule(
			"Price",
			"{{ communication.sender }} asked: {{ communication.subject }} / {{ communication.content }}",
			conditions={"all": [{"field": "communication.subject", "op": "like", "value": "%price%"}]},
		)
		lead = make_lead(first_name="RPL Price")
		receive(subject="Thanks", reference=lead)
		self.assertEqual(comments(lead), [])
		receive(subject="Re: price list", reference=lead, content="<p>How <b>much</b>?</p>")
		[text] = comments(lead)
		self.assertIn(f"{BUYER} asked: Re: price list / How", text)
		self.assertNotIn("<b>", text)  # the content as plain text
		[log] = [log for log in logs_for(lead, rule.name) if log.outcome == "Success"]
		self.assertEqual(frappe.db.get_value("Automation Log", log.name, "event"), "communication_received")

	def test_an_email_inserted_by_someone_who_may_not_read_the_lead_does_nothing(self):
		"""Any Inbox User can insert a "Received" Communication through REST and file it against any
		document: only documents its inserter may read hear it (the mail pull runs as Administrator)."""
		reply_rule("Forged", "forged reply heard")
		lead = make_lead(first_name="RPL Forged")
		make_user("rpl.inbox@example.com", roles=["Inbox User"])
		self.assertFalse(frappe.has_permission("Lead", "read", doc=lead.name, user="rpl.inbox@example.com"))
		frappe.set_user("rpl.inbox@example.com")
		try:
			receive(subject="Re: unsubscribe me", reference=lead)
		finally:
			frappe.set_user("Administrator")
		self.assertEqual(comments(lead), [])
		self.assertEqual(logs_for(lead, f"{PREFIX} Forged"), [])
		receive(subject="Re: the real reply", reference=lead)  # the mail pull, as Administrator
		self.assertEqual(comments(lead), ["forged reply heard"])

	def test_each_email_fires_once_even_in_one_mail_pull(self):
		reply_rule("Each", "reply: {{ communication.subject }}")
		lead = make_lead(first_name="RPL Each")
		receive(subject="one", reference=lead)
		receive(subject="two", reference=lead)  # the same job: the rule fires again, for this e-mail
		self.assertEqual(sorted(comments(lead)), ["reply: one", "reply: two"])

	def test_an_email_linked_only_through_timeline_links(self):
		"""No reference document: the Lead is one of the e-mail's timeline links."""
		reply_rule("Timeline", "timeline: {{ communication.subject }}")
		lead = make_lead(first_name="RPL Timeline")
		receive(subject="linked", timeline_links=[{"link_doctype": "Lead", "link_name": lead.name}])
		self.assertEqual(comments(lead), ["timeline: linked"])

	def test_an_email_from_a_leads_address_reaches_the_lead(self):
		"""Filed against nothing, no Contact: found by the Lead's e-mail address, as ERPNext knows it."""
		reply_rule("Address", "from the lead: {{ communication.subject }}")
		lead = lead_without_contact("rpl.address@example.com")
		receive(subject="hello", sender="RPL Person <RPL.Address@example.com>")
		self.assertEqual(comments(lead), ["from the lead: hello"])

	def test_an_email_from_a_contact_reaches_the_documents_the_contact_links(self):
		reply_rule("Contact", "via contact: {{ communication.subject }}")
		lead = lead_without_contact("rpl.other@example.com")
		contact = frappe.get_doc(
			{
				"doctype": "Contact",
				"first_name": "RPL Contact",
				"email_ids": [{"email_id": "rpl.contact@example.com", "is_primary": 1}],
				"links": [{"link_doctype": "Lead", "link_name": lead.name}],
			}
		).insert(ignore_permissions=True)
		communication = receive(subject="via contact", sender="rpl.contact@example.com")
		links = {(row.link_doctype, row.link_name) for row in communication.timeline_links}
		self.assertIn(("Contact", contact.name), links)  # Frappe's own linking, which we follow
		self.assertEqual(comments(lead), ["via contact: via contact"])

	def test_a_sent_email_or_another_medium_does_nothing(self):
		rule = reply_rule("Sent", "should not happen")
		lead = make_lead(first_name="RPL Sent")
		receive(reference=lead, sent_or_received="Sent")
		receive(reference=lead, communication_medium="Phone")
		self.assertEqual(comments(lead), [])
		self.assertEqual(logs_for(lead, rule.name), [])


class TestSequencesHearReplies(RepliesTestCase):
	def nurture(self, **fields):
		return make_rule(
			f"{PREFIX} Nurture",
			"Lead",
			"New",
			[
				{"action_type": "Add Comment", "message": "remind", "step": "Remind"},
				{"action_type": "Add Comment", "message": "later", "step": "Later"},
			],
			steps=[step("Remind", "Duration", 24, "Hours"), step("Later", "Duration", 24, "Hours")],
			**fields,
		)

	def until_reply(self):
		return make_rule(
			f"{PREFIX} Until Reply",
			"Lead",
			"New",
			[
				{"action_type": "Add Comment", "message": "thank you", "step": "Answer"},
				{"action_type": "Add Comment", "message": "reminder", "step": "Answer", "on_timeout": 1},
			],
			steps=[step("Answer", "Until Reply", 3, "Days")],
		)

	def test_a_reply_ends_a_nurture_sequence_that_stops_on_a_reply(self):
		self.nurture(stop_on_reply=1)
		lead = started_at(T0, make_lead, first_name="RPL Nurture")
		received_at(T0 + 5 * HOUR, reference=lead)
		[row] = steps_of(lead)
		self.assertEqual((row.status, row.reason), ("Exited", "Ended: the document got a reply"))
		sweep(T0 + 3 * DAY)
		self.assertEqual(comments(lead), [])

	def test_without_stop_on_reply_the_nurture_goes_on(self):
		self.nurture()
		lead = started_at(T0, make_lead, first_name="RPL Goes On")
		received_at(T0 + 5 * HOUR, reference=lead)
		sweep(T0 + 24 * HOUR)
		self.assertEqual(comments(lead), ["remind"])

	def test_an_until_reply_step_ends_early_on_a_reply(self):
		rule = self.until_reply()
		self.assertEqual(rule.steps[0].wait_summary, "wait until a reply (at most 3 days)")
		lead = started_at(T0, make_lead, first_name="RPL Answered")
		received_at(T0 + 5 * HOUR, reference=lead)
		[row] = steps_of(lead)
		self.assertEqual((row.status, row.condition_met, row.due_at), ("Pending", 1, T0 + 5 * HOUR))
		sweep(T0 + 5 * HOUR)
		self.assertEqual(comments(lead), ["thank you"])

	def test_an_unanswered_until_reply_step_times_out(self):
		self.until_reply()
		lead = started_at(T0, make_lead, first_name="RPL Silent")
		sweep(T0 + 3 * DAY - HOUR)
		self.assertEqual(comments(lead), [])
		sweep(T0 + 3 * DAY)
		self.assertEqual(comments(lead), ["reminder"])
		self.assertEqual(steps_of(lead)[0].reason, "timeout")

	def test_an_until_reply_step_needs_its_longest_wait(self):
		with self.assertRaises(frappe.ValidationError) as caught:
			make_rule(
				f"{PREFIX} No Limit",
				"Lead",
				"New",
				[{"action_type": "Add Comment", "message": "x", "step": "Answer"}],
				steps=[{"step_name": "Answer", "wait_type": "Until Reply", "wait_amount": 0}],
			)
		self.assertIn("wait above zero", str(caught.exception))
		self.assertFalse(frappe.db.exists("Workflow Rule", f"{PREFIX} No Limit"))


class TestWhatARuleMaySee(RepliesTestCase):
	"""The attacker holds CRM Automation Manager and Sales User and is kept by a User Permission to
	one Customer; their rules run as them."""

	def setUp(self):
		super().setUp()
		make_user(ATTACKER, roles=["Sales User", "CRM Automation Manager"])
		make_customer(OWN_CUSTOMER)
		make_customer(FORBIDDEN_CUSTOMER)
		frappe.get_doc(
			{
				"doctype": "User Permission",
				"user": ATTACKER,
				"allow": "Customer",
				"for_value": OWN_CUSTOMER,
				"apply_to_all_doctypes": 0,
				"applicable_for": "Customer",
			}
		).insert(ignore_permissions=True)

	def attacker_rule(self, name, document_type="Lead"):
		frappe.set_user(ATTACKER)
		try:
			rule = frappe.get_doc(
				{
					"doctype": "Workflow Rule",
					"rule_name": f"{PREFIX} {name}",
					"document_type": document_type,
					"trigger": "Communication Received",
					"enabled": 1,
					"actions": [
						{
							"action_type": "Add Comment",
							"message": "seen: [{{ communication.subject }}|{{ communication.content }}]",
						}
					],
				}
			).insert()
		finally:
			frappe.set_user("Administrator")
		clear_rule_cache()
		self.assertEqual(rule.run_as, ATTACKER)
		return rule

	def test_no_run_on_a_document_the_run_as_user_may_not_read(self):
		rule = self.attacker_rule("Customer", "Customer")
		forbidden = frappe.get_doc("Customer", FORBIDDEN_CUSTOMER)
		receive(subject=SECRET, content=SECRET, reference=forbidden)
		self.assertEqual(comments(forbidden), [])
		[log] = logs_for(forbidden, rule.name)
		self.assertEqual(log.outcome, "Skipped")
		stored = json.dumps(frappe.get_doc("Automation Log", log.name).as_dict(), default=str)
		self.assertNotIn(SECRET, stored)

	def test_an_email_its_user_may_not_see_gives_no_values(self):
		"""The Lead is theirs to read, but the e-mail is filed against a Customer they may not read,
		and they may not read the Communication itself: the rule runs and sees nothing of it."""
		self.attacker_rule("Lead")
		lead = lead_without_contact("rpl.hidden@example.com")
		forbidden = frappe.get_doc("Customer", FORBIDDEN_CUSTOMER)
		receive(subject=SECRET, content=SECRET, sender="rpl.hidden@example.com", reference=forbidden)
		[text] = comments(lead)
		self.assertNotIn(SECRET, text)
		self.assertEqual(text, "seen: [None|None]")

	def test_an_email_on_a_document_its_user_may_read_is_seen(self):
		"""Frappe shows a document's e-mails to whoever may read the document: so does a rule."""
		self.attacker_rule("Lead Own")
		lead = make_lead(first_name="RPL Own")
		receive(subject="visible", content="visible too", reference=lead)
		self.assertEqual(comments(lead), ["seen: [visible|visible too]"])


class TestTheEmailIsNeverLost(RepliesTestCase):
	def test_a_rule_that_breaks_does_not_fail_the_insert(self):
		reply_rule("Broken", "x")
		lead = make_lead(first_name="RPL Broken")
		title = f"Workflow Rule {PREFIX} Broken failed on an incoming e-mail"
		errors_before = frappe.db.count("Error Log", {"method": title})
		with patch("crm_automation.runtime.replies.run_rule", side_effect=RuntimeError("boom")):
			communication = receive(subject="still here", reference=lead)
		self.assertTrue(frappe.db.exists("Communication", communication.name))
		self.assertEqual(frappe.db.count("Error Log", {"method": title}), errors_before + 1)

	def test_a_failing_action_is_logged_and_the_email_stays(self):
		rule = reply_rule("Failing", "{{ communication.subject / 2 }}")
		lead = make_lead(first_name="RPL Failing")
		communication = receive(subject="kept", reference=lead)
		self.assertTrue(frappe.db.exists("Communication", communication.name))
		self.assertEqual([log.outcome for log in logs_for(lead, rule.name)], ["Failed"])
