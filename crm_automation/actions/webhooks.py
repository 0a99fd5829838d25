"""Webhooks: queued during the save with a snapshot of the document, delivered exactly once by
whichever worker claims the row first (the job started after commit, or the 5-minute sweep), retried
with backoff, and sent only to targets the network guard (crm_automation.trust.outbound_http) allows.

A delivery row moves Queued → Sending (claimed, committed before the request leaves) → Success,
Failed, or Queued again with the next attempt's time. A worker that dies while Sending leaves a claim
that expires; the sweep then takes the row over. That one case can deliver twice (the first request
may have arrived), so every request carries its row's name as X-CRM-Automation-Delivery for the
receiver to drop repeats.
"""

import base64
import hashlib
import hmac
import json
import time

import frappe
from frappe import _
from frappe.utils import now_datetime
from frappe.utils.password import get_decrypted_password

from crm_automation.actions import delivery
from crm_automation.actions.common import default_minutes, error_summary
from crm_automation.engine import workflow as wf
from crm_automation.engine.packs import SECRET_PLACEHOLDER
from crm_automation.trust import outbound_http as safe_http
from crm_automation.trust.field_access import readable_values
from crm_automation.trust.run_as import run_as_of

WEBHOOK_BACKOFF_MINUTES = (1, 5, 15, 60, 180, 360, 720, 1440, 1440, 1440)
SIGNATURE_HEADER = "X-CRM-Automation-Signature"
# The header and encoding of Frappe's own Webhook (base64 of the same HMAC-SHA256), so receivers
# written for Frappe's webhooks verify ours unchanged.
FRAPPE_SIGNATURE_HEADER = "X-Frappe-Webhook-Signature"
DELIVERY_HEADER = "X-CRM-Automation-Delivery"
# Set by the app on every request; a rule's headers may not replace them.
RESERVED_HEADERS = frozenset(
	{
		"host",
		"content-length",
		"transfer-encoding",
		"connection",
		"content-type",
		SIGNATURE_HEADER.lower(),
		DELIVERY_HEADER.lower(),
	}
)
# A claim outlives the request's own deadline by this much before another worker may take over.
CLAIM_MARGIN_SECONDS = 120
SWEEP_BATCH = 500
DRAIN_JOB = "crm_automation.actions.webhooks.deliver_queued_webhooks"
_DRAIN_FLAG = "crm_automation:webhook_drain_queued"
_DRAIN_FLAG_SECONDS = 120
# A drain job hands over to a fresh one after this long, so the short queue's timeout never cuts it.
DRAIN_SECONDS = 60
_SAVEPOINT = "crm_automation_webhook_row"


def webhook(intent, doc, before, rule):
	"""Queue the delivery with the document as it is now: a later edit, or the deletion that set
	off a Delete rule, does not change what is sent."""
	return {
		"status": "Queued",
		"result": _("POST {0} queued").format(intent["url"]),
		"attempts": 0,
		# The document the action runs on: the rule's, or a linked one ("the Customer of this order"),
		# as the rule's run-as user may read it (fields above that user's levels are not sent).
		"payload": json.dumps(
			{"doctype": doc.doctype, "name": doc.name, "doc": _readable_snapshot(doc, run_as_of(rule))},
			default=str,
		),
	}


def _readable_snapshot(doc, user):
	return readable_values(doc.as_dict(), doc.doctype, user)


def deliver_webhooks(log_name):
	"""Deliver the queued webhooks of one log now (a replay, a test)."""
	for row in delivery.queued_rows(log_name, wf.WEBHOOK):
		deliver_row(row.name)


def request_delivery():
	"""After a run that queued a webhook has committed: make sure one drain job is on the queue. A
	job per run would cost a worker a fork and a site connection per webhook (a few a second); one
	job delivers every queued row there is. The flag says a drain job is queued and not yet
	started: the job clears it before it reads the rows, so a row committed after that read finds
	the flag gone and queues the next job. If the flag's job is lost, the flag expires and the
	5-minute sweep (retry_due_webhooks) delivers what it left."""
	if frappe.cache.set(frappe.cache.make_key(_DRAIN_FLAG), 1, ex=_DRAIN_FLAG_SECONDS, nx=True):
		frappe.enqueue(DRAIN_JOB, queue="short")


def deliver_queued_webhooks():
	"""The drain job: every webhook row that may be claimed now, in batches, until none is left or
	its time is up (then it queues its successor). Rows are claimed one by one, so a rival drain
	job or the sweep never sends a row twice."""
	frappe.cache.delete(frappe.cache.make_key(_DRAIN_FLAG))
	deadline = time.monotonic() + DRAIN_SECONDS
	while True:
		rows = delivery.due_rows(wf.WEBHOOK, now_datetime(), SWEEP_BATCH)
		for row in rows:
			deliver_row(row.name)
			if time.monotonic() > deadline:
				request_delivery()
				return
		if len(rows) < SWEEP_BATCH:
			return


