"""Escalation Policies: which documents, when the clock starts and stops, the business calendar,
and levels that fire after so much clock time (with an optional warning, optionally repeating).

``compile_policy`` checks a policy once; ``CompiledPolicy.next_due`` says, from a document's clock
state, what fires next and when. Level actions are Workflow Rule actions (notify, email, assign,
set value, ToDo, comment), compiled by the same checks and carried out by the same layer.
"""

import datetime

from . import workflow as wf
from .business_hours import compile_calendar
from .conditions import compile_condition, with_standard_fields
from .errors import ProblemCollector, RuleError
from .fieldtypes import describe_value
from .i18n import _
from .workflow import split_list

CLOCK_CREATION = "Creation"
CLOCK_FIELD = "Date Field"
CLOCK_CONDITION = "When Conditions Became True"
CLOCK_RESPONSE_BY = "SLA Response By"
CLOCK_RESOLUTION_BY = "SLA Resolution By"
CLOCK_STARTS = (CLOCK_CREATION, CLOCK_FIELD, CLOCK_CONDITION, CLOCK_RESPONSE_BY, CLOCK_RESOLUTION_BY)
SLA_FIELDS = {CLOCK_RESPONSE_BY: "response_by", CLOCK_RESOLUTION_BY: "resolution_by"}
REOPEN_RESTART = "Restart the Clock"
REOPEN_CONTINUE = "Continue Where It Stopped"
REOPEN_MODES = (REOPEN_RESTART, REOPEN_CONTINUE)
UNITS = {"Minutes": 60, "Hours": 3600, "Days": 86400}

NOTIFY = "System Notification"
EMAIL = "Send Email"
REASSIGN = "Reassign"
SET_VALUE = "Set Value"
TODO = "Create ToDo"
COMMENT = "Add Comment"
SMS = wf.SEND_SMS
LEVEL_ACTIONS = (NOTIFY, EMAIL, REASSIGN, SET_VALUE, TODO, COMMENT, SMS)
REASSIGN_TO = ("User", "Role (Round Robin)", "User Group (Round Robin)")


class Level:
	__slots__ = ("after", "intents", "number", "repeat_every", "warn_before", "warning_intents")

	def label(self):
		return f"Level {self.number}"


class Due:
	"""What fires next for one document: a level, or the warning before it."""

	__slots__ = ("at", "is_warning", "level", "repeat")

	def __init__(self, at, level, is_warning=False, repeat=0):
		self.at = at
		self.level = level
		self.is_warning = is_warning
		self.repeat = repeat

	@property
	def key(self):
		"""Each (level, warning or not, repetition) fires once: the occurrence key."""
		kind = "warning" if self.is_warning else "level"
		return f"{kind}:{self.level.number}:{self.repeat}"

	def describe(self):
		if self.is_warning:
			return _("Warning before level {0}").format(self.level.number)
		if self.repeat:
			return _("Level {0} (repeat {1})").format(self.level.number, self.repeat)
		return _("Level {0}").format(self.level.number)


class CompiledPolicy:
	def __init__(self, source):
		self.source = source
		self.name = source.get("name")
		self.document_type = source.get("document_type")
		self.clock_start = source.get("clock_start") or CLOCK_CREATION
		self.start_field = source.get("start_field")
		self.on_reopen = source.get("on_reopen") or REOPEN_RESTART
		self.pause_field = source.get("pause_field")
		self.pause_values = frozenset(split_list(source.get("pause_values")))
		self.condition = None
		self.stop_condition = None
		self.calendar = None
		self.levels = []

	def applies(self, doc):
		return self.condition.matches(doc, None)

	def stopped(self, doc):
		return bool(self.stop_condition and self.stop_condition.root and self.stop_condition.matches(doc, None))

	def paused(self, doc):
		return bool(self.pause_field and self.pause_values and str(doc.get(self.pause_field) or "") in self.pause_values)

	def clock_start_for(self, doc, now):
		if self.clock_start == CLOCK_CREATION:
			return doc.get("creation") or now
		if self.clock_start == CLOCK_CONDITION:
			return now
		field = SLA_FIELDS.get(self.clock_start) or self.start_field
		return doc.get(field)

	def next_due(self, start, paused_seconds, fired_level, warned_level, repeats):
		"""The next thing to fire for a clock that started at ``start`` and was paused for
		``paused_seconds`` of working time, having fired up to ``fired_level`` (0: none), warned up
		to ``warned_level`` and repeated the last level ``repeats`` times. None when nothing is left."""
		paused = datetime.timedelta(seconds=paused_seconds or 0)
		upcoming = [level for level in self.levels if level.number > fired_level]
		if upcoming:
			level = upcoming[0]
			if level.warn_before and warned_level < level.number:
				return Due(self.calendar.deadline(start, level.after - level.warn_before + paused), level, True)
			return Due(self.calendar.deadline(start, level.after + paused), level)
		last = next((level for level in self.levels if level.number == fired_level), None)
		if last and last.repeat_every:
			clock = last.after + last.repeat_every * (repeats + 1) + paused
			return Due(self.calendar.deadline(start, clock), last, repeat=repeats + 1)
		return None


