"""A rule sees what its run-as user may see, field by field (issue 20), proven as an attacker.

A custom field at permission level 5 on Lead (and on its CRM Note rows, and on Customer) that no
role reads: a CRM Automation Manager (with Sales User) may not read it, a System Manager's rule sees
it as before. Each way out is tried as the manager: a condition, a branch, a trigger, an Advanced
Condition, a template, a Create Document mapping, follow-up steps, escalation and score rules name
it (refused at save), or reach it where a save cannot tell (a name built at run time, or the field
moved above the manager's levels after the rule was saved): the comment, ToDo, webhook payload,
log trace and email written are then checked in the database to hold nothing of it. Rules are fired
by saves of the Administrator, so a test cannot pass by running as the saver.
"""

import datetime
import email
import json
from contextlib import contextmanager

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import now_datetime, strip_html

from crm_automation.crm_automation.doctype.automation_log.automation_log import make_log
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import ensure, logs_for, make_lead, make_user, new_request
from crm_automation.trust.field_access import hidden_fields, readable_values

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "Territory", "Customer Group", "Customer"]

PREFIX = "_Test TB2 Fields"
MANAGER = "crm-tf-manager@example.com"
RESTRICTED = "crm-tf-restricted@example.com"
SYSTEM_MANAGER = "crm-tf-sysmgr@example.com"
OUTSIDE = "crm-tf-outside@example.org"

SECRET_FIELD, LATER_FIELD, ROW_FIELD = "crm_tf_secret", "crm_tf_later", "crm_tf_row_secret"
SECRET, LATER, ROW_SECRET = "TFSECRET7Q2", "TFLATER9X4", "TFROWSECRET3K"
CUSTOMER_SECRET, CUSTOMER_LATER = "TFCUSTSECRET8M", "TFCUSTLATER5P"
TERRITORY_A, TERRITORY_B = "_Test TF Territory A", "_Test TF Territory B"
CUSTOMER_A, CUSTOMER_B = "_Test TF Customer A", "_Test TF Customer B"
SECRETS = (SECRET, LATER, ROW_SECRET, CUSTOMER_SECRET, CUSTOMER_LATER)
REFUSED = r"may not read .*{0}.* of .*{1}.* \(permission level 5\)"


@contextmanager
def as_user(user):
	previous = frappe.session.user
	frappe.set_user(user)
	try:
		yield
	finally:
		frappe.set_user(previous)


def save_rule_as(user, name, trigger="New", actions=(), conditions=None, **fields):
	with as_user(user):
		rule = frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": name,
				"document_type": "Lead",
				"trigger": trigger,
				"enabled": 1,
				"conditions": json.dumps(conditions) if conditions else None,
				"actions": list(actions),
				**fields,
			}
		).insert()
	clear_rule_cache()
	return rule


def set_level(doctype, fieldname, level):
	frappe.db.set_value("Custom Field", {"dt": doctype, "fieldname": fieldname}, "permlevel", level)
	frappe.clear_cache(doctype=doctype)


def add_custom_field(doctype, fieldname, level, fieldtype="Data", options=None):
	if frappe.db.exists("Custom Field", {"dt": doctype, "fieldname": fieldname}):
		return
	frappe.get_doc(
		{
			"doctype": "Custom Field",
			"dt": doctype,
			"fieldname": fieldname,
			"label": fieldname.replace("_", " ").title(),
			"fieldtype": fieldtype,
			"options": options,
			"permlevel": level,
		}
	).insert(ignore_permissions=True)


def ensure_tree(doctype, name_field, parent_field, root, name):
	if not frappe.db.exists(doctype, root):
		frappe.get_doc({"doctype": doctype, name_field: root, "is_group": 1}).insert(ignore_permissions=True)
	return ensure(doctype, name, **{name_field: name, parent_field: root, "is_group": 0})


def comments_on(doc):
	return frappe.get_all(
		"Comment",
		filters={"reference_doctype": doc.doctype, "reference_name": doc.name, "comment_type": "Comment"},
		pluck="content",
	)


def todos_of(doc):
	return frappe.get_all(
		"ToDo", filters={"reference_type": doc.doctype, "reference_name": doc.name}, pluck="description"
	)


def log_of(doc, rule):
	logs = logs_for(doc, rule)
	return frappe.get_doc("Automation Log", logs[-1].name) if logs else None


