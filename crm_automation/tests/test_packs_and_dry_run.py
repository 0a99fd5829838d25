"""Trust before switching on, on a real site: dry runs write nothing, packs round-trip."""

import copy
import json

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation.dry_run import automations_for, dry_run, replay
from crm_automation.offline.simulator import SAMPLES
from crm_automation.packs import export_pack, import_pack
from crm_automation.tests.factories import delete_test_rules, ensure, make_lead, make_rule, new_request

COUNTED = ("ToDo", "Email Queue", "Comment", "Notification Log", "Communication", "Automation Log")


def counts():
	return {doctype: frappe.db.count(doctype) for doctype in COUNTED}


def starter(name):
	"""A shipped starter pack, with any rule of the same name removed from the site first."""
	with open(f"{SAMPLES}/packs/{name}.json") as handle:
		pack = json.load(handle)
	for section, doctype, key in (
		("workflow_rules", "Workflow Rule", "rule_name"),
		("lead_score_rules", "Lead Score Rule", "rule_name"),
		("escalation_policies", "Escalation Policy", "policy_name"),
	):
		for item in pack.get(section) or []:
			if frappe.db.exists(doctype, item[key]):
				frappe.delete_doc(doctype, item[key], force=True)
	return pack


class TestDryRun(FrappeTestCase):
	def setUp(self):
		new_request()
		ensure("Lead Source", "Exhibition", source_name="Exhibition")

	def tearDown(self):
		delete_test_rules()

	def test_dry_run_shows_everything_and_writes_only_its_log(self):
		"""The trace, the branch and every action rendered; no ToDo, email, comment or notification,
		and exactly one Dry Run log entry per document."""
		lead = make_lead(first_name="Dry", source="Exhibition", email_id="dry@example.com")
		make_rule(
			"_Test Dry Welcome",
			"Lead",
			"New",
			enabled=0,
			conditions={"all": [{"field": "source", "op": "=", "value": "Exhibition"}]},
			branches=[{"branch_name": "Has email", "conditions": {"all": [{"field": "email_id", "op": "is set"}]}}],
			actions=[
				{"action_type": "Send Email", "branch": "Has email", "to_field": "email_id", "subject": "Hello {{ doc.first_name }}", "message": "Samples for {{ doc.company_name }}"},
				{"action_type": "Create ToDo", "to_owner": 1, "message": "Call {{ doc.first_name }}"},
				{"action_type": "Set Value", "target_field": "company_name", "value": "{{ doc.first_name }} Ltd"},
			],
		)
		before = counts()
		result = dry_run("_Test Dry Welcome", names=[lead.name])
		after = counts()
		self.assertEqual({k: after[k] - before[k] for k in COUNTED}, {**{k: 0 for k in COUNTED}, "Automation Log": 1})
		entry = result["results"][0]
		self.assertEqual((entry["outcome"], entry["branch"]), ("Fired", "Has email"))
		self.assertEqual(entry["trace"][0]["actual"], "Exhibition")
		by_type = {a["type"]: a for a in entry["actions"]}
		self.assertEqual((by_type["Send Email"]["subject"], by_type["Send Email"]["recipients"]), ("Hello Dry", ["dry@example.com"]))
		self.assertEqual(by_type["Create ToDo"]["description"], "Call Dry")
		self.assertEqual((by_type["Set Value"]["old"], by_type["Set Value"]["new"]), ("Test Co", "Dry Ltd"))
		self.assertEqual(frappe.db.get_value("Lead", lead.name, "company_name"), "Test Co")
		log = frappe.get_all("Automation Log", filters={"rule": "_Test Dry Welcome"}, fields=["outcome", "reference_name"])
		self.assertEqual(log, [{"outcome": "Dry Run", "reference_name": lead.name}])

	def test_which_automations_apply_and_replay(self):
		"""A document lists what would fire on it and why; a replay counts outcomes and actions."""
		make_rule("_Test Applies", "Lead", "Save", conditions={"all": [{"field": "source", "op": "=", "value": "Exhibition"}]}, actions=[{"action_type": "Add Comment", "message": "x"}])
		lead = make_lead(first_name="Which", source="Exhibition")
		other = make_lead(first_name="Other")
		applies = {row["rule"]: row for row in automations_for(lead)}
		self.assertEqual(applies["_Test Applies"]["would"], "Fired")
		self.assertEqual({row["rule"]: row for row in automations_for(other)}["_Test Applies"]["would"], "Skipped")
		before = counts()
		summary = replay("_Test Applies", days=1)
		self.assertEqual(counts(), before, "a replay writes nothing at all")
		self.assertGreaterEqual(summary["outcomes"]["Fired"], 1)
		self.assertGreaterEqual(summary["outcomes"]["Skipped"], 1)
		self.assertEqual(summary["actions"]["Add Comment"], summary["outcomes"]["Fired"])


