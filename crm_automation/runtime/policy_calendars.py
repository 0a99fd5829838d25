"""The calendars of Escalation Policies as the engine reads them: holiday dates, and the working hours
that business-time waits of sequence steps name."""

import frappe
from frappe.utils import getdate

from crm_automation.engine import sequences as seq


def holidays_of(holiday_list):
	if not holiday_list:
		return []
	if not frappe.db.exists("Holiday List", holiday_list):
		return None
	return [getdate(d).isoformat() for d in frappe.get_all("Holiday", filters={"parent": holiday_list}, pluck="holiday_date")]


def calendars_for(steps):
	"""{Escalation Policy: calendar spec} for the business-time waits of ``steps``; a policy that
	does not exist is left out, so the engine names the step that wants it."""
	calendars = {}
	for step in steps:
		name = step.get("calendar_policy")
		if step.get("wait_type") != seq.WAIT_BUSINESS_TIME or not name or name in calendars:
			continue
		spec = calendar_spec(name)
		if spec is not None:
			calendars[name] = spec
	return calendars


def calendar_spec(name):
	"""The calendar spec (engine/business_hours) of one Escalation Policy; None when there is none."""
	if not name or not frappe.db.exists("Escalation Policy", name):
		return None
	policy = frappe.get_cached_doc("Escalation Policy", name)
	if (policy.calendar_mode or "24x7") == "24x7":
		return {"mode": "24x7"}
	return {
		"mode": "Working Hours",
		"hours": [
			{"weekday": row.weekday, "start": str(row.start_time), "end": str(row.end_time)}
			for row in policy.working_hours
		],
		"holidays": holidays_of(policy.holiday_list) or [],
	}
