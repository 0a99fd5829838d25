"""Versions of Workflow Rules (issue 23): every save that changes a rule keeps one, the History says
what changed in sentences, a revert restores the exact rule as a new save by the person reverting,
and two versions replay side by side over recent documents. As a System Manager and as an attacker
holding CRM Automation Manager and Sales User, with a level-5 field on Lead they may not read."""

import json

import frappe
from frappe.permissions import add_permission
from frappe.tests.utils import FrappeTestCase

from crm_automation.api import rule_versions as api
from crm_automation.packs import export_rule
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.tests.factories import ensure, make_lead, make_rule, make_user, new_request
from crm_automation.versions.snapshots import snapshot_of

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User"]

ATTACKER = "crm-ver-attacker@example.com"
SALES_ONLY = "crm-ver-sales@example.com"
PREFIX = "_Test VER"
PRIVATE = "crm_ver_private"  # on Lead, permission level 5: System Managers only
VERSION = "Workflow Rule Version"
EXPO = {"all": [{"field": "source", "op": "=", "value": "Exhibition"}]}
EXPO_OR_TRADE = {
	"any": [
		{"field": "source", "op": "=", "value": "Exhibition"},
		{"field": "source", "op": "=", "value": "Trade Show"},
	]
}


def as_user(user, function, *args, **kwargs):
	frappe.set_user(user)
	try:
		return function(*args, **kwargs)
	finally:
		frappe.set_user("Administrator")


def versions_of(rule):
	return frappe.get_all(
		VERSION,
		filters={"rule": rule},
		fields=["version_no", "reverted_to", "summary"],
		order_by="version_no asc",
	)