def retry_due_webhooks():
	"""Deliver every row that may be claimed now: due retries, first attempts whose job has not run,
	and claims of workers that died. Called by the 5-minute sweep."""
	for row in delivery.due_rows(wf.WEBHOOK, now_datetime(), SWEEP_BATCH):
		deliver_row(row.name)


def deliver_row(row_name):
	"""Claim one delivery row and send it. Returns True if this worker sent it. A failure of this row
	(of the database, of the rule) is recorded on it and never stops the caller's other rows."""
	token = delivery.new_claim_token()
	frappe.db.savepoint(_SAVEPOINT)
	try:
		# Read before the claim, for the record only: a row found Sending is a dead worker's.
		took_over = frappe.db.get_value("Automation Log Action", row_name, "status") == "Sending"
		if not _claim(row_name, token):
			return False
	except Exception:
		_undo()
		frappe.log_error(title=f"Webhook delivery {row_name} could not be claimed")
		return False
	frappe.db.savepoint(_SAVEPOINT)
	try:
		outcome = _send(row_name, took_over)
	except Exception as error:
		_undo()
		outcome = _retry_or_fail(_row(row_name), error_summary(error), frappe.get_traceback())
	try:
		_finish(row_name, token, outcome)
		frappe.db.commit()
	except Exception:
		_undo()
		frappe.log_error(title=f"Webhook delivery {row_name} could not be recorded")
	return True


def _undo():
	"""Back to before this row's step. (A deadlock ends the whole transaction, savepoint and all;
	then the claim, committed before the step, is all there was.)"""
	try:
		frappe.db.rollback(save_point=_SAVEPOINT)
	except Exception:
		frappe.db.rollback()


def _claim(row_name, token):
	"""The claim lasts the action's timeout plus a margin: past that its worker is taken for dead."""
	hold = _row_timeout(row_name) + CLAIM_MARGIN_SECONDS
	return delivery.claim(row_name, wf.WEBHOOK, token, now_datetime(), hold)


def _row(row_name):
	return frappe.db.get_value(
		"Automation Log Action",
		row_name,
		["name", "parent", "action_row", "attempts", "payload", "response"],
		as_dict=True,
	)


def _row_timeout(row_name):
	"""The action's timeout bounds the whole exchange; read it cheaply for the claim's length."""
	parent, action_row = frappe.db.get_value("Automation Log Action", row_name, ["parent", "action_row"]) or (
		None,
		None,
	)
	rule = frappe.db.get_value("Automation Log", parent, "rule") if parent else None
	timeout = frappe.db.get_value(
		"Workflow Rule Action", {"parent": rule, "parenttype": "Workflow Rule", "idx": action_row}, "timeout"
	)
	return int(timeout or 10)


def _send(row_name, took_over=False):
	row = _row(row_name)
	log = frappe.db.get_value(
		"Automation Log",
		row.parent,
		["name", "rule", "event", "reference_doctype", "reference_name"],
		as_dict=True,
	)
	action = _rule_action(log.rule, row.action_row)
	if not action:
		return _failed(_("The rule or its action row no longer exists"))
	retries = action.retries if action.retries is not None else 3
	if took_over and row.attempts > retries + 1:
		# Only a claim taken over from a worker that died gets here: its attempts are used up.
		return _failed(_("Failed after {0} attempts: the sending worker stopped").format(retries + 1))
	body = _body(log, row)
	if body is None:
		return _failed(
			_("{0} {1} no longer exists and no snapshot of it was kept").format(
				log.reference_doctype, log.reference_name
			)
		)
	try:
		headers = _headers(action, body, row_name)
	except ValueError as error:
		return _failed(_("Headers: {0}").format(str(error)))
	try:
		response = safe_http.post(action.url, body, headers, action.timeout or 10, safe_http.site_allowlist())
	except safe_http.BlockedTarget as error:
		# A refused address stays refused: retrying would only knock on the same door.
		return _failed(_("Refused: {0}").format(str(error)))
	except safe_http.DeliveryError as error:
		return _retry_or_fail(row, error_summary(error), str(error), retries)
	kept = json.dumps(
		{"status_code": response.status, "body": response.body, "redirects": response.redirects or None}
	)
	if response.ok:
		return {
			"status": "Success",
			"result": _("POST {0}: HTTP {1}").format(action.url, response.status),
			"response": kept,
			"minutes_saved": default_minutes(wf.WEBHOOK),
		}
	return _retry_or_fail(row, _("HTTP {0} {1}").format(response.status, response.reason), kept, retries)


def _body(log, row):
	if row.payload:
		snapshot = json.loads(row.payload)
		doctype, name, doc = snapshot["doctype"], snapshot["name"], snapshot["doc"]
	elif frappe.db.exists(log.reference_doctype, log.reference_name):
		# Queued before snapshots were kept: the document as it is now is the best there is.
		doctype, name = log.reference_doctype, log.reference_name
		doc = _readable_snapshot(frappe.get_doc(doctype, name), _log_run_as(log))
	else:
		return None
	body = {"rule": log.rule, "event": log.event, "doctype": doctype, "name": name, "doc": doc}
	return json.dumps(body, default=str).encode()


