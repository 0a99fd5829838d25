"""The read side of the trust boundary, on a real site and as real users: the sandbox, the history,
the panel, the logs, Manual rules and the signals API show and do only what the person asking may.

Users (created here, rolled back at the end):
- Sales User restricted to territory A by a User Permission: reads lead A, not lead B;
- CRM Automation Manager restricted the same way, and one with no restriction;
- a System Manager;
- a viewer with no Lead role who reads lead A through a read-only share;
- an integration user (CRM Automation Integration) with the same read-only share.
"""

from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, now_datetime

from crm_automation import api
from crm_automation.crm_automation.doctype.automation_log.automation_log import make_log
from crm_automation.scoring import clear_score_cache, reset_rate_limit
from crm_automation.tests.factories import ensure, make_lead, make_rule, make_user, new_request
from crm_automation.trust.roles import INTEGRATION_ROLE

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "Territory", "CRM Activity Type"]

TERRITORY_A, TERRITORY_B = "_Test CRM Read Territory A", "_Test CRM Read Territory B"
SALES = "crm-read-sales@example.com"
MANAGER_A = "crm-read-manager-a@example.com"
MANAGER = "crm-read-manager@example.com"
SYSTEM_MANAGER = "crm-read-sysman@example.com"
VIEWER = "crm-read-viewer@example.com"
INTEGRATION = "crm-read-integration@example.com"
USERS = (SALES, MANAGER_A, MANAGER, SYSTEM_MANAGER, VIEWER, INTEGRATION)
MISSING = "CRM-LEAD-NO-SUCH-0001"

SECRET_RECIPIENT = "secret-recipient@example.com"
SECRET_URL = "https://hooks.example.com/T000/B000/XXXXsecretXXXX?token=abc"

WRITTEN = ("Automation Log", "Automation Log Action", "Comment", "ToDo", "Email Queue", "CRM Activity")


def written():
	return {doctype: frappe.db.count(doctype) for doctype in WRITTEN}


class ReadPermissionCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		# Registered first, so it runs last: after FrappeTestCase rolled the users back, no cache
		# keeps their roles, user permissions or the test score rule.
		cls.addClassCleanup(cls.clear_user_caches)
		super().setUpClass()
		ensure("Role", INTEGRATION_ROLE, role_name=INTEGRATION_ROLE, desk_access=0)
		ensure("CRM Activity Type", "_Test Inquiry", activity_type_name="_Test Inquiry")
		for territory in (TERRITORY_A, TERRITORY_B):
			ensure("Territory", territory, territory_name=territory, parent_territory="All Territories")
		make_user(SALES, roles=["Sales User"])
		make_user(MANAGER_A, roles=["Sales User", "CRM Automation Manager"])
		make_user(MANAGER, roles=["Sales User", "CRM Automation Manager"])
		make_user(SYSTEM_MANAGER, roles=["System Manager"])
		make_user(VIEWER, roles=["Accounts User"])  # a desk user with no role on Lead
		make_user(INTEGRATION, roles=[INTEGRATION_ROLE])
		for user in (SALES, MANAGER_A):
			frappe.get_doc(
				{
					"doctype": "User Permission",
					"user": user,
					"allow": "Territory",
					"for_value": TERRITORY_A,
					"apply_to_all_doctypes": 1,
				}
			).insert(ignore_permissions=True)
		new_request()
		cls.rule = make_rule(
			"_Test Read Welcome",
			"Lead",
			"New",
			conditions={"all": [{"field": "first_name", "op": "like", "value": "ReadPerm%"}]},
			actions=[
				{"action_type": "Send Email", "to_field": "email_id", "subject": "Hello", "message": "Hi"},
				{"action_type": "Add Comment", "message": "welcomed"},
			],
		)
		cls.lead_a = make_lead(first_name="ReadPerm A", territory=TERRITORY_A, email_id="lead-a@example.com")
		cls.lead_b = make_lead(first_name="ReadPerm B", territory=TERRITORY_B, email_id="lead-b@example.com")
		frappe.share.add("Lead", cls.lead_a.name, VIEWER, read=1, write=0, notify=0)
		frappe.share.add("Lead", cls.lead_a.name, INTEGRATION, read=1, write=0, notify=0)
		cls.log_a = cls.secret_log(cls.lead_a)
		cls.log_b = cls.secret_log(cls.lead_b)

	@classmethod
	def clear_user_caches(cls):
		for user in USERS:
			frappe.clear_cache(user=user)
		clear_score_cache()
		frappe.set_user("Administrator")

	@staticmethod
	def secret_log(lead):
		"""A logged run whose results name every kind of secret a rule may hold."""
		return make_log(
			rule_type="Workflow Rule",
			rule="_Test Read Welcome",
			trigger="New",
			event="after_insert",
			doc=lead,
			outcome="Failed",
			reason=f"Webhook to {SECRET_URL} failed: Authorization: Bearer sk-live-123",
			results=[
				{
					"action_type": "Send Email",
					"status": "Success",
					"result": f"Queued to {SECRET_RECIPIENT}: Hello",
				},
				{
					"action_type": "System Notification",
					"status": "Success",
					"result": f"Notified {MANAGER}: Hi",
				},
				{
					"action_type": "Webhook",
					"status": "Failed",
					"result": f"POST {SECRET_URL} queued",
					"error": "boom",
				},
				{"action_type": "Add Comment", "status": "Success", "result": "Commented"},
			],
		)

	def setUp(self):
		new_request()
		frappe.set_user("Administrator")

	def tearDown(self):
		frappe.set_user("Administrator")

	def as_user(self, user, function, *args, **kwargs):
		frappe.set_user(user)
		try:
			return function(*args, **kwargs)
		finally:
			frappe.set_user("Administrator")

	def refusal(self, user, function, *args, **kwargs):
		"""The PermissionError `function` raises for `user`, with nothing written meanwhile."""
		before = written()
		with self.assertRaises(frappe.PermissionError) as caught:
			self.as_user(user, function, *args, **kwargs)
		self.assertEqual(written(), before, "a refused call writes nothing")
		return str(caught.exception)

	def assertSameRefusal(self, user, function, forbidden_args, missing_args, forbidden_name, missing_name):
		"""A forbidden and a missing record get the same exception and the same message."""
		forbidden = self.refusal(user, function, *forbidden_args)
		missing = self.refusal(user, function, *missing_args)
		self.assertIn(forbidden_name, forbidden)
		self.assertEqual(forbidden.replace(forbidden_name, "<name>"), missing.replace(missing_name, "<name>"))


