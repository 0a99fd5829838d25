"""What a rule writes and shows stays within what its author's own save could do (issue #20).

Real users: a CRM Automation Manager with Sales User (the attacker: read-only on Territory and
Campaign, no System Manager), a user who may create Campaigns but loses the right to write them,
and a System Manager. Every attempt is made the way the attacker would make it (the desk's insert,
REST, or a rule that slipped in before the checks), fired by someone else's save, and checked in
the database afterwards; the same rule written by a System Manager still works.
"""

import json
from contextlib import contextmanager

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.engine.reads import ReadRefused
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import logs_for, make_lead, make_sales_order, make_user, new_request
from crm_automation.trust import protected_doctypes
from crm_automation.trust.run_as_reads import reader_for

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User", "Workflow", "Campaign", "Territory"]

MANAGER = "crm-tb2-writes-manager@example.com"
CREATOR = "crm-tb2-writes-creator@example.com"
SYSTEM_MANAGER = "crm-tb2-writes-sysmgr@example.com"
CREATOR_ROLE = "_Test TB2 Campaign Creator"
RULE_PREFIX = "_Test TB2 Writes"
RICH_FIELD = "crm_tb2_notes"
XSS = "<img src=x onerror=alert(1)>"

WORKFLOW = "_Test TB2 Lead Flow"
OPEN, QUALIFIED, APPROVED, HOT = (
	"_Test TB2 Open",
	"_Test TB2 Qualified",
	"_Test TB2 Approved",
	"_Test TB2 Hot",
)


@contextmanager
def as_user(user):
	previous = frappe.session.user
	frappe.set_user(user)
	try:
		yield
	finally:
		frappe.set_user(previous)


def rule_dict(name, document_type="Lead", trigger="New", actions=(), **fields):
	return {
		"doctype": "Workflow Rule",
		"rule_name": name,
		"document_type": document_type,
		"trigger": trigger,
		"enabled": 1,
		"actions": list(actions),
		**fields,
	}


def save_rule_as(user, name, document_type="Lead", trigger="New", actions=(), **fields):
	with as_user(user):
		rule = frappe.get_doc(rule_dict(name, document_type, trigger, actions, **fields)).insert()
	clear_rule_cache()
	return rule


def slip_in(rule, document_type=None, **action_values):
	"""What a rule stored before the checks (or written to the database directly) looks like: the
	run-time checks must hold on their own."""
	if document_type:
		frappe.db.set_value("Workflow Rule", rule.name, "document_type", document_type)
	if action_values:
		frappe.db.set_value("Workflow Rule Action", rule.actions[0].name, action_values)
	clear_rule_cache()


def results_of(doc, rule):
	names = [log.name for log in logs_for(doc, rule)]
	if not names:
		return None, []
	log = frappe.get_doc("Automation Log", names[-1])
	return log, [(row.status, row.result) for row in log.actions]


def messages_shown():
	return [frappe.parse_json(m) for m in frappe.local.message_log]


def ensure_master(doctype, name, **fields):
	if not frappe.db.exists(doctype, name):
		frappe.get_doc({"doctype": doctype, **fields}).insert(ignore_permissions=True)


class TrustWritesTestCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_user(MANAGER, roles=["CRM Automation Manager", "Sales User"])
		make_user(
			SYSTEM_MANAGER,
			roles=[
				"System Manager",
				"CRM Automation Manager",
				"Sales Manager",
				"Sales Master Manager",
				"Sales User",
			],
		)
		frappe.db.set_single_value(
			"CRM Automation Settings", {"enabled": 1, "max_recursion_depth": 3, "failure_threshold": 50}
		)
		frappe.db.commit()

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()
		frappe.local.message_log = []

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		for name in frappe.get_all(
			"Workflow Rule", filters={"name": ("like", f"{RULE_PREFIX}%")}, pluck="name"
		):
			frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
		# A rejection is logged after the rollback and committed (runner._log_after_rollback).
		frappe.db.delete("Automation Log", {"rule": ("like", f"{RULE_PREFIX}%")})
		frappe.db.commit()
		clear_rule_cache()

	def assert_refused(self, pattern, user=MANAGER, name=f"{RULE_PREFIX} Refused", **rule):
		with self.assertRaisesRegex((frappe.ValidationError, frappe.PermissionError), pattern):
			save_rule_as(user, name, **rule)
		self.assertFalse(frappe.db.exists("Workflow Rule", name), "nothing half-saved")

	def assert_no_markup(self, text, *markups):
		"""Nothing that runs: no handler, no script (sanitised rich text may keep harmless tags)."""
		for markup in ("onerror", "onmouseover", "<script", "javascript:", *markups):
			self.assertNotIn(markup, text or "")

	def assert_escaped(self, text):
		"""Plain text shown as HTML: no tag at all."""
		self.assertNotIn("<", text or "")
		self.assertNotIn(">", text or "")


