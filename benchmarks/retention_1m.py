"""Clearing 1,000,000 old Automation Log rows (and an action row each) while saves go on.

Rows are bulk-inserted with SQL (MariaDB's sequence engine), 100 days old, then cleared by
runtime/retention.clear_automation_logs(90) — what Frappe's Log Settings clean-up calls. Meanwhile a
second connection in another thread writes a fresh Automation Log row every 50 ms, as saves with
matched rules do, and the script prints the time to clear and the slowest of those writes: batches
of 2,000 committed one by one must never keep a save waiting long.

	cd ~/frappe-bench/sites && ../env/bin/python /path/to/benchmarks/retention_1m.py <site> [rows]
"""

import statistics
import sys
import threading
import time

from _site import connect

PREFIX = "BENCH-RET-"


def insert_old_logs(frappe, total):
	frappe.db.sql(
		f"""insert into `tabAutomation Log` (name, creation, modified, owner, modified_by, rule_type,
			reference_doctype, reference_name, outcome, `trigger`)
		select concat('{PREFIX}', seq), now() - interval 100 day, now() - interval 100 day, 'Administrator',
			'Administrator', 'Workflow Rule', 'Lead', concat('{PREFIX}LEAD-', seq), 'Success', 'New'
		from seq_1_to_{total}"""
	)
	frappe.db.sql(
		f"""insert into `tabAutomation Log Action` (name, creation, modified, owner, modified_by, parent,
			parenttype, parentfield, idx, action_type, status)
		select concat('{PREFIX}A-', seq), now() - interval 100 day, now() - interval 100 day, 'Administrator',
			'Administrator', concat('{PREFIX}', seq), 'Automation Log', 'actions', 1, 'Add Comment', 'Success'
		from seq_1_to_{total}"""
	)
	frappe.db.commit()


def writer(site, stop, latencies):
	import frappe

	frappe.init(site=site, sites_path=".")
	frappe.connect()
	i = 0
	while not stop.is_set():
		started = time.perf_counter()
		frappe.db.sql(
			"""insert into `tabAutomation Log` (name, creation, modified, owner, modified_by, outcome)
			values (%s, now(), now(), 'Administrator', 'Administrator', 'Success')""",
			(f"{PREFIX}LIVE-{i}",),
		)
		frappe.db.commit()
		latencies.append(time.perf_counter() - started)
		i += 1
		time.sleep(0.05)
	frappe.destroy()


def cleanup(frappe):
	frappe.db.sql(f"delete from `tabAutomation Log Action` where name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabAutomation Log` where name like '{PREFIX}%%'")
	frappe.db.commit()
	frappe.clear_cache()


def main():
	frappe = connect()
	from crm_automation.runtime import retention

	total = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
	cleanup(frappe)
	started = time.perf_counter()
	insert_old_logs(frappe, total)
	print(f"inserted {total:,} old logs + {total:,} action rows in {time.perf_counter() - started:.1f} s")
	stop, latencies = threading.Event(), []
	thread = threading.Thread(target=writer, args=(frappe.local.site, stop, latencies))
	thread.start()
	try:
		started = time.perf_counter()
		deleted = retention.clear_automation_logs(90)
		elapsed = time.perf_counter() - started
	finally:
		stop.set()
		thread.join()
		cleanup(frappe)
	print(f"cleared {deleted:,} logs in {elapsed:.1f} s ({deleted / elapsed:,.0f} rows/s)")
	if latencies:
		print(
			f"concurrent log writes: {len(latencies)}, median {statistics.median(latencies) * 1000:.1f} ms, "
			f"slowest {max(latencies) * 1000:.1f} ms"
		)


if __name__ == "__main__":
	main()
