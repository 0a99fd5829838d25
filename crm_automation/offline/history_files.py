"""History files (JSON lines) for `crm-automation suggest`, read as a stream. No Frappe here: the
offline command reads them and `bench ... crm-automation export-history` writes them.

The first line is a header, every other line one event (see docs/opportunities.md, "History files"):

    {"type": "history", "version": 1, "since": "2026-09-01 00:00:00", "until": "2026-11-30 00:00:00"}
    {"type": "record", "doctype": "Lead", "name": "CRM-LEAD-2026-00001", "when": "...", "who": "...", "doc": {...}}
    {"type": "assignment", "doctype": "Lead", "name": "CRM-LEAD-2026-00001", "when": "...", "who": "...", "to": "..."}
"""

import json
import os

from crm_automation.engine import mining
from crm_automation.engine.errors import RuleError
from crm_automation.engine.workflow import compile_workflow_rule
from crm_automation.offline.input_files import InputError, open_binary
from crm_automation.offline.simulator import load_meta, resolve

HISTORY_FORMAT = "history"
HISTORY_VERSION = 1
# One event is a few hundred bytes; a line this long is not an event.
MAX_LINE_BYTES = 1_000_000


def header(since, until, **extra):
	return {
		"type": HISTORY_FORMAT,
		"version": HISTORY_VERSION,
		"since": str(since),
		"until": str(until),
		**extra,
	}


class HistoryFile:
	"""The header of a history file, and its events as a stream (each tagged with its line)."""

	def __init__(self, path):
		self.path = path
		self.handle = open_binary(path)
		self.line_number = 0
		self.header = None
		for line_number, item in self._items():
			if not isinstance(item, dict) or item.get("type") != HISTORY_FORMAT:
				raise InputError(
					f"{path}:{line_number}",
					'the first line must be the header {"type": "history", "version": 1, ...}',
				)
			if item.get("version") != HISTORY_VERSION:
				raise InputError(
					f"{path}:{line_number}",
					f"history format version {item.get('version')!r} is not supported (use {HISTORY_VERSION})",
				)
			self.header = item
			break
		if self.header is None:
			raise InputError(path, "empty: no header line")

	def _items(self):
		for raw in self.handle:
			self.line_number += 1
			if len(raw) > MAX_LINE_BYTES:
				raise InputError(f"{self.path}:{self.line_number}", "line longer than 1 MB; not an event")
			if not raw.strip():
				continue
			try:
				item = json.loads(raw)  # bytes: json decodes UTF-8 itself, one copy fewer
			except UnicodeDecodeError:
				raise InputError(f"{self.path}:{self.line_number}", "not UTF-8 text; save the file as UTF-8")
			except json.JSONDecodeError as error:
				raise InputError(
					f"{self.path}:{self.line_number}", f"not valid JSON ({error.msg}, column {error.colno})"
				)
			yield self.line_number, item

	def events(self):
		for line_number, item in self._items():
			if not isinstance(item, dict):
				raise InputError(f"{self.path}:{line_number}", "an event is a JSON object")
			item["_where"] = f"{self.path}:{line_number}"
			yield item

	def close(self):
		self.handle.close()

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()


def parse_confidence(text):
	"""0.8, 80 or 80% all mean 80%."""
	value = str(text).strip().rstrip("%")
	try:
		number = float(value)
	except ValueError:
		raise InputError("--min-confidence", f"{text!r} is not a share (0.8, 80 or 80%)")
	share = number / 100 if number > 1 or str(text).strip().endswith("%") else number
	if not 0 < share <= 1:
		raise InputError("--min-confidence", f"{text!r} is not between 0 and 100%")
	return share


def suggest(
	path,
	min_support=mining.DEFAULT_MIN_SUPPORT,
	min_confidence=mining.DEFAULT_MIN_CONFIDENCE,
	meta=None,
	**options,
):
	"""Mine a history file; each proposal's rule is checked against the field lists in ``meta``
	(doctype → fields) where there is one, its problems listed with it."""
	with HistoryFile(path) as history:
		miner = mining.HistoryMiner(
			min_support=min_support,
			min_confidence=min_confidence,
			since=history.header.get("since"),
			until=history.header.get("until"),
			minutes=history.header.get("minutes"),
			**options,
		)
		try:
			miner.feed(history.events())
		except mining.HistoryError as error:
			raise InputError(error.where, error.message)
		report = miner.report()
	for proposal in report["proposals"]:
		proposal["problems"] = rule_problems(proposal["rule"], (meta or {}).get(proposal["doctype"]))
	return report


