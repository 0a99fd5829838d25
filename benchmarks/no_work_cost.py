"""What the app costs a save it has nothing to do for: ToDo and Lead inserts with the app's "*"
doc_events handlers vs without them, in alternating blocks.

    ../env/bin/python no_work_cost.py <site> [inserts per arm]

Goal (scale issue): at most 1.02x. Method: this site stays as it is (apps.txt is shared by the
bench); the "without" arm removes crm_automation's handlers from this process's resolved
doc_events hooks (frappe.local.doc_events_hooks), so Frappe calls nothing of the app. No enabled
Workflow Rule, Lead Score Rule or Escalation Policy is in play (the compiled indexes are swapped for
empty ones). With "each insert a new request", each insert starts with an empty frappe.local.cache
and frappe.local.request_cache, as a new request does (Frappe releases frappe.local after each
one): what Frappe and the handlers read per request comes from redis again, as in production. What this cannot see: the
app's custom fields on Lead (columns written on every insert) and its other hooks outside saves.
Leads carry no email address. Everything is rolled back.
"""

import sys
import time
from collections import defaultdict

from _pairs import paired_median
from _site import connect

BLOCK = 10


def hooks_without_app(frappe):
	hooks = frappe.get_doc_hooks()
	stripped = {}
	for doctype, events in hooks.items():
		stripped[doctype] = {
			event: [h for h in handlers if not h.startswith("crm_automation.")]
			for event, handlers in events.items()
		}
	return hooks, stripped


def empty_indexes(frappe):
	"""Nothing enabled anywhere: each compiled cache of this process answers as if it were empty."""
	from crm_automation import escalation, scoring
	from crm_automation.runtime import workflow_rules as rules

	site = frappe.local.site
	saved = []
	for cache, empty in (
		(rules._rules_cache, {}),
		(scoring._score_cache, {}),
		(escalation._policy_cache, {"by_doctype": {}}),
	):
		cache.get()
		version, index = cache._by_site[site]
		saved.append((cache, (version, index)))
		if isinstance(index, dict) and "by_doctype" in index:
			empty = {**index, "by_doctype": {}}
		cache._by_site[site] = (version, empty)
	from crm_automation.runtime.compiled_cache import forget_memos

	forget_memos()  # what the handlers worked out from the indexes before the swap
	return saved


def make(frappe, doctype, tag, i):
	if doctype == "ToDo":
		return frappe.get_doc({"doctype": "ToDo", "description": f"no work {tag} {i}"})
	return frappe.get_doc({"doctype": "Lead", "first_name": f"No Work {tag} {i}", "company_name": "Bench Co"})


def measure(frappe, doctype, per_arm, new_request=True):
	with_app, without_app = hooks_without_app(frappe)
	wall = {"app": 0.0, "none": 0.0}
	cpu = {"app": 0.0, "none": 0.0}
	wall_blocks, cpu_blocks = {"app": [], "none": []}, {"app": [], "none": []}
	blocks = max(1, per_arm // BLOCK)
	for block in range(blocks + 1):
		order = ("app", "none") if block % 2 == 0 else ("none", "app")
		for arm in order:
			hooks = with_app if arm == "app" else without_app
			wall_start, cpu_start = time.perf_counter(), time.process_time()
			for i in range(BLOCK):
				if new_request:
					frappe.local.cache = {}
					frappe.local.request_cache = defaultdict(dict)
				frappe.local.doc_events_hooks = hooks
				make(frappe, doctype, f"{arm}-{block}", i).insert()
			if block:  # the first round warms both arms up
				wall[arm] += time.perf_counter() - wall_start
				cpu[arm] += time.process_time() - cpu_start
				wall_blocks[arm].append(time.perf_counter() - wall_start)
				cpu_blocks[arm].append(time.process_time() - cpu_start)
	frappe.local.doc_events_hooks = with_app
	inserts = blocks * BLOCK
	return {
		"doctype": doctype,
		"each insert a new request": new_request,
		"inserts per arm": inserts,
		"ms per insert (app)": wall["app"] / inserts * 1000,
		"ms per insert (none)": wall["none"] / inserts * 1000,
		"wall": wall["app"] / wall["none"],
		"cpu": cpu["app"] / cpu["none"],
		"wall median": paired_median(wall_blocks["app"], wall_blocks["none"]),
		"cpu median": paired_median(cpu_blocks["app"], cpu_blocks["none"]),
	}


def run(frappe, per_arm=300):
	saved = []
	try:
		saved = empty_indexes(frappe)
		return [
			measure(frappe, doctype, per_arm, new_request)
			for new_request in (True, False)
			for doctype in ("ToDo", "Lead")
		]
	finally:
		for cache, state in saved:
			cache._by_site[frappe.local.site] = state
		from crm_automation.runtime.compiled_cache import forget_memos

		forget_memos()
		frappe.db.rollback()


def main():
	frappe = connect()
	per_arm = int(sys.argv[2]) if len(sys.argv) > 2 else 300
	try:
		for result in run(frappe, per_arm):
			print(
				", ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in result.items())
			)
		print("goal: at most 1.02x wall and CPU")
	finally:
		frappe.destroy()


if __name__ == "__main__":
	main()
