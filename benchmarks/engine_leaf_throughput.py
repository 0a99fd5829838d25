"""Leaf evaluations per second for a compiled 10-leaf rule over 100,000 records (one core).

Every record is built to satisfy all ten leaves, so the short-circuiting fast path evaluates
exactly ten leaves per record and the figure is honest: leaves evaluated / seconds.
Run: python benchmarks/engine_leaf_throughput.py [--records N] [--repeat R]
"""

import argparse
import datetime
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from crm_automation.engine import compile_condition

FIELDS = {
	"status": {"fieldtype": "Select", "options": "Lead\nOpen\nReplied\nInterested"},
	"annual_revenue": {"fieldtype": "Currency"},
	"no_of_employees": {"fieldtype": "Int"},
	"territory": {"fieldtype": "Link", "options": "Territory"},
	"industry": {"fieldtype": "Link", "options": "Industry Type"},
	"source": {"fieldtype": "Link", "options": "Lead Source"},
	"company_name": {"fieldtype": "Data"},
	"unsubscribed": {"fieldtype": "Check"},
	"creation": {"fieldtype": "Datetime"},
	"probability": {"fieldtype": "Percent"},
}

RULE = {
	"all": [
		{"field": "status", "op": "in", "value": ["Open", "Replied"]},
		{"field": "annual_revenue", "op": ">", "value": 100000},
		{"field": "no_of_employees", "op": "between", "value": [10, 5000]},
		{"field": "territory", "op": "=", "value": "India"},
		{"field": "industry", "op": "!=", "value": "Retail"},
		{"field": "source", "op": "is set"},
		{"field": "company_name", "op": "like", "value": "%ltd%"},
		{"field": "unsubscribed", "op": "=", "value": 0},
		{"field": "creation", "op": ">=", "value": "2020-01-01 00:00:00"},
		{"field": "probability", "op": "<=", "value": 90},
	]
}


def make_records(count):
	rng = random.Random(42)
	start = datetime.datetime(2021, 1, 1)
	return [
		{
			"status": rng.choice(["Open", "Replied"]),
			"annual_revenue": float(rng.randint(100001, 10_000_000)),
			"no_of_employees": rng.randint(10, 5000),
			"territory": "India",
			"industry": rng.choice(["IT", "Manufacturing", "Banking"]),
			"source": rng.choice(["Website", "Exhibition", "Live Stream"]),
			"company_name": f"Company {i} Pvt Ltd",
			"unsubscribed": 0,
			"creation": start + datetime.timedelta(minutes=i),
			"probability": float(rng.randint(0, 90)),
		}
		for i in range(count)
	]


def main():
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--records", type=int, default=100_000)
	parser.add_argument("--repeat", type=int, default=5)
	args = parser.parse_args()

	condition = compile_condition(RULE, FIELDS)
	records = make_records(args.records)
	matches = condition.matches
	best = None
	for _ in range(args.repeat):
		started = time.perf_counter()
		matched = sum(1 for record in records if matches(record, None))
		elapsed = time.perf_counter() - started
		best = elapsed if best is None else min(best, elapsed)
	if matched != len(records):
		sys.exit(f"expected every record to match all {condition.leaf_count} leaves, {matched} did")

	leaves = condition.leaf_count * len(records)
	print(f"records: {len(records):,}  leaves per record: {condition.leaf_count}  best of {args.repeat} runs")
	print(f"time: {best:.3f} s  records/s: {len(records) / best:,.0f}")
	print(f"leaf evaluations/s: {leaves / best:,.0f}  (goal: 1,000,000)")


if __name__ == "__main__":
	main()
