"""Business-hours arithmetic for escalation deadlines.

An escalation target such as "respond within 2 business hours" means 2 hours of *working* time,
so the clock runs only inside the calendar's working intervals and stops overnight, over weekends
and on holidays. ERPNext's Service Level Agreement does this inside its doctype; here it is pure
Python so it can be tested on its own and used by the simulator.

A calendar is compiled once from a plain dict::

	{"mode": "24x7"}
	{
		"mode": "Working Hours",
		"hours": [{"weekday": "Monday", "start": "09:00", "end": "17:00"}, ...],
		"holidays": ["2026-12-25", ...],
	}

Rules for the spec:

* Weekdays are English full names (Monday..Sunday, any letter case).
* Times are "HH:MM" or "HH:MM:SS" (one-digit hours as Frappe prints a Time field are fine), or a
  ``datetime.time`` / ``datetime.timedelta`` as Frappe returns them. "24:00" means the end of the day.
* A weekday may have several intervals (a lunch break is two intervals); they must not overlap.
  Intervals touching at one instant (12:00-13:00 and 13:00-17:00) do not overlap.
* Holidays are ISO dates (YYYY-MM-DD) or ``datetime.date`` values; each is a whole day off.
* A 24x7 calendar ignores hours and holidays: every moment is working time.

Every moment is naive local time in the site's time zone; converting is the caller's job.

Boundary semantics: working intervals are half-open, [start, end). A moment equal to an interval's
end is not working time, but a deadline that is used up exactly at an interval's end *is* that end:
with Monday 09:00-17:00, 8 hours from Monday 09:00 is due Monday 17:00, not Tuesday 09:00, because
the work was done by 17:00 and the earliest moment that satisfies the target is the honest answer.
A zero duration is the exception: it means "the next moment someone is at work", so it returns the
first working moment at or after the start.
"""

import bisect
import datetime
import re

from .errors import ProblemCollector
from .i18n import _

MODE_ALWAYS_OPEN = "24x7"
MODE_WORKING_HOURS = "Working Hours"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_NO_TIME = datetime.timedelta(0)
_DAY = datetime.timedelta(days=1)
_WEEK = datetime.timedelta(days=7)
_SMALLEST_STEP = datetime.timedelta(microseconds=1)
# A calendar with working intervals only lacks working time when holidays cover every working day;
# searching further than this means the holiday list is wrong, not that the deadline is far away.
_SEARCH_LIMIT = datetime.timedelta(days=3653)

_TIME_PATTERN = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
_WEEKDAY_BY_NAME = {name.lower(): number for number, name in enumerate(WEEKDAYS)}
_MODES = {MODE_ALWAYS_OPEN.lower(): MODE_ALWAYS_OPEN, MODE_WORKING_HOURS.lower(): MODE_WORKING_HOURS}
_EXPECTED_MODES = f'expected "{MODE_ALWAYS_OPEN}" or "{MODE_WORKING_HOURS}"'


