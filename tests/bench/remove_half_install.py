"""Run with a bench's Python from sites/ (scripts/run-tests.sh does): removes what an install of
crm_automation that failed half-way left on a site — an Installed Applications row, the Module
Def, doctypes and tables, the roles and custom fields — so that the next install-app starts from a
clean site instead of failing as a duplicate. Does nothing on a site without such traces."""

import sys

import frappe

APP = "crm_automation"
MODULE = "CRM Automation"
ROLES = ("CRM Automation Manager", "CRM Automation Integration")


def traces():
	found = []
	if APP in frappe.get_installed_apps():
		found.append("Installed Applications row")
	if frappe.db.exists("Module Def", MODULE):
		found.append(f"Module Def {MODULE}")
	found.extend(f"DocType {name}" for name in frappe.get_all("DocType", filters={"module": MODULE}, pluck="name"))
	found.extend(f"Role {role}" for role in ROLES if frappe.db.exists("Role", role))
	found.extend(
		f"Custom Field {name}" for name in frappe.get_all("Custom Field", filters={"module": MODULE}, pluck="name")
	)
	return found


def main(site):
	frappe.init(site=site, sites_path=".")
	frappe.connect()
	try:
		left = traces()
		if not left:
			return
		print(f"an earlier install left on {site}: {', '.join(left)}; removing it")
		from frappe.installer import remove_app

		frappe.set_user("Administrator")
		remove_app(APP, yes=True, no_backup=True, force=True)
		# remove_app finds doctypes through Module Def; a failure before add_module_defs leaves
		# none, and a failure before after_install leaves no role: sweep up what is still there.
		for role in ROLES:
			if frappe.db.exists("Role", role):
				frappe.db.delete("Has Role", {"role": role})
				frappe.db.delete("Custom DocPerm", {"role": role})
				frappe.delete_doc("Role", role, ignore_permissions=True, force=True)
		frappe.db.delete("Custom Field", {"module": MODULE})
		frappe.db.commit()
		frappe.clear_cache()
		still = traces()
		if still:
			print(f"could not remove: {', '.join(still)}")
			sys.exit(1)
	finally:
		frappe.destroy()


if __name__ == "__main__":
	main(sys.argv[1])
