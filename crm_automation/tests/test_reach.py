"""Send SMS through SMS Settings (a loopback gateway that records what it receives) and rules that
read and act on linked documents, on a real site."""

import contextlib
import http.server
import json
import threading
import urllib.parse
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_to_date, now_datetime

from crm_automation.actions.sms import deliver_sms, retry_due_sms
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import (
	delete_test_rules,
	ensure,
	make_customer,
	make_item,
	make_lead,
	make_rule,
	make_sales_order,
	make_user,
	new_request,
	open_assignees,
)

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User Group", "Email Template", "Tag", "User"]

SMS_USER = "crm-reach-sms@example.com"
NO_MOBILE_USER = "crm-reach-nomobile@example.com"
NORTH_USER = "crm-reach-north@example.com"
MANAGER = "crm-reach-manager@example.com"
READ_ONLY_CUSTOMERS = "crm-reach-salesmanager@example.com"
NORTH = "_Test Reach North"
SOUTH = "_Test Reach South"
PLAIN_GROUP = "_Test Reach Plain"
KEY_GROUP = "_Test Reach Key Account"
CUSTOMER = "_Test Reach Customer"


class Gateway:
	"""A loopback SMS gateway: records each (to, text) it accepts; answers the queued statuses first."""

	def __init__(self, statuses=()):
		self.statuses = list(statuses)
		self.received = []
		self.requests = 0
		outer = self

		class Handler(http.server.BaseHTTPRequestHandler):
			def do_GET(self):
				query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
				outer.requests += 1
				status = outer.statuses.pop(0) if outer.statuses else 200
				if status == 200:
					outer.received.append((query.get("to"), query.get("text")))
				body = b"OK" if status == 200 else b"gateway overloaded"
				self.send_response(status)
				self.send_header("Content-Length", str(len(body)))
				self.end_headers()
				self.wfile.write(body)

			def log_message(self, *args):
				pass

		self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
		self.url = f"http://127.0.0.1:{self.server.server_port}/send"

	def __enter__(self):
		threading.Thread(target=self.server.serve_forever, daemon=True).start()
		config = frappe.get_doc("SMS Settings")
		config.update(
			{
				"sms_gateway_url": self.url,
				"message_parameter": "text",
				"receiver_parameter": "to",
				"use_post": 0,
			}
		)
		config.set("parameters", [])
		config.save(ignore_permissions=True)
		return self

	def __exit__(self, *exc):
		self.server.shutdown()
		self.server.server_close()


def sms_rows(log_name):
	return frappe.get_all(
		"Automation Log Action",
		filters={"parent": log_name, "action_type": "Send SMS"},
		fields=["name", "status", "result", "payload", "response", "attempts", "next_attempt_on"],
		order_by="idx asc",
	)


def log_of(doc, rule):
	return frappe.get_all(
		"Automation Log",
		filters={"reference_doctype": doc.doctype, "reference_name": doc.name, "rule": rule},
		pluck="name",
	)


def setup_masters():
	make_user(SMS_USER, roles=["Sales User"])
	frappe.db.set_value("User", SMS_USER, "mobile_no", "+86 138-0013-8000")
	make_user(NO_MOBILE_USER, roles=["Sales User"])
	frappe.db.set_value("User", NO_MOBILE_USER, "mobile_no", "")
	make_user(NORTH_USER, roles=["Support Team"])
	make_user(MANAGER, roles=["Sales User"])
	make_user(READ_ONLY_CUSTOMERS, roles=["Sales Manager"])
	for territory in (NORTH, SOUTH):
		ensure("Territory", territory, territory_name=territory, parent_territory="All Territories")
	for group in (KEY_GROUP, PLAIN_GROUP):
		ensure(
			"Customer Group", group, customer_group_name=group, parent_customer_group="All Customer Groups"
		)
	make_customer(CUSTOMER)