class TestEscapedMessages(TrustWritesTestCase):
	def test_a_reject_message_reaches_the_saver_escaped(self):
		"""The attack: the manager's Reject shows markup in a System Manager's session. Neither the
		author's markup nor the value a user typed into the document may become markup."""
		save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Reject Markup",
			trigger="Validate",
			condition_expression="doc.company_name == 'TB2 Reject Co'",
			actions=[{"action_type": "Reject", "message": XSS + " No {{ doc.job_title }}"}],
		)
		with as_user(SYSTEM_MANAGER), self.assertRaises(frappe.ValidationError) as caught:
			make_lead(
				first_name="Eve", job_title="<b onmouseover=alert(2)>Boss</b>", company_name="TB2 Reject Co"
			)
		text = str(caught.exception)
		self.assert_escaped(text)
		self.assertIn("&lt;img src=x onerror=alert(1)&gt; No &lt;b onmouseover=alert(2)&gt;Boss", text)
		shown = messages_shown()
		self.assertTrue(shown)
		for message in shown:
			self.assert_escaped(message.get("message"))
			self.assert_escaped(message.get("title"))
		frappe.db.rollback()
		self.assertFalse(frappe.db.exists("Lead", {"company_name": "TB2 Reject Co"}), "still rejected")
		self.assertEqual(
			frappe.get_all(
				"Automation Log", filters={"rule": f"{RULE_PREFIX} Reject Markup"}, pluck="outcome"
			),
			["Rejected"],
		)

	def test_comments_are_sanitised_and_keep_simple_formatting(self):
		save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Comment Markup",
			actions=[
				{"action_type": "Add Comment", "message": "<b>Hi</b> " + XSS + " {{ doc.job_title }}"},
			],
		)
		lead = make_lead(first_name="Bob", job_title="<script>alert(3)</script>Bob")
		(content,) = frappe.get_all(
			"Comment",
			filters={"reference_doctype": "Lead", "reference_name": lead.name, "comment_type": "Comment"},
			pluck="content",
		)
		self.assert_no_markup(content, "<img src=x")
		self.assertIn("<b>Hi</b>", content, "the author's simple formatting is kept")
		self.assertIn("Bob", content)

	def test_tags_carry_no_markup(self):
		save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Tag Markup",
			actions=[{"action_type": "Add Tag", "tag": "{{ doc.job_title }}"}],
		)
		lead = make_lead(first_name="Tagged", job_title="<b>vip</b><img src=x onerror=alert(5)>")
		tags = frappe.db.get_value("Lead", lead.name, "_user_tags") or ""
		self.assertIn("vip", tags)
		self.assert_escaped(tags)

	def test_todo_descriptions_are_sanitised_even_when_they_look_like_json(self):
		"""Frappe's sanitiser leaves text that parses as JSON alone; a rule's ToDo is sanitised anyway."""
		save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} ToDo Markup",
			actions=[
				{
					"action_type": "Create ToDo",
					"to_owner": 1,
					"message": "Call " + XSS + "{{ doc.first_name }}",
				},
				{"action_type": "Create ToDo", "to_owner": 1, "message": json.dumps([XSS])},
			],
		)
		lead = make_lead(first_name="Todo Target")
		descriptions = frappe.get_all(
			"ToDo", filters={"reference_type": "Lead", "reference_name": lead.name}, pluck="description"
		)
		self.assertEqual(len(descriptions), 2, descriptions)
		for description in descriptions:
			self.assert_no_markup(description)
		self.assertTrue(any("Call" in d and "Todo Target" in d for d in descriptions))

	def test_notification_subjects_are_escaped_and_bodies_sanitised(self):
		save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Alert Markup",
			actions=[
				{
					"action_type": "System Notification",
					"to_users": SYSTEM_MANAGER,
					"subject": XSS + " {{ doc.job_title }}",
					"message": "<i>Body</i> " + XSS,
				}
			],
		)
		lead = make_lead(first_name="Alert", job_title="<u>Alert</u> Target")
		_log, results = results_of(lead, f"{RULE_PREFIX} Alert Markup")
		self.assertEqual(results[0][0], "Success", results)
		alerts = frappe.get_all(
			"Notification Log",
			filters={"document_type": "Lead", "document_name": lead.name, "for_user": SYSTEM_MANAGER},
			fields=["subject", "email_content"],
		)
		self.assertEqual(len(alerts), 1, alerts)
		self.assert_escaped(alerts[0].subject)
		self.assertIn("&lt;img", alerts[0].subject)
		self.assertIn("&lt;u&gt;Alert&lt;/u&gt; Target", alerts[0].subject)
		self.assert_no_markup(alerts[0].email_content)
		self.assertIn("<i>Body</i>", alerts[0].email_content)

	def test_the_failure_notice_and_health_notices_show_no_markup(self):
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Failing",
			trigger="Validate",
			actions=[{"action_type": "Set Value", "target_field": "status", "value": "{{ doc.job_title }}"}],
		)
		frappe.db.set_single_value("CRM Automation Settings", "failure_threshold", 1)
		try:
			lead = make_lead(first_name="Failing", job_title="x<img src=x onerror=alert(4)//")
		finally:
			frappe.db.set_single_value("CRM Automation Settings", "failure_threshold", 50)
		self.assertTrue(frappe.db.exists("Lead", lead.name), "a failing rule never blocks the save")
		for message in messages_shown():
			self.assert_no_markup(message.get("message"), "<img")
		reason = frappe.db.get_value("Workflow Rule", rule.name, "disabled_reason")
		self.assertTrue(reason)
		self.assert_escaped(reason)
		alerts = frappe.get_all(
			"Notification Log",
			filters={"document_type": "Workflow Rule", "document_name": rule.name},
			pluck="subject",
		)
		self.assertTrue(alerts)
		for subject in alerts:
			self.assert_no_markup(subject, "<img")


