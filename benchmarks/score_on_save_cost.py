"""Lead inserts with a Lead Score Rule of 12 criteria (10 on fields, 2 on activities) vs none, in
alternating blocks.

    ../env/bin/python score_on_save_cost.py <site> [inserts per arm]

Goal (scale issue): at most +5%. Method: the rule is inserted (not committed) and compiled once;
the two arms swap this process's compiled score index (the rule vs none) between blocks. Leads
carry no email address. Everything is rolled back.
"""

import sys
import time

from _pairs import paired_median
from _site import connect

BLOCK = 10


def make_rule(frappe):
	from score_recompute import insert_without_recompute, score_rule

	from crm_automation.scoring import clear_score_cache

	frappe.db.sql("update `tabLead Score Rule` set enabled = 0 where document_type = 'Lead'")
	insert_without_recompute(score_rule(frappe, "_Bench Save Score Rule"))
	clear_score_cache()


def insert_leads(frappe, tag):
	for i in range(BLOCK):
		frappe.get_doc(
			{"doctype": "Lead", "first_name": f"Score {tag} {i}", "company_name": "Bench Co", "city": "Pune"}
		).insert()


def measure(frappe, per_arm):
	from crm_automation.runtime.compiled_cache import forget_memos
	from crm_automation.scoring import _score_cache

	make_rule(frappe)
	site = frappe.local.site
	scored = _score_cache.get()
	version = _score_cache._by_site[site][0]
	arms = {"rule": (version, scored), "none": (version, {})}
	wall = {"rule": 0.0, "none": 0.0}
	cpu = {"rule": 0.0, "none": 0.0}
	wall_blocks, cpu_blocks = {"rule": [], "none": []}, {"rule": [], "none": []}
	blocks = max(1, per_arm // BLOCK)
	for block in range(blocks + 1):
		for arm in ("rule", "none") if block % 2 == 0 else ("none", "rule"):
			_score_cache._by_site[site] = arms[arm]
			forget_memos()
			wall_start, cpu_start = time.perf_counter(), time.process_time()
			insert_leads(frappe, f"{arm}-{block}")
			if block:
				wall[arm] += time.perf_counter() - wall_start
				cpu[arm] += time.process_time() - cpu_start
				wall_blocks[arm].append(time.perf_counter() - wall_start)
				cpu_blocks[arm].append(time.process_time() - cpu_start)
	inserts = blocks * BLOCK
	return {
		"inserts per arm": inserts,
		"ms per insert (rule)": wall["rule"] / inserts * 1000,
		"ms per insert (none)": wall["none"] / inserts * 1000,
		"wall": wall["rule"] / wall["none"],
		"cpu": cpu["rule"] / cpu["none"],
		"wall median": paired_median(wall_blocks["rule"], wall_blocks["none"]),
		"cpu median": paired_median(cpu_blocks["rule"], cpu_blocks["none"]),
	}


def run(frappe, per_arm=200):
	try:
		return measure(frappe, per_arm)
	finally:
		frappe.db.rollback()
		from crm_automation.scoring import clear_score_cache

		clear_score_cache()


def main():
	frappe = connect()
	per_arm = int(sys.argv[2]) if len(sys.argv) > 2 else 200
	try:
		for key, value in run(frappe, per_arm).items():
			print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
		print("goal: at most 1.05x")
	finally:
		frappe.destroy()


if __name__ == "__main__":
	main()