def email_text(doc):
	"""The decoded subjects and bodies of the email queued for `doc` (what the recipient reads)."""
	texts = []
	for raw in frappe.get_all(
		"Email Queue", filters={"reference_doctype": doc.doctype, "reference_name": doc.name}, pluck="message"
	):
		message = email.message_from_string(raw)
		texts.append(str(message.get("Subject")))
		for part in message.walk():
			payload = part.get_payload(decode=True)
			if payload:
				texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
	return "\n".join(texts)


class TrustFieldsCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		# Custom fields alter tables, which commits: created once, at the levels the tests expect.
		add_custom_field("Lead", SECRET_FIELD, 5)
		add_custom_field("Lead", LATER_FIELD, 0)
		add_custom_field("CRM Note", ROW_FIELD, 5)
		add_custom_field("Customer", SECRET_FIELD, 5)
		add_custom_field("Customer", LATER_FIELD, 0)
		frappe.db.commit()
		make_user(MANAGER, roles=["CRM Automation Manager", "Sales User"])
		make_user(RESTRICTED, roles=["CRM Automation Manager", "Sales User"])
		make_user(
			SYSTEM_MANAGER, roles=["System Manager", "CRM Automation Manager", "Sales Manager", "Sales User"]
		)
		for territory in (TERRITORY_A, TERRITORY_B):
			ensure_tree("Territory", "territory_name", "parent_territory", "All Territories", territory)
		group = ensure_tree(
			"Customer Group",
			"customer_group_name",
			"parent_customer_group",
			"All Customer Groups",
			"_Test TF Group",
		)
		for customer, territory in ((CUSTOMER_A, TERRITORY_A), (CUSTOMER_B, TERRITORY_B)):
			ensure(
				"Customer",
				customer,
				customer_name=customer,
				customer_group=group,
				territory=territory,
				**{SECRET_FIELD: CUSTOMER_SECRET, LATER_FIELD: CUSTOMER_LATER},
			)
		frappe.get_doc(
			{
				"doctype": "User Permission",
				"user": RESTRICTED,
				"allow": "Territory",
				"for_value": TERRITORY_A,
				"apply_to_all_doctypes": 1,
			}
		).insert(ignore_permissions=True)
		frappe.db.set_single_value(
			"CRM Automation Settings",
			{"enabled": 1, "max_recursion_depth": 3, "failure_threshold": 5, "log_skipped_runs": 0},
		)
		cls.addClassCleanup(cls.forget_caches)

	@classmethod
	def forget_caches(cls):
		for user in (MANAGER, RESTRICTED, SYSTEM_MANAGER):
			frappe.clear_cache(user=user)
		for doctype in ("Lead", "Customer"):
			frappe.clear_cache(doctype=doctype)
		clear_rule_cache()
		frappe.set_user("Administrator")

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()
		set_level("Lead", LATER_FIELD, 0)
		set_level("Customer", LATER_FIELD, 0)

	def tearDown(self):
		frappe.set_user("Administrator")
		for doctype, field in (
			("Workflow Rule", "name"),
			("Escalation Policy", "policy_name"),
			("Lead Score Rule", "rule_name"),
		):
			for name in frappe.get_all(doctype, filters={field: ("like", f"{PREFIX}%")}, pluck="name"):
				frappe.delete_doc(doctype, name, force=True, ignore_permissions=True)
		clear_rule_cache()
		set_level("Lead", LATER_FIELD, 0)
		set_level("Customer", LATER_FIELD, 0)

	def lead(self, first_name, **fields):
		values = {
			SECRET_FIELD: SECRET,
			LATER_FIELD: LATER,
			"territory": TERRITORY_A,
			"notes": [{"note": "first call", ROW_FIELD: ROW_SECRET}],
		}
		values.update(fields)
		new_request()
		return make_lead(first_name=f"TF {first_name}", **values)

	def hide_later_fields(self):
		"""The fields the rules named when they were saved move above the manager's levels."""
		set_level("Lead", LATER_FIELD, 5)
		set_level("Customer", LATER_FIELD, 5)

	def assert_refused(self, pattern, user=MANAGER, **rule):
		name = f"{PREFIX} Refused"
		with self.refused(pattern):
			save_rule_as(user, name, **rule)
		self.assertFalse(frappe.db.exists("Workflow Rule", name), "nothing half-saved")

	@contextmanager
	def refused(self, pattern):
		"""A PermissionError whose message, as the reader sees it (without its markup), matches."""
		with self.assertRaises(frappe.PermissionError) as caught:
			yield
		self.assertRegex(strip_html(str(caught.exception)), pattern)

	def assert_holds_no_secret(self, text, what):
		for secret in SECRETS:
			self.assertNotIn(secret, str(text), f"{what} holds {secret}")