class TestRuleVersions(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		make_user(ATTACKER, roles=["Sales User", "CRM Automation Manager"])
		make_user(SALES_ONLY, roles=["Sales User"])
		for source in ("Exhibition", "Trade Show", "Cold Calling"):
			ensure("Lead Source", source, source_name=source)
		if not frappe.db.exists("Custom Field", {"dt": "Lead", "fieldname": PRIVATE}):
			frappe.get_doc(
				{
					"doctype": "Custom Field",
					"dt": "Lead",
					"fieldname": PRIVATE,
					"label": "VER Private",
					"fieldtype": "Data",
					"permlevel": 5,
				}
			).insert(ignore_permissions=True)
		cls.had_custom_perms = bool(frappe.db.exists("Custom DocPerm", {"parent": "Lead"}))
		if not frappe.db.exists(
			"Custom DocPerm", {"parent": "Lead", "role": "System Manager", "permlevel": 5}
		):
			add_permission("Lead", "System Manager", 5)
		frappe.clear_cache(doctype="Lead")
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		if cls.had_custom_perms:
			frappe.db.delete("Custom DocPerm", {"parent": "Lead", "role": "System Manager", "permlevel": 5})
		else:
			frappe.db.delete("Custom DocPerm", {"parent": "Lead"})
		frappe.db.commit()
		frappe.clear_cache(doctype="Lead")
		super().tearDownClass()

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()

	def tearDown(self):
		frappe.set_user("Administrator")
		for name in frappe.get_all("Workflow Rule", filters={"name": ("like", f"{PREFIX}%")}, pluck="name"):
			frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
		frappe.db.delete("Lead", {"first_name": ("like", "VER%")})
		clear_rule_cache()

	def expo_rule(self, name="Expo", **fields):
		return make_rule(
			f"{PREFIX} {name}",
			"Lead",
			"Manual",
			[{"action_type": "Add Tag", "tag": "expo"}],
			conditions=EXPO,
			**{"enabled": 0, **fields},
		)

	def test_saves_keep_versions_with_sentences(self):
		"""A new rule is version 1; a save that changes nothing keeps it; a change is version 2 and
		the History says it in sentences, as the issue words it."""
		rule = self.expo_rule()
		self.assertEqual([v.version_no for v in versions_of(rule.name)], [1])
		rule.reload()
		rule.save()
		self.assertEqual(len(versions_of(rule.name)), 1, "a save without a change keeps no version")
		rule.conditions = json.dumps(EXPO_OR_TRADE)
		rule.append(
			"actions",
			{"action_type": "Send Email", "to_field": "email_id", "subject": "Welcome", "message": "Hello"},
		)
		rule.save()
		history = api.get_rule_versions(rule.name)["versions"]
		self.assertEqual([v["version_no"] for v in history], [2, 1])
		self.assertTrue(history[0]["current"])
		self.assertEqual(
			history[0]["sentences"][0],
			"the condition *Source is Exhibition* became *(Source is Exhibition or Source is Trade Show)*",
		)
		self.assertTrue(history[0]["sentences"][1].startswith("a Send Email action was added: *"))
		self.assertEqual(len(history[0]["sentences"]), 2)
		stored = frappe.db.get_value(VERSION, {"rule": rule.name, "version_no": 2}, "summary")
		self.assertIn("became", stored)

	def test_a_rule_saved_before_versions_gets_its_earlier_content_as_version_one(self):
		rule = self.expo_rule("Old")
		frappe.db.delete(VERSION, {"rule": rule.name})  # as if saved before versions were kept
		rule.reload()
		rule.priority = 7
		rule.save()
		rows = versions_of(rule.name)
		self.assertEqual([v.version_no for v in rows], [1, 2])
		self.assertEqual(rows[1].summary, "Priority: 0 → 7")

	def test_revert_restores_the_exact_rule_as_a_new_logged_save(self):
		rule = self.expo_rule(
			"Revert",
			branches=[
				{
					"branch_name": "Hot",
					"conditions": {"all": [{"field": "status", "op": "=", "value": "Open"}]},
				}
			],
			priority=3,
			description="first",
		)
		original = snapshot_of(frappe.get_doc("Workflow Rule", rule.name))
		rule.reload()
		rule.conditions = json.dumps(EXPO_OR_TRADE)
		rule.priority = 9
		rule.description = "second"
		rule.branches = []
		rule.set("actions", [{"action_type": "Add Comment", "message": "changed"}])
		rule.save()
		self.assertNotEqual(snapshot_of(frappe.get_doc("Workflow Rule", rule.name)), original)

		result = api.revert_rule(rule.name, 1)
		self.assertEqual(result["version_no"], 3)
		restored = frappe.get_doc("Workflow Rule", rule.name)
		self.assertEqual(snapshot_of(restored), original)
		rows = versions_of(rule.name)
		self.assertEqual(rows[-1].reverted_to, 1)
		self.assertTrue(rows[-1].summary.startswith("reverted to v1: "))
		self.assertTrue(
			frappe.db.exists(
				"Comment",
				{
					"reference_doctype": "Workflow Rule",
					"reference_name": rule.name,
					"content": ("like", "Reverted to version 1%"),
				},
			)
		)
		self.assertIsNone(api.revert_rule(rule.name, 3)["version_no"], "already that content: nothing saved")
		self.assertEqual(len(versions_of(rule.name)), 3)

	def test_replay_of_two_versions_reports_where_they_differ(self):
		rule = self.expo_rule("Replay")
		rule.reload()
		rule.conditions = json.dumps(EXPO_OR_TRADE)
		rule.save()
		expo = make_lead(first_name="VER expo", source="Exhibition")
		trade = make_lead(first_name="VER trade", source="Trade Show")
		cold = make_lead(first_name="VER cold", source="Cold Calling")
		result = api.compare_rule_versions(rule.name, 1, days=1)
		rows = {row["document"]: row for row in result["rows"]}
		self.assertIn(trade.name, result["differ"])
		self.assertNotIn(expo.name, result["differ"])
		self.assertNotIn(cold.name, result["differ"])
		self.assertEqual((rows[trade.name]["a"]["acts"], rows[trade.name]["b"]["acts"]), (False, True))
		self.assertEqual(rows[trade.name]["b"]["actions"], ["tag expo"])
		self.assertTrue(rows[expo.name]["a"]["acts"] and rows[expo.name]["b"]["acts"])
		self.assertFalse(rows[cold.name]["a"]["acts"] or rows[cold.name]["b"]["acts"])
		self.assertEqual(result["max_documents"], 2000)
		self.assertFalse(frappe.db.exists("Automation Log", {"rule": rule.name}), "a replay writes nothing")

	def test_secrets_never_in_snapshots_and_packs_carry_the_rule_only(self):
		rule = self.expo_rule("Secret")
		frappe.db.set_value("Workflow Rule", rule.name, "webhook_token_hash", "HASH-VER-123")
		rule.reload()
		rule.description = "changed"
		rule.save()
		for text in frappe.get_all(VERSION, filters={"rule": rule.name}, pluck="snapshot"):
			self.assertNotIn("HASH-VER-123", text)
			for fieldname in (
				"webhook_token_hash",
				"webhook_secret",
				"secret",
				"headers",
				"consecutive_failures",
			):
				self.assertNotIn(f'"{fieldname}"', text)
		self.assertNotIn("versions", json.dumps(export_rule(rule)))

	def test_versions_are_deleted_with_their_rule(self):
		rule = self.expo_rule("Gone")
		frappe.delete_doc("Workflow Rule", rule.name, ignore_permissions=True)
		self.assertFalse(frappe.db.exists(VERSION, {"rule": rule.name}))

	def test_nobody_writes_a_version_by_hand(self):
		"""Not the attacker through REST (no create or write permission), and not code that skips
		permissions either: only a save of the rule writes one."""
		rule = self.expo_rule("Smuggle")
		smuggled = {
			"doctype": VERSION,
			"rule": rule.name,
			"version_no": 2,
			"snapshot": json.dumps({**snapshot_of(rule), "run_as": "Administrator"}),
		}
		self.assertRaises(frappe.PermissionError, as_user, ATTACKER, frappe.client.insert, smuggled)
		self.assertRaises(frappe.PermissionError, frappe.get_doc(smuggled).insert, ignore_permissions=True)
		name = frappe.db.get_value(VERSION, {"rule": rule.name, "version_no": 1})
		self.assertRaises(
			frappe.PermissionError,
			as_user,
			ATTACKER,
			frappe.client.set_value,
			VERSION,
			name,
			"snapshot",
			"{}",
		)
		version = frappe.get_doc(VERSION, name)
		version.summary = "edited"
		self.assertRaises(frappe.PermissionError, version.save, ignore_permissions=True)
		self.assertRaises(frappe.PermissionError, as_user, ATTACKER, frappe.client.delete, VERSION, name)
		self.assertEqual([v.version_no for v in versions_of(rule.name)], [1])
		self.assertNotEqual(frappe.db.get_value(VERSION, name, "summary"), "edited")

	def test_versions_are_read_by_whoever_reads_the_rule(self):
		"""Rule managers read rules and their versions; a Sales User reads neither."""
		rule = self.expo_rule("Read")
		self.assertTrue(as_user(ATTACKER, api.get_rule_versions, rule.name)["versions"])
		self.assertFalse(frappe.has_permission(VERSION, "read", user=SALES_ONLY))
		self.assertRaises(frappe.PermissionError, as_user, SALES_ONLY, api.get_rule_versions, rule.name)
		self.assertRaises(
			frappe.PermissionError, as_user, SALES_ONLY, api.compare_rule_versions, rule.name, 1
		)
		self.assertRaises(frappe.PermissionError, as_user, SALES_ONLY, api.revert_rule, rule.name, 1)

	def system_managers_rule(self, name, first_actions):
		"""A System Manager's rule running as Administrator: version 1 with ``first_actions``,
		version 2 with a plain tag."""
		rule = make_rule(
			f"{PREFIX} {name}", "Lead", "Manual", first_actions, enabled=0, run_as="Administrator"
		)
		rule.reload()
		rule.set("actions", [{"action_type": "Add Tag", "tag": "plain"}])
		rule.save()
		return rule

	def test_an_attackers_revert_is_their_own_save(self):
		"""Reverting a System Manager's rule runs every check of a save as the attacker: the rule then
		runs as the attacker, and a version doing what the attacker may not is refused."""
		rule = self.system_managers_rule("Attacker Revert", [{"action_type": "Add Tag", "tag": "first"}])
		as_user(ATTACKER, api.revert_rule, rule.name, 1)
		self.assertEqual(frappe.db.get_value("Workflow Rule", rule.name, "run_as"), ATTACKER)

		writes_private = self.system_managers_rule(
			"Attacker Private", [{"action_type": "Set Value", "target_field": PRIVATE, "value": "x"}]
		)
		refused = (frappe.PermissionError, frappe.ValidationError)
		self.assertRaises(refused, as_user, ATTACKER, api.revert_rule, writes_private.name, 1)
		stored = frappe.get_doc("Workflow Rule", writes_private.name)
		self.assertEqual(stored.run_as, "Administrator")
		self.assertEqual([a.action_type for a in stored.actions], ["Add Tag"])
		self.assertEqual(len(versions_of(writes_private.name)), 2)

	def test_replay_shows_the_attacker_no_value_they_may_not_read(self):
		secret = "VER-Gold-7731"
		rule = make_rule(
			f"{PREFIX} Private Replay",
			"Lead",
			"Manual",
			[{"action_type": "Add Comment", "message": "value {{ doc.%s }}" % PRIVATE}],
			# The rule names the field, not the value: the value is the document's, and hidden.
			conditions={"all": [{"field": PRIVATE, "op": "is set"}]},
			enabled=0,
			run_as="Administrator",
		)
		rule.reload()
		rule.conditions = None
		rule.save()
		lead = make_lead(first_name="VER private", **{PRIVATE: secret})
		as_admin = api.compare_rule_versions(rule.name, 1, days=1)
		row = next(r for r in as_admin["rows"] if r["document"] == lead.name)
		self.assertTrue(row["a"]["acts"], "a System Manager's replay sees the level-5 value")
		seen = as_user(ATTACKER, api.compare_rule_versions, rule.name, 1, days=1)
		self.assertNotIn(secret, json.dumps(seen, default=str))
		row = next(r for r in seen["rows"] if r["document"] == lead.name)
		self.assertFalse(row["a"]["acts"], "the condition is evaluated on what the attacker may read")
