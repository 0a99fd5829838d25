"""A rule never does more than the person who wrote it may do (issue #11), proven as an attacker.

Three real users: a CRM Automation Manager (with Sales User, as a sales-ops person has), a plain
Sales User and a System Manager. Every escalation is attempted as the manager, through the desk's
own insert or the REST methods, and must be refused (at save, or at run time with the action
failed and logged) with nothing written; the same rule written by a System Manager still works.
Rules are fired by saves of the Administrator, so a test cannot pass by running as the saver.
"""

import json
from contextlib import contextmanager

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import logs_for, make_lead, make_sales_order, make_user, new_request

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User", "Email Template"]

MANAGER = "crm-trust-manager@example.com"
SALES = "crm-trust-sales@example.com"
SYSTEM_MANAGER = "crm-trust-sysmgr@example.com"
FORMER_MANAGER = "crm-trust-former@example.com"
LEVEL_1_FIELD = "crm_trust_level_one"
LEVEL_0_FIELD = "crm_trust_level_zero"
RULE_PREFIX = "_Test Trust"

# Ways out of a Jinja template to the site: each must be refused when the rule is saved.
TEMPLATE_ESCAPES = (
	"{{ frappe.db.set_value('User', 'Administrator', 'last_name', 'PWNED') }}{{ frappe.db.commit() }}",
	"{{ doc.__class__ }}",
	"{{ doc.__class__.__mro__[1].__subclasses__() }}",
	"{{ doc._values }}",
	"{{ doc['__class__'] }}",
	"{{ doc|attr('__class__') }}",
	"{{ doc.items|map(attribute='__class__')|list }}",
	"{{ cycler.__init__.__globals__ }}",
	"{{ joiner.__init__.__globals__.os }}",
	"{{ namespace(a=1) }}",
	"{{ lipsum.__globals__['os'] }}",
	"{{ range(10) }}",
	"{{ self }}",
	"{{ self._TemplateReference__context }}",
	"{{ config }}",
	"{{ request }}",
	"{{ get_url() }}",
	"{{ frappe.get_doc('User', 'Administrator').save() }}",
	"{% include 'crm_automation/hooks.py' %}",
	"{% import 'x' as x %}",
	"{% extends 'x' %}",
	"{{ ''.__class__.__mro__ }}",
	"{{ doc.name ",
)