class TestSetValueIsSanitised(TrustWritesTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		if not frappe.db.exists("Custom Field", {"dt": "Lead", "fieldname": RICH_FIELD}):
			frappe.get_doc(
				{
					"doctype": "Custom Field",
					"dt": "Lead",
					"fieldname": RICH_FIELD,
					"label": "CRM TB2 Notes",
					"fieldtype": "Text Editor",
					"insert_after": "company_name",
				}
			).insert(ignore_permissions=True)
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		name = frappe.db.get_value("Custom Field", {"dt": "Lead", "fieldname": RICH_FIELD})
		if name:
			frappe.delete_doc("Custom Field", name, force=True, ignore_permissions=True)
		frappe.db.commit()
		super().tearDownClass()

	def test_set_value_stores_what_the_authors_own_save_would(self):
		"""db_set skipped Frappe's sanitising: now every trigger stores what a save stores."""
		by_save = make_lead(first_name="By Save")
		by_save.company_name = XSS + "Acme"
		by_save.save()
		expected = frappe.db.get_value("Lead", by_save.name, "company_name")
		self.assert_no_markup(expected)
		self.assertIn("Acme", expected)
		for trigger, extra in (
			("New", {}),
			("Save", {}),
			("Value Change", {"trigger_field": "first_name"}),
			("Validate", {}),
		):
			with self.subTest(trigger=trigger):
				new_request()
				name = f"{RULE_PREFIX} Sanitise {trigger}"
				save_rule_as(
					MANAGER,
					name,
					trigger=trigger,
					actions=[
						{"action_type": "Set Value", "target_field": "company_name", "value": XSS + "Acme"},
						{"action_type": "Set Value", "target_field": RICH_FIELD, "value": "<p>ok</p>" + XSS},
					],
					**extra,
				)
				lead = make_lead(first_name=f"Sanitise {trigger}")
				if trigger != "New":
					new_request()
					lead.reload()
					lead.first_name = f"Sanitise {trigger} again"
					lead.save()
				stored = frappe.db.get_value("Lead", lead.name, ["company_name", RICH_FIELD], as_dict=True)
				self.assertEqual(stored.company_name, expected)
				self.assert_no_markup(stored[RICH_FIELD])
				self.assertIn("<p>ok</p>", stored[RICH_FIELD])
				frappe.delete_doc("Workflow Rule", name, force=True)
				clear_rule_cache()

	def test_set_value_on_a_submitted_document_is_sanitised_too(self):
		save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Submitted",
			document_type="Sales Order",
			trigger="Submit",
			actions=[{"action_type": "Set Value", "target_field": "po_no", "value": XSS + "PO"}],
		)
		order = make_sales_order(submit=True)
		po_no = frappe.db.get_value("Sales Order", order.name, "po_no")
		self.assert_no_markup(po_no)
		self.assertIn("PO", po_no)

	def test_a_system_managers_set_value_is_sanitised_and_still_works(self):
		save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Sanitise SM",
			actions=[
				{"action_type": "Set Value", "target_field": "company_name", "value": "<b>SM</b>" + XSS}
			],
		)
		lead = make_lead(first_name="SM Sanitise")
		stored = frappe.db.get_value("Lead", lead.name, "company_name")
		self.assert_no_markup(stored)
		self.assertIn("<b>SM</b>", stored)


