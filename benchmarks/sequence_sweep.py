"""Follow-up sequences at scale.

1. The minute sweep over 100,000 pending steps of which 1% are due: due rows are bulk-inserted
   straight into Automation Sequence Step and deleted at the end. Prints the sweep (release stale
   claims, find the due rows through the (status, due_at) index, dispatch chunk jobs) at several
   sizes, to show that its cost follows the due rows, not the pending ones. Goal: < 2 s.
2. Firing: 200 due steps of real Leads (an Add Comment each, logged) on one worker, per step.
3. Insert overhead: Lead inserts with a New rule that adds a comment, with and without one follow-up
   step, alternating blocks; prints the medians and the time spent starting each sequence.
   Goal: at most 1 ms more per insert.

    cd ~/frappe-bench/sites && ../env/bin/python /path/to/crm_automation/benchmarks/sequence_sweep.py <site> [pending]
"""

import datetime
import statistics
import sys
import time
from unittest.mock import patch

from _site import connect

PREFIX = "BENCH-SEQ-"
RULE = "_Bench Sequence Rule"
PLAIN_RULE = "_Bench Plain Rule"


def make_rules(frappe):
	from crm_automation.runtime.workflow_rules import clear_rule_cache

	for name, steps, message in ((RULE, True, "bench sequence"), (PLAIN_RULE, False, "bench plain")):
		if frappe.db.exists("Workflow Rule", name):
			frappe.delete_doc("Workflow Rule", name, force=True)
		actions = [{"action_type": "Add Comment", "message": message}]
		rule = {
			"doctype": "Workflow Rule",
			"rule_name": name,
			"document_type": "Lead",
			"trigger": "New",
			"enabled": 0,
			"conditions": '{"all": [{"field": "company_name", "op": "=", "value": "%s"}]}' % name,
			"actions": actions,
		}
		if steps:
			rule["steps"] = [
				{"step_name": "Later", "wait_type": "Duration", "wait_amount": 1, "wait_unit": "Hours"}
			]
			rule["actions"] = [
				*actions,
				{"action_type": "Add Comment", "message": "bench step", "step": "Later"},
			]
		frappe.get_doc(rule).insert(ignore_permissions=True)
	frappe.db.commit()
	clear_rule_cache()


def set_enabled(frappe, name, enabled):
	from crm_automation.runtime.workflow_rules import clear_rule_cache, get_rules

	frappe.db.set_value("Workflow Rule", name, "enabled", enabled)
	clear_rule_cache()
	get_rules("Lead", "after_insert")


def definition(frappe):
	from crm_automation.runtime.workflow_rules import get_compiled_rule
	from crm_automation.sequences.steps import ensure_definition

	set_enabled(frappe, RULE, 1)
	name = ensure_definition(get_compiled_rule(RULE))
	set_enabled(frappe, RULE, 0)
	frappe.db.commit()
	return name


