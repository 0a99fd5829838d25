"""Records for the desk check in headless Chromium (tests/browser), made and removed through
`bench --site S execute` by scripts/run-tests.sh while a web server serves the site."""

import json

import frappe

DESK_USER = "crm-automation-desk@example.com"
DESK_MANAGER = "crm-automation-desk-manager@example.com"
DESK_COLLEAGUE = "crm-automation-desk-li@example.com"
DESK_RULE = "_Desk Check Welcome Exhibition Leads"
DESK_BRANCH_RULE = "_Desk Check Route Leads by Source"
DESK_TEMPLATE = "_Desk Check Welcome (Exhibition)"


def setup_desk_check(password):
	teardown_desk_check()
	make_user(DESK_USER, "Desk Check", password, ["CRM Automation Manager", "Sales User"])
	# A System Manager sees the Advanced section (stored JSON, Python condition) read-only.
	make_user(
		DESK_MANAGER, "Desk Manager", password, ["System Manager", "CRM Automation Manager", "Sales User"]
	)
	make_user(DESK_COLLEAGUE, "Li", None, ["Sales User"], last_name="Zhou")
	frappe.get_doc(
		{
			"doctype": "Email Template",
			"name": DESK_TEMPLATE,
			"subject": "Welcome",
			"response": "Good to meet you, {{ doc.lead_name }}.",
		}
	).insert(ignore_permissions=True)
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
	frappe.get_doc(branch_rule()).insert(ignore_permissions=True)
	frappe.db.commit()


def branch_rule():
	"""Branches, a Check condition, a templated e-mail, a round robin and a follow-up step: every
	part of the sentence the form reads out."""
	return {
		"doctype": "Workflow Rule",
		"rule_name": DESK_BRANCH_RULE,
		"document_type": "Lead",
		"trigger": "Save",
		"enabled": 0,
		"conditions": json.dumps({"all": [{"field": "unsubscribed", "op": "=", "value": 0}]}),
		"branches": [
			{
				"branch_name": "Exhibition",
				"conditions": json.dumps({"all": [{"field": "source", "op": "=", "value": "Exhibition"}]}),
			},
			{"branch_name": "Everyone Else", "is_else": 1},
		],
		"steps": [
			{
				"step_name": "Chase",
				"wait_type": "Duration",
				"wait_amount": 24,
				"wait_unit": "Hours",
				"step_conditions": json.dumps({"all": [{"field": "status", "op": "=", "value": "Open"}]}),
			}
		],
		"actions": [
			{
				"action_type": "Send Email",
				"branch": "Exhibition",
				"email_template": DESK_TEMPLATE,
				"to_field": "email_id",
			},
			{
				"action_type": "Assign",
				"branch": "Exhibition",
				"assign_to_type": "Listed Users",
				"assign_strategy": "Round Robin",
				"to_users": f"{DESK_COLLEAGUE}\n{DESK_USER}",
			},
			{"action_type": "Add Comment", "branch": "Everyone Else", "message": "Not from the fair"},
			{
				"action_type": "Create ToDo",
				"step": "Chase",
				"to_owner": 1,
				"message": "Call {{ doc.lead_name }}",
			},
		],
	}


def make_user(email, first_name, password, roles, last_name=None):
	user = frappe.get_doc(
		{
			"doctype": "User",
			"email": email,
			"first_name": first_name,
			"last_name": last_name,
			"send_welcome_email": 0,
			"roles": [{"role": role} for role in roles],
		}
	)
	if password:
		user.new_password = password
	user.flags.ignore_password_policy = True
	user.insert(ignore_permissions=True)


def teardown_desk_check():
	for rule in (DESK_RULE, DESK_BRANCH_RULE):
		if frappe.db.exists("Workflow Rule", rule):
			frappe.delete_doc("Workflow Rule", rule, force=True, ignore_permissions=True)
	if frappe.db.exists("Email Template", DESK_TEMPLATE):
		frappe.delete_doc("Email Template", DESK_TEMPLATE, force=True, ignore_permissions=True)
	for user in (DESK_USER, DESK_MANAGER, DESK_COLLEAGUE):
		if frappe.db.exists("User", user):
			frappe.delete_doc("User", user, force=True, ignore_permissions=True)
	frappe.db.commit()