class TestWorkflowTransitions(TrustWritesTestCase):
	"""A Frappe Workflow on Lead: Open → Qualified (Sales User), Qualified → Approved (System
	Manager only), Open → Hot (Sales User, only when the company is 'Hot Co')."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		for state in (OPEN, QUALIFIED, APPROVED, HOT):
			ensure_master("Workflow State", state, workflow_state_name=state)
		for action in ("_Test TB2 Qualify", "_Test TB2 Approve", "_Test TB2 Heat"):
			ensure_master("Workflow Action Master", action, workflow_action_name=action)
		cls.had_state_field = bool(frappe.get_meta("Lead").get_field("workflow_state"))
		if frappe.db.exists("Workflow", WORKFLOW):
			frappe.delete_doc("Workflow", WORKFLOW, force=True)
		frappe.get_doc(
			{
				"doctype": "Workflow",
				"workflow_name": WORKFLOW,
				"document_type": "Lead",
				"workflow_state_field": "workflow_state",
				"is_active": 1,
				"send_email_alert": 0,
				"states": [
					{"state": state, "doc_status": "0", "allow_edit": "Sales User"}
					for state in (OPEN, QUALIFIED, APPROVED, HOT)
				],
				"transitions": [
					{
						"state": OPEN,
						"action": "_Test TB2 Qualify",
						"next_state": QUALIFIED,
						"allowed": "Sales User",
					},
					{
						"state": QUALIFIED,
						"action": "_Test TB2 Approve",
						"next_state": APPROVED,
						"allowed": "System Manager",
					},
					{
						"state": OPEN,
						"action": "_Test TB2 Heat",
						"next_state": HOT,
						"allowed": "Sales User",
						"condition": "doc.company_name == 'Hot Co'",
					},
				],
			}
		).insert(ignore_permissions=True)
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		frappe.delete_doc("Workflow", WORKFLOW, force=True)
		frappe.cache.hdel("workflow", "Lead")
		if not cls.had_state_field:
			name = frappe.db.get_value("Custom Field", {"dt": "Lead", "fieldname": "workflow_state"})
			if name:
				frappe.delete_doc("Custom Field", name, force=True)
		frappe.clear_cache(doctype="Lead")
		frappe.db.commit()
		super().tearDownClass()

	def qualified_lead(self, **fields):
		lead = make_lead(**fields)
		self.assertEqual(lead.workflow_state, OPEN)
		frappe.db.set_value("Lead", lead.name, "workflow_state", QUALIFIED)
		return frappe.get_doc("Lead", lead.name)

	def test_set_value_cannot_take_a_transition_its_author_may_not(self):
		for trigger, extra in (
			("Save", {}),
			("Value Change", {"trigger_field": "company_name"}),
			("Validate", {}),
		):
			with self.subTest(trigger=trigger):
				new_request()
				name = f"{RULE_PREFIX} Approve {trigger}"
				save_rule_as(
					MANAGER,
					name,
					trigger=trigger,
					condition_expression="doc.company_name.startswith('Changed')",
					actions=[
						{"action_type": "Set Value", "target_field": "workflow_state", "value": APPROVED}
					],
					**extra,
				)
				lead = self.qualified_lead(first_name=f"Workflow {trigger}")
				lead.company_name = f"Changed {trigger}"
				new_request()
				with as_user(SYSTEM_MANAGER):
					lead.save()
				self.assertEqual(
					frappe.db.get_value("Lead", lead.name, ["workflow_state", "company_name"]),
					(QUALIFIED, f"Changed {trigger}"),
					"the state is unchanged and the System Manager's save went on",
				)
				log, results = results_of(lead, name)
				self.assertEqual(log.outcome, "Failed")
				self.assertEqual(results[0][0], "Failed")
				self.assertRegex(results[0][1], f"{MANAGER}.*{QUALIFIED}.*{APPROVED}")
				frappe.delete_doc("Workflow Rule", name, force=True)
				clear_rule_cache()

	def test_a_transition_the_author_may_take_works_and_its_condition_holds(self):
		save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Heat",
			trigger="New",
			actions=[{"action_type": "Set Value", "target_field": "workflow_state", "value": HOT}],
		)
		cold = make_lead(first_name="Cold", company_name="Cold Co")
		hot = make_lead(first_name="Hot", company_name="Hot Co")
		self.assertEqual(frappe.db.get_value("Lead", cold.name, "workflow_state"), OPEN, "condition false")
		self.assertEqual(frappe.db.get_value("Lead", hot.name, "workflow_state"), HOT)
		_log, results = results_of(cold, f"{RULE_PREFIX} Heat")
		self.assertEqual(results[0][0], "Failed")
		self.assertIn("condition", results[0][1])

	def test_a_state_no_transition_reaches_is_refused_even_for_a_system_manager(self):
		save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Skip Ahead",
			actions=[{"action_type": "Set Value", "target_field": "workflow_state", "value": APPROVED}],
		)
		lead = make_lead(first_name="Skip Ahead")
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "workflow_state"), OPEN)

	def test_a_new_document_starts_in_the_first_state(self):
		"""On insert Frappe allows only the first state; a Validate rule of a System Manager as well."""
		save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} New State",
			trigger="Validate",
			actions=[{"action_type": "Set Value", "target_field": "workflow_state", "value": QUALIFIED}],
		)
		lead = make_lead(first_name="New State")
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "workflow_state"), OPEN)
		self.assertEqual(results_of(lead, f"{RULE_PREFIX} New State")[0].outcome, "Failed")

	def test_the_system_managers_rule_takes_the_transition(self):
		save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Approve SM",
			trigger="Save",
			condition_expression="doc.company_name == 'Approve Co'",
			actions=[{"action_type": "Set Value", "target_field": "workflow_state", "value": APPROVED}],
		)
		lead = self.qualified_lead(first_name="Approved by SM")
		lead.company_name = "Approve Co"
		new_request()
		lead.save()
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "workflow_state"), APPROVED)


class TestNewDocumentWrites(TrustWritesTestCase):
	"""The creator may create Campaigns; write is taken away after their rule was saved."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		if not frappe.db.exists("Role", CREATOR_ROLE):
			frappe.get_doc({"doctype": "Role", "role_name": CREATOR_ROLE, "desk_access": 1}).insert(
				ignore_permissions=True
			)
		make_user(CREATOR, roles=["CRM Automation Manager", "Sales User", CREATOR_ROLE])
		cls.had_custom_perms = bool(frappe.db.exists("Custom DocPerm", {"parent": "Campaign"}))
		frappe.permissions.add_permission("Campaign", CREATOR_ROLE, 0, "read")
		for ptype in ("create", "write"):
			frappe.permissions.update_permission_property("Campaign", CREATOR_ROLE, 0, ptype, 1)
		frappe.clear_cache(doctype="Campaign")
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		if cls.had_custom_perms:
			frappe.db.delete("Custom DocPerm", {"parent": "Campaign", "role": CREATOR_ROLE})
		else:
			frappe.permissions.reset_perms("Campaign")
		frappe.clear_cache(doctype="Campaign")
		frappe.db.delete("Campaign", {"campaign_name": ("like", "_Test TB2%")})
		frappe.db.commit()
		super().tearDownClass()

	def set_creator_write(self, value):
		frappe.permissions.update_permission_property("Campaign", CREATOR_ROLE, 0, "write", value)
		frappe.clear_cache(doctype="Campaign")

	def new_campaign(self, name):
		with as_user(SYSTEM_MANAGER):
			return frappe.get_doc(
				{"doctype": "Campaign", "campaign_name": name, "description": "as typed"}
			).insert()

	def test_validate_set_value_on_a_new_document_needs_write_not_only_create(self):
		rule = save_rule_as(
			CREATOR,
			f"{RULE_PREFIX} Campaign Value",
			document_type="Campaign",
			trigger="Validate",
			actions=[{"action_type": "Set Value", "target_field": "description", "value": "set by rule"}],
		)
		try:
			self.set_creator_write(0)
			new_request()
			refused = self.new_campaign("_Test TB2 Refused Campaign")
			self.assertEqual(frappe.db.get_value("Campaign", refused.name, "description"), "as typed")
			log, results = results_of(refused, rule.name)
			self.assertEqual(log.outcome, "Failed")
			self.assertRegex(results[0][1], f"{CREATOR} has no write permission")
		finally:
			self.set_creator_write(1)
		new_request()
		allowed = self.new_campaign("_Test TB2 Allowed Campaign")
		self.assertEqual(frappe.db.get_value("Campaign", allowed.name, "description"), "set by rule")

	def test_reject_needs_write_or_create_at_save(self):
		self.assert_refused(
			"Actions, row 1.*crm-tb2-writes-manager@example.com.*Campaign",
			document_type="Campaign",
			trigger="Validate",
			actions=[{"action_type": "Reject", "message": "no campaigns"}],
		)


