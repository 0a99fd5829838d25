# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import datetime
import json
from collections import Counter
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, add_to_date, get_datetime, now_datetime, nowdate

from crm_automation.runtime.workflow_rules import clear_rule_cache, get_rules
from crm_automation.tests.concurrency import reports, run_in_processes
from crm_automation.tests.factories import (
	delete_test_rules,
	ensure,
	logs_for,
	make_customer,
	make_lead,
	make_opportunity,
	make_rule,
	make_sales_order,
	make_user,
	new_request,
	open_assignees,
)
from crm_automation.tests.webhook_receiver import loopback_allowed

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User Group", "Email Template", "Tag", "User"]

SALES_USERS = [f"crm-auto-sales-{i}@example.com" for i in (1, 2, 3)]


def leaf(field, op, value=None):
	node = {"field": field, "op": op}
	if value is not None:
		node["value"] = value
	return node


def setup_masters():
	ensure("Lead Source", "Live Stream", source_name="Live Stream")
	ensure("Lead Source", "Exhibition", source_name="Exhibition")
	ensure("Territory", "_Test CRM Territory", territory_name="_Test CRM Territory", parent_territory="All Territories")
	ensure("Industry Type", "_Test CRM IT", industry="_Test CRM IT")
	for user in SALES_USERS:
		make_user(user, roles=["Sales User"])


