"""Who may say when someone is away (User Availability): the user themselves; their managers, that is
the users of the Employees above theirs in the Employee "Reports To" chain (as ERPNext's own leave
approval follows it); and System Managers. Nobody else may read or change it, whatever their other
roles: a CRM Automation Manager names users in rules but learns of their absences only from the
Automation Log ("away until …", never the reason).

The doctype's DocPerms give every desk user the rights; these hooks narrow them to the records above.
"""

import frappe

from crm_automation.trust.roles import is_system_manager

# A Reports To chain deeper than this is a loop in the data (ERPNext refuses loops, imports may not).
_MAX_LEVELS = 20


def team_of(manager):
	"""The users whose Employees report to ``manager``'s Employee, directly or further down."""
	current = frappe.get_all("Employee", filters={"user_id": manager}, pluck="name")
	seen, users = set(current), set()
	for _level in range(_MAX_LEVELS):
		if not current:
			break
		rows = frappe.get_all(
			"Employee", filters={"reports_to": ["in", current]}, fields=["name", "user_id"]
		)
		current = [row.name for row in rows if row.name not in seen]
		seen.update(current)
		users.update(row.user_id for row in rows if row.user_id)
	users.discard(manager)
	return users


def may_manage_availability(user, target):
	"""True when ``user`` may see and set when ``target`` is away."""
	if not user or not target or user == "Guest":
		return False
	return user == target or is_system_manager(user) or target in team_of(user)


def has_availability_permission(doc, ptype=None, user=None, debug=False):
	"""The has_permission hook of User Availability: the record's user (and, for a saved record, the
	user it was saved for, so a record cannot be moved onto someone else) must be ``user``'s own or
	their team's."""
	user = user or frappe.session.user
	if is_system_manager(user):
		return None
	targets = {doc.get("user")}
	if doc.name and not doc.is_new():
		targets.add(doc.name)
	if all(may_manage_availability(user, target) for target in targets):
		return None
	return False


def availability_query_conditions(user=None, doctype=None):
	"""List and report views: only the user's own record and their team's."""
	return _visible_condition(user, "`tabUser Availability`.`user`")


def period_query_conditions(user=None, doctype=None):
	"""The away periods listed on their own (REST get_list of the child table with its parent named):
	the same records, so nobody reads the reasons of others this way."""
	return _visible_condition(user, "`tabUser Availability Period`.`parent`")


def _visible_condition(user, column):
	user = user or frappe.session.user
	if is_system_manager(user):
		return ""
	visible = sorted({user} | team_of(user))
	return "{0} in ({1})".format(column, ", ".join(frappe.db.escape(u) for u in visible))