def _log_run_as(log):
	"""Who the rule of a log runs as now (Guest, who reads no field above level 0, if it is gone)."""
	rule = frappe.db.get_value("Workflow Rule", log.rule, ["run_as", "owner"], as_dict=True)
	return run_as_of(rule)


def _headers(action, body, row_name):
	headers = {"Content-Type": "application/json", "User-Agent": "crm_automation webhook"}
	custom = parse_headers(action.get_password("headers", raise_exception=False) if action.headers else None)
	headers.update(custom)
	secret = action.get_password("secret", raise_exception=False) if action.secret else None
	if secret == SECRET_PLACEHOLDER or custom is None:
		raise ValueError(_("the secret or headers of this webhook are still to be filled in"))
	if secret:
		digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
		headers[SIGNATURE_HEADER] = "sha256=" + digest.hex()
		headers[FRAPPE_SIGNATURE_HEADER] = base64.b64encode(digest).decode()
	headers[DELIVERY_HEADER] = row_name
	return headers


def parse_headers(text):
	"""Headers as a dict of str → str; None for the pack placeholder. Raises ValueError naming what
	is wrong (so a rule is refused at save, and a stored value that went bad fails the delivery)."""
	if not text:
		return {}
	if text == SECRET_PLACEHOLDER:
		return None
	try:
		headers = json.loads(text)
	except ValueError as error:
		raise ValueError(_("the headers are not valid JSON ({0})").format(error)) from None
	if not isinstance(headers, dict):
		raise ValueError(_("the headers must be a JSON object of name → value"))
	for name, value in headers.items():
		if not name or not all(33 <= ord(ch) <= 126 and ch not in '()<>@,;:\\"/[]?={}' for ch in name):
			raise ValueError(_("{0} is not a valid header name").format(json.dumps(name)))
		if name.lower() in RESERVED_HEADERS:
			raise ValueError(_("the header {0} is set by the app and cannot be replaced").format(name))
		if not isinstance(value, str | int | float) or isinstance(value, bool):
			raise ValueError(_("the value of the header {0} must be text").format(name))
		if any(ch in str(value) for ch in "\r\n\0"):
			raise ValueError(_("the value of the header {0} contains a line break").format(name))
	return {name: str(value) for name, value in headers.items()}


def _failed(result, response=None):
	return {"status": "Failed", "result": result, "response": response}


def _retry_or_fail(row, summary, detail, retries=3):
	detail = (detail or "")[-2000:]
	return delivery.retry_or_fail(
		row.attempts, retries, WEBHOOK_BACKOFF_MINUTES, now_datetime(), summary, detail
	)


def _finish(row_name, token, outcome):
	delivery.finish(row_name, token, outcome)
	if outcome["status"] == "Failed":
		parent = frappe.db.get_value("Automation Log Action", row_name, "parent")
		frappe.db.sql("update `tabAutomation Log` set outcome = 'Failed' where name = %s", parent)


def _rule_action(rule_name, row_number):
	if not rule_name or not frappe.db.exists("Workflow Rule", rule_name):
		return None
	for action in frappe.get_doc("Workflow Rule", rule_name).actions:
		if action.idx == row_number and action.action_type == wf.WEBHOOK:
			return action
	return None


def validate_webhook_actions(rule):
	"""At save: each webhook's URL (scheme, host; a private address or local name only when the
	site allowlists it), its headers, and no pack placeholder left in a rule being enabled."""
	try:
		allowlist = safe_http.site_allowlist()
	except ValueError as error:
		frappe.throw(
			_("Site config: {0}").format(frappe.bold(str(error))), title=_("Invalid Webhook Allowlist")
		)
	for action in rule.actions:
		if action.action_type != wf.WEBHOOK:
			continue
		where = _("Actions, row {0}").format(action.idx)
		try:
			safe_http.check_url(action.url, allowlist)
		except safe_http.BlockedTarget as error:
			frappe.throw(
				_("{0}, URL: {1}").format(frappe.bold(where), str(error)),
				title=_("Webhook Target Not Allowed"),
			)
		headers = _password_value(action, "headers")
		try:
			parse_headers(headers)
		except ValueError as error:
			frappe.throw(
				_("{0}, Headers: {1}").format(frappe.bold(where), str(error)), title=_("Invalid Headers")
			)
		unfilled = [
			action.meta.get_label(fieldname)
			for fieldname, value in (("secret", _password_value(action, "secret")), ("headers", headers))
			if value == SECRET_PLACEHOLDER
		]
		if rule.enabled and unfilled:
			frappe.throw(
				_(
					"{0}: {1} is still to be filled in (the pack it came from leaves secrets out); fill it in before enabling the rule"
				).format(frappe.bold(where), frappe.bold(", ".join(unfilled))),
				title=_("Secret Missing"),
			)


def _password_value(action, fieldname):
	"""The clear value: as typed (being saved now), or as stored (shown masked in the form)."""
	value = action.get(fieldname)
	if not value:
		return None
	if set(value) != {"*"}:
		return value
	if not action.name:
		return None
	return get_decrypted_password(action.doctype, action.name, fieldname, raise_exception=False)
