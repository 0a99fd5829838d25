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

Pure Python, no Frappe: ``sequence_compile.compile_sequence`` checks steps once (problems name the step and field),
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
from .step_clock import as_moment, as_time, next_weekday_at, working_days_later

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

# When a date or weekday wait names no time: office hours start. The desk's Time field has the
# same default, so a rule behaves the same on the site and in the simulator.
DEFAULT_AT_TIME = datetime.time(9, 0)


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