class TestTheFieldModel(TrustFieldsCase):
	def test_the_manager_reads_neither_the_field_nor_its_rows_and_a_system_manager_reads_both(self):
		hidden = hidden_fields("Lead", MANAGER)
		self.assertIn(SECRET_FIELD, hidden.own)
		self.assertNotIn(LATER_FIELD, hidden.own)
		self.assertIn(ROW_FIELD, hidden.tables.get("notes", ()))
		self.assertNotIn("note", hidden.tables["notes"])
		self.assertFalse(hidden_fields("Lead", SYSTEM_MANAGER))
		self.assertFalse(hidden_fields("Lead", "Administrator"))
		values = readable_values(
			{"name": "L", SECRET_FIELD: SECRET, "notes": [{ROW_FIELD: 1, "note": "n"}]}, "Lead", MANAGER
		)
		self.assertEqual(values, {"name": "L", "notes": [{"note": "n"}]}, "absent, not empty")

	def test_the_answer_follows_a_permission_change_at_once(self):
		self.assertNotIn(LATER_FIELD, hidden_fields("Lead", MANAGER).own)
		self.hide_later_fields()
		self.assertIn(LATER_FIELD, hidden_fields("Lead", MANAGER).own)
		user = frappe.get_doc("User", MANAGER)
		user.add_roles("Sales Manager")  # reads Lead at level 1, still not 5
		try:
			self.assertIn(LATER_FIELD, hidden_fields("Lead", MANAGER).own)
			user.add_roles("System Manager")
			self.assertFalse(hidden_fields("Lead", MANAGER), "a System Manager reads every field")
		finally:
			user.remove_roles("System Manager", "Sales Manager")
		self.assertIn(LATER_FIELD, hidden_fields("Lead", MANAGER).own)