class TestPacksOnSite(FrappeTestCase):
	def tearDown(self):
		for doctype, prefix in (("Workflow Rule", "_Test %"), ("Lead Score Rule", "_Test %"), ("Escalation Policy", "_Test %")):
			for name in frappe.get_all(doctype, filters={"name": ("like", prefix)}, pluck="name"):
				frappe.delete_doc(doctype, name, force=True)

	def test_starter_packs_import_disabled_then_idempotently(self):
		"""Every starter pack imports on a fresh ERPNext site, disabled; importing again changes nothing."""
		for name in ("lead_management", "sales_pipeline", "support"):
			pack = starter(name)
			report = import_pack(pack)
			self.assertEqual(report["problems"], [], name)
			self.assertTrue(report["created"] and all("(disabled)" in line for line in report["created"]))
			again = import_pack(pack)
			self.assertEqual((again["created"], again["updated"], again["problems"]), ([], [], []), name)
			self.assertEqual(len(again["unchanged"]), len(report["created"]))
		self.assertEqual(frappe.db.get_value("Workflow Rule", "Assign new leads", "enabled"), 0)
		for doctype, name in (("Workflow Rule", "Assign new leads"), ("Lead Score Rule", "Lead score"), ("Escalation Policy", "First response")):
			frappe.delete_doc(doctype, name, force=True)

	def test_export_remove_import_round_trip_behaves_the_same(self):
		"""Exported, deleted and imported again, a rule is back and does the same."""
		ensure("Lead Source", "Exhibition", source_name="Exhibition")
		make_rule("_Test Packed", "Lead", "New", conditions={"all": [{"field": "source", "op": "=", "value": "Exhibition"}]}, actions=[{"action_type": "Add Comment", "message": "packed {{ doc.first_name }}"}])
		pack = export_pack({"workflow_rules": ["_Test Packed"], "lead_score_rules": [], "escalation_policies": []})
		frappe.delete_doc("Workflow Rule", "_Test Packed", force=True)
		report = import_pack(json.loads(json.dumps(pack)), enable=True)
		self.assertEqual(report["created"], ["Workflow Rule: _Test Packed"])
		new_request()
		lead = make_lead(first_name="Roundtrip", source="Exhibition")
		self.assertTrue(frappe.db.exists("Comment", {"reference_name": lead.name, "content": "packed Roundtrip"}))

		changed = copy.deepcopy(pack)
		changed["workflow_rules"][0]["actions"][0]["message"] = "packed again"
		report = import_pack(changed)
		self.assertEqual(report["updated"], ["Workflow Rule: _Test Packed (actions)"])
		self.assertEqual(frappe.db.get_value("Workflow Rule", "_Test Packed", "enabled"), 1, "updates keep the rule's state")

	def test_bad_packs_list_every_problem_and_import_nothing(self):
		"""Unknown doctypes and fields, missing roles, an unknown version: all listed, nothing written."""
		pack = starter("lead_management")
		pack["workflow_rules"][0]["document_type"] = "Spaceship"
		pack["workflow_rules"][1]["conditions"]["all"][0]["field"] = "emial_id"
		report = import_pack(pack)
		self.assertEqual(len(report["problems"]), 2, report["problems"])
		self.assertIn("workflow_rules[0] (Assign new leads).document_type: 'Spaceship' is not a document type here", report["problems"])
		self.assertFalse(frappe.db.exists("Workflow Rule", "Welcome email by source"))

		pack = starter("lead_management")
		pack["workflow_rules"][0]["actions"][1]["to_role"] = "Astronaut"
		report = import_pack(pack)
		self.assertEqual(report["problems"], ["workflow_rules[0] (Assign new leads).actions[1].to_role: Role 'Astronaut' does not exist on this site"])
		self.assertFalse(frappe.db.exists("Workflow Rule", "Follow up new leads"), "all or nothing")
		self.assertIn("unknown pack version 9", import_pack({"format": "crm_automation.pack", "version": 9})["problems"][0])

	def test_dry_run_import_writes_nothing(self):
		"""--dry-run reports what would be created and leaves the site as it was."""
		report = import_pack(starter("support"), dry_run=True)
		self.assertEqual(len(report["created"]), 4)  # three rules (one with follow-up steps) and a policy
		self.assertFalse(frappe.db.exists("Workflow Rule", "Assign issues by load"))
		self.assertFalse(frappe.db.exists("Escalation Policy", "First response"))
