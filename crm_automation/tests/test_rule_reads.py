"""`get_value` in conditions and templates reads only what the rule's run-as user may read (#11).

Rules are fired by saves of the Administrator, who may read everything: a read that answers only
because it ran as the saver would be seen. ToDo is the record that differs between users (a Sales
User reads only the ToDos allocated to or assigned by them), User is a protected doctype, and the
level-1 custom field on Lead is beyond a Sales User's permlevel.
"""

import frappe

from crm_automation.actions.common import ActionError, render
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import logs_for, make_lead, new_request
from crm_automation.tests.test_trust_boundary import (
	LEVEL_0_FIELD,
	MANAGER,
	RULE_PREFIX,
	SALES,
	SYSTEM_MANAGER,
	TrustBoundaryTestCase,
	action_results,
	as_user,
	comments_on,
	rule_dict,
	save_rule_as,
	set_custom_field_permlevel,
)
from crm_automation.trust.run_as_reads import reading_as

MARKER = "crm-rule-reads-marker"
HIDDEN_FIELD = LEVEL_0_FIELD


def comment_rule(user, name, message, **fields):
	return save_rule_as(user, name, actions=[{"action_type": "Add Comment", "message": message}], **fields)


class TestRuleReads(TrustBoundaryTestCase):
	def setUp(self):
		super().setUp()
		frappe.db.delete("ToDo", {"description": ("like", f"{MARKER}%")})
		self.own_todo = self.make_todo(f"{MARKER} own", MANAGER)
		self.foreign_todo = self.make_todo(f"{MARKER} foreign", "Administrator")

	def tearDown(self):
		frappe.db.delete("ToDo", {"description": ("like", f"{MARKER}%")})
		super().tearDown()

	def make_todo(self, description, allocated_to):
		todo = frappe.get_doc(
			{"doctype": "ToDo", "description": description, "allocated_to": allocated_to, "status": "Open"}
		).insert(ignore_permissions=True)
		frappe.db.set_value("ToDo", todo.name, "assigned_by", allocated_to)
		return todo

	def fire(self, rule, first_name="Reader"):
		new_request()
		lead = make_lead(first_name=first_name)
		return lead, action_results(lead, rule.name)

	def test_a_template_reads_what_the_run_as_user_may_read_and_nothing_else(self):
		"""The manager's rule reads the manager's ToDo; the Administrator's ToDo and a ToDo that
		does not exist read the same (None), although the Administrator's save fired the rule."""
		template = (
			"[{{ get_value('ToDo', '%s', 'description') }}]"
			"[{{ get_value('ToDo', '%s', 'description') }}]"
			"[{{ get_value('ToDo', 'no-such-todo', 'description') }}]"
		) % (self.own_todo.name, self.foreign_todo.name)
		rule = comment_rule(MANAGER, f"{RULE_PREFIX} Reads", template)
		lead, (_log, results) = self.fire(rule)
		self.assertEqual(results[0][0], "Success", results)
		self.assertEqual(comments_on(lead), [f"[{MARKER} own][None][None]"])

	def test_the_same_template_run_as_a_system_manager_reads_everything(self):
		template = "[{{ get_value('ToDo', '%s', 'description') }}]" % self.foreign_todo.name
		rule = comment_rule(SYSTEM_MANAGER, f"{RULE_PREFIX} Reads SM", template, run_as="Administrator")
		lead, _results = self.fire(rule)
		self.assertEqual(comments_on(lead), [f"[{MARKER} foreign]"])

	def test_filters_find_only_records_the_run_as_user_may_read(self):
		rule = comment_rule(
			MANAGER,
			f"{RULE_PREFIX} Filters",
			"[{{ get_value('ToDo', {'description': '%s foreign'}, 'name') }}]"
			"[{{ get_value('ToDo', {'description': '%s own'}, 'allocated_to') }}]" % (MARKER, MARKER),
		)
		lead, _results = self.fire(rule)
		self.assertEqual(comments_on(lead), [f"[None][{MANAGER}]"])

	def test_an_advanced_condition_reads_as_the_run_as_user(self):
		"""A condition true only if the Administrator's ToDo is read: it must be false for the
		manager's rule, true for the same rule run as the Administrator."""
		condition = f"get_value('ToDo', {{'description': '{MARKER} foreign'}}, 'status') == 'Open'"
		rule = comment_rule(MANAGER, f"{RULE_PREFIX} Condition", "fired", condition_expression=condition)
		lead, _results = self.fire(rule)
		self.assertEqual(comments_on(lead), [])
		self.assertEqual(logs_for(lead, rule.name), [])
		frappe.delete_doc("Workflow Rule", rule.name, force=True)
		own = f"get_value('ToDo', {{'description': '{MARKER} own'}}, 'status') == 'Open'"
		rule = comment_rule(MANAGER, f"{RULE_PREFIX} Condition Own", "fired", condition_expression=own)
		lead, _results = self.fire(rule, "Reader Own")
		self.assertEqual(comments_on(lead), ["fired"])

	def test_reads_a_rule_may_never_make_are_refused_at_save(self):
		refusals = (
			("{{ get_value('User', 'Administrator', 'last_name') }}", "User.*protected doctype"),
			("{{ get_value('Has Role', 'x', 'role') }}", "Has Role.*protected doctype"),
			("{{ get_value('DocShare', {'user': 'x'}, 'name') }}", "DocShare.*protected doctype"),
			("{{ get_value('Workflow Rule', 'x', 'conditions') }}", "Workflow Rule.*protected doctype"),
			("{{ get_value('Sales Order Item', 'x', 'rate') }}", "child table"),
			("{{ get_value('No Such Doctype', 'x', 'y') }}", "no document type"),
			("{{ get_value('ToDo', 'x', 'no_such_field') }}", "has no field"),
			(
				"{{ get_value('Lead', doc.name, '%s') }}" % HIDDEN_FIELD,
				f"may not read the field.*{HIDDEN_FIELD}",
			),
			(
				"{{ get_value('Lead', {'%s': 'x'}, 'name') }}" % HIDDEN_FIELD,
				f"may not read the field.*{HIDDEN_FIELD}",
			),
			("{{ get_value('Journal Entry', 'x', 'title') }}", "may not read.*Journal Entry"),
		)
		# No role reads permission level 3 of Lead: the field is beyond the manager's reach.
		set_custom_field_permlevel(HIDDEN_FIELD, 3)
		for template, pattern in refusals:
			with self.subTest(template=template):
				self.assert_refused(pattern, actions=[{"action_type": "Add Comment", "message": template}])
				self.assert_refused(
					pattern,
					condition_expression=template.strip("{} "),
					actions=[{"action_type": "Add Comment", "message": "x"}],
				)

	def test_a_password_is_never_read_even_by_a_system_manager(self):
		self.assert_refused(
			"password",
			user=SYSTEM_MANAGER,
			run_as="Administrator",
			actions=[
				{"action_type": "Add Comment", "message": "{{ get_value('Email Account', 'x', 'password') }}"}
			],
		)

	def test_a_read_built_at_run_time_is_checked_when_it_runs(self):
		"""The doctype comes from the document: the save cannot see it, the run refuses it, the
		action fails with the reason, the Lead is saved and nothing of the User is shown."""
		rule = comment_rule(
			MANAGER,
			f"{RULE_PREFIX} Dynamic Read",
			"{{ get_value(doc.company_name, 'Administrator', 'last_name') }}",
		)
		new_request()
		lead = make_lead(first_name="Dynamic Read", company_name="User")
		self.assertTrue(frappe.db.exists("Lead", lead.name))
		_log, results = action_results(lead, rule.name)
		self.assertEqual(results[0][0], "Failed")
		self.assertIn("protected doctype", results[0][1])
		self.assertEqual(comments_on(lead), [])

	def test_a_dynamic_condition_read_fails_the_run_and_keeps_the_save(self):
		rule = comment_rule(
			MANAGER,
			f"{RULE_PREFIX} Dynamic Condition",
			"fired",
			condition_expression="get_value(doc.company_name, 'Administrator', 'last_name') == 'x'",
		)
		new_request()
		lead = make_lead(first_name="Dynamic Condition", company_name="User")
		self.assertTrue(frappe.db.exists("Lead", lead.name))
		log = logs_for(lead, rule.name)
		self.assertEqual([row.outcome for row in log], ["Failed"])
		self.assertIn("protected doctype", log[0].reason)

	def test_outside_a_rule_reads_run_as_guest(self):
		"""A renderer that forgot to say whose rule it renders reads nothing."""
		lead = make_lead(first_name="Guest Reader")
		template = "{{ get_value('ToDo', '%s', 'description') }}" % self.own_todo.name
		with self.assertRaisesRegex(ActionError, "Guest may not read"):
			render(template, lead, None)
		with reading_as(MANAGER):
			self.assertEqual(render(template, lead, None), f"{MARKER} own")
		with reading_as(SALES):
			self.assertEqual(render(template, lead, None), "None")

	def test_dry_run_reads_as_the_person_asking(self):
		from crm_automation.dry_run import dry_run

		template = "[{{ get_value('ToDo', '%s', 'description') }}]" % self.foreign_todo.name
		rule = comment_rule(SYSTEM_MANAGER, f"{RULE_PREFIX} Dry Read", template, run_as="Administrator")
		lead = make_lead(first_name="Dry Reader")
		frappe.set_user(MANAGER)
		try:
			result = dry_run(rule.name, names=[lead.name], log=False)
		finally:
			frappe.set_user("Administrator")
		summary = result["results"][0]["actions"][0]["summary"]
		self.assertIn("[None]", summary)
		self.assertNotIn(MARKER, summary)
		result = dry_run(rule.name, names=[lead.name], log=False)
		self.assertIn(f"[{MARKER} foreign]", result["results"][0]["actions"][0]["summary"])

	def test_the_cap_on_reads_per_evaluation(self):
		"""A template looping over reads stops at the cap, visibly, instead of one query per row."""
		template = (
			"{% for i in ["
			+ ",".join(str(i) for i in range(60))
			+ "] %}{{ get_value('ToDo', 'x' ~ i, 'name') }}{% endfor %}"
		)
		with reading_as(MANAGER), self.assertRaisesRegex(ActionError, "at most 50"):
			render(template, make_lead(first_name="Cap"), None)
		clear_rule_cache()

	def test_a_condition_on_a_linked_protected_document_is_refused_for_the_manager(self):
		"""``lead_owner.last_name`` reads the User: the same refusal as get_value('User', ...)."""
		conditions = {"all": [{"field": "lead_owner.last_name", "op": "=", "value": "x"}]}
		self.assert_refused(
			"Conditions.*User.*protected doctype",
			conditions=frappe.as_json(conditions),
			actions=[{"action_type": "Add Comment", "message": "x"}],
		)
		rule = save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Linked User",
			run_as="Administrator",
			conditions=frappe.as_json(conditions),
			actions=[{"action_type": "Add Comment", "message": "x"}],
		)
		self.assertTrue(frappe.db.exists("Workflow Rule", rule.name))

	def test_rest_cannot_slip_a_protected_read_into_a_saved_rule(self):
		"""The REST paths a desk user has (insert, save, set_value on the action row) all validate."""
		from frappe.client import insert, save, set_value

		protected_read = "{{ get_value('User', 'Administrator', 'last_name') }}"
		name = f"{RULE_PREFIX} REST Read"
		with as_user(MANAGER):
			with self.assertRaisesRegex(frappe.PermissionError, "protected doctype"):
				insert(rule_dict(name, actions=[{"action_type": "Add Comment", "message": protected_read}]))
			self.assertFalse(frappe.db.exists("Workflow Rule", name))
			saved = insert(rule_dict(name, actions=[{"action_type": "Add Comment", "message": "x"}]))
			row = saved["actions"][0]
			with self.assertRaisesRegex(frappe.PermissionError, "protected doctype"):
				save({**saved, "actions": [{**row, "message": protected_read}]})
			with self.assertRaisesRegex(frappe.PermissionError, "protected doctype"):
				set_value("Workflow Rule Action", row["name"], "message", protected_read)
			with self.assertRaisesRegex(frappe.PermissionError, "protected doctype"):
				set_value("Workflow Rule", name, "condition_expression", protected_read.strip("{} "))
		self.assertEqual(frappe.db.get_value("Workflow Rule Action", row["name"], "message"), "x")
		self.assertFalse(frappe.db.get_value("Workflow Rule", name, "condition_expression"))