def insert_pending(frappe, total, due, now, definition_name):
	# The app's own column list: a column the app adds is inserted here too (empty), not forgotten.
	from crm_automation.sequences.steps import STEP_COLUMNS

	rows = []
	every = max(total // due, 1)
	for i in range(total):
		due_at = (
			now - datetime.timedelta(minutes=1)
			if i % every == 0 and i // every < due
			else now + datetime.timedelta(hours=1 + i % 500)
		)
		row = {
			"name": f"{PREFIX}{i:07d}",
			"creation": now,
			"modified": now,
			"owner": "Administrator",
			"modified_by": "Administrator",
			"docstatus": 0,
			"idx": 0,
			"status": "Pending",
			"due_at": due_at,
			"workflow_rule": RULE,
			"step_index": 1,
			"step_name": "Later",
			"reference_doctype": "Lead",
			"reference_name": f"{PREFIX}LEAD-{i:07d}",
			"sequence": f"{PREFIX}{i}",
			"definition": definition_name,
			"anchor_at": now,
			"condition_met": 0,
		}
		rows.append(tuple(row.get(column) for column in STEP_COLUMNS))
	for start in range(0, total, 10000):
		frappe.db.bulk_insert("Automation Sequence Step", STEP_COLUMNS, rows[start : start + 10000])
	frappe.db.commit()


def delete_pending(frappe):
	frappe.db.sql(f"delete from `tabAutomation Sequence Step` where name like '{PREFIX}%%'")
	frappe.db.commit()


def bench_sweep(frappe, pending, due, now, definition_name):
	import crm_automation.sequences.runs as sequence_runs

	delete_pending(frappe)
	insert_pending(frappe, pending, due, now, definition_name)
	frappe.db.sql("analyze table `tabAutomation Sequence Step`")
	jobs = []
	times = []
	for _ in range(3):
		jobs.clear()
		# Dispatch only: chunk jobs are recorded, a small batch that would fire inline is handed over
		# uncounted (firing is measured on its own below).
		with (
			patch.object(frappe, "enqueue", side_effect=lambda method, **kw: jobs.append(kw)),
			patch.object(sequence_runs, "fire_steps", side_effect=lambda names, now_at=None: len(names)),
		):
			started = time.perf_counter()
			found = sequence_runs.sweep(now)
			times.append(time.perf_counter() - started)
	plan = frappe.db.sql(
		"explain select name from `tabAutomation Sequence Step` where status='Pending' and due_at <= %s order by due_at limit 20000",
		now,
		as_dict=True,
	)[0]
	print(
		f"{pending:>8,} pending, {due:>5,} due: sweep (release stale claims + find + dispatch {len(jobs)} chunk jobs or hand over inline) "
		f"median {statistics.median(times):.3f} s (runs: {', '.join(f'{t:.3f}' for t in times)}); found {found:,}; "
		f"index used: {plan.get('key')}, rows examined ≈ {plan.get('rows')}"
	)


def bench_firing(frappe, count):
	"""Real Leads with a step due now, fired by one worker."""
	from crm_automation.runtime.workflow_rules import get_compiled_rule
	from crm_automation.sequences.runs import fire_steps
	from crm_automation.sequences.steps import start_sequence

	leads = [
		frappe.get_doc(
			{"doctype": "Lead", "first_name": f"Bench fire {i}", "company_name": "Bench Fire Co"}
		).insert()
		for i in range(count)
	]
	set_enabled(frappe, RULE, 1)
	rule = get_compiled_rule(RULE)
	start = frappe.utils.now_datetime() - datetime.timedelta(hours=2)
	for lead in leads:
		start_sequence(rule, lead, "after_insert", at=start)
	frappe.db.commit()
	names = frappe.get_all(
		"Automation Sequence Step",
		filters={"reference_name": ("in", [lead.name for lead in leads]), "status": "Pending"},
		pluck="name",
	)
	started = time.perf_counter()
	fired = fire_steps(names)
	elapsed = time.perf_counter() - started
	print(
		f"firing {fired} due steps (Add Comment, logged) on one worker: {elapsed:.2f} s, {elapsed / max(fired, 1) * 1000:.1f} ms per step"
	)
	set_enabled(frappe, RULE, 0)
	return [lead.name for lead in leads]


def bench_insert(frappe, blocks=30, block=10):
	"""Alternating blocks of Lead inserts that match the plain rule or the sequence rule (both
	enabled; each matches its own company name), one commit per insert as one request each."""
	import crm_automation.sequences.steps as sequences
	from crm_automation.runtime.workflow_rules import clear_rule_cache, get_rules

	spent = {"seconds": 0.0, "calls": 0}
	original = sequences.start_sequence

	def timed_start(*args, **kwargs):
		started = time.perf_counter()
		try:
			return original(*args, **kwargs)
		finally:
			spent["seconds"] += time.perf_counter() - started
			spent["calls"] += 1

	for name in (PLAIN_RULE, RULE):
		frappe.db.set_value("Workflow Rule", name, "enabled", 1)
	frappe.db.commit()
	clear_rule_cache()
	get_rules("Lead", "after_insert")
	sequences.start_sequence = timed_start
	samples = {PLAIN_RULE: [], RULE: []}
	created = []
	try:
		for _ in range(blocks):
			for name in (PLAIN_RULE, RULE):
				started = time.perf_counter()
				for i in range(block):
					lead = frappe.get_doc(
						{"doctype": "Lead", "first_name": f"Bench insert {i}", "company_name": name}
					)
					created.append(lead.insert().name)
					frappe.db.commit()
				samples[name].append((time.perf_counter() - started) / block)
	finally:
		sequences.start_sequence = original
		for name in (PLAIN_RULE, RULE):
			frappe.db.set_value("Workflow Rule", name, "enabled", 0)
		frappe.db.commit()
	plain, seq = statistics.median(samples[PLAIN_RULE]), statistics.median(samples[RULE])
	print(
		f"Lead insert (+ commit), rule with an immediate comment: {plain * 1000:.2f} ms; same rule with a follow-up "
		f"step: {seq * 1000:.2f} ms; difference {(seq - plain) * 1000:+.2f} ms (medians of {blocks} blocks of {block}); "
		f"starting the sequence itself, measured inside the run: {spent['seconds'] / max(spent['calls'], 1) * 1000:.3f} ms "
		f"per insert"
	)
	return created


def cleanup(frappe, lead_names=()):
	delete_pending(frappe)
	names = list(lead_names) + frappe.get_all(
		"Lead", filters={"company_name": ("in", [RULE, PLAIN_RULE, "Bench Fire Co"])}, pluck="name"
	)
	if names:
		for table, column in (
			("Comment", "reference_name"),
			("Automation Sequence Step", "reference_name"),
			("Automation Log", "reference_name"),
		):
			frappe.db.sql(f"delete from `tab{table}` where {column} in %(names)s", {"names": names})
		frappe.db.sql("delete from `tabLead` where name in %(names)s", {"names": names})
	frappe.db.sql(
		"delete from `tabAutomation Log Action` where parenttype='Automation Log' and parent not in (select name from `tabAutomation Log`)"
	)
	for name in (RULE, PLAIN_RULE):
		if frappe.db.exists("Workflow Rule", name):
			frappe.delete_doc("Workflow Rule", name, force=True)
	frappe.db.sql("delete from `tabAutomation Sequence Definition` where workflow_rule=%s", RULE)
	frappe.db.commit()


def main():
	frappe = connect()
	frappe.flags.mute_emails = True
	pending = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
	created = []
	try:
		cleanup(frappe)
		frappe.db.set_single_value("CRM Automation Settings", "enabled", 1)
		make_rules(frappe)
		definition_name = definition(frappe)
		now = frappe.utils.now_datetime().replace(microsecond=0)
		for total, due in (
			(pending, pending // 100),
			(pending, pending // 1000),
			(pending // 10, pending // 1000),
		):
			bench_sweep(frappe, total, due, now, definition_name)
		delete_pending(frappe)
		created += bench_firing(frappe, 200)
		created += bench_insert(frappe)
	finally:
		cleanup(frappe, created)
		frappe.destroy()


if __name__ == "__main__":
	main()