class TestWorkflowRuleScenarios(FrappeTestCase):
	"""The administrator scenarios of the Workflow Rule issue, one test each, on a real site."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		setup_masters()
		frappe.db.set_single_value("CRM Automation Settings", {"enabled": 1, "max_recursion_depth": 3})

	def setUp(self):
		new_request()

	def tearDown(self):
		delete_test_rules()

	def test_assigns_lead_by_territory_and_industry_to_named_user(self):
		"""Scenario 1a: a Lead in territory X and industry IT goes to one named user."""
		make_rule(
			"_Test Assign IT Leads",
			"Lead",
			"New",
			conditions={"all": [leaf("territory", "=", "_Test CRM Territory"), leaf("industry", "=", "_Test CRM IT")]},
			actions=[{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": SALES_USERS[0]}],
		)
		lead = make_lead(territory="_Test CRM Territory", industry="_Test CRM IT")
		other = make_lead(territory="_Test CRM Territory")
		self.assertEqual(open_assignees(lead), [SALES_USERS[0]])
		self.assertEqual(open_assignees(other), [])
		self.assertIn(SALES_USERS[0], frappe.db.get_value("Lead", lead.name, "_assign"))
		log = logs_for(lead, "_Test Assign IT Leads")
		self.assertEqual([row.outcome for row in log], ["Success"])

	def test_round_robin_spreads_thirty_leads_evenly(self):
		"""Scenario 1b: round robin over three users spreads 30 Leads 10/10/10."""
		make_rule(
			"_Test Round Robin",
			"Lead",
			"New",
			conditions={"all": [leaf("territory", "=", "_Test CRM Territory")]},
			actions=[{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": "\n".join(SALES_USERS)}],
		)
		leads = [make_lead(first_name=f"RR {i}", territory="_Test CRM Territory") for i in range(30)]
		counts = Counter(user for lead in leads for user in open_assignees(lead))
		self.assertEqual(counts, Counter({user: 10 for user in SALES_USERS}))

	def test_welcome_email_template_chosen_by_source(self):
		"""Scenario 2: a welcome email is queued for a new Lead, a different template by source."""
		ensure_email_account()
		ensure("Email Template", "_Test Welcome Live", subject="Welcome {{ doc.first_name }}", response="Here is the e-brochure")
		ensure("Email Template", "_Test Welcome Expo", subject="Thanks for visiting, {{ doc.first_name }}", response="Samples are on their way")
		make_rule(
			"_Test Welcome Email",
			"Lead",
			"New",
			branches=[
				{"branch_name": "Live Stream", "conditions": {"all": [leaf("source", "=", "Live Stream")]}},
				{"branch_name": "Exhibition", "conditions": {"all": [leaf("source", "=", "Exhibition")]}},
			],
			actions=[
				{"action_type": "Send Email", "branch": "Live Stream", "email_template": "_Test Welcome Live", "to_field": "email_id"},
				{"action_type": "Send Email", "branch": "Exhibition", "email_template": "_Test Welcome Expo", "to_field": "email_id"},
				{"action_type": "Create ToDo", "branch": "Exhibition", "message": "Ship samples to {{ doc.company_name }}", "to_owner": 1},
			],
		)
		live = make_lead(first_name="Lara", source="Live Stream", email_id="lara@example.com")
		expo = make_lead(first_name="Emil", source="Exhibition", email_id="emil@example.com")
		walk_in = make_lead(first_name="Walt", email_id="walt@example.com")

		self.assertEqual(queued_subjects(live), ["Welcome Lara"])
		self.assertEqual(queued_subjects(expo), ["Thanks for visiting, Emil"])
		self.assertEqual(queued_subjects(walk_in), [])
		self.assertEqual(logs_for(expo, "_Test Welcome Email")[0].branch, "Exhibition")
		self.assertTrue(frappe.db.exists("ToDo", {"reference_name": expo.name, "description": ("like", "%Ship samples%")}))
		self.assertTrue(
			frappe.db.exists("Communication", {"reference_doctype": "Lead", "reference_name": live.name}),
			"the email is on the Lead's timeline",
		)

	def test_large_opportunity_notifies_sales_manager(self):
		"""Scenario 3: an Opportunity above 1,000,000 notifies the sales manager, once as it crosses."""
		manager = make_user("crm-auto-sales-manager@example.com", roles=["Sales Manager"])
		make_rule(
			"_Test Large Deal",
			"Opportunity",
			"Save",
			fire_mode="Each Time Condition Becomes True",
			conditions={"all": [leaf("opportunity_amount", ">", 1000000)]},
			actions=[{"action_type": "System Notification", "to_role": "Sales Manager", "subject": "Large deal {{ doc.name }}"}],
		)
		small = make_opportunity(opportunity_amount=50000)
		self.assertFalse(notifications(manager, small))
		new_request()
		small.opportunity_amount = 2500000
		small.save()
		self.assertEqual(notifications(manager, small), [f"Large deal {small.name}"])
		new_request()
		small.opportunity_amount = 2600000
		small.save()
		self.assertEqual(len(notifications(manager, small)), 1, "already above: not notified again")

	def test_proposal_stage_creates_linked_draft_quotation(self):
		"""Scenario 4: sales stage changed to Proposal/Price Quote → a draft Quotation linked to it."""
		ensure("Sales Stage", "Proposal/Price Quote", stage_name="Proposal/Price Quote")
		make_rule(
			"_Test Quote On Proposal",
			"Opportunity",
			"Value Change",
			trigger_field="sales_stage",
			to_value="Proposal/Price Quote",
			actions=[{"action_type": "Create Document", "target_doctype": "Quotation", "use_mapper": 1}],
		)
		opportunity = make_opportunity()
		self.assertFalse(frappe.db.exists("Quotation", {"opportunity": opportunity.name}))
		new_request()
		opportunity.sales_stage = "Proposal/Price Quote"
		opportunity.save()
		quotation = frappe.get_all("Quotation", filters={"opportunity": opportunity.name}, fields=["name", "docstatus"])
		self.assertEqual(len(quotation), 1)
		self.assertEqual(quotation[0].docstatus, 0)
		log = frappe.get_doc("Automation Log", logs_for(opportunity, "_Test Quote On Proposal")[0].name)
		self.assertEqual((log.actions[0].created_doctype, log.actions[0].created_name), ("Quotation", quotation[0].name))

	def test_sales_order_status_change_notifies_warehouse_role(self):
		"""Scenario 5: a Sales Order's status changes (also through db_set, as ERPNext closes it)."""
		stock_user = make_user("crm-auto-warehouse@example.com", roles=["Stock User"])
		make_rule(
			"_Test SO Status",
			"Sales Order",
			"Value Change",
			trigger_field="status",
			actions=[
				{"action_type": "System Notification", "to_role": "Stock User", "subject": "{{ doc.name }}: {{ old_doc.status }} → {{ doc.status }}"}
			],
		)
		order = make_sales_order(submit=True)
		new_request()  # closing is another request from the desk, on a freshly loaded order
		order = frappe.get_doc("Sales Order", order.name)
		order.update_status("Closed")  # ERPNext writes this with db_set
		subjects = notifications(stock_user, order)
		self.assertIn(f"{order.name}: To Deliver and Bill → Closed", subjects)

	def test_time_trigger_creates_todo_three_days_before_delivery_once(self):
		"""Scenario 6: three days before delivery → a ToDo for the owner, once, though swept twice."""
		from crm_automation.scheduler import run_time_trigger

		make_rule(
			"_Test Delivery Reminder",
			"Sales Order",
			"Time",
			time_field="delivery_date",
			time_offset=3,
			time_unit="Days",
			time_direction="Before",
			conditions={"all": [leaf("docstatus", "=", 1)]},
			actions=[{"action_type": "Create ToDo", "message": "Prepare delivery of {{ doc.name }}", "to_owner": 1}],
		)
		due = make_sales_order(delivery_in_days=3, submit=True)
		later = make_sales_order(delivery_in_days=10, submit=True)
		with patch.object(frappe.db, "commit"):
			first = run_time_trigger("_Test Delivery Reminder")
			second = run_time_trigger("_Test Delivery Reminder")
		self.assertGreaterEqual(first, 1)
		self.assertEqual(second, 0)
		self.assertEqual(reminders(due), 1)
		self.assertEqual(reminders(later), 0)

	def test_time_trigger_catches_up_after_downtime_within_window(self):
		"""Missed occurrences fire once after the scheduler was down, within the settings' window."""
		from crm_automation.scheduler import run_time_trigger

		make_rule(
			"_Test Catch Up",
			"Sales Order",
			"Time",
			time_field="delivery_date",
			time_offset=0,
			time_unit="Days",
			time_direction="After",
			actions=[{"action_type": "Add Comment", "message": "Delivery day"}],
		)
		today = make_sales_order(delivery_in_days=0)
		two_days_ago = make_sales_order(delivery_in_days=-2)
		# The scheduler was down from before midnight and comes back at 06:00: today's midnight
		# occurrence was missed and fires now; the one two days ago is outside the 24 h window.
		back_at = get_datetime(nowdate()) + datetime.timedelta(hours=6)
		with patch.object(frappe.db, "commit"):
			run_time_trigger("_Test Catch Up", now=back_at)
			run_time_trigger("_Test Catch Up", now=add_to_date(back_at, minutes=5))
		self.assertEqual(comments(today, "Delivery day"), 1, "missed at midnight: fires once after downtime")
		self.assertEqual(comments(two_days_ago, "Delivery day"), 0, "outside the 24 h window: not fired")

	def test_new_issue_classified_and_load_balanced(self):
		"""Scenario 7: a new Issue is classified from its subject and assigned by load balancing."""
		ensure("Issue Type", "_Test Billing")
		ensure("Issue Priority", "High")
		ensure("Role", "_Test CRM Support Desk", role_name="_Test CRM Support Desk", desk_access=1)
		agents = [make_user(f"crm-auto-support-{i}@example.com", roles=["Support Team", "_Test CRM Support Desk"]) for i in (1, 2)]
		busy = frappe.get_doc({"doctype": "Issue", "subject": "Earlier ticket"}).insert()
		frappe.get_doc({"doctype": "ToDo", "allocated_to": agents[0], "reference_type": "Issue", "reference_name": busy.name, "description": "x"}).insert()
		make_rule(
			"_Test Classify Issue",
			"Issue",
			"Validate",
			conditions={"all": [leaf("subject", "like", "%refund%")]},
			actions=[
				{"action_type": "Set Value", "target_field": "issue_type", "value": "_Test Billing"},
				{"action_type": "Set Value", "target_field": "priority", "value": "High"},
			],
		)
		make_rule(
			"_Test Balance Support",
			"Issue",
			"New",
			actions=[{"action_type": "Assign", "assign_to_type": "Role", "to_role": "_Test CRM Support Desk", "assign_strategy": "Load Balancing"}],
		)
		issue = frappe.get_doc({"doctype": "Issue", "subject": "Please refund my order"}).insert()
		self.assertEqual((issue.issue_type, issue.priority), ("_Test Billing", "High"))
		self.assertEqual(frappe.db.get_value("Issue", issue.name, "issue_type"), "_Test Billing")
		self.assertEqual(open_assignees(issue), [agents[1]], "the agent with fewer open Issues gets it")

	def test_two_rules_that_trigger_each_other(self):
		"""Scenario 9: the static check names the cycle; at run time the depth limit stops it."""
		make_rule(
			"_Test Loop A",
			"ToDo",
			"New",
			conditions={"all": [leaf("description", "like", "%loop-test%")]},
			actions=[{"action_type": "Add Comment", "message": "loop-test comment"}],
		)
		frappe.clear_messages()
		rule_b = make_rule(
			"_Test Loop B",
			"Comment",
			"New",
			conditions={"all": [leaf("comment_type", "=", "Comment"), leaf("content", "like", "%loop-test%")]},
			actions=[
				{
					"action_type": "Create Document",
					"target_doctype": "ToDo",
					"use_mapper": 0,
					"field_map": json.dumps({"description": "loop-test again", "allocated_to": "Administrator"}),
				}
			],
		)
		self.assertIn(["_Test Loop A", "_Test Loop B", "_Test Loop A"], rule_b.flags.loop_cycles)
		self.assertIn("_Test Loop A → _Test Loop B → _Test Loop A", str(frappe.message_log))

		frappe.get_doc({"doctype": "ToDo", "description": "loop-test start", "allocated_to": "Administrator"}).insert()
		stopped = frappe.get_all(
			"Automation Log",
			filters={"rule": ("in", ["_Test Loop A", "_Test Loop B"]), "reason": ("like", "%depth limit 3%")},
			pluck="reason",
		)
		self.assertEqual(len(stopped), 1)
		self.assertIn("_Test Loop A → _Test Loop B → _Test Loop A", stopped[0])
		self.assertEqual(frappe.db.count("ToDo", {"description": "loop-test again"}), 1)

	def test_unreachable_webhook_keeps_the_save_and_retries(self):
		"""Scenario 10: the save succeeds, the failure is logged and retried with backoff."""
		from crm_automation.actions import deliver_webhooks, retry_due_webhooks

		self.enterContext(loopback_allowed())  # the network guard refuses 127.0.0.1 otherwise

		make_rule(
			"_Test Webhook",
			"Lead",
			"New",
			actions=[{"action_type": "Webhook", "url": "http://127.0.0.1:9/hook", "timeout": 2, "retries": 1, "secret": "s3cret"}],
		)
		lead = make_lead(first_name="Webhook")
		self.assertTrue(frappe.db.exists("Lead", lead.name))
		log_name = logs_for(lead, "_Test Webhook")[0].name
		self.assertEqual(frappe.get_doc("Automation Log", log_name).actions[0].status, "Queued")

		with patch.object(frappe.db, "commit"):
			deliver_webhooks(log_name)
			row = frappe.get_doc("Automation Log", log_name).actions[0]
			self.assertEqual((row.status, row.attempts), ("Queued", 1))
			self.assertIn("retrying", row.result)
			self.assertIn("Connection refused", row.response)
			frappe.db.set_value("Automation Log Action", row.name, "next_attempt_on", add_to_date(now_datetime(), minutes=-1))
			retry_due_webhooks()
		log = frappe.get_doc("Automation Log", log_name)
		self.assertEqual((log.actions[0].status, log.actions[0].attempts), ("Failed", 2))
		self.assertEqual(log.outcome, "Failed")

	def test_failing_action_never_breaks_the_save_and_disables_rule_after_threshold(self):
		"""A failing action is logged with its traceback, the owner is told, and the rule switches
		itself off after N consecutive failures."""
		frappe.db.set_single_value("CRM Automation Settings", "failure_threshold", 2)
		make_rule(
			"_Test Failing",
			"Lead",
			"New",
			actions=[
				{"action_type": "Set Value", "target_field": "territory", "value": "No Such Territory"},
				{"action_type": "Add Comment", "message": "still runs"},
			],
		)
		first = make_lead(first_name="Fail 1")
		log = frappe.get_doc("Automation Log", logs_for(first, "_Test Failing")[0].name)
		self.assertEqual(log.outcome, "Failed")
		self.assertEqual([row.status for row in log.actions], ["Failed", "Success"])
		self.assertEqual("Territory No Such Territory does not exist (for territory)", log.actions[0].result)
		self.assertIn("Traceback", log.error)
		self.assertEqual(frappe.db.get_value("Lead", first.name, "territory"), first.territory, "nothing half-written")
		self.assertEqual(comments(first, "still runs"), 1)
		# Retryable: once the data is fixed, the failed action is run again from the log.
		from crm_automation.api import retry_failed_actions

		ensure("Territory", "No Such Territory", territory_name="No Such Territory", parent_territory="All Territories")
		self.assertEqual(retry_failed_actions(log.name), "Success")
		self.assertEqual(frappe.db.get_value("Lead", first.name, "territory"), "No Such Territory")
		frappe.delete_doc("Territory", "No Such Territory", force=True)
		new_request()
		make_lead(first_name="Fail 2")
		new_request()
		make_lead(first_name="Fail 3")
		rule = frappe.get_doc("Workflow Rule", "_Test Failing")
		self.assertEqual((rule.enabled, rule.consecutive_failures), (0, 2), "the retry's success did not reset it: runs count, retries do not")
		self.assertIn("2 consecutive failures", rule.disabled_reason)
		self.assertTrue(
			frappe.db.exists("Notification Log", {"document_name": "_Test Failing", "for_user": rule.owner})
		)
		frappe.db.set_single_value("CRM Automation Settings", "failure_threshold", 5)

	def test_validate_set_value_writes_in_the_same_save_and_after_save_writes_once(self):
		"""Set Value on Validate changes the document being saved; after save it writes once."""
		make_rule(
			"_Test Set After Save",
			"Lead",
			"Save",
			conditions={"all": [leaf("source", "=", "Exhibition")]},
			actions=[{"action_type": "Set Value", "target_field": "company_name", "value": "{{ doc.first_name }} Trading"}],
		)
		lead = make_lead(first_name="Setty", source="Exhibition")
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "company_name"), "Setty Trading")
		self.assertEqual(len(logs_for(lead, "_Test Set After Save")), 1, "its own write did not re-trigger it")

	def test_doctype_without_rules_has_no_index_entry(self):
		"""The save of a doctype without rules finds nothing in the cached index."""
		self.assertEqual(get_rules("Lead", "on_submit"), ())
		self.assertEqual(get_rules("Item", "on_update"), ())