class TestRejectNeedsWrite(TrustWritesTestCase):
	def territory(self, name):
		with as_user(SYSTEM_MANAGER):
			return frappe.get_doc(
				{"doctype": "Territory", "territory_name": name, "parent_territory": "All Territories"}
			).insert()

	def tearDown(self):
		super().tearDown()
		frappe.db.delete("Territory", {"territory_name": ("like", "_Test TB2%")})
		frappe.db.commit()

	def test_a_read_only_manager_cannot_save_a_reject_rule(self):
		rule = rule_dict(
			f"{RULE_PREFIX} Veto Territory",
			document_type="Territory",
			trigger="Validate",
			actions=[{"action_type": "Reject", "message": "vetoed"}],
		)
		with as_user(MANAGER), self.assertRaisesRegex(frappe.PermissionError, "Territory"):
			frappe.get_doc(rule).insert()
		from frappe.client import insert

		with as_user(MANAGER), self.assertRaisesRegex(frappe.PermissionError, "Territory"):
			insert(rule)
		self.assertFalse(frappe.db.exists("Workflow Rule", f"{RULE_PREFIX} Veto Territory"))

	def test_a_reject_that_slipped_in_does_not_reject_and_is_logged(self):
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Veto Slipped",
			trigger="Validate",
			actions=[{"action_type": "Reject", "message": "vetoed"}],
		)
		slip_in(rule, document_type="Territory")
		territory = self.territory("_Test TB2 Saved Territory")
		self.assertTrue(frappe.db.exists("Territory", territory.name), "the save went on")
		log, results = results_of(territory, rule.name)
		self.assertEqual(log.outcome, "Failed")
		self.assertEqual(results[-1][0], "Failed")
		self.assertRegex(results[-1][1], f"{MANAGER}.*no (create|write) permission")
		self.assertEqual(frappe.db.get_value("Workflow Rule", rule.name, "consecutive_failures"), 1)

	def test_a_refused_reject_undoes_what_the_rule_set_before_it(self):
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Veto After Set",
			trigger="Validate",
			actions=[
				{"action_type": "Set Value", "target_field": "company_name", "value": "x"},
				{"action_type": "Reject", "message": "vetoed"},
			],
		)
		slip_in(rule, document_type="Territory", target_field="parent_territory", value="All Territories")
		territory = self.territory("_Test TB2 Untouched Territory")
		self.assertTrue(frappe.db.exists("Territory", territory.name))
		self.assertEqual(results_of(territory, rule.name)[0].outcome, "Failed")

	def test_a_system_managers_reject_still_rejects(self):
		save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Veto SM",
			document_type="Territory",
			trigger="Validate",
			actions=[{"action_type": "Reject", "message": "no new territories"}],
		)
		with self.assertRaisesRegex(frappe.ValidationError, "no new territories"):
			self.territory("_Test TB2 Vetoed Territory")
		frappe.db.rollback()
		self.assertFalse(frappe.db.exists("Territory", "_Test TB2 Vetoed Territory"))