class TestSandboxPermissions(ReadPermissionCase):
	def test_dry_run_and_replay_need_a_rule_manager(self):
		"""A Sales User who reads the lead may still not dry-run or replay a rule on it."""
		self.refusal(SALES, api.dry_run_rule, self.rule.name, names=frappe.as_json([self.lead_a.name]))
		self.refusal(SALES, api.dry_run_rule, self.rule.name, last=5)
		self.refusal(SALES, api.replay_rule, self.rule.name, days=1)
		self.refusal(VIEWER, api.dry_run_rule, self.rule.name, names=frappe.as_json([self.lead_a.name]))

	def test_dry_run_refuses_a_forbidden_record_as_a_missing_one(self):
		"""A manager restricted to territory A cannot dry-run on lead B, and cannot tell it exists."""
		self.assertSameRefusal(
			MANAGER_A,
			api.dry_run_rule,
			(self.rule.name, frappe.as_json([self.lead_b.name])),
			(self.rule.name, frappe.as_json([MISSING])),
			self.lead_b.name,
			MISSING,
		)
		# one forbidden name among readable ones refuses the whole run: nothing is shown or logged
		self.refusal(
			MANAGER_A, api.dry_run_rule, self.rule.name, frappe.as_json([self.lead_a.name, self.lead_b.name])
		)
		result = self.as_user(MANAGER_A, api.dry_run_rule, self.rule.name, self.lead_a.name)  # a bare name
		self.assertEqual([entry["document"] for entry in result["results"]], [self.lead_a.name])
		result = self.as_user(MANAGER_A, api.dry_run_rule, self.rule.name, frappe.as_json([self.lead_a.name]))
		self.assertEqual([entry["document"] for entry in result["results"]], [self.lead_a.name])

	def test_latest_documents_and_replay_only_see_readable_records(self):
		"""'Test on the latest' and a replay neither load nor count what the manager may not read."""
		make_lead(first_name="ReadPerm B2", territory=TERRITORY_B)  # the newest lead is unreadable to A
		latest = self.as_user(MANAGER_A, api.dry_run_rule, self.rule.name, last=100)
		shown = {entry["document"] for entry in latest["results"]}
		self.assertIn(self.lead_a.name, shown)
		self.assertFalse(shown & set(frappe.get_all("Lead", {"territory": TERRITORY_B}, pluck="name")))

		frozen = now_datetime()
		since = add_days(frozen, -1)
		readable = len(
			self.as_user(MANAGER_A, frappe.get_list, "Lead", filters={"creation": (">=", since)}, limit=0)
		)
		everything = frappe.db.count("Lead", {"creation": (">=", since)})
		with patch("crm_automation.dry_run.now_datetime", return_value=frozen):
			restricted = self.as_user(MANAGER_A, api.replay_rule, self.rule.name, days=1)
			unrestricted = self.as_user(MANAGER, api.replay_rule, self.rule.name, days=1)
		self.assertEqual(restricted["documents"], readable)
		self.assertEqual(unrestricted["documents"], everything)
		self.assertGreaterEqual(everything - readable, 2, "leads of territory B are not counted")

	def test_panel_escalations_and_history_answer_the_same_for_missing_and_forbidden(self):
		for function in (
			api.get_applicable_automations,
			api.get_escalation_status,
			api.get_automation_history,
		):
			with self.subTest(function=function.__name__):
				self.assertSameRefusal(
					SALES, function, ("Lead", self.lead_b.name), ("Lead", MISSING), self.lead_b.name, MISSING
				)
				self.as_user(SALES, function, "Lead", self.lead_a.name)
		# the name asked for is echoed escaped, never rendered
		echoed = self.refusal(SALES, api.get_automation_history, "Lead", "<img src=x onerror=alert(1)>")
		self.assertNotIn("<img", echoed)
		# not a way around it: another doctype, a child table, a non-string name
		self.refusal(SALES, api.get_automation_history, "User", "Administrator")
		self.refusal(SALES, api.get_automation_history, "Has Role", "x")
		self.refusal(SALES, api.get_applicable_automations, "No Such Doctype", "x")
		with self.assertRaises(frappe.FrappeTypeError):
			self.as_user(SALES, api.get_automation_history, "Lead", {"name": self.lead_b.name})


