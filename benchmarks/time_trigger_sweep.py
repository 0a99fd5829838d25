"""The time-trigger sweep over N Sales Orders of which 1% are due (default 100,000).

Rows are bulk-inserted straight into the table (an ERPNext insert of 100,000 orders would take an
hour) and deleted again at the end; Frappe's caches are cleared afterwards. Prints the time to find
the due orders (selection through the index) and the time to fire them (a ToDo each, logged), at
two table sizes, to show the cost follows the number due, not the total.
Goal (Workflow Rule issue): the sweep under 5 s here for 100,000 orders with 1,000 due.
"""

import json
import sys
import time

from _site import connect

PREFIX = "BENCH-SO-"


def insert_orders(frappe, total, due_every):
	from frappe.utils import add_days, now_datetime, nowdate

	today = nowdate()
	company = frappe.get_all("Company", pluck="name", limit=1)[0]
	customer = frappe.get_all("Customer", pluck="name", limit=1)
	customer = customer[0] if customer else None
	now = now_datetime()
	fields = ["name", "creation", "modified", "owner", "modified_by", "docstatus", "company", "customer", "transaction_date", "delivery_date", "status", "naming_series"]
	rows = []
	for i in range(total):
		delivery = add_days(today, 3 if i % due_every == 0 else 30 + i % 300)
		rows.append((f"{PREFIX}{i:06d}", now, now, "Administrator", "Administrator", 1, company, customer, today, delivery, "To Deliver and Bill", "SAL-ORD-.YYYY.-"))
	for start in range(0, total, 10000):
		frappe.db.bulk_insert("Sales Order", fields, rows[start : start + 10000])
	frappe.db.commit()


def cleanup(frappe):
	frappe.db.sql(f"delete from `tabToDo` where reference_type='Sales Order' and reference_name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabAutomation Log Action` where parent in (select name from `tabAutomation Log` where reference_name like '{PREFIX}%%')")
	frappe.db.sql(f"delete from `tabAutomation Log` where reference_name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabAutomation Occurrence` where reference_name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabSales Order` where name like '{PREFIX}%%'")
	if frappe.db.exists("Workflow Rule", "_Bench Delivery Reminder"):
		frappe.delete_doc("Workflow Rule", "_Bench Delivery Reminder", force=True)
	frappe.db.commit()
	frappe.clear_cache()


def measure(frappe, total):
	from unittest.mock import patch

	from crm_automation.runtime.runner import reset_request_state
	from crm_automation.runtime.workflow_rules import clear_rule_cache, get_compiled_rule
	from crm_automation.scheduler import find_due_documents, fire_due_documents, run_time_trigger

	insert_orders(frappe, total, due_every=100)
	clear_rule_cache()
	reset_request_state()
	rule = get_compiled_rule("_Bench Delivery Reminder")
	started = time.perf_counter()
	due = find_due_documents(rule)
	selection = time.perf_counter() - started

	# The scheduler's sweep: find due orders and fan them out as chunk jobs. The jobs are captured
	# here instead of queued, then run one after the other as a single worker would.
	jobs = []
	with patch.object(frappe, "enqueue", side_effect=lambda method, **kw: jobs.append(kw)):
		started = time.perf_counter()
		dispatched = run_time_trigger("_Bench Delivery Reminder")
		sweep = time.perf_counter() - started
	started = time.perf_counter()
	fired = sum(fire_due_documents(job["rule_name"], job["due"]) for job in jobs) if jobs else dispatched
	firing = time.perf_counter() - started
	started = time.perf_counter()
	again = find_due_documents(rule)
	second = time.perf_counter() - started
	if not jobs:
		print(f"{total:>7,} orders, {len(due):>5,} due: find due {selection:.3f} s | one chunk, fired inline by the sweep: {dispatched:,} ToDos in {sweep:.2f} s | next sweep finds {len(again)}")
		return
	print(
		f"{total:>7,} orders, {len(due):>5,} due: find due {selection:.3f} s | sweep (find + dispatch "
		f"{len(jobs)} chunk jobs) {sweep:.3f} s | firing {fired:,} ToDos on one worker {firing:.1f} s "
		f"({firing / max(fired, 1) * 1000:.1f} ms each; W workers divide it) | next sweep finds {len(again)} in {second:.3f} s"
	)
	frappe.db.sql(f"delete from `tabSales Order` where name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabToDo` where reference_type='Sales Order' and reference_name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabAutomation Occurrence` where reference_name like '{PREFIX}%%'")
	frappe.db.commit()


def main():
	frappe = connect()
	total = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
	try:
		cleanup(frappe)
		frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": "_Bench Delivery Reminder",
				"document_type": "Sales Order",
				"trigger": "Time",
				"time_field": "delivery_date",
				"time_offset": 3,
				"time_unit": "Days",
				"time_direction": "Before",
				"enabled": 1,
				"conditions": json.dumps({"all": [{"field": "docstatus", "op": "=", "value": 1}]}),
				"actions": [{"action_type": "Create ToDo", "message": "Prepare delivery of {{ doc.name }}", "to_owner": 1}],
			}
		).insert()
		frappe.db.commit()
		for size in (total // 10, total):
			# What the smaller size made goes first: both sizes are numbered from zero.
			frappe.db.sql(f"delete from `tabAutomation Occurrence` where reference_name like '{PREFIX}%%'")
			frappe.db.sql(f"delete from `tabSales Order` where name like '{PREFIX}%%'")
			frappe.db.commit()
			measure(frappe, size)
	finally:
		cleanup(frappe)
		frappe.destroy()


if __name__ == "__main__":
	main()
