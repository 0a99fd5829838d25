"""Run with a bench's Python after `uninstall-app crm_automation`: exits non-zero, listing what is
left, if the app left any trace on the site (doctypes, tables, custom fields, role, the indexes it
added for Time rules, Property Setters)."""

import sys

import frappe

APP_DOCTYPES = (
	"Workflow Rule",
	"Workflow Rule Action",
	"Workflow Rule Branch",
	"Automation Log",
	"Automation Log Action",
	"Automation Occurrence",
	"CRM Automation Settings",
	"Workflow Rule Step",
	"Automation Sequence Step",
	"Automation Sequence Definition",
)


def main(site):
	frappe.init(site=site, sites_path=".")
	frappe.connect()
	try:
		traces = []
		if "crm_automation" in frappe.get_installed_apps():
			traces.append("still listed in Installed Applications")
		for doctype in APP_DOCTYPES:
			if frappe.db.exists("DocType", doctype):
				traces.append(f"DocType {doctype}")
			if frappe.db.table_exists(doctype):
				traces.append(f"table tab{doctype}")
		if frappe.db.exists("Module Def", "CRM Automation"):
			traces.append("Module Def CRM Automation")
		for doctype in ("Workspace", "Number Card", "Dashboard Chart", "Dashboard Chart Source", "Report"):
			for name in frappe.get_all(doctype, filters={"module": "CRM Automation"}, pluck="name"):
				traces.append(f"{doctype} {name}")
		if frappe.db.exists("Role", "CRM Automation Manager"):
			traces.append("Role CRM Automation Manager")
		for field in frappe.get_all("Custom Field", filters={"module": "CRM Automation"}, pluck="name"):
			traces.append(f"Custom Field {field}")
		from crm_automation.setup.custom_fields import get_custom_fields

		for doctype, fields in get_custom_fields().items():
			for field in fields:
				if frappe.db.exists("Custom Field", {"dt": doctype, "fieldname": field["fieldname"]}):
					traces.append(f"Custom Field {doctype}.{field['fieldname']}")
				if frappe.db.has_column(doctype, field["fieldname"]):
					traces.append(f"column tab{doctype}.{field['fieldname']}")
		from crm_automation.setup.time_indexes import INDEX_PREFIX

		for table, index in frappe.db.sql(
			"""select distinct table_name, index_name from information_schema.statistics
			where table_schema = database() and index_name like %s""",
			(INDEX_PREFIX.replace("_", "\\_") + "%",),
		):
			traces.append(f"index {index} on {table}")
		for setter in frappe.get_all("Property Setter", filters={"module": "CRM Automation"}, pluck="name"):
			traces.append(f"Property Setter {setter}")
		if traces:
			print("uninstall left traces:\n  " + "\n  ".join(traces))
			sys.exit(1)
		print(
			"uninstall left no trace: doctypes, tables, module, role, custom fields, Time-rule indexes and "
			"Property Setters are gone"
		)
	finally:
		frappe.destroy()


if __name__ == "__main__":
	main(sys.argv[1])