# Ways out of an Advanced Condition: each must be refused when the rule is saved.
CONDITION_ESCAPES = (
	"doc.delete()",
	"doc.db_set('company_name', 'PWNED') or True",
	"doc.save()",
	"doc.add_comment('Comment', 'x')",
	"old_doc.delete()",
	"frappe.db.commit()",
	"frappe.db.set_value('User', 'Administrator', 'last_name', 'PWNED')",
	"getattr(doc, 'delete')()",
	"(lambda: doc.delete())()",
	"[d.delete() for d in [doc]]",
	"any(d.delete() for d in [doc])",
	"__import__('os').system('true')",
	"doc.__class__",
	"doc.company_name.__class__.__mro__",
	"type(doc)",
	"eval('1')",
	"(x := doc)",
	"doc.items[0].delete() if doc.items else True",
	"{**doc}",
	"f'{doc.__class__}'",
	"doc.company_name.format(doc)",
	"'x' * 10 ** 9",
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


def comments_on(doc):
	return frappe.get_all(
		"Comment",
		filters={"reference_doctype": doc.doctype, "reference_name": doc.name, "comment_type": "Comment"},
		pluck="content",
	)


def action_results(doc, rule):
	log = logs_for(doc, rule)
	if not log:
		return None, []
	log = frappe.get_doc("Automation Log", log[-1].name)
	return log, [(row.status, row.result) for row in log.actions]


def set_custom_field_permlevel(fieldname, permlevel):
	frappe.db.set_value("Custom Field", {"dt": "Lead", "fieldname": fieldname}, "permlevel", permlevel)
	frappe.clear_cache(doctype="Lead")


class TrustBoundaryTestCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_user(MANAGER, roles=["CRM Automation Manager", "Sales User"])
		make_user(FORMER_MANAGER, roles=["CRM Automation Manager", "Sales User"])
		make_user(SALES, roles=["Sales User"])
		make_user(
			SYSTEM_MANAGER, roles=["System Manager", "CRM Automation Manager", "Sales Manager", "Sales User"]
		)
		for fieldname, permlevel in ((LEVEL_1_FIELD, 1), (LEVEL_0_FIELD, 0)):
			if not frappe.db.exists("Custom Field", {"dt": "Lead", "fieldname": fieldname}):
				frappe.get_doc(
					{
						"doctype": "Custom Field",
						"dt": "Lead",
						"fieldname": fieldname,
						"label": fieldname.replace("_", " ").title(),
						"fieldtype": "Data",
						"insert_after": "company_name",
						"permlevel": permlevel,
					}
				).insert(ignore_permissions=True)
		frappe.db.set_single_value(
			"CRM Automation Settings", {"enabled": 1, "max_recursion_depth": 3, "failure_threshold": 5}
		)
		frappe.db.commit()
		cls.administrator_before = frappe.db.get_value("User", "Administrator", ["last_name", "modified"])

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()
		set_custom_field_permlevel(LEVEL_0_FIELD, 0)

	def tearDown(self):
		frappe.set_user("Administrator")
		for name in frappe.get_all(
			"Workflow Rule", filters={"name": ("like", f"{RULE_PREFIX}%")}, pluck="name"
		):
			frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
		for doctype, field in (("Escalation Policy", "policy_name"), ("Lead Score Rule", "rule_name")):
			for name in frappe.get_all(doctype, filters={field: ("like", f"{RULE_PREFIX}%")}, pluck="name"):
				frappe.delete_doc(doctype, name, force=True, ignore_permissions=True)
		clear_rule_cache()
		set_custom_field_permlevel(LEVEL_0_FIELD, 0)
		self.assertEqual(
			frappe.db.get_value("User", "Administrator", ["last_name", "modified"]),
			self.administrator_before,
			"the Administrator user was written",
		)

	def assert_refused(self, pattern, user=MANAGER, name=f"{RULE_PREFIX} Refused", **rule):
		with self.assertRaisesRegex((frappe.ValidationError, frappe.PermissionError), pattern):
			save_rule_as(user, name, **rule)
		self.assertFalse(frappe.db.exists("Workflow Rule", name), "nothing half-saved")


class TestReadOnlyTemplates(TrustBoundaryTestCase):
	def test_template_escapes_are_refused_at_save_in_every_template_field(self):
		places = (
			("Add Comment", "message", "New", {}),
			("Set Value", "value", "New", {"target_field": "company_name"}),
			("Create ToDo", "message", "New", {"to_owner": 1}),
			("System Notification", "subject", "New", {"to_owner": 1}),
			("Send Email", "subject", "New", {"to_owner": 1, "message": "x"}),
			("Add Tag", "tag", "New", {}),
			("Reject", "message", "Validate", {}),
		)
		for template in TEMPLATE_ESCAPES:
			for action_type, fieldname, trigger, extra in places:
				with self.subTest(template=template, action=action_type):
					self.assert_refused(
						r"Actions, row 1, .*(Jinja template does not compile|not available|private|may not read)",
						trigger=trigger,
						actions=[{"action_type": action_type, fieldname: template, **extra}],
					)

	def test_template_escape_in_a_create_document_field_map_is_refused(self):
		for template in TEMPLATE_ESCAPES[:8]:
			with self.subTest(template=template):
				self.assert_refused(
					r"Actions, row 1, .*Field Mapping \(description\)",
					actions=[
						{
							"action_type": "Create Document",
							"target_doctype": "ToDo",
							"field_map": json.dumps({"description": template}),
						}
					],
				)

	def test_template_escape_in_an_email_template_is_refused(self):
		name = f"{RULE_PREFIX} Escape Template"
		if not frappe.db.exists("Email Template", name):
			frappe.get_doc(
				{
					"doctype": "Email Template",
					"name": name,
					"subject": "Hello",
					"response": "{{ frappe.db.set_value('User', 'Administrator', 'last_name', 'PWNED') }}",
				}
			).insert(ignore_permissions=True)
		try:
			self.assert_refused(
				r"Actions, row 1, .*Email Template .*frappe, which is not available",
				actions=[{"action_type": "Send Email", "to_owner": 1, "email_template": name}],
			)
		finally:
			frappe.delete_doc("Email Template", name, force=True)

	def test_a_template_that_slipped_in_fails_its_action_and_keeps_the_save(self):
		"""A rule stored before the check (or written to the database directly) still cannot reach
		the site: rendering refuses, the action fails and is logged, the Lead is saved."""
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Slipped Template",
			actions=[{"action_type": "Add Comment", "message": "hi"}],
		)
		escape = (
			"{{ frappe.db.set_value('User', 'Administrator', 'last_name', 'PWNED') }}{{ frappe.db.commit() }}"
		)
		frappe.db.set_value("Workflow Rule Action", rule.actions[0].name, "message", escape)
		clear_rule_cache()
		lead = make_lead(first_name="Template Escape")
		self.assertTrue(frappe.db.exists("Lead", lead.name))
		log, results = action_results(lead, rule.name)
		self.assertEqual(log.outcome, "Failed")
		self.assertEqual(results[0][0], "Failed")
		self.assertIn("Template could not be rendered", results[0][1])
		self.assertEqual(comments_on(lead), [])

	def test_dynamic_tricks_render_nothing_reachable(self):
		"""What a static check cannot see (an attribute name built at run time) the sandbox refuses:
		the private attribute renders as nothing, a call on it fails the action."""
		tricks = "{% set k = '__cla' ~ 'ss__' %}[{{ doc|attr(k) }}][{{ doc[k] }}][{{ doc.name|attr(k) }}]"
		rule = save_rule_as(
			MANAGER, f"{RULE_PREFIX} Dynamic", actions=[{"action_type": "Add Comment", "message": tricks}]
		)
		lead = make_lead(first_name="Dynamic")
		self.assertEqual(comments_on(lead), ["[][None][]"], "a private key reads as missing")
		frappe.db.set_value(
			"Workflow Rule Action",
			rule.actions[0].name,
			"message",
			"{% set k = '__cla' ~ 'ss__' %}{{ (doc|attr(k))() }}",
		)
		clear_rule_cache()
		new_request()
		other = make_lead(first_name="Dynamic Call")
		_log, results = action_results(other, rule.name)
		self.assertEqual(results[0][0], "Failed")
		self.assertEqual(comments_on(other), [])

	def test_templates_see_values_and_child_rows(self):
		"""The legitimate use keeps working: fields, the value before the save, child rows, helpers."""
		order = make_sales_order()
		save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Values",
			document_type="Sales Order",
			trigger="Save",
			actions=[
				{
					"action_type": "Add Comment",
					"message": "{{ doc.customer }}|{{ old_doc.customer }}|{{ len(doc.items) }}|{% for row in doc.items %}{{ row.item_code }}:{{ row.qty|int }}{% endfor %}",
				}
			],
		)
		order.reload()
		order.save()
		item = order.items[0]
		self.assertEqual(
			comments_on(order), [f"{order.customer}|{order.customer}|1|{item.item_code}:{int(item.qty)}"]
		)


