"""History miner throughput and memory: Version rows (field changes) per second and peak RSS.

A synthetic history with N field-change events (what a site's Version rows become), ten per Lead,
plus each Lead's record, a hand assignment and now and then an e-mail or a ToDo, is written on the
fly to a temporary JSON lines file; `crm-automation suggest` then mines it in its own process, so
the peak RSS printed is the miner's alone. Memory must stay flat from 100k to 1M rows. No bench.

Run: python benchmarks/mining_throughput.py [--sizes 100000,1000000]
     cd ~/frappe-bench/sites && ../env/bin/python /path/to/benchmarks/mining_throughput.py --site SITE
        [--days 90] [--generate 1000000]: mines the site's own history as the report does; with
        --generate, first bulk-inserts that many Version rows (ten per new Lead, with a hand
        assignment each) in one transaction and rolls all of it back afterwards
"""

import argparse
import datetime
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CHANGES_PER_LEAD = 10
START = datetime.datetime(2026, 9, 1, 8, 0, 0)
TERRITORIES = [f"Territory {n}" for n in range(12)]
SOURCES = ["Exhibition", "Website", "Cold Calling", "Advertisement", "Campaign"]
INDUSTRIES = [f"Industry {n}" for n in range(20)]
USERS = [f"user{n}@example.com" for n in range(15)]
STATUSES = ["Open", "Replied", "Interested", "Opportunity", "Quotation", "Lost Quotation"]


def when(moment):
	return moment.strftime("%Y-%m-%d %H:%M:%S")


