"""Webhook headers (often a bearer token) were stored as plain JSON; they become a Password field.
Runs before the schema sync: each stored value is encrypted into __Auth and the column keeps only
the mask, so the column's change to a shorter text type loses nothing."""

import frappe
from frappe.utils.password import set_encrypted_password


def execute():
	if not frappe.db.table_exists("Workflow Rule Action") or not frappe.db.has_column(
		"Workflow Rule Action", "headers"
	):
		return
	rows = frappe.db.sql(
		"""select name, headers from `tabWorkflow Rule Action`
		where headers is not null and headers != ''""",
		as_dict=True,
	)
	for row in rows:
		value = str(row.headers).strip()
		if not value or set(value) == {"*"}:
			continue  # empty, or encrypted already
		set_encrypted_password("Workflow Rule Action", row.name, value, "headers")
		frappe.db.sql(
			"update `tabWorkflow Rule Action` set headers = %s where name = %s",
			("*" * min(len(value), 1000), row.name),
		)