class TestRoundRobinUnderConcurrency(FrappeTestCase):
	"""Scenario 1c: round robin stays 10/10/10 when two processes save Leads at the same time."""

	def test_two_processes_saving_at_once(self):
		setup_masters()
		ensure("Territory", "_Test CRM Concurrent", territory_name="_Test CRM Concurrent", parent_territory="All Territories")
		make_rule(
			"_Test Concurrent Round Robin",
			"Lead",
			"New",
			conditions={"all": [leaf("territory", "=", "_Test CRM Concurrent")]},
			actions=[{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": "\n".join(SALES_USERS)}],
		)
		frappe.db.commit()  # the other processes must see the rule and the users
		try:
			run_in_processes(
				frappe.local.site,
				[
					("crm_automation.tests.concurrency.insert_leads", (15, "Proc A", "_Test CRM Concurrent", "_Test CRM IT")),
					("crm_automation.tests.concurrency.insert_leads", (15, "Proc B", "_Test CRM Concurrent", "_Test CRM IT")),
				],
			)
			leads = frappe.get_all("Lead", filters={"territory": "_Test CRM Concurrent"}, pluck="name")
			self.assertEqual(len(leads), 30)
			todos = frappe.get_all("ToDo", filters={"reference_type": "Lead", "reference_name": ("in", leads), "status": "Open"}, pluck="allocated_to")
			self.assertEqual(Counter(todos), Counter({user: 10 for user in SALES_USERS}))
		finally:
			leads = frappe.get_all("Lead", filters={"territory": "_Test CRM Concurrent"}, pluck="name")
			if leads:
				frappe.db.delete("ToDo", {"reference_type": "Lead", "reference_name": ("in", leads)})
				frappe.db.delete("Automation Log", {"reference_doctype": "Lead", "reference_name": ("in", leads)})
				frappe.db.delete("Lead", {"name": ("in", leads)})
			frappe.delete_doc("Workflow Rule", "_Test Concurrent Round Robin", force=True)
			frappe.db.commit()


class TestTimeTriggerConcurrentSweeps(FrappeTestCase):
	"""Two workers sweeping at the same moment fire each occurrence once."""

	def test_two_sweeps_at_once(self):
		customer = make_customer("_Test CRM Sweep Customer")
		make_rule(
			"_Test Concurrent Sweep",
			"Sales Order",
			"Time",
			time_field="delivery_date",
			time_offset=2,
			time_unit="Days",
			time_direction="Before",
			# Only this test's orders: due orders other tests left behind would change the counts, and
			# past 100 due the sweep hands them to chunk jobs that no worker runs here.
			conditions={"all": [leaf("customer", "=", "_Test CRM Sweep Customer")]},
			actions=[{"action_type": "Add Comment", "message": "concurrent sweep"}],
		)
		orders = [make_sales_order(delivery_in_days=2, customer=customer) for _ in range(5)]
		frappe.db.commit()
		try:
			outputs = run_in_processes(
				frappe.local.site,
				[("crm_automation.tests.concurrency.sweep_time_rule", ("_Test Concurrent Sweep",))] * 2,
			)
			# Read in a transaction begun after the processes committed: under REPEATABLE READ a read view
			# this process opened earlier (any read since its last commit) would hide their comments.
			frappe.db.rollback()
			found = reports(outputs)
			counts = [comments(order, "concurrent sweep") for order in orders]
			why = f"comments per order {counts}; what each process fired and swallowed: {found}"
			self.assertEqual([r.get("error_logs") or r.get("failed_runs") for r in found], [[], []], why)
			self.assertEqual(sum(r["fired"] for r in found), len(orders), why)
			self.assertEqual(counts, [1] * len(orders), why)
		finally:
			names = [o.name for o in orders]
			frappe.db.delete("Comment", {"reference_doctype": "Sales Order", "reference_name": ("in", names)})
			frappe.db.delete("Automation Log", {"reference_name": ("in", names)})
			frappe.db.delete("Automation Occurrence", {"reference_name": ("in", names)})
			for order in orders:
				frappe.delete_doc("Sales Order", order.name, force=True)
			frappe.delete_doc("Workflow Rule", "_Test Concurrent Sweep", force=True)
			frappe.db.commit()


class TestRejectOnValidate(FrappeTestCase):
	"""Scenario 8: a Lead whose mobile number is not 11 digits is rejected with a clear message."""

	def test_reject_invalid_mobile_number(self):
		make_rule(
			"_Test Mobile 11 Digits",
			"Lead",
			"Validate",
			conditions={"all": [leaf("mobile_no", "is set")]},
			condition_expression='not regex_match(r"\\d{11}", doc.mobile_no)',
			actions=[{"action_type": "Reject", "message": "Mobile number {{ doc.mobile_no }} must be 11 digits"}],
		)
		good = make_lead(first_name="Good Mobile", mobile_no="01234567890")
		self.assertTrue(frappe.db.exists("Lead", good.name))
		with self.assertRaisesRegex(frappe.ValidationError, "Mobile number 12345 must be 11 digits"):
			make_lead(first_name="Bad Mobile", mobile_no="12345")
		frappe.db.rollback()  # what the request handler does after the exception
		rejected = frappe.get_all(
			"Automation Log", filters={"rule": "_Test Mobile 11 Digits", "outcome": "Rejected"}, pluck="reason"
		)
		self.assertEqual(rejected, ["Mobile number 12345 must be 11 digits"])
		self.assertFalse(frappe.db.exists("Lead", {"first_name": "Bad Mobile"}))
		frappe.db.delete("Automation Log", {"rule": "_Test Mobile 11 Digits"})
		frappe.db.commit()


class TestWorkflowRuleBadInput(FrappeTestCase):
	"""Bad input: a clear error on save naming the row and the field, and nothing saved."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		setup_masters()
		make_user("crm-auto-disabled@example.com", enabled=0)

	def assert_rejected(self, pattern, **rule):
		name = "_Test Bad Rule"
		values = {"trigger": "New", "document_type": "Lead", "actions": [{"action_type": "Add Comment", "message": "x"}]}
		values.update(rule)
		with self.assertRaisesRegex(frappe.ValidationError, pattern):
			make_rule(name, values.pop("document_type"), values.pop("trigger"), **values)
		self.assertFalse(frappe.db.exists("Workflow Rule", name))

	def test_unknown_field(self):
		self.assert_rejected('Conditions.*unknown field "no_such_field"', conditions={"all": [leaf("no_such_field", "=", 1)]})

	def test_operator_that_does_not_fit(self):
		self.assert_rejected('operator "like" does not fit annual_revenue \\(Currency\\)', conditions={"all": [leaf("annual_revenue", "like", "1")]})

	def test_value_of_wrong_type(self):
		self.assert_rejected('"abc" is not a number for annual_revenue \\(Currency\\)', conditions={"all": [leaf("annual_revenue", ">", "abc")]})

	def test_broken_jinja(self):
		self.assert_rejected("Actions, row 1, .*Message.*the Jinja template does not compile", actions=[{"action_type": "Add Comment", "message": "{{ doc.name "}])

	def test_expression_with_unavailable_name(self):
		self.assert_rejected("Advanced Condition uses .*open.*, which is not available", condition_expression="open('x')")

	def test_broken_expression(self):
		self.assert_rejected("Advanced Condition.*does not run", condition_expression="doc.lead_name ==")

	def test_expression_naming_an_unknown_field(self):
		self.assert_rejected("Advanced Condition: .*Lead.* has no field .*lead_nmae", condition_expression="doc.lead_nmae == 'x'")

	def test_webhook_url_not_http(self):
		self.assert_rejected('Actions, row 1, URL.*"ftp://example.com" is not an http\\(s\\) URL', actions=[{"action_type": "Webhook", "url": "ftp://example.com"}])

	def test_assignment_to_missing_user(self):
		self.assert_rejected("Actions, row 1: user .*nobody@example.com.* does not exist", actions=[{"action_type": "Assign", "to_users": "nobody@example.com"}])

	def test_assignment_to_disabled_user(self):
		self.assert_rejected("Actions, row 1: user .*crm-auto-disabled@example.com.* is disabled", actions=[{"action_type": "Assign", "to_users": "crm-auto-disabled@example.com"}])

	def test_reject_outside_validate(self):
		self.assert_rejected("Actions, row 1, Action.*Reject only works with the Validate trigger", actions=[{"action_type": "Reject", "message": "no"}])

	def test_select_value_not_an_option(self):
		self.assert_rejected('"Frozen" is not one of the options', conditions={"all": [leaf("status", "=", "Frozen")]})

	def test_branch_that_does_not_exist(self):
		self.assert_rejected('Actions, row 1, Branch.*no branch is named "Ghost"', actions=[{"action_type": "Add Comment", "message": "x", "branch": "Ghost"}])


def ensure_email_account():
	if frappe.db.exists("Email Account", {"default_outgoing": 1, "enable_outgoing": 1}):
		return
	frappe.get_doc(
		{
			"doctype": "Email Account",
			"email_account_name": "_Test CRM Automation Outgoing",
			"email_id": "crm-automation@example.com",
			"enable_outgoing": 1,
			"default_outgoing": 1,
			"smtp_server": "localhost",
			"smtp_port": 25,
			"no_smtp_authentication": 1,
			"awaiting_password": 0,
		}
	).insert(ignore_permissions=True)


def queued_subjects(lead):
	communications = frappe.get_all(
		"Communication", filters={"reference_doctype": "Lead", "reference_name": lead.name}, pluck="name"
	)
	if not communications:
		return []
	queues = frappe.get_all("Email Queue", filters={"communication": ("in", communications)}, pluck="message")
	return [subject_of(message) for message in queues]


def subject_of(message):
	import email

	from frappe.utils import cstr

	return str(email.header.make_header(email.header.decode_header(email.message_from_string(cstr(message))["Subject"])))


def notifications(user, doc):
	return frappe.get_all(
		"Notification Log",
		filters={"for_user": user, "document_type": doc.doctype, "document_name": doc.name},
		pluck="subject",
	)


def reminders(order):
	return frappe.db.count("ToDo", {"reference_type": "Sales Order", "reference_name": order.name, "description": ("like", "%Prepare delivery%")})


def comments(doc, text):
	return frappe.db.count(
		"Comment", {"reference_doctype": doc.doctype, "reference_name": doc.name, "content": ("like", f"%{text}%")}
	)


class TestTriggersAndActions(FrappeTestCase):
	"""The remaining triggers and action variants, each as an administrator would configure it."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		setup_masters()

	def setUp(self):
		new_request()

	def tearDown(self):
		delete_test_rules()

	def test_submit_cancel_and_delete_triggers(self):
		"""Submit and Cancel fire on submittable documents; Delete fires before the row goes."""
		for trigger in ("Submit", "Cancel"):
			make_rule(f"_Test On {trigger}", "Sales Order", trigger, actions=[{"action_type": "Add Comment", "message": f"{trigger.lower()}ted"}])
		make_rule("_Test On Delete", "Lead", "Delete", actions=[{"action_type": "System Notification", "to_users": "Administrator", "subject": "Deleted {{ doc.name }}"}])
		order = make_sales_order(submit=True)
		self.assertEqual(comments(order, "submitted"), 1)
		new_request()
		order.cancel()
		self.assertEqual(comments(order, "cancelted"), 1)
		lead = make_lead(first_name="Doomed")
		lead.delete()
		self.assertFalse(frappe.db.exists("Lead", lead.name))
		# Frappe deletes the document's notifications with it; the log of the run stays.
		self.assertEqual([log.outcome for log in logs_for(lead, "_Test On Delete")], ["Success"])
		with self.assertRaisesRegex(frappe.ValidationError, "is not submittable"):
			make_rule("_Test Submit Lead", "Lead", "Submit", actions=[{"action_type": "Add Comment", "message": "x"}])

	def test_manual_rule_runs_from_the_api_only_when_asked(self):
		"""A Manual rule never fires on save; the Automations button (API) runs it on one document."""
		from crm_automation.api import get_manual_rules, run_manual_rule

		make_rule("_Test Manual Escalate", "Lead", "Manual", actions=[{"action_type": "Add Tag", "tag": "Escalated"}])
		lead = make_lead(first_name="Manual")
		self.assertEqual(logs_for(lead), [])
		self.assertIn("_Test Manual Escalate", [r.name for r in get_manual_rules("Lead")])
		result = run_manual_rule("_Test Manual Escalate", "Lead", lead.name)
		self.assertEqual(result.outcome, "Success")
		self.assertIn("Escalated", frappe.db.get_value("Lead", lead.name, "_user_tags"))
		with self.assertRaisesRegex(frappe.ValidationError, "is not an enabled Manual rule"):
			run_manual_rule("_Test Manual Escalate", "Issue", frappe.get_doc({"doctype": "Issue", "subject": "x"}).insert().name)

	def test_assign_to_user_group_skips_disabled_users(self):
		"""A User Group's users take turns; a disabled member is never chosen."""
		disabled = make_user("crm-auto-gone@example.com", roles=["Sales User"], enabled=0)
		if not frappe.db.exists("User Group", "_Test CRM Team"):
			frappe.get_doc({"doctype": "User Group", "name": "_Test CRM Team", "user_group_members": [{"user": u} for u in [*SALES_USERS[:2], disabled]]}).insert(set_name="_Test CRM Team")
		make_rule("_Test Group Assign", "Lead", "New", actions=[{"action_type": "Assign", "assign_to_type": "User Group", "user_group": "_Test CRM Team"}])
		assignees = [open_assignees(make_lead(first_name=f"Group {i}")) for i in range(4)]
		self.assertEqual(sorted(a[0] for a in assignees), sorted(SALES_USERS[:2] * 2))

	def test_assign_user_in_field_only_if_unassigned_then_unassign(self):
		"""Assign the user a field names, only if nobody has it yet; Unassign closes assignments."""
		make_rule(
			"_Test Owner Field",
			"Lead",
			"Save",
			conditions={"all": [leaf("lead_owner", "is set")]},
			actions=[{"action_type": "Assign", "assign_to_type": "User in Field", "to_field": "lead_owner", "only_if_unassigned": 1}],
		)
		make_rule(
			"_Test Unassign Lost",
			"Lead",
			"Value Change",
			trigger_field="status",
			to_value="Do Not Contact",
			actions=[{"action_type": "Unassign"}],
		)
		lead = make_lead(first_name="Owned", lead_owner=SALES_USERS[1])
		self.assertEqual(open_assignees(lead), [SALES_USERS[1]])
		new_request()
		lead.lead_owner = SALES_USERS[2]
		lead.save()
		self.assertEqual(open_assignees(lead), [SALES_USERS[1]], "already assigned: left alone")
		skipped = frappe.get_doc("Automation Log", logs_for(lead, "_Test Owner Field")[-1].name)
		self.assertEqual(skipped.actions[0].status, "Skipped")
		new_request()
		lead.status = "Do Not Contact"
		lead.save()
		self.assertEqual(open_assignees(lead), [])

	def test_webhook_is_signed_and_delivered(self):
		"""The webhook POSTs the document as JSON with an HMAC-SHA256 signature of the body."""
		import hashlib
		import hmac
		import http.server
		import threading

		received = {}

		class Receiver(http.server.BaseHTTPRequestHandler):
			def do_POST(self):
				received["body"] = self.rfile.read(int(self.headers["Content-Length"]))
				received["signature"] = self.headers["X-CRM-Automation-Signature"]
				received["custom"] = self.headers["X-Tenant"]
				self.send_response(200)
				self.end_headers()
				self.wfile.write(b"ok")

			def log_message(self, *args):
				pass

		self.enterContext(loopback_allowed())  # the network guard refuses 127.0.0.1 otherwise
		server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
		threading.Thread(target=server.handle_request, daemon=True).start()
		from crm_automation.actions import deliver_webhooks

		make_rule(
			"_Test Signed Webhook",
			"Lead",
			"New",
			actions=[{"action_type": "Webhook", "url": f"http://127.0.0.1:{server.server_port}/in", "headers": '{"X-Tenant": "acme"}', "secret": "s3cret"}],
		)
		lead = make_lead(first_name="Hooked")
		log_name = logs_for(lead, "_Test Signed Webhook")[0].name
		with patch.object(frappe.db, "commit"):
			deliver_webhooks(log_name)
		server.server_close()
		expected = "sha256=" + hmac.new(b"s3cret", received["body"], hashlib.sha256).hexdigest()
		self.assertEqual(received["signature"], expected)
		self.assertEqual(received["custom"], "acme")
		self.assertEqual(json.loads(received["body"])["doc"]["first_name"], "Hooked")
		row = frappe.get_doc("Automation Log", log_name).actions[0]
		self.assertEqual((row.status, row.attempts), ("Success", 1))

	def test_webhook_is_signed_as_frappe_signs_its_own(self):
		"""A receiver written for Frappe's Webhook verifies ours unchanged: X-Frappe-Webhook-Signature
		is the base64 HMAC-SHA256 of the body, as frappe.integrations' Webhook computes it."""
		import base64
		import hashlib
		import hmac
		import http.server
		import threading

		received = {}

		class FrappeStyleReceiver(http.server.BaseHTTPRequestHandler):
			def do_POST(self):
				body = self.rfile.read(int(self.headers["Content-Length"]))
				expected = base64.b64encode(hmac.new(b"fr4ppe", body, hashlib.sha256).digest()).decode()
				received["verified"] = hmac.compare_digest(
					self.headers.get("X-Frappe-Webhook-Signature") or "", expected
				)
				received["ours"] = self.headers.get("X-CRM-Automation-Signature")
				self.send_response(200 if received["verified"] else 401)
				self.end_headers()

			def log_message(self, *args):
				pass

		self.enterContext(loopback_allowed())
		server = http.server.HTTPServer(("127.0.0.1", 0), FrappeStyleReceiver)
		threading.Thread(target=server.handle_request, daemon=True).start()
		from crm_automation.actions import deliver_webhooks

		make_rule(
			"_Test Frappe Signed Webhook",
			"Lead",
			"New",
			actions=[{"action_type": "Webhook", "url": f"http://127.0.0.1:{server.server_port}/in", "secret": "fr4ppe"}],
		)
		lead = make_lead(first_name="Frappe Hooked")
		log_name = logs_for(lead, "_Test Frappe Signed Webhook")[0].name
		with patch.object(frappe.db, "commit"):
			deliver_webhooks(log_name)
		server.server_close()
		self.assertTrue(received["verified"])
		self.assertTrue(received["ours"].startswith("sha256="))
		row = frappe.get_doc("Automation Log", log_name).actions[0]
		self.assertEqual((row.status, row.attempts), ("Success", 1))
