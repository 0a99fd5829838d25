"""A Schedule rule over N Leads (default 100,000), of which 1 in 50 match its conditions.

Rows are bulk-inserted straight into the table and deleted again at the end; Frappe's caches are
cleared afterwards. One scheduler run claims the moment; the rule's job then selects the matching
Leads page by page (as its run-as user reads them) and hands them to chunk jobs, which are captured
and run here one after the other, each a ToDo per Lead, logged. Printed: the time to select, the
time to fire and the rate, and memory: Python's peak while selecting (tracemalloc) and the process's
resident size sampled after every chunk, at two table sizes, to show memory stays flat.

	cd ~/frappe-bench/sites && ../env/bin/python /path/to/benchmarks/schedule_100k.py SITE [N]
"""

import datetime
import json
import sys
import time
import tracemalloc

from _site import connect

PREFIX = "BENCH-SCH-"
RULE = "_Bench Schedule"
MATCH_EVERY = 50


def rss_mb():
	with open("/proc/self/statm") as statm:
		pages = int(statm.read().split()[1])
	return pages * 4096 / 2**20


def insert_leads(frappe, total):
	now = datetime.datetime.now()
	fields = ["name", "creation", "modified", "owner", "modified_by", "docstatus", "first_name", "lead_name", "status", "naming_series", "company_name"]
	rows = [
		(f"{PREFIX}{i:06d}", now, now, "Administrator", "Administrator", 0, "BenchSch", f"BenchSch {i}", "Open" if i % MATCH_EVERY == 0 else "Lead", "CRM-LEAD-.YYYY.-", "Bench Co")
		for i in range(total)
	]
	for start in range(0, total, 10000):
		frappe.db.bulk_insert("Lead", fields, rows[start : start + 10000])
	frappe.db.commit()


def cleanup(frappe):
	frappe.db.sql(f"delete from `tabToDo` where reference_type='Lead' and reference_name like '{PREFIX}%%'")
	frappe.db.sql(
		f"delete from `tabAutomation Log Action` where parent in (select name from `tabAutomation Log` where reference_name like '{PREFIX}%%')"
	)
	frappe.db.sql(f"delete from `tabAutomation Log` where reference_name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabAutomation Occurrence` where reference_name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabLead` where name like '{PREFIX}%%'")
	if frappe.db.exists("Workflow Rule", RULE):
		frappe.delete_doc("Workflow Rule", RULE, force=True)
	frappe.db.commit()
	frappe.clear_cache()


def make_rule(frappe, saved_at):
	from unittest.mock import patch

	from crm_automation.runtime.workflow_rules import clear_rule_cache

	if frappe.db.exists("Workflow Rule", RULE):
		frappe.delete_doc("Workflow Rule", RULE, force=True)
	conditions = {"all": [{"field": "first_name", "op": "=", "value": "BenchSch"}, {"field": "status", "op": "=", "value": "Open"}]}
	with patch("crm_automation.crm_automation.doctype.workflow_rule.workflow_rule.now_datetime", return_value=saved_at):
		frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": RULE,
				"document_type": "Lead",
				"trigger": "Schedule",
				"enabled": 1,
				"schedule_frequency": "Daily",
				"schedule_time": "09:00:00",
				"conditions": json.dumps(conditions),
				"actions": [{"action_type": "Create ToDo", "message": "Weekly call: {{ doc.lead_name }}", "to_owner": 1}],
			}
		).insert()
	frappe.db.commit()
	clear_rule_cache()


def measure(frappe, total):
	from unittest.mock import patch

	from crm_automation import scheduler
	from crm_automation.runtime import schedule_runs
	from crm_automation.runtime.runner import reset_request_state

	insert_leads(frappe, total)
	moment = datetime.datetime(2027, 3, 1, 9, 0)
	make_rule(frappe, moment - datetime.timedelta(hours=1))
	jobs = []
	with patch("frappe.enqueue", side_effect=lambda method, **kw: jobs.append((method, kw))):
		scheduler.run_schedules_for_all_rules(now=moment + datetime.timedelta(seconds=20))
		[(_method, job)] = [(m, kw) for m, kw in jobs if m.endswith("run_scheduled_rule")]
		jobs.clear()
		reset_request_state()
		tracemalloc.start()
		started = time.perf_counter()
		handed = schedule_runs.run_scheduled_rule(job["rule_name"], job["moment"])
		selected_in = time.perf_counter() - started
		_current, select_peak = tracemalloc.get_traced_memory()
		tracemalloc.stop()
	rss = [rss_mb()]
	started = time.perf_counter()
	fired = 0
	for _method, kw in jobs:
		reset_request_state()
		fired += schedule_runs.fire_scheduled_documents(kw["rule_name"], kw["moment"], kw["names"])
		rss.append(rss_mb())
	fired_in = time.perf_counter() - started
	todos = frappe.db.count("ToDo", {"reference_type": "Lead", "reference_name": ("like", f"{PREFIX}%")})
	print(
		f"{total:>7,} leads, {handed:,} matching in {len(jobs)} chunks: select {selected_in:.2f} s "
		f"(tracemalloc peak {select_peak / 2**20:.1f} MB); fire {fired:,} in {fired_in:.1f} s "
		f"({fired / fired_in:.0f}/s); ToDos {todos:,}; RSS first/last/max chunk {rss[0]:.0f}/{rss[-1]:.0f}/{max(rss):.0f} MB"
	)
	cleanup(frappe)


def main():
	frappe = connect()
	total = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
	frappe.db.set_single_value("CRM Automation Settings", "enabled", 1)
	frappe.db.commit()
	try:
		for size in sorted({total // 10, total}):
			measure(frappe, size)
	finally:
		cleanup(frappe)
		frappe.destroy()


if __name__ == "__main__":
	main()