class TestReadOnlyConditions(TrustBoundaryTestCase):
	def test_condition_escapes_are_refused_at_save(self):
		for expression in CONDITION_ESCAPES:
			with self.subTest(expression=expression):
				self.assert_refused(
					"Advanced Condition",
					condition_expression=expression,
					actions=[{"action_type": "Add Comment", "message": "x"}],
				)

	def test_a_condition_that_slipped_in_fails_the_run_and_the_lead_stays(self):
		for expression in ("doc.delete() or True", "doc.db_set('company_name', 'PWNED') or True"):
			with self.subTest(expression=expression):
				new_request()
				rule = save_rule_as(
					MANAGER,
					f"{RULE_PREFIX} Slipped Condition",
					condition_expression="doc.company_name == 'Trust Co'",
					actions=[{"action_type": "Add Comment", "message": "fired"}],
				)
				frappe.db.set_value("Workflow Rule", rule.name, "condition_expression", expression)
				clear_rule_cache()
				lead = make_lead(first_name="Condition Escape", company_name="Trust Co")
				self.assertTrue(frappe.db.exists("Lead", lead.name), "the lead was deleted")
				self.assertEqual(frappe.db.get_value("Lead", lead.name, "company_name"), "Trust Co")
				log = logs_for(lead, rule.name)
				self.assertEqual([row.outcome for row in log], ["Failed"])
				self.assertIn("advanced condition failed", log[0].reason)
				self.assertEqual(frappe.db.get_value("Workflow Rule", rule.name, "consecutive_failures"), 1)
				self.assertEqual(comments_on(lead), [])
				frappe.delete_doc("Workflow Rule", rule.name, force=True)

	def test_a_condition_that_fails_on_the_data_fails_the_run_and_keeps_the_save(self):
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Data Failure",
			condition_expression="doc.website.lower() == 'x'",
			actions=[{"action_type": "Add Comment", "message": "fired"}],
		)
		lead = make_lead(first_name="No Website")
		self.assertTrue(frappe.db.exists("Lead", lead.name))
		self.assertEqual([row.outcome for row in logs_for(lead, rule.name)], ["Failed"])

	def test_conditions_read_values_children_and_the_value_before(self):
		save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Condition Values",
			trigger="Save",
			condition_expression=(
				"doc.company_name.lower().startswith('acme') and old_doc.get('company_name') != doc.company_name"
				" and regex_match(r'\\w+', doc.first_name) and len(doc.get('notes') or []) == 0"
			),
			actions=[{"action_type": "Add Comment", "message": "renamed to {{ doc.company_name }}"}],
		)
		lead = make_lead(first_name="Cond", company_name="Before")
		lead.company_name = "ACME Ltd"
		lead.save()
		self.assertEqual(comments_on(lead), ["renamed to ACME Ltd"])


