"""Assign (round robin) + notify + set a field on Lead inserts: the cost crm_automation adds vs the
cost Frappe's Assignment Rule + Notification add for the same work, each over inserts with no
automation, in alternating blocks of one run.

    ../env/bin/python automation_added_cost.py <site> [inserts per arm]

Goal (scale issue): our added cost at most 0.6x Frappe's. The rules are those of
assign_notify_vs_frappe.py; Leads carry no email address. Everything is rolled back.

Ratios come two ways, for wall and CPU time: the median over blocks of (ours - none) / (Frappe - none),
block i of each arm taken together (a burst of another process on a shared machine moves a few
blocks, not the median), and the ratio of the totals. Both arms leave their alerts to a background
job (Frappe's Notification and assignment alerts, our System Notification action once committed), so
neither pays the Notification Log inserts inside the save.
"""

import statistics
import sys
import time

from _site import connect


def use(frappe, arm):
	from crm_automation.runtime.workflow_rules import clear_rule_cache, get_rules

	frappe.db.set_value("Workflow Rule", "_Bench Assign Notify Set", "enabled", int(arm == "ours"))
	frappe.db.set_value("Assignment Rule", "_Bench Frappe Assign", "disabled", int(arm != "frappe"))
	frappe.db.set_value("Notification", "_Bench Frappe Notify", "enabled", int(arm == "frappe"))
	clear_rule_cache()
	frappe.cache.delete_value("assignment_rule_map")
	frappe.cache.delete_value("notifications")
	frappe.clear_cache(doctype="Lead")
	get_rules("Lead", "after_insert")


def measure(frappe, per_arm):
	import assign_notify_vs_frappe as setup

	setup.make_users(frappe)
	if not frappe.db.exists("Lead Source", "Campaign"):
		frappe.get_doc({"doctype": "Lead Source", "source_name": "Campaign"}).insert()
	setup.make_ours(frappe)
	setup.make_frappes(frappe)
	arms = ("ours", "frappe", "none")
	wall = {arm: [] for arm in arms}
	cpu = {arm: [] for arm in arms}
	blocks = max(1, per_arm // setup.BLOCK)
	for block in range(blocks + 1):
		order = arms if block % 2 == 0 else tuple(reversed(arms))
		for arm in order:
			use(frappe, arm)
			wall_start, cpu_start = time.perf_counter(), time.process_time()
			setup.insert_leads(frappe, f"{arm}-{block}")
			if block:  # the first round warms every arm up
				wall[arm].append(time.perf_counter() - wall_start)
				cpu[arm].append(time.process_time() - cpu_start)
	inserts = blocks * setup.BLOCK
	done = {arm: setup.check_work_done(frappe, f"{arm}-{blocks}") for arm in ("ours", "frappe")}

	def added(samples, arm):
		return (sum(samples[arm]) - sum(samples["none"])) / inserts * 1000

	def median_ratio(samples):
		return statistics.median(
			(ours - none) / (theirs - none)
			for ours, theirs, none in zip(samples["ours"], samples["frappe"], samples["none"], strict=True)
			if theirs > none
		)

	return {
		"inserts per arm": inserts,
		"work done in the last block (leads, assigned, status set)": done,
		"ms per insert (none)": sum(wall["none"]) / inserts * 1000,
		"added ms per insert (ours)": added(wall, "ours"),
		"added ms per insert (Frappe)": added(wall, "frappe"),
		"wall median": median_ratio(wall),
		"cpu median": median_ratio(cpu),
		"wall": added(wall, "ours") / added(wall, "frappe"),
		"cpu": added(cpu, "ours") / added(cpu, "frappe"),
	}


def run(frappe, per_arm=400):
	try:
		return measure(frappe, per_arm)
	finally:
		frappe.db.rollback()
		frappe.cache.delete_value("assignment_rule_map")
		frappe.cache.delete_value("notifications")
		from crm_automation.runtime.workflow_rules import clear_rule_cache

		clear_rule_cache()


def main():
	frappe = connect()
	per_arm = int(sys.argv[2]) if len(sys.argv) > 2 else 400
	try:
		for key, value in run(frappe, per_arm).items():
			print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
		print("goal: our added cost at most 0.6x Frappe's")
	finally:
		frappe.destroy()


if __name__ == "__main__":
	main()
