"""The SQL statements of a Lead save that matches no rule, with the app's handlers and without them,
with 1,000 enabled Workflow Rules on Lead (those of idle_rules.py: none matches a new Lead).

    ../env/bin/python no_match_queries.py <site> [rules] [inserts per arm]

Goal (live-stack issue): the same count. Each insert starts as a new request (empty frappe.local
caches, as Frappe leaves them between requests), so whatever the handlers read per request shows up
here if it comes from the database rather than redis or the process's compiled index. The "without"
arm removes crm_automation's handlers from this process's resolved doc_events hooks; both arms run on
the same database. Statements are counted where every query of Frappe passes (frappe.db.sql); the
ones only the app's arm made are printed. Leads carry no email address. Everything is rolled back.
"""

import sys
from collections import Counter, defaultdict

from _site import connect
from idle_rules import insert_rules
from no_work_cost import hooks_without_app


def counting(frappe):
	"""Wrap this connection's sql(): returns the list every statement is appended to."""
	seen = []
	original = frappe.db.sql

	def sql(query, *args, **kwargs):
		seen.append(" ".join(str(query).split())[:160])
		return original(query, *args, **kwargs)

	frappe.db.sql = sql
	return seen, original


def insert_lead(frappe, tag):
	frappe.local.cache = {}
	frappe.local.request_cache = defaultdict(dict)
	frappe.get_doc({"doctype": "Lead", "first_name": f"No Match {tag}", "company_name": "Bench Co"}).insert()


def measure(frappe, rules, per_arm):
	from crm_automation.runtime.workflow_rules import clear_rule_cache, get_index

	insert_rules(frappe, rules)
	clear_rule_cache()
	get_index()
	with_app, without_app = hooks_without_app(frappe)
	seen, original = counting(frappe)
	counts = {"app": [], "none": []}
	statements = {"app": Counter(), "none": Counter()}
	try:
		for i in range(per_arm + 1):
			for arm, hooks in (("app", with_app), ("none", without_app)):
				frappe.local.doc_events_hooks = hooks
				del seen[:]
				insert_lead(frappe, f"{arm} {i}")
				if i:  # the first of each arm warms the process up (meta, compiled index)
					counts[arm].append(len(seen))
					statements[arm].update(seen)
	finally:
		frappe.db.sql = original
		frappe.local.doc_events_hooks = with_app
	extra = statements["app"] - statements["none"]
	return counts, extra


def main():
	frappe = connect()
	rules = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
	per_arm = int(sys.argv[3]) if len(sys.argv) > 3 else 20
	try:
		counts, extra = measure(frappe, rules, per_arm)
		for arm, label in (("app", "with crm_automation"), ("none", "without it")):
			values = counts[arm]
			print(
				f"{label}: {sum(values) / len(values):.1f} statements per Lead insert "
				f"(min {min(values)}, max {max(values)}, {len(values)} inserts, {rules} rules on Lead)"
			)
		print(f"statements only the app's arm made, per insert: {sum(extra.values()) / per_arm:.1f}")
		for statement, times in extra.most_common(10):
			print(f"  {times / per_arm:.1f}x  {statement}")
		print("goal: the same count")
	finally:
		frappe.db.rollback()
		frappe.destroy()


if __name__ == "__main__":
	main()