class TestRefusedAtSave(TrustFieldsCase):
	def test_conditions_naming_the_field_are_refused(self):
		lead_field = REFUSED.format(SECRET_FIELD, "Lead")
		leaf = {"field": SECRET_FIELD, "op": "is set"}
		comment = [{"action_type": "Add Comment", "message": "x"}]
		self.assert_refused(
			rf"Conditions \(JSON\): .*{lead_field}", conditions={"all": [leaf]}, actions=comment
		)
		self.assert_refused(
			rf"Conditions \(JSON\): .*{lead_field}",
			conditions={"any": [{"field": "first_name", "op": "is set"}, {"all": [leaf]}]},
			actions=comment,
		)
		self.assert_refused(
			rf"Branches, row 1, Conditions \(JSON\): .*{lead_field}",
			branches=[{"branch_name": "Hot", "conditions": json.dumps({"all": [leaf]})}],
			actions=[{"action_type": "Add Comment", "message": "x", "branch": "Hot"}],
		)
		self.assert_refused(
			f"Trigger, Field: .*{lead_field}",
			trigger="Value Change",
			trigger_field=SECRET_FIELD,
			actions=comment,
		)
		self.assert_refused(
			REFUSED.format(ROW_FIELD, "CRM Note"),
			conditions={"all": [{"field": f"notes.{ROW_FIELD}", "agg": "any", "op": "is set"}]},
			actions=comment,
		)
		self.assert_refused(
			f"may not read (the field )?.*{SECRET_FIELD}.* of Customer",
			conditions={"all": [{"field": f"customer.{SECRET_FIELD}", "op": "is set"}]},
			actions=comment,
		)

	def test_advanced_conditions_naming_the_field_are_refused(self):
		for expression, field in (
			(f"doc.{SECRET_FIELD} == 'x'", SECRET_FIELD),
			(f"old_doc.{SECRET_FIELD} == 'x'", SECRET_FIELD),
			(f"doc['{SECRET_FIELD}'] == 'x'", SECRET_FIELD),
			(f"doc.get('{SECRET_FIELD}') == 'x'", SECRET_FIELD),
			(f"len(doc.notes) > 0 and doc.notes[0].{ROW_FIELD} == 'x'", ROW_FIELD),
		):
			with self.subTest(expression=expression):
				self.assert_refused(
					f"Advanced Condition: .*may not read .*{field}.*permission level 5",
					condition_expression=expression,
					actions=[{"action_type": "Add Comment", "message": "x"}],
				)

	def test_templates_naming_the_field_are_refused_in_every_template_field(self):
		places = (
			("Add Comment", "message", "New", {}),
			("Set Value", "value", "New", {"target_field": "company_name"}),
			("Create ToDo", "message", "New", {"to_owner": 1}),
			("System Notification", "subject", "New", {"to_owner": 1}),
			("Send Email", "message", "New", {"to_users": OUTSIDE, "subject": "x"}),
			("Add Tag", "tag", "New", {}),
			("Reject", "message", "Validate", {}),
		)
		templates = (
			(f"{{{{ doc.{SECRET_FIELD} }}}}", SECRET_FIELD),
			(f"{{{{ doc['{SECRET_FIELD}'] }}}}", SECRET_FIELD),
			(f"{{{{ doc.get('{SECRET_FIELD}') }}}}", SECRET_FIELD),
			(f"{{{{ old_doc.{SECRET_FIELD} }}}}", SECRET_FIELD),
			(f"{{% for n in doc.notes %}}{{{{ n.{ROW_FIELD} }}}}{{% endfor %}}", ROW_FIELD),
			(f"{{{{ doc.notes[0].{ROW_FIELD} }}}}", ROW_FIELD),
			(f"{{{{ doc.notes|map(attribute='{ROW_FIELD}')|join }}}}", ROW_FIELD),
		)
		for template, field in templates:
			for action_type, fieldname, trigger, extra in places:
				with self.subTest(template=template, action=action_type):
					self.assert_refused(
						f"Actions, row 1, .*may not read .*{field}.*permission level 5",
						trigger=trigger,
						actions=[{"action_type": action_type, fieldname: template, **extra}],
					)

	def test_recipients_read_from_the_field_are_refused(self):
		for action_type, extra in (
			("System Notification", {"subject": "x"}),
			("Create ToDo", {"message": "x"}),
		):
			with self.subTest(action=action_type):
				self.assert_refused(
					f"Actions, row 1, .*{REFUSED.format(SECRET_FIELD, 'Lead')}",
					actions=[{"action_type": action_type, "to_field": SECRET_FIELD, **extra}],
				)

	def test_a_create_document_mapping_from_the_field_is_refused(self):
		for source in (f"doc.{SECRET_FIELD}", f"{{{{ doc.{SECRET_FIELD} }}}}"):
			with self.subTest(source=source):
				self.assert_refused(
					rf"Actions, row 1, .*Field Mapping \(description\).*{REFUSED.format(SECRET_FIELD, 'Lead')}",
					actions=[
						{
							"action_type": "Create Document",
							"target_doctype": "ToDo",
							"field_map": json.dumps({"description": source}),
						}
					],
				)

	def test_follow_up_steps_naming_the_field_are_refused(self):
		leaf = json.dumps({"all": [{"field": SECRET_FIELD, "op": "is set"}]})
		step = {"step_name": "Remind", "wait_type": "Duration", "wait_amount": 1, "wait_unit": "Hours"}
		act = [{"action_type": "Add Comment", "message": "x", "step": "Remind"}]
		self.assert_refused(
			rf"Steps, row 1, Only If \(JSON\): .*{SECRET_FIELD}",
			steps=[{**step, "step_conditions": leaf}],
			actions=act,
		)
		self.assert_refused(
			rf"Steps, row 1, Wait Until \(JSON\): .*{SECRET_FIELD}",
			steps=[{**step, "wait_type": "Until Condition", "until_conditions": leaf}],
			actions=act,
		)
		self.assert_refused(
			rf"Stop When \(JSON\): .*{SECRET_FIELD}", steps=[step], stop_conditions=leaf, actions=act
		)
		self.assert_refused(
			f"Actions, row 1, .*{SECRET_FIELD}",
			steps=[step],
			actions=[
				{"action_type": "Add Comment", "message": f"{{{{ doc.{SECRET_FIELD} }}}}", "step": "Remind"}
			],
		)

	def test_escalation_and_score_rules_naming_the_field_are_refused(self):
		leaf = json.dumps({"all": [{"field": SECRET_FIELD, "op": "is set"}]})
		level = {"level": 1, "after": 1, "unit": "Hours", "action_type": "Add Comment", "message": "late"}
		policies = (
			{"conditions": leaf, "levels": [level]},
			{"levels": [{**level, "message": f"{{{{ doc.{SECRET_FIELD} }}}}"}]},
		)
		for extra in policies:
			with (
				self.subTest(policy=extra),
				as_user(MANAGER),
				self.refused(SECRET_FIELD),
			):
				frappe.get_doc(
					{
						"doctype": "Escalation Policy",
						"policy_name": f"{PREFIX} Policy",
						"document_type": "Lead",
						"enabled": 1,
						**extra,
					}
				).insert()
		with (
			as_user(MANAGER),
			self.refused(f"Criteria, row 1: .*{SECRET_FIELD}.*permission level 5"),
		):
			frappe.get_doc(self.score_rule(leaf)).insert()
		self.assertFalse(frappe.db.exists("Escalation Policy", {"policy_name": f"{PREFIX} Policy"}))
		self.assertFalse(frappe.db.exists("Lead Score Rule", {"rule_name": f"{PREFIX} Score"}))

	@staticmethod
	def score_rule(conditions):
		return {
			"doctype": "Lead Score Rule",
			"rule_name": f"{PREFIX} Score",
			"document_type": "Lead",
			"enabled": 0,
			"criteria": [{"label": "secret", "points": 10, "conditions": conditions}],
		}

	def test_a_system_manager_may_name_every_one_of_them(self):
		leaf = {"field": SECRET_FIELD, "op": "is set"}
		rule = save_rule_as(
			SYSTEM_MANAGER,
			f"{PREFIX} System Manager",
			conditions={"all": [leaf, {"field": f"notes.{ROW_FIELD}", "agg": "any", "op": "is set"}]},
			condition_expression=f"doc.{SECRET_FIELD} != 'x'",
			actions=[
				{"action_type": "Add Comment", "message": f"{{{{ doc.{SECRET_FIELD} }}}}"},
				{
					"action_type": "Create Document",
					"target_doctype": "ToDo",
					"field_map": json.dumps({"description": f"doc.{SECRET_FIELD}"}),
				},
			],
		)
		self.assertEqual(rule.run_as, SYSTEM_MANAGER)
		with as_user(SYSTEM_MANAGER):
			frappe.get_doc(self.score_rule(json.dumps({"all": [leaf]}))).insert()


