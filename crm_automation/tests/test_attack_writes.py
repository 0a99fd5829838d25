"""Attacks on what a rule writes (issue #20): a rule of a CRM Automation Manager (+ Sales User) must not
make a write its author's own save could not, nor speak in the name of whoever's save set it off.

Real users: the attacker (restricted by a User Permission to one Territory for Leads), a Sales
Manager who saves documents, and a System Manager whose identical rule must still work. Each attack
is fired by someone else's save and checked in the database afterwards.
"""

from contextlib import contextmanager

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import ensure, logs_for, make_lead, make_user, new_request

IGNORE_TEST_RECORD_DEPENDENCIES = ["Territory", "User"]

ATTACKER = "crm-tby-attacker@example.com"
SAVER = "crm-tby-saver@example.com"
SYSTEM_MANAGER = "crm-tby-sysmgr@example.com"
RULE_PREFIX = "_Test TBY Writes"
NORTH, SOUTH = "_Test TBY North", "_Test TBY South"
HIDDEN_MOBILE = "+1 555 0100 777"


@contextmanager
def as_user(user):
	previous = frappe.session.user
	frappe.set_user(user)
	try:
		yield
	finally:
		frappe.set_user(previous)


def save_rule_as(user, name, trigger="New", actions=(), document_type="Lead", **fields):
	with as_user(user):
		rule = frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": name,
				"document_type": document_type,
				"trigger": trigger,
				"enabled": 1,
				"actions": list(actions),
				**fields,
			}
		).insert()
	clear_rule_cache()
	return rule


def action_results(doc, rule):
	names = [log.name for log in logs_for(doc, rule)]
	if not names:
		return []
	return [(row.status, row.result) for row in frappe.get_doc("Automation Log", names[-1]).actions]


