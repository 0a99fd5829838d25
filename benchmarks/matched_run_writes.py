"""What a matched run writes for itself: the INSERT / UPDATE / DELETE statements of a Lead insert
that an assign (round robin) + notify + set rule acts on, against the same insert with no rule and
with Frappe's Assignment Rule + Notification doing that work (the rules of assign_notify_vs_frappe.py).

    ../env/bin/python matched_run_writes.py <site> [inserts per arm]

Each statement is put in one of three heaps: the work itself (the ToDo, the share, the alert, the
Lead's own row and its Version), the run's bookkeeping (the app's log and claim rows), and what
Frappe writes for any insert. Goal (live-stack issue): one write of its own per run, or less.
Everything is rolled back.
"""

import re
import sys
from collections import Counter, defaultdict

from _site import connect

WRITE = re.compile(r"^\s*(insert|update|delete|replace)\b[^`]*`(tab[^`]+)`", re.I)
BOOKKEEPING = ("tabAutomation Log", "tabAutomation Log Action", "tabAutomation Occurrence", "tabCRM Activity")


def counting(frappe):
	seen = []
	original = frappe.db.sql

	def sql(query, *args, **kwargs):
		match = WRITE.match(str(query))
		if match:
			seen.append((match.group(1).lower(), match.group(2)))
		return original(query, *args, **kwargs)

	frappe.db.sql = sql
	return seen, original


def main():
	import assign_notify_vs_frappe as setup
	from automation_added_cost import use

	frappe = connect()
	per_arm = int(sys.argv[2]) if len(sys.argv) > 2 else 20
	try:
		setup.make_users(frappe)
		if not frappe.db.exists("Lead Source", "Campaign"):
			frappe.get_doc({"doctype": "Lead Source", "source_name": "Campaign"}).insert()
		setup.make_ours(frappe)
		setup.make_frappes(frappe)
		seen, original = counting(frappe)
		writes = defaultdict(Counter)
		try:
			for arm in ("none", "ours", "frappe"):
				use(frappe, arm)
				for i in range(per_arm + 1):
					frappe.local.request_cache = defaultdict(dict)
					del seen[:]
					frappe.get_doc(
						{
							"doctype": "Lead",
							"first_name": f"Writes {arm} {i}",
							"source": "Campaign",
							"status": "Lead",
						}
					).insert()
					if i:  # the first warms the arm up
						writes[arm].update(seen)
		finally:
			frappe.db.sql = original
		for arm in ("none", "ours", "frappe"):
			total = sum(writes[arm].values()) / per_arm
			own = sum(n for (verb, table), n in writes[arm].items() if table in BOOKKEEPING) / per_arm
			print(f"{arm}: {total:.1f} writes per Lead insert, of which the run's own bookkeeping {own:.1f}")
			for (verb, table), n in sorted(writes[arm].items(), key=lambda item: -item[1]):
				extra = n - writes["none"].get((verb, table), 0)
				if extra > 0:
					print(f"    +{extra / per_arm:.1f}  {verb} {table}")
		print("goal: the run's own bookkeeping at most 1 write")
	finally:
		frappe.db.rollback()
		frappe.cache.delete_value("assignment_rule_map")
		frappe.cache.delete_value("notifications")
		frappe.destroy()


if __name__ == "__main__":
	main()