class Calendar:
	"""When the clock runs. Build it with ``compile_calendar``; see the module docstring for the
	boundary semantics. ``week`` holds seven lists (Monday first) of ``(start, end)`` offsets from
	midnight as timedeltas, non-overlapping; ``week=None`` is a 24x7 calendar, which ignores holidays."""

	def __init__(self, week=None, holidays=()):
		self.always_open = week is None
		self.mode = MODE_ALWAYS_OPEN if self.always_open else MODE_WORKING_HOURS
		if self.always_open:
			return
		if len(week) != 7:
			# not user-facing: compile_calendar has named the problem before a Calendar is built
			raise ValueError("a working week needs one list of intervals per weekday, Monday first")
		self._week = tuple(tuple(sorted(intervals)) for intervals in week)
		self._day_totals = tuple(sum((end - start for start, end in day), _NO_TIME) for day in self._week)
		self._week_total = sum(self._day_totals, _NO_TIME)
		if not self._week_total:
			# not user-facing: compile_calendar has named the problem before a Calendar is built
			raise ValueError("a working-hours calendar needs at least one working interval")
		self._holidays = sorted(set(holidays))
		self._holiday_set = frozenset(self._holidays)
		# Running total of the working time each holiday removes, so the time lost between any two
		# dates is one subtraction however many holidays lie between them.
		self._holiday_loss_before = [_NO_TIME]
		for holiday in self._holidays:
			lost = self._day_totals[holiday.weekday()]
			self._holiday_loss_before.append(self._holiday_loss_before[-1] + lost)

	def __repr__(self):
		if self.always_open:
			return "Calendar(24x7)"
		hours_a_week = self._week_total.total_seconds() / 3600
		return f"Calendar(Working Hours, {hours_a_week:g} h a week, {len(self._holidays)} holidays)"

	@property
	def working_time_per_week(self):
		"""Working time in a week without holidays (None for 24x7)."""
		return None if self.always_open else self._week_total

	def is_working(self, moment):
		_require_naive_datetime(moment, "moment")
		if self.always_open:
			return True
		day = moment.date()
		if day in self._holiday_set:
			return False
		offset = moment - _midnight(day)
		return any(start <= offset < end for start, end in self._week[day.weekday()])

	def is_working_day(self, day):
		"""True when ``day`` (a date) has working hours and is not a holiday."""
		if self.always_open:
			return True
		return day not in self._holiday_set and bool(self._week[day.weekday()])

	def next_working_moment(self, moment):
		"""``moment`` itself if it is working time, else the start of the next working interval."""
		_require_naive_datetime(moment, "moment")
		if self.always_open:
			return moment
		day = moment.date()
		give_up_after = day + _SEARCH_LIMIT
		while day <= give_up_after:
			if day not in self._holiday_set:
				midnight = _midnight(day)
				for start, end in self._week[day.weekday()]:
					if midnight + end > moment:
						return max(midnight + start, moment)
			day += _DAY
		raise _no_working_time(moment.date())

	def deadline(self, start, duration):
		"""The moment at which ``duration`` of working time has elapsed since ``start``."""
		_require_naive_datetime(start, "start")
		_require_duration(duration)
		if self.always_open:
			return start + duration
		if not duration:
			return self.next_working_moment(start)

		remaining = duration
		day = start.date()
		day_starts_at = start
		give_up_after = day + _SEARCH_LIMIT
		while True:
			if day_starts_at == _midnight(day) and remaining > self._week_total:
				# Jump over whole weeks at once. Stop short of using the duration up exactly so the
				# final interval is found by the walk below, which returns its end (not the next start).
				weeks = (remaining - _SMALLEST_STEP) // self._week_total
				skipped_until = day + weeks * _WEEK
				worked = self._work_in_whole_days(day, skipped_until)
				remaining -= worked
				if worked:
					give_up_after = skipped_until + _SEARCH_LIMIT
				day = skipped_until
				day_starts_at = _midnight(day)
			if day > give_up_after:
				raise _no_working_time(give_up_after - _SEARCH_LIMIT)
			if day not in self._holiday_set:
				midnight = _midnight(day)
				for interval_start, interval_end in self._week[day.weekday()]:
					period_end = midnight + interval_end
					if period_end <= day_starts_at:
						continue
					period_start = max(midnight + interval_start, day_starts_at)
					available = period_end - period_start
					if remaining <= available:
						return period_start + remaining
					remaining -= available
					give_up_after = day + _SEARCH_LIMIT
			day += _DAY
			day_starts_at = _midnight(day)

	def elapsed(self, start, end):
		"""Working time in [start, end); zero when ``end`` is not after ``start``."""
		_require_naive_datetime(start, "start")
		_require_naive_datetime(end, "end")
		if end <= start:
			return _NO_TIME
		if self.always_open:
			return end - start
		first_day, last_day = start.date(), end.date()
		if first_day == last_day:
			return self._work_in_part_of_day(first_day, start, end)
		after_first_day = first_day + _DAY
		return (
			self._work_in_part_of_day(first_day, start, _midnight(after_first_day))
			+ self._work_in_whole_days(after_first_day, last_day)
			+ self._work_in_part_of_day(last_day, _midnight(last_day), end)
		)

	def _work_in_part_of_day(self, day, begin, finish):
		if day in self._holiday_set:
			return _NO_TIME
		midnight = _midnight(day)
		worked = _NO_TIME
		for start, end in self._week[day.weekday()]:
			overlap = min(midnight + end, finish) - max(midnight + start, begin)
			if overlap > _NO_TIME:
				worked += overlap
		return worked

	def _work_in_whole_days(self, first_day, stop_day):
		"""Working time in the days from ``first_day`` up to, not including, ``stop_day``."""
		weeks, extra_days = divmod((stop_day - first_day).days, 7)
		worked = weeks * self._week_total
		for offset in range(extra_days):
			worked += self._day_totals[(first_day.weekday() + offset) % 7]
		first = bisect.bisect_left(self._holidays, first_day)
		stop = bisect.bisect_left(self._holidays, stop_day)
		return worked - (self._holiday_loss_before[stop] - self._holiday_loss_before[first])


