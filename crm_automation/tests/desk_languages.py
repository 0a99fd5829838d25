"""Desk users whose language is zh and ru, for the desk check in headless Chromium
(tests/browser/test_desk_languages.py). They read the rules crm_automation.tests.desk makes, so
set these up after setup_desk_check and remove them before teardown_desk_check."""

import json

import frappe

from crm_automation.tests.desk import DESK_USER, make_user

DESK_LANGUAGE_USERS = {
	"zh": "crm-automation-desk-zh@example.com",
	"ru": "crm-automation-desk-ru@example.com",
}
# A rule a language test saves to see its validation error; never left behind.
INVALID_RULE_NAME = "_Desk Check Submit a Lead"
# Saved rules whose condition builder and row summaries each language reads (saved here in English,
# the language of whoever runs the setup: the form must still speak the reader's).
BUILDER_RULE = "_Desk Check Builder in Every Language"
SINGLE_CONDITION_RULE = "_Desk Check One Condition"
BUILDER_CONDITIONS = {
	"all": [
		{"field": "source", "op": "=", "value": "Exhibition"},
		{"field": "status", "op": "in", "value": ["Open", "Replied"]},
		{"field": "email_id", "op": "is set"},
		{"field": "company_name", "op": "like", "value": "%Acme%"},
		{"field": "annual_revenue", "op": "between", "value": [1000, 5000]},
		{"field": "territory", "op": "=", "value": "_Desk Check No Such Territory"},
		{"field": "creation", "op": ">", "value": "2024-01-01 00:00:00"},
	]
}
# A single condition stored without a group, as the API and packs may store it.
SINGLE_CONDITION = {"field": "source", "op": "=", "value": "Exhibition"}


def setup_desk_languages(password):
	teardown_desk_languages()
	for lang, email in DESK_LANGUAGE_USERS.items():
		make_user(email, f"Desk {lang}", password, ["CRM Automation Manager", "Sales User"])
		frappe.db.set_value("User", email, "language", lang)
	for rule in builder_rules():
		frappe.get_doc(rule).insert(ignore_permissions=True)
	frappe.db.commit()


def builder_rules():
	return [
		{
			"doctype": "Workflow Rule",
			"rule_name": BUILDER_RULE,
			"document_type": "Lead",
			"trigger": "Save",
			"enabled": 0,
			"conditions": json.dumps(BUILDER_CONDITIONS),
			"steps": [
				{"step_name": "Chase", "wait_type": "Duration", "wait_amount": 24, "wait_unit": "Hours"}
			],
			"actions": [
				{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": DESK_USER},
				{"action_type": "Add Comment", "message": "Met at the exhibition"},
				{"action_type": "Create ToDo", "step": "Chase", "to_owner": 1, "message": "Call back"},
			],
		},
		{
			"doctype": "Workflow Rule",
			"rule_name": SINGLE_CONDITION_RULE,
			"document_type": "Lead",
			"trigger": "New",
			"enabled": 0,
			"conditions": json.dumps(SINGLE_CONDITION),
			"actions": [{"action_type": "Add Comment", "message": "From the fair"}],
		},
	]


def teardown_desk_languages():
	for rule in (INVALID_RULE_NAME, BUILDER_RULE, SINGLE_CONDITION_RULE):
		if frappe.db.exists("Workflow Rule", rule):
			frappe.delete_doc("Workflow Rule", rule, force=True, ignore_permissions=True)
	for email in DESK_LANGUAGE_USERS.values():
		if frappe.db.exists("User", email):
			frappe.delete_doc("User", email, force=True, ignore_permissions=True)
	frappe.db.commit()
