"""Whitelisted methods for the desk. Each checks permission first, then delegates."""

import json

import frappe
from frappe import _
from frappe.utils import add_days, escape_html, getdate

from crm_automation import actions
from crm_automation.api.linked_field_pickers import picker_meta, readable_fields
from crm_automation.dry_run import MAX_DRY_RUN_DOCUMENTS, automations_for, dry_run, replay
from crm_automation.engine import describe_operators
from crm_automation.engine.fieldtypes import STANDARD_FIELDS, UNSUPPORTED, kind_of
from crm_automation.engine.i18n import translating
from crm_automation.runtime.runner import run_rule
from crm_automation.runtime.workflow_rules import compile_workflow_rule_doc, get_compiled_rule
from crm_automation.scoring import check_rate_limit, get_score_rule, rescore
from crm_automation.trust.record_access import permitted_document
from crm_automation.trust.redaction import Reader, redact_log, redact_text, redact_trace, scrub
from crm_automation.trust.roles import INTEGRATION_ROLE, check_rule_manager, may_edit_rules


@frappe.whitelist()
def get_condition_fields(doctype: str):
	"""Fields a condition or action can use, with the operators that fit each: the desk's pickers."""
	frappe.has_permission("Workflow Rule", "read", throw=True)
	# Only doctypes and fields the asker may read: the rule's save refuses the others anyway.
	meta = picker_meta(doctype)
	fields = [
		{"fieldname": name, "label": _(f["label"]), "fieldtype": f["fieldtype"], "options": f.get("options")}
		for name, f in STANDARD_FIELDS.items()
	]
	fields += [
		{
			"fieldname": df.fieldname,
			"label": _(df.label or df.fieldname),
			"fieldtype": df.fieldtype,
			"options": df.options,
		}
		for df in readable_fields(meta)
		if kind_of(df.fieldtype) != UNSUPPORTED
	]
	for field in fields:
		field["operators"] = describe_operators(field["fieldtype"])
	return fields


@frappe.whitelist(methods=["POST"])
def track_activity(document: str, activity_type: str, document_type: str = "Lead", note: str | None = None):
	"""Record a behaviour signal (a product page view, an inquiry...) on a scored document from
	outside, with an API key; activity criteria count these. Returns the new score.

	The caller needs write permission on the document, or the CRM Automation Integration role and
	read permission on it; a missing and a forbidden document get the same answer."""
	check_rate_limit()
	if not document or not isinstance(document, str):
		frappe.throw(_("Say which {0} the activity belongs to (document)").format(_(document_type)))
	if not isinstance(document_type, str) or not get_score_rule(document_type):
		frappe.throw(
			_(
				"{0} has no enabled Lead Score Rule: activities are tracked only on scored document types"
			).format(frappe.bold(document_type)),
			frappe.PermissionError,
		)
	needed = ("read",) if INTEGRATION_ROLE in frappe.get_roles() else ("read", "write")
	permitted_document(document_type, document, needed)
	if not activity_type or not frappe.db.exists("CRM Activity Type", activity_type):
		known = ", ".join(frappe.get_all("CRM Activity Type", pluck="name", order_by="name asc"))
		frappe.throw(
			_("Unknown activity type {0} (known: {1})").format(
				frappe.bold(activity_type), known or _("none yet")
			)
		)
	activity = frappe.get_doc(
		{
			"doctype": "CRM Activity",
			"reference_doctype": document_type,
			"reference_name": document,
			"activity_type": activity_type,
			"note": note,
		}
	).insert(ignore_permissions=True)
	result = rescore(document_type, document)
	return {
		"activity": activity.name,
		"score": result.score if result else None,
		"grade": result.grade if result else None,
	}


@frappe.whitelist()
def dry_run_rule(rule: str, names: str | None = None, last: int | None = None):
	"""The Test button: what a rule would do on chosen or the latest documents; nothing written but
	a Dry Run log entry."""
	check_rule_manager()
	chosen = _parse_names(names)
	if chosen is not None and not (
		isinstance(chosen, list) and all(isinstance(n, str) and n for n in chosen) and chosen
	):
		frappe.throw(
			_("names must be a list of document names, not {0}").format(frappe.bold(escape_html(str(names))))
		)
	if chosen and len(chosen) > MAX_DRY_RUN_DOCUMENTS:
		frappe.throw(_("A dry run takes at most {0} documents").format(MAX_DRY_RUN_DOCUMENTS))
	last = min(max(int(last), 1), MAX_DRY_RUN_DOCUMENTS) if last else None
	# The answer shows the person asking only what they may read (dry_run.py masks it).
	with translating(_):  # the engine's reasons and steps in the reader's language
		return dry_run(rule, names=chosen, last=last)


def _parse_names(names):
	"""A JSON list of names, or one bare name as the desk's Test dialog may send it."""
	if not names:
		return None
	try:
		parsed = frappe.parse_json(names)
	except ValueError:
		return [names]
	return [parsed] if isinstance(parsed, str) else parsed


@frappe.whitelist()
def replay_rule_on_documents(rule: str, days: int = 30):
	"""What a Workflow Rule would have done over the last N days of documents: counts only."""
	check_rule_manager()
	return replay(rule, days)


@frappe.whitelist()
def get_applicable_automations(doctype: str, name: str):
	"""'Which automations apply to this document?': every enabled rule evaluated on it now."""
	doc = permitted_document(doctype, name)
	sees_recipients = may_edit_rules()
	reader = Reader()
	with translating(_):  # the engine's reasons in the reader's language
		rows = automations_for(doc)
	for row in rows:
		secrets = set()
		row["trace"] = redact_trace(row.get("trace"), doctype, doc=doc, reader=reader, found=secrets)
		row["reason"] = scrub(row.get("reason"), secrets | reader.secrets_of(doc))
		if not sees_recipients:
			row["reason"] = redact_text(row.get("reason"))
	return rows


