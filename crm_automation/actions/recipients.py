"""Who an action reaches: enabled users from fields, roles, groups and managers, and their addresses."""

import frappe


def enabled_users(users):
	users = [u for u in dict.fromkeys(users) if u]
	if not users:
		return []
	user = frappe.qb.DocType("User")  # not get_all: called up to three times per rule run
	enabled = {
		name
		for (name,) in frappe.qb.from_(user)
		.select(user.name)
		.where(user.name.isin(users) & (user.enabled == 1))
		.run()
	}
	return [u for u in users if u in enabled and u != "Guest"]


def role_members(role):
	"""Everyone holding the role, disabled users too, alphabetically (a Role has no order of its own;
	its round robin takes turns in this one). Administrator is never a member for automation."""
	users = frappe.get_all(
		"Has Role", filters={"role": role, "parenttype": "User"}, pluck="parent", distinct=True
	)
	return sorted(u for u in users if u and u != "Administrator")


def group_members(group):
	"""A User Group's members in the order the group lists them, disabled users too."""
	return frappe.get_all(
		"User Group Member", filters={"parent": group, "parenttype": "User Group"}, pluck="user", order_by="idx asc"
	)


def users_with_role(role):
	return enabled_users(role_members(role))


def users_in_group(group):
	return enabled_users(group_members(group))


def current_assignees(doc):
	return frappe.get_all(
		"ToDo",
		filters={"reference_type": doc.doctype, "reference_name": doc.name, "status": "Open"},
		pluck="allocated_to",
	)


def managers_of(users):
	"""The users their Employee records report to (Employee: Reports To)."""
	if not users or not frappe.db.exists("DocType", "Employee"):
		return []
	managers = frappe.get_all("Employee", filters={"user_id": ("in", users), "reports_to": ("is", "set")}, pluck="reports_to")
	if not managers:
		return []
	return frappe.get_all("Employee", filters={"name": ("in", managers), "user_id": ("is", "set")}, pluck="user_id")


def resolve_users(intent, doc):
	users = []
	if intent.get("to_field"):
		users.append(doc.get(intent["to_field"]))
	if intent.get("to_owner"):
		users.append(doc.owner)
	if intent.get("to_assignees"):
		users.extend(current_assignees(doc))
	if intent.get("to_role"):
		users.extend(users_with_role(intent["to_role"]))
	users.extend(intent.get("to_users") or [])
	if intent.get("to_managers"):
		users.extend(managers_of(enabled_users(users)))
	return enabled_users(users)


def resolve_addresses(intent, doc):
	addresses, users = [], []
	if intent.get("to_field"):
		value = doc.get(intent["to_field"])
		(addresses if value and "@" in value else users).append(value)
	if intent.get("to_owner"):
		users.append(doc.owner)
	if intent.get("to_assignees"):
		users.extend(current_assignees(doc))
	if intent.get("to_role"):
		users.extend(users_with_role(intent["to_role"]))
	for entry in intent.get("to_users") or []:
		(users if frappe.db.exists("User", entry) else addresses).append(entry)
	if intent.get("to_managers"):
		users.extend(managers_of(enabled_users(users)))
	for user in enabled_users(users):
		email = frappe.db.get_value("User", user, "email")
		if email:
			addresses.append(email)
	return [a for a in dict.fromkeys(addresses) if a and "@" in a]
