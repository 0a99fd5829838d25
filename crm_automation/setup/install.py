"""Install and uninstall: what the app adds to a site, and takes away again without a trace."""

import frappe
from frappe.custom.doctype.custom_field.custom_field import create_custom_fields

MANAGER_ROLE = "CRM Automation Manager"


def after_install():
	create_manager_role()
	create_custom_fields(get_custom_fields(), ignore_validate=True)
	frappe.clear_cache()


def after_migrate():
	create_manager_role()
	create_custom_fields(get_custom_fields(), ignore_validate=True)


def before_uninstall():
	delete_custom_fields(get_custom_fields())
	delete_manager_role()


def before_tests():
	# Queued emails stay queued (tests check the Email Queue): with an outgoing account present,
	# Frappe would otherwise send assignment emails at once and commit the tests' transaction.
	frappe.flags.mute_emails = True
	# ERPNext's test records (_Test Company...) need a completed setup wizard.
	if "erpnext" in frappe.get_installed_apps():
		from erpnext.setup.utils import before_tests as erpnext_before_tests

		erpnext_before_tests()


def create_manager_role():
	if frappe.db.exists("Role", MANAGER_ROLE):
		return
	frappe.get_doc(
		{"doctype": "Role", "role_name": MANAGER_ROLE, "desk_access": 1, "is_custom": 0}
	).insert(ignore_permissions=True)


def delete_manager_role():
	if not frappe.db.exists("Role", MANAGER_ROLE):
		return
	frappe.db.delete("Has Role", {"role": MANAGER_ROLE})
	frappe.db.delete("Custom DocPerm", {"role": MANAGER_ROLE})
	frappe.delete_doc("Role", MANAGER_ROLE, ignore_permissions=True, force=True)


def get_custom_fields():
	"""Custom fields the app adds to other apps' doctypes, by doctype: install creates them and
	uninstall removes exactly these."""
	from crm_automation.setup.custom_fields import get_custom_fields as fields_by_doctype

	fields = fields_by_doctype()
	for doctype_fields in fields.values():
		for field in doctype_fields:
			field.setdefault("module", "CRM Automation")
	return fields


def delete_custom_fields(custom_fields):
	for doctype, fields in custom_fields.items():
		fieldnames = [field["fieldname"] for field in fields]
		frappe.db.delete("Custom Field", {"dt": doctype, "fieldname": ("in", fieldnames)})
		frappe.db.delete("Property Setter", {"doc_type": doctype, "field_name": ("in", fieldnames)})
		for fieldname in fieldnames:
			if frappe.db.has_column(doctype, fieldname):
				frappe.db.sql_ddl(f"alter table `tab{doctype}` drop column `{fieldname}`")
		frappe.cache.hdel("table_columns", f"tab{doctype}")
		frappe.clear_cache(doctype=doctype)
