"""The escalation sweep over N open Issues of which 1% are due (default 100,000).

Issues and their Escalation State rows are bulk-inserted straight into the tables (saving 100,000
Issues through ERPNext would take an hour) and deleted at the end. Prints the time to find what is
due (the indexed next_escalation_on) and to fire it (an Add Comment level, logged), at two sizes.
Goal (Escalation Policy issue): under 5 s here, growing with the number due, not with the total.
"""

import datetime
import json
import sys
import time

from _site import connect

PREFIX = "BENCH-ISS-"


def insert(frappe, total, now):
	fields = ["name", "creation", "modified", "owner", "modified_by", "docstatus", "subject", "status", "naming_series"]
	rows = [(f"{PREFIX}{i:06d}", now, now, "Administrator", "Administrator", 0, f"Bench issue {i}", "Open", "ISS-.YYYY.-") for i in range(total)]
	states = []
	for i in range(total):
		due = now - datetime.timedelta(minutes=1) if i % 100 == 0 else now + datetime.timedelta(hours=1 + i % 48)
		states.append((frappe.generate_hash(length=12), now, now, "Administrator", "Administrator", "_Bench Issue Policy", "Issue", f"{PREFIX}{i:06d}", "Active", now - datetime.timedelta(hours=2), 0, due, "Level 1"))
	for start in range(0, total, 10000):
		frappe.db.bulk_insert("Issue", fields, rows[start : start + 10000])
		frappe.db.bulk_insert(
			"Escalation State",
			["name", "creation", "modified", "owner", "modified_by", "policy", "reference_doctype", "reference_name", "status", "clock_started_on", "current_level", "next_escalation_on", "next_escalation"],
			states[start : start + 10000],
		)
	frappe.db.commit()


def cleanup(frappe):
	frappe.db.sql(f"delete from `tabComment` where reference_doctype='Issue' and reference_name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabAutomation Log Action` where parent in (select name from `tabAutomation Log` where reference_name like '{PREFIX}%%')")
	frappe.db.sql(f"delete from `tabAutomation Log` where reference_name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabAutomation Occurrence` where reference_name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabEscalation State` where reference_name like '{PREFIX}%%'")
	frappe.db.sql(f"delete from `tabIssue` where name like '{PREFIX}%%'")
	if frappe.db.exists("Escalation Policy", "_Bench Issue Policy"):
		frappe.delete_doc("Escalation Policy", "_Bench Issue Policy", force=True)
	frappe.db.commit()
	frappe.clear_cache()


def main():
	frappe = connect()
	total = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
	from frappe.utils import now_datetime

	from crm_automation.escalation import clear_policy_cache, sweep

	try:
		cleanup(frappe)
		frappe.get_doc(
			{
				"doctype": "Escalation Policy",
				"policy_name": "_Bench Issue Policy",
				"document_type": "Issue",
				"enabled": 1,
				"clock_start": "Creation",
				"stop_conditions": json.dumps({"any": [{"field": "status", "op": "in", "value": ["Replied", "Resolved", "Closed"]}]}),
				"levels": [
					{"level": 1, "after": 1, "unit": "Hours", "action_type": "Add Comment", "message": "No response for an hour"},
					{"level": 2, "after": 100, "unit": "Hours", "action_type": "Add Comment", "message": "Still no response"},
				],
			}
		).insert()
		frappe.db.commit()
		clear_policy_cache()
		for size in (total // 10, total):
			frappe.db.sql(f"delete from `tabEscalation State` where reference_name like '{PREFIX}%%'")
			frappe.db.sql(f"delete from `tabIssue` where name like '{PREFIX}%%'")
			frappe.db.commit()
			now = now_datetime()
			insert(frappe, size, now)
			started = time.perf_counter()
			due = frappe.get_all("Escalation State", filters={"status": "Active", "next_escalation_on": ("<=", now)}, pluck="name")
			find = time.perf_counter() - started
			from unittest.mock import patch

			from crm_automation.escalation import fire_due_escalations

			jobs = []
			with patch.object(frappe, "enqueue", side_effect=lambda method, **kw: jobs.append(kw)):
				started = time.perf_counter()
				swept = sweep(now)
				sweep_time = time.perf_counter() - started
			started = time.perf_counter()
			fired = sum(fire_due_escalations(job["names"], job["now"]) for job in jobs) if jobs else swept
			firing = time.perf_counter() - started if jobs else sweep_time
			started = time.perf_counter()
			again = sweep(now)
			second = time.perf_counter() - started
			print(
				f"{size:>7,} open issues, {len(due):>5,} due: find due {find:.3f} s | sweep (find + "
				+ (f"dispatch {len(jobs)} chunk jobs) {sweep_time:.3f} s" if jobs else "fire inline)")
				+ f" | firing {fired:,} levels on one worker {firing:.1f} s ({firing / max(fired, 1) * 1000:.1f} ms each)"
				f" | a second sweep fires {again} in {second:.3f} s"
			)
	finally:
		cleanup(frappe)
		frappe.destroy()


if __name__ == "__main__":
	main()
