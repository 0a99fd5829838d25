"""500 Lead inserts with 50 enabled, non-matching Workflow Rules vs none, alternating in one run.

Goal (Workflow Rule issue): at most 1.05x the time without them. Leads carry no email address, so
no gravatar DNS lookup is measured. Everything is rolled back at the end.
"""

import json

from _site import connect, summary, timed

BLOCK = 25
BLOCKS = 20  # 20 x 25 = 500 inserts per arm


def make_rules(frappe):
	from crm_automation.rules import clear_rule_cache

	triggers = ["New", "Save", "Value Change", "Validate"]
	for i in range(50):
		trigger = triggers[i % 4]
		rule = {
			"doctype": "Workflow Rule",
			"rule_name": f"_Bench Non Matching {i}",
			"document_type": "Lead",
			"trigger": trigger,
			"enabled": 1,
			"conditions": json.dumps(
				{"all": [{"field": "territory", "op": "=", "value": f"Nowhere {i}"}, {"field": "annual_revenue", "op": ">", "value": 10**9}]}
			),
			"actions": [
				{"action_type": "Set Value", "target_field": "company_name", "value": "x"}
				if trigger == "Validate"
				else {"action_type": "Add Comment", "message": "never"}
			],
		}
		if trigger == "Value Change":
			rule["trigger_field"] = "status"
			rule["to_value"] = "Replied"
		frappe.get_doc(rule).insert(ignore_permissions=True)
	clear_rule_cache()


def set_rules_enabled(frappe, enabled):
	from crm_automation.rules import clear_rule_cache, get_rules

	frappe.db.sql("update `tabWorkflow Rule` set enabled=%s where name like '\\_Bench Non Matching %%'", enabled)
	clear_rule_cache()
	get_rules("Lead", "on_update")  # build the index outside the timed block, as a warm worker has it


def insert_leads(frappe, tag):
	for i in range(BLOCK):
		frappe.get_doc({"doctype": "Lead", "first_name": f"Bench {tag} {i}", "company_name": "Bench Co"}).insert()


def main():
	frappe = connect()
	try:
		make_rules(frappe)
		insert_leads(frappe, "warm-up")
		with_rules, without_rules = [], []
		for block in range(BLOCKS):
			for enabled, samples in ((1, with_rules), (0, without_rules)) if block % 2 == 0 else ((0, without_rules), (1, with_rules)):
				set_rules_enabled(frappe, enabled)
				samples.append(timed(insert_leads, frappe, f"{enabled}-{block}"))
		ratio = sum(with_rules) / sum(without_rules)
		print(f"Lead inserts per arm: {BLOCK * BLOCKS}, alternating blocks of {BLOCK}")
		print(summary("with 50 non-matching rules", with_rules))
		print(summary("without rules             ", without_rules))
		print(f"ratio: {ratio:.3f}x  (goal: at most 1.05x)")
	finally:
		frappe.db.rollback()
		from crm_automation.rules import clear_rule_cache

		clear_rule_cache()
		frappe.destroy()


if __name__ == "__main__":
	main()