class TestAbsentAtRunTime(TrustFieldsCase):
	DYNAMIC = (
		"S[{{ doc['crm_tf_' ~ 'secret'] }}] G[{{ doc.get('crm_tf_' ~ 'secret') }}]"
		" R[{% for n in doc.notes %}{{ n['crm_tf_row_' ~ 'secret'] }}{% endfor %}]"
		" K[{{ ('crm_tf_' ~ 'secret') in doc }}]"
	)

	def test_a_template_that_builds_the_name_at_run_time_finds_nothing(self):
		rule = save_rule_as(
			MANAGER, f"{PREFIX} Dynamic", actions=[{"action_type": "Add Comment", "message": self.DYNAMIC}]
		)
		lead = self.lead("Dynamic")
		self.assertEqual(comments_on(lead), ["S[None] G[None] R[None] K[False]"], "absent, not empty")
		self.assertEqual(log_of(lead, rule.name).outcome, "Success")
		frappe.delete_doc("Workflow Rule", rule.name, force=True)
		save_rule_as(
			SYSTEM_MANAGER,
			f"{PREFIX} Dynamic SM",
			actions=[{"action_type": "Add Comment", "message": self.DYNAMIC}],
		)
		lead = self.lead("Dynamic SM")
		self.assertEqual(comments_on(lead), [f"S[{SECRET}] G[{SECRET}] R[{ROW_SECRET}] K[True]"])

	def test_a_template_on_a_field_hidden_after_save_finds_nothing(self):
		save_rule_as(
			MANAGER,
			f"{PREFIX} Later",
			actions=[{"action_type": "Add Comment", "message": f"L[{{{{ doc.{LATER_FIELD} }}}}]"}],
		)
		self.assertEqual(comments_on(self.lead("Before")), [f"L[{LATER}]"], "readable when saved")
		self.hide_later_fields()
		lead = self.lead("After")
		self.assertEqual(comments_on(lead), ["L[None]"])

	def test_an_advanced_condition_that_builds_the_name_sees_nothing(self):
		expressions = (
			f"doc['crm_tf_' + 'secret'] == '{SECRET}'",
			"('crm_tf_' + 'secret') in doc",
			f"doc.notes[0]['crm_tf_row_' + 'secret'] == '{ROW_SECRET}'",
		)
		for expression in expressions:
			with self.subTest(expression=expression):
				rule = save_rule_as(
					MANAGER,
					f"{PREFIX} Oracle",
					condition_expression=expression,
					actions=[{"action_type": "Add Comment", "message": "the secret is known"}],
				)
				lead = self.lead("Oracle")
				self.assertEqual(comments_on(lead), [], "the condition never saw the value")
				frappe.delete_doc("Workflow Rule", rule.name, force=True)
				save_rule_as(
					SYSTEM_MANAGER,
					f"{PREFIX} Oracle SM",
					condition_expression=expression,
					actions=[{"action_type": "Add Comment", "message": "the secret is known"}],
				)
				self.assertEqual(comments_on(self.lead("Oracle SM")), ["the secret is known"])
				frappe.delete_doc("Workflow Rule", f"{PREFIX} Oracle SM", force=True)
				clear_rule_cache()

	def test_a_condition_on_a_field_hidden_after_save_sees_it_absent(self):
		save_rule_as(
			MANAGER,
			f"{PREFIX} Condition Later",
			conditions={"all": [{"field": LATER_FIELD, "op": "=", "value": LATER}]},
			actions=[{"action_type": "Add Comment", "message": "matched"}],
		)
		absent = save_rule_as(
			MANAGER,
			f"{PREFIX} Condition Absent",
			conditions={"all": [{"field": LATER_FIELD, "op": "is not set"}]},
			actions=[{"action_type": "Add Comment", "message": "absent"}],
		)
		self.assertEqual(comments_on(self.lead("Cond Before")), ["matched"])
		self.hide_later_fields()
		lead = self.lead("Cond After")
		# The rule no longer sees the value it tests; absent reads as empty, so "is not set" holds,
		# and the log's trace keeps no value of the field.
		self.assertEqual(comments_on(lead), ["absent"])
		log = log_of(lead, absent.name)
		self.assertTrue(log.trace)
		self.assert_holds_no_secret(log.trace, "the log's trace")
		self.assertIsNone(json.loads(log.trace)[0].get("actual"))

	def test_a_stored_trace_keeps_no_value_the_run_as_user_may_not_read(self):
		lead = self.lead("Trace")
		trace = [
			{"field": SECRET_FIELD, "op": "=", "expected": SECRET, "actual": SECRET, "result": True},
			{"field": f"notes.{ROW_FIELD}", "agg": "any", "actual": [ROW_SECRET], "result": True},
			{"field": f"customer.{SECRET_FIELD}", "op": "=", "actual": CUSTOMER_SECRET, "result": True},
			{"field": "first_name", "op": "is set", "actual": lead.first_name, "result": True},
		]
		common = dict(rule_type="Workflow Rule", rule=f"{PREFIX} Trace", trigger="New", event="x", doc=lead)
		stored = frappe.db.get_value(
			"Automation Log", make_log(**common, outcome="Success", trace=trace, run_as=MANAGER), "trace"
		)
		self.assertNotIn(f'"actual": "{SECRET}"', stored)
		self.assertNotIn(ROW_SECRET, stored)
		self.assertNotIn(CUSTOMER_SECRET, stored)
		self.assertIn(lead.first_name, stored)
		# A log written without saying whom for (a dry run's) keeps what the rule's run-as user may read.
		rule = save_rule_as(
			MANAGER, f"{PREFIX} Trace", actions=[{"action_type": "Add Comment", "message": "x"}]
		)
		stored = frappe.db.get_value(
			"Automation Log", make_log(**common, outcome="Dry Run", trace=trace), "trace"
		)
		self.assertNotIn(ROW_SECRET, stored)
		self.assertIn(lead.first_name, stored)
		self.assertEqual(rule.run_as, MANAGER)
		stored = frappe.db.get_value(
			"Automation Log",
			make_log(**common, outcome="Success", trace=trace, run_as=SYSTEM_MANAGER),
			"trace",
		)
		self.assertIn(ROW_SECRET, stored)

	def test_a_create_document_mapping_copies_nothing_the_run_as_user_may_not_read(self):
		# A ToDo the manager may create: their own.
		field_map = {"allocated_to": MANAGER, "description": f"doc.{LATER_FIELD}"}
		save_rule_as(
			MANAGER,
			f"{PREFIX} Copy",
			actions=[
				{
					"action_type": "Create Document",
					"target_doctype": "ToDo",
					"field_map": json.dumps(field_map),
				}
			],
		)
		self.assertEqual(todos_of(self.lead("Copy Before")), [LATER])
		self.hide_later_fields()
		lead = self.lead("Copy After")
		self.assertEqual(len(todos_of(lead)), 1, "the ToDo is created")
		self.assert_holds_no_secret(todos_of(lead), "the ToDo")
		frappe.delete_doc("Workflow Rule", f"{PREFIX} Copy", force=True)
		save_rule_as(
			MANAGER,
			f"{PREFIX} Copy Dynamic",
			actions=[
				{
					"action_type": "Create Document",
					"target_doctype": "ToDo",
					"field_map": json.dumps({"allocated_to": MANAGER, "description": "D" + self.DYNAMIC}),
				}
			],
		)
		lead = self.lead("Copy Dynamic")
		self.assertEqual(todos_of(lead), ["DS[None] G[None] R[None] K[False]"])

	def test_the_webhook_payload_leaves_the_field_out(self):
		payloads = {}
		for user in (MANAGER, SYSTEM_MANAGER):
			name = f"{PREFIX} Hook {user.split('@')[0]}"
			save_rule_as(
				user, name, actions=[{"action_type": "Webhook", "url": "https://hooks.example.com/in"}]
			)
			lead = self.lead(f"Hook {user}")
			row = log_of(lead, name).actions[0]
			self.assertEqual(row.status, "Queued")
			payloads[user] = json.loads(row.payload)["doc"]
			frappe.delete_doc("Workflow Rule", name, force=True)
			clear_rule_cache()
		self.assertNotIn(SECRET_FIELD, payloads[MANAGER], "absent, not empty")
		self.assertNotIn(ROW_FIELD, payloads[MANAGER]["notes"][0])
		self.assertEqual(payloads[MANAGER]["notes"][0]["note"], "first call")
		self.assert_holds_no_secret(json.dumps(payloads[MANAGER]).replace(LATER, ""), "the payload")
		self.assertEqual(payloads[SYSTEM_MANAGER][SECRET_FIELD], SECRET)
		self.assertEqual(payloads[SYSTEM_MANAGER]["notes"][0][ROW_FIELD], ROW_SECRET)

	def test_an_email_to_an_outside_address_carries_nothing_of_the_field(self):
		message = self.DYNAMIC + f" L[{{{{ doc.{LATER_FIELD} }}}}]"
		action = {
			"action_type": "Send Email",
			"to_users": OUTSIDE,
			"subject": "Lead {{ doc.name }}",
			"message": message,
		}
		save_rule_as(MANAGER, f"{PREFIX} Mail", actions=[action])
		self.hide_later_fields()
		lead = self.lead("Mail")
		text = email_text(lead)
		self.assertIn("S[None] G[None] R[None] K[False] L[None]", text, "the email went, without the values")
		self.assert_holds_no_secret(text, "the email")
		frappe.delete_doc("Workflow Rule", f"{PREFIX} Mail", force=True)
		save_rule_as(SYSTEM_MANAGER, f"{PREFIX} Mail SM", actions=[action])
		self.assertIn(SECRET, email_text(self.lead("Mail SM")), "a System Manager's rule still sends it")


