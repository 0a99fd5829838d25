"""500 Lead inserts with 50 enabled, non-matching Workflow Rules vs none, alternating in one run.

Goal (Workflow Rule issue): at most 1.05x the time without them. Leads carry no email address, so
no gravatar DNS lookup is measured. Everything is rolled back at the end.
"""

import json
import statistics
import time

from _site import connect, summary, timed

BLOCK = 10
BLOCKS = 50  # 50 x 10 = 500 inserts per arm, alternating finely so drift hits both arms alike


def make_rules(frappe):
	from crm_automation.runtime.workflow_rules import clear_rule_cache

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
	from crm_automation.runtime.workflow_rules import clear_rule_cache, get_rules

	frappe.db.sql("update `tabWorkflow Rule` set enabled=%s where name like '\\_Bench Non Matching %%'", enabled)
	clear_rule_cache()
	get_rules("Lead", "on_update")  # build the index outside the timed block, as a warm worker has it


def insert_leads(frappe, tag):
	for i in range(BLOCK):
		frappe.get_doc({"doctype": "Lead", "first_name": f"Bench {tag} {i}", "company_name": "Bench Co"}).insert()


def instrument_handlers():
	"""Accumulate the time spent inside crm_automation's doc_events handlers: our own cost per
	insert, free of the database noise that the wall-clock ratio carries."""
	import crm_automation.doc_events as events

	spent = {"seconds": 0.0}
	original = events._run

	def timed_run(doc, event):
		started = time.perf_counter()
		try:
			return original(doc, event)
		finally:
			spent["seconds"] += time.perf_counter() - started

	events._run = timed_run
	return spent


def main():
	frappe = connect()
	spent = instrument_handlers()
	try:
		make_rules(frappe)
		insert_leads(frappe, "warm-up")
		with_rules, without_rules = [], []
		handler_seconds = {1: 0.0, 0: 0.0}
		for block in range(BLOCKS):
			for enabled, samples in ((1, with_rules), (0, without_rules)) if block % 2 == 0 else ((0, without_rules), (1, with_rules)):
				set_rules_enabled(frappe, enabled)
				before = spent["seconds"]
				samples.append(timed(insert_leads, frappe, f"{enabled}-{block}"))
				handler_seconds[enabled] += spent["seconds"] - before
		ratio = sum(with_rules) / sum(without_rules)
		median_ratio = statistics.median(with_rules) / statistics.median(without_rules)
		inserts = BLOCK * BLOCKS
		print(f"Lead inserts per arm: {BLOCK * BLOCKS}, alternating blocks of {BLOCK}")
		print(summary("with 50 non-matching rules", with_rules))
		print(summary("without rules             ", without_rules))
		print(f"ratio of totals: {ratio:.3f}x, of median blocks: {median_ratio:.3f}x  (goal: at most 1.05x)")
		per_insert = sum(without_rules) / inserts
		ours = handler_seconds[1] / inserts
		print(
			f"crm_automation handlers: {ours * 1e6:.0f} us per insert with 50 rules "
			f"({handler_seconds[0] / inserts * 1e6:.0f} us with none) = {ours / per_insert * 100:.1f}% "
			f"of a {per_insert * 1000:.1f} ms insert"
		)
	finally:
		frappe.db.rollback()
		from crm_automation.runtime.workflow_rules import clear_rule_cache

		clear_rule_cache()
		frappe.destroy()


if __name__ == "__main__":
	main()
