"""Follow-up sequences: after a Workflow Rule's immediate actions, ordered steps that each wait, then
optionally check a condition, then act.

A step waits for one of:

* ``Duration``: minutes, hours or days of calendar time;
* ``Business Time``: working minutes or hours, or working days, on the calendar of an Escalation
  Policy (working hours + Holiday List, ``business_hours.Calendar``);
* ``Until Date Field``: a Date/Datetime field of the document, some time before or after it;
* ``Until Weekday and Time``: the next such weekday at that time ("next Monday 09:00");
* ``Until Condition``: until a condition holds, at most a duration; actions marked *on timeout*
  run when the wait runs out instead.
* ``Until Reply``: until the document gets a reply (an incoming e-mail linked to it), at most a
  duration; as Until Condition, the reply ends the wait early and the step's actions run, or the
  wait runs out and its *on timeout* actions run. Only a reply received while the step waits counts.

Every wait counts from the moment the previous step was due (the sequence's start for the first),
not from when a worker got round to it, so a late sweep never shifts the rest of the sequence and
the offline simulator agrees with the site. A rule-level *stop when* condition, or the document no
longer matching the rule's conditions, ends the sequence on the save that makes it so.

Pure Python, no Frappe: ``compile_sequence`` checks steps once (problems name the step and field),
``CompiledStep.due_at`` computes due times and ``CompiledStep.decide`` what a due step does;
``sequence_story`` tells the story in words and plays records on a virtual clock.
All moments are naive local time in the site's time zone.
"""

import datetime
import re

from .business_hours import WEEKDAYS, compile_calendar
from .conditions import compile_condition, is_empty_condition
from .describe import describe_condition
from .errors import ProblemCollector, RuleError
from .fieldtypes import describe_value
from .i18n import _

WAIT_DURATION = "Duration"
WAIT_BUSINESS_TIME = "Business Time"
WAIT_DATE_FIELD = "Until Date Field"
WAIT_WEEKDAY = "Until Weekday and Time"
WAIT_CONDITION = "Until Condition"
WAIT_REPLY = "Until Reply"
WAIT_TYPES = (WAIT_DURATION, WAIT_BUSINESS_TIME, WAIT_DATE_FIELD, WAIT_WEEKDAY, WAIT_CONDITION, WAIT_REPLY)
# Waits that end early (on a save meeting a condition, on a reply) and time out at most a duration.
TIMED_OUT_WAITS = (WAIT_CONDITION, WAIT_REPLY)

UNITS = {"Minutes": 60, "Hours": 3600, "Days": 86400}
DIRECTIONS = ("Before", "After")

PATH_MET = "met"
PATH_TIMEOUT = "timeout"

# What a due step turned into; the site's due rows use the same words as their status.
RAN = "Done"
SKIPPED = "Skipped"
EXITED = "Exited"
PENDING = "Pending"

_MIDNIGHT = datetime.time(0, 0)
# When a date or weekday wait names no time: office hours start. The desk's Time field has the
# same default, so a rule behaves the same on the site and in the simulator.
DEFAULT_AT_TIME = datetime.time(9, 0)
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?")
_WEEKDAY_NUMBERS = {name.lower(): number for number, name in enumerate(WEEKDAYS)}
# A working-days wait on a calendar whose holidays cover every working day would never end.
_WORKING_DAY_SEARCH_LIMIT = 3653


