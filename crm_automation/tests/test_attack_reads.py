"""What a CRM Automation Manager (+ Sales User) can learn through reads and REST (issue #20), as real
users on a real site.

The attacker holds CRM Automation Manager and Sales User and is kept by a User Permission to one
Customer. Leads carry a level-5 field and a Link to a Customer the attacker may not read. The
attacker writes rules of their own (which the save accepts: every doctype and field they name is
one they may read) and asks the sandbox about them, and about a System Manager's rule on the
level-5 field: a dry run, a replay or the panel must not answer with what only the rule's own
evaluation as the system could know. The field pickers offer only what the asker may read. The same
rules written by a System Manager still see everything.
"""

import json

import frappe
from frappe.permissions import add_permission
from frappe.tests.utils import FrappeTestCase

from crm_automation import api
from crm_automation.api.linked_field_pickers import get_linked_condition_fields
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import make_customer, make_user, new_request

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User", "Customer"]

ATTACKER = "crm-tb2-attack-reads-mgr@example.com"
SYSTEM_MANAGER = "crm-tb2-attack-reads-sysmgr@example.com"
SECRET_FIELD = "crm_tb2ar_private"  # on Lead and Customer, permission level 5
LINK_FIELD = "crm_tb2ar_customer"  # on Lead: Link to Customer, level 0
FORBIDDEN_CUSTOMER = "_Test TB2 AttackReads Forbidden"
OWN_CUSTOMER = "_Test TB2 AttackReads Own"
RULE_PREFIX = "_Test TB2 AttackReads"
FIRST_NAME = "TB2AR"


def as_user(user, function, *args, **kwargs):
	frappe.set_user(user)
	try:
		return function(*args, **kwargs)
	finally:
		frappe.set_user("Administrator")


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


def rule_as(user, name, conditions, **fields):
	frappe.set_user(user)
	try:
		rule = frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": name,
				"document_type": "Lead",
				"trigger": "Manual",
				"enabled": 1,
				"conditions": json.dumps(conditions),
				"actions": [{"action_type": "Add Tag", "tag": "tb2ar"}],
				**fields,
			}
		).insert()
	finally:
		frappe.set_user("Administrator")
	clear_rule_cache()
	return rule


