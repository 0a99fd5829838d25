"""Send SMS through Frappe's own SMS Settings and ``send_sms``: no gateway code of our own.

During the save the action resolves its recipients, renders the text in the read-only sandbox and
queues one Automation Log Action row per recipient (a missing or invalid number becomes a Skipped
row with its reason). After the commit a job delivers the rows; each row is claimed with one UPDATE
(the webhooks' fields and protocol: Queued → Sending → Success, Failed or Queued again with the
next attempt's time), so the job and the 5-minute sweep never send the same row twice. Nothing is
queued, hence nothing sent, when the save rolls back.

The gateway is configured by a System Manager in SMS Settings, not by rule authors, so the webhook
network guard does not apply to it.

A number read from a record the rule's run-as user may not read (another user's mobile, a Contact
they cannot open) is still sent to, as Frappe's own Notification sends to a role's users, but it is
never written into the log: its row names the recipient and the record the number is read from, and
the number is read again when the SMS is sent.
"""

import json

import frappe
from frappe import _
from frappe.core.doctype.sms_settings import sms_settings as frappe_sms
from frappe.utils import now_datetime

from crm_automation.actions import delivery, send_windows
from crm_automation.actions.common import ActionError, default_minutes, error_summary, render
from crm_automation.actions.recipients import may_read_value
from crm_automation.engine import workflow as wf
from crm_automation.engine.sms import normalize_number
from crm_automation.trust import run_as as permissions
from crm_automation.trust.redaction import HIDDEN

SMS_RETRIES = 3
SMS_BACKOFF_MINUTES = (1, 5, 15, 60)
CLAIM_SECONDS = 180
SWEEP_BATCH = 500
MAX_ANSWER = 300
_SAVEPOINT = "crm_automation_sms_row"


def gateway_configured():
	return bool(frappe.db.get_single_value("SMS Settings", "sms_gateway_url"))


def send_sms(intent, doc, before, rule):
	"""The Send SMS handler: recipients and text now, delivery after the commit."""
	if not gateway_configured():
		raise ActionError(_("SMS Settings has no SMS Gateway URL: a System Manager must set it up"))
	message = render(intent["message"], doc, before)
	if not message.strip():
		raise ActionError(_("The SMS text is empty for this document"))
	run_as = permissions.run_as_of(rule)
	rows, seen = [], set()
	for label, raw, source, shown in visible_recipients(intent, doc, run_as):
		number, reason = normalize_number(raw) if raw is not None else (None, None)
		if number is None:
			if not shown:
				reason = _("no valid number")  # the reason would quote what the number field holds
			rows.append(
				{
					"status": "Skipped",
					"result": _("{0}: skipped, {1}").format(label, reason or _("no number")),
				}
			)
		elif number not in seen:
			seen.add(number)
			payload = {"message": message, "recipient": label}
			if shown:
				payload["number"] = number
				result = _("{0}: SMS to {1} queued").format(label, number)
			else:
				payload["source"] = list(source)
				result = _("{0}: SMS queued (number hidden)").format(label)
			rows.append({"status": "Queued", "result": result, "payload": json.dumps(payload)})
	queued = sum(1 for row in rows if row["status"] == "Queued")
	skipped = len(rows) - queued
	if not rows:
		return {"status": "Skipped", "result": _("No SMS recipient found")}
	summary = _("{0} SMS queued, {1} skipped").format(queued, skipped)
	opening = send_windows.opening_for(rule) if queued else None
	if opening:
		# Outside the sending window: the rows wait for its opening; the sweep claims them then.
		note = send_windows.deferred_note(opening)
		for row in rows:
			if row["status"] == "Queued":
				row.update(next_attempt_on=opening, result=_("{0} ({1})").format(row["result"], note))
		summary = _("{0} ({1})").format(summary, note)
	return {"status": "Queued" if queued else "Skipped", "result": summary, "sms_rows": rows}


