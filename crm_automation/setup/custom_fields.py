"""Custom fields on ERPNext's doctypes, created in code at install and removed at uninstall.

Each feature adds its fields here (doctype → list of Custom Field dicts, as
``frappe.custom.doctype.custom_field.custom_field.create_custom_fields`` takes them)."""


def get_custom_fields():
	return {}