class TestRedaction(ReadPermissionCase):
	def history_text(self, user, lead):
		return frappe.as_json(self.as_user(user, api.get_automation_history, "Lead", lead.name))

	def test_history_hides_recipients_urls_and_secrets_from_a_sales_user(self):
		shown = self.history_text(SALES, self.lead_a)
		for secret in (SECRET_RECIPIENT, "hooks.example.com", "sk-live-123", MANAGER):
			self.assertNotIn(secret, shown)
		history = self.as_user(SALES, api.get_automation_history, "Lead", self.lead_a.name)
		logged = next(entry for entry in history if entry.name == self.log_a)
		self.assertEqual(
			[(a.action_type, a.status) for a in logged.actions],
			[
				("Send Email", "Success"),
				("System Notification", "Success"),
				("Webhook", "Failed"),
				("Add Comment", "Success"),
			],
			"the reader still sees what ran and how it ended",
		)
		self.assertEqual(logged.actions[3].result, "Commented")
		# the real run of the rule, too: the welcome e-mail went to the lead's address
		real = next(
			entry for entry in history if entry.name != self.log_a and entry.rule == "_Test Read Welcome"
		)
		self.assertEqual(real.actions[0].action_type, "Send Email")
		self.assertNotIn("@", real.actions[0].result or "")

	def test_rule_managers_see_everything(self):
		for user in (MANAGER, SYSTEM_MANAGER):
			with self.subTest(user=user):
				shown = self.history_text(user, self.lead_a)
				for secret in (SECRET_RECIPIENT, SECRET_URL, MANAGER, "lead-a@example.com"):
					self.assertIn(secret, shown)

	def test_the_panel_shows_a_reader_which_rules_watch_the_record(self):
		make_rule(
			"_Test Read Panel",
			"Lead",
			"Save",
			conditions={"all": [{"field": "email_id", "op": "=", "value": "nobody@example.com"}]},
			actions=[{"action_type": "Add Comment", "message": "x"}],
		)
		rows = self.as_user(SALES, api.get_applicable_automations, "Lead", self.lead_a.name)
		self.assertIn("_Test Read Panel", {row["rule"] for row in rows})

	def test_condition_values_above_the_readers_permission_level_are_hidden(self):
		"""'Why?' must not read out a field the reader cannot see on the form itself."""
		from frappe.custom.doctype.property_setter.property_setter import make_property_setter

		make_property_setter("Lead", "company_name", "permlevel", 2, "Int")
		self.addCleanup(frappe.clear_cache, doctype="Lead")
		self.addCleanup(
			frappe.db.delete,
			"Property Setter",
			{"doc_type": "Lead", "field_name": "company_name", "property": "permlevel"},
		)
		make_rule(
			"_Test Read Permlevel",
			"Lead",
			"Save",
			conditions={"all": [{"field": "company_name", "op": "=", "value": "Secret Co"}]},
			actions=[{"action_type": "Add Comment", "message": "x"}],
		)

		def leaf(user):
			rows = self.as_user(user, api.get_applicable_automations, "Lead", self.lead_a.name)
			return next(row for row in rows if row["rule"] == "_Test Read Permlevel")["trace"][0]

		self.assertEqual(leaf(SALES)["actual"], "•••")
		self.assertEqual(leaf("Administrator")["actual"], "Test Co")

	def test_log_form_is_redacted_for_anyone_who_may_not_edit_rules(self):
		"""Should an administrator ever grant logs to others, the form redacts like the history."""
		log = frappe.get_doc("Automation Log", self.log_a)
		frappe.set_user(SALES)
		try:
			log.run_method("onload")
		finally:
			frappe.set_user("Administrator")
		text = frappe.as_json(log.as_dict())
		self.assertNotIn(SECRET_RECIPIENT, text)
		self.assertNotIn("hooks.example.com", text)
		self.assertNotIn("sk-live-123", text)


