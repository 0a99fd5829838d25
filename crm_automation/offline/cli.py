"""`crm-automation`: the command that needs no bench.

    crm-automation simulate --pack PACK.json --records RECORDS.csv|json|jsonl [--meta FILE] [--format json]
        [--now "YYYY-MM-DD HH:MM:SS"] [--show N] [--details FILE.jsonl] [--no-progress]
        [--availability PEOPLE.json]
    crm-automation check-pack PACK.json
    crm-automation suggest --history FILE.jsonl [--min-support N] [--min-confidence P] [--pack OUT.json]

Exit codes: 0 done, 2 the input was refused (every problem on its own line naming the file, the
line or row and the field; never a traceback), 1 an error of the command itself.
"""

import argparse
import datetime
import json
import os
import sys
import tempfile
import time

from crm_automation.engine.packs import check_pack
from crm_automation.engine.sequence_story import parse_span
from crm_automation.offline.availability_files import read_availability
from crm_automation.offline.history_files import add_suggest_parser, run_suggest
from crm_automation.offline.input_files import InputError, read_json_file
from crm_automation.offline.linked_record_files import read_linked_records
from crm_automation.offline.simulator import format_text, load_meta, resolve, run_simulation

EXIT_REFUSED = 2


class Parser(argparse.ArgumentParser):
	"""argparse, with a usage mistake told in one line like every other refusal."""

	def error(self, message):
		self.exit(EXIT_REFUSED, f"{self.prog}: {one_line(message)} (--help for usage)\n")


def one_line(text):
	"""``text`` with line breaks and other control characters escaped: one problem, one line, even
	when a file's column name or value holds a newline."""
	text = str(text)
	if text.isprintable():
		return text
	return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def main(argv=None):
	parser = Parser(prog="crm-automation", description="Rule packs for crm_automation, offline.")
	commands = parser.add_subparsers(dest="command", required=True)
	simulate = commands.add_parser("simulate", help="evaluate a rule pack against exported records")
	simulate.add_argument(
		"--pack",
		required=True,
		help="a pack file, or a shipped sample: lead_management, sales_pipeline, support",
	)
	simulate.add_argument(
		"--records",
		required=True,
		help="a CSV, JSON or JSON lines (.jsonl) file, or a shipped sample: leads, opportunities, issues",
	)
	simulate.add_argument(
		"--meta", action="append", default=[], help="field lists exported from a site (JSON)"
	)
	simulate.add_argument("--doctype", help="the doctype of CSV records without a doctype column")
	simulate.add_argument(
		"--payloads",
		help="inbound webhook payloads (JSON or JSON lines) for the pack's Webhook Received rules",
	)
	simulate.add_argument(
		"--linked",
		help='linked documents rules read (customer.territory): {"Customer": {"CUST-0001": {"territory": "North"}}}',
	)
	simulate.add_argument(
		"--availability",
		help='who is away, for Assign actions: {"away": [{"user": "ann@example.com", "from": "...", "to": "..."}]}',
	)
	simulate.add_argument("--format", choices=("text", "json"), default="text")
	simulate.add_argument("--now", help="the moment to simulate at (YYYY-MM-DD HH:MM:SS)")
	simulate.add_argument(
		"--until",
		help="play follow-up sequences, and run Schedule rules at each of their moments, on a virtual clock "
		"this long after --now (90m, 36h, 14d, 2w)",
	)
	simulate.add_argument(
		"--show",
		default="20",
		help="explain the first N records in full (default 20; 0 for the summary only)",
	)
	simulate.add_argument(
		"--details", help="write every record's full explanation to this file, one JSON object a line"
	)
	simulate.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
	check = commands.add_parser("check-pack", help="check a rule pack against the shipped field lists")
	check.add_argument("pack")
	check.add_argument("--meta", action="append", default=[])
	add_suggest_parser(commands)
	args = parser.parse_args(argv)
	try:
		if args.command == "simulate":
			return _simulate(args)
		if args.command == "suggest":
			return run_suggest(args)
		return _check(args)
	except InputError as error:
		print(one_line(error), file=sys.stderr)
		return EXIT_REFUSED
	except KeyboardInterrupt:
		print("interrupted", file=sys.stderr)
		return 130
	except BrokenPipeError:
		# `crm-automation simulate ... | head`: the reader has gone, which is not an error.
		os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
		return 0


def _load_pack(path_or_name):
	return read_json_file(resolve(path_or_name, "packs"), "pack")


def _report_problems(problems):
	if len(problems) > 1:
		print(f"{len(problems)} problem(s):", file=sys.stderr)
	for problem in problems:
		print(f"  {one_line(problem)}" if len(problems) > 1 else one_line(problem), file=sys.stderr)
	return EXIT_REFUSED