def compile_policy(policy, fields, holidays=None):
	"""Compile an Escalation Policy (plain dict); ``holidays`` are the dates of its Holiday List.
	Raises RuleError listing every problem with its path."""
	fields = with_standard_fields(fields)
	problems = ProblemCollector()
	compiled = CompiledPolicy(policy)
	compiled.condition = _condition(policy.get("conditions"), fields, "conditions", problems)
	compiled.stop_condition = _condition(policy.get("stop_conditions"), fields, "stop_conditions", problems)
	_check_clock(compiled, policy, fields, problems)
	_compile_calendar(compiled, policy, holidays, problems)
	_compile_levels(compiled, policy, fields, problems)
	problems.raise_if_any()
	return compiled


def _condition(tree, fields, path, problems):
	try:
		return compile_condition(tree, fields, path)
	except RuleError as error:
		problems.extend(error)
		return None


def _check_clock(compiled, policy, fields, problems):
	if compiled.clock_start not in CLOCK_STARTS:
		problems.add("clock_start", _("unknown clock start {0}").format(describe_value(compiled.clock_start)))
		return
	field = SLA_FIELDS.get(compiled.clock_start) or (compiled.start_field if compiled.clock_start == CLOCK_FIELD else None)
	if field and (field not in fields or fields[field]["fieldtype"] not in ("Date", "Datetime")):
		problems.add(
			"start_field",
			_("the clock needs a Date or Datetime field; {0} is not one of {1}").format(describe_value(field), describe_value(policy.get('document_type'))),
			field,
		)
	if compiled.on_reopen not in REOPEN_MODES:
		problems.add("on_reopen", _("unknown choice {0}").format(describe_value(compiled.on_reopen)))
	if compiled.pause_field and compiled.pause_field not in fields:
		problems.add("pause_field", _("{0} is not a field of the document").format(describe_value(compiled.pause_field)), compiled.pause_field)


def _compile_calendar(compiled, policy, holidays, problems):
	if (policy.get("calendar_mode") or "24x7") == "24x7":
		compiled.calendar = compile_calendar({"mode": "24x7"})
		return
	if policy.get("holiday_list") and holidays is None:
		problems.add("holiday_list", _("Holiday List {0} does not exist").format(describe_value(policy['holiday_list'])))
	spec = {
		"mode": "Working Hours",
		"hours": [
			{"weekday": row.get("weekday"), "start": row.get("start_time"), "end": row.get("end_time")}
			for row in policy.get("working_hours") or []
		],
		"holidays": list(holidays or []),
	}
	try:
		compiled.calendar = compile_calendar(spec)
	except RuleError as error:
		for problem in error.problems:
			path = (problem.path or "").replace("calendar.hours", "working_hours").replace("calendar.holidays", "holiday_list")
			problems.add(path.replace("calendar", "working_hours"), problem.message, problem.field, problem.value)


