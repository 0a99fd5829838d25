"""Who an action reaches: enabled users from fields, roles, groups and managers, and their addresses.

An address or number read from a record (a user's e-mail, a Contact's mobile, a field of the
document) reaches its recipient as Frappe's own Notification would, but is shown (dry run, log
result) only to someone who may read that field of that record (``may_read_value``); anyone else
sees that it is hidden, or a count."""

import frappe
from frappe import _

from crm_automation.trust.redaction import HIDDEN


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
		"User Group Member",
		filters={"parent": group, "parenttype": "User Group"},
		pluck="user",
		order_by="idx asc",
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
	managers = frappe.get_all(
		"Employee", filters={"user_id": ("in", users), "reports_to": ("is", "set")}, pluck="reports_to"
	)
	if not managers:
		return []
	return frappe.get_all(
		"Employee", filters={"name": ("in", managers), "user_id": ("is", "set")}, pluck="user_id"
	)


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
	return [address for address, _source in address_entries(intent, doc)]


def address_entries(intent, doc):
	"""(address, source) for each recipient of Send Email, once per address. ``source`` is
	(doctype, name, fieldname) of the record the address was read from, or None when the rule
	itself names the address or the address is the user's id."""
	entries, users = [], []
	if intent.get("to_field"):
		value = doc.get(intent["to_field"])
		if value and "@" in value:
			entries.append((value, (doc.doctype, doc.name, intent["to_field"])))
		else:
			users.append(value)
	if intent.get("to_owner"):
		users.append(doc.owner)
	if intent.get("to_assignees"):
		users.extend(current_assignees(doc))
	if intent.get("to_role"):
		users.extend(users_with_role(intent["to_role"]))
	for entry in intent.get("to_users") or []:
		if frappe.db.exists("User", entry):
			users.append(entry)
		else:
			entries.append((entry, None))
	if intent.get("to_managers"):
		users.extend(managers_of(enabled_users(users)))
	for user in enabled_users(users):
		email = frappe.db.get_value("User", user, "email")
		if email:
			entries.append((email, None if email == user else ("User", user, "email")))
	found = {}
	for address, source in entries:
		if address and "@" in address and (address not in found or source is None):
			found[address] = source
	return list(found.items())


def may_read_value(doctype, name, fieldname, user, doc=None):
	"""Whether ``user`` may read ``fieldname`` of the record: the record (roles, User Permissions,
	shares) and the field's permission level. ``doc`` is the record when the caller holds it (it
	may not be saved yet). A missing record is not readable."""
	if user == "Administrator":
		return True
	if not frappe.has_permission(doctype, "read", user=user):
		return False
	if doc is None or doc.doctype != doctype or doc.name != name:
		if not (isinstance(name, str) and name) or not frappe.db.exists(doctype, name):
			return False
		doc = name
	if not frappe.has_permission(doctype, "read", doc=doc, user=user):
		return False
	return fieldname in frappe.get_meta(doctype).get_permitted_fieldnames(user=user)


def shown_addresses(entries, user, doc=None):
	"""(the addresses ``user`` may see, how many others are hidden) of ``address_entries``."""
	shown, hidden = [], 0
	for address, source in entries:
		if source is None or may_read_value(*source, user, doc=doc):
			shown.append(address)
		else:
			hidden += 1
	return shown, hidden


def describe_addresses(entries, user, doc=None):
	"""The recipients as ``user`` may see them: "a@x.com, b@y.com, 2 hidden (•••)"."""
	return format_addresses(*shown_addresses(entries, user, doc))


def format_addresses(shown, hidden):
	return ", ".join([*shown, _("{0} hidden ({1})").format(hidden, HIDDEN)] if hidden else shown)
