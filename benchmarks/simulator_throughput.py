"""Offline simulator throughput and memory: records/s and peak RSS for 10k, 100k and 1M Leads.

A 10-rule pack (the shipped lead_management pack, its workflow rules and score rule, topped up to ten
with workflow rules that have conditions and branches) runs over synthetic Lead records written on the fly to
a temporary CSV (or JSON list / JSON lines with --format). Each size runs in its own process, as
`crm-automation simulate` does (first 20 records explained, the rest counted), so its peak RSS is
its own. Needs no bench.

Run: python benchmarks/simulator_throughput.py [--sizes 10000,100000,1000000] [--format csv|json|jsonl]
     [--details] (also write every record's explanation to a file: the slow, complete path)
"""

import argparse
import csv
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

COLUMNS = [
	"doctype",
	"name",
	"first_name",
	"company_name",
	"email_id",
	"source",
	"industry",
	"annual_revenue",
	"no_of_employees",
	"unsubscribed",
	"creation",
	"activity:Communication",
	"activity:Comment",
	"days_idle",
]
RULES = 10
SOURCES = ["Exhibition", "Campaign", "Cold Calling", "Advertisement", "Reference", ""]
INDUSTRIES = ["Manufacturing", "Retail", "IT", "Telecommunications", ""]
SIZES = ["1-10", "11-50", "51-200", "201-500", "501-1000", "1000+"]

EXTRA_RULES = [
	{
		"rule_name": f"Extra rule {number}",
		"document_type": "Lead",
		"trigger": "New",
		"conditions": {
			"all": [
				{"field": "annual_revenue", "op": ">", "value": threshold},
				{
					"any": [
						{"field": "industry", "op": "in", "value": ["IT", "Manufacturing"]},
						{"field": "unsubscribed", "op": "=", "value": 0},
					]
				},
			]
		},
		"branches": [
			{
				"branch_name": "Big",
				"conditions": {
					"all": [{"field": "no_of_employees", "op": "in", "value": ["501-1000", "1000+"]}]
				},
			},
			{"branch_name": "Rest", "is_else": 1},
		],
		"actions": [
			{"action_type": "Add Tag", "branch": "Big", "tag": f"Big {number}"},
			{"action_type": "Add Comment", "branch": "Rest", "message": "Checked by rule {{ doc.name }}"},
		],
	}
	for number, threshold in enumerate(
		(10_000, 100_000, 500_000, 1_000_000, 5_000_000, 50_000, 2_000_000), start=1
	)
]


def ten_rule_pack():
	with open(os.path.join(ROOT, "crm_automation", "samples", "packs", "lead_management.json")) as handle:
		pack = json.load(handle)
	# Ten rules in all, whatever the shipped pack holds today.
	missing = max(0, RULES - len(pack["workflow_rules"]) - len(pack.get("lead_score_rules") or []))
	pack["workflow_rules"].extend(EXTRA_RULES[:missing])
	return pack


def synthetic_rows(count, seed=7):
	rng = random.Random(seed)
	start = datetime.datetime(2026, 1, 1)
	for number in range(count):
		yield [
			"Lead",
			f"LEAD-{number:07d}",
			rng.choice(["Asha", "Ben", "Chen", "Dora", "Eli"]),
			rng.choice(["Pune Pumps Ltd", "Bright Retail", "", "Dora Data GmbH"]),
			rng.choice(["x@example.com", ""]),
			rng.choice(SOURCES),
			rng.choice(INDUSTRIES),
			str(rng.randrange(0, 10_000_000)),
			rng.choice(SIZES),
			rng.choice(["0", "0", "0", "1"]),
			(start + datetime.timedelta(minutes=number)).isoformat(sep=" "),
			str(rng.randrange(0, 5)),
			str(rng.randrange(0, 3)),
			str(rng.randrange(0, 30)),
		]


def write_records(path, count, file_format):
	with open(path, "w", newline="", encoding="utf-8") as handle:
		if file_format == "csv":
			writer = csv.writer(handle)
			writer.writerow(COLUMNS)
			writer.writerows(synthetic_rows(count))
			return
		if file_format == "json":
			handle.write("[\n")
		for number, row in enumerate(synthetic_rows(count)):
			if file_format == "json" and number:
				handle.write(",\n")
			handle.write(json.dumps(dict(zip(COLUMNS, row, strict=True))))
			if file_format == "jsonl":
				handle.write("\n")
		if file_format == "json":
			handle.write("\n]\n")


def child(pack_path, records_path, details):
	"""One measured run (its own process): prints records, seconds and peak RSS as JSON."""
	from crm_automation.offline.simulator import run_simulation

	with open(pack_path) as handle:
		pack = json.load(handle)
	details_file = open(os.devnull, "w") if details else None
	write = (lambda entry: details_file.write(json.dumps(entry, default=str) + "\n")) if details else None
	started, cpu_started = time.perf_counter(), time.process_time()
	result = run_simulation(
		pack, records_path, now=datetime.datetime(2026, 11, 23, 12), show=20, details=write
	)
	seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
	assert not result.problems, [str(p) for p in result.problems[:5]]
	peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
	print(
		json.dumps(
			{
				"records": result.summary.records,
				"seconds": seconds,
				"cpu_seconds": cpu_seconds,
				"peak_rss_mb": peak_kb / 1024,
				"firings": result.summary.firings,
			}
		)
	)


def main():
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--sizes", default="10000,100000,1000000")
	parser.add_argument("--format", choices=("csv", "json", "jsonl"), default="csv")
	parser.add_argument("--details", action="store_true")
	parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
	args = parser.parse_args()
	if args.child:
		return child(*args.child, args.details)
	pack = ten_rule_pack()
	rules = len(pack["workflow_rules"]) + len(pack["lead_score_rules"])
	print(
		f"{rules}-rule pack, {args.format} records{', with --details' if args.details else ''}, one process per size"
	)
	# records/s by the clock, and by the CPU time the run got (the same on an idle machine; on a
	# busy one the second is what the code costs).
	print(
		f"{'records':>10} {'file MB':>8} {'seconds':>8} {'records/s':>10} {'per CPU s':>10} {'peak RSS MB':>12}"
	)
	with tempfile.TemporaryDirectory() as folder:
		pack_path = os.path.join(folder, "pack.json")
		with open(pack_path, "w") as handle:
			json.dump(pack, handle)
		for size in (int(s) for s in args.sizes.split(",")):
			records_path = os.path.join(folder, f"leads.{args.format}")
			write_records(records_path, size, args.format)
			command = [sys.executable, __file__, "--child", pack_path, records_path] + (
				["--details"] if args.details else []
			)
			output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
			figures = json.loads(output)
			megabytes = os.path.getsize(records_path) / 1e6
			rate = figures["records"] / figures["seconds"]
			cpu_rate = figures["records"] / figures["cpu_seconds"]
			print(
				f"{figures['records']:>10,} {megabytes:>8.1f} {figures['seconds']:>8.2f} {rate:>10,.0f}"
				f" {cpu_rate:>10,.0f} {figures['peak_rss_mb']:>12.1f}"
			)
			os.unlink(records_path)


if __name__ == "__main__":
	main()
