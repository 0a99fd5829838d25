"""With 1,000 enabled Workflow Rules: the cost of saving one rule, deleting one, and the next
request of a worker that had every rule compiled.

    ../env/bin/python rule_edit_cost.py <site> [rules] [repeats]

Goal (scale issue): a save or a delete at most 200 ms (the static loop check included), the next
request of each worker at most 50 ms. "Another worker" is simulated in this process: its compiled
rules from before the edit are put back, then its index is looked up in a new request after the
edit's commit work ran (what a commit runs: frappe.db.after_commit, which publishes the new version
token; the transaction itself is never committed). Rules are written straight into the tables
(idle_rules.py); all rolled back.
"""

import json
import statistics
import sys
import time

from _site import connect
from idle_rules import insert_rules


def _worker_state():
	from crm_automation.runtime import workflow_rules as rules

	site = rules.frappe.local.site
	return rules._compiled_by_site.get(site), rules._rules_cache._by_site.get(site)


def _restore_worker(state):
	from crm_automation.runtime import workflow_rules as rules

	site = rules.frappe.local.site
	compiled, index = state
	rules._compiled_by_site[site] = compiled
	rules._rules_cache._by_site[site] = index


def _next_request(frappe, state):
	"""The next lookup of a worker whose compiled rules predate the edit."""
	from crm_automation.runtime.workflow_rules import get_rules

	_restore_worker(state)
	frappe.local.cache = {}  # a new request reads the version tokens again
	started = time.perf_counter()
	get_rules("Lead", "on_update")
	return time.perf_counter() - started


def measure(frappe, count, repeats):
	from crm_automation.runtime.workflow_rules import clear_rule_cache, get_rules

	insert_rules(frappe, count)
	clear_rule_cache()
	get_rules("Lead", "on_update")
	saves, deletes, after_save, after_delete = [], [], [], []
	for n in range(repeats):
		state = (dict_copy(_worker_state()[0]), _worker_state()[1])
		rule = frappe.get_doc("Workflow Rule", f"_Bench Idle {n * 7:05d}")
		rule.conditions = json.dumps({"all": [{"field": "territory", "op": "=", "value": f"Moved {n}"}]})
		started = time.perf_counter()
		rule.save()
		frappe.db.after_commit.run()
		saves.append(time.perf_counter() - started)
		after_save.append(_next_request(frappe, state))

		state = (dict_copy(_worker_state()[0]), _worker_state()[1])
		started = time.perf_counter()
		frappe.delete_doc("Workflow Rule", f"_Bench Idle {n * 7 + 1:05d}")
		frappe.db.after_commit.run()
		deletes.append(time.perf_counter() - started)
		after_delete.append(_next_request(frappe, state))
	ms = lambda samples: statistics.median(samples) * 1000  # noqa: E731
	return {
		"rules": count,
		"save one rule ms": ms(saves),
		"delete one rule ms": ms(deletes),
		"next request after a save ms": ms(after_save),
		"next request after a delete ms": ms(after_delete),
	}


def dict_copy(state):
	if state is None:
		return None
	generation, compiled = state
	return generation, dict(compiled)


def run(frappe, count=1000, repeats=5):
	try:
		return measure(frappe, count, repeats)
	finally:
		frappe.db.rollback()
		from crm_automation.runtime.workflow_rules import clear_rule_cache

		clear_rule_cache()


def main():
	frappe = connect()
	count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
	repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
	try:
		for key, value in run(frappe, count, repeats).items():
			print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
		print("goal: save and delete at most 200 ms, next request at most 50 ms (medians)")
	finally:
		frappe.destroy()


if __name__ == "__main__":
	main()
