"""Steps of the 'rules shipped as fixtures of a client app' check in scripts/run-tests.sh (tier 2):
each runs through `bench --site S execute` and prints what it found; verify() exits non-zero when
the rule did not come back or does not behave the same."""

import json
import sys

import frappe

RULE = "_Fixture Exhibition Welcome"


def create_rule():
	if not frappe.db.exists("Lead Source", "Exhibition"):
		frappe.get_doc({"doctype": "Lead Source", "source_name": "Exhibition"}).insert()
	if frappe.db.exists("Workflow Rule", RULE):
		frappe.delete_doc("Workflow Rule", RULE, force=True)
	frappe.get_doc(
		{
			"doctype": "Workflow Rule",
			"rule_name": RULE,
			"document_type": "Lead",
			"trigger": "New",
			"enabled": 1,
			"conditions": json.dumps({"all": [{"field": "source", "op": "=", "value": "Exhibition"}]}),
			"actions": [{"action_type": "Add Comment", "message": "fixture rule saw {{ doc.first_name }}"}],
		}
	).insert()
	frappe.db.commit()
	print(f"created {RULE}")


def delete_rule():
	frappe.delete_doc("Workflow Rule", RULE, force=True)
	frappe.db.commit()
	print(f"deleted {RULE}: exists now = {bool(frappe.db.exists('Workflow Rule', RULE))}")


def verify():
	from crm_automation.runtime.workflow_rules import clear_rule_cache

	if not frappe.db.exists("Workflow Rule", RULE):
		print(f"FAIL: {RULE} did not come back from the client app's fixtures")
		sys.exit(1)
	rule = frappe.get_doc("Workflow Rule", RULE)
	conditions = json.loads(rule.conditions)
	if conditions != {"all": [{"field": "source", "op": "=", "value": "Exhibition"}]} or not rule.enabled:
		print(f"FAIL: {RULE} came back changed: {rule.conditions}, enabled={rule.enabled}")
		sys.exit(1)
	clear_rule_cache()
	frappe.flags.in_test = True  # no gravatar lookups
	lead = frappe.get_doc({"doctype": "Lead", "first_name": "Fixture", "source": "Exhibition"}).insert()
	comment = frappe.db.exists("Comment", {"reference_name": lead.name, "content": "fixture rule saw Fixture"})
	frappe.db.rollback()
	if not comment:
		print(f"FAIL: {RULE} came back but did not act on a new Lead")
		sys.exit(1)
	frappe.delete_doc("Workflow Rule", RULE, force=True)
	frappe.db.commit()
	print(f"ok: {RULE} came back from the client app's fixtures and acts the same")