class CompiledStep:
	__slots__ = (
		"amount",
		"at_time",
		"calendar",
		"calendar_name",
		"check",
		"check_tree",
		"date_field",
		"direction",
		"index",
		"intents",
		"label",
		"timeout_intents",
		"unit",
		"until",
		"until_tree",
		"wait_type",
		"weekday",
	)

	def __init__(self, index, label, wait_type):
		self.index = index
		self.label = label
		self.wait_type = wait_type
		self.amount = 0
		self.unit = "Hours"
		self.calendar = None
		self.calendar_name = None
		self.date_field = None
		self.direction = "After"
		self.weekday = None
		self.at_time = None
		self.until = None
		self.until_tree = None
		self.check = None
		self.check_tree = None
		self.intents = ()
		self.timeout_intents = ()

	@property
	def duration(self):
		return datetime.timedelta(seconds=self.amount * UNITS[self.unit])

	def due_at(self, anchor, doc):
		"""When this step is due if the previous one was due at ``anchor``; for Until Condition the
		moment the wait times out. None when the document has no value in the date field."""
		if self.wait_type in (WAIT_DURATION, *TIMED_OUT_WAITS):
			return anchor + self.duration
		if self.wait_type == WAIT_BUSINESS_TIME:
			if self.unit == "Days":
				return working_days_later(self.calendar, anchor, int(self.amount))
			return self.calendar.deadline(anchor, self.duration)
		if self.wait_type == WAIT_WEEKDAY:
			return next_weekday_at(anchor, self.weekday, self.at_time)
		moment = as_moment(doc.get(self.date_field), self.at_time)
		if moment is None:
			return None
		offset = self.duration
		return moment - offset if self.direction == "Before" else moment + offset

	def condition_met(self, doc, before=None):
		"""Whether a save (``doc`` now, ``before`` it) ends this step's Until Condition wait."""
		return self.wait_type == WAIT_CONDITION and self.until.matches(doc, before)

	def decide(self, doc, condition_met=False):
		"""What this step does now that it is due: ``(RAN, path, intents)`` (path: "met" or "timeout"
		for an Until Condition step, "" for others) or ``(SKIPPED, reason, ())``.
		``condition_met`` says a save already satisfied an Until Condition wait, or a reply came to
		an Until Reply one (nothing but that flag tells a reply: it is no value of the document)."""
		path = PATH_MET if self.wait_type in TIMED_OUT_WAITS else ""
		intents = self.intents
		if self.wait_type == WAIT_CONDITION and not (condition_met or self.until.matches(doc, None)):
			path, intents = PATH_TIMEOUT, self.timeout_intents
		elif self.wait_type == WAIT_REPLY and not condition_met:
			path, intents = PATH_TIMEOUT, self.timeout_intents
		if self.check and not self.check.matches(doc, None):
			return SKIPPED, _("only if {0}: not met").format(describe_condition(self.check_tree)), ()
		if not intents:
			return SKIPPED, _("nothing to do on this path"), ()
		return RAN, path, [dict(intent) for intent in intents]

	def describe_wait(self, fields=None):
		"""The step row's Summary: "wait 24 hours", "wait until next Monday 09:00"."""
		return _("wait {0}").format(self.describe_span(fields))

	def describe_span(self, fields=None):
		"""The wait without its verb: "24 hours", "until 2 days before End Date 09:00"."""
		amount = _amount_text(self.amount, self.unit, _AMOUNTS)
		if self.wait_type == WAIT_DURATION:
			return amount
		if self.wait_type == WAIT_BUSINESS_TIME:
			working = _amount_text(self.amount, self.unit, _WORKING_AMOUNTS)
			return _("{0} ({1})").format(working, self.calendar_name)
		if self.wait_type == WAIT_WEEKDAY:
			return _("until next {0} {1}").format(_(WEEKDAYS[self.weekday]), _clock(self.at_time))
		if self.wait_type == WAIT_DATE_FIELD:
			label = _field_label(fields, self.date_field)
			if self.amount:
				before = self.direction == "Before"
				label = (_("{0} before {1}") if before else _("{0} after {1}")).format(amount, label)
			if self.at_time:
				return _("until {0} {1}").format(label, _clock(self.at_time))
			return _("until {0}").format(label)
		if self.wait_type == WAIT_REPLY:
			return _("until a reply (at most {0})").format(amount)
		condition = describe_condition(self.until_tree, fields)
		return _("until {0}, at most {1}").format(condition, amount)


class CompiledSequence:
	__slots__ = ("match", "steps", "stop", "stop_on_reply", "stop_tree", "stop_when_unmatched")

	def __init__(self):
		self.steps = []
		self.stop = None
		self.stop_tree = None
		self.match = None
		self.stop_when_unmatched = False
		self.stop_on_reply = False

	def step(self, index):
		"""Steps are numbered from 1; None past the last."""
		return self.steps[index - 1] if 0 < index <= len(self.steps) else None

	def exit_reason(self, doc, before=None):
		"""Why a save ends this document's sequence, or None while it goes on."""
		if self.stop and self.stop.matches(doc, before):
			return _("stop when {0}").format(describe_condition(self.stop_tree))
		if self.stop_when_unmatched and self.match and not self.match.matches(doc, before):
			return _("the document no longer matches the rule's conditions")
		return None

	def reply_exit_reason(self):
		"""Why a reply ends this sequence (Stop When the Document Gets a Reply), or None."""
		return _("the document got a reply") if self.stop_on_reply else None

	def schedule(self, index, anchor, doc):
		"""The next step at or after ``index`` that gets a due time from ``anchor``. A date-field
		wait whose moment is empty or already before the anchor is passed over (a 30-days-before
		reminder for a contract that ends in 10 days is never sent late). Returns
		``(step, due_at, passed)`` with ``passed`` the [(step, reason)] left out, or (None, None,
		passed) when the sequence is over."""
		passed = []
		step = self.step(index)
		while step:
			due = step.due_at(anchor, doc)
			if due is None:
				passed.append((step, _("{0} is empty").format(step.date_field)))
			elif step.wait_type == WAIT_DATE_FIELD and due < anchor:
				passed.append((step, _("{0} had already passed").format(due.strftime("%Y-%m-%d %H:%M"))))
			else:
				return step, due, passed
			step = self.step(step.index + 1)
		return None, None, passed