def _parse_now(text):
	if text is None:
		return None
	try:
		now = datetime.datetime.fromisoformat(text.strip())
	except ValueError:
		raise InputError("--now", f"{text!r} is not a date and time (YYYY-MM-DD HH:MM:SS)")
	return now.replace(tzinfo=None)


def _parse_until(text):
	if text is None:
		return None
	try:
		span = parse_span(text)
	except ValueError as error:
		raise InputError("--until", str(error))
	if not span:
		raise InputError("--until", f"{text!r} is no time at all; give a span such as 14d")
	return span


def _parse_show(text):
	if not text.strip().isdigit():
		raise InputError("--show", f"{text!r} is not a number of records (0, 1, 2, ...)")
	return int(text)


def _simulate(args):
	now = _parse_now(args.now)
	until = _parse_until(args.until)
	show = _parse_show(args.show)
	meta = load_meta(args.meta)
	if args.doctype is not None and args.doctype not in meta:
		raise InputError("--doctype", f"no field list for {args.doctype!r} (add one with --meta)")
	pack = _load_pack(args.pack)
	records = resolve(args.records, "records")
	linked = read_linked_records(args.linked) if args.linked else None
	availability = read_availability(args.availability) if args.availability else None
	progress = None if args.no_progress or not sys.stderr.isatty() else ProgressBar(sys.stderr)
	with DetailsFile(args.details) as details:
		result = run_simulation(
			pack,
			records,
			meta,
			args.doctype,
			now,
			show,
			details.write if details else None,
			progress,
			linked,
			until=until,
			availability=availability,
			payloads=resolve(args.payloads, "records") if args.payloads else None,
		)
		if result.problems:
			return _report_problems(result.problems)
		details.keep()
	if args.format == "json":
		print(json.dumps({**result.summary.as_dict(), "sample": result.sample}, indent=1, default=str))
	else:
		print(format_text(result))
	return 0


class DetailsFile:
	"""The --details file, written beside its final name and moved there only when the run went
	through: a refused run leaves no half-written file behind."""

	def __init__(self, path):
		self.path = path
		self.handle = None
		self.temporary = None
		self.kept = False

	def __enter__(self):
		if not self.path:
			return self
		if os.path.isdir(self.path):
			raise InputError(self.path, "is a folder; --details takes a file name")
		folder = os.path.dirname(os.path.abspath(self.path))
		try:
			descriptor, self.temporary = tempfile.mkstemp(
				prefix=".crm-automation-", suffix=".partial", dir=folder
			)
		except OSError as error:
			raise InputError(self.path, f"cannot write there ({error.strerror})")
		self.handle = os.fdopen(descriptor, "w", encoding="utf-8")
		return self

	def __bool__(self):
		return self.handle is not None

	def write(self, entry):
		self.handle.write(json.dumps(entry, default=str, ensure_ascii=False))
		self.handle.write("\n")

	def keep(self):
		self.kept = True

	def __exit__(self, *exc):
		if self.handle is None:
			return
		self.handle.close()
		if self.kept and exc[0] is None:
			try:
				os.replace(self.temporary, self.path)
			except OSError as error:
				os.unlink(self.temporary)
				raise InputError(self.path, f"cannot write there ({error.strerror})")
		else:
			os.unlink(self.temporary)


class ProgressBar:
	"""One line on a terminal, redrawn at most five times a second."""

	WIDTH = 30

	def __init__(self, stream, clock=None):
		self.stream = stream
		self.clock = clock or time.monotonic
		self.started = self.clock()
		self.drawn = self.started

	def __call__(self, records, source, done=False):
		moment = self.clock()
		if done:
			self.stream.write("\r\033[K")
			self.stream.flush()
			return
		if moment - self.drawn < 0.2:
			return
		self.drawn = moment
		fraction = min(1.0, source.bytes_read / source.size) if source.size else 0.0
		filled = int(fraction * self.WIDTH)
		rate = records / max(moment - self.started, 1e-6)
		bar = "█" * filled + "░" * (self.WIDTH - filled)
		self.stream.write(f"\r{bar} {fraction:4.0%}  {records:,} records  {rate:,.0f}/s")
		self.stream.flush()


def _check(args):
	meta = load_meta(args.meta)
	result = check_pack(_load_pack(args.pack), meta.get)
	if result.problems:
		return _report_problems(result.problems)
	counts = ", ".join(
		f"{len(items)} {section.replace('_', ' ')}" for section, items in result.compiled.items()
	)
	print(f"ok: {counts}")
	return 0


if __name__ == "__main__":
	sys.exit(main())
