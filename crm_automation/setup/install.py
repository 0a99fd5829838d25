"""Install and uninstall: what the app adds to a site, and takes away again without a trace."""

import frappe
from frappe.custom.doctype.custom_field.custom_field import create_custom_fields

from crm_automation.runtime.retention import register_in_log_settings, unregister_from_log_settings
from crm_automation.setup.custom_fields import get_custom_fields as fields_by_doctype
from crm_automation.setup.roles import INTEGRATION_ROLE, RULE_MANAGER_ROLE
from crm_automation.setup.time_indexes import drop_app_indexes, ensure_time_rule_indexes


def after_install():
	create_manager_role()
	create_integration_role()
	create_custom_fields(get_custom_fields(), ignore_validate=True)
	register_in_log_settings()
	frappe.clear_cache()


def after_migrate():
	create_manager_role()
	create_integration_role()
	create_custom_fields(get_custom_fields(), ignore_validate=True)
	register_in_log_settings()
	frappe.db.commit()  # the index DDL below would commit it anyway; say so
	# A rule disabled or deleted since leaves its index until now: rebuilding one on a large table
	# each time a rule is switched off and on would cost more than keeping it until the next migrate.
	ensure_time_rule_indexes(prune=True)


def before_uninstall():
	unregister_from_log_settings()
	delete_custom_fields(get_custom_fields())
	delete_app_property_setters()
	drop_app_indexes()
	delete_manager_role()
	delete_integration_role()


def before_tests():
	# Queued emails stay queued (tests check the Email Queue): with an outgoing account present,
	# Frappe would otherwise send assignment emails at once and commit the tests' transaction.
	frappe.flags.mute_emails = True
	# ERPNext's test records (_Test Company...) need a completed setup wizard.
	if "erpnext" in frappe.get_installed_apps():
		from erpnext.setup.utils import before_tests as erpnext_before_tests

		erpnext_before_tests()


def create_manager_role():
	if frappe.db.exists("Role", RULE_MANAGER_ROLE):
		return
	frappe.get_doc(
		{"doctype": "Role", "role_name": RULE_MANAGER_ROLE, "desk_access": 1, "is_custom": 0}
	).insert(ignore_permissions=True)


def delete_manager_role():
	if not frappe.db.exists("Role", RULE_MANAGER_ROLE):
		return
	frappe.db.delete("Has Role", {"role": RULE_MANAGER_ROLE})
	frappe.db.delete("Custom DocPerm", {"role": RULE_MANAGER_ROLE})
	frappe.delete_doc("Role", RULE_MANAGER_ROLE, ignore_permissions=True, force=True)


def create_integration_role():
	if frappe.db.exists("Role", INTEGRATION_ROLE):
		return
	frappe.get_doc(
		{"doctype": "Role", "role_name": INTEGRATION_ROLE, "desk_access": 0, "is_custom": 0}
	).insert(ignore_permissions=True)


def delete_integration_role():
	if not frappe.db.exists("Role", INTEGRATION_ROLE):
		return
	frappe.db.delete("Has Role", {"role": INTEGRATION_ROLE})
	frappe.db.delete("Custom DocPerm", {"role": INTEGRATION_ROLE})
	frappe.delete_doc("Role", INTEGRATION_ROLE, ignore_permissions=True, force=True)


def delete_app_property_setters():
	"""Property Setters the app made (module CRM Automation): the "search index" ones that kept the
	indexes of Time rules before they were the app's own, with their single-column index."""
	for setter in frappe.get_all(
		"Property Setter",
		filters={"module": "CRM Automation"},
		fields=["name", "doc_type", "field_name", "property"],
	):
		frappe.delete_doc("Property Setter", setter.name, ignore_permissions=True, force=True)
		if setter.property != "search_index" or not frappe.db.table_exists(setter.doc_type):
			continue
		table = f"tab{setter.doc_type}"
		index = frappe.db.get_column_index(table, setter.field_name, unique=False)
		if index:
			frappe.db.sql_ddl(f"alter table `{table}` drop index `{index.Key_name}`")
		frappe.clear_cache(doctype=setter.doc_type)


def get_custom_fields():
	"""Custom fields the app adds to other apps' doctypes, by doctype: install creates them and
	uninstall removes exactly these."""
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