def compile_sequence(rule, fields, problems, compile_actions):
	"""Compile a rule's ``steps`` (and the actions that name them) into a CompiledSequence, or None
	when the rule has no steps. ``fields`` includes the standard fields. ``compile_actions(actions,
	path_of)`` compiles action rows to intents the way Workflow Rule actions are compiled and
	reports problems at ``path_of(i)``. ``rule["calendars"]`` maps an Escalation Policy's name to
	its calendar spec (see business_hours)."""
	rows = rule.get("steps") or []
	actions = rule.get("actions") or []
	step_actions = [(i, a) for i, a in enumerate(actions) if (a.get("step") or "").strip()]
	if not rows:
		for i, action in step_actions:
			problems.add(
				f"actions[{i}].step",
				_("no step is named {0}").format(describe_value(action["step"])),
				value=action["step"],
			)
		_check_stop_without_steps(rule, problems)
		return None
	if rule.get("trigger") in ("Validate", "Delete"):
		problems.add(
			"steps",
			_("a {0} rule cannot start a sequence: the document may not be there later").format(
				rule["trigger"]
			),
		)
	sequence = CompiledSequence()
	calendars = rule.get("calendars") or {}
	by_label = {}
	for i, row in enumerate(rows):
		step = _compile_step(i, row, fields, calendars, problems)
		if step is None:
			continue
		if step.label in by_label:
			problems.add(
				f"steps[{i}].step_name",
				_("step name {0} is used twice").format(describe_value(step.label)),
				value=step.label,
			)
		by_label[step.label] = step
		sequence.steps.append(step)
	_attach_actions(by_label, step_actions, problems, compile_actions)
	sequence.stop_tree = rule.get("stop_conditions") or None
	if not is_empty_condition(sequence.stop_tree):
		sequence.stop = _condition(sequence.stop_tree, fields, "stop_conditions", problems)
	sequence.stop_when_unmatched = bool(rule.get("stop_when_unmatched"))
	sequence.stop_on_reply = bool(rule.get("stop_on_reply"))
	if sequence.stop_when_unmatched:
		sequence.match = _condition(rule.get("conditions"), fields, "conditions", problems)
	return sequence


def _check_stop_without_steps(rule, problems):
	if not is_empty_condition(rule.get("stop_conditions")) or rule.get("stop_when_unmatched"):
		problems.add("stop_conditions", _("stop conditions end a sequence; add steps or clear them"))
	if rule.get("stop_on_reply"):
		problems.add("stop_on_reply", _("stop conditions end a sequence; add steps or clear them"))


def _condition(tree, fields, path, problems):
	try:
		return compile_condition(tree, fields, path)
	except RuleError as error:
		problems.extend(error)
		return None


def _compile_step(i, row, fields, calendars, problems):
	path = f"steps[{i}]"
	label = (row.get("step_name") or "").strip()
	if not label:
		problems.add(f"{path}.step_name", _("every step needs a name"))
		return None
	wait_type = row.get("wait_type") or WAIT_DURATION
	if wait_type not in WAIT_TYPES:
		problems.add(
			f"{path}.wait_type",
			_("unknown wait {0} (use one of: {1})").format(describe_value(wait_type), ", ".join(WAIT_TYPES)),
		)
		return None
	step = CompiledStep(i + 1, label, wait_type)
	step.unit = row.get("wait_unit") or "Hours"
	if step.unit not in UNITS:
		problems.add(
			f"{path}.wait_unit",
			_("unknown unit {0} (use Minutes, Hours or Days)").format(describe_value(step.unit)),
		)
		step.unit = "Hours"
	amount = row.get("wait_amount") or 0
	needs_amount = wait_type in (WAIT_DURATION, WAIT_BUSINESS_TIME, *TIMED_OUT_WAITS)
	if (
		isinstance(amount, bool)
		or not isinstance(amount, int | float)
		or amount < 0
		or (needs_amount and not amount)
	):
		what = _("a wait above zero") if needs_amount else _("a number (0 or more)")
		problems.add(
			f"{path}.wait_amount", _("{0} is not {1}").format(describe_value(amount), what), value=amount
		)
		amount = 0
	step.amount = amount
	_COMPILE_WAIT[wait_type](step, row, path, fields, calendars, problems)
	if not is_empty_condition(row.get("step_conditions")):
		step.check_tree = row["step_conditions"]
		step.check = _condition(step.check_tree, fields, f"{path}.step_conditions", problems)
	return step