# ----------------------------------------------------------------------------------------------
# Recipients: (label, number or None with the reason in the label's row, source). The source is
# (doctype, name, fieldname) of the record the number is read from, or None when there is none.


def visible_recipients(intent, doc, user):
	"""(label, number or None, source, shown) for each recipient, as ``user`` may see them: a
	recipient whose number ``user`` may not read keeps its place, with a label that names neither
	the number nor a Contact's (a person's) name."""
	found = []
	for label, raw, source, *hidden_label in sms_recipients(intent, doc):
		shown = source is None or may_read_value(*source, user, doc=doc)
		found.append((label if shown or not hidden_label else hidden_label[0], raw, source, shown))
	return found


def sms_recipients(intent, doc):
	found = []
	if intent.get("phone_field"):
		df = doc.meta.get_field(intent["phone_field"])
		label = _(df.label) if df and df.label else intent["phone_field"]
		found.append(
			(
				_("{0} of {1}").format(label, doc.name),
				doc.get(intent["phone_field"]) or "",
				(doc.doctype, doc.name, intent["phone_field"]),
			)
		)
	if intent.get("contact_of"):
		found.extend(_contact_numbers(intent["contact_of"], doc))
	for user in intent.get("users") or ():
		found.append(_user_number(user))
	if intent.get("role"):
		users = frappe.get_all(
			"Has Role", filters={"role": intent["role"], "parenttype": "User"}, pluck="parent", distinct=True
		)
		enabled = frappe.get_all(
			"User",
			filters={"name": ("in", users or [""]), "enabled": 1, "user_type": "System User"},
			pluck="name",
		)
		found.extend(_user_number(user) for user in sorted(enabled) if user not in ("Guest",))
	return found


def _user_number(user):
	row = frappe.db.get_value("User", user, ["mobile_no", "enabled"], as_dict=True)
	if not row:
		return (_("User {0}").format(user), None, None)
	if not row.enabled:
		return (_("User {0} (disabled)").format(user), None, None)
	return (_("User {0}").format(user), row.mobile_no or "", ("User", user, "mobile_no"))


def _contact_numbers(source, doc):
	"""The primary Contact of the document (or of the document in a Link field): its mobile."""
	if source.get("fieldname"):
		if source.get("type_field") and doc.get(source["type_field"]) != source["doctype"]:
			return [(_("Contact of {0}").format(source["fieldname"]), None, None)]
		doctype, name = source["doctype"], doc.get(source["fieldname"])
		if not name:
			return [(_("Contact of {0} (empty)").format(source["fieldname"]), None, None)]
	else:
		doctype, name = doc.doctype, doc.name
		contact_person = doc.get("contact_person") if doc.meta.has_field("contact_person") else None
		if contact_person:
			mobile = frappe.db.get_value("Contact", contact_person, "mobile_no")
			# The Contact named in the document's own field: its name is no secret to its reader.
			return [
				(
					_("Contact {0}").format(contact_person),
					mobile or "",
					("Contact", contact_person, "mobile_no"),
				)
			]
	contacts = frappe.get_all(
		"Contact",
		filters=[["Dynamic Link", "link_doctype", "=", doctype], ["Dynamic Link", "link_name", "=", name]],
		fields=["name", "mobile_no"],
		order_by="`tabContact`.is_primary_contact desc, `tabContact`.creation asc",
		limit=1,
	)
	if not contacts:
		return [(_("Contact of {0} {1} (none linked)").format(_(doctype), name), None, None)]
	contact = contacts[0].name
	# A Contact is named after a person: who may not read it is told only whose contact it is.
	return [
		(
			_("Contact {0}").format(contact),
			contacts[0].mobile_no or "",
			("Contact", contact, "mobile_no"),
			_("Contact of {0} {1}").format(_(doctype), name),
		)
	]


