"""Readers of automation see values only of fields they may read (issue #20), as real users.

A System Manager's rules (run as the Administrator) read and set fields at permission level 5,
which neither a Sales User nor a CRM Automation Manager may read: a field of the Lead, a field of
the Customer in a Lead's link (a linked path), a field of the Lead's note rows (a child table
aggregate). Every way a reader gets at a run is tried: Why? (get_automation_history), the panel
(get_applicable_automations), the Automation Log through the form loader, frappe.client.get and the
list API, the dry run and the replay. None of the secret values may appear anywhere in the answer;
the System Manager's answers still hold them all. A user restricted by User Permission to another
Customer reads the Lead but not its Customer: no value of that Customer reaches them either.
"""

import json

import frappe
from frappe.permissions import add_permission
from frappe.tests.utils import FrappeTestCase

from crm_automation import api
from crm_automation.crm_automation.doctype.automation_log.automation_log import make_log
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import logs_for, make_customer, make_user, new_request
from crm_automation.trust.redaction import HIDDEN

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User", "Customer"]

SALES = "crm-tb2-readers-sales@example.com"
MANAGER = "crm-tb2-readers-manager@example.com"
SYSTEM_MANAGER = "crm-tb2-readers-sysmgr@example.com"
RESTRICTED = "crm-tb2-readers-restricted@example.com"
READERS = (SALES, MANAGER)

SECRET_FIELD = "crm_tb2r_private"  # on Lead, Customer and CRM Note, at permission level 5
LINK_FIELD = "crm_tb2r_customer"  # on Lead: a Link to Customer, level 0
CUSTOMER = "_Test TB2 Readers Customer"
OTHER_CUSTOMER = "_Test TB2 Readers Other Customer"
RULE_PREFIX = "_Test TB2 Readers"

LEAD_SECRET = "tb2r-lead-hush-7Q"
CUSTOMER_SECRET = "tb2r-customer-hush-9Z"
NOTE_SECRET = "tb2r-note-hush-3M"
NEW_SECRET = "tb2r-new-hush-4K"
LINKED_NEW = "tb2r-linked-new-5P"
SECRETS = (LEAD_SECRET, CUSTOMER_SECRET, NOTE_SECRET, NEW_SECRET, LINKED_NEW)

SECRET_CONDITIONS = {
	"all": [
		{"field": "first_name", "op": "like", "value": "TB2R%"},
		{"field": SECRET_FIELD, "op": "=", "value": LEAD_SECRET},
		{"field": f"{LINK_FIELD}.{SECRET_FIELD}", "op": "=", "value": CUSTOMER_SECRET},
		{"field": f"notes.{SECRET_FIELD}", "agg": "any", "op": "=", "value": NOTE_SECRET},
		{"field": f"{LINK_FIELD}.customer_group", "op": "is set"},
	]
}


def as_user(user, function, *args, **kwargs):
	frappe.set_user(user)
	try:
		return function(*args, **kwargs)
	finally:
		frappe.set_user("Administrator")


def text(answer):
	return json.dumps(answer, default=str)


def ensure_custom_field(doctype, fieldname, **fields):
	if not frappe.db.exists("Custom Field", {"dt": doctype, "fieldname": fieldname}):
		frappe.get_doc(
			{
				"doctype": "Custom Field",
				"dt": doctype,
				"fieldname": fieldname,
				"label": fieldname.replace("_", " ").title(),
				**fields,
			}
		).insert(ignore_permissions=True)
	frappe.clear_cache(doctype=doctype)


def make_system_manager_rule(name, trigger="New", **fields):
	"""A rule written by the System Manager, run as the Administrator: it may read and set level 5."""
	frappe.set_user(SYSTEM_MANAGER)
	try:
		rule = frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": name,
				"document_type": "Lead",
				"trigger": trigger,
				"enabled": 1,
				"run_as": "Administrator",
				**fields,
			}
		).insert()
	finally:
		frappe.set_user("Administrator")
	clear_rule_cache()
	return rule