class TestProtectedDoctypes(TrustBoundaryTestCase):
	def test_rules_on_protected_doctypes_are_refused_for_the_manager(self):
		for doctype in (
			"User",
			"DocShare",
			"User Permission",
			"Custom DocPerm",
			"Server Script",
			"Role",
			"Report",
			"Notification",
		):
			with self.subTest(doctype=doctype):
				self.assert_refused(
					"(protected doctype|cannot run on)",
					document_type=doctype,
					actions=[{"action_type": "Add Comment", "message": "x"}],
				)
		for doctype in ("Has Role", "Workflow Rule", "System Settings", "Custom Field"):
			with self.subTest(doctype=doctype):
				self.assert_refused(
					"cannot run on",
					document_type=doctype,
					actions=[{"action_type": "Add Comment", "message": "x"}],
				)

	def test_a_system_manager_may_write_rules_on_user(self):
		rule = save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} On User",
			document_type="User",
			trigger="Save",
			actions=[{"action_type": "Add Comment", "message": "seen"}],
		)
		self.assertEqual(rule.run_as, SYSTEM_MANAGER)
		with as_user(MANAGER), self.assertRaisesRegex(frappe.PermissionError, "protected doctype"):
			rule = frappe.get_doc("Workflow Rule", rule.name)
			rule.actions[0].message = "taken over by the manager"
			rule.save()
		self.assertEqual(frappe.db.get_value("Workflow Rule Action", rule.actions[0].name, "message"), "seen")

	def test_escalation_policies_and_score_rules_on_protected_doctypes_are_refused(self):
		with as_user(MANAGER), self.assertRaisesRegex(frappe.PermissionError, "protected doctype"):
			frappe.get_doc(
				{
					"doctype": "Escalation Policy",
					"policy_name": f"{RULE_PREFIX} Policy on User",
					"document_type": "User",
					"enabled": 1,
					"levels": [
						{
							"level": 1,
							"after": 1,
							"unit": "Hours",
							"action_type": "Add Comment",
							"message": "x",
						}
					],
				}
			).insert()
		with as_user(MANAGER), self.assertRaisesRegex(frappe.PermissionError, "protected doctype"):
			frappe.get_doc(
				{
					"doctype": "Lead Score Rule",
					"rule_name": f"{RULE_PREFIX} Score on User",
					"document_type": "User",
					"enabled": 0,
					"bands": [{"min_score": 0, "grade": "Any", "set_field": "enabled", "set_value": "0"}],
				}
			).insert()
		self.assertFalse(
			frappe.db.exists("Escalation Policy", {"policy_name": f"{RULE_PREFIX} Policy on User"})
		)
		self.assertFalse(frappe.db.exists("Lead Score Rule", {"rule_name": f"{RULE_PREFIX} Score on User"}))

	def test_create_document_of_a_protected_doctype_is_refused(self):
		targets = {
			"User": {"email": "crm-trust-created@example.com", "first_name": "Created"},
			"Has Role": {"role": "System Manager"},
			"DocShare": {"user": MANAGER, "share_doctype": "User", "share_name": "Administrator", "write": 1},
			"User Permission": {"user": MANAGER, "allow": "Company", "for_value": "x"},
			"Server Script": {"script_type": "API", "api_method": "pwn", "script": "frappe.db.commit()"},
			"Custom DocPerm": {"parent": "User", "role": "Sales User", "write": 1},
			"Workflow Rule Action": {"action_type": "Add Comment"},
			"Email Template": {"subject": "x", "response": "plain"},
		}
		for doctype, field_map in targets.items():
			with self.subTest(doctype=doctype):
				self.assert_refused(
					"protected doctype",
					actions=[
						{
							"action_type": "Create Document",
							"target_doctype": doctype,
							"field_map": json.dumps(field_map),
						}
					],
				)
		self.assertFalse(frappe.db.exists("User", "crm-trust-created@example.com"))
		self.assertNotIn("System Manager", frappe.get_roles(MANAGER))

	def test_actions_on_a_linked_protected_document_are_refused(self):
		"""Lead Owner links to a User: "set the owner's field" would write the User."""
		for action in (
			{
				"action_type": "Set Value",
				"target_link_field": "lead_owner",
				"target_field": "last_name",
				"value": "PWNED",
			},
			{"action_type": "Add Comment", "target_link_field": "lead_owner", "message": "x"},
		):
			with self.subTest(action=action["action_type"]):
				self.assert_refused("linked .*User.* protected doctype", trigger="Save", actions=[action])

	def test_a_protected_target_that_slipped_in_is_refused_at_run_time(self):
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Slipped Target",
			actions=[
				{
					"action_type": "Create Document",
					"target_doctype": "ToDo",
					"field_map": json.dumps({"description": "x"}),
				}
			],
		)
		frappe.db.set_value(
			"Workflow Rule Action",
			rule.actions[0].name,
			{
				"target_doctype": "Server Script",
				"field_map": json.dumps(
					{"script_type": "API", "api_method": "crm_trust_pwn", "script": "x = 1"}
				),
			},
		)
		clear_rule_cache()
		lead = make_lead(first_name="Slipped Target")
		_log, results = action_results(lead, rule.name)
		self.assertEqual(results[0][0], "Failed")
		self.assertIn("protected doctype", results[0][1])
		self.assertFalse(frappe.db.exists("Server Script", {"api_method": "crm_trust_pwn"}))


