"""Schedule triggers: when a Workflow Rule with the Schedule trigger runs over its documents.

A schedule is compiled once from the rule's fields (a plain dict)::

        {"schedule_frequency": "Weekly", "schedule_weekday": "Monday", "schedule_time": "09:00"}
        {"schedule_frequency": "Every N Minutes", "schedule_interval": 15}
        {"schedule_frequency": "Monthly", "schedule_day_of_month": 31, "schedule_time": "18:00"}

and, when the rule names an Escalation Policy in ``schedule_calendar``, that policy's calendar
(engine/business_hours.py): moments on a day that is not one of its working days, or a holiday,
are passed over.

Moments are naive local datetimes in the site's time zone, as Frappe keeps them; converting is the
caller's job (so a daylight-saving change moves nothing: 09:00 stays 09:00 on the wall clock).

* Every N Minutes / Every N Hours: the moments N minutes (hours) apart, counted from 2000-01-01
  00:00, so every 15 minutes is :00, :15, :30, :45 and every 2 hours is 00:00, 02:00, ….
* Daily / Weekly / Monthly: once that day at the time; a monthly day past the month's end (31 in
  April) is the month's last day.

Catching up: a rule that should have run at several moments while the scheduler was down runs once,
for the latest of them (``due_moment``), not once per moment missed.
"""

import calendar as _month_calendar
import datetime

from .business_hours import WEEKDAYS, compile_calendar
from .business_hours import _parse_time as parse_time_of_day
from .errors import ProblemCollector, RuleError
from .fieldtypes import describe_value
from .i18n import _

EVERY_MINUTES = "Every N Minutes"
EVERY_HOURS = "Every N Hours"
DAILY = "Daily"
WEEKLY = "Weekly"
MONTHLY = "Monthly"
FREQUENCIES = (EVERY_MINUTES, EVERY_HOURS, DAILY, WEEKLY, MONTHLY)
PERIODIC = {EVERY_MINUTES: datetime.timedelta(minutes=1), EVERY_HOURS: datetime.timedelta(hours=1)}

# The fields a schedule is made of: they travel in packs; the last and next moments do not.
SCHEDULE_FIELDS = (
	"schedule_frequency",
	"schedule_interval",
	"schedule_weekday",
	"schedule_day_of_month",
	"schedule_time",
	"schedule_calendar",
)
MOMENT_FIELDS = ("schedule_last_moment", "schedule_next_moment")

_EPOCH = datetime.datetime(2000, 1, 1)
_DAY = datetime.timedelta(days=1)
_SMALLEST_STEP = datetime.timedelta(microseconds=1)
# A calendar whose holidays cover every working day would make the search endless.
_SEARCH_DAYS = 3660