def add_recipient_rows(log_name, results):
	"""After the log is written (same transaction): one row per recipient, the ones to deliver
	Queued with their number and text. Returns True if anything is to be delivered."""
	pending = [r for r in results if r.get("action_type") == wf.SEND_SMS and r.get("sms_rows")]
	if not log_name or not pending:
		return False
	log = frappe.get_doc("Automation Log", log_name)
	queued = False
	for result in pending:
		for row in result["sms_rows"]:
			child = log.append(
				"actions", {"action_type": wf.SEND_SMS, "action_row": result.get("action_row"), **row}
			)
			child.db_insert()
			queued = queued or row["status"] == "Queued"
	return queued


def after_run(log_name, results):
	if add_recipient_rows(log_name, results):
		frappe.enqueue(
			"crm_automation.actions.sms.deliver_sms",
			queue="short",
			enqueue_after_commit=True,
			log_name=log_name,
		)


# ----------------------------------------------------------------------------------------------
# Delivery


def deliver_sms(log_name):
	"""Deliver the queued SMS of one log. Runs on the short queue after the save committed."""
	for row in delivery.queued_rows(log_name, wf.SEND_SMS, fields=("name", "payload")):
		if row.payload:
			deliver_row(row.name)
	settle_summaries(log_name)
	frappe.db.commit()


def retry_due_sms():
	"""Due retries, first attempts whose job never ran and claims of workers that died: called by
	the 5-minute sweep."""
	due = delivery.due_rows(
		wf.SEND_SMS, now_datetime(), SWEEP_BATCH, "and payload is not null", fields="name, parent"
	)
	for row in due:
		deliver_row(row.name)
	for parent in {row.parent for row in due}:
		settle_summaries(parent)
	frappe.db.commit()


def deliver_row(row_name):
	"""Claim one SMS row and send it; True if this worker sent it."""
	token = delivery.new_claim_token()
	if not _claim(row_name, token):
		return False
	frappe.db.savepoint(_SAVEPOINT)
	hidden = []
	try:
		outcome = _send(row_name, hidden)
	except Exception as error:
		frappe.db.rollback(save_point=_SAVEPOINT)
		# A gateway's error (a GET URL) may quote the number a hidden row must not show.
		summary, answer = _without(error_summary(error), hidden), _without(_answer_of(error), hidden)
		outcome = _retry_or_fail(row_name, summary, answer)
	delivery.finish(row_name, token, outcome)
	frappe.db.commit()
	return True


def _claim(row_name, token):
	return delivery.claim(row_name, wf.SEND_SMS, token, now_datetime(), CLAIM_SECONDS)


def _without(text, numbers):
	for number in numbers:
		text = text.replace(number, HIDDEN).replace(number.lstrip("+"), HIDDEN)
	return text


def _send(row_name, hidden):
	"""Send one row's SMS. A row whose number is hidden reads it now from its record; the number
	is put in ``hidden`` for the caller to keep out of an error."""
	row = frappe.db.get_value("Automation Log Action", row_name, ["attempts", "payload"], as_dict=True)
	if row.attempts > SMS_RETRIES + 1:
		return {
			"status": "Failed",
			"result": _("Failed after {0} attempts: the sending worker stopped").format(SMS_RETRIES + 1),
		}
	if not gateway_configured():
		return _retry_or_fail(row_name, _("SMS Settings has no SMS Gateway URL"), None)
	payload = json.loads(row.payload)
	number = payload.get("number")
	if not number:
		doctype, name, fieldname = payload["source"]
		number, _reason = normalize_number(frappe.db.get_value(doctype, name, fieldname))
		if number is None:
			return {
				"status": "Failed",
				"result": _("{0}: no valid number any more").format(payload.get("recipient") or ""),
			}
		hidden.append(number)
	messages_before = len(frappe.local.message_log)
	frappe_sms.send_sms([number], payload["message"], success_msg=False)
	# send_sms speaks to a desk user; here nobody is listening.
	del frappe.local.message_log[messages_before:]
	sent = (
		_("{0}: SMS to {1} sent").format(payload.get("recipient") or "", number)
		if payload.get("number")
		else _("{0}: SMS sent (number hidden)").format(payload.get("recipient") or "")
	)
	return {
		"status": "Success",
		"result": sent,
		"response": json.dumps({"accepted": True}),
		"minutes_saved": default_minutes(wf.SEND_SMS),
	}


