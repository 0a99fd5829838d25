"""Follow-up steps checked and compiled once, when their Workflow Rule is saved or loaded: each
problem names the step and the field (``steps[2].wait_amount``), and each step's actions are
attached to it. What the compiled steps then do is in sequences.py. Pure Python."""

from .business_hours import WEEKDAYS, compile_calendar
from .conditions import compile_condition, is_empty_condition
from .errors import ProblemCollector, RuleError
from .fieldtypes import describe_value
from .i18n import _
from .sequences import (
	DEFAULT_AT_TIME,
	DIRECTIONS,
	TIMED_OUT_WAITS,
	UNITS,
	WAIT_BUSINESS_TIME,
	WAIT_CONDITION,
	WAIT_DATE_FIELD,
	WAIT_DURATION,
	WAIT_REPLY,
	WAIT_TYPES,
	WAIT_WEEKDAY,
	CompiledSequence,
	CompiledStep,
)
from .step_clock import as_time

WEEKDAY_NUMBERS = {name.lower(): number for number, name in enumerate(WEEKDAYS)}


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
	number = WEEKDAY_NUMBERS.get(weekday.strip().lower()) if isinstance(weekday, str) else None
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