def compile_calendar(spec):
	"""Validate a calendar spec and build a ``Calendar``; raises ``RuleError`` listing every problem."""
	problems = ProblemCollector()
	if not isinstance(spec, dict):
		problems.add("calendar", _("a calendar must be a mapping, got {0}").format(type(spec).__name__), value=spec)
		problems.raise_if_any()

	raw_mode = spec.get("mode")
	mode = _MODES.get(raw_mode.strip().lower()) if isinstance(raw_mode, str) else None
	if mode == MODE_ALWAYS_OPEN:
		return Calendar()
	if mode is None:
		if raw_mode in (None, ""):
			problems.add("calendar.mode", _("mode is missing ({0})").format(_EXPECTED_MODES), field="mode")
		else:
			message = _("{0} is not a calendar mode ({1})").format(_quoted(raw_mode), _EXPECTED_MODES)
			problems.add("calendar.mode", message, field="mode", value=raw_mode)

	# A bad mode is still worth checking the rest of, so one round trip shows every mistake.
	week = _compile_hours(spec.get("hours"), problems)
	holidays = _compile_holidays(spec.get("holidays"), problems)
	problems.raise_if_any()
	return Calendar(week, holidays)


def _compile_hours(rows, problems):
	week = [[] for _ in WEEKDAYS]
	if rows is None:
		rows = []
	if not isinstance(rows, list | tuple):
		message = _("must be a list of {weekday, start, end} entries")
		problems.add("calendar.hours", message, field="hours", value=rows)
		return week
	if not rows:
		message = _("a working-hours calendar needs at least one working interval")
		problems.add("calendar", message, field="hours")
		return week

	valid_rows = []
	for index, row in enumerate(rows):
		path = f"calendar.hours[{index}]"
		if not isinstance(row, dict):
			problems.add(path, _("an entry needs weekday, start and end"), value=row)
			continue
		weekday = _parse_weekday(row.get("weekday"), path, problems)
		start = _parse_time_field(row, "start", path, problems)
		end = _parse_time_field(row, "end", path, problems)
		if weekday is None or start is None or end is None:
			continue
		if start >= end:
			message = _("start {0} is not before end {1}").format(_format_offset(start), _format_offset(end))
			problems.add(path, message, field="start", value=row.get("start"))
			continue
		for earlier_index, earlier_weekday, earlier_start, earlier_end in valid_rows:
			if earlier_weekday == weekday and start < earlier_end and earlier_start < end:
				message = _("overlaps calendar.hours[{0}] on {1}").format(earlier_index, _(WEEKDAYS[weekday]))
				problems.add(path, message, field="start", value=row.get("start"))
				break
		# Kept even when overlapping, so a later row overlapping only this one is reported too.
		valid_rows.append((index, weekday, start, end))
		week[weekday].append((start, end))
	return week


