"""Sending windows: when a message that reaches a person may go out.

A Workflow Rule (or one of its follow-up steps) may say *Send Only Within* an Escalation Policy's
calendar (working hours and holidays, engine/business_hours). An e-mail, SMS or System Notification
due outside it is deferred to the calendar's next opening: never skipped, never sent early. A step's
own window wins over its rule's. Webhooks, ToDos, comments and value changes are not messages to a
person and are never deferred (a webhook feeds another system, which has its own hours).

Pure Python: the site (actions/send_windows.py) and the simulator (offline/send_windows.py) share it.
"""

from .business_hours import MODE_ALWAYS_OPEN, compile_calendar
from .errors import RuleError
from .i18n import _
from .workflow import NOTIFY, SEND_EMAIL, SEND_SMS

DEFERRABLE = frozenset({SEND_EMAIL, SEND_SMS, NOTIFY})


def window_of(rule_window, step_window=None):
	"""The Escalation Policy whose calendar applies: the step's own, else the rule's (or None)."""
	return step_window or rule_window or None


def deferred_until(calendar, moment):
	"""None when ``moment`` is inside the window (the message goes now), else the window's next
	opening. ``moment`` is naive local time, as every calendar moment is."""
	if calendar is None or calendar.always_open:
		return None
	opening = calendar.next_working_moment(moment)
	return None if opening == moment else opening


def window_calendar(spec, name):
	"""The compiled calendar of a window, or raises WindowError saying why it cannot be one. A 24x7
	calendar is refused: it is always open, so as a window it would defer nothing while its rule
	reads as if it did (its author most likely picked the wrong policy)."""
	if spec is None:
		raise WindowError(_("no Escalation Policy {0} to take the sending window from").format(name))
	if (spec.get("mode") or MODE_ALWAYS_OPEN) == MODE_ALWAYS_OPEN:
		raise WindowError(
			_("Escalation Policy {0} is open 24x7: a sending window needs one in Working Hours mode").format(
				name
			)
		)
	if not spec.get("hours"):
		raise WindowError(_("Escalation Policy {0} has no working hours to send within").format(name))
	try:
		return compile_calendar(spec)
	except RuleError as error:
		raise WindowError(_("the calendar of {0}: {1}").format(name, error.first.message)) from error


def describe_deferral(opening):
	"""'Monday 2026-12-07 09:00': the weekday first, as people plan a send."""
	return f"{_(opening.strftime('%A'))} {opening:%Y-%m-%d %H:%M}"


class WindowError(ValueError):
	"""A sending window that cannot be used; the message says why, for the author."""
