"""When the users an Assign action may choose are away or at work, read from what the site has, for the
engine (engine/availability.py) to decide who is in:

- User Availability (this app): away periods, and working hours as an Escalation Policy's calendar;
- the Employee's Holiday List (their own, else their Company's default), a whole day off per holiday;
- with HRMS installed, approved Leave Applications (whole days) and active Shift Assignments (the
  shift's hours, every day of the assignment). HRMS is never imported: its tables are read when
  they exist.

Read as the system: the rule's run-as user need not see anyone's absences, and the engine is given
only when each absence ends, never its reason.
"""

import datetime

import frappe
from frappe import _
from frappe.utils import add_days, get_datetime, getdate, to_timedelta

from crm_automation.engine import availability as av
from crm_automation.engine.business_hours import WEEKDAYS, compile_calendar
from crm_automation.engine.errors import RuleError
from crm_automation.runtime.policy_calendars import holidays_of

# Holidays read ahead of the moment, to say when a run of them ends.
_HOLIDAYS_AHEAD = 60


def availability_of(users, moment, with_hours=False):
	"""{user: the engine's entry} for ``users`` at ``moment`` (naive, site time)."""
	users = [user for user in dict.fromkeys(users) if user]
	if not users:
		return {}
	entries = {user: {"away": [], "holidays": set(), "calendar": None} for user in users}
	_add_away_periods(entries, moment)
	employees = _employees_of(users)
	_add_holidays(entries, employees, moment)
	if _table_exists("Leave Application"):
		_add_leave(entries, employees, moment)
	if with_hours:
		_add_working_hours(entries)
		if _table_exists("Shift Assignment"):
			_add_shifts(entries, employees, moment)
	return entries


def _table_exists(doctype):
	return frappe.db.table_exists(doctype) and frappe.db.exists("DocType", doctype)


def _add_away_periods(entries, moment):
	rows = frappe.get_all(
		"User Availability Period",
		filters={
			"parenttype": "User Availability",
			"parent": ["in", list(entries)],
			"to_datetime": [">", moment],
		},
		fields=["parent", "from_datetime", "to_datetime"],
		order_by="from_datetime asc",
	)
	for row in rows:
		entries[row.parent]["away"].append(
			{"from": get_datetime(row.from_datetime), "to": get_datetime(row.to_datetime), "kind": av.AWAY}
		)


def _employees_of(users):
	"""{employee: (user, holiday list)} of active Employees linked to ``users``."""
	rows = frappe.get_all(
		"Employee",
		filters={"user_id": ["in", users], "status": "Active"},
		fields=["name", "user_id", "holiday_list", "company"],
	)
	employees = {}
	for row in rows:
		holiday_list = row.holiday_list or (
			row.company and frappe.get_cached_value("Company", row.company, "default_holiday_list")
		)
		employees[row.name] = (row.user_id, holiday_list)
	return employees


def _add_holidays(entries, employees, moment):
	start = getdate(moment)
	end = add_days(start, _HOLIDAYS_AHEAD)
	by_list = {}
	for user, holiday_list in employees.values():
		if holiday_list:
			by_list.setdefault(holiday_list, []).append(user)
	if not by_list:
		return
	rows = frappe.get_all(
		"Holiday",
		filters={"parent": ["in", list(by_list)], "holiday_date": ["between", [start, end]]},
		fields=["parent", "holiday_date"],
	)
	for row in rows:
		for user in by_list[row.parent]:
			entries[user]["holidays"].add(getdate(row.holiday_date))


def _add_leave(entries, employees, moment):
	if not employees:
		return
	day = getdate(moment)
	rows = frappe.get_all(
		"Leave Application",
		filters={
			"employee": ["in", list(employees)],
			"docstatus": 1,
			"status": "Approved",
			"to_date": [">=", day],
		},
		fields=["employee", "from_date", "to_date"],
	)
	for row in rows:
		user = employees[row.employee][0]
		entries[user]["away"].append(
			{
				"from": datetime.datetime.combine(getdate(row.from_date), datetime.time()),
				"to": datetime.datetime.combine(add_days(getdate(row.to_date), 1), datetime.time()),
				"kind": av.LEAVE,
			}
		)


