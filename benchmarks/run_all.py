"""Every benchmark figure from one command, printed as a table: figure, goal, today.

    cd ~/frappe-bench/sites && ../env/bin/python /path/to/crm_automation/benchmarks/run_all.py <site> [--quick]
        [--only idle,no-work,...] [--out table.md]

The scale figures (idle rules, no-work cost, rule edits, scoring on save, added cost vs Frappe)
run in this process, each rolled back at the end; the other benchmarks run as they do alone, each
in its own process, and their own summary lines are shown (their full output goes to the log next
to the table). Ratios are given for wall time and for CPU time: the machine may be shared, and CPU
time is what the code itself costs. --quick runs smaller sizes (about 10 minutes on 2 cores).
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def ratio_text(result):
	if "wall median" not in result:
		return f"{result['wall']:.3f}x wall, {result['cpu']:.3f}x CPU"
	return (
		f"median of block pairs {result['wall median']:.3f}x wall, {result['cpu median']:.3f}x CPU "
		f"(totals {result['wall']:.3f}x, {result['cpu']:.3f}x)"
	)


def met(result, goal):
	"""Judged on the medians of paired blocks where there are some: on a shared machine a burst of
	another process lands in a few blocks of one arm and moves totals, not medians."""
	wall, cpu = result.get("wall median", result["wall"]), result.get("cpu median", result["cpu"])
	return wall <= goal and cpu <= goal


# ----------------------------------------------------------------------------------------------
# In-process figures (the scale issue's goals)


def idle_rules(frappe, quick, count):
	import idle_rules as bench

	result = bench.run(frappe, count, 200 if quick else 500)
	goal = 1.05 if count <= 1000 else 1.20
	today = (
		f"{ratio_text(result)}, {result['handlers']:.3f}x by time in the rule handlers "
		f"({result['ms per insert (rules)']:.1f} vs {result['ms per insert (none)']:.1f} ms per insert, "
		f"{result['handler ms per insert (rules)']:.2f} ms of it in the handlers; "
		f"{result['always evaluated']} rules evaluated on every save, {result.get('found by a bound', 0)} found by a bound)"
	)
	return [
		(
			f"Idle rules, N = {count:,}: Lead insert vs none",
			f"≤ {goal:.2f}x wall and CPU",
			today,
			met(result, goal),
		)
	]


def no_work(frappe, quick):
	import no_work_cost as bench

	rows = []
	for result in bench.run(frappe, 200 if quick else 500):
		when = "each insert a new request" if result["each insert a new request"] else "in one request"
		today = f"{ratio_text(result)} ({result['ms per insert (app)']:.2f} vs {result['ms per insert (none)']:.2f} ms)"
		rows.append(
			(
				f"No work: {result['doctype']} insert, app's hooks vs none ({when})",
				"≤ 1.02x",
				today,
				met(result, 1.02),
			)
		)
	return rows


def rule_edits(frappe, quick):
	import rule_edit_cost as bench

	result = bench.run(frappe, 1000, 3 if quick else 7)
	edit = max(result["save one rule ms"], result["delete one rule ms"])
	after = max(result["next request after a save ms"], result["next request after a delete ms"])
	return [
		(
			"Rule edit with 1,000 rules: save / delete one (loop check included)",
			"≤ 200 ms",
			f"{result['save one rule ms']:.0f} / {result['delete one rule ms']:.0f} ms (median)",
			edit <= 200,
		),
		(
			"Rule edit with 1,000 rules: next request of another worker",
			"≤ 50 ms",
			f"{result['next request after a save ms']:.0f} / {result['next request after a delete ms']:.0f} ms "
			"after a save / delete (median)",
			after <= 50,
		),
	]


def scoring_on_save(frappe, quick):
	import score_on_save_cost as bench

	result = bench.run(frappe, 200 if quick else 500)
	today = f"{ratio_text(result)} ({result['ms per insert (rule)']:.1f} vs {result['ms per insert (none)']:.1f} ms)"
	return [("Scoring on save: Lead insert, 12 criteria vs none", "≤ 1.05x", today, met(result, 1.05))]


def added_cost(frappe, quick):
	import automation_added_cost as bench

	result = bench.run(frappe, 160 if quick else 400)
	today = (
		f"{ratio_text(result)} (adds {result['added ms per insert (ours)']:.1f} vs "
		f"{result['added ms per insert (Frappe)']:.1f} ms per insert)"
	)
	return [("Assign + notify + set field: added cost vs Frappe's", "≤ 0.6x", today, met(result, 0.6))]


IN_PROCESS = {
	"idle": lambda frappe, quick: idle_rules(frappe, quick, 1000) + idle_rules(frappe, quick, 10000),
	"no-work": no_work,
	"edits": rule_edits,
	"scoring": scoring_on_save,
	"added": added_cost,
}

# ----------------------------------------------------------------------------------------------
# The other benchmarks, each in its own process: (key, script, goal, arguments full, arguments quick)

SEPARATE = [
	("lead-insert", "lead_insert_overhead.py", "50 idle rules ≤ 1.05x", ["{site}"], ["{site}"]),
	("assign-notify", "assign_notify_vs_frappe.py", "≤ 1.0x Frappe's time", ["{site}"], ["{site}"]),
	("time-sweep", "time_trigger_sweep.py", "< 5 s, ∝ due", ["{site}"], ["{site}", "20000"]),
	("score-recompute", "score_recompute.py", "100k < 60 s, memory flat", ["{site}"], ["{site}", "20000"]),
	("escalation-sweep", "escalation_sweep.py", "< 5 s, ∝ due", ["{site}"], ["{site}", "20000"]),
	(
		"sequence-sweep",
		"sequence_sweep.py",
		"sweep < 2 s; ≤ 1 ms per insert",
		["{site}"],
		["{site}", "20000"],
	),
	(
		"leaf-throughput",
		"engine_leaf_throughput.py",
		"leaves per second",
		[],
		["--records", "20000", "--repeat", "3"],
	),
	(
		"simulator",
		"simulator_throughput.py",
		"records/s, memory flat",
		["--sizes", "10000,100000"],
		["--sizes", "10000"],
	),
	("mining", "mining_throughput.py", "rows/s, memory flat", ["--sizes", "100000"], ["--sizes", "20000"]),
]
_SUMMARY_WORDS = ("goal", "ratio", "records/s", "rows/s", "leaves", "per second", "sweep", "recompute", "rss")


def run_separately(site, script, arguments, timeout, log):
	path = os.path.join(HERE, script)
	if not os.path.exists(path):
		return None
	command = [sys.executable, path, *(a.format(site=site) for a in arguments)]
	started = time.perf_counter()
	try:
		done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
		output, failed = done.stdout, done.returncode != 0
		errors = done.stderr
	except subprocess.TimeoutExpired as expired:
		output, failed, errors = (
			(expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else (expired.stdout or ""),
			True,
			f"timed out after {timeout} s",
		)
	seconds = time.perf_counter() - started
	log.write(f"\n===== {script} ({seconds:.0f} s)\n{output}\n")
	if failed:
		log.write(f"----- stderr\n{errors[-3000:]}\n")
	lines = [line.strip() for line in output.splitlines() if line.strip()]
	summary = [
		line
		for line in lines
		if any(word in line.lower() for word in _SUMMARY_WORDS) and any(ch.isdigit() for ch in line)
	] or lines[-2:]
	today = "; ".join(summary[-4:]) or "(no output)"
	if failed:
		today = f"FAILED ({errors.strip().splitlines()[-1] if errors.strip() else 'no error text'}) {today}"
	return today


def table(rows):
	out = ["| figure | goal | today |", "|---|---|---|"]
	for figure, goal, today, ok in rows:
		mark = "" if ok is None else (" ✅" if ok else " ❌")
		out.append(f"| {figure} | {goal} | {today.replace('|', '/')}{mark} |")
	return "\n".join(out)


def main():
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("site")
	parser.add_argument("--quick", action="store_true", help="smaller sizes, about 10 minutes")
	parser.add_argument(
		"--only", help="comma-separated keys: " + ", ".join([*IN_PROCESS, *(s[0] for s in SEPARATE)])
	)
	parser.add_argument("--out", help="write the table (markdown) here; the log goes next to it")
	args = parser.parse_args()
	only = set(args.only.split(",")) if args.only else None
	out = args.out or f"/tmp/run_all-{args.site}.md"
	log_path = os.path.splitext(out)[0] + ".log"

	sys.argv = [sys.argv[0], args.site]  # what _site.connect reads
	from _site import connect

	rows = []
	started = time.perf_counter()
	with open(log_path, "w") as log:
		frappe = connect()
		try:
			for key, figure in IN_PROCESS.items():
				if only and key not in only:
					continue
				figure_started = time.perf_counter()
				try:
					found = figure(frappe, args.quick)
				except Exception as error:
					frappe.db.rollback()
					found = [(key, "", f"FAILED: {error!r}", False)]
				log.write(f"\n===== {key} ({time.perf_counter() - figure_started:.0f} s)\n")
				for row in found:
					log.write(f"{row}\n")
					print(f"{row[0]}: {row[2]}", flush=True)
				rows.extend(found)
		finally:
			frappe.destroy()
		for key, script, goal, full, quick in SEPARATE:
			if only and key not in only:
				continue
			today = run_separately(
				args.site, script, quick if args.quick else full, 240 if args.quick else 900, log
			)
			if today is None:
				continue
			print(f"{script}: {today}", flush=True)
			rows.append((script.removesuffix(".py").replace("_", " "), goal, today, None))
	text = table(rows)
	with open(out, "w") as handle:
		handle.write(text + "\n")
	print()
	print(text)
	print(
		f"\n{'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f} s; table in {out}, log in {log_path}"
	)


if __name__ == "__main__":
	main()