def _compile_no_extra(step, row, path, fields, calendars, problems):
	pass


def _compile_business_time(step, row, path, fields, calendars, problems):
	name = row.get("calendar_policy")
	if not name:
		problems.add(
			f"{path}.calendar_policy",
			_("a business-time wait needs the Escalation Policy whose calendar it uses"),
		)
		return
	spec = calendars.get(name)
	if spec is None:
		problems.add(
			f"{path}.calendar_policy",
			_("no Escalation Policy {0} to take the calendar from").format(describe_value(name)),
			value=name,
		)
		return
	try:
		step.calendar = spec if hasattr(spec, "deadline") else compile_calendar(spec)
	except RuleError as error:
		for problem in error.problems:
			problems.add(
				f"{path}.calendar_policy", _("the calendar of {0}: {1}").format(name, problem), value=name
			)
		return
	if step.unit == "Days" and step.amount != int(step.amount):
		problems.add(
			f"{path}.wait_amount",
			_("{0} is not a whole number of working days").format(format(step.amount, "g")),
			value=step.amount,
		)
	step.calendar_name = name


def _compile_date_field(step, row, path, fields, calendars, problems):
	fieldname = row.get("date_field")
	field = fields.get(fieldname) if fieldname else None
	if not field or field.get("fieldtype") not in ("Date", "Datetime"):
		problems.add(
			f"{path}.date_field",
			_("wait until needs a Date or Datetime field; {0} is not one").format(describe_value(fieldname)),
			fieldname,
		)
	step.date_field = fieldname
	step.direction = row.get("date_direction") or "Before"
	if step.direction not in DIRECTIONS:
		problems.add(
			f"{path}.date_direction", _("{0} is not Before or After").format(describe_value(step.direction))
		)
		step.direction = "Before"
	step.at_time = _time_or_problem(row.get("at_time"), f"{path}.at_time", problems)


def _compile_weekday(step, row, path, fields, calendars, problems):
	weekday = row.get("weekday")
	number = _WEEKDAY_NUMBERS.get(weekday.strip().lower()) if isinstance(weekday, str) else None
	if number is None:
		problems.add(
			f"{path}.weekday", _("{0} is not a weekday").format(describe_value(weekday)), value=weekday
		)
	step.weekday = number if number is not None else 0
	step.at_time = _time_or_problem(row.get("at_time"), f"{path}.at_time", problems)


def _compile_until_condition(step, row, path, fields, calendars, problems):
	tree = row.get("until_conditions")
	if is_empty_condition(tree):
		problems.add(
			f"{path}.until_conditions", _("wait until which condition? (the wait ends when it holds)")
		)
		return
	step.until_tree = tree
	step.until = _condition(tree, fields, f"{path}.until_conditions", problems)


_COMPILE_WAIT = {
	WAIT_DURATION: _compile_no_extra,
	WAIT_BUSINESS_TIME: _compile_business_time,
	WAIT_DATE_FIELD: _compile_date_field,
	WAIT_WEEKDAY: _compile_weekday,
	WAIT_CONDITION: _compile_until_condition,
	WAIT_REPLY: _compile_no_extra,
}


def _attach_actions(by_label, step_actions, problems, compile_actions):
	grouped = {}
	for i, action in step_actions:
		label = action["step"].strip()
		step = by_label.get(label)
		if step is None:
			problems.add(
				f"actions[{i}].step", _("no step is named {0}").format(describe_value(label)), value=label
			)
			continue
		if (action.get("branch") or "").strip():
			problems.add(
				f"actions[{i}].branch", _("an action of a step takes no branch (steps follow every branch)")
			)
		timeout = bool(action.get("on_timeout"))
		if timeout and step.wait_type not in TIMED_OUT_WAITS:
			problems.add(
				f"actions[{i}].on_timeout",
				_("only an Until Condition or Until Reply step times out; {0} waits for {1}").format(
					describe_value(label), step.wait_type
				),
			)
			continue
		grouped.setdefault((label, timeout), []).append((i, action))
	for (label, timeout), rows in grouped.items():
		intents = compile_actions(rows)
		if timeout:
			by_label[label].timeout_intents = tuple(intents)
		else:
			by_label[label].intents = tuple(intents)