def _add_working_hours(entries):
	policies = dict(
		frappe.get_all(
			"User Availability",
			filters={"user": ["in", list(entries)], "working_hours_policy": ["is", "set"]},
			fields=["user", "working_hours_policy"],
			as_list=True,
		)
	)
	for user, policy in policies.items():
		entries[user]["calendar"] = _policy_calendar(policy)


def _policy_calendar(name):
	"""The calendar of an Escalation Policy; None (always at work) when it is gone or has none."""
	if not frappe.db.exists("Escalation Policy", name):
		return None
	policy = frappe.get_cached_doc("Escalation Policy", name)
	if (policy.calendar_mode or "24x7") == "24x7":
		return None
	spec = {
		"mode": "Working Hours",
		"hours": [
			{"weekday": row.weekday, "start": str(row.start_time), "end": str(row.end_time)}
			for row in policy.working_hours
		],
		"holidays": holidays_of(policy.holiday_list) or [],
	}
	try:
		return compile_calendar(spec)
	except RuleError:
		return None


def _add_shifts(entries, employees, moment):
	"""An active Shift Assignment's hours replace the user's working hours (every day alike; a shift
	past midnight is two intervals)."""
	if not employees:
		return
	day = getdate(moment)
	rows = frappe.get_all(
		"Shift Assignment",
		filters={
			"employee": ["in", list(employees)],
			"docstatus": 1,
			"status": "Active",
			"start_date": ["<=", day],
		},
		fields=["employee", "shift_type", "end_date"],
	)
	for row in rows:
		if row.end_date and getdate(row.end_date) < day:
			continue
		start, end = frappe.get_cached_value("Shift Type", row.shift_type, ["start_time", "end_time"]) or (
			None,
			None,
		)
		if start is None or end is None:
			continue
		start, end = to_timedelta(start), to_timedelta(end)
		if start < end:
			intervals = [(start, end)]
		else:  # past midnight: to the end of the day, and from its start (nothing when end is 00:00)
			intervals = [(start, "24:00")] + ([(datetime.timedelta(0), end)] if end else [])
		hours = [{"weekday": weekday, "start": a, "end": b} for weekday in WEEKDAYS for a, b in intervals]
		try:
			entries[employees[row.employee][0]]["calendar"] = compile_calendar(
				{"mode": "Working Hours", "hours": hours}
			)
		except RuleError:
			continue


# Roles every user holds: as a fallback they would hand the work to anyone at all.
_ROLES_OF_EVERYONE = ("All", "Guest", "Desk User")


def validate_assign_fallbacks(rows):
	"""At a rule's save: an Assign action's fallback user exists and is enabled, its fallback role
	exists and is not one that every user holds."""
	for row in rows:
		if row.action_type != "Assign":
			continue
		if row.fallback_user:
			enabled = frappe.db.get_value("User", row.fallback_user, "enabled")
			if not enabled or row.fallback_user == "Guest":
				message = (
					_("Actions, row {0}: fallback user {1} does not exist")
					if enabled is None
					else _("Actions, row {0}: fallback user {1} is disabled")
				)
				frappe.throw(message.format(row.idx, frappe.bold(row.fallback_user)), title=_("Invalid User"))
		if row.fallback_role:
			if row.fallback_role in _ROLES_OF_EVERYONE:
				frappe.throw(
					_(
						"Actions, row {0}: fallback role {1} is held by every user; choose a team's role"
					).format(row.idx, frappe.bold(row.fallback_role)),
					title=_("Invalid Role"),
				)
			if not frappe.db.exists("Role", row.fallback_role):
				frappe.throw(
					_("Actions, row {0}: fallback role {1} does not exist").format(
						row.idx, frappe.bold(row.fallback_role)
					),
					title=_("Invalid Role"),
				)
