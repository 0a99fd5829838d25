"""Who is in, offline: when users are away, for the simulator's Assign actions
(``crm-automation simulate ... --availability people.json``). No Frappe here.

The file is JSON; every part is optional::

	{
		"away": [{"user": "ann@example.com", "from": "2026-12-07 00:00", "to": "2026-12-12 09:00"}],
		"holidays": {"bob@example.com": ["2026-12-25"]},
		"working_hours": {"cat@example.com": {"mode": "Working Hours",
			"hours": [{"weekday": "Monday", "start": "09:00", "end": "17:00"}]}}
	}

``working_hours`` is a calendar as an Escalation Policy's (engine/business_hours.py). Each explained
record's Assign actions then show whom they would pick at ``--now`` (``assigned_to``), who was
skipped and why, and whether the fallback was used. Round robin takes its turns over the explained
records in order, as on a site. Role and User Group members are not in an export: for those the
simulator says so instead of guessing.
"""

import datetime

from crm_automation.engine import availability as av
from crm_automation.engine.business_hours import compile_calendar
from crm_automation.engine.errors import RuleError
from crm_automation.engine.workflow import (
	ASSIGN,
	ASSIGN_EVERYONE,
	ASSIGN_TO_FIELD,
	ASSIGN_TO_USERS,
	LOAD_BALANCING,
)
from crm_automation.offline.input_files import InputError, read_json_file

SHAPE = '{"away": [{"user": "ann@example.com", "from": "2026-12-07 00:00", "to": "2026-12-12 09:00"}]}'


def read_availability(path):
	"""The engine's availability entries (user → entry) of ``path``; InputError naming the entry."""
	return checked_availability(read_json_file(path, "availability file"), path)


def checked_availability(data, where="availability"):
	if not isinstance(data, dict):
		raise InputError(where, f"availability is an object: {SHAPE}")
	entries = {}

	def entry(user):
		return entries.setdefault(user, {"away": [], "holidays": set(), "calendar": None})

	for index, row in enumerate(_list(data, "away", where)):
		path = f"{where}.away[{index}]"
		if not isinstance(row, dict) or not isinstance(row.get("user"), str):
			raise InputError(path, f"must be an object with a user, from and to: {SHAPE}")
		start, end = _moment(row.get("from"), f"{path}.from"), _moment(row.get("to"), f"{path}.to")
		if end <= start:
			raise InputError(f"{path}.to", "must be after from")
		entry(row["user"])["away"].append({"from": start, "to": end, "kind": av.AWAY})
	for user, days in _object(data, "holidays", where).items():
		if not isinstance(days, list):
			raise InputError(f"{where}.holidays.{user[:80]}", "must be a list of dates (YYYY-MM-DD)")
		for day in days:
			entry(user)["holidays"].add(_date(day, f"{where}.holidays.{user[:80]}"))
	for user, spec in _object(data, "working_hours", where).items():
		try:
			entry(user)["calendar"] = compile_calendar(spec)
		except RuleError as error:
			raise InputError(f"{where}.working_hours.{user[:80]}", str(error)) from None
	return entries


def _list(data, key, where):
	value = data.get(key) or []
	if not isinstance(value, list):
		raise InputError(f"{where}.{key}", "must be a list")
	return value


def _object(data, key, where):
	value = data.get(key) or {}
	if not isinstance(value, dict):
		raise InputError(f"{where}.{key}", "must be an object by user")
	return value


def _moment(text, where):
	try:
		return datetime.datetime.fromisoformat(str(text))
	except ValueError:
		raise InputError(where, f"{str(text)[:80]!r} is not a date and time (YYYY-MM-DD HH:MM)") from None


def _date(text, where):
	try:
		return datetime.date.fromisoformat(str(text))
	except ValueError:
		raise InputError(where, f"{str(text)[:80]!r} is not a date (YYYY-MM-DD)") from None


class AssignmentPlayer:
	"""Whom each Assign action of the explained records would pick, with turns and loads kept over
	the run (one per simulation)."""

	def __init__(self, availability):
		self.availability = availability or {}
		self.turns, self.loads = {}, {}

	def annotate(self, rule, intents, shown, values, now):
		"""Add assigned_to / skipped / fallback to the described actions ``shown`` (one per intent)."""
		for index, (intent, described) in enumerate(zip(intents, shown, strict=True)):
			if intent.get("type") == ASSIGN:
				key = (rule.name, intent.get("row_id") or intent.get("row") or index)
				described.update(self.play(key, intent, values, now))

	def play(self, key, intent, values, now):
		target = intent.get("assign_to_type")
		if target == ASSIGN_TO_USERS:
			roster = list(dict.fromkeys(u for u in intent.get("users") or () if u))
		elif target == ASSIGN_TO_FIELD:
			roster = [values.get(intent.get("user_field"))] if values.get(intent.get("user_field")) else []
		else:
			return {"assigned_to": "role and group members are not known offline"}
		plan = av.plan_assignment(
			roster,
			self.availability,
			now,
			skip_away=intent.get("skip_away"),
			skip_off_hours=intent.get("skip_off_hours"),
			fallback_user=intent.get("fallback_user"),
		)
		out = {"skipped": [entry.describe() for entry in plan.skipped]} if plan.skipped else {}
		if not plan.choices:
			return {**out, "assigned_to": "nobody is available: the action fails"}
		if plan.fallback:
			out["fallback"] = plan.fallback
		if plan.fallback or target == ASSIGN_TO_FIELD or intent.get("strategy") == ASSIGN_EVERYONE:
			chosen = plan.choices
		elif intent.get("strategy") == LOAD_BALANCING:
			chosen = [av.least_loaded(plan.choices, self.loads)]
		else:
			chosen = [av.next_in_turn(self.turns.get(key), plan.choices, roster)]
			self.turns[key] = chosen[0]
		for user in chosen:
			self.loads[user] = self.loads.get(user, 0) + 1
		return {**out, "assigned_to": ", ".join(chosen)}
