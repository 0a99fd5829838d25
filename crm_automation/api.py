"""Whitelisted methods for the desk. Each checks permission first, then delegates."""

import json

import frappe
from frappe import _

from crm_automation.engine import describe_operators
from crm_automation.engine.fieldtypes import UNSUPPORTED, kind_of

MANAGER_ROLES = ("System Manager", "CRM Automation Manager")


def _require_manager():
	if not set(MANAGER_ROLES) & set(frappe.get_roles()):
		frappe.throw(_("Only a CRM Automation Manager can do this"), frappe.PermissionError)


@frappe.whitelist()
def get_condition_fields(doctype: str):
	"""Fields a condition or action can use, with the operators that fit each: the desk's pickers."""
	frappe.has_permission("Workflow Rule", "read", throw=True)
	from crm_automation.engine.fieldtypes import STANDARD_FIELDS

	meta = frappe.get_meta(doctype)
	fields = [
		{"fieldname": name, "label": _(f["label"]), "fieldtype": f["fieldtype"], "options": f.get("options")}
		for name, f in STANDARD_FIELDS.items()
	]
	fields += [
		{"fieldname": df.fieldname, "label": _(df.label or df.fieldname), "fieldtype": df.fieldtype, "options": df.options}
		for df in meta.fields
		if df.fieldname and kind_of(df.fieldtype) != UNSUPPORTED
	]
	for field in fields:
		field["operators"] = describe_operators(field["fieldtype"])
	return fields


@frappe.whitelist(methods=["POST"])
def track_activity(document: str, activity_type: str, document_type: str = "Lead", note: str | None = None):
	"""Record a behaviour signal (a product page view, an inquiry...) on a Lead, Opportunity or
	Customer from outside, with an API key; activity criteria count these. Returns the new score."""
	from crm_automation.scoring import check_rate_limit, rescore

	check_rate_limit()
	if not document or not isinstance(document, str):
		frappe.throw(_("Say which {0} the activity belongs to (document)").format(_(document_type)))
	if not frappe.db.exists("DocType", document_type):
		frappe.throw(_("{0} is not a document type").format(frappe.bold(document_type)))
	if not frappe.db.exists(document_type, document):
		frappe.throw(
			_("{0} {1} does not exist").format(_(document_type), frappe.bold(document)), frappe.DoesNotExistError
		)
	frappe.has_permission(document_type, "read", doc=document, throw=True)
	if not activity_type or not frappe.db.exists("CRM Activity Type", activity_type):
		known = ", ".join(frappe.get_all("CRM Activity Type", pluck="name", order_by="name asc"))
		frappe.throw(
			_("Unknown activity type {0} (known: {1})").format(frappe.bold(activity_type), known or _("none yet"))
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
	_require_manager()
	from crm_automation.dry_run import dry_run

	chosen = frappe.parse_json(names) if names else None
	return dry_run(rule, names=chosen, last=int(last) if last else None)


@frappe.whitelist()
def replay_rule(rule: str, days: int = 30):
	"""What a Workflow Rule would have done over the last N days of documents: counts only."""
	_require_manager()
	from crm_automation.dry_run import replay

	return replay(rule, days)


@frappe.whitelist()
def get_applicable_automations(doctype: str, name: str):
	"""'Which automations apply to this document?': every enabled rule evaluated on it now."""
	frappe.has_permission(doctype, "read", doc=name, throw=True)
	from crm_automation.dry_run import automations_for

	return automations_for(frappe.get_doc(doctype, name))


@frappe.whitelist()
def hours_saved_this_week(filters=None):
	"""The 'Hours Saved This Week' number card: minutes saved by automation since Monday, in hours."""
	frappe.has_permission("Automation Log", "read", throw=True)
	from frappe.utils import add_days, getdate

	monday = add_days(getdate(), -getdate().weekday())
	minutes = frappe.db.sql(
		"select sum(minutes_saved) from `tabAutomation Log` where creation >= %s and outcome = 'Success'", monday
	)[0][0]
	return {"value": round((minutes or 0) / 60, 1), "fieldtype": "Float"}


@frappe.whitelist()
def get_manual_rules(doctype: str):
	frappe.has_permission(doctype, "read", throw=True)
	return frappe.get_all(
		"Workflow Rule",
		filters={"document_type": doctype, "trigger": "Manual", "enabled": 1},
		fields=["name", "description"],
		order_by="priority desc, name asc",
	)


@frappe.whitelist(methods=["POST"])
def run_manual_rule(rule: str, doctype: str, name: str):
	"""Run a Manual rule on one document, as the Automations button and the API do."""
	doc = frappe.get_doc(doctype, name)
	doc.check_permission("write")
	from crm_automation.rules import get_compiled_rule
	from crm_automation.runner import run_rule

	compiled = get_compiled_rule(rule)
	if not compiled or compiled.trigger != "Manual" or compiled.document_type != doctype:
		frappe.throw(
			_("{0} is not an enabled Manual rule for {1}").format(frappe.bold(rule), frappe.bold(doctype))
		)
	log = run_rule(compiled, doc, None, "manual")
	if not log:
		return {"outcome": "Skipped", "reason": _("The rule's conditions are not met")}
	return frappe.db.get_value("Automation Log", log, ["name", "outcome", "reason", "branch"], as_dict=True)


@frappe.whitelist()
def get_escalation_status(doctype: str, name: str):
	"""The document's running escalation clocks: current level and the next escalation."""
	frappe.has_permission(doctype, "read", doc=name, throw=True)
	return frappe.get_all(
		"Escalation State",
		filters={"reference_doctype": doctype, "reference_name": name, "status": ("!=", "Stopped")},
		fields=["policy", "status", "current_level", "next_escalation", "next_escalation_on"],
	)


@frappe.whitelist()
def get_automation_history(doctype: str, name: str, limit: int = 20):
	"""Why automation did what it did on this document: its recent runs, for anyone who can read it."""
	frappe.has_permission(doctype, "read", doc=name, throw=True)
	logs = frappe.get_all(
		"Automation Log",
		filters={"reference_doctype": doctype, "reference_name": name},
		fields=["name", "rule_type", "rule", "trigger", "outcome", "branch", "reason", "creation", "trace"],
		order_by="creation desc",
		limit=min(int(limit), 100),
	)
	for log in logs:
		log.trace = json.loads(log.trace) if log.trace else []
		log.actions = frappe.get_all(
			"Automation Log Action",
			filters={"parent": log.name, "parenttype": "Automation Log"},
			fields=["action_type", "status", "result", "created_doctype", "created_name"],
			order_by="idx asc",
		)
	return logs


@frappe.whitelist(methods=["POST"])
def retry_failed_actions(log: str):
	"""Run the failed actions of a logged run again on the document as it is now."""
	_require_manager()
	from crm_automation import actions
	from crm_automation.rules import compile_rule

	log_doc = frappe.get_doc("Automation Log", log)
	rule_doc = frappe.get_doc("Workflow Rule", log_doc.rule)
	compiled = compile_rule(rule_doc)
	doc = frappe.get_doc(log_doc.reference_doctype, log_doc.reference_name)
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
			row.attempts = (row.attempts or 0) + 1
	if not any(row.status == "Failed" for row in log_doc.actions):
		log_doc.outcome = "Success"
	log_doc.save(ignore_permissions=True)
	actions.after_run(log_doc.name, results)
	return log_doc.outcome