class TestLinkedValuesAndRecords(TrustFieldsCase):
	def test_a_linked_field_hidden_after_save_reads_as_absent(self):
		save_rule_as(
			MANAGER,
			f"{PREFIX} Linked Later",
			conditions={"all": [{"field": f"customer.{LATER_FIELD}", "op": "=", "value": CUSTOMER_LATER}]},
			actions=[{"action_type": "Add Comment", "message": "linked"}],
		)
		self.assertEqual(comments_on(self.lead("Linked Before", customer=CUSTOMER_A)), ["linked"])
		self.hide_later_fields()
		self.assertEqual(comments_on(self.lead("Linked After", customer=CUSTOMER_A)), [])

	def test_a_linked_record_the_run_as_user_may_not_read_gives_nothing(self):
		save_rule_as(
			SYSTEM_MANAGER,
			f"{PREFIX} Linked Record",
			run_as=RESTRICTED,
			conditions={"all": [{"field": "customer.customer_name", "op": "is set"}]},
			actions=[{"action_type": "Add Comment", "message": "customer {{ doc.customer }}"}],
		)
		self.assertEqual(comments_on(self.lead("Readable", customer=CUSTOMER_A)), [f"customer {CUSTOMER_A}"])
		self.assertEqual(comments_on(self.lead("Forbidden", customer=CUSTOMER_B)), [], "read as missing")

	def test_a_system_managers_linked_condition_still_reads_the_field_and_the_record(self):
		save_rule_as(
			SYSTEM_MANAGER,
			f"{PREFIX} Linked SM",
			conditions={"all": [{"field": f"customer.{LATER_FIELD}", "op": "=", "value": CUSTOMER_LATER}]},
			actions=[{"action_type": "Add Comment", "message": "linked {{ doc.customer }}"}],
		)
		self.hide_later_fields()
		# Customer B, in the territory the restricted manager may not read, at a level no role reads.
		self.assertEqual(comments_on(self.lead("Linked SM", customer=CUSTOMER_B)), [f"linked {CUSTOMER_B}"])

	def test_a_rule_skips_a_document_its_run_as_user_may_not_read(self):
		rule = save_rule_as(
			SYSTEM_MANAGER,
			f"{PREFIX} Territory",
			run_as=RESTRICTED,
			conditions={"all": [{"field": "first_name", "op": "like", "value": "TF %"}]},
			actions=[{"action_type": "Add Comment", "message": "seen {{ doc.first_name }}"}],
		)
		forbidden = self.lead("Territory B", territory=TERRITORY_B)
		self.assertEqual(comments_on(forbidden), [])
		log = log_of(forbidden, rule.name)
		self.assertEqual(log.outcome, "Skipped")
		self.assertRegex(log.reason, f"run-as user {RESTRICTED} may not read Lead {forbidden.name}")
		self.assertFalse(log.trace, "no values of a document the run-as user may not read")
		self.assertEqual(len(log.actions), 0)
		self.assertEqual(frappe.db.get_value("Workflow Rule", rule.name, "consecutive_failures"), 0)
		readable = self.lead("Territory A", territory=TERRITORY_A)
		self.assertEqual(comments_on(readable), ["seen TF Territory A"])