class TestRunAs(TrustBoundaryTestCase):
	def test_the_manager_cannot_make_a_rule_run_as_someone_else(self):
		self.assert_refused(
			"only a System Manager may make a rule run as another user",
			run_as="Administrator",
			actions=[{"action_type": "Add Comment", "message": "x"}],
		)

	def test_rest_insert_and_save_cannot_set_run_as_either(self):
		from frappe.client import insert, save, set_value

		name = f"{RULE_PREFIX} REST"
		with as_user(MANAGER):
			with self.assertRaisesRegex(frappe.PermissionError, "only a System Manager"):
				insert(
					rule_dict(
						name, actions=[{"action_type": "Add Comment", "message": "x"}], run_as="Administrator"
					)
				)
			self.assertFalse(frappe.db.exists("Workflow Rule", name))
			saved = insert(rule_dict(name, actions=[{"action_type": "Add Comment", "message": "x"}]))
			self.assertEqual(saved["run_as"], MANAGER)
			with self.assertRaisesRegex(frappe.PermissionError, "only a System Manager"):
				set_value("Workflow Rule", name, "run_as", "Administrator")
			with self.assertRaisesRegex(frappe.PermissionError, "only a System Manager"):
				save({**saved, "run_as": SYSTEM_MANAGER})
		self.assertEqual(frappe.db.get_value("Workflow Rule", name, "run_as"), MANAGER)

	def test_a_system_manager_may_choose_and_an_edit_by_the_manager_takes_over(self):
		rule = save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Chosen",
			run_as="Administrator",
			actions=[{"action_type": "Add Comment", "message": "x"}],
		)
		self.assertEqual(rule.run_as, "Administrator")
		with as_user(MANAGER):
			rule = frappe.get_doc("Workflow Rule", rule.name)
			rule.description = "edited by the manager"
			rule.save()
		self.assertEqual(rule.run_as, MANAGER, "the user who last edited the rule is the one it runs as")
		with as_user(SYSTEM_MANAGER):
			rule = frappe.get_doc("Workflow Rule", rule.name)
			rule.run_as = SALES
			rule.save()
		self.assertEqual(frappe.db.get_value("Workflow Rule", rule.name, "run_as"), SALES)

	def test_set_value_of_system_fields_is_refused(self):
		for fieldname in ("docstatus", "owner", "name", "modified_by"):
			with self.subTest(fieldname=fieldname):
				self.assert_refused(
					"(rules may not write|not a field|cannot)",
					actions=[{"action_type": "Set Value", "target_field": fieldname, "value": "1"}],
				)

	def test_set_value_above_the_authors_permlevel(self):
		self.assert_refused(
			f"run-as user .*{MANAGER}.* may not write .*{LEVEL_1_FIELD}.*permission level 1",
			actions=[{"action_type": "Set Value", "target_field": LEVEL_1_FIELD, "value": "escalated"}],
		)
		self.assert_refused(
			f"may not write .*{LEVEL_1_FIELD}",
			trigger="Validate",
			actions=[{"action_type": "Set Value", "target_field": LEVEL_1_FIELD, "value": "escalated"}],
		)
		# A System Manager may have it run as a user with that right.
		save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Level One",
			run_as="Administrator",
			actions=[{"action_type": "Set Value", "target_field": LEVEL_1_FIELD, "value": "granted"}],
		)
		lead = make_lead(first_name="Level One")
		self.assertEqual(frappe.db.get_value("Lead", lead.name, LEVEL_1_FIELD), "granted")

	def test_losing_a_field_right_fails_the_action_and_shows_in_health(self):
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Lost Level",
			actions=[{"action_type": "Set Value", "target_field": LEVEL_0_FIELD, "value": "written"}],
		)
		lead = make_lead(first_name="Before Loss")
		self.assertEqual(frappe.db.get_value("Lead", lead.name, LEVEL_0_FIELD), "written")
		set_custom_field_permlevel(LEVEL_0_FIELD, 1)
		new_request()
		lead = make_lead(first_name="After Loss")
		self.assertIsNone(frappe.db.get_value("Lead", lead.name, LEVEL_0_FIELD))
		log, results = action_results(lead, rule.name)
		self.assertEqual(log.outcome, "Failed")
		self.assertRegex(
			results[0][1], f"{MANAGER}.*may not write {LEVEL_0_FIELD} of Lead \\(permission level 1\\)"
		)
		self.assertEqual(frappe.db.get_value("Workflow Rule", rule.name, "consecutive_failures"), 1)

	def test_losing_a_field_right_on_validate_keeps_the_save(self):
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Lost Level Validate",
			trigger="Validate",
			actions=[{"action_type": "Set Value", "target_field": LEVEL_0_FIELD, "value": "written"}],
		)
		set_custom_field_permlevel(LEVEL_0_FIELD, 1)
		lead = make_lead(first_name="Validate Loss")
		self.assertTrue(frappe.db.exists("Lead", lead.name))
		self.assertIsNone(frappe.db.get_value("Lead", lead.name, LEVEL_0_FIELD))
		self.assertEqual([row.outcome for row in logs_for(lead, rule.name)], ["Failed"])

	def test_losing_a_role_fails_every_action_with_the_reason(self):
		rule = save_rule_as(
			FORMER_MANAGER,
			f"{RULE_PREFIX} Lost Role",
			actions=[{"action_type": "Add Comment", "message": "still here"}],
		)
		user = frappe.get_doc("User", FORMER_MANAGER)
		user.remove_roles("Sales User")
		try:
			lead = make_lead(first_name="Lost Role")
			_log, results = action_results(lead, rule.name)
			self.assertEqual(results[0][0], "Failed")
			self.assertRegex(
				results[0][1], f"Run-as user {FORMER_MANAGER} has no read permission on Lead {lead.name}"
			)
			self.assertEqual(comments_on(lead), [])
			self.assertEqual(frappe.db.get_value("Workflow Rule", rule.name, "consecutive_failures"), 1)
		finally:
			make_user(FORMER_MANAGER, roles=["Sales User"])

	def test_a_disabled_run_as_user_stops_the_rule(self):
		rule = save_rule_as(
			FORMER_MANAGER,
			f"{RULE_PREFIX} Disabled",
			actions=[{"action_type": "Add Comment", "message": "x"}],
		)
		frappe.db.set_value("User", FORMER_MANAGER, "enabled", 0)
		try:
			lead = make_lead(first_name="Disabled Author")
			_log, results = action_results(lead, rule.name)
			self.assertEqual(results[0], ("Failed", f"Run-as user {FORMER_MANAGER} is disabled"))
		finally:
			frappe.db.set_value("User", FORMER_MANAGER, "enabled", 1)

	def test_create_document_needs_the_create_right(self):
		self.assert_refused(
			f"run-as user .*{MANAGER}.* has no create permission on .*Journal Entry",
			actions=[
				{"action_type": "Create Document", "target_doctype": "Journal Entry", "field_map": "{}"}
			],
		)
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Create ToDo",
			actions=[
				{
					"action_type": "Create Document",
					"target_doctype": "ToDo",
					"field_map": json.dumps(
						{"description": "call {{ doc.first_name }}", "allocated_to": MANAGER}
					),
				}
			],
		)
		lead = make_lead(first_name="Creator")
		_log, results = action_results(lead, rule.name)
		self.assertEqual(results[0][0], "Success", results)
		created = frappe.db.get_value(
			"ToDo",
			{"reference_name": lead.name, "description": "call Creator"},
			["name", "owner"],
			as_dict=True,
		)
		self.assertTrue(created)
		self.assertEqual(
			created.owner, MANAGER, "created as the run-as user, not the Administrator who saved"
		)

	def test_submitted_sales_order_fields_only_if_allowed_on_submit(self):
		rule = save_rule_as(
			MANAGER,
			f"{RULE_PREFIX} Submitted",
			document_type="Sales Order",
			trigger="Submit",
			actions=[
				{"action_type": "Set Value", "target_field": "order_type", "value": "Maintenance"},
				{"action_type": "Set Value", "target_field": "po_no", "value": "PO-TRUST"},
			],
		)
		order = make_sales_order(submit=True)
		_log, results = action_results(order, rule.name)
		self.assertEqual([status for status, _result in results], ["Failed", "Success"])
		self.assertIn("submitted", results[0][1])
		self.assertEqual(
			frappe.db.get_value("Sales Order", order.name, ["order_type", "po_no"]), ("Sales", "PO-TRUST")
		)
		self.assert_refused(
			"may not write .*ignore_pricing_rule.*permission level 1",
			document_type="Sales Order",
			trigger="Save",
			actions=[{"action_type": "Set Value", "target_field": "ignore_pricing_rule", "value": "1"}],
		)

	def test_a_sales_user_cannot_write_rules_at_all(self):
		with as_user(SALES), self.assertRaises(frappe.PermissionError):
			frappe.get_doc(
				rule_dict(f"{RULE_PREFIX} Sales", actions=[{"action_type": "Add Comment", "message": "x"}])
			).insert()

	def test_escalation_policies_check_templates_and_run_as_their_author(self):
		with as_user(MANAGER):
			with self.assertRaisesRegex(
				frappe.ValidationError, "Levels, row 1, .*frappe, which is not available"
			):
				frappe.get_doc(
					{
						"doctype": "Escalation Policy",
						"policy_name": f"{RULE_PREFIX} Policy Template",
						"document_type": "Lead",
						"enabled": 1,
						"levels": [
							{
								"level": 1,
								"after": 1,
								"unit": "Hours",
								"action_type": "Add Comment",
								"message": "{{ frappe.db.commit() }}",
							}
						],
					}
				).insert()
			with self.assertRaisesRegex(frappe.PermissionError, "only a System Manager"):
				frappe.get_doc(
					{
						"doctype": "Escalation Policy",
						"policy_name": f"{RULE_PREFIX} Policy Run As",
						"document_type": "Lead",
						"enabled": 1,
						"run_as": "Administrator",
						"levels": [
							{
								"level": 1,
								"after": 1,
								"unit": "Hours",
								"action_type": "Add Comment",
								"message": "x",
							}
						],
					}
				).insert()
			policy = frappe.get_doc(
				{
					"doctype": "Escalation Policy",
					"policy_name": f"{RULE_PREFIX} Policy Level One",
					"document_type": "Lead",
					"enabled": 1,
					"levels": [
						{
							"level": 1,
							"after": 1,
							"unit": "Hours",
							"action_type": "Add Comment",
							"message": "x",
						}
					],
				}
			).insert()
		self.assertEqual(policy.run_as, MANAGER)
		from crm_automation.escalation import clear_policy_cache
		from crm_automation.escalation import policy_index as _index

		clear_policy_cache()
		self.assertEqual(_index()["by_name"][policy.name].run_as, MANAGER, "its actions run as the manager")


