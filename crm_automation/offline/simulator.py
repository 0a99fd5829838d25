"""The offline simulator: a rule pack against exported records, on any machine, no bench needed.

It evaluates each record as if it had just been saved (New, Save and Validate rules; Value Change
and Submit-style rules when the record carries its before values; Time rules
show when they would fire), scores it with the pack's Lead Score Rules (activity counts from
``activity:<type>`` columns, idle days from ``days_idle``) and lays out the escalation schedule of
its policies. Field lists for Lead, Opportunity, Sales Order, Issue and Customer ship with the
package (``samples/meta``); ``--meta`` reads others exported from a site.

Records stream through (``record_files``): memory stays flat whatever the file's size. Every record
is decided on the fast path (no trace, no rendering) and counted in a ``Summary``; only the first
``show`` records and, on request, every record sent to ``details`` are explained in full (trace,
rendered subjects and messages, escalation schedule).
"""

import datetime
import functools
import os

from crm_automation.engine.budget import run_budget
from crm_automation.engine.fieldtypes import kind_of
from crm_automation.engine.linked_paths import linked_paths_of
from crm_automation.engine.packs import check_pack
from crm_automation.engine.sequence_story import SequencePlayer
from crm_automation.engine.templates import TemplateError, render_template
from crm_automation.engine.workflow import (
	TRIGGER_COMMUNICATION,
	TRIGGER_MANUAL,
	TRIGGER_NEW,
	TRIGGER_SAVE,
	TRIGGER_SCHEDULE,
	TRIGGER_SCORE_BAND,
	TRIGGER_TIME,
	TRIGGER_VALIDATE,
	TRIGGER_WEBHOOK,
)
from crm_automation.offline.availability_files import AssignmentPlayer
from crm_automation.offline.inbound_webhooks import play_payloads
from crm_automation.offline.input_files import InputError, read_json_file
from crm_automation.offline.linked_record_files import reader as linked_reader
from crm_automation.offline.linked_record_files import with_linked
from crm_automation.offline.record_files import RowSource
from crm_automation.offline.record_reader import RecordReader
from crm_automation.offline.replies import reply_evaluation
from crm_automation.offline.schedules import ScheduleClock
from crm_automation.offline.send_windows import pack_windows, with_send_window
from crm_automation.offline.simulator_summary import Summary, format_entry, format_text
from crm_automation.setup.custom_fields import SCORED_DOCTYPES, score_fields

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples")
ON_SAVE_TRIGGERS = (TRIGGER_NEW, TRIGGER_SAVE, TRIGGER_VALIDATE)
# Past this many problems the file is clearly not what the pack expects: stop and show them.
MAX_PROBLEMS = 100
NOT_SIMULATED = "Not Simulated"


class Problem:
	def __init__(self, where, message):
		self.where = where
		self.message = message

	def __str__(self):
		return f"{self.where}: {self.message}"


class Problems(list):
	"""Problems found so far: at most MAX_PROBLEMS, the last of them saying where reading stopped."""

	def add(self, where, message):
		if len(self) < MAX_PROBLEMS - 1:
			self.append(Problem(where, message))

	@property
	def full(self):
		return len(self) >= MAX_PROBLEMS - 1

	def stop(self, where):
		self.append(Problem(where, f"stopped reading here after {len(self)} problems; fix those first"))


def shipped_meta():
	return dict(_read_shipped_meta())


@functools.cache
def _read_shipped_meta():
	meta = {}
	folder = os.path.join(SAMPLES, "meta")
	for filename in sorted(os.listdir(folder)):
		if filename.endswith(".json"):
			data = read_json_file(os.path.join(folder, filename), "field list")
			meta[data["doctype"]] = data["fields"]
	return meta


