"""The only layer that writes: carries out the intents the engine returned.

Each action runs inside its own savepoint. A failing action is rolled back alone, recorded with its
traceback and never breaks the user's save. One module per action family: assignment, messages
(email, notification, ToDo), records (values, tags, comments, documents) and webhooks.
"""

import traceback

import frappe

from crm_automation.actions import on_linked_targets as linked_targets
from crm_automation.actions import sms
from crm_automation.actions.assignment import assign, assignment_candidates, unassign
from crm_automation.actions.common import ActionError, default_minutes, error_summary, minutes_saved, render
from crm_automation.actions.messages import (
	create_todo,
	email_content,
	notify_users,
	send_email,
	system_notification,
)
from crm_automation.actions.recipients import resolve_addresses, resolve_users
from crm_automation.actions.records import (
	add_comment,
	add_tag,
	create_document,
	link_back,
	reject,
	reject_message,
	set_value,
	set_value_before_save,
	shown_text,
	value_for,
)
from crm_automation.actions.webhooks import deliver_webhooks, request_delivery, retry_due_webhooks, webhook
from crm_automation.engine import workflow as wf
from crm_automation.trust import run_as as permissions
from crm_automation.trust.redaction import value_field_of
from crm_automation.trust.run_as_reads import reading_as


def carry_out(intents, doc, before, rule):
	return [_carry_out_one(intent, doc, before, rule) for intent in intents]


def _carry_out_one(intent, doc, before, rule):
	handler = _HANDLERS[intent["type"]]
	if intent.get("target"):
		handler = linked_targets.LINKED_HANDLERS.get(intent["type"], handler)
	result = {"action_type": intent["type"], "action_row": intent.get("row"), "status": "Success"}
	if intent["type"] == wf.SET_VALUE:
		# Kept apart from the sentence: the history hides the values from those who may not read it.
		result["value_field"] = value_field_of(intent)
	savepoint = f"crm_automation_action_{intent.get('row') or 0}"
	messages_before = len(frappe.local.message_log)
	frappe.db.savepoint(savepoint)
	try:
		# Each action is checked against the rights of the user the rule runs as, not the user
		# whose save set it off: a rule never does more than its author may.
		# An action on a linked document ("the Customer of this order") is checked, and runs, on it.
		run_as = permissions.run_as_of(rule)
		# A departed run-as user is named as such, before a linked document reads as not found.
		permissions.check_run_as_user(run_as)
		target_doc = linked_targets.resolve_target(intent, doc, run_as)
		intent = linked_targets.with_linked_inputs(intent, target_doc, run_as)
		permissions.check_action_allowed(intent["type"], target_doc, run_as)
		with reading_as(run_as):
			outcome = handler(intent, target_doc, before if target_doc is doc else None, rule) or {}
		result.update(linked_targets.describe_target(outcome, doc, target_doc))
	except linked_targets.TargetSkipped as skipped:
		frappe.db.rollback(save_point=savepoint)
		result.update(status="Skipped", result=str(skipped))
	except Exception as error:
		frappe.db.rollback(save_point=savepoint)
		# The user's save succeeded; the red dialog of a failed automation would say otherwise.
		del frappe.local.message_log[messages_before:]
		result.update(status="Failed", result=error_summary(error), error=traceback.format_exc())
	return result


def after_run(log_name, results):
	"""Side effects that leave the database start only after the transaction commits."""
	sms.after_run(log_name, results)
	if any(r["action_type"] == wf.WEBHOOK and r["status"] == "Queued" for r in results):
		frappe.db.after_commit.add(request_delivery)


_HANDLERS = {
	wf.ASSIGN: assign,
	wf.UNASSIGN: unassign,
	wf.SEND_EMAIL: send_email,
	wf.NOTIFY: system_notification,
	wf.CREATE_TODO: create_todo,
	wf.SET_VALUE: set_value,
	wf.ADD_TAG: add_tag,
	wf.ADD_COMMENT: add_comment,
	wf.CREATE_DOCUMENT: create_document,
	wf.WEBHOOK: webhook,
	wf.SEND_SMS: sms.send_sms,
	wf.REJECT: reject,
}