class TestAttackReads(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_user(ATTACKER, roles=["Sales User", "CRM Automation Manager"])
		make_user(
			SYSTEM_MANAGER, roles=["System Manager", "CRM Automation Manager", "Sales Manager", "Sales User"]
		)
		for doctype in ("Lead", "Customer"):
			ensure_custom_field(doctype, SECRET_FIELD, fieldtype="Data", permlevel=5)
		ensure_custom_field("Lead", LINK_FIELD, fieldtype="Link", options="Customer")
		cls.had_custom_perms = {}
		for doctype in ("Lead", "Customer"):
			cls.had_custom_perms[doctype] = bool(frappe.db.exists("Custom DocPerm", {"parent": doctype}))
			if not frappe.db.exists(
				"Custom DocPerm", {"parent": doctype, "role": "System Manager", "permlevel": 5}
			):
				add_permission(doctype, "System Manager", 5)
			frappe.clear_cache(doctype=doctype)
		make_customer(FORBIDDEN_CUSTOMER)
		make_customer(OWN_CUSTOMER)
		cls.group = frappe.db.get_value("Customer", FORBIDDEN_CUSTOMER, "customer_group")
		if not frappe.db.exists("User Permission", {"user": ATTACKER, "allow": "Customer"}):
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
		frappe.db.set_single_value("CRM Automation Settings", {"enabled": 1})
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		frappe.db.delete("User Permission", {"user": ATTACKER})
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
		self.hush = self.make_lead("hush-A", FORBIDDEN_CUSTOMER)
		self.other = self.make_lead("hush-B", FORBIDDEN_CUSTOMER)

	def tearDown(self):
		frappe.set_user("Administrator")
		for name in frappe.get_all(
			"Workflow Rule", filters={"name": ("like", f"{RULE_PREFIX}%")}, pluck="name"
		):
			frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
		clear_rule_cache()

	def make_lead(self, secret, customer):
		return frappe.get_doc(
			{
				"doctype": "Lead",
				"first_name": FIRST_NAME,
				"last_name": frappe.generate_hash(length=6),
				SECRET_FIELD: secret,
				LINK_FIELD: customer,
			}
		).insert(ignore_permissions=True)

	def linked_rule(self, user=ATTACKER):
		return rule_as(
			user,
			f"{RULE_PREFIX} Linked {'SM' if user == SYSTEM_MANAGER else 'Attacker'}",
			{
				"all": [
					{"field": "first_name", "op": "=", "value": FIRST_NAME},
					{"field": LINK_FIELD, "op": "=", "value": FORBIDDEN_CUSTOMER},
					{"field": f"{LINK_FIELD}.customer_group", "op": "=", "value": self.group},
				]
			},
		)

	def secret_rule(self):
		"""A System Manager's rule on the level-5 field of the Lead."""
		return rule_as(
			SYSTEM_MANAGER,
			f"{RULE_PREFIX} Secret",
			{
				"all": [
					{"field": "first_name", "op": "=", "value": FIRST_NAME},
					{"field": SECRET_FIELD, "op": "=", "value": "hush-A"},
				]
			},
			run_as="Administrator",
		)

	def dry_outcome(self, user, rule, lead):
		result = as_user(user, api.dry_run_rule, rule.name, names=json.dumps([lead.name]))
		return result["results"][0]["outcome"]

	# ------------------------------------------------------------------------------------------
	# The sandbox reads as the rule runs, never as the system

	def test_the_attacker_may_not_read_the_forbidden_customer(self):
		self.assertFalse(frappe.has_permission("Customer", "read", doc=FORBIDDEN_CUSTOMER, user=ATTACKER))
		self.assertTrue(frappe.has_permission("Lead", "read", doc=self.hush.name, user=ATTACKER))

	def test_a_dry_run_does_not_read_a_linked_record_the_attacker_may_not_read(self):
		"""The attacker's own condition on the forbidden Customer's group: the dry run answered
		"Fired", telling the group one guess at a time, though the rule itself never reads it."""
		rule = self.linked_rule()
		self.assertNotEqual(self.dry_outcome(ATTACKER, rule, self.hush), "Fired")
		# The live run agrees: as its run-as user the rule does not see the Customer either.
		as_user(ATTACKER, api.run_manual_rule, rule.name, "Lead", self.hush.name)
		self.assertNotIn("tb2ar", frappe.db.get_value("Lead", self.hush.name, "_user_tags") or "")
		# The System Manager's own rule does read it.
		own = self.linked_rule(SYSTEM_MANAGER)
		self.assertEqual(self.dry_outcome(SYSTEM_MANAGER, own, self.hush), "Fired")

	def test_a_replay_does_not_count_what_a_forbidden_linked_record_holds(self):
		rule = self.linked_rule()
		answer = as_user(ATTACKER, api.replay_rule, rule.name, days=1)
		self.assertGreaterEqual(answer["documents"], 2)
		self.assertNotIn("Fired", answer["outcomes"])
		own = self.linked_rule(SYSTEM_MANAGER)
		answer = as_user(SYSTEM_MANAGER, api.replay_rule, own.name, days=1)
		self.assertGreaterEqual(answer["outcomes"].get("Fired", 0), 2)

	def test_the_panel_does_not_read_a_linked_record_the_rule_may_not_read(self):
		rule = self.linked_rule()
		rows = as_user(ATTACKER, api.get_applicable_automations, "Lead", self.hush.name)
		(row,) = [row for row in rows if row["rule"] == rule.name]
		self.assertNotEqual(row["would"], "Fired")

	def test_a_dry_run_of_a_system_managers_rule_does_not_tell_a_hidden_field_lead_by_lead(self):
		rule = self.secret_rule()
		self.assertEqual(
			self.dry_outcome(ATTACKER, rule, self.hush),
			self.dry_outcome(ATTACKER, rule, self.other),
			"the outcome told the attacker which lead holds the level-5 value",
		)
		answer = as_user(ATTACKER, api.replay_rule, rule.name, days=1)
		self.assertNotIn("Fired", answer["outcomes"])
		# The System Manager's dry run still evaluates the field.
		self.assertEqual(self.dry_outcome(SYSTEM_MANAGER, rule, self.hush), "Fired")
		self.assertNotEqual(self.dry_outcome(SYSTEM_MANAGER, rule, self.other), "Fired")

	# ------------------------------------------------------------------------------------------
	# The condition builder's pickers

	def test_the_pickers_do_not_offer_fields_the_asker_may_not_read(self):
		own = {f["fieldname"] for f in as_user(ATTACKER, api.get_condition_fields, "Lead")}
		self.assertIn("first_name", own)
		self.assertNotIn(SECRET_FIELD, own)
		linked = {f["fieldname"] for f in as_user(ATTACKER, get_linked_condition_fields, "Lead")}
		self.assertIn(f"{LINK_FIELD}.customer_group", linked)
		self.assertNotIn(f"{LINK_FIELD}.{SECRET_FIELD}", linked)
		for doctype in ("User", "Server Script", "Email Account"):
			with self.subTest(doctype=doctype), self.assertRaises(frappe.PermissionError):
				as_user(ATTACKER, api.get_condition_fields, doctype)
		own = {f["fieldname"] for f in as_user(SYSTEM_MANAGER, api.get_condition_fields, "Lead")}
		self.assertIn(SECRET_FIELD, own)
		linked = {f["fieldname"] for f in as_user(SYSTEM_MANAGER, get_linked_condition_fields, "Lead")}
		self.assertIn(f"{LINK_FIELD}.{SECRET_FIELD}", linked)

	# ------------------------------------------------------------------------------------------
	# Reports

	def test_the_criterion_lift_report_does_not_count_a_hidden_field(self):
		"""A System Manager's score rule with a criterion on the level-5 field: the report counted
		the leads that meet it for the manager too (one lead per criterion gives its value away)."""
		from crm_automation.crm_automation.report.lead_score_criterion_lift.lead_score_criterion_lift import (
			execute,
		)

		criterion = {
			"all": [
				{"field": "first_name", "op": "=", "value": FIRST_NAME},
				{"field": SECRET_FIELD, "op": "=", "value": "hush-A"},
			]
		}
		frappe.set_user(SYSTEM_MANAGER)
		try:
			rule = frappe.get_doc(
				{
					"doctype": "Lead Score Rule",
					"rule_name": f"{RULE_PREFIX} Lift",
					"document_type": "Lead",
					"enabled": 0,
					"criteria": [{"label": "secret", "points": 10, "conditions": json.dumps(criterion)}],
				}
			).insert()
		finally:
			frappe.set_user("Administrator")
		try:
			_columns, data, *_rest = as_user(ATTACKER, execute, {"rule": rule.name})
			self.assertEqual(data[0]["met"], 0, data)
			_columns, data, *_rest = as_user(SYSTEM_MANAGER, execute, {"rule": rule.name})
			self.assertGreaterEqual(data[0]["met"], 1, data)
		finally:
			frappe.delete_doc("Lead Score Rule", rule.name, force=True, ignore_permissions=True)

	def test_the_history_mined_for_opportunities_holds_no_hidden_field(self):
		"""The miner (Automation Opportunities, replay over history) read a level-5 category field's
		values from the Version rows of every change, though the list query left the field out."""
		from frappe.utils import add_days, now_datetime

		from crm_automation.mining.history_export import iter_events

		tier = "crm_tb2ar_tier"
		ensure_custom_field("Lead", tier, fieldtype="Select", options="\nBronze\nGold", permlevel=5)
		lead = self.make_lead("hush-C", OWN_CUSTOMER)
		lead.db_set(tier, "Bronze")
		lead.reload()
		lead.set(tier, "Gold")
		lead.save(ignore_permissions=True)
		since, until = add_days(now_datetime(), -1), add_days(now_datetime(), 1)

		def events(user):
			return [
				event
				for event in as_user(user, lambda: list(iter_events(["Lead"], since, until)))
				if event["name"] == lead.name
			]

		mine = events(ATTACKER)
		self.assertTrue(mine, "the attacker reads the lead's history")
		self.assertFalse([e for e in mine if e.get("field") == tier or tier in (e.get("doc") or {})], mine)
		theirs = events(SYSTEM_MANAGER)
		self.assertTrue([e for e in theirs if (e.get("doc") or {}).get(tier) == "Gold"], theirs)