class TestAutomationLogPermissions(ReadPermissionCase):
	def test_a_sales_user_lists_no_logs(self):
		with self.assertRaises(frappe.PermissionError):
			self.as_user(SALES, frappe.get_list, "Automation Log")
		self.assertFalse(self.as_user(SALES, frappe.has_permission, "Automation Log", "read", self.log_a))

	def test_logs_are_for_rule_editors_even_where_a_role_would_grant_more(self):
		"""Were a Sales User given read on Automation Log, they still read no log, not even one of
		a lead they may read: frappe.client.get and report views return logs unredacted."""
		from crm_automation.trust.record_access import (
			has_reference_permission,
			log_action_query_conditions,
			reference_query_conditions,
		)

		log = frappe.get_doc("Automation Log", self.log_a)
		self.assertIs(has_reference_permission(log, "read", SALES), False)
		self.assertEqual(reference_query_conditions(SALES, "Automation Log"), "1=0")
		self.assertIn("1=0", log_action_query_conditions(SALES))
		self.assertIsNone(has_reference_permission(log, "read", SYSTEM_MANAGER))
		self.assertTrue(has_reference_permission(log, "read", MANAGER_A))

	def test_managers_list_only_logs_of_documents_they_may_read(self):
		listed = set(self.as_user(MANAGER_A, frappe.get_list, "Automation Log", pluck="name", limit=0))
		self.assertIn(self.log_a, listed)
		self.assertNotIn(self.log_b, listed)
		self.assertTrue(self.as_user(MANAGER_A, frappe.has_permission, "Automation Log", "read", self.log_a))
		self.assertFalse(self.as_user(MANAGER_A, frappe.has_permission, "Automation Log", "read", self.log_b))
		# the REST helpers a script would try next
		from frappe.client import get_count, get_value

		self.assertFalse(self.as_user(MANAGER_A, get_value, "Automation Log", "reason", {"name": self.log_b}))
		self.assertEqual(self.as_user(MANAGER_A, get_count, "Automation Log", {"name": self.log_b}), 0)
		with self.assertRaises(frappe.PermissionError):
			self.as_user(MANAGER_A, frappe.client.get, "Automation Log", self.log_b)
		for user in (MANAGER, SYSTEM_MANAGER):
			listed = set(self.as_user(user, frappe.get_list, "Automation Log", pluck="name", limit=0))
			self.assertTrue({self.log_a, self.log_b} <= listed, user)

	def test_action_rows_follow_their_log(self):
		rows = self.as_user(
			MANAGER_A,
			frappe.get_list,
			"Automation Log Action",
			parent_doctype="Automation Log",
			fields=["parent"],
			limit=0,
		)
		parents = {row.parent for row in rows}
		self.assertIn(self.log_a, parents)
		self.assertNotIn(self.log_b, parents)

	def test_report_view_over_rest_does_not_leak_other_documents_logs(self):
		"""The desk's list view request (frappe.desk.reportview.get), as the restricted manager."""
		frappe.set_user(MANAGER_A)
		try:
			frappe.local.form_dict = frappe._dict(
				doctype="Automation Log",
				fields=frappe.as_json(["`tabAutomation Log`.`name`"]),
				page_length=500,
			)
			from frappe.desk.reportview import get

			result = get()
		finally:
			frappe.set_user("Administrator")
			frappe.local.form_dict = frappe._dict()
		names = {row[0] for row in result["values"]}
		self.assertIn(self.log_a, names)
		self.assertNotIn(self.log_b, names)

	def test_activities_and_escalation_clocks_follow_their_document_too(self):
		"""Tracked activities (readable by every Sales User) name leads and carry notes."""
		seen, hidden = (
			frappe.get_doc(
				{
					"doctype": "CRM Activity",
					"reference_doctype": "Lead",
					"reference_name": lead.name,
					"activity_type": "_Test Inquiry",
					"note": f"about {lead.name}",
				}
			).insert(ignore_permissions=True)
			for lead in (self.lead_a, self.lead_b)
		)
		listed = set(self.as_user(SALES, frappe.get_list, "CRM Activity", pluck="name", limit=0))
		self.assertIn(seen.name, listed)
		self.assertNotIn(hidden.name, listed)
		self.assertFalse(self.as_user(SALES, frappe.has_permission, "CRM Activity", "read", hidden.name))
		self.assertTrue(self.as_user(MANAGER, frappe.has_permission, "CRM Activity", "read", hidden.name))
		# the restricted manager lists clocks only of readable documents (none may exist: no error)
		self.as_user(MANAGER_A, frappe.get_list, "Escalation State", limit=0)
		self.as_user(MANAGER_A, frappe.get_list, "Automation Occurrence", limit=0)

	def test_retry_needs_a_manager_and_the_document(self):
		self.refusal(SALES, api.retry_failed_actions, self.log_a)
		self.assertSameRefusal(
			MANAGER_A, api.retry_failed_actions, (self.log_b,), ("no-such-log",), self.log_b, "no-such-log"
		)


