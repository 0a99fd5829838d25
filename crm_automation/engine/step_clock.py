"""The clock of follow-up steps: times of day, date values as moments, the next weekday at a time,
and working days on a calendar. Pure Python; all moments are naive local time in the site's time
zone (see sequences.py)."""

import datetime
import re

from .i18n import _

_MIDNIGHT = datetime.time(0, 0)
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?")
# A working-days wait on a calendar whose holidays cover every working day would never end.
_WORKING_DAY_SEARCH_LIMIT = 3653


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