def _duration(row, fieldname, path, problems, required):
	value = row.get(fieldname)
	if value in (None, "", 0) and not required:
		return None
	unit = row.get("unit") or "Hours"
	if unit not in UNITS:
		problems.add(f"{path}.unit", _("unknown unit {0} (use Minutes, Hours or Days)").format(describe_value(unit)))
		return None
	if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
		problems.add(f"{path}.{fieldname}", _("{0} is not a duration above zero").format(describe_value(value)), value=value)
		return None
	return datetime.timedelta(seconds=value * UNITS[unit])


def _level_intents(row, path, fields, problems):
	kind = row.get("action_type")
	if kind not in LEVEL_ACTIONS:
		problems.add(f"{path}.action_type", _("unknown action {0} (use one of: {1})").format(describe_value(kind), ', '.join(LEVEL_ACTIONS)))
		return []
	if kind == REASSIGN:
		target = row.get("reassign_to") or "User"
		action = {"action_type": wf.ASSIGN, "name": row.get("name")}
		if target == "User":
			action.update(assign_to_type=wf.ASSIGN_TO_USERS, to_users=row.get("to_users"))
		elif target == "Role (Round Robin)":
			action.update(assign_to_type=wf.ASSIGN_TO_ROLE, to_role=row.get("to_role"))
		elif target == "User Group (Round Robin)":
			action.update(assign_to_type=wf.ASSIGN_TO_GROUP, user_group=row.get("user_group"))
		else:
			problems.add(f"{path}.reassign_to", _("unknown choice {0}").format(describe_value(target)))
			return []
		actions = [{"action_type": wf.UNASSIGN}, action]
	elif kind == SMS:
		# A level names its recipients and text in the level's own fields.
		actions = [
			{
				**row,
				"action_type": kind,
				"sms_to_users": row.get("to_users"),
				"sms_to_role": row.get("to_role"),
				"sms_message": row.get("message"),
			}
		]
	else:
		actions = [{**row, "action_type": kind}]
	pseudo_rule = {"trigger": wf.TRIGGER_SAVE, "actions": actions}
	compiled = wf.CompiledWorkflowRule(pseudo_rule)
	level_problems = ProblemCollector()
	wf._compile_actions(compiled, pseudo_rule, fields, None, level_problems)
	for problem in level_problems.problems:
		problems.add(path + (problem.path or "").split("]", 1)[-1], problem.message, problem.field, problem.value)
	intents = list(compiled.actions_by_branch.get("", ()))
	for intent in intents:
		intent["to_managers"] = bool(row.get("to_managers"))
	return intents


def _compile_levels(compiled, policy, fields, problems):
	rows = policy.get("levels") or []
	if not rows:
		problems.add("levels", _("the policy has no levels"))
		return
	by_number = {}
	for i, row in enumerate(rows):
		path = f"levels[{i}]"
		number = row.get("level")
		if isinstance(number, bool) or not isinstance(number, int) or number < 1:
			problems.add(f"{path}.level", _("{0} is not a level number (1, 2, 3...)").format(describe_value(number)))
			continue
		after = _duration(row, "after", path, problems, required=True)
		warn = _duration(row, "warn_before", path, problems, required=False)
		repeat = _duration(row, "repeat_every", path, problems, required=False)
		if after and warn and warn >= after:
			problems.add(f"{path}.warn_before", _("the warning must come before the level, after the clock starts"))
		level = by_number.get(number)
		if level is None:
			level = by_number[number] = Level()
			level.number, level.after, level.warn_before, level.repeat_every = number, after, warn, repeat
			level.intents = []
		elif after and level.after and after != level.after:
			problems.add(f"{path}.after", _("level {0} is given two different times").format(number))
		level.intents.extend(_level_intents(row, path, fields, problems))
	previous = None
	for number in sorted(by_number):
		level = by_number[number]
		if previous and level.after and previous.after and level.after <= previous.after:
			problems.add(
				"levels",
				_("levels out of order: level {0} comes after {1} but level {2} after {3}").format(level.number, level.after, previous.number, previous.after),
			)
		previous = level
	if sorted(by_number) != list(range(1, len(by_number) + 1)):
		problems.add("levels", _("levels must be numbered 1, 2, 3... without gaps, not {0}").format(sorted(by_number)))
	compiled.levels = [by_number[number] for number in sorted(by_number)]
