"""Rules saved before Run As existed run as their owner; say so in the field, where it can be seen."""

import frappe

RULE_DOCTYPES = ("Workflow Rule", "Escalation Policy", "Lead Score Rule")


def execute():
	for doctype in RULE_DOCTYPES:
		if not frappe.db.has_column(doctype, "run_as"):
			continue
		rule = frappe.qb.DocType(doctype)
		(
			frappe.qb.update(rule)
			.set(rule.run_as, rule.owner)
			.where(rule.run_as.isnull() | (rule.run_as == ""))
		).run()
