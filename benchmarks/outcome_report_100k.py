"""The Rule Outcome report over 100,000 Leads: a rule with a 10 % hold-out, every lead a member of
its groups, 12 % of the held out and 15 % of the treated converted (status).

Leads and group members are bulk-inserted straight into the tables (membership as the engine
assigns it, engine/groups.py) and deleted at the end, with the rule. Prints the report's time as
Administrator (no permission query) and as a CRM Automation Manager who is a Sales User (Frappe's
permission query on every chunk of names).

    cd ~/frappe-bench/sites && ../env/bin/python /path/to/crm_automation/benchmarks/outcome_report_100k.py SITE
"""

import random
import sys
import time

from _site import connect

PREFIX = "BENCH-OUT-"
RULE = "_Bench Outcome Rule"
USER = "bench-outcome@example.com"
TOTAL = 100_000


def insert(frappe):
	from frappe.utils import now_datetime

	from crm_automation.engine.groups import HELD_OUT, TREATED, is_held_out
	from crm_automation.runtime.groups import member_name

	now, rng = now_datetime(), random.Random(23)
	leads, members = [], []
	for i in range(TOTAL):
		name = f"{PREFIX}{i:06d}"
		held = is_held_out(RULE, name, 10)
		converted = rng.random() < (0.12 if held else 0.15)
		status = "Converted" if converted else rng.choice(["Lead", "Open", "Replied"])
		leads.append((name, now, now, "Administrator", "Administrator", 0, f"Bench {i}", f"Bench {i}", status, "CRM-LEAD-.YYYY.-"))
		group = HELD_OUT if held else TREATED
		members.append((member_name(RULE, "Lead", name), now, now, "Administrator", "Administrator", 0, RULE, group, "Lead", name))
	lead_fields = ["name", "creation", "modified", "owner", "modified_by", "docstatus", "first_name", "lead_name", "status", "naming_series"]
	member_fields = ["name", "creation", "modified", "owner", "modified_by", "docstatus", "rule", "group_name", "reference_doctype", "reference_name"]
	for start in range(0, TOTAL, 10000):
		frappe.db.bulk_insert("Lead", lead_fields, leads[start : start + 10000])
		frappe.db.bulk_insert("Automation Group Member", member_fields, members[start : start + 10000])
	frappe.db.commit()


def make_rule(frappe):
	if frappe.db.exists("Workflow Rule", RULE):
		frappe.delete_doc("Workflow Rule", RULE, force=True)
	frappe.get_doc(
		{
			"doctype": "Workflow Rule",
			"rule_name": RULE,
			"document_type": "Lead",
			"trigger": "New",
			"enabled": 0,
			"holdout_percent": 10,
			"conditions": '{"all": [{"field": "first_name", "op": "like", "value": "Bench %"}]}',
			"actions": [{"action_type": "Add Comment", "message": "hello"}],
		}
	).insert()
	if not frappe.db.exists("User", USER):
		frappe.get_doc({"doctype": "User", "email": USER, "first_name": "Bench", "send_welcome_email": 0}).insert()
		frappe.get_doc("User", USER).add_roles("Sales User", "CRM Automation Manager")
	frappe.db.commit()


def clean(frappe):
	frappe.db.sql("delete from `tabLead` where name like %s", PREFIX + "%")
	frappe.db.sql("delete from `tabAutomation Group Member` where rule = %s", RULE)
	if frappe.db.exists("Workflow Rule", RULE):
		frappe.delete_doc("Workflow Rule", RULE, force=True)
	if frappe.db.exists("User", USER):
		frappe.delete_doc("User", USER, force=True)
	frappe.db.commit()


def run_report(frappe, user):
	from crm_automation.crm_automation.report.rule_outcome.rule_outcome import execute

	frappe.set_user(user)
	started = time.perf_counter()
	_columns, rows, message = execute({"rule": RULE, "outcome": "Converted"})
	elapsed = time.perf_counter() - started
	frappe.set_user("Administrator")
	return elapsed, rows, message


def main():
	frappe = connect()
	clean(frappe)
	try:
		started = time.perf_counter()
		make_rule(frappe)
		insert(frappe)
		print(f"setup: {TOTAL:,} leads and group members in {time.perf_counter() - started:.1f} s")
		for user in ("Administrator", USER):
			elapsed, rows, message = run_report(frappe, user)
			counts = ", ".join(f"{row['group']} {row['documents']:,}" for row in rows)
			print(f"Rule Outcome report, {TOTAL:,} leads, as {user}: {elapsed:.2f} s ({counts})")
		print(message)
	finally:
		clean(frappe)
		frappe.destroy()


if __name__ == "__main__":
	sys.exit(main())
