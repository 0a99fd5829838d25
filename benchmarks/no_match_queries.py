"""The SQL statements of a Lead save (an insert, then an update) that matches no rule, with the app's handlers and without them,
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


def new_request(frappe):
	frappe.local.cache = {}
	frappe.local.request_cache = defaultdict(dict)


def insert_lead(frappe, tag):
	new_request(frappe)
	return frappe.get_doc(
		{"doctype": "Lead", "first_name": f"No Match {tag}", "company_name": "Bench Co"}
	).insert()


def update_lead(frappe, lead, tag):
	new_request(frappe)
	doc = frappe.get_doc("Lead", lead)
	doc.company_name = f"Bench Co {tag}"
	doc.save()


def measure(frappe, rules, per_arm):
	from crm_automation.runtime.workflow_rules import clear_rule_cache, get_index

	insert_rules(frappe, rules)
	clear_rule_cache()
	get_index()
	with_app, without_app = hooks_without_app(frappe)
	seen, original = counting(frappe)
	counts = {(kind, arm): [] for kind in ("insert", "update") for arm in ("app", "none")}
	statements = {key: Counter() for key in counts}
	try:
		for i in range(per_arm + 1):
			for arm, hooks in (("app", with_app), ("none", without_app)):
				frappe.local.doc_events_hooks = hooks
				del seen[:]
				lead = insert_lead(frappe, f"{arm} {i}").name
				inserted = list(seen)
				del seen[:]
				update_lead(frappe, lead, f"{arm} {i}")
				if i:  # the first of each arm warms the process up (meta, compiled index)
					for kind, made in (("insert", inserted), ("update", seen)):
						counts[kind, arm].append(len(made))
						statements[kind, arm].update(made)
	finally:
		frappe.db.sql = original
		frappe.local.doc_events_hooks = with_app
	extra = {kind: statements[kind, "app"] - statements[kind, "none"] for kind in ("insert", "update")}
	return counts, extra


def main():
	frappe = connect()
	rules = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
	per_arm = int(sys.argv[3]) if len(sys.argv) > 3 else 20
	try:
		counts, extra = measure(frappe, rules, per_arm)
		for kind in ("insert", "update"):
			for arm, label in (("app", "with crm_automation"), ("none", "without it")):
				values = counts[kind, arm]
				print(
					f"Lead {kind} {label}: {sum(values) / len(values):.1f} statements "
					f"(min {min(values)}, max {max(values)}, {len(values)} saves, {rules} rules on Lead)"
				)
			print(f"  only the app's arm, per {kind}: {sum(extra[kind].values()) / per_arm:.1f}")
			for statement, times in extra[kind].most_common(10):
				print(f"    {times / per_arm:.1f}x  {statement}")
		from crm_automation.escalation import get_policies
		from crm_automation.sequences.steps import sequence_doctypes

		print(
			f"on this site: {len(get_policies('Lead'))} enabled Escalation Policies on Lead; follow-up steps "
			f"{'followed' if 'Lead' in sequence_doctypes() else 'not followed'} on Lead (an update looks each "
			"up once: a clock or pending step of an existing document lives in the database)"
		)
		print("goal: the same count")
	finally:
		frappe.db.rollback()
		frappe.destroy()


if __name__ == "__main__":
	main()