def write_history(path, rows, seed=3):
	"""Write a history with ``rows`` field changes; returns the number of lines written."""
	rng = random.Random(seed)
	leads = max(1, rows // CHANGES_PER_LEAD)
	step = datetime.timedelta(days=80) / leads
	lines = 0
	with open(path, "w", encoding="utf-8") as handle:
		handle.write(
			json.dumps(
				{
					"type": "history",
					"version": 1,
					"since": when(START),
					"until": when(START + datetime.timedelta(days=90)),
				}
			)
			+ "\n"
		)
		for i in range(leads):
			name = f"CRM-LEAD-2026-{i:07d}"
			created = START + step * i
			territory = TERRITORIES[i % len(TERRITORIES)]
			values = {
				"territory": territory,
				"source": SOURCES[i % 5],
				"industry": rng.choice(INDUSTRIES),
				"status": "Open",
				"qualification_status": "Unqualified",
				"lead_owner": rng.choice(USERS),
			}
			events = [
				{
					"type": "record",
					"doctype": "Lead",
					"name": name,
					"when": when(created),
					"who": rng.choice(USERS),
					"doc": values,
				}
			]
			assignee = USERS[i % len(TERRITORIES)] if rng.random() < 0.9 else rng.choice(USERS)
			events.append(
				{
					"type": "assignment",
					"doctype": "Lead",
					"name": name,
					"when": when(created + datetime.timedelta(minutes=20)),
					"who": "maria@example.com",
					"to": assignee,
				}
			)
			moment = created
			status = "Open"
			for change in range(CHANGES_PER_LEAD):
				moment += datetime.timedelta(hours=rng.randint(1, 30))
				if change % 3 == 0:
					new = rng.choice(STATUSES)
					events.append(
						{
							"type": "change",
							"doctype": "Lead",
							"name": name,
							"when": when(moment),
							"who": rng.choice(USERS),
							"field": "status",
							"old": status,
							"new": new,
						}
					)
					status = new
					if new == "Replied" and rng.random() < 0.8:
						events.append(
							{
								"type": "email",
								"doctype": "Lead",
								"name": name,
								"when": when(moment + datetime.timedelta(minutes=30)),
								"who": rng.choice(USERS),
								"template": "Quote Follow Up",
							}
						)
				else:
					field = rng.choice(["industry", "qualification_status", "source"])
					new = {
						"industry": rng.choice(INDUSTRIES),
						"qualification_status": rng.choice(["In Process", "Qualified"]),
						"source": rng.choice(SOURCES),
					}[field]
					events.append(
						{
							"type": "change",
							"doctype": "Lead",
							"name": name,
							"when": when(moment),
							"who": rng.choice(USERS),
							"field": field,
							"old": "",
							"new": new,
						}
					)
			if rng.random() < 0.3:
				events.append(
					{
						"type": "todo",
						"doctype": "Lead",
						"name": name,
						"when": when(moment + datetime.timedelta(days=2)),
						"who": assignee,
						"to": assignee,
						"description": rng.choice(["Call back", "Send samples", "Check budget"]),
					}
				)
			for event in events:
				handle.write(json.dumps(event) + "\n")
			lines += len(events)
	return lines


MINER = """
import json, resource, sys, time
from crm_automation.offline.history_files import suggest
started = time.perf_counter()
report = suggest(sys.argv[1])
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "proposals": len(report["proposals"]), "documents": sum(report["documents"].values())}))
"""


def run_offline(sizes):
	print(
		f"{'Version rows':>12} {'events':>10} {'file MB':>8} {'seconds':>8} {'rows/s':>10} {'peak RSS MB':>12} {'proposals':>9}"
	)
	for rows in sizes:
		with tempfile.TemporaryDirectory() as folder:
			path = os.path.join(folder, "history.jsonl")
			events = write_history(path, rows)
			size = os.path.getsize(path) / 1e6
			output = subprocess.run(
				[sys.executable, "-c", MINER, path], capture_output=True, text=True, check=True, cwd=ROOT
			).stdout
			result = json.loads(output)
			print(
				f"{rows:>12,} {events:>10,} {size:>8.0f} {result['seconds']:>8.1f} {rows / result['seconds']:>10,.0f} "
				f"{result['peak_rss_mb']:>12.0f} {result['proposals']:>9}"
			)


def generate_on_site(rows):
	"""Bulk-insert Leads, their Version rows and assignments (in the open transaction)."""
	import frappe

	rng = random.Random(5)
	leads = max(1, rows // CHANGES_PER_LEAD)
	now = datetime.datetime.now()
	first = now - datetime.timedelta(days=80)
	step = datetime.timedelta(days=79) / leads
	territories = frappe.get_all("Territory", filters={"is_group": 0}, pluck="name")[:6] or [None]
	standard = ["name", "creation", "modified", "owner", "modified_by", "docstatus"]
	lead_fields = [*standard, "first_name", "lead_name", "territory", "status", "qualification_status"]
	version_fields = [*standard, "ref_doctype", "docname", "data"]
	todo_fields = [
		*standard,
		"allocated_to",
		"assigned_by",
		"reference_type",
		"reference_name",
		"description",
		"status",
		"priority",
	]
	lead_rows, version_rows, todo_rows = [], [], []

	def flush():
		frappe.db.bulk_insert("Lead", lead_fields, lead_rows)
		frappe.db.bulk_insert("Version", version_fields, version_rows)
		frappe.db.bulk_insert("ToDo", todo_fields, todo_rows)
		lead_rows.clear()
		version_rows.clear()
		todo_rows.clear()

	for i in range(leads):
		name = f"BENCH-MINING-{i:07d}"
		created = first + step * i
		territory = territories[i % len(territories)]
		lead_rows.append(
			(
				name,
				created,
				created,
				"Administrator",
				"Administrator",
				0,
				"Bench",
				"Bench",
				territory,
				"Open",
				"Unqualified",
			)
		)
		assignee = "Administrator"
		todo_rows.append(
			(
				f"BENCH-MINING-TODO-{i:07d}",
				created,
				created,
				"Administrator",
				"Administrator",
				0,
				assignee,
				"Administrator",
				"Lead",
				name,
				f"Assignment for Lead {name}",
				"Open",
				"Medium",
			)
		)
		moment = created
		status = "Open"
		for change in range(CHANGES_PER_LEAD):
			moment += datetime.timedelta(minutes=rng.randint(10, 300))
			if change % 3 == 0:
				new = rng.choice(STATUSES)
				diff = [["status", status, new]]
				status = new
			else:
				diff = [["qualification_status", "Unqualified", rng.choice(["In Process", "Qualified"])]]
			data = json.dumps(
				{
					"changed": diff,
					"added": [],
					"removed": [],
					"row_changed": [],
					"data_import": None,
					"updater_reference": None,
				}
			)
			version_rows.append(
				(
					f"BENCH-MINING-V-{i:07d}-{change}",
					moment,
					moment,
					"Administrator",
					"Administrator",
					0,
					"Lead",
					name,
					data,
				)
			)
		if len(version_rows) >= 20000:
			flush()
	flush()


def run_on_site(site, days, generate=0):
	import frappe

	frappe.init(site=site)
	frappe.connect()
	frappe.set_user("Administrator")
	try:
		if generate:
			started = time.perf_counter()
			generate_on_site(generate)
			print(
				f"generated {generate:,} Version rows in {time.perf_counter() - started:.1f} s (rolled back at the end)"
			)

		from crm_automation.engine import mining
		from crm_automation.mining import history_export

		rows = frappe.db.sql(
			"select count(*) from `tabVersion` where creation >= now() - interval %s day", days
		)[0][0]
		since, until = history_export.period(days)
		started = time.perf_counter()
		miner = mining.HistoryMiner(since=since, until=until).feed(
			history_export.iter_events(history_export.DEFAULT_DOCTYPES, since, until)
		)
		report = miner.report()
		elapsed = time.perf_counter() - started
		peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
		print(
			f"{site}: {rows:,} Version rows in the period, {sum(report['documents'].values()):,} documents, {elapsed:.1f} s, {rows / max(elapsed, 1e-9):,.0f} rows/s, peak RSS {peak:.0f} MB, {len(report['proposals'])} proposals"
		)
	finally:
		frappe.db.rollback()
		frappe.destroy()


def main():
	parser = argparse.ArgumentParser()
	parser.add_argument("--sizes", default="100000,1000000")
	parser.add_argument("--site")
	parser.add_argument("--days", type=int, default=90)
	parser.add_argument("--generate", type=int, default=0)
	args = parser.parse_args()
	if args.site:
		run_on_site(args.site, args.days, args.generate)
	else:
		run_offline([int(size) for size in args.sizes.split(",")])


if __name__ == "__main__":
	main()
