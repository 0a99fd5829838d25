"""Lead inserts with N enabled, non-matching Workflow Rules vs none, in alternating blocks.

    ../env/bin/python idle_rules.py <site> [N] [inserts per arm]

Goal (scale issue): N = 1,000 at most 1.05x, N = 10,000 at most 1.20x, wall and CPU time. The rules
are realistic: equality and IN on Select and Link fields, ranges on numbers and dates, text
contains, OR groups and branches, over the New, Save, Validate and Value Change triggers; about one
in twenty has no equality at all (only ranges: the index finds it by binary search on its bound).

Method: the rules are written straight into the tables (one bulk insert per table, never
committed) and compiled once; the two arms then swap this process's compiled index (the rules vs
an empty one) between blocks, so both arms run against the same database. Leads carry no email
address (no gravatar lookup). Everything is rolled back at the end.
"""

import json
import sys
import time

from _pairs import paired_median
from _site import connect

BLOCK = 10


def rule_rows(frappe, count):
	"""(parents, actions, branches) rows for ``count`` rules none of which matches a new Lead of
	status Lead without territory, source or industry."""
	from frappe.utils import now_datetime

	now = now_datetime()
	triggers = ["New", "Save", "Validate", "Value Change"]
	parents, actions, branches = [], [], []
	for i in range(count):
		name = f"_Bench Idle {i:05d}"
		trigger = triggers[(i // 20 + i) % 4]
		shape = i % 20
		conditions, rule_branches = _conditions(i, shape)
		parent = {
			"name": name,
			"rule_name": name,
			"document_type": "Lead",
			"trigger": trigger,
			"enabled": 1,
			"priority": i % 7,
			"fire_mode": "Every Time",
			"conditions": json.dumps(conditions),
		}
		if trigger == "Value Change":
			parent["trigger_field"] = "status" if i % 8 == 3 else "territory"
			parent["to_value"] = "Converted" if parent["trigger_field"] == "status" else ""
		parents.append(parent)
		action = (
			{"action_type": "Set Value", "target_field": "company_name", "value": "x"}
			if trigger == "Validate"
			else {"action_type": "Add Tag", "tag": "never"}
		)
		if rule_branches:
			for j, (branch_name, branch_conditions) in enumerate(rule_branches):
				branches.append(
					{
						"parent": name,
						"idx": j + 1,
						"branch_name": branch_name,
						"conditions": json.dumps(branch_conditions),
					}
				)
				actions.append({"parent": name, "idx": j + 1, **action, "branch": branch_name})
		else:
			actions.append({"parent": name, "idx": 1, **action})
	for rows in (parents, actions, branches):
		for row in rows:
			row.update(creation=now, modified=now, owner="Administrator", modified_by="Administrator")
	return parents, actions, branches


def _conditions(i, shape):
	def leaf(field, op, value=None):
		return {"field": field, "op": op, **({} if value is None else {"value": value})}

	revenue = leaf("annual_revenue", ">", 10**6 + i)
	if shape < 6:  # a territory, and a range on revenue
		return {"all": [leaf("territory", "=", f"Nowhere {i}"), revenue]}, None
	if shape < 9:  # a status among a few, a date range
		return {
			"all": [
				leaf("status", "in", ["Replied", "Interested"]),
				leaf("qualified_on", "between", ["2020-01-01", "2020-12-31"]),
			]
		}, None
	if shape < 11:  # a source and text that contains something
		return {"all": [leaf("source", "=", f"Nowhere {i}"), leaf("company_name", "like", f"%zz{i}%")]}, None
	if shape < 14:  # an OR group on one field, and another leaf
		group = {"any": [leaf("industry", "=", f"Nowhere {i}"), leaf("industry", "=", f"Elsewhere {i}")]}
		return {"all": [group, leaf("city", "like", f"%{i}%")]}, None
	if shape < 17:  # branches: each on the market segment
		return {"all": [revenue]}, [
			(f"small {i}", leaf("market_segment", "=", f"Small {i}")),
			(f"large {i}", leaf("market_segment", "in", [f"Large {i}", f"Huge {i}"])),
		]
	if shape < 19:  # a qualification status and an OR across fields
		either = {"any": [leaf("city", "like", "%Atlantis%"), leaf("annual_revenue", "<", -1)]}
		return {"all": [leaf("qualification_status", "=", "Qualified"), either]}, None
	# no equality anywhere: ranges only, evaluated on every save
	return {"all": [revenue, leaf("creation", "<", "2000-01-01 00:00:00")]}, None


def insert_rules(frappe, count):
	parents, actions, branches = rule_rows(frappe, count)
	for doctype, rows, parentfield in (
		("Workflow Rule", parents, None),
		("Workflow Rule Action", actions, "actions"),
		("Workflow Rule Branch", branches, "branches"),
	):
		if not rows:
			continue
		if parentfield:
			for n, row in enumerate(rows):
				row.update(
					name=f"bench-{parentfield}-{n}", parenttype="Workflow Rule", parentfield=parentfield
				)
		fields = sorted({key for row in rows for key in row})
		frappe.db.bulk_insert(
			doctype, fields, [[row.get(f) for f in fields] for row in rows], chunk_size=2000
		)


def time_handlers():
	"""Accumulate the time spent inside crm_automation's rule handler (events._run)."""
	import crm_automation.doc_events as events

	spent = {"seconds": 0.0}
	original = getattr(events._run, "untimed", events._run)

	def timed_run(doc, event):
		started = time.perf_counter()
		try:
			return original(doc, event)
		finally:
			spent["seconds"] += time.perf_counter() - started

	timed_run.untimed = original
	events._run = timed_run
	return spent


def insert_leads(frappe, tag):
	for i in range(BLOCK):
		frappe.get_doc(
			{"doctype": "Lead", "first_name": f"Idle {tag} {i}", "company_name": "Bench Co"}
		).insert()


def measure(frappe, count, per_arm):
	"""{"wall": ratio, "cpu": ratio, ...} for ``count`` rules vs none."""
	from crm_automation.runtime.workflow_rules import _rules_cache, clear_rule_cache
	from crm_automation.runtime.workflow_rules import get_index as _get_index

	insert_rules(frappe, count)
	clear_rule_cache()
	started = time.perf_counter()
	with_rules = _get_index()
	build_seconds = time.perf_counter() - started
	site = frappe.local.site
	version = _rules_cache._by_site[site][0]
	arms = {"rules": (version, with_rules), "none": (version, {})}
	enabled = sum(1 for key, value in with_rules.items() if isinstance(key, tuple) for _ in value)
	always = sum(value.index.always_count for key, value in with_rules.items() if isinstance(key, tuple))
	wall = {"rules": 0.0, "none": 0.0}
	cpu = {"rules": 0.0, "none": 0.0}
	wall_blocks, cpu_blocks = {"rules": [], "none": []}, {"rules": [], "none": []}
	handlers = {"rules": 0.0, "none": 0.0}
	spent = time_handlers()
	_rules_cache._by_site[site] = arms["rules"]
	insert_leads(frappe, "warm-up")
	for block in range(max(1, per_arm // BLOCK)):
		order = ("rules", "none") if block % 2 == 0 else ("none", "rules")
		for arm in order:
			_rules_cache._by_site[site] = arms[arm]
			wall_start, cpu_start, in_handlers = time.perf_counter(), time.process_time(), spent["seconds"]
			insert_leads(frappe, f"{arm}-{block}")
			wall[arm] += time.perf_counter() - wall_start
			cpu[arm] += time.process_time() - cpu_start
			wall_blocks[arm].append(time.perf_counter() - wall_start)
			cpu_blocks[arm].append(time.process_time() - cpu_start)
			handlers[arm] += spent["seconds"] - in_handlers
	inserts = max(1, per_arm // BLOCK) * BLOCK
	return {
		"rules": count,
		"indexed (rule, event) entries": enabled,
		"always evaluated": always,
		"found by a bound": sum(
			value.index.bound_count for key, value in with_rules.items() if isinstance(key, tuple)
		),
		"build_seconds": build_seconds,
		"inserts per arm": inserts,
		"ms per insert (rules)": wall["rules"] / inserts * 1000,
		"ms per insert (none)": wall["none"] / inserts * 1000,
		"wall": wall["rules"] / wall["none"],
		"cpu": cpu["rules"] / cpu["none"],
		"wall median": paired_median(wall_blocks["rules"], wall_blocks["none"]),
		"cpu median": paired_median(cpu_blocks["rules"], cpu_blocks["none"]),
		# The rules' own cost, free of the noise of a shared machine: time inside the app's rule
		# handlers with the rules minus without, over the insert without them.
		"handlers": 1 + (handlers["rules"] - handlers["none"]) / wall["none"],
		"handler ms per insert (rules)": handlers["rules"] / inserts * 1000,
	}


def run(frappe, count, per_arm):
	import crm_automation.doc_events as events

	try:
		return measure(frappe, count, per_arm)
	finally:
		events._run = getattr(events._run, "untimed", events._run)
		frappe.db.rollback()
		from crm_automation.runtime.workflow_rules import clear_rule_cache

		clear_rule_cache()


def main():
	frappe = connect()
	count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
	per_arm = int(sys.argv[3]) if len(sys.argv) > 3 else 300
	try:
		result = run(frappe, count, per_arm)
		for key, value in result.items():
			print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
		goal = 1.05 if count <= 1000 else 1.20
		print(f"goal: at most {goal:.2f}x wall and CPU")
	finally:
		frappe.destroy()


if __name__ == "__main__":
	main()
