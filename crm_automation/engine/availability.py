"""Who is in: of the users an Assign action may choose, those at work at a moment, and why each of the
others was passed over; the pick among those who are in (round robin, least loaded); the fallback
when nobody is.

Pure Python, so the site (actions/assignment.py) and the offline simulator decide alike. What a user's
time looks like comes in as plain data, one entry per user::

	{
		"away": [{"from": datetime, "to": datetime, "kind": "away" | "leave"}, ...],
		"holidays": [date, ...],  # whole days off (the Employee's Holiday List)
		"calendar": Calendar or None,  # working hours (engine.business_hours); None: always at work
	}

A user without an entry is in. Away periods are half-open, [from, to): someone away until 09:00 is
back at 09:00. The reason a user typed for being away never leaves this module's input: what is said
about a skipped user is only the kind and when they are back, which a rule manager may read.
"""

import datetime

from .i18n import _

AWAY = "away"
LEAVE = "leave"
HOLIDAY = "holiday"
OFF_HOURS = "off_hours"

FALLBACK_USER = "user"
FALLBACK_ROLE = "role"

# A run of holidays longer than this is a wrong Holiday List, not a reason to search further.
_HOLIDAY_RUN_LIMIT = 3660


class Skipped:
	"""A user passed over: ``kind`` (AWAY, LEAVE, HOLIDAY, OFF_HOURS) and ``until``, the moment (or for
	a holiday, the date) they are back; None when not known."""

	__slots__ = ("kind", "until", "user")

	def __init__(self, user, kind, until=None):
		self.user, self.kind, self.until = user, kind, until

	def __repr__(self):
		return f"Skipped({self.user!r}, {self.kind!r}, {self.until!r})"

	def __eq__(self, other):
		return isinstance(other, Skipped) and (self.user, self.kind, self.until) == (
			other.user,
			other.kind,
			other.until,
		)

	def describe(self, name=None, show=None):
		"""'Ann (away until 12-12-2026 09:00)'. ``name``: the user's full name; ``show``: how a moment
		or date is written for the reader (the site passes Frappe's formatting)."""
		show = show or _iso
		who = name or self.user
		if self.kind == OFF_HOURS:
			reason = (
				_("outside working hours, back {0}").format(show(self.until))
				if self.until
				else _("outside working hours")
			)
		elif self.kind == HOLIDAY:
			reason = _("on holiday until {0}").format(show(self.until))
		elif self.kind == LEAVE:
			reason = _("on leave until {0}").format(show(self.until)) if self.until else _("on leave")
		else:
			reason = _("away until {0}").format(show(self.until)) if self.until else _("away")
		return f"{who} ({reason})"


class Plan:
	"""Whom an Assign action may pick from: ``choices`` (those who are in, or the fallback), the users
	passed over, and ``fallback`` (None, FALLBACK_USER or FALLBACK_ROLE)."""

	__slots__ = ("choices", "fallback", "skipped")

	def __init__(self, choices, skipped, fallback=None):
		self.choices, self.skipped, self.fallback = choices, skipped, fallback


def who_is_in(candidates, availability, moment, skip_away=True, skip_off_hours=False):
	"""(those in, [Skipped]) in the candidates' order. Nothing is checked that the action does not ask
	for: without ``skip_away`` and ``skip_off_hours`` everyone is in."""
	present, skipped = [], []
	for user in candidates:
		why = _why_out(availability.get(user), moment, skip_away, skip_off_hours)
		if why is None:
			present.append(user)
		else:
			skipped.append(Skipped(user, *why))
	return present, skipped


def _why_out(entry, moment, skip_away, skip_off_hours):
	if not entry:
		return None
	if skip_away:
		for period in entry.get("away") or ():
			if period["from"] <= moment < period["to"]:
				return period.get("kind") or AWAY, _back_from(entry, period["to"])
		holidays = entry.get("holidays")
		if holidays and moment.date() in holidays:
			return HOLIDAY, _first_working_day(moment.date(), holidays)
	calendar = entry.get("calendar")
	if skip_off_hours and calendar is not None and not calendar.is_working(moment):
		try:
			back = calendar.next_working_moment(moment)
		except Exception:  # a calendar with no working time left: back is not known
			back = None
		return OFF_HOURS, back
	return None


def _back_from(entry, end):
	"""The end of an away period, or of the one that starts exactly when it ends (a week away, then a
	day of leave)."""
	periods = entry.get("away") or ()
	for _step in range(len(periods)):
		following = next((p["to"] for p in periods if p["from"] <= end < p["to"]), None)
		if following is None:
			break
		end = following
	return end


def _first_working_day(day, holidays):
	for _step in range(_HOLIDAY_RUN_LIMIT):
		day += datetime.timedelta(days=1)
		if day not in holidays:
			return day
	return None


def plan_assignment(
	candidates,
	availability,
	moment,
	*,
	skip_away=False,
	skip_off_hours=False,
	fallback_user=None,
	fallback_role_members=(),
):
	"""Whom to pick from. Those of ``candidates`` who are in; when nobody is, the fallback user
	(assigned whether in or not: the rule names them as the last resort), else those with the
	fallback role who are in; else nobody (the action fails, saying who was skipped).
	``fallback_user`` and ``fallback_role_members`` are enabled users, the caller's check."""
	present, skipped = who_is_in(candidates, availability, moment, skip_away, skip_off_hours)
	if present:
		return Plan(present, skipped)
	if fallback_user:
		return Plan([fallback_user], skipped, FALLBACK_USER)
	role_in, _role_out = who_is_in(fallback_role_members, availability, moment, skip_away, skip_off_hours)
	if role_in:
		return Plan(role_in, skipped, FALLBACK_ROLE)
	return Plan([], skipped)


def next_in_turn(last, candidates, roster, by_name=False):
	"""Round robin: the candidate after ``last`` in the roster's order, wrapping around. ``roster`` is
	everyone the action names (away and disabled users too), so the turn moves past a user who is
	out now and comes back to them when they are in: the share stays fair among those who are in.
	A last user no longer on the roster is placed by name when the roster is alphabetical (a Role);
	otherwise the turn starts again from the first."""
	if last in roster:
		position = roster.index(last) + 1
		available = set(candidates)
		return next(user for user in roster[position:] + roster[:position] if user in available)
	if last and by_name:
		return next((user for user in candidates if user > last), candidates[0])
	return candidates[0]


def least_loaded(candidates, load):
	"""The candidate with the fewest open assignments (``load``: user → count), by name on a tie."""
	return min(candidates, key=lambda user: (load.get(user, 0), user))


def _iso(value):
	if isinstance(value, datetime.datetime):
		return value.strftime("%Y-%m-%d %H:%M")
	return value.isoformat() if value is not None else "?"