def reset_state():
	"""Each test starts from the same customer and no SMS waiting from another test."""
	frappe.db.set_value(
		"Customer", CUSTOMER, {"territory": NORTH, "customer_group": PLAIN_GROUP, "account_manager": MANAGER}
	)
	frappe.db.delete(
		"Automation Log Action", {"action_type": "Send SMS", "status": ("in", ("Queued", "Sending"))}
	)


class ReachCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		setup_masters()
		frappe.db.set_single_value("CRM Automation Settings", {"enabled": 1, "max_recursion_depth": 3})

	def setUp(self):
		new_request()
		reset_state()
		# Delivery commits per row; in a test everything stays in the test's transaction.
		self.enterContext(patch.object(frappe.db, "commit"))
		self.enqueued = []
		self.enterContext(patch("frappe.enqueue", side_effect=lambda *a, **kw: self.enqueued.append((a, kw))))

	def tearDown(self):
		delete_test_rules()

	def sms_jobs(self):
		return [
			kw for args, kw in self.enqueued if args and args[0] == "crm_automation.actions.sms.deliver_sms"
		]


class TestSendSms(ReachCase):
	def welcome_rule(self, **action):
		return make_rule(
			"_Test Reach Welcome SMS",
			"Lead",
			"New",
			actions=[
				{
					"action_type": "Send SMS",
					"sms_phone_field": "mobile_no",
					"sms_message": "Welcome {{ doc.first_name }}, thanks for visiting!",
					**action,
				}
			],
		)

	def test_exact_recipients_and_text_after_commit(self):
		with Gateway() as gateway:
			self.welcome_rule(sms_to_users=f"{SMS_USER}\n{NO_MOBILE_USER}")
			lead = make_lead(first_name="Ann", mobile_no="+7 (912) 345-67-89")
			(log,) = log_of(lead, "_Test Reach Welcome SMS")
			self.assertEqual(gateway.received, [], "nothing leaves before the commit")
			(job,) = self.sms_jobs()
			self.assertTrue(job["enqueue_after_commit"])
			self.assertEqual(job["log_name"], log)
			deliver_sms(log)
		text = "Welcome Ann, thanks for visiting!"
		self.assertEqual(gateway.received, [("+79123456789", text), ("+8613800138000", text)])
		rows = sms_rows(log)
		self.assertEqual([r.status for r in rows], ["Success", "Success", "Success", "Skipped"])
		self.assertIn("2 SMS sent, 0 failed", rows[0].result)
		self.assertIn(NO_MOBILE_USER, rows[3].result)
		self.assertIn("no number", rows[3].result)

	def test_invalid_number_is_skipped_with_its_reason(self):
		with Gateway() as gateway:
			self.welcome_rule()
			lead = make_lead(first_name="Bo", mobile_no="12-34")
			(log,) = log_of(lead, "_Test Reach Welcome SMS")
			deliver_sms(log)
		self.assertEqual(gateway.received, [])
		self.assertEqual(self.sms_jobs(), [])
		(summary, skipped) = sms_rows(log)
		self.assertEqual((summary.status, skipped.status), ("Skipped", "Skipped"))
		self.assertIn('"12-34" is not a phone number', skipped.result)

	def test_retry_after_a_500_with_backoff(self):
		with Gateway(statuses=[500]) as gateway:
			self.welcome_rule()
			lead = make_lead(first_name="Cy", mobile_no="13800138000")
			(log,) = log_of(lead, "_Test Reach Welcome SMS")
			deliver_sms(log)
			row = sms_rows(log)[1]
			self.assertEqual((row.status, row.attempts), ("Queued", 1))
			self.assertEqual(json.loads(row.response)["status_code"], 500)
			self.assertIn("gateway overloaded", row.response)
			self.assertEqual(gateway.received, [])
			retry_due_sms()  # not due yet: the backoff holds
			self.assertEqual(gateway.requests, 1)
			later = add_to_date(now_datetime(), minutes=2)
			with patch("crm_automation.actions.sms.now_datetime", return_value=later):
				retry_due_sms()
				retry_due_sms()  # already sent: claimed once only
		self.assertEqual(gateway.received, [("13800138000", "Welcome Cy, thanks for visiting!")])
		self.assertEqual([r.status for r in sms_rows(log)], ["Success", "Success"])
		self.assertEqual(sms_rows(log)[1].attempts, 2)

	def test_nothing_sent_when_the_save_rolls_back(self):
		with Gateway() as gateway:
			self.welcome_rule()
			frappe.db.savepoint("reach_rollback")
			lead = make_lead(first_name="Di", mobile_no="13800138000")
			self.assertTrue(log_of(lead, "_Test Reach Welcome SMS"))
			frappe.db.rollback(save_point="reach_rollback")
			# Whatever runs afterwards (the job, had it been started, or the sweep) finds nothing.
			for job in self.sms_jobs():
				deliver_sms(job["log_name"])
			retry_due_sms()
		self.assertEqual(gateway.received, [])
		self.assertFalse(frappe.db.exists("Lead", lead.name))

	def test_a_failing_gateway_never_breaks_the_save(self):
		with Gateway(statuses=[500, 500, 500, 500]) as gateway:
			self.welcome_rule()
			lead = make_lead(first_name="Ed", mobile_no="13800138000")
			(log,) = log_of(lead, "_Test Reach Welcome SMS")
			later = now_datetime()
			for _attempt in range(4):
				later = add_to_date(later, hours=2)
				with patch("crm_automation.actions.sms.now_datetime", return_value=later):
					retry_due_sms()
		self.assertTrue(frappe.db.exists("Lead", lead.name))
		self.assertEqual(gateway.requests, 4)
		summary, row = sms_rows(log)
		self.assertEqual((row.status, summary.status), ("Failed", "Failed"))
		self.assertIn("Failed after 4 attempts", row.result)
		self.assertEqual(frappe.db.get_value("Automation Log", log, "outcome"), "Failed")

	def test_rule_save_refused_without_sms_settings(self):
		frappe.db.set_single_value("SMS Settings", "sms_gateway_url", "")
		with self.assertRaisesRegex(frappe.ValidationError, "SMS Settings"):
			self.welcome_rule()

	def test_role_and_contact_recipients(self):
		contact = frappe.get_doc(
			{
				"doctype": "Contact",
				"first_name": "Reach Contact",
				"phone_nos": [{"phone": "+49 30 1234567", "is_primary_mobile_no": 1}],
				"is_primary_contact": 1,
				"links": [{"link_doctype": "Customer", "link_name": CUSTOMER}],
			}
		).insert(ignore_permissions=True)
		with Gateway() as gateway:
			make_rule(
				"_Test Reach Order SMS",
				"Sales Order",
				"Submit",
				actions=[
					{
						"action_type": "Send SMS",
						"sms_contact_of": "customer",
						"sms_message": "Order {{ doc.name }} ships today",
					}
				],
			)
			order = make_sales_order(customer=CUSTOMER, submit=True)
			(log,) = log_of(order, "_Test Reach Order SMS")
			deliver_sms(log)
		self.assertEqual(gateway.received, [("+49301234567", f"Order {order.name} ships today")])
		self.assertIn(contact.name, sms_rows(log)[1].result)

	def test_eleven_digit_rule_still_rejects_beside_an_sms_rule(self):
		with Gateway():
			self.welcome_rule()
			make_rule(
				"_Test Reach Eleven Digits",
				"Lead",
				"Validate",
				conditions={"field": "mobile_no", "op": "not like", "value": "___________"},
				actions=[
					{
						"action_type": "Reject",
						"message": "Mobile number {{ doc.mobile_no }} must be 11 digits",
					}
				],
			)
			with self.assertRaisesRegex(frappe.ValidationError, "Mobile number 12345 must be 11 digits"):
				make_lead(first_name="Fay", mobile_no="12345")
			lead = make_lead(first_name="Gus", mobile_no="13800138000")
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "mobile_no"), "13800138000")


