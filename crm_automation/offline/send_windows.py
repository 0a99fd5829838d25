"""Sending windows in the simulator: when each e-mail, SMS or notification of a rule that fires would
go out ("would send Monday 2026-12-14 09:00"), on the calendar of the Escalation Policy the rule's
Send Only Within names, as the pack carries it (its working hours and the holidays it lists).

A policy the pack does not carry cannot be simulated: the rule's messages say so instead of a time.
Follow-up steps on the virtual clock are not deferred here (the site defers them, step window first).
"""

import datetime

from crm_automation.engine.packs import pack_calendars
from crm_automation.engine.send_windows import (
	DEFERRABLE,
	WindowError,
	deferred_until,
	describe_deferral,
	window_calendar,
)


def pack_windows(pack):
	"""{rule name: (policy name, calendar, or the reason it cannot be used)} for the pack's Workflow
	Rules that send only within a window."""
	if not isinstance(pack, dict):
		return {}
	policies = pack.get("escalation_policies")
	calendars = pack_calendars(policies if isinstance(policies, list) else [])
	windows = {}
	for rule in pack.get("workflow_rules") or []:
		if not isinstance(rule, dict) or not isinstance(rule.get("send_window_policy"), str):
			continue
		name = rule["send_window_policy"]
		try:
			found = window_calendar(calendars.get(name), name)
		except WindowError as error:
			found = str(error)
		windows[rule.get("rule_name") or rule.get("name")] = (name, found)
	return windows


def with_send_window(outcome, window, now):
	"""The rule's explained outcome with, on each message it sends, when it would go out: at once, or
	the window's next opening from the moment the rule fires (a Time rule's fires_at, else now)."""
	if window is None or not outcome.get("actions"):
		return outcome
	name, calendar = window
	moment = now
	if outcome.get("fires_at"):
		moment = datetime.datetime.fromisoformat(outcome["fires_at"])
	for action in outcome["actions"]:
		if action.get("type") not in DEFERRABLE:
			continue
		if isinstance(calendar, str):
			action["send_window"] = f"not simulated: {calendar}"
			continue
		opening = deferred_until(calendar, moment)
		action["send_window"] = f"would send {describe_deferral(opening)}" if opening else "sent at once"
		if opening:
			action["deferred_to"] = opening.isoformat(sep=" ")
	return outcome