class TestTrustReaders(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_user(SALES, roles=["Sales User"])
		make_user(MANAGER, roles=["Sales User", "CRM Automation Manager"])
		make_user(RESTRICTED, roles=["Sales User"])
		make_user(
			SYSTEM_MANAGER, roles=["System Manager", "CRM Automation Manager", "Sales Manager", "Sales User"]
		)
		for doctype in ("Lead", "Customer", "CRM Note"):
			ensure_custom_field(doctype, SECRET_FIELD, fieldtype="Data", permlevel=5)
		ensure_custom_field(
			"Lead", LINK_FIELD, fieldtype="Link", options="Customer", insert_after="company_name"
		)
		# As a site that adds a level-5 field gives that level to someone: the System Manager.
		cls.had_custom_perms = {}
		for doctype in ("Lead", "Customer"):
			cls.had_custom_perms[doctype] = bool(frappe.db.exists("Custom DocPerm", {"parent": doctype}))
			if not frappe.db.exists(
				"Custom DocPerm", {"parent": doctype, "role": "System Manager", "permlevel": 5}
			):
				add_permission(doctype, "System Manager", 5)
			frappe.clear_cache(doctype=doctype)
		make_customer(CUSTOMER)
		make_customer(OTHER_CUSTOMER)
		frappe.db.set_value("Customer", CUSTOMER, SECRET_FIELD, CUSTOMER_SECRET)
		if not frappe.db.exists("User Permission", {"user": RESTRICTED, "allow": "Customer"}):
			frappe.get_doc(
				{
					"doctype": "User Permission",
					"user": RESTRICTED,
					"allow": "Customer",
					"for_value": OTHER_CUSTOMER,
					"apply_to_all_doctypes": 0,
					"applicable_for": "Customer",
				}
			).insert(ignore_permissions=True)
		frappe.db.set_single_value(
			"CRM Automation Settings", {"enabled": 1, "max_recursion_depth": 3, "failure_threshold": 5}
		)
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		frappe.db.delete("User Permission", {"user": RESTRICTED})
		for doctype, had_custom_perms in cls.had_custom_perms.items():
			if had_custom_perms:
				frappe.db.delete(
					"Custom DocPerm", {"parent": doctype, "role": "System Manager", "permlevel": 5}
				)
			else:
				frappe.db.delete("Custom DocPerm", {"parent": doctype})
		frappe.db.commit()
		frappe.clear_cache()
		super().tearDownClass()

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()
		frappe.db.set_value("Customer", CUSTOMER, SECRET_FIELD, CUSTOMER_SECRET)
		self.rule = make_system_manager_rule(
			f"{RULE_PREFIX} Secret",
			conditions=json.dumps(SECRET_CONDITIONS),
			actions=[
				{"action_type": "Set Value", "target_field": SECRET_FIELD, "value": NEW_SECRET},
				{
					"action_type": "Set Value",
					"target_link_field": LINK_FIELD,
					"target_field": SECRET_FIELD,
					"value": LINKED_NEW,
				},
				{"action_type": "Set Value", "target_field": "company_name", "value": "TB2R Visible Co"},
			],
		)
		self.lead = self.make_lead()
		self.lead.reload()

	def tearDown(self):
		frappe.set_user("Administrator")
		for name in frappe.get_all(
			"Workflow Rule", filters={"name": ("like", f"{RULE_PREFIX}%")}, pluck="name"
		):
			frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
		clear_rule_cache()

	def make_lead(self, first_name="TB2R Reader"):
		new_request()
		return frappe.get_doc(
			{
				"doctype": "Lead",
				"first_name": first_name,
				"company_name": "TB2R Co",
				SECRET_FIELD: LEAD_SECRET,
				LINK_FIELD: CUSTOMER,
				"notes": [{"note": "first call", SECRET_FIELD: NOTE_SECRET}],
			}
		).insert(ignore_permissions=True)

	def assert_no_secret(self, answer, user):
		shown = text(answer)
		for secret in SECRETS:
			self.assertNotIn(secret, shown, f"{user} was shown {secret}")

	def log_of_the_run(self):
		(log,) = [entry for entry in logs_for(self.lead, self.rule.name) if entry.outcome != "Dry Run"]
		return log.name

	# ------------------------------------------------------------------------------------------
	# The run really read and wrote the secrets: what follows hides them, it does not lack them

	def test_the_rule_ran_on_the_secret_values(self):
		self.assertEqual(frappe.db.get_value("Lead", self.lead.name, SECRET_FIELD), NEW_SECRET)
		self.assertEqual(frappe.db.get_value("Customer", CUSTOMER, SECRET_FIELD), LINKED_NEW)
		log = frappe.get_doc("Automation Log", self.log_of_the_run())
		self.assertEqual(log.outcome, "Success", log.as_dict())
		stored = log.trace + json.dumps([row.result for row in log.actions])
		for secret in SECRETS:
			self.assertIn(secret, stored)
		self.assertEqual(
			[row.value_field for row in log.actions],
			[SECRET_FIELD, f"{LINK_FIELD}.{SECRET_FIELD}", "company_name"],
		)

	# ------------------------------------------------------------------------------------------
	# Why? and the panel

	def test_why_hides_secret_values_of_own_linked_and_child_fields_and_set_value_results(self):
		for user in (*READERS, RESTRICTED):
			with self.subTest(user=user):
				history = as_user(user, api.get_automation_history, "Lead", self.lead.name)
				self.assert_no_secret(history, user)
				(entry,) = [log for log in history if log.rule == self.rule.name]
				hidden = {leaf["field"] for leaf in entry.trace if leaf.get("hidden")}
				self.assertTrue(
					{SECRET_FIELD, f"{LINK_FIELD}.{SECRET_FIELD}", f"notes.{SECRET_FIELD}"} <= hidden,
					entry.trace,
				)
				first_name = next(leaf for leaf in entry.trace if leaf["field"] == "first_name")
				self.assertEqual(first_name["actual"], "TB2R Reader", "a field the reader may read stays")
				self.assertTrue(first_name["result"])
				results = [action.result for action in entry.actions]
				self.assertEqual(results[0], f"{SECRET_FIELD}: {HIDDEN} → {HIDDEN}")
				self.assertEqual(results[1], f"{LINK_FIELD}.{SECRET_FIELD}: {HIDDEN} → {HIDDEN}")
				self.assertEqual(results[2], "company_name: TB2R Co → TB2R Visible Co")

	def test_a_linked_value_of_a_record_the_reader_may_not_read_is_hidden(self):
		"""The restricted user reads the Lead but not its Customer: even the customer's level-0
		group is not shown; a Sales User who may read the Customer sees it."""

		def group_leaf(user):
			history = as_user(user, api.get_automation_history, "Lead", self.lead.name)
			(entry,) = [log for log in history if log.rule == self.rule.name]
			return next(leaf for leaf in entry.trace if leaf["field"] == f"{LINK_FIELD}.customer_group")

		self.assertTrue(group_leaf(RESTRICTED).get("hidden"))
		self.assertEqual(group_leaf(RESTRICTED)["actual"], HIDDEN)
		self.assertFalse(group_leaf(SALES).get("hidden"))
		self.assertEqual(
			group_leaf(SALES)["actual"], frappe.db.get_value("Customer", CUSTOMER, "customer_group")
		)

	def test_the_system_manager_sees_the_whole_run(self):
		history = as_user(SYSTEM_MANAGER, api.get_automation_history, "Lead", self.lead.name)
		shown = text(history)
		for secret in SECRETS:
			self.assertIn(secret, shown)
		self.assertNotIn(HIDDEN, shown)

	def test_the_panel_hides_what_the_reader_may_not_read(self):
		for user in (*READERS, RESTRICTED):
			with self.subTest(user=user):
				rows = as_user(user, api.get_applicable_automations, "Lead", self.lead.name)
				self.assert_no_secret(rows, user)
				(row,) = [row for row in rows if row["rule"] == self.rule.name]
				self.assertTrue(all(leaf["actual"] == HIDDEN for leaf in row["trace"] if leaf.get("hidden")))
		rows = as_user(SYSTEM_MANAGER, api.get_applicable_automations, "Lead", self.lead.name)
		self.assertIn(NEW_SECRET, text(rows))

	def test_rendered_texts_have_the_secret_blotted_out(self):
		"""A reason quotes what a rule rendered (a Reject message), a result what it did (a tag):
		the values the reader may not read are blotted out of them."""
		log = make_log(
			rule_type="Workflow Rule",
			rule=self.rule.name,
			trigger="Validate",
			event="validate",
			doc=self.lead,
			outcome="Rejected",
			reason=f"No: {NEW_SECRET}",
			results=[{"action_type": "Add Tag", "status": "Success", "result": f"Tagged {NEW_SECRET}"}],
		)
		for user in READERS:
			with self.subTest(user=user):
				history = as_user(user, api.get_automation_history, "Lead", self.lead.name)
				(entry,) = [entry for entry in history if entry.name == log]
				self.assertEqual(entry.reason, f"No: {HIDDEN}")
				self.assertEqual(entry.actions[0].result, f"Tagged {HIDDEN}")
		history = as_user(SYSTEM_MANAGER, api.get_automation_history, "Lead", self.lead.name)
		self.assertEqual(next(entry for entry in history if entry.name == log).reason, f"No: {NEW_SECRET}")

	# ------------------------------------------------------------------------------------------
	# The Automation Log itself: form, REST, lists

	def test_the_log_read_through_rest_and_the_form_is_redacted_for_a_rule_manager(self):
		from frappe.desk.form.load import getdoc

		log = self.log_of_the_run()
		answer = as_user(MANAGER, frappe.client.get, "Automation Log", log)
		self.assert_no_secret(answer, MANAGER)
		self.assertEqual(answer["actions"][2]["result"], "company_name: TB2R Co → TB2R Visible Co")
		self.assertEqual(answer["actions"][0]["result"], f"{SECRET_FIELD}: {HIDDEN} → {HIDDEN}")

		frappe.local.response = frappe._dict({"docs": []})
		as_user(MANAGER, getdoc, "Automation Log", log)
		self.assert_no_secret([doc.as_dict() for doc in frappe.response.docs], MANAGER)

		answer = as_user(SYSTEM_MANAGER, frappe.client.get, "Automation Log", log)
		for secret in SECRETS:
			self.assertIn(secret, text(answer))

	def test_lists_and_reports_leave_the_run_texts_out_for_a_rule_manager(self):
		log = self.log_of_the_run()
		rows = as_user(
			MANAGER,
			frappe.client.get_list,
			"Automation Log",
			fields=["name", "reason", "trace", "error"],
			filters={"name": log},
		)
		self.assertEqual(len(rows), 1)
		self.assert_no_secret(rows, MANAGER)
		self.assertNotIn("trace", rows[0])
		actions = as_user(
			MANAGER,
			frappe.client.get_list,
			"Automation Log Action",
			fields=["name", "result", "response", "payload"],
			filters={"parent": log},
			parent="Automation Log",
		)
		self.assert_no_secret(actions, MANAGER)
		value = as_user(
			MANAGER, frappe.client.get_value, "Automation Log", ["trace", "reason"], {"name": log}
		)
		self.assert_no_secret(value, MANAGER)
		# The System Manager lists them as stored.
		rows = as_user(
			SYSTEM_MANAGER, frappe.client.get_list, "Automation Log", fields=["trace"], filters={"name": log}
		)
		self.assertIn(LEAD_SECRET, rows[0]["trace"])

	def test_a_failed_set_value_shows_neither_its_values_nor_its_traceback(self):
		"""A value no longer on any record (so nothing to blot out by value) is hidden because the
		row names its field: the result, the row's error and the log's error that quotes it."""
		stale = "tb2r-stale-hush-8R"
		traceback = f"Traceback: ValidationError: {stale} is not an option"
		log = make_log(
			rule_type="Workflow Rule",
			rule=self.rule.name,
			trigger="Save",
			event="on_update",
			doc=self.lead,
			outcome="Failed",
			results=[
				{
					"action_type": "Set Value",
					"value_field": SECRET_FIELD,
					"status": "Failed",
					"result": f"{stale} is not an option of {SECRET_FIELD}",
					"error": traceback,
				}
			],
			error=traceback,
		)
		answer = as_user(MANAGER, frappe.client.get, "Automation Log", log)
		self.assertNotIn(stale, text(answer))
		self.assertEqual(answer["actions"][0]["result"], f"{SECRET_FIELD}: {HIDDEN}")
		self.assertEqual(answer["error"], HIDDEN)
		history = as_user(SALES, api.get_automation_history, "Lead", self.lead.name)
		self.assertNotIn(stale, text(history))
		self.assertIn(stale, text(as_user(SYSTEM_MANAGER, frappe.client.get, "Automation Log", log)))

	def test_a_redacted_log_is_never_saved_back(self):
		log = frappe.get_doc("Automation Log", self.log_of_the_run())
		frappe.set_user(MANAGER)
		try:
			log.run_method("onload")
			with self.assertRaises(frappe.ValidationError):
				log.save(ignore_permissions=True)
		finally:
			frappe.set_user("Administrator")
		self.assertIn(LEAD_SECRET, frappe.db.get_value("Automation Log", log.name, "trace"))

	# ------------------------------------------------------------------------------------------
	# Dry run and replay

	def template_rule(self):
		"""Templates over the secret: comment, ToDo, Set Value and a Create Document mapping."""
		return make_system_manager_rule(
			f"{RULE_PREFIX} Templates",
			trigger="Manual",
			conditions=json.dumps({"all": SECRET_CONDITIONS["all"][:1]}),
			actions=[
				{"action_type": "Add Comment", "message": "seen {{ doc.%s }}" % SECRET_FIELD},
				{"action_type": "Create ToDo", "to_owner": 1, "message": "about {{ doc.%s }}" % SECRET_FIELD},
				{
					"action_type": "Set Value",
					"target_field": "company_name",
					"value": "{{ doc.%s }}" % SECRET_FIELD,
				},
				{"action_type": "Set Value", "target_field": SECRET_FIELD, "value": "x"},
				{
					"action_type": "Create Document",
					"target_doctype": "ToDo",
					"field_map": json.dumps({"description": "{{ doc.%s }}" % SECRET_FIELD}),
				},
				{
					"action_type": "Set Value",
					"target_link_field": LINK_FIELD,
					"target_field": SECRET_FIELD,
					"value": "y",
				},
			],
		)

	def test_a_dry_run_shows_the_asker_only_what_they_may_read(self):
		rule = self.template_rule()
		names = json.dumps([self.lead.name])
		result = as_user(MANAGER, api.dry_run_rule, rule.name, names=names)
		self.assert_no_secret(result, MANAGER)
		(entry,) = result["results"]
		self.assertEqual(entry["outcome"], "Fired")
		summaries = [action["summary"] for action in entry["actions"]]
		# Rendered on the Lead as the manager reads it: the field is absent (None in a template).
		self.assertEqual(summaries[0], "comment: seen None")
		self.assertEqual(summaries[3], f"{SECRET_FIELD}: {HIDDEN} → {HIDDEN}")
		self.assertEqual(summaries[5], f"Customer {CUSTOMER}: {SECRET_FIELD}: {HIDDEN} → {HIDDEN}")
		# The same rule's dry run as the System Manager renders the values.
		result = as_user(SYSTEM_MANAGER, api.dry_run_rule, rule.name, names=names)
		self.assertIn(f"comment: seen {NEW_SECRET}", text(result))
		self.assertIn(LINKED_NEW, text(result))

	def test_the_dry_run_of_the_secret_rule_hides_its_trace(self):
		names = json.dumps([self.lead.name])
		result = as_user(MANAGER, api.dry_run_rule, self.rule.name, names=names)
		self.assert_no_secret(result, MANAGER)
		hidden = {leaf["field"] for leaf in result["results"][0]["trace"] if leaf.get("hidden")}
		self.assertIn(f"{LINK_FIELD}.{SECRET_FIELD}", hidden)
		self.assertIn(f"notes.{SECRET_FIELD}", hidden)

	def test_a_system_managers_dry_run_log_is_redacted_for_other_readers(self):
		rule = self.template_rule()
		as_user(SYSTEM_MANAGER, api.dry_run_rule, rule.name, names=json.dumps([self.lead.name]))
		dry = [entry for entry in logs_for(self.lead, rule.name) if entry.outcome == "Dry Run"]
		self.assertEqual(len(dry), 1)
		self.assertIn(
			NEW_SECRET, json.dumps(frappe.get_doc("Automation Log", dry[0].name).as_dict(), default=str)
		)
		for user in READERS:
			self.assert_no_secret(as_user(user, api.get_automation_history, "Lead", self.lead.name), user)
			if user == MANAGER:
				self.assert_no_secret(as_user(user, frappe.client.get, "Automation Log", dry[0].name), user)

	def test_replay_shows_counts_only(self):
		rule = self.template_rule()
		answer = as_user(MANAGER, api.replay_rule, rule.name, days=1)
		self.assert_no_secret(answer, MANAGER)
		self.assertGreaterEqual(answer["documents"], 1)