@frappe.whitelist()
def hours_saved_this_week(filters=None):
	"""The 'Hours Saved This Week' number card: minutes saved by automation since Monday, in hours."""
	frappe.has_permission("Automation Log", "read", throw=True)
	monday = add_days(getdate(), -getdate().weekday())
	minutes = frappe.db.sql(
		"select sum(minutes_saved) from `tabAutomation Log` where creation >= %s and outcome = 'Success'",
		monday,
	)[0][0]
	return {"value": round((minutes or 0) / 60, 1), "fieldtype": "Float"}


@frappe.whitelist()
def get_manual_rules(doctype: str):
	"""The Manual rules a user may run from a form of this doctype: none unless they may change it."""
	if not isinstance(doctype, str) or not frappe.db.exists("DocType", doctype):
		frappe.throw(_("{0} is not a document type").format(frappe.bold(doctype)), frappe.PermissionError)
	frappe.has_permission(doctype, "read", throw=True)
	if not frappe.has_permission(doctype, "write"):
		return []
	return frappe.get_all(
		"Workflow Rule",
		filters={"document_type": doctype, "trigger": "Manual", "enabled": 1},
		fields=["name", "description"],
		order_by="priority desc, name asc",
	)


@frappe.whitelist(methods=["POST"])
def run_manual_rule(rule: str, doctype: str, name: str):
	"""Run a Manual rule on one document, as the Automations button and the API do. The person
	clicking needs read and write permission on the document; the rule's actions then run as the
	rule runs."""
	doc = permitted_document(doctype, name, ("read", "write"))
	compiled = get_compiled_rule(rule) if isinstance(rule, str) else None
	if not compiled or compiled.trigger != "Manual" or compiled.document_type != doctype:
		frappe.throw(
			_("{0} is not an enabled Manual rule for {1}").format(frappe.bold(rule), frappe.bold(doctype))
		)
	log = run_rule(compiled, doc, None, "manual")
	if not log:
		return {"outcome": "Skipped", "reason": _("The rule's conditions are not met")}
	result = frappe.db.get_value("Automation Log", log, ["name", "outcome", "reason", "branch"], as_dict=True)
	return redact_log(result, may_edit_rules(), Reader(), doctype, doc)


@frappe.whitelist()
def get_escalation_status(doctype: str, name: str):
	"""The document's running escalation clocks: current level and the next escalation."""
	permitted_document(doctype, name)
	return frappe.get_all(
		"Escalation State",
		filters={"reference_doctype": doctype, "reference_name": name, "status": ("!=", "Stopped")},
		fields=["policy", "status", "current_level", "next_escalation", "next_escalation_on"],
	)


@frappe.whitelist()
def get_automation_history(doctype: str, name: str, limit: int = 20):
	"""Why automation did what it did on this document: its recent runs, for anyone who can read it.
	Where messages and webhooks went is shown only to those who may edit rules."""
	doc = permitted_document(doctype, name)
	sees_recipients = may_edit_rules()
	# Values of fields the reader may not read are hidden, field by field (redaction.Reader).
	reader = Reader()
	logs = frappe.get_all(
		"Automation Log",
		filters={"reference_doctype": doctype, "reference_name": name},
		fields=["name", "rule_type", "rule", "trigger", "outcome", "branch", "reason", "creation", "trace"],
		order_by="creation desc",
		limit=max(min(int(limit), 100), 1),
	)
	for log in logs:
		log.trace = json.loads(log.trace) if log.trace else []
		log.actions = frappe.get_all(
			"Automation Log Action",
			filters={"parent": log.name, "parenttype": "Automation Log"},
			fields=["action_type", "status", "result", "value_field", "created_doctype", "created_name"],
			order_by="idx asc",
		)
		redact_log(log, sees_recipients, reader, doctype, doc)
	return logs


@frappe.whitelist(methods=["POST"])
def retry_failed_actions(log: str):
	"""Run the failed actions of a logged run again on the document as it is now. Needs rule-manager
	rights, the log, and read and write permission on its document."""
	check_rule_manager()
	log_doc = permitted_document("Automation Log", log)
	if log_doc.rule_type != "Workflow Rule" or not frappe.db.exists("Workflow Rule", log_doc.rule):
		frappe.throw(_("Only the actions of an existing Workflow Rule can be retried"))
	rule_doc = permitted_document("Workflow Rule", log_doc.rule)
	doc = permitted_document(log_doc.reference_doctype, log_doc.reference_name, ("read", "write"))
	compiled = compile_workflow_rule_doc(rule_doc)
	failed_rows = {row.action_row for row in log_doc.actions if row.status == "Failed"}
	intents = [
		intent
		for intents in compiled.actions_by_branch.values()
		for intent in intents
		if intent["row"] in failed_rows
	]
	results = actions.carry_out(intents, doc, None, compiled)
	by_row = {r["action_row"]: r for r in results}
	for row in log_doc.actions:
		result = by_row.get(row.action_row)
		if result:
			row.status = result["status"]
			row.result = result.get("result")
			row.created_doctype = result.get("created_doctype")
			row.created_name = result.get("created_name")
			row.response = result.get("error")
			row.value_field = result.get("value_field") or row.value_field
			row.attempts = (row.attempts or 0) + 1
			if result.get("next_attempt_on"):
				# Retried outside its sending window: it waits in this row for the window to open.
				row.payload, row.next_attempt_on = result.get("payload"), result["next_attempt_on"]
	if not any(row.status == "Failed" for row in log_doc.actions):
		log_doc.outcome = "Success"
	log_doc.save(ignore_permissions=True)
	actions.after_run(log_doc.name, results)
	return log_doc.outcome