class TestLinkedDocuments(ReachCase):
	def test_issue_from_a_customer_in_north_goes_to_the_north_pool(self):
		make_rule(
			"_Test Reach North Pool",
			"Issue",
			"New",
			conditions={"field": "customer.territory", "op": "=", "value": NORTH},
			actions=[{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": NORTH_USER}],
		)
		other = make_customer("_Test Reach South Customer")
		frappe.db.set_value("Customer", other, "territory", SOUTH)
		north_issue = frappe.get_doc({"doctype": "Issue", "subject": "Help", "customer": CUSTOMER}).insert(
			ignore_permissions=True
		)
		south_issue = frappe.get_doc({"doctype": "Issue", "subject": "Help", "customer": other}).insert(
			ignore_permissions=True
		)
		self.assertEqual(open_assignees(north_issue), [NORTH_USER])
		self.assertEqual(open_assignees(south_issue), [])
		trace = frappe.db.get_value(
			"Automation Log", log_of(north_issue, "_Test Reach North Pool")[0], "trace"
		)
		self.assertEqual(json.loads(trace)[0]["label"], "Customer › Territory")

	def test_linked_values_are_fetched_once_for_all_rules(self):
		"""Three rules, four leaves on the customer: one query for the customer while none fires;
		after a rule fires (it may have changed the document or its links) the rest read afresh."""
		leaves = {
			"territory": [{"field": "customer.territory", "op": "=", "value": "Nowhere"}],
			"group": [{"field": "customer.customer_group", "op": "=", "value": "Nothing"}],
			"both": [
				{"field": "customer.territory", "op": "is not set"},
				{"field": "customer.account_manager", "op": "=", "value": "nobody@example.com"},
			],
		}
		for name, conditions in leaves.items():
			make_rule(
				f"_Test Reach Fetch {name}",
				"Issue",
				"New",
				conditions={"any": conditions},
				actions=[{"action_type": "Add Tag", "tag": "reach"}],
			)
		from crm_automation.runtime import linked_values

		with patch.object(linked_values, "load_linked", wraps=linked_values.load_linked) as load:
			issue = frappe.get_doc({"doctype": "Issue", "subject": "Once", "customer": CUSTOMER})
			issue.insert(ignore_permissions=True)
		self.assertEqual(load.call_count, 1)
		self.assertEqual(load.call_args.args[:2], ("Customer", CUSTOMER))
		self.assertEqual(sorted(load.call_args.args[2]), ["account_manager", "customer_group", "territory"])
		self.assertFalse(log_of(issue, "_Test Reach Fetch both"))

	def test_big_order_assigns_the_customers_account_manager(self):
		make_rule(
			"_Test Reach Big Order",
			"Sales Order",
			"Submit",
			conditions={
				"all": [
					{"field": "grand_total", "op": ">", "value": 1000000},
					{"field": "items.qty", "agg": "any", "op": ">=", "value": 100},
				]
			},
			actions=[
				{
					"action_type": "Assign",
					"assign_to_type": "User in Field",
					"to_field": "customer.account_manager",
				},
				{
					"action_type": "Assign",
					"target_link_field": "customer",
					"assign_to_type": "User in Field",
					"to_field": "account_manager",
				},
			],
		)
		small = make_sales_order(customer=CUSTOMER, submit=True)
		self.assertEqual(open_assignees(small), [])
		self.assertEqual(open_assignees(frappe.get_doc("Customer", CUSTOMER)), [])
		big = make_sales_order(
			customer=CUSTOMER,
			submit=True,
			items=[
				{"item_code": make_item(), "qty": 100, "rate": 10001, "delivery_date": small.delivery_date}
			],
		)
		# The order goes to the customer's account manager; the customer too.
		self.assertEqual(open_assignees(big), [MANAGER])
		self.assertEqual(open_assignees(frappe.get_doc("Customer", CUSTOMER)), [MANAGER])
		(log,) = log_of(big, "_Test Reach Big Order")
		rows = frappe.get_all(
			"Automation Log Action", filters={"parent": log}, fields=["status", "result"], order_by="idx asc"
		)
		self.assertEqual([row.status for row in rows], ["Success", "Success"])
		self.assertIn(CUSTOMER, rows[1].result)

	def test_assign_to_an_empty_linked_user_field_is_skipped(self):
		frappe.db.set_value("Customer", CUSTOMER, "account_manager", None)
		make_rule(
			"_Test Reach Manager Missing",
			"Sales Order",
			"Submit",
			actions=[
				{
					"action_type": "Assign",
					"assign_to_type": "User in Field",
					"to_field": "customer.account_manager",
				}
			],
		)
		order = make_sales_order(customer=CUSTOMER, submit=True)
		self.assertEqual(open_assignees(order), [])
		(log,) = log_of(order, "_Test Reach Manager Missing")
		row = frappe.get_all("Automation Log Action", filters={"parent": log}, fields=["status", "result"])[0]
		self.assertEqual(row.status, "Skipped")
		self.assertIn("Account Manager", row.result)

	def opportunity(self, **fields):
		return frappe.get_doc(
			{
				"doctype": "Opportunity",
				"opportunity_from": "Customer",
				"party_name": CUSTOMER,
				"company": frappe.get_all("Company", pluck="name", limit=1)[0],
				**fields,
			}
		).insert(ignore_permissions=True)

	def won_rule(self, **fields):
		return make_rule(
			"_Test Reach Won Opportunity",
			"Opportunity",
			"Value Change",
			trigger_field="status",
			to_value="Closed",
			actions=[
				{
					"action_type": "Set Value",
					"target_link_field": "party_name[Customer]",
					"target_field": "customer_group",
					"value": KEY_GROUP,
				}
			],
			**fields,
		)

	def test_won_opportunity_sets_the_customers_group_and_runs_its_rules(self):
		self.won_rule()
		make_rule(
			"_Test Reach Customer Saved",
			"Customer",
			"Save",
			conditions={"field": "customer_group", "op": "=", "value": KEY_GROUP},
			actions=[{"action_type": "Add Comment", "message": "Now a key account"}],
		)
		opportunity = self.opportunity()
		opportunity.status = "Closed"
		opportunity.save(ignore_permissions=True)
		self.assertEqual(frappe.db.get_value("Customer", CUSTOMER, "customer_group"), KEY_GROUP)
		customer = frappe.get_doc("Customer", CUSTOMER)
		(log,) = log_of(customer, "_Test Reach Customer Saved")
		self.assertEqual(frappe.db.get_value("Automation Log", log, "depth"), 1)

	def test_loop_protection_holds_across_the_linked_save(self):
		frappe.db.set_single_value("CRM Automation Settings", "max_recursion_depth", 1)
		self.addCleanup(frappe.db.set_single_value, "CRM Automation Settings", "max_recursion_depth", 3)
		self.won_rule()
		make_rule(
			"_Test Reach Customer Loop",
			"Customer",
			"Save",
			actions=[{"action_type": "Add Tag", "tag": "reach-loop"}],
		)
		opportunity = self.opportunity()
		opportunity.status = "Closed"
		opportunity.save(ignore_permissions=True)
		self.assertEqual(frappe.db.get_value("Customer", CUSTOMER, "customer_group"), KEY_GROUP)
		reasons = frappe.get_all(
			"Automation Log",
			filters={"reference_name": CUSTOMER, "rule": "_Test Reach Customer Loop"},
			pluck="reason",
		)
		self.assertEqual(len(reasons), 1)
		self.assertIn("depth limit 1", reasons[0])

	def test_run_as_user_without_write_on_the_customer_is_refused(self):
		# At save, as far as can be told without a document.
		with self.assertRaisesRegex(frappe.PermissionError, "may not write .*customer_group.* of .*Customer"):
			self.won_rule(run_as=READ_ONLY_CUSTOMERS)
		# At run time, on the linked document itself: a rule saved while its run-as user could write
		# the Customer, whose rights are gone since.
		rule = self.won_rule()
		frappe.db.set_value("Workflow Rule", rule.name, "run_as", READ_ONLY_CUSTOMERS)
		clear_rule_cache()
		before = frappe.db.get_value("Customer", CUSTOMER, "customer_group")
		opportunity = self.opportunity()
		opportunity.status = "Closed"
		opportunity.save(ignore_permissions=True)
		self.assertEqual(frappe.db.get_value("Customer", CUSTOMER, "customer_group"), before)
		(log,) = log_of(opportunity, "_Test Reach Won Opportunity")
		row = frappe.get_all("Automation Log Action", filters={"parent": log}, fields=["status", "result"])[0]
		self.assertEqual(row.status, "Failed")
		self.assertRegex(row.result, "has no write permission on Customer|may not write customer_group")

	def test_dynamic_link_condition_reads_only_its_type(self):
		make_rule(
			"_Test Reach Party Territory",
			"Opportunity",
			"New",
			conditions={"field": "party_name[Customer].territory", "op": "=", "value": NORTH},
			actions=[{"action_type": "Add Tag", "tag": "reach-north"}],
		)
		from_customer = self.opportunity()
		lead = make_lead(first_name="Party", territory=NORTH)
		from_lead = self.opportunity(opportunity_from="Lead", party_name=lead.name)
		self.assertIn(
			"reach-north", frappe.db.get_value("Opportunity", from_customer.name, "_user_tags") or ""
		)
		self.assertNotIn(
			"reach-north", frappe.db.get_value("Opportunity", from_lead.name, "_user_tags") or ""
		)

	def test_empty_link_skips_the_action(self):
		self.won_rule()
		lead = make_lead(first_name="Linked")
		opportunity = self.opportunity(opportunity_from="Lead", party_name=lead.name)
		opportunity.status = "Closed"
		opportunity.save(ignore_permissions=True)
		(log,) = log_of(opportunity, "_Test Reach Won Opportunity")
		row = frappe.get_all("Automation Log Action", filters={"parent": log}, fields=["status", "result"])[0]
		self.assertEqual(row.status, "Skipped")
		self.assertIn("does not link to a Customer", row.result)


class TestEscalationSms(ReachCase):
	def tearDown(self):
		super().tearDown()
		if frappe.db.exists("Escalation Policy", "_Test Reach On Call"):
			frappe.delete_doc("Escalation Policy", "_Test Reach On Call", force=True)

	def test_a_level_texts_the_on_call_user(self):
		import datetime

		from frappe.utils import get_datetime

		from crm_automation.escalation import clear_policy_cache, sweep

		with Gateway() as gateway:
			frappe.get_doc(
				{
					"doctype": "Escalation Policy",
					"policy_name": "_Test Reach On Call",
					"document_type": "Lead",
					"enabled": 1,
					"clock_start": "Creation",
					"levels": [
						{
							"level": 1,
							"after": 1,
							"unit": "Hours",
							"action_type": "Send SMS",
							"to_users": SMS_USER,
							"message": "{{ doc.name }} waits for you",
						}
					],
				}
			).insert()
			clear_policy_cache()
			lead = make_lead(first_name="Escalated")
			fired = sweep(get_datetime(lead.creation) + datetime.timedelta(minutes=61))
			self.assertGreaterEqual(fired, 1)
			(log,) = frappe.get_all(
				"Automation Log",
				filters={"rule": "_Test Reach On Call", "reference_name": lead.name},
				pluck="name",
			)
			(job,) = self.sms_jobs()
			deliver_sms(job["log_name"])
		self.assertEqual(gateway.received, [("+8613800138000", f"{lead.name} waits for you")])
		self.assertEqual([r.status for r in sms_rows(log)], ["Success", "Success"])

	def test_policy_with_sms_refused_without_sms_settings(self):
		frappe.db.set_single_value("SMS Settings", "sms_gateway_url", "")
		policy = frappe.get_doc(
			{
				"doctype": "Escalation Policy",
				"policy_name": "_Test Reach On Call",
				"document_type": "Lead",
				"enabled": 1,
				"clock_start": "Creation",
				"levels": [
					{
						"level": 1,
						"after": 1,
						"unit": "Hours",
						"action_type": "Send SMS",
						"to_users": SMS_USER,
						"message": "x",
					}
				],
			}
		)
		with self.assertRaisesRegex(frappe.ValidationError, "SMS Settings"):
			policy.insert()


class TestDeskPickers(FrappeTestCase):
	def test_condition_builder_offers_linked_fields_and_aggregates(self):
		from crm_automation.api.linked_field_pickers import get_linked_condition_fields

		entries = {(e["fieldname"], e.get("agg")): e for e in get_linked_condition_fields("Sales Order")}
		territory = entries[("customer.territory", None)]
		self.assertEqual((territory["label"], territory["fieldtype"]), ("Customer › Territory", "Link"))
		self.assertNotIn("changed", [o["operator"] for o in territory["operators"]])
		self.assertEqual(entries[("items", "count")]["fieldtype"], "Int")
		self.assertIn(("items.qty", "any"), entries)
		self.assertIn(("items.amount", "sum"), entries)
		self.assertNotIn(("items.item_code", "sum"), entries)
		self.assertFalse([key for key in entries if key[0].startswith("owner.")])

	def test_action_pickers(self):
		from crm_automation.api.linked_field_pickers import get_action_pickers

		lead = get_action_pickers("Lead")
		self.assertIn("mobile_no", [o["value"] for o in lead["phone_fields"]])
		self.assertNotIn("email_id", [o["value"] for o in lead["phone_fields"]])
		opportunity = get_action_pickers("Opportunity")
		self.assertIn("party_name[Customer]", [o["value"] for o in opportunity["contact_of"]])
		self.assertIn("party_name[Customer]", [o["value"] for o in opportunity["link_targets"]])
		self.assertIn("contact_mobile", [o["value"] for o in opportunity["phone_fields"]])
		order = get_action_pickers("Sales Order")
		self.assertIn("customer.account_manager", [o["value"] for o in order["linked_user_fields"]])

	def test_pickers_need_rule_read_access(self):
		from crm_automation.api.linked_field_pickers import get_action_pickers

		make_user(NORTH_USER, roles=["Support Team"])
		frappe.set_user(NORTH_USER)
		self.addCleanup(frappe.set_user, "Administrator")
		with self.assertRaises(frappe.PermissionError):
			get_action_pickers("Lead")


class TestDryRun(ReachCase):
	def test_dry_run_reads_linked_values_and_previews_linked_actions_and_sms(self):
		from crm_automation.dry_run import dry_run

		with Gateway() as gateway:
			make_rule(
				"_Test Reach Dry",
				"Sales Order",
				"Submit",
				conditions={
					"all": [
						{"field": "customer.territory", "op": "=", "value": NORTH},
						{"field": "items", "agg": "count", "op": ">=", "value": 1},
					]
				},
				actions=[
					{
						"action_type": "Set Value",
						"target_link_field": "customer",
						"target_field": "customer_group",
						"value": KEY_GROUP,
					},
					{
						"action_type": "Send SMS",
						"sms_to_users": f"{SMS_USER}\n{NO_MOBILE_USER}",
						"sms_message": "Order {{ doc.name }} for {{ doc.customer }}",
					},
				],
			)
			order = make_sales_order(customer=CUSTOMER)
			result = dry_run("_Test Reach Dry", names=[order.name], log=False)
		(entry,) = result["results"]
		self.assertEqual(entry["outcome"], "Fired")
		self.assertEqual([t["label"] for t in entry["trace"]], ["Customer › Territory", "number of Items"])
		set_value, sms = entry["actions"]
		self.assertEqual(set_value["target"], {"doctype": "Customer", "name": CUSTOMER})
		self.assertIn(f"{PLAIN_GROUP} → {KEY_GROUP}", set_value["summary"])
		self.assertEqual(sms["message"], f"Order {order.name} for {CUSTOMER}")
		self.assertEqual([r["number"] for r in sms["recipients"]], ["+8613800138000", None])
		self.assertEqual(frappe.db.get_value("Customer", CUSTOMER, "customer_group"), PLAIN_GROUP)
		self.assertEqual(gateway.requests, 0)