def load_meta(extra_paths=()):
	"""Shipped field lists, overridden or extended by files exported from a site; the app's own
	score fields are added to the scored doctypes, as install adds them. A malformed file raises
	InputError naming it."""
	meta = shipped_meta()
	for path in extra_paths:
		data = read_json_file(path, "field list")
		for index, item in enumerate(data if isinstance(data, list) else [data]):
			doctype, fields = _checked_meta_item(path, index, item)
			meta[doctype] = fields
	for doctype in SCORED_DOCTYPES:
		if doctype in meta:
			meta[doctype] = dict(meta[doctype])
			for field in score_fields():
				if kind_of(field["fieldtype"]) != "unsupported":
					meta[doctype].setdefault(
						field["fieldname"], {"fieldtype": field["fieldtype"], "label": field.get("label")}
					)
	return meta


def _checked_meta_item(path, index, item):
	where = f"{os.path.basename(path)}[{index}]"
	shape = (
		'{"doctype": "Lead", "fields": {"fieldname": {"fieldtype": "Data", "label": ..., "options": ...}}}'
	)
	if not isinstance(item, dict) or not isinstance(item.get("doctype"), str) or not item["doctype"]:
		raise InputError(where, f"a field list is {shape}")
	fields = item.get("fields")
	if not isinstance(fields, dict):
		raise InputError(f"{where}.fields", f"must be an object of fields: {shape}")
	for fieldname, field in fields.items():
		if not isinstance(field, dict) or not isinstance(field.get("fieldtype"), str):
			raise InputError(f"{where}.fields.{fieldname[:80]}", 'must be an object with a "fieldtype"')
		options, label = field.get("options"), field.get("label")
		if not (
			options is None
			or isinstance(options, str)
			or (isinstance(options, list) and all(isinstance(o, str) for o in options))
		):
			raise InputError(f"{where}.fields.{fieldname[:80]}.options", "must be text (one option a line)")
		if not (label is None or isinstance(label, str)):
			raise InputError(f"{where}.fields.{fieldname[:80]}.label", "must be text")
	return item["doctype"], fields


def resolve(path_or_name, kind):
	"""A path, or the name of a sample shipped with the package (e.g. lead_management)."""
	if os.path.exists(path_or_name):
		return path_or_name
	if path_or_name and os.sep not in path_or_name and "\0" not in path_or_name:
		for candidate in (f"{path_or_name}.json", f"{path_or_name}.csv", path_or_name):
			shipped = os.path.join(SAMPLES, kind, candidate)
			if os.path.isfile(shipped):
				return shipped
	raise InputError(path_or_name, f"no such file, and no shipped sample {kind}/{path_or_name}")


class SimulationResult:
	__slots__ = ("problems", "sample", "summary")

	def __init__(self, summary, sample, problems):
		self.summary = summary
		self.sample = sample
		self.problems = problems


def run_simulation(
	pack,
	records_path,
	meta=None,
	default_doctype=None,
	now=None,
	show=20,
	details=None,
	progress=None,
	linked=None,
	until=None,
	availability=None,
	payloads=None,
):
	"""Stream the records of ``records_path`` through ``pack``.

	Returns a SimulationResult: the summary (counts only), the first ``show`` records explained in
	full, and the problems (none if all went well). ``details(entry)`` is called with every
	record's full explanation when given (slower: traces and templates for every record);
	``progress(rows, source)`` is called every few thousand rows read. ``linked`` holds the linked
	documents rules read (``customer.territory``): document type → name → values
	(crm_automation.offline.linked_record_files). With ``until`` (a timedelta) the follow-up steps of every rule
	that fires are played from ``now`` to ``now + until`` on a virtual clock, with the record's
	``changes`` as saves, and tallied per step. ``availability`` (offline/availability_files.py)
	says who is away: the explained records' Assign actions then show whom they pick.
	``payloads`` (a file) are played against the Webhook Received rules after the records
	(offline/inbound_webhooks.py), each explained.
	"""
	meta = load_meta() if meta is None else meta
	problems = Problems()
	check = check_pack(pack, meta.get)
	for problem in check.problems:
		problems.add(problem.path, problem.message)
	summary, sample = Summary(), []
	now = now or datetime.datetime.now().replace(microsecond=0)
	if until is not None:
		summary.sequences = SequencePlayer(now, now + until)
	simulation = Simulation(check.compiled, now, summary, linked, availability) if check.ok else None
	if simulation is not None:
		simulation.send_windows = pack_windows(pack)
		simulation.schedules = ScheduleClock(now, until)
	source = RowSource(records_path)
	reader = RecordReader(meta, problems.add, default_doctype)
	rows = 0
	try:
		for where, row in source:
			rows += 1
			if progress is not None and rows % 4096 == 0:
				progress(rows, source)
			record = reader.read(where, row)
			if problems:
				if problems.full:
					problems.stop(where)
					break
				continue
			if simulation is None:
				continue
			explain = len(sample) < show or details is not None
			entry = simulation.run(record, explain)
			if entry is not None:
				if len(sample) < show:
					sample.append(entry)
				if details is not None:
					details(entry)
	except InputError as error:
		problems.add(error.where, error.message)
	if payloads and simulation is not None and not problems:
		played = play_payloads(
			check.compiled,
			payloads,
			records_path,
			meta,
			problems.add,
			_describe_intent,
			default_doctype,
			summary,
		)
		for entry in played:
			if len(sample) < show:
				sample.append(entry)
			if details is not None:
				details(entry)
	if progress is not None:
		progress(rows, source, done=True)
	return SimulationResult(summary, sample, problems)


