"""Desk users whose language is zh and ru, for the desk check in headless Chromium
(tests/browser/test_desk_languages.py). They read the rules crm_automation.tests.desk makes, so
set these up after setup_desk_check and remove them before teardown_desk_check."""

import frappe

from crm_automation.tests.desk import make_user

DESK_LANGUAGE_USERS = {
	"zh": "crm-automation-desk-zh@example.com",
	"ru": "crm-automation-desk-ru@example.com",
}
# A rule a language test saves to see its validation error; never left behind.
INVALID_RULE_NAME = "_Desk Check Submit a Lead"


def setup_desk_languages(password):
	teardown_desk_languages()
	for lang, email in DESK_LANGUAGE_USERS.items():
		make_user(email, f"Desk {lang}", password, ["CRM Automation Manager", "Sales User"])
		frappe.db.set_value("User", email, "language", lang)
	frappe.db.commit()


def teardown_desk_languages():
	if frappe.db.exists("Workflow Rule", INVALID_RULE_NAME):
		frappe.delete_doc("Workflow Rule", INVALID_RULE_NAME, force=True, ignore_permissions=True)
	for email in DESK_LANGUAGE_USERS.values():
		if frappe.db.exists("User", email):
			frappe.delete_doc("User", email, force=True, ignore_permissions=True)
	frappe.db.commit()
