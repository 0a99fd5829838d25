"""`crm-automation`: the command that needs no bench.

    crm-automation simulate --pack PACK.json --records RECORDS.csv|json [--meta FILE] [--format json]
    crm-automation check-pack PACK.json
"""

import argparse
import json
import sys


def main(argv=None):
	parser = argparse.ArgumentParser(prog="crm-automation", description="Rule packs for crm_automation, offline.")
	commands = parser.add_subparsers(dest="command", required=True)
	simulate = commands.add_parser("simulate", help="evaluate a rule pack against exported records")
	simulate.add_argument("--pack", required=True, help="a pack file, or a shipped sample: lead_management, sales_pipeline, support")
	simulate.add_argument("--records", required=True, help="a CSV or JSON file, or a shipped sample: leads, opportunities, issues")
	simulate.add_argument("--meta", action="append", default=[], help="field lists exported from a site (JSON)")
	simulate.add_argument("--doctype", help="the doctype of CSV records without a doctype column")
	simulate.add_argument("--format", choices=("text", "json"), default="text")
	simulate.add_argument("--now", help="the moment to simulate at (YYYY-MM-DD HH:MM:SS)")
	check = commands.add_parser("check-pack", help="check a rule pack against the shipped field lists")
	check.add_argument("pack")
	check.add_argument("--meta", action="append", default=[])
	args = parser.parse_args(argv)
	if args.command == "simulate":
		return _simulate(args)
	return _check(args)


def _load_pack(path_or_name):
	from crm_automation.simulator import resolve

	path = resolve(path_or_name, "packs")
	with open(path) as handle:
		try:
			return json.load(handle)
		except ValueError as error:
			print(f"{path}: not valid JSON ({error})", file=sys.stderr)
			sys.exit(2)


def _report_problems(problems):
	print(f"{len(problems)} problem(s):", file=sys.stderr)
	for problem in problems:
		print(f"  {problem}", file=sys.stderr)
	return 1


def _simulate(args):
	import datetime

	from crm_automation.simulator import format_text, resolve, simulate

	pack = _load_pack(args.pack)
	now = datetime.datetime.fromisoformat(args.now) if args.now else None
	report, problems = simulate(pack, resolve(args.records, "records"), args.meta, args.doctype, now)
	if problems:
		return _report_problems(problems)
	if args.format == "json":
		print(json.dumps(report, indent=1, default=str))
	else:
		print(format_text(report))
	return 0


def _check(args):
	from crm_automation.engine.packs import check_pack
	from crm_automation.simulator import load_meta

	result = check_pack(_load_pack(args.pack), load_meta(args.meta).get)
	if result.problems:
		return _report_problems(result.problems)
	counts = ", ".join(f"{len(items)} {section.replace('_', ' ')}" for section, items in result.compiled.items())
	print(f"ok: {counts}")
	return 0


if __name__ == "__main__":
	sys.exit(main())