def simulate(pack, records_path, meta_paths=(), default_doctype=None, now=None, linked=None):
	"""Returns (report, problems): every record explained in full, for small files and tests. An
	invalid pack or record file yields problems and no report."""
	try:
		meta = load_meta(meta_paths)
	except InputError as error:
		return None, [Problem(error.where, error.message)]
	entries = []
	result = run_simulation(
		pack, records_path, meta, default_doctype, now, show=0, details=entries.append, linked=linked
	)
	if result.problems:
		return None, list(result.problems)
	return entries, []


class Simulation:
	"""The compiled pack, by doctype; ``run`` decides one record."""

	def __init__(self, compiled, now, summary, linked=None, availability=None):
		self.now = now
		# Schedule rules run at their moments on the virtual clock (offline/schedules.py).
		self.schedules = ScheduleClock(now)
		self.summary = summary
		self.linked = linked or {}
		self.send_windows = {}  # rule name → its sending window (offline/send_windows.py)
		self.read = linked_reader(self.linked)
		self.assignments = AssignmentPlayer(availability) if availability is not None else None
		self.score_rules, self.workflow_rules, self.policies = {}, {}, {}
		for _source, rule in compiled["lead_score_rules"]:
			self.score_rules.setdefault(rule.document_type, []).append(rule)
		for source, rule in compiled["workflow_rules"]:
			if source.get("enabled") != 0 and rule.trigger == TRIGGER_WEBHOOK:
				summary.know_rule(rule)  # decided on payloads only (play_payloads)
			elif source.get("enabled") != 0:
				# Rules decided on the record as it is unless it carries before values.
				as_is = rule.trigger in ON_SAVE_TRIGGERS or rule.trigger in (TRIGGER_MANUAL, TRIGGER_TIME)
				self.workflow_rules.setdefault(rule.document_type, []).append((rule, as_is))
				summary.know_rule(rule)
		for _source, policy in compiled["escalation_policies"]:
			self.policies.setdefault(policy.document_type, []).append(policy)
		# The linked values each doctype's rules read, fetched once per record (engine/linked.py).
		self.linked_paths = {
			doctype: linked_paths_of(rule for rule, _as_is in rules)
			for doctype, rules in self.workflow_rules.items()
		}

	def _with_linked(self, doctype, values):
		paths = self.linked_paths.get(doctype)
		return with_linked(values, paths, self.linked) if paths else values

	def run(self, record, explain):
		"""Count the record in the summary; with ``explain``, also return its full explanation."""
		if explain:
			return self._explain(record)
		# The hot path of a million records: no trace, no rendering, one counter per rule.
		doctype, values, before = record["doctype"], record["values"], record["before"]
		summary = self.summary
		summary.count_record(doctype)
		for rule in self.score_rules.get(doctype, ()):
			result = rule.score(values, _activity_counts(rule, record["activities"]), record["days_idle"])
			values["crm_score"], values["crm_score_grade"] = result.score, result.grade
			summary.count_score(rule, result)
		counts = summary.rule_counts
		values = self._with_linked(doctype, values)
		for rule, as_is in self.workflow_rules.get(doctype, ()):
			if rule.trigger == TRIGGER_SCHEDULE:
				self.schedules.count(rule, values, record["changes"], counts)
				continue
			if as_is and before is None:
				evaluation = rule.evaluate(values, None)
			else:
				evaluation = _evaluate(rule, values, before, False, record["replies"])[0]
			if evaluation is None:
				key = (rule.name, None, None, None)
			else:
				key = (rule.name, evaluation.outcome, evaluation.branch, evaluation.reason)
				if summary.sequences is not None and rule.sequence is not None and evaluation.fired:
					summary.sequences.play(rule, values, record["changes"], record["replies"])
			counts[key] = counts.get(key, 0) + 1
		for policy in self.policies.get(doctype, ()):
			summary.count_policy(policy, _policy_outcome(policy, values, self.now)[0])
		return None

	def _explain(self, record):
		doctype, values = record["doctype"], record["values"]
		summary = self.summary
		summary.count_record(doctype)
		entry = {
			"record": record["where"],
			"doctype": doctype,
			"name": values.get("name"),
			"rules": [],
			"scores": [],
			"escalations": [],
		}
		for rule in self.score_rules.get(doctype, ()):
			result = rule.score(values, _activity_counts(rule, record["activities"]), record["days_idle"])
			values["crm_score"], values["crm_score_grade"] = result.score, result.grade
			summary.count_score(rule, result)
			entry["scores"].append({"rule": rule.name, **result.as_dict(), "explained": result.explain()})
		linked_values = self._with_linked(doctype, values)
		for rule, _as_is in self.workflow_rules.get(doctype, ()):
			if rule.trigger == TRIGGER_SCHEDULE:
				entry["rules"].append(
					self.schedules.explain(
						rule,
						linked_values,
						record["changes"],
						summary,
						lambda evaluation, rule=rule: _describe_outcome(
							rule, evaluation, {}, values, self.read
						),
					)
				)
				continue
			evaluation, extra = _evaluate(rule, linked_values, record["before"], True, record["replies"])
			summary.count_rule(rule, evaluation)
			# The rule's templates share one run's budget, as on a site (runner.run_rule).
			with run_budget():
				outcome = _describe_outcome(rule, evaluation, extra, values, self.read)
			with_send_window(outcome, self.send_windows.get(rule.name), self.now)
			if self.assignments is not None and evaluation is not None and evaluation.fired:
				self.assignments.annotate(
					rule, evaluation.intents, outcome["actions"], linked_values, self.now
				)
			if (
				summary.sequences is not None
				and rule.sequence is not None
				and evaluation
				and evaluation.fired
			):
				outcome["follow_up"] = _follow_up(
					summary.sequences.play(rule, linked_values, record["changes"], record["replies"])
				)
			entry["rules"].append(outcome)
		for policy in self.policies.get(doctype, ()):
			outcome = _policy_outcome(policy, values, self.now)
			summary.count_policy(policy, outcome[0])
			entry["escalations"].append(_describe_policy(policy, outcome, values))
		return entry


