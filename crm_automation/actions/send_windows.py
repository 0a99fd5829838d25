"""Sending windows on a site: e-mails, SMS and System Notifications due outside a rule's (or a
step's) *Send Only Within* calendar wait for its next opening (engine/send_windows.py).

What is rendered and what is sent: the action renders its subject, text and recipients when it runs
(the values as of the trigger, read as the rule's run-as user); only the sending waits.

- E-mail: Frappe's own Email Queue with ``send_after``; Frappe's flush sends it once at or after
  that moment (its own claim: one worker, one send).
- SMS: its recipient rows (actions/sms.py) are Queued with ``next_attempt_on`` at the opening; the
  5-minute sweep claims each with one UPDATE (actions/delivery.py) and sends it once. A number the
  run-as user may not read is still not stored: it is read again when the SMS goes out.
- System Notification: the action's own Automation Log Action row is Queued with the users, the
  rendered subject and message as its payload and ``next_attempt_on`` at the opening; the same
  sweep claims it and writes the Notification Logs in the transaction that marks it sent.

The calendar's clock is the site's time zone, as every calendar moment is. Sends go out at the
first sweep after the opening (every 5 minutes), not to the second.
"""

import json

import frappe
from frappe import _
from frappe.utils import now_datetime

from crm_automation.actions import delivery
from crm_automation.actions.common import ActionError, default_minutes, error_summary
from crm_automation.actions.recipients import enabled_users
from crm_automation.engine import send_windows as windows
from crm_automation.engine import workflow as wf
from crm_automation.runtime.policy_calendars import calendar_spec

CLAIM_SECONDS = 120
SWEEP_BATCH = 500
ALERT_RETRIES = 3
ALERT_BACKOFF_MINUTES = (1, 5, 15)
_SAVEPOINT = "crm_automation_deferred_alert"


def window_policy(rule):
	"""The Escalation Policy a run's messages are sent within (a compiled rule, a rule document or
	a sequence step's stand-in rule), or None."""
	getter = rule.get if isinstance(rule, dict) else lambda key: getattr(rule, key, None)
	return getter("send_window_policy") or None


def opening_for(rule, now=None):
	"""None when a message of this run may go now, else when its window next opens. A window that
	has become unusable since the rule was saved fails the action (visibly, retryable from the log)
	rather than sending at 3 a.m. or never."""
	name = window_policy(rule)
	if not name:
		return None
	try:
		calendar = windows.window_calendar(calendar_spec(name), name)
	except windows.WindowError as error:
		raise ActionError(_("Sending window: {0}").format(error)) from error
	return windows.deferred_until(calendar, now or now_datetime())


def deferred_note(opening):
	return _("deferred to {0}").format(windows.describe_deferral(opening))


def preview_deferral(intent_type, rule, now=None):
	"""For a dry run: when this message would go out if the rule ran now ({} when at once)."""
	opening = opening_for(rule, now) if intent_type in windows.DEFERRABLE else None
	if not opening:
		return {}
	return {
		"deferred_to": str(opening),
		"deferral": _("would send {0}").format(windows.describe_deferral(opening)),
	}


# ----------------------------------------------------------------------------------------------
# System Notification, deferred


def defer_alerts(users, subject, doctype, name, message, from_user, opening):
	"""The action's result for alerts that wait for ``opening``: its log row carries what to send."""
	payload = {
		"users": users,
		"subject": subject,
		"doctype": doctype,
		"name": name,
		"message": message,
		"from_user": from_user,
	}
	return {
		"status": "Queued",
		"next_attempt_on": opening,
		"payload": json.dumps(payload),
	}


def send_due_alerts(now=None):
	"""Deferred System Notifications whose window is open now (and claims of workers that died):
	called by the 5-minute sweep. Returns how many this worker sent."""
	now = now or now_datetime()
	due = delivery.due_rows(wf.NOTIFY, now, SWEEP_BATCH, "and payload is not null")
	sent = sum(1 for row in due if send_alert_row(row.name, now))
	frappe.db.commit()
	return sent


def send_alert_row(row_name, now=None):
	"""Claim one deferred notification row and write its alerts; True if this worker sent it."""
	now = now or now_datetime()
	token = delivery.new_claim_token()
	if not delivery.claim(row_name, wf.NOTIFY, token, now, CLAIM_SECONDS):
		return False
	frappe.db.savepoint(_SAVEPOINT)
	try:
		outcome = _send_alerts(row_name)
	except Exception as error:
		frappe.db.rollback(save_point=_SAVEPOINT)
		attempts = frappe.db.get_value("Automation Log Action", row_name, "attempts")
		outcome = delivery.retry_or_fail(
			attempts, ALERT_RETRIES, ALERT_BACKOFF_MINUTES, now, error_summary(error), None
		)
	# The alerts and the row marked sent commit together: a worker that dies before leaves neither,
	# and the expired claim is taken over.
	delivery.finish(row_name, token, outcome)
	frappe.db.commit()
	return True


def _send_alerts(row_name):
	# The writer of the alerts sent at once, by its path: messages.py defers through this module.
	make_notification_logs = frappe.get_attr("crm_automation.actions.messages.make_notification_logs")
	payload = json.loads(frappe.db.get_value("Automation Log Action", row_name, "payload"))
	# Who was enabled when the rule ran may have left since: nobody disabled is notified.
	users = enabled_users(payload["users"])
	if not users:
		return {"status": "Skipped", "result": _("Nobody to notify any more: the users are disabled")}
	make_notification_logs(
		users,
		payload["subject"],
		payload["doctype"],
		payload["name"],
		payload.get("message"),
		payload.get("from_user"),
	)
	return {
		"status": "Success",
		"result": _("Notified {0}: {1}").format(
			", ".join(users), frappe.utils.strip_html(payload["subject"])
		),
		"minutes_saved": default_minutes(wf.NOTIFY),
	}


# ----------------------------------------------------------------------------------------------
# At rule save


def check_window(name, label):
	"""A Send Only Within that names a usable calendar: it exists, is in Working Hours mode and has
	working hours. Throws naming the field and the policy."""
	if not name:
		return
	try:
		windows.window_calendar(calendar_spec(name), name)
	except windows.WindowError as error:
		frappe.throw(_("{0}: {1}").format(frappe.bold(label), error), title=_("Sending window not usable"))