class TestAttackWrites(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		for territory in (NORTH, SOUTH):
			ensure("Territory", territory, territory_name=territory, parent_territory="All Territories")
		make_user(ATTACKER, roles=["CRM Automation Manager", "Sales User"])
		make_user(SAVER, roles=["Sales Manager", "Sales User"])
		make_user(SYSTEM_MANAGER, roles=["System Manager", "CRM Automation Manager", "Sales User"])
		if not frappe.db.exists("User Permission", {"user": ATTACKER, "allow": "Territory"}):
			frappe.get_doc(
				{
					"doctype": "User Permission",
					"user": ATTACKER,
					"allow": "Territory",
					"for_value": NORTH,
					"apply_to_all_doctypes": 0,
					"applicable_for": "Lead",
				}
			).insert(ignore_permissions=True)
		frappe.db.set_single_value(
			"CRM Automation Settings", {"enabled": 1, "max_recursion_depth": 3, "failure_threshold": 50}
		)
		frappe.db.commit()
		for user in (ATTACKER, SAVER, SYSTEM_MANAGER):
			frappe.clear_cache(user=user)

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		frappe.db.delete("User Permission", {"user": ATTACKER})
		frappe.db.commit()
		frappe.clear_cache(user=ATTACKER)
		super().tearDownClass()

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()
		frappe.local.message_log = []

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback()
		for name in frappe.get_all("Workflow Rule", filters={"name": ("like", f"{RULE_PREFIX}%")}, pluck="name"):
			frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
		frappe.db.delete("Automation Log", {"rule": ("like", f"{RULE_PREFIX}%")})
		frappe.db.delete("Property Setter", {"doc_type": "Lead", "field_name": "mobile_no", "property": "permlevel"})
		frappe.db.commit()
		frappe.clear_cache(doctype="Lead")
		clear_rule_cache()

	# -- Set Value on a Link: the User Permissions of the run-as user ----------------------------

	def test_set_value_cannot_link_a_record_the_user_permissions_leave_out(self):
		"""The attack: the attacker may only work on North leads; their rule moves a North lead to
		South, which their own save refuses (Frappe's has_permission checks every link field)."""
		rule = save_rule_as(
			ATTACKER,
			f"{RULE_PREFIX} Link",
			condition_expression="doc.company_name == 'TBY Link Co'",
			actions=[{"action_type": "Set Value", "target_field": "territory", "value": SOUTH}],
		)
		with as_user(SAVER):
			lead = make_lead(first_name="Link", company_name="TBY Link Co", territory=NORTH)
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "territory"), NORTH, "not moved")
		((status, result),) = action_results(lead, rule.name)
		self.assertEqual(status, "Failed")
		self.assertIn("User Permissions", result)
		# The attacker's own save of that change is refused by Frappe, which is what the rule mirrors.
		lead.territory = SOUTH
		self.assertFalse(frappe.has_permission("Lead", "write", doc=lead, user=ATTACKER))

	def test_set_value_on_validate_cannot_link_a_record_the_user_permissions_leave_out(self):
		rule = save_rule_as(
			ATTACKER,
			f"{RULE_PREFIX} Link Validate",
			trigger="Validate",
			condition_expression="doc.company_name == 'TBY Link Validate Co'",
			actions=[{"action_type": "Set Value", "target_field": "territory", "value": SOUTH}],
		)
		with as_user(SAVER):
			lead = make_lead(first_name="LinkV", company_name="TBY Link Validate Co", territory=NORTH)
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "territory"), NORTH, "saved, not moved")
		((status, result),) = action_results(lead, rule.name)
		self.assertEqual(status, "Failed")
		self.assertIn("User Permissions", result)

	def test_a_system_managers_link_rule_still_works(self):
		save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Link SM",
			condition_expression="doc.company_name == 'TBY Link SM Co'",
			actions=[{"action_type": "Set Value", "target_field": "territory", "value": SOUTH}],
		)
		with as_user(SAVER):
			lead = make_lead(first_name="LinkSM", company_name="TBY Link SM Co", territory=NORTH)
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "territory"), SOUTH)

	# -- Set Value of a table or password field, slipped in past the save-time check -------------

	def test_a_table_field_set_on_validate_fails_and_keeps_the_save(self):
		rule = save_rule_as(
			ATTACKER,
			f"{RULE_PREFIX} Table",
			trigger="Validate",
			condition_expression="doc.company_name == 'TBY Table Co'",
			actions=[{"action_type": "Set Value", "target_field": "job_title", "value": "x"}],
		)
		# A rule stored before the save-time check (or edited in the database).
		frappe.db.set_value(
			"Workflow Rule Action", rule.actions[0].name, {"target_field": "notes", "value": '[{"note": "x"}]'}
		)
		clear_rule_cache()
		with as_user(SAVER):
			lead = make_lead(first_name="Table", company_name="TBY Table Co", territory=NORTH)
		self.assertTrue(frappe.db.exists("Lead", lead.name), "the user's save goes on")
		self.assertFalse(frappe.get_all("CRM Note", filters={"parent": lead.name}))
		# Refused when the rule is read back, or when the action runs: never written.
		for status, _result in action_results(lead, rule.name):
			self.assertEqual(status, "Failed")

	# -- Add Comment and Send Email speak as the run-as user, not as the saver -------------------

	def test_a_comment_is_the_run_as_users_not_the_savers(self):
		"""The attack: the comment "Approved — the CEO" appears written by whoever saved the lead."""
		save_rule_as(
			ATTACKER,
			f"{RULE_PREFIX} Comment",
			condition_expression="doc.company_name == 'TBY Comment Co'",
			actions=[{"action_type": "Add Comment", "message": "I approve a 90% discount"}],
		)
		with as_user(SAVER):
			lead = make_lead(first_name="Comment", company_name="TBY Comment Co", territory=NORTH)
		(comment,) = frappe.get_all(
			"Comment",
			filters={"reference_doctype": "Lead", "reference_name": lead.name, "comment_type": "Comment"},
			fields=["comment_email", "owner", "content"],
		)
		self.assertEqual((comment.comment_email, comment.owner), (ATTACKER, ATTACKER))

	def test_an_email_is_sent_by_the_run_as_user_not_the_saver(self):
		save_rule_as(
			ATTACKER,
			f"{RULE_PREFIX} Email",
			condition_expression="doc.company_name == 'TBY Email Co'",
			actions=[
				{
					"action_type": "Send Email",
					"to_users": SYSTEM_MANAGER,
					"subject": "Contract",
					"message": "Please sign",
				}
			],
		)
		with as_user(SAVER):
			lead = make_lead(first_name="Email", company_name="TBY Email Co", territory=NORTH)
		communications = frappe.get_all(
			"Communication",
			filters={"reference_doctype": "Lead", "reference_name": lead.name, "communication_type": "Communication"},
			fields=["sender", "owner"],
		)
		self.assertTrue(communications)
		for communication in communications:
			self.assertNotIn(SAVER, communication.sender or "")
			self.assertIn(ATTACKER, communication.sender or "")
			self.assertEqual(communication.owner, ATTACKER)

	# -- Create Document through ERPNext's mapper ------------------------------------------------

	def hide_lead_mobile(self):
		frappe.make_property_setter(
			{"doctype": "Lead", "fieldname": "mobile_no", "property": "permlevel", "value": 2, "property_type": "Int"}
		)
		frappe.clear_cache(doctype="Lead")

	def test_a_mapper_copies_no_field_the_run_as_user_may_not_read(self):
		"""The attack: mobile_no of Lead is above the attacker's levels; ERPNext's Lead → Opportunity
		mapper copies it into contact_mobile of an Opportunity the attacker owns and reads."""
		self.hide_lead_mobile()
		rule = save_rule_as(
			ATTACKER,
			f"{RULE_PREFIX} Mapper",
			condition_expression="doc.company_name == 'TBY Mapper Co'",
			actions=[{"action_type": "Create Document", "target_doctype": "Opportunity", "use_mapper": 1}],
		)
		lead = make_lead(first_name="Mapper", company_name="TBY Mapper Co", territory=NORTH, mobile_no=HIDDEN_MOBILE)
		statuses = [status for status, _result in action_results(lead, rule.name)]
		self.assertEqual(statuses, ["Success"])
		(opportunity,) = frappe.get_all(
			"Opportunity", filters={"party_name": lead.name}, fields=["name", "owner", "contact_mobile"]
		)
		self.assertEqual(opportunity.owner, ATTACKER)
		self.assertFalse(opportunity.contact_mobile, "the hidden mobile number was not copied")
		# (ERPNext also makes a Contact of the lead, which the Opportunity reads its phone from: that is
		# the Contact's own field, readable to the attacker through Contact, not a copy of the Lead's.)

	def test_a_system_managers_mapper_still_copies_everything(self):
		self.hide_lead_mobile()
		save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Mapper SM",
			condition_expression="doc.company_name == 'TBY Mapper SM Co'",
			actions=[{"action_type": "Create Document", "target_doctype": "Opportunity", "use_mapper": 1}],
		)
		lead = make_lead(first_name="MapperSM", company_name="TBY Mapper SM Co", mobile_no=HIDDEN_MOBILE)
		(opportunity,) = frappe.get_all(
			"Opportunity", filters={"party_name": lead.name}, fields=["owner", "contact_mobile"]
		)
		self.assertEqual((opportunity.owner, opportunity.contact_mobile), (SYSTEM_MANAGER, HIDDEN_MOBILE))

	# -- Run As cannot be spoofed over REST ------------------------------------------------------

	def test_run_as_cannot_be_named_over_rest(self):
		rule = save_rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Spoof",
			condition_expression="doc.company_name == 'TBY Spoof Co'",
			actions=[{"action_type": "Add Tag", "tag": "tby"}],
		)
		self.assertEqual(rule.run_as, SYSTEM_MANAGER)
		with as_user(ATTACKER):
			frappe.client.set_value("Workflow Rule", rule.name, "description", "edited")
			with self.assertRaises(frappe.PermissionError):
				frappe.client.set_value("Workflow Rule", rule.name, "run_as", SAVER)
			with self.assertRaises(frappe.ValidationError):
				frappe.client.set_value("Workflow Rule", rule.name, "owner", SYSTEM_MANAGER)
		self.assertEqual(frappe.db.get_value("Workflow Rule", rule.name, "run_as"), ATTACKER)