def _follow_up(run):
	"""One record's way through a rule's follow-up steps on the virtual clock, in words."""
	lines = [
		f"{moment:%Y-%m-%d %H:%M} step {index}: {status}" + (f" ({detail})" if detail else "")
		for moment, index, status, detail in run.events
	]
	if run.pending_step:
		lines.append(f"{run.pending_due:%Y-%m-%d %H:%M} step {run.pending_step}: still waiting")
	return lines


def _activity_counts(rule, activities):
	return {
		activity.key: activities.get(activity.activity_type or activity.source, 0)
		for activity in rule.activities
	}


def _evaluate(rule, values, before, explain, replies=()):
	"""The rule's Evaluation for this record as the simulator sees it (None: cannot be simulated)
	and what to say about how it was simulated."""
	if rule.trigger == TRIGGER_COMMUNICATION:
		return reply_evaluation(rule, values, replies, explain)  # on the record's replies
	if before is not None and rule.trigger not in (TRIGGER_TIME, TRIGGER_SCORE_BAND):
		return rule.evaluate(values, before, explain=explain), {
			"note": "as a change from the record's before values"
		}
	if rule.trigger == TRIGGER_SCORE_BAND:
		before = {**values, "crm_score_grade": None}
		return rule.evaluate(values, before, explain=explain), {
			"note": "as if the record just reached its grade"
		}
	if rule.trigger in ON_SAVE_TRIGGERS or rule.trigger == TRIGGER_MANUAL:
		return rule.evaluate(values, None, explain=explain), {}
	if rule.trigger == TRIGGER_TIME:
		extra = {}
		moment = values.get(rule.time_field)
		if explain and moment is not None:
			if not isinstance(moment, datetime.datetime):
				moment = datetime.datetime.combine(moment, datetime.time())
			extra["fires_at"] = (moment + datetime.timedelta(seconds=rule.time_offset_seconds)).isoformat(
				sep=" "
			)
		return rule.evaluate(values, None, explain=explain), extra
	reason = f"{rule.trigger} needs the record's before values (a before object or before:<field> columns)"
	return None, {"reason": reason}