class TestProtectedDoctypes(TrustWritesTestCase):
	SPELLINGS = ("File", "file", "FILE", "File ", "user", "User ", "comment", "Communication", "version")

	def test_protected_names_are_matched_as_frappe_resolves_them(self):
		for name in (*self.SPELLINGS, "ToDo", "docshare", "Error Log", "notification log"):
			with self.subTest(name=name):
				self.assertTrue(protected_doctypes.is_protected_document_type(name))
		for name in self.SPELLINGS:
			with self.subTest(name=name):
				self.assertTrue(protected_doctypes.is_protected(name))
		self.assertFalse(protected_doctypes.is_protected("lead"))
		self.assertFalse(protected_doctypes.is_protected("ToDo"), "a ToDo may be created or read")

	def test_rules_on_protected_doctypes_are_refused_in_any_spelling(self):
		from frappe.client import insert

		for name in (*self.SPELLINGS, "ToDo", "todo "):
			with self.subTest(name=name):
				rule = rule_dict(
					f"{RULE_PREFIX} Protected",
					document_type=name,
					trigger="Save",
					actions=[{"action_type": "Add Comment", "message": "x"}],
				)
				with as_user(MANAGER), self.assertRaises((frappe.PermissionError, frappe.ValidationError)):
					insert(rule)
				self.assertFalse(frappe.db.exists("Workflow Rule", f"{RULE_PREFIX} Protected"))

	def test_create_document_and_reads_of_protected_doctypes_are_refused_in_any_spelling(self):
		for name in ("file", "Comment ", "communication"):
			with self.subTest(name=name):
				self.assert_refused(
					"protected doctype",
					actions=[{"action_type": "Create Document", "target_doctype": name, "field_map": "{}"}],
				)
				self.assert_refused(
					"protected doctype",
					actions=[
						{"action_type": "Add Comment", "message": "{{ get_value('%s', 'x', 'name') }}" % name}
					],
				)
				with self.assertRaisesRegex(ReadRefused, "protected doctype"):
					reader_for(MANAGER)(name, "x", "name")

	def test_a_rule_on_file_cannot_make_an_upload_public(self):
		"""The attack: a Validate rule on File set is_private = 0 on a System Manager's upload."""
		self.assert_refused(
			"(protected doctype|cannot run on)",
			document_type="File",
			trigger="Validate",
			actions=[{"action_type": "Set Value", "target_field": "is_private", "value": "0"}],
		)
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Publish Uploads",
			trigger="Validate",
			actions=[{"action_type": "Set Value", "target_field": "company_name", "value": "0"}],
		)
		slip_in(rule, document_type="File", target_field="is_private")
		with as_user(SYSTEM_MANAGER):
			upload = frappe.get_doc(
				{"doctype": "File", "file_name": "tb2-secret.txt", "content": b"secret", "is_private": 1}
			).insert()
		try:
			self.assertEqual(frappe.db.get_value("File", upload.name, "is_private"), 1)
			# The manager may not read the private upload (the run is skipped) and File is protected
			# (the action fails): either way nothing is set.
			log, results = results_of(upload, rule.name)
			self.assertIn(log.outcome, ("Failed", "Skipped"))
			self.assertNotIn("Success", [status for status, _result in results])
			if log.outcome == "Failed":
				self.assertIn("protected doctype", results[0][1])
		finally:
			frappe.delete_doc("File", upload.name, force=True, ignore_permissions=True)

	def test_a_system_manager_may_still_write_rules_on_file(self):
		save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} SM On File",
			document_type="File",
			trigger="New",
			actions=[{"action_type": "Add Comment", "message": "uploaded"}],
		)
		upload = frappe.get_doc(
			{"doctype": "File", "file_name": "tb2-public.txt", "content": b"hello", "is_private": 0}
		).insert(ignore_permissions=True)
		try:
			self.assertTrue(
				frappe.db.exists(
					"Comment",
					{"reference_doctype": "File", "reference_name": upload.name, "content": "uploaded"},
				)
			)
		finally:
			frappe.delete_doc("File", upload.name, force=True, ignore_permissions=True)
