"""Before this version, enabling a Time rule called frappe.db.add_index, which named the index
`<field>_index` and kept it with a "search index" Property Setter. Mark those Property Setters as the
app's (module CRM Automation), so uninstall can take them and their index away, and add the app's
own prefixed indexes."""

import frappe

from crm_automation.setup.time_indexes import ensure_time_rule_indexes


def execute():
	if not frappe.db.table_exists("Workflow Rule"):
		return
	rules = frappe.get_all(
		"Workflow Rule",
		filters={"trigger": "Time", "time_field": ("is", "set")},
		fields=["document_type", "time_field"],
	)
	for rule in rules:
		standard = frappe.db.get_value(
			"DocField", {"parent": rule.document_type, "fieldname": rule.time_field}, "search_index"
		)
		if standard:
			continue  # indexed by its own doctype; nothing of ours
		frappe.db.set_value(
			"Property Setter",
			{
				"doc_type": rule.document_type,
				"field_name": rule.time_field,
				"property": "search_index",
				"value": "1",
				"is_system_generated": 1,
				"module": ("is", "not set"),
			},
			"module",
			"CRM Automation",
			update_modified=False,
		)
	frappe.db.commit()
	ensure_time_rule_indexes()