def _answer_of(error):
	"""The gateway's answer, short: its status and the start of its body."""
	response = getattr(error, "response", None)
	if response is None:
		return json.dumps({"error": error_summary(error)[:MAX_ANSWER]})
	return json.dumps({"status_code": response.status_code, "body": (response.text or "")[:MAX_ANSWER]})


def _retry_or_fail(row_name, summary, answer):
	attempts = frappe.db.get_value("Automation Log Action", row_name, "attempts")
	return delivery.retry_or_fail(attempts, SMS_RETRIES, SMS_BACKOFF_MINUTES, now_datetime(), summary, answer)


def settle_summaries(log_name):
	"""The action's own row says Queued until every recipient row is settled, then Success or Failed
	(and the log Failed if any SMS failed)."""
	rows = frappe.get_all(
		"Automation Log Action",
		filters={"parent": log_name, "parenttype": "Automation Log", "action_type": wf.SEND_SMS},
		fields=["name", "action_row", "status", "payload"],
	)
	for action_row in {row.action_row for row in rows}:
		mine = [row for row in rows if row.action_row == action_row]
		summary = [row for row in mine if not row.payload and row.status == "Queued"]
		deliveries = [row for row in mine if row.payload]
		if not summary or any(row.status in ("Queued", "Sending") for row in deliveries):
			continue
		sent = sum(1 for row in deliveries if row.status == "Success")
		failed = sum(1 for row in deliveries if row.status == "Failed")
		status = "Failed" if failed else "Success"
		result = _("{0} SMS sent, {1} failed").format(sent, failed)
		for row in summary:
			frappe.db.set_value("Automation Log Action", row.name, {"status": status, "result": result})
		if failed:
			frappe.db.set_value("Automation Log", log_name, "outcome", "Failed", update_modified=False)


# ----------------------------------------------------------------------------------------------
# At rule save


def validate_sms_actions(actions):
	"""A rule (or policy level) with Send SMS cannot be saved while SMS Settings has no gateway:
	better a clear message now than a failure on every run."""
	if any(row.get("action_type") == wf.SEND_SMS for row in actions) and not gateway_configured():
		frappe.throw(
			_(
				"Send SMS needs a gateway: ask a System Manager to fill in the SMS Gateway URL in {0} first"
			).format(frappe.bold(_("SMS Settings"))),
			title=_("SMS Settings not configured"),
		)


def preview_sms(intent, doc):
	"""What Send SMS would do for this document: the text and each recipient's number or the reason
	it would be skipped. Nothing is sent."""
	message = render(intent["message"], doc, None)
	recipients, hidden = [], 0
	# The person asking sees only the numbers they may read themselves; the others are counted.
	for label, raw, _source, shown in visible_recipients(intent, doc, frappe.session.user):
		if not shown:
			hidden += 1
			recipients.append({"recipient": label, "number": HIDDEN, "hidden": True})
			continue
		number, reason = normalize_number(raw) if raw is not None else (None, _("no number"))
		recipients.append({"recipient": label, "number": number, "skipped": reason})
	numbers = [r["number"] for r in recipients if r["number"] and not r.get("hidden")]
	if hidden:
		numbers.append(_("{0} hidden ({1})").format(hidden, HIDDEN))
	summary = _("SMS to {0}: {1}").format(", ".join(numbers) or _("nobody"), message)
	if not gateway_configured():
		summary = _("{0} · SMS Settings has no SMS Gateway URL").format(summary)
	return {"message": message, "recipients": recipients, "summary": summary}
