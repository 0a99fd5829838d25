"""Webhooks: queued during the save, delivered by a background job after commit, retried with
backoff by the 5-minute sweep."""

import hashlib
import hmac
import json
import traceback

import frappe
from frappe import _
from frappe.utils import add_to_date, now_datetime

from crm_automation.actions.common import default_minutes, error_summary
from crm_automation.engine import workflow as wf

WEBHOOK_BACKOFF_MINUTES = (1, 5, 15, 60, 180, 360, 720, 1440, 1440, 1440)
SIGNATURE_HEADER = "X-CRM-Automation-Signature"


def webhook(intent, doc, before, rule):
	return {"status": "Queued", "result": _("POST {0} queued").format(intent["url"]), "attempts": 0}


def deliver_webhooks(log_name):
	"""Deliver every queued webhook of one log. Runs on the short queue after the save committed."""
	log = frappe.get_doc("Automation Log", log_name)
	rule = frappe.get_doc("Workflow Rule", log.rule) if frappe.db.exists("Workflow Rule", log.rule) else None
	for row in log.actions:
		if row.action_type == wf.WEBHOOK and row.status == "Queued":
			_deliver_one(log, row, rule)
	log.save(ignore_permissions=True)
	if log.outcome != "Failed" and any(r.status == "Failed" for r in log.actions):
		log.db_set("outcome", "Failed")


def _deliver_one(log, row, rule):
	import requests

	action = _rule_action(rule, row.action_row)
	if not action:
		row.status, row.result = "Failed", _("The rule or its action row no longer exists")
		return
	doc = frappe.get_doc(log.reference_doctype, log.reference_name)
	body = json.dumps(
		{"rule": log.rule, "event": log.event, "doctype": doc.doctype, "name": doc.name, "doc": doc.as_dict()},
		default=str,
	)
	headers = {"Content-Type": "application/json"}
	headers.update(json.loads(action.headers) if action.headers else {})
	secret = action.get_password("secret", raise_exception=False) if action.secret else None
	if secret:
		headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
	row.attempts = (row.attempts or 0) + 1
	try:
		response = requests.post(action.url, data=body, headers=headers, timeout=action.timeout or 10)
		row.response = json.dumps({"status_code": response.status_code, "body": response.text[:2000]})
		response.raise_for_status()
		row.status, row.result = "Success", _("POST {0}: HTTP {1}").format(action.url, response.status_code)
		row.minutes_saved = default_minutes(wf.WEBHOOK)
	except Exception as error:
		retries = action.retries if action.retries is not None else 3
		row.response = (row.response or "") + "\n" + traceback.format_exc()[-2000:]
		if row.attempts <= retries:
			wait = WEBHOOK_BACKOFF_MINUTES[min(row.attempts - 1, len(WEBHOOK_BACKOFF_MINUTES) - 1)]
			row.next_attempt_on = add_to_date(now_datetime(), minutes=wait)
			row.result = _("Attempt {0} failed ({1}); retrying at {2}").format(
				row.attempts, error_summary(error), row.next_attempt_on
			)
		else:
			row.status = "Failed"
			row.result = _("Failed after {0} attempts: {1}").format(row.attempts, error_summary(error))


def _rule_action(rule, row_number):
	if not rule:
		return None
	for action in rule.actions:
		if action.idx == row_number:
			return action
	return None


def retry_due_webhooks():
	"""Deliver webhooks whose backoff has passed; called by the 5-minute sweep."""
	due = frappe.get_all(
		"Automation Log Action",
		filters={"status": "Queued", "next_attempt_on": ("<=", now_datetime()), "parenttype": "Automation Log"},
		pluck="parent",
		distinct=True,
		limit=500,
	)
	for log_name in due:
		deliver_webhooks(log_name)
		frappe.db.commit()  # one log at a time: a slow endpoint must not hold the others back
