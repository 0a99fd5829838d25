"""Delivery rows of Automation Log Action (webhooks, SMS): the one claim protocol both follow.

A row moves Queued → Sending (claimed by one worker with one UPDATE, committed before anything
leaves the site) → Success, Failed, or Queued again with the next attempt's time. A claim that
expired (its worker died) may be taken over. The outcome is written only under the claim that sent
it, so a slow worker whose claim was taken over cannot overwrite the newer one.

Callers pass `now`: each action family reads its own clock, which tests freeze.
"""

import os
import socket
import uuid

import frappe
from frappe import _
from frappe.utils import add_to_date

ROW_TABLE = "tabAutomation Log Action"
# A row one worker may claim now: due (first attempt or retry), or held by a claim that expired.
CLAIMABLE = """((status = 'Queued' and (next_attempt_on is null or next_attempt_on <= %(now)s))
	or (status = 'Sending' and claim_expires <= %(now)s))"""


def new_claim_token():
	return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def due_rows(action_type, now, limit, extra_condition="", fields="name"):
	"""Rows of one action type that may be claimed now, the longest waiting first."""
	return frappe.db.sql(
		f"""select {fields} from `{ROW_TABLE}`
		where parenttype = 'Automation Log' and action_type = %(action_type)s {extra_condition}
			and {CLAIMABLE}
		order by next_attempt_on is not null, next_attempt_on, creation
		limit {int(limit)}""",
		{"action_type": action_type, "now": now},
		as_dict=True,
	)


def queued_rows(log_name, action_type, fields=("name",)):
	"""One log's rows of one action type still Queued, in the order its actions wrote them: what the
	job enqueued after the save delivers."""
	return frappe.get_all(
		"Automation Log Action",
		filters={
			"parent": log_name,
			"parenttype": "Automation Log",
			"action_type": action_type,
			"status": "Queued",
		},
		fields=list(fields),
		order_by="idx asc",
	)


def claim(row_name, action_type, token, now, hold_seconds):
	"""One UPDATE that only one worker can win: InnoDB re-reads the row under its lock, so the loser
	of a race finds it Sending and changes nothing. Committed at once, so the others see it."""
	frappe.db.sql(
		f"""update `{ROW_TABLE}`
		set status = 'Sending', claimed_by = %(token)s, claim_expires = %(expires)s,
			attempts = ifnull(attempts, 0) + 1
		where name = %(name)s and parenttype = 'Automation Log' and action_type = %(action_type)s
			and {CLAIMABLE}""",
		{
			"token": token,
			"expires": add_to_date(now, seconds=hold_seconds),
			"name": row_name,
			"action_type": action_type,
			"now": now,
		},
	)
	won = frappe.db._cursor.rowcount == 1
	frappe.db.commit()
	return won


def finish(row_name, token, outcome):
	"""Record the outcome, only if this worker's claim still stands."""
	frappe.db.sql(
		f"""update `{ROW_TABLE}`
		set status = %(status)s, result = %(result)s, response = %(response)s,
			next_attempt_on = %(next_attempt_on)s, minutes_saved = %(minutes_saved)s,
			claimed_by = null, claim_expires = null
		where name = %(name)s and claimed_by = %(token)s""",
		{
			"status": outcome["status"],
			"result": (outcome.get("result") or "")[:1000],
			"response": outcome.get("response"),
			"next_attempt_on": outcome.get("next_attempt_on"),
			"minutes_saved": outcome.get("minutes_saved") or 0,
			"name": row_name,
			"token": token,
		},
	)


def retry_or_fail(attempts, retries, backoff_minutes, now, summary, response):
	"""Queued again after the backoff while attempts remain, else Failed."""
	attempts = attempts or 1
	if attempts <= retries:
		wait = backoff_minutes[min(attempts - 1, len(backoff_minutes) - 1)]
		next_attempt = add_to_date(now, minutes=wait)
		return {
			"status": "Queued",
			"next_attempt_on": next_attempt,
			"result": _("Attempt {0} failed ({1}); retrying at {2}").format(attempts, summary, next_attempt),
			"response": response,
		}
	return {
		"status": "Failed",
		"result": _("Failed after {0} attempts: {1}").format(attempts, summary),
		"response": response,
	}
