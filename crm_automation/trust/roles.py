"""Who may do what with automation: the app's roles, and the one check of who manages rules.

- A System Manager (and Administrator) may do everything, including rules that run as someone else
  or act on protected doctypes.
- A rule manager (CRM Automation Manager or System Manager) may test, replay, retry and mine rules:
  `is_rule_manager`, and `check_rule_manager` in every whitelisted method that needs it.
- `may_edit_rules` asks something else: write permission on Workflow Rule, as the site's
  permissions grant it. Whoever may edit a rule may see where its messages and webhooks go, so this
  decides who sees recipients; it follows the DocPerms, which a site may change, not the role names.
"""

import frappe
from frappe import _

from crm_automation.setup.roles import INTEGRATION_ROLE, RULE_MANAGER_ROLE, RULE_MANAGER_ROLES, SYSTEM_MANAGER

__all__ = [
	"INTEGRATION_ROLE",
	"RULE_MANAGER_ROLE",
	"RULE_MANAGER_ROLES",
	"SYSTEM_MANAGER",
	"check_rule_manager",
	"is_rule_manager",
	"is_system_manager",
	"may_edit_rules",
]


def is_system_manager(user):
	return bool(user) and (user == "Administrator" or SYSTEM_MANAGER in frappe.get_roles(user))


def is_rule_manager(user=None):
	"""A CRM Automation Manager or a System Manager (Administrator holds every role)."""
	user = user or frappe.session.user
	return user == "Administrator" or not set(RULE_MANAGER_ROLES).isdisjoint(frappe.get_roles(user))


def check_rule_manager():
	"""Raise frappe.PermissionError unless the session user is a rule manager."""
	if not is_rule_manager():
		frappe.throw(_("Only a CRM Automation Manager can do this"), frappe.PermissionError)


def may_edit_rules(user=None):
	"""Whoever may edit Workflow Rules may see everything a rule does, recipients included."""
	return bool(frappe.has_permission("Workflow Rule", "write", user=user or frappe.session.user))