class TestSequencesAndScores(TrustFieldsCase):
	def fire_step(self, lead, rule):
		from crm_automation.sequences import runs as sequence_runs
		from crm_automation.sequences import steps as sequences

		name, due = frappe.db.get_value(
			sequences.STEP_DOCTYPE,
			{"reference_name": lead.name, "workflow_rule": rule, "status": "Pending"},
			["name", "due_at"],
		)
		frappe.db.set_value(sequences.STEP_DOCTYPE, name, {"status": "Running", "claim_token": "tf-token"})
		new_request()
		sequence_runs.fire_claimed(name, due, datetime.timedelta(days=1), "tf-token")
		return frappe.db.get_value(sequences.STEP_DOCTYPE, name, "status")

	def step_rule(self, name, user, message, **step):
		return save_rule_as(
			user,
			name,
			conditions={"all": [{"field": "first_name", "op": "like", "value": "TF Step%"}]},
			steps=[
				{
					"step_name": "Remind",
					"wait_type": "Duration",
					"wait_amount": 1,
					"wait_unit": "Hours",
					**step,
				}
			],
			actions=[{"action_type": "Add Comment", "message": message, "step": "Remind"}],
		)

	def test_a_step_template_finds_nothing_the_run_as_user_may_not_read(self):
		rule = self.step_rule(f"{PREFIX} Step", MANAGER, TestAbsentAtRunTime.DYNAMIC)
		lead = self.lead("Step Dynamic")
		self.assertEqual(self.fire_step(lead, rule.name), "Done")
		self.assertEqual(comments_on(lead), ["S[None] G[None] R[None] K[False]"])
		frappe.delete_doc("Workflow Rule", rule.name, force=True)
		rule = self.step_rule(f"{PREFIX} Step SM", SYSTEM_MANAGER, TestAbsentAtRunTime.DYNAMIC)
		lead = self.lead("Step SM")
		self.fire_step(lead, rule.name)
		self.assertEqual(comments_on(lead), [f"S[{SECRET}] G[{SECRET}] R[{ROW_SECRET}] K[True]"])

	def test_a_step_condition_on_a_field_hidden_after_save_sees_it_absent(self):
		condition = json.dumps({"all": [{"field": LATER_FIELD, "op": "=", "value": LATER}]})
		rule = self.step_rule(f"{PREFIX} Step Later", MANAGER, "later matched", step_conditions=condition)
		lead = self.lead("Step Later")
		self.hide_later_fields()
		self.assertEqual(self.fire_step(lead, rule.name), "Skipped")
		self.assertEqual(comments_on(lead), [])

	def test_score_criteria_on_a_field_hidden_after_save_count_nothing(self):
		from crm_automation.scoring import compile_score_rule_doc, score_documents

		conditions = json.dumps({"all": [{"field": LATER_FIELD, "op": "=", "value": LATER}]})
		with as_user(MANAGER):
			doc = frappe.get_doc(TestRefusedAtSave.score_rule(conditions)).insert()
		rule = compile_score_rule_doc(doc)
		row = {"name": "TF-ROW", "creation": now_datetime(), LATER_FIELD: LATER}
		self.assertEqual(score_documents(rule, [row])["TF-ROW"].score, 10)
		self.hide_later_fields()
		self.assertEqual(score_documents(rule, [row])["TF-ROW"].score, 0, "the score tells nothing of it")
		doc.db_set("run_as", SYSTEM_MANAGER)
		self.assertEqual(score_documents(compile_score_rule_doc(doc), [row])["TF-ROW"].score, 10)