def _time_or_problem(value, path, problems):
	if value in (None, ""):
		return DEFAULT_AT_TIME
	moment = as_time(value)
	if moment is None:
		problems.add(path, _("{0} is not a time of day (HH:MM)").format(describe_value(value)), value=value)
	return moment or DEFAULT_AT_TIME


def as_time(value):
	"""A time of day from "HH:MM[:SS]", a time, or the timedelta Frappe returns for a Time field."""
	if isinstance(value, datetime.time):
		return value
	if isinstance(value, datetime.timedelta):
		seconds = int(value.total_seconds())
		if 0 <= seconds < 86400:
			return datetime.time(seconds // 3600, seconds // 60 % 60, seconds % 60)
		return None
	if isinstance(value, str):
		match = _TIME_RE.fullmatch(value.strip())
		if not match:
			return None
		hours, minutes, seconds = (int(part or 0) for part in match.groups())
		if hours > 23 or minutes > 59 or seconds > 59:
			return None
		return datetime.time(hours, minutes, seconds)
	return None


def as_moment(value, at_time=None):
	"""A Date or Datetime value (or its ISO text) as a naive datetime; a date lands at ``at_time``
	(midnight when none). None for an empty or unreadable value."""
	if value in (None, ""):
		return None
	if isinstance(value, datetime.datetime):
		return value.replace(tzinfo=None)
	if isinstance(value, datetime.date):
		return datetime.datetime.combine(value, at_time or _MIDNIGHT)
	if isinstance(value, str):
		text = value.strip()
		try:
			if len(text) == 10:
				return datetime.datetime.combine(datetime.date.fromisoformat(text), at_time or _MIDNIGHT)
			return datetime.datetime.fromisoformat(text).replace(tzinfo=None)
		except ValueError:
			return None
	return None


def next_weekday_at(anchor, weekday, at_time):
	"""The first moment strictly after ``anchor`` that is ``weekday`` (0 = Monday) at ``at_time``."""
	days_ahead = (weekday - anchor.weekday()) % 7
	candidate = datetime.datetime.combine(anchor.date() + datetime.timedelta(days=days_ahead), at_time)
	if candidate <= anchor:
		candidate += datetime.timedelta(days=7)
	return candidate


def working_days_later(calendar, anchor, days):
	"""The same time of day ``days`` working days after the first working moment at or after
	``anchor`` (a working day has working hours and is not a holiday), moved to the next working
	moment; zero days is that first working moment."""
	if calendar.always_open:
		return anchor + datetime.timedelta(days=days)
	# From a weekend or a night the count starts at the next working moment: one working day after
	# Saturday noon is Tuesday 09:00, not Monday.
	anchor = calendar.next_working_moment(anchor)
	day = anchor.date()
	counted = 0
	for _attempt in range(_WORKING_DAY_SEARCH_LIMIT):
		if counted == days:
			break
		day += datetime.timedelta(days=1)
		if calendar.is_working_day(day):
			counted += 1
	else:
		raise ValueError(
			_("no {0} working days within 10 years after {1}").format(days, anchor.strftime("%Y-%m-%d"))
		)
	return calendar.next_working_moment(datetime.datetime.combine(day, anchor.time()))


# "24 hours", "1 working day": whole phrases for the translator ({0} the number).
_AMOUNTS = {
	"Minutes": (lambda: _("{0} minute"), lambda: _("{0} minutes")),
	"Hours": (lambda: _("{0} hour"), lambda: _("{0} hours")),
	"Days": (lambda: _("{0} day"), lambda: _("{0} days")),
}
_WORKING_AMOUNTS = {
	"Minutes": (lambda: _("{0} working minute"), lambda: _("{0} working minutes")),
	"Hours": (lambda: _("{0} working hour"), lambda: _("{0} working hours")),
	"Days": (lambda: _("{0} working day"), lambda: _("{0} working days")),
}


def _amount_text(amount, unit, table):
	one, many = table.get(unit) or table["Hours"]
	return (one if amount == 1 else many)().format(f"{amount:g}")


def _clock(moment):
	return moment.strftime("%H:%M") if moment else ""


def _field_label(fields, fieldname):
	field = (fields or {}).get(fieldname) or {}
	return _(field["label"]) if field.get("label") else fieldname