def _describe_outcome(rule, evaluation, extra, values, read=None):
	outcome = {"rule": rule.name, "trigger": rule.trigger}
	if evaluation is None:
		outcome.update(outcome=NOT_SIMULATED, **extra)
		return outcome
	outcome.update(extra)
	outcome.update(
		outcome=evaluation.outcome,
		reason=evaluation.reason,
		branch=evaluation.branch,
		actions=[_describe_intent(intent, values, read) for intent in evaluation.intents],
		trace=evaluation.trace,
	)
	return outcome


def _render(text, values, read=None):
	try:
		return render_template(text, values, read=read)
	except TemplateError as error:
		return f"{text}  [template error: {error}]"


def _describe_intent(intent, values, read=None):
	shown = {
		key: value
		for key, value in intent.items()
		if key not in ("row", "row_id", "row_doctype") and value not in (None, "", [], False, {})
	}
	for key in ("subject", "message", "description", "value"):
		if isinstance(shown.get(key), str):
			shown[key] = _render(shown[key], values, read)
	return shown


def _policy_outcome(policy, values, now):
	"""(outcome, reason, clock start) of a policy for a record, without its schedule."""
	if not policy.applies(values):
		return "Not Watched", "the conditions do not hold", None
	if policy.stopped(values):
		return "Stopped", "the stop condition holds", None
	start = policy.clock_start_for(values, now)
	if start is None:
		return "No Clock", "the clock's start field is empty", None
	return ("Paused" if policy.paused(values) else "Running"), None, start


def _describe_policy(policy, outcome, values):
	status, reason, start = outcome
	if start is None:
		return {"policy": policy.name, "outcome": status, "reason": reason}
	if not isinstance(start, datetime.datetime):
		start = datetime.datetime.combine(start, datetime.time())
	schedule = []
	for level in policy.levels:
		if level.warn_before:
			schedule.append(
				{
					"at": policy.calendar.deadline(start, level.after - level.warn_before).isoformat(sep=" "),
					"what": f"Warning before level {level.number}",
				}
			)
		schedule.append(
			{
				"at": policy.calendar.deadline(start, level.after).isoformat(sep=" "),
				"what": level.label(),
				"actions": [i["type"] for i in level.intents],
			}
		)
	return {
		"policy": policy.name,
		"outcome": status,
		"clock_started": start.isoformat(sep=" "),
		"schedule": schedule,
	}