def rule_problems(rule, fields):
	if fields is None:
		return []
	try:
		compile_workflow_rule(rule, fields)
	except RuleError as error:
		return [str(problem) for problem in error.problems] or [str(error)]
	return []


def as_pack(report, name="Proposed from history"):
	"""The proposals' rules as a rule pack (``import-pack`` leaves them disabled)."""
	return {
		"format": "crm_automation.pack",
		"version": 1,
		"name": name,
		"description": "Rules proposed by crm-automation suggest from a site's history.",
		"workflow_rules": [
			proposal["rule"] for proposal in report["proposals"] if not proposal.get("problems")
		],
	}


def format_text(report):
	lines = []
	documents = ", ".join(f"{count} {doctype}" for doctype, count in sorted(report["documents"].items()))
	lines.append(f"History: {documents or 'no documents'} over {report['weeks']} weeks")
	if report["excluded"]:
		excluded = ", ".join(f"{count} {kind}" for kind, count in sorted(report["excluded"].items()))
		lines.append(f"Not manual work (automation, imports), left out: {excluded}")
	lines.append(
		f"Thresholds: support ≥ {report['min_support']}, confidence ≥ {report['min_confidence'] * 100:g}%"
	)
	if not report["proposals"]:
		lines.append("No pattern reaches the thresholds.")
	for number, proposal in enumerate(report["proposals"], 1):
		people = ", ".join(f"{person['user']} ({person['count']})" for person in proposal["people"][:5])
		lines.append("")
		lines.append(f"{number}. {proposal['summary']}")
		lines.append(
			f"   support {proposal['support']}, confidence {proposal['confidence'] * 100:.1f}%, "
			f"≈ {proposal['hours_per_week']:g} h saved per week; by {people}"
		)
		for alternative in proposal.get("alternatives") or ():
			lines.append(f"   the same documents: {alternative['field']} = {alternative['value']}")
		lines.append(f"   rule: {proposal['rule']['rule_name']} ({proposal['rule']['trigger']})")
		for problem in proposal.get("problems") or ():
			lines.append(f"   problem: {problem}")
	return "\n".join(lines)


def add_suggest_parser(commands):
	"""`crm-automation suggest`: registered by crm_automation.offline.cli."""
	parser = commands.add_parser("suggest", help="propose rules from a site's exported history")
	parser.add_argument(
		"--history",
		required=True,
		help="a history file (JSON lines) from export-history, or a shipped sample: leads",
	)
	parser.add_argument(
		"--min-support",
		default=str(mining.DEFAULT_MIN_SUPPORT),
		help="fewest documents a pattern needs (default 20)",
	)
	parser.add_argument(
		"--min-confidence", default="80", help="how often the action must follow its condition (default 80%%)"
	)
	parser.add_argument(
		"--window-hours",
		default=str(mining.DEFAULT_WINDOW_HOURS),
		help="an action this long after a transition still follows it (default 24)",
	)
	parser.add_argument(
		"--meta",
		action="append",
		default=[],
		help="field lists exported from a site (JSON), to check the rules",
	)
	parser.add_argument("--format", choices=("text", "json"), default="text")
	parser.add_argument(
		"--pack", help="also write the proposed rules to this rule pack (import-pack leaves them disabled)"
	)
	return parser


def _whole_number(text, option):
	if not str(text).strip().isdigit():
		raise InputError(option, f"{text!r} is not a whole number (0, 1, 2, ...)")
	return int(text)


def run_suggest(args):
	min_support = _whole_number(args.min_support, "--min-support")
	min_confidence = parse_confidence(args.min_confidence)
	window_hours = _whole_number(args.window_hours, "--window-hours")
	meta = load_meta(args.meta)
	report = suggest(
		resolve_history(args.history, resolve),
		min_support=min_support,
		min_confidence=min_confidence,
		meta=meta,
		window_hours=window_hours,
	)
	if args.pack:
		with open(args.pack, "w", encoding="utf-8") as handle:
			json.dump(as_pack(report), handle, indent=1, ensure_ascii=False)
			handle.write("\n")
	if args.format == "json":
		print(json.dumps(report, indent=1, ensure_ascii=False, default=str))
	else:
		print(format_text(report))
	return 0


def resolve_history(path_or_name, resolve):
	if os.path.exists(path_or_name):
		return path_or_name
	for candidate in (f"{path_or_name}.jsonl", path_or_name):
		try:
			return resolve(candidate, "history")
		except InputError:
			continue
	raise InputError(path_or_name, "no such file, and no shipped sample history/" + path_or_name)
