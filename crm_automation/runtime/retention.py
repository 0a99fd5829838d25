"""How long the app keeps what it writes for itself, cleared through Frappe's own Log Settings.

Frappe's daily `run_log_clean_up` calls `clear_old_logs(days)` of every doctype listed in Log Settings
(hooks.default_log_clearing_doctypes puts ours there). Rows are deleted in small batches, each its
own transaction, so a backlog of millions never holds locks long enough to stall a user's save.

What is never cleared, whatever its age:
- an Automation Log with a delivery still to make (an action Queued, Sending or Deferred) or a follow-up
  step still waiting on it: retrying and the step's history need it;
- the logs of a rule that runs an experiment (a hold-out or a percentage split): they are the record
  of who was in which group, which the Rule Outcome report compares;
- Automation Sequence Steps not yet finished;
- CRM Activity younger than the longest window an enabled Lead Score Rule counts it over (scores
  would silently drop otherwise).
"""

import frappe
from frappe.utils import add_to_date, cint, now_datetime

BATCH = 2000
DEFAULT_DAYS = {"Automation Log": 90, "Automation Sequence Step": 90, "CRM Activity": 365}
PENDING_DELIVERIES = ("Queued", "Sending", "Deferred")
WAITING_STEPS = ("Pending", "Running")
FINISHED_STEPS = ("Done", "Skipped", "Exited", "Cancelled", "Missed", "Failed")


def clear_automation_logs(days):
	cutoff = _cutoff(days)
	experiments = _rules_running_an_experiment()
	# A log without a rule (or of another rule type) is never an experiment's record.
	keep_experiments = (
		"""and (coalesce(log.rule_type, '') != 'Workflow Rule' or coalesce(log.rule, '') not in %(experiments)s)"""
		if experiments
		else ""
	)
	deleted = 0
	while True:
		names = frappe.db.sql_list(
			f"""select log.name from `tabAutomation Log` log
			where log.creation < %(cutoff)s
				{keep_experiments}
				and not exists (select 1 from `tabAutomation Log Action` action
					where action.parenttype = 'Automation Log' and action.parent = log.name
						and action.status in %(pending)s)
				and not exists (select 1 from `tabAutomation Sequence Step` step
					where step.automation_log = log.name and step.status in %(waiting)s)
			order by log.creation
			limit %(batch)s""",
			{
				"cutoff": cutoff,
				"experiments": experiments,
				"pending": PENDING_DELIVERIES,
				"waiting": WAITING_STEPS,
				"batch": BATCH,
			},
		)
		if not names:
			return deleted
		frappe.db.delete("Automation Log Action", {"parenttype": "Automation Log", "parent": ("in", names)})
		frappe.db.delete("Automation Log", {"name": ("in", names)})
		deleted += len(names)
		# Each batch is its own transaction: row locks last milliseconds, so saves that write logs
		# meanwhile are never kept waiting behind one huge delete.
		frappe.db.commit()


def clear_finished_steps(days):
	return _delete_in_batches(
		"""delete from `tabAutomation Sequence Step`
		where status in %(finished)s and modified < %(cutoff)s
		limit %(batch)s""",
		{"finished": FINISHED_STEPS, "cutoff": _cutoff(days)},
	)


def clear_activities(days):
	return _delete_in_batches(
		"delete from `tabCRM Activity` where creation < %(cutoff)s limit %(batch)s",
		{"cutoff": _cutoff(max(cint(days), longest_activity_window()))},
	)


def longest_activity_window():
	"""The most days any enabled Lead Score Rule looks back over CRM Activity."""
	windows = frappe.db.sql_list(
		"""select criterion.days from `tabLead Score Rule Activity` criterion
		join `tabLead Score Rule` rule on rule.name = criterion.parent
		where rule.enabled = 1 and criterion.parenttype = 'Lead Score Rule'
			and criterion.activity_source = 'CRM Activity'"""
	)
	return max((cint(days) for days in windows), default=0)


def register_in_log_settings(days_by_doctype=None):
	"""Lists the app's doctypes in Log Settings now rather than at Frappe's next daily clean-up, so a
	System Manager sees and can change their retention from install on."""
	log_settings = frappe.get_single("Log Settings")
	listed = {row.ref_doctype for row in log_settings.logs_to_clear}
	changed = False
	for doctype, days in (days_by_doctype or DEFAULT_DAYS).items():
		if doctype not in listed or days_by_doctype:
			log_settings.register_doctype(doctype, days)
			changed = True
	if changed:
		log_settings.flags.ignore_permissions = True
		log_settings.save()


def unregister_from_log_settings():
	log_settings = frappe.get_single("Log Settings")
	rows = [row for row in log_settings.logs_to_clear if row.ref_doctype in DEFAULT_DAYS]
	for row in rows:
		log_settings.remove(row)
	if rows:
		log_settings.flags.ignore_permissions = True
		log_settings.save()


def _rules_running_an_experiment():
	return frappe.get_all(
		"Workflow Rule",
		or_filters={"holdout_percent": (">", 0), "branch_mode": "Percentage Split"},
		pluck="name",
	)


def _delete_in_batches(statement, values):
	deleted = 0
	while True:
		frappe.db.sql(statement, {**values, "batch": BATCH})
		count = frappe.db._cursor.rowcount
		# Committed per batch for the reason given in clear_automation_logs.
		frappe.db.commit()
		deleted += count
		if count < BATCH:
			return deleted


def _cutoff(days):
	return add_to_date(now_datetime(), days=-max(cint(days), 1))