def _parse_weekday(value, path, problems):
	if value in (None, ""):
		problems.add(path, _("weekday is missing"), field="weekday")
		return None
	weekday = _WEEKDAY_BY_NAME.get(value.strip().lower()) if isinstance(value, str) else None
	if weekday is None:
		problems.add(path, _("{0} is not a weekday").format(_quoted(value)), field="weekday", value=value)
	return weekday


def _parse_time_field(row, field, path, problems):
	value = row.get(field)
	if value in (None, ""):
		problems.add(f"{path}.{field}", _("{0} time is missing").format(field), field=field)
		return None
	offset = _parse_time(value)
	if offset is None:
		message = _("{0} is not a time of day (expected HH:MM or HH:MM:SS)").format(_quoted(value))
		problems.add(f"{path}.{field}", message, field=field, value=value)
	return offset


def _parse_time(value):
	"""Offset from midnight as a timedelta, up to and including 24:00; None when not a time."""
	if isinstance(value, datetime.timedelta):
		return value if _NO_TIME <= value <= _DAY else None
	if isinstance(value, datetime.time):
		return datetime.timedelta(
			hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
		)
	if not isinstance(value, str):
		return None
	match = _TIME_PATTERN.fullmatch(value.strip())
	if not match:
		return None
	hours, minutes, seconds = (int(part or 0) for part in match.groups())
	if minutes > 59 or seconds > 59 or hours > 24 or (hours == 24 and (minutes or seconds)):
		return None
	return datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _compile_holidays(values, problems):
	if values is None:
		return []
	if not isinstance(values, list | tuple):
		problems.add("calendar.holidays", _("must be a list of dates"), field="holidays", value=values)
		return []
	holidays = []
	for index, value in enumerate(values):
		holiday = _parse_date(value)
		if holiday is None:
			message = _("{0} is not a date").format(_quoted(value))
			problems.add(f"calendar.holidays[{index}]", message, field="holidays", value=value)
		else:
			holidays.append(holiday)
	return holidays


def _parse_date(value):
	if isinstance(value, datetime.datetime):
		return value.date()
	if isinstance(value, datetime.date):
		return value
	if not isinstance(value, str) or not _DATE_PATTERN.fullmatch(value.strip()):
		return None
	try:
		return datetime.date.fromisoformat(value.strip())
	except ValueError:
		return None


def _require_naive_datetime(value, name):
	if not isinstance(value, datetime.datetime):
		raise TypeError(f"{name} must be a datetime.datetime, got {type(value).__name__}")
	if value.tzinfo is not None:
		# not user-facing: a caller passing an aware datetime is the code's mistake, not the user's
		raise ValueError(
			f"{name} must be naive local time; convert it to the site's time zone and drop tzinfo"
		)


def _require_duration(duration):
	if not isinstance(duration, datetime.timedelta):
		raise TypeError(f"duration must be a datetime.timedelta, got {type(duration).__name__}")
	if duration < _NO_TIME:
		# not user-facing: the engine never asks for a negative duration (the save refuses one)
		raise ValueError(f"duration must not be negative, got {duration}")


def _no_working_time(since_day):
	return ValueError(
		_("no working time within 10 years after {0}: the holidays cover every working day").format(
			since_day.isoformat()
		)
	)


def _midnight(day):
	return datetime.datetime(day.year, day.month, day.day)


def _format_offset(offset):
	minutes, seconds = divmod(int(offset.total_seconds()), 60)
	hours, minutes = divmod(minutes, 60)
	return f"{hours:02d}:{minutes:02d}:{seconds:02d}" if seconds else f"{hours:02d}:{minutes:02d}"


def _quoted(value):
	return f'"{value}"' if isinstance(value, str) else repr(value)