class Schedule:
	"""A compiled schedule; build it with ``compile_schedule``."""

	def __init__(
		self,
		frequency,
		interval=1,
		weekday=None,
		day_of_month=None,
		time=None,
		calendar=None,
		calendar_name=None,
	):
		self.frequency = frequency
		self.interval = interval
		self.weekday = weekday
		self.day_of_month = day_of_month
		self.time = time or datetime.timedelta(0)
		self.calendar = calendar
		self.calendar_name = calendar_name
		self.step = PERIODIC[frequency] * interval if frequency in PERIODIC else None

	def __repr__(self):
		return f"Schedule({describe_schedule(self)})"

	def next_moment(self, after):
		"""The first moment strictly after ``after``; None when the calendar has no working day left."""
		_require_naive(after)
		if self.step:
			moment = _EPOCH + ((after - _EPOCH) // self.step + 1) * self.step
			for _attempt in range(_SEARCH_DAYS):
				if self._working_day(moment.date()):
					return moment
				moment = self._first_periodic_from(_midnight(moment.date() + _DAY))
			return None
		day = after.date()
		if _midnight(day) + self.time <= after:
			day += _DAY
		for _attempt in range(_SEARCH_DAYS):
			if self._runs_on(day):
				return _midnight(day) + self.time
			day += _DAY
		return None

	def latest_moment(self, after, until):
		"""The latest moment in (after, until], or None when there is none."""
		_require_naive(after)
		_require_naive(until)
		if until <= after:
			return None
		if self.step:
			moment = _EPOCH + ((until - _EPOCH) // self.step) * self.step
			while moment > after:
				if self._working_day(moment.date()):
					return moment
				before_that_day = _midnight(moment.date()) - _SMALLEST_STEP
				moment = _EPOCH + ((before_that_day - _EPOCH) // self.step) * self.step
			return None
		day = until.date()
		if _midnight(day) + self.time > until:
			day -= _DAY
		while _midnight(day) + self.time > after:
			if self._runs_on(day):
				return _midnight(day) + self.time
			day -= _DAY
		return None

	def moments_between(self, after, until):
		"""Every moment in (after, until], earliest first."""
		moment = self.next_moment(after)
		while moment is not None and moment <= until:
			yield moment
			moment = self.next_moment(moment)

	def _first_periodic_from(self, start):
		return _EPOCH + -((_EPOCH - start) // self.step) * self.step

	def _working_day(self, day):
		return self.calendar is None or self.calendar.is_working_day(day)

	def _runs_on(self, day):
		if self.frequency == WEEKLY and day.weekday() != self.weekday:
			return False
		if self.frequency == MONTHLY:
			last = _month_calendar.monthrange(day.year, day.month)[1]
			if day.day != min(self.day_of_month, last):
				return False
		return self._working_day(day)


def due_moment(schedule, next_moment, now):
	"""What a scheduler finding the rule at ``now`` runs: ``(moment, new next moment)``.

	``next_moment`` is the first moment not yet run (kept on the rule). Nothing is due before it:
	``(None, next_moment)``. After downtime every moment from it up to now was missed, and only the
	latest runs, once; the next is the first after now."""
	if next_moment is None:
		return None, schedule.next_moment(now)
	if next_moment > now:
		return None, next_moment
	moment = schedule.latest_moment(next_moment - _SMALLEST_STEP, now)
	return moment, schedule.next_moment(now)


def compile_schedule(rule, calendar_spec=None):
	"""Validate the schedule fields of a rule (a dict) and build a ``Schedule``; raises ``RuleError``
	naming each field that is wrong. ``calendar_spec`` is the business_hours spec of the Escalation
	Policy the rule names in schedule_calendar (None when that policy does not exist)."""
	problems = ProblemCollector()
	frequency = rule.get("schedule_frequency") or DAILY
	if frequency not in FREQUENCIES:
		problems.add(
			"schedule_frequency",
			_("{0} is not a way to repeat (use one of: {1})").format(
				describe_value(frequency), ", ".join(FREQUENCIES)
			),
			value=frequency,
		)
		problems.raise_if_any()
	interval, weekday, day_of_month, time = 1, None, None, None
	if frequency in PERIODIC:
		interval = _whole_number(rule.get("schedule_interval"), 1)
		if interval is None or interval < 1:
			problems.add(
				"schedule_interval",
				_("{0} is not a number of minutes or hours (1 or more)").format(
					describe_value(rule.get("schedule_interval"))
				),
				value=rule.get("schedule_interval"),
			)
	else:
		time = _time_of_day(rule.get("schedule_time"), problems)
	if frequency == WEEKLY:
		weekday = _weekday(rule.get("schedule_weekday"), problems)
	if frequency == MONTHLY:
		day_of_month = _whole_number(rule.get("schedule_day_of_month"), None)
		if day_of_month is None or not 1 <= day_of_month <= 31:
			problems.add(
				"schedule_day_of_month",
				_("{0} is not a day of the month (1 to 31)").format(
					describe_value(rule.get("schedule_day_of_month"))
				),
				value=rule.get("schedule_day_of_month"),
			)
	calendar = _calendar(rule.get("schedule_calendar"), calendar_spec, problems)
	problems.raise_if_any()
	return Schedule(
		frequency, interval, weekday, day_of_month, time, calendar, rule.get("schedule_calendar") or None
	)


def compile_pack_schedule(rule, calendars):
	"""The schedule of a rule in a pack, against the calendars of the pack's Escalation Policies. A
	policy the pack does not carry may be on the site: the schedule is then read without working days
	here (the site's save checks the policy exists)."""
	name = rule.get("schedule_calendar")
	if name and name not in calendars:
		schedule = compile_schedule({**rule, "schedule_calendar": None})
		schedule.calendar_name = name
		return schedule
	return compile_schedule(rule, calendars.get(name) if name else None)


def days_only_spec(spec):
	"""A policy's calendar as a schedule reads it: which days are working days. A 24x7 policy works
	every day; its Holiday List (if any) still takes days off."""
	if (spec or {}).get("mode") != "24x7":
		return spec
	return {
		"mode": "Working Hours",
		"hours": [{"weekday": day, "start": "00:00", "end": "24:00"} for day in WEEKDAYS],
		"holidays": list(spec.get("holidays") or []),
	}


def describe_schedule(schedule_or_rule, calendar_name=None):
	"""The schedule in words: "Every Monday at 09:00 (working days of Support Hours)". Takes a compiled
	Schedule or a rule's fields (a dict, described as far as they make sense)."""
	if isinstance(schedule_or_rule, Schedule):
		s = schedule_or_rule
		frequency, interval, weekday, day, time = s.frequency, s.interval, s.weekday, s.day_of_month, s.time
		calendar_name = calendar_name or s.calendar_name
	else:
		rule = schedule_or_rule
		frequency = rule.get("schedule_frequency") or DAILY
		interval = _whole_number(rule.get("schedule_interval"), 1) or 1
		weekday = _WEEKDAY_NUMBERS.get(str(rule.get("schedule_weekday") or "").strip().lower())
		day = _whole_number(rule.get("schedule_day_of_month"), 1) or 1
		time = parse_time_of_day(rule.get("schedule_time") or "09:00")
		calendar_name = calendar_name or rule.get("schedule_calendar")
	at = _clock(time)
	if frequency == EVERY_MINUTES:
		text = _("Every minute") if interval == 1 else _("Every {0} minutes").format(interval)
	elif frequency == EVERY_HOURS:
		text = _("Every hour") if interval == 1 else _("Every {0} hours").format(interval)
	elif frequency == WEEKLY:
		text = _("Every {0} at {1}").format(_(WEEKDAYS[weekday]) if weekday is not None else "?", at)
	elif frequency == MONTHLY:
		text = _("Monthly on day {0} at {1}").format(day, at)
	else:
		text = _("Every day at {0}").format(at)
	if calendar_name:
		text = _("{0} (working days of {1})").format(text, calendar_name)
	return text


_WEEKDAY_NUMBERS = {name.lower(): number for number, name in enumerate(WEEKDAYS)}


def _weekday(value, problems):
	number = _WEEKDAY_NUMBERS.get(value.strip().lower()) if isinstance(value, str) else None
	if number is None:
		problems.add(
			"schedule_weekday",
			_("{0} is not a weekday (a weekly schedule needs one)").format(describe_value(value)),
			value=value,
		)
	return number


def _time_of_day(value, problems):
	offset = parse_time_of_day(value) if value not in (None, "") else None
	if offset is None or offset >= _DAY:
		problems.add(
			"schedule_time",
			_("{0} is not a time of day (expected HH:MM)").format(describe_value(value)),
			value=value,
		)
		return None
	return offset


def _calendar(name, spec, problems):
	if not name:
		return None
	if spec is None:
		problems.add(
			"schedule_calendar",
			_("Escalation Policy {0} does not exist").format(describe_value(name)),
			value=name,
		)
		return None
	try:
		return compile_calendar(days_only_spec(spec))
	except RuleError as error:
		for problem in error.problems:
			problems.add("schedule_calendar", _("{0}: {1}").format(name, problem.message), value=name)
		return None


def _whole_number(value, default):
	if value in (None, ""):
		return default
	if isinstance(value, bool):
		return None
	if isinstance(value, float) and value.is_integer():
		return int(value)
	if isinstance(value, int):
		return value
	if isinstance(value, str) and value.strip().lstrip("-").isdigit():
		return int(value.strip())
	return None


def _clock(offset):
	minutes = int(offset.total_seconds()) // 60
	return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _midnight(day):
	return datetime.datetime(day.year, day.month, day.day)


def _require_naive(value):
	if not isinstance(value, datetime.datetime):
		raise TypeError(f"a moment must be a datetime.datetime, got {type(value).__name__}")
	if value.tzinfo is not None:
		# not user-facing: the caller's mistake (moments are naive local time)
		raise ValueError("a moment must be naive local time in the site's time zone")
