"""Records for the desk check in headless Chromium (tests/browser), made and removed through
`bench --site S execute` by scripts/run-tests.sh while a web server serves the site."""

import json

import frappe

DESK_USER = "crm-automation-desk@example.com"
DESK_RULE = "_Desk Check Welcome Exhibition Leads"


def setup_desk_check(password):
	teardown_desk_check()
	user = frappe.get_doc(
		{
			"doctype": "User",
			"email": DESK_USER,
			"first_name": "Desk Check",
			"send_welcome_email": 0,
			"new_password": password,
			"roles": [{"role": "CRM Automation Manager"}, {"role": "Sales User"}],
		}
	)
	user.flags.ignore_password_policy = True
	user.insert(ignore_permissions=True)
	frappe.get_doc(
		{
			"doctype": "Workflow Rule",
			"rule_name": DESK_RULE,
			"document_type": "Lead",
			"trigger": "New",
			"enabled": 0,
			"conditions": json.dumps({"all": [{"field": "source", "op": "=", "value": "Exhibition"}]}),
			"actions": [
				{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": DESK_USER},
				{"action_type": "Add Comment", "message": "Met at the exhibition"},
			],
		}
	).insert(ignore_permissions=True)


def teardown_desk_check():
	if frappe.db.exists("Workflow Rule", DESK_RULE):
		frappe.delete_doc("Workflow Rule", DESK_RULE, force=True, ignore_permissions=True)
	if frappe.db.exists("User", DESK_USER):
		frappe.delete_doc("User", DESK_USER, force=True, ignore_permissions=True)