class TestManualRules(ReadPermissionCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_rule(
			"_Test Read Manual",
			"Lead",
			"Manual",
			actions=[{"action_type": "Add Comment", "message": "by hand"}],
		)

	def comments(self, lead):
		return frappe.db.count("Comment", {"reference_name": lead.name, "content": ("like", "%by hand%")})

	def test_running_needs_read_and_write_on_the_document(self):
		"""A viewer reads lead A through a read-only share: they may not run a rule on it."""
		self.assertEqual(self.as_user(VIEWER, api.get_manual_rules, "Lead"), [])
		self.refusal(VIEWER, api.run_manual_rule, "_Test Read Manual", "Lead", self.lead_a.name)
		self.assertSameRefusal(
			SALES,
			api.run_manual_rule,
			("_Test Read Manual", "Lead", self.lead_b.name),
			("_Test Read Manual", "Lead", MISSING),
			self.lead_b.name,
			MISSING,
		)
		self.assertEqual(self.comments(self.lead_b), 0)

	def test_a_sales_user_runs_it_on_a_lead_they_may_change(self):
		self.assertIn(
			"_Test Read Manual", {r.name for r in self.as_user(SALES, api.get_manual_rules, "Lead")}
		)
		result = self.as_user(SALES, api.run_manual_rule, "_Test Read Manual", "Lead", self.lead_a.name)
		self.assertEqual(result["outcome"], "Success")
		self.assertEqual(self.comments(self.lead_a), 1)

	def test_only_a_manual_rule_of_that_doctype(self):
		for rule in ("_Test Read Welcome", "No Such Rule"):
			with self.assertRaises(frappe.ValidationError):
				self.as_user(SALES, api.run_manual_rule, rule, "Lead", self.lead_a.name)
		self.refusal(SALES, api.get_manual_rules, "Journal Entry")
		self.refusal(SALES, api.get_manual_rules, "No Such Doctype")


class TestOverRest(ReadPermissionCase):
	"""The same checks through Frappe's request handler, as the desk and API clients call them."""

	def call(self, user, method, **form):
		from frappe.handler import execute_cmd
		from frappe.utils import set_request

		frappe.set_user(user)
		set_request(method="GET", path=f"/api/method/{method}")
		frappe.local.form_dict = frappe._dict(form)
		try:
			return execute_cmd(method)
		finally:
			frappe.set_user("Administrator")
			frappe.local.form_dict = frappe._dict()
			frappe.local.request = None

	def test_history_over_rest(self):
		method = "crm_automation.api.get_automation_history"
		with self.assertRaises(frappe.PermissionError):
			self.call(SALES, method, doctype="Lead", name=self.lead_b.name)
		history = self.call(SALES, method, doctype="Lead", name=self.lead_a.name)
		self.assertTrue(history)
		self.assertNotIn(SECRET_RECIPIENT, frappe.as_json(history))

	def test_dry_run_over_rest_refused_for_a_sales_user(self):
		with self.assertRaises(frappe.PermissionError):
			self.call(SALES, "crm_automation.api.dry_run_rule", rule=self.rule.name, last=1)


class TestSignalsAPI(ReadPermissionCase):
	"""track_activity: write permission (or the integration role and read), scored doctypes only, and
	the same answer for a missing and a forbidden record."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		from crm_automation.crm_automation.doctype.lead_score_rule.test_lead_score_rule import make_score_rule

		ensure("CRM Activity Type", "_Test Inquiry", activity_type_name="_Test Inquiry")
		ensure("CRM Activity Type", "_Test Product Page View", activity_type_name="_Test Product Page View")
		make_score_rule("_Test Read Score Rule")
		clear_score_cache()

	def setUp(self):
		super().setUp()
		frozen = now_datetime()
		clock = patch("crm_automation.scoring.now_datetime", return_value=frozen)
		clock.start()
		self.addCleanup(clock.stop)
		for user in USERS:
			reset_rate_limit(user)

	@staticmethod
	def track(name, document_type="Lead"):
		return api.track_activity(name, "_Test Inquiry", document_type=document_type)

	def test_a_reader_who_may_not_change_the_record_is_refused(self):
		self.assertTrue(self.as_user(VIEWER, frappe.has_permission, "Lead", "read", self.lead_a.name))
		self.refusal(VIEWER, self.track, self.lead_a.name)

	def test_the_integration_role_needs_only_read(self):
		result = self.as_user(INTEGRATION, self.track, self.lead_a.name)
		self.assertTrue(frappe.db.exists("CRM Activity", result["activity"]))
		self.refusal(INTEGRATION, self.track, self.lead_b.name)

	def test_missing_and_forbidden_records_get_the_same_answer(self):
		self.assertSameRefusal(SALES, self.track, (self.lead_b.name,), (MISSING,), self.lead_b.name, MISSING)
		self.as_user(SALES, self.track, self.lead_a.name)

	def test_only_doctypes_with_an_enabled_score_rule(self):
		"""Even a System Manager, who may write anything, tracks nothing on an unscored doctype."""
		for document_type, name in (
			("ToDo", "x"),
			("User", "Administrator"),
			("Opportunity", "x"),
			("Nope", "x"),
		):
			with self.subTest(document_type=document_type):
				self.refusal(SYSTEM_MANAGER, self.track, name, document_type)