class TestScoreRuleBands(TrustBoundaryTestCase):
	def score_rule(self, set_field, enabled=0):
		return {
			"doctype": "Lead Score Rule",
			"rule_name": f"{RULE_PREFIX} Score Band",
			"document_type": "Lead",
			"enabled": enabled,
			"criteria": [
				{
					"label": "has a company",
					"points": 1,
					"conditions": json.dumps({"all": [{"field": "company_name", "op": "is set"}]}),
				}
			],
			"bands": [{"min_score": -100, "grade": "Any", "set_field": set_field, "set_value": "banded"}],
		}

	def test_a_band_may_not_set_a_field_above_the_authors_permlevel(self):
		with (
			as_user(MANAGER),
			self.assertRaisesRegex(frappe.PermissionError, f"may not write .*{LEVEL_1_FIELD}"),
		):
			frappe.get_doc(self.score_rule(LEVEL_1_FIELD)).insert()
		self.assertFalse(frappe.db.exists("Lead Score Rule", {"rule_name": f"{RULE_PREFIX} Score Band"}))

	def test_a_band_whose_author_lost_the_right_does_not_set_the_field(self):
		from crm_automation.scoring import band_field_allowed
		from crm_automation.scoring import compile_score_rule_doc as compile_rule

		with as_user(MANAGER):
			rule_doc = frappe.get_doc(self.score_rule(LEVEL_0_FIELD)).insert()
		self.assertEqual(rule_doc.run_as, MANAGER)
		rule = compile_rule(rule_doc)
		lead = make_lead(first_name="Band")
		self.assertTrue(band_field_allowed(rule, lead, LEVEL_0_FIELD))
		set_custom_field_permlevel(LEVEL_0_FIELD, 1)
		lead = frappe.get_doc("Lead", lead.name)
		self.assertFalse(band_field_allowed(rule, lead, LEVEL_0_FIELD))
