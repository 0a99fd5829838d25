"""The sandbox: what a rule would do, shown and never done.

Workflow Rules are evaluated with their trace and every action is rendered (email subject, body and
recipients; ToDo text; field changes; the document it would create; who would be assigned) without
writing anything but one Dry Run entry per document in the Automation Log. Lead Score Rules show
the score breakdown; Escalation Policies the schedule of their levels.
"""

import datetime
import json
import time
from collections import Counter

import frappe
from frappe import _
from frappe.utils import add_days, escape_html, get_datetime, now_datetime

from crm_automation import actions
from crm_automation.actions import send_windows
from crm_automation.actions.common import error_summary
from crm_automation.actions.on_linked_targets import TargetSkipped, preview_on_target, with_linked_inputs
from crm_automation.actions.recipients import address_entries, format_addresses, shown_addresses
from crm_automation.actions.records import STANDARD_MAPPERS
from crm_automation.actions.sms import preview_sms
from crm_automation.engine import workflow as wf
from crm_automation.engine.budget import within_run_budget
from crm_automation.engine.expressions import ExpressionError, evaluate_expression
from crm_automation.escalation import compile_policy_doc
from crm_automation.offline.simulator_summary import outcome_line
from crm_automation.runtime.linked_values import evaluation_values, field_values
from crm_automation.runtime.run_log import make_log
from crm_automation.runtime.workflow_rules import compile_workflow_rule_doc, readable_plain_values
from crm_automation.scoring import compile_score_rule_doc, score_documents
from crm_automation.sequences.timeline import dry_run_schedule
from crm_automation.trust.field_access import readable_view
from crm_automation.trust.record_access import permitted_document, readable_names
from crm_automation.trust.redaction import HIDDEN, Reader, redact_trace, scrub, scrub_all, value_field_of
from crm_automation.trust.roles import is_system_manager
from crm_automation.trust.run_as import run_as_of
from crm_automation.trust.run_as_reads import reader_for, reading_as

RULE_DOCTYPES = ("Workflow Rule", "Lead Score Rule", "Escalation Policy")
MAX_DRY_RUN_DOCUMENTS = 100
MAX_REPLAY_DOCUMENTS = 10000
FAILED = "Failed"


def rule_doctype_of(name):
	"""The doctype of the rule or policy named ``name`` that the session user may read. One that is
	missing and one they may not read get the same answer."""
	for doctype in RULE_DOCTYPES:
		if isinstance(name, str) and frappe.db.exists(doctype, name):
			if frappe.has_permission(doctype, "read", doc=name):
				return doctype
			break
	frappe.throw(
		_("No rule or policy named {0} was found, or you may not read it").format(
			frappe.bold(escape_html(str(name)))
		),
		frappe.PermissionError,
	)


def _documents(doctype, names, last, since=None):
	"""Only documents the session user may read: others are neither loaded nor counted, and a
	named one that is forbidden gets the same answer as one that does not exist."""
	if names:
		return [permitted_document(doctype, name) for name in names]
	filters = {"creation": (">=", since)} if since else {}
	latest = readable_names(doctype, filters=filters, limit=last or 1)
	return [frappe.get_doc(doctype, name) for name in latest]


def _rule(rule_type, name):
	return permitted_document(rule_type, name)


def dry_run(rule, names=None, last=None, log=True):
	rule_type = rule_doctype_of(rule)
	rule_doc = _rule(rule_type, rule)
	doctype = rule_doc.document_type
	documents = _documents(doctype, names, last)
	# A preview reads (get_value in templates) only what the person asking for it may read.
	with reading_as(frappe.session.user):
		if rule_type == "Workflow Rule":
			# Each document's preview has the budget of one run, as a save has (runner.run_rule).
			results = [within_run_budget(_workflow, rule_doc, doc, log) for doc in documents]
		elif rule_type == "Lead Score Rule":
			results = [_score(rule_doc, doc) for doc in documents]
		else:
			results = [_escalation(rule_doc, doc) for doc in documents]
	return {"rule": rule, "rule_type": rule_type, "document_type": doctype, "results": results}


def _workflow(rule_doc, doc, log=True, counts_only=False):
	started = time.perf_counter()
	compiled = compile_workflow_rule_doc(rule_doc)
	values, _before = evaluation_values(doc, None, (compiled,), user=evaluating_user(compiled))
	evaluation = compiled.evaluate(values, None, explain=True)
	evaluation = with_advanced_condition(compiled, rule_doc.condition_expression, evaluation, doc)
	result = {
		"document": doc.name,
		"outcome": evaluation.outcome,
		"reason": evaluation.reason,
		"branch": evaluation.branch,
		"trace": evaluation.trace,
		"actions": [preview_or_failure(intent, doc, compiled) for intent in evaluation.intents],
	}
	if compiled.sequence and evaluation.fired:
		shown = Reader().shown_document(doc)
		result["schedule"], result["timeline"] = dry_run_schedule(rule_doc, compiled, shown, now_datetime())
	if compiled.trigger in (wf.TRIGGER_VALUE_CHANGE, wf.TRIGGER_SCORE_BAND):
		result["note"] = _(
			"Evaluated as the document is now, with no earlier state: change triggers do not fire"
		)
	if log:
		make_log(
			rule_type="Workflow Rule",
			rule=compiled.name,
			trigger=compiled.trigger,
			event="dry run",
			doc=doc,
			outcome="Dry Run",
			branch=evaluation.branch,
			reason=(
				_("Would have: {0} ({1})").format(_(evaluation.outcome), evaluation.reason)
				if evaluation.reason
				else _("Would have: {0}").format(_(evaluation.outcome))
			),
			trace=evaluation.trace,
			results=[
				{
					"action_type": a["type"],
					"status": "Dry Run",
					"result": a["summary"][:500],
					"value_field": value_field_of(intent) if intent["type"] == wf.SET_VALUE else None,
				}
				for intent, a in zip(evaluation.intents, result["actions"], strict=True)
			],
			duration_ms=(time.perf_counter() - started) * 1000,
		)
	return result if counts_only else shown_to_asker(result, doc)


def evaluating_user(compiled):
	"""Whose view of the document a rule is evaluated on when someone asks what it would do (dry
	run, replay, the panel). Evaluated as the system, the outcome alone ("Fired") told the asker a
	level-5 value or a field of a linked record they may not read, one guess or one document at a
	time. So it is the asker's view, unless the asker is a System Manager (who may read it all
	anyway): then the rule's own run-as view, the outcome a live run would have."""
	user = frappe.session.user
	return run_as_of(compiled) if is_system_manager(user) else user


def shown_to_asker(result, doc):
	"""A dry run's answer for the person asking: the trace without values of fields they may not read
	(own, linked, child rows: redaction.redact_trace), and those values, as far as they are known,
	blotted out of every text. Templates were rendered on what they may read already (preview)."""
	reader = Reader()
	if reader.everything:
		return result
	secrets = set()
	result["trace"] = redact_trace(result.get("trace"), doc.doctype, doc=doc, reader=reader, found=secrets)
	return scrub_all(result, secrets | reader.secrets_of(doc))


def with_advanced_condition(compiled, expression, evaluation, doc):
	"""The evaluation with the rule's advanced condition applied, as a save applies it
	(runner._run_rule), on the same view of the document as the rest (evaluating_user): false skips,
	and one that fails or goes over its budget is the run's failure, not an error of the dry run."""
	expression = (expression or "").strip()
	if not (evaluation.fired and expression):
		return evaluation
	user = evaluating_user(compiled)
	try:
		holds = evaluate_expression(expression, readable_plain_values(doc, user), None, reader_for(user))
	except ExpressionError as error:
		reason = _("The advanced condition failed: {0}").format(error.first.message)
		return wf.Evaluation(compiled.name, FAILED, reason, trace=evaluation.trace)
	if not holds:
		reason = _("the advanced condition is false")
		return wf.Evaluation(compiled.name, wf.Evaluation.SKIPPED, reason, trace=evaluation.trace)
	return evaluation


def preview_or_failure(intent, doc, rule):
	"""`preview`, or why the action would fail (a template over its budget, a value that does not
	render): a failing action is reported on its own line, as a save logs it, and the others are
	still shown."""
	messages_before = len(frappe.local.message_log)
	try:
		return preview(intent, doc, rule)
	except frappe.ValidationError as error:
		# A thrown message would reach the desk as an error of the whole request: it is this action's.
		del frappe.local.message_log[messages_before:]
		reason = error_summary(error)
		return {
			"type": intent["type"],
			"status": FAILED,
			"error": reason,
			"summary": _("would fail: {0}").format(reason),
		}


def preview(intent, doc, rule):
	"""An action as it would be carried out, rendered, with nothing written: on the document as the
	person asking may read it (fields they may not read are absent, on a linked target too)."""
	kind = intent["type"]
	out = {"type": kind}
	reader = Reader()
	source_doc, doc = doc, reader.shown_document(doc)
	if intent.get("target"):
		return preview_on_target(intent, doc, rule, preview)
	if intent.get("user_path"):
		try:
			intent = with_linked_inputs(intent, doc, frappe.session.user)
		except TargetSkipped as skipped:
			return {"type": kind, "summary": _("skipped: {0}").format(frappe.utils.strip_html(str(skipped)))}
	if kind == wf.SEND_SMS:
		out.update(preview_sms(intent, doc))
	elif kind == wf.SEND_EMAIL:
		subject, message = actions.email_content(intent, doc, None)
		# Only the addresses the person asking may read are shown; the others are counted.
		entries = address_entries(intent, doc)
		shown, hidden = shown_addresses(entries, frappe.session.user, doc)
		out.update(subject=subject, message=message, recipients=shown, hidden_recipients=hidden)
		out["summary"] = _("email {0} to {1}").format(subject, format_addresses(shown, hidden) or _("nobody"))
	elif kind == wf.NOTIFY:
		out.update(
			subject=actions.render(intent["subject"], doc, None), users=actions.resolve_users(intent, doc)
		)
		out["summary"] = _("notify {0}: {1}").format(", ".join(out["users"]) or _("nobody"), out["subject"])
	elif kind == wf.CREATE_TODO:
		out.update(
			description=actions.render(intent["description"], doc, None),
			users=actions.resolve_users(intent, doc),
		)
		out["summary"] = _("ToDo for {0}: {1}").format(
			", ".join(out["users"]) or _("nobody"), out["description"]
		)
	elif kind == wf.SET_VALUE:
		new = actions.value_for(intent, doc, None)
		out.update(field=intent["field"], old=doc.get(intent["field"]), new=new)
		if not reader.may_read_field(doc.doctype, intent["field"]):
			out.update(old=HIDDEN, new=HIDDEN)
		out["summary"] = _("{0}: {1} → {2}").format(intent["field"], out["old"], out["new"])
	elif kind == wf.ASSIGN:
		candidates = actions.assignment_candidates(intent, doc)
		out.update(candidates=candidates, strategy=intent["strategy"])
		out["summary"] = _("assign by {0} among {1}").format(
			intent["strategy"].lower(), ", ".join(candidates) or _("nobody")
		)
	elif kind == wf.CREATE_DOCUMENT:
		mapper = STANDARD_MAPPERS.get((doc.doctype, intent["doctype"])) if intent["use_mapper"] else None
		new = frappe.get_attr(mapper)(doc.name) if mapper else frappe.new_doc(intent["doctype"])
		for fieldname, source in intent["field_map"].items():
			new.set(fieldname, actions.render(source, doc, None) if isinstance(source, str) else source)
		actions.link_back(new, doc)
		# A mapper copies from the stored document: only fields the person asking may read of the new
		# document are shown, without the values they may not read of this one.
		secrets = reader.secrets_of(source_doc)
		shown = {
			k: scrub(str(v), secrets)
			for k, v in new.as_dict(no_default_fields=True).items()
			if v not in (None, "", [], 0)
			and not isinstance(v, list)
			and reader.may_read_doctype(intent["doctype"])
			and reader.may_read_field(intent["doctype"], k)
		}
		out.update(document={"doctype": intent["doctype"], **dict(list(shown.items())[:15])})
		out["summary"] = _("create a draft {0}").format(intent["doctype"])
	elif kind == wf.WEBHOOK:
		out.update(url=intent["url"])
		out["summary"] = _("POST the document to {0}").format(intent["url"])
	elif kind in (wf.ADD_COMMENT, wf.REJECT):
		out.update(message=actions.render(intent["message"], doc, None))
		out["summary"] = (_("comment: {0}") if kind == wf.ADD_COMMENT else _("reject: {0}")).format(
			out["message"]
		)
	elif kind == wf.ADD_TAG:
		out["summary"] = _("tag {0}").format(intent["tag"])
	else:
		out["summary"] = kind
	out.update(send_windows.preview_deferral(kind, rule))
	if out.get("deferral"):
		out["summary"] = _("{0} ({1})").format(out["summary"], out["deferral"])
	return out


def _score(rule_doc, doc):
	result = score_documents(compile_score_rule_doc(rule_doc), [field_values(doc)])[doc.name]
	return {
		"document": doc.name,
		"outcome": result.grade or _("no band"),
		"score": result.as_dict(),
		"explained": result.explain(),
	}


def _escalation(rule_doc, doc):
	policy = compile_policy_doc(rule_doc)
	# Whether a clock runs must not tell the asker a field they may not read (evaluating_user).
	user = frappe.session.user
	values = field_values(doc)
	if not is_system_manager(user):
		values = readable_view(values, doc.doctype, user)
	if not policy.applies(values) or policy.stopped(values):
		return {
			"document": doc.name,
			"outcome": _("Not Watched") if not policy.applies(values) else _("Stopped"),
		}
	start = get_datetime(policy.clock_start_for(values, now_datetime()))
	schedule = []
	for level in policy.levels:
		if level.warn_before:
			schedule.append(
				{
					"at": str(policy.calendar.deadline(start, level.after - level.warn_before)),
					"what": _("Warning before level {0}").format(level.number),
				}
			)
		schedule.append(
			{
				"at": str(policy.calendar.deadline(start, level.after)),
				"what": level.label(),
				"actions": [i["type"] for i in level.intents],
			}
		)
	return {
		"document": doc.name,
		"outcome": _("Paused") if policy.paused(values) else _("Running"),
		"clock_started": str(start),
		"schedule": schedule,
	}


def automations_for(doc):
	"""Every enabled Workflow Rule of the document's type, evaluated on it now, and its score and
	escalation clocks: 'which automations apply to this document?'"""
	out = []
	for name in frappe.get_all(
		"Workflow Rule",
		filters={"document_type": doc.doctype, "enabled": 1},
		pluck="name",
		order_by="priority desc, name asc",
	):
		rule = frappe.get_doc("Workflow Rule", name)
		compiled = compile_workflow_rule_doc(rule)
		values, _before = evaluation_values(doc, None, (compiled,), user=evaluating_user(compiled))
		evaluation = compiled.evaluate(values, None, explain=True)
		out.append(
			{
				"rule": name,
				"trigger": rule.trigger,
				"would": evaluation.outcome,
				"reason": evaluation.reason,
				"branch": evaluation.branch,
				"trace": evaluation.trace,
			}
		)
	return out


def replay(rule, days=30):
	"""What a Workflow Rule would have done over the documents created in the last N days: counts
	per outcome, branch and action. Nothing is written, not even a log entry."""
	rule_doc = _rule("Workflow Rule", rule)
	since = add_days(now_datetime(), -int(days))
	documents = _documents(rule_doc.document_type, None, last=MAX_REPLAY_DOCUMENTS, since=since)
	outcomes, branches, action_counts = Counter(), Counter(), Counter()
	for doc in documents:
		with reading_as(frappe.session.user):
			# Only counts leave the replay: nothing of the document to mask for the asker.
			result = _workflow(rule_doc, doc, log=False, counts_only=True)
		outcomes[result["outcome"]] += 1
		if result["branch"]:
			branches[result["branch"]] += 1
		for action in result["actions"]:
			action_counts[action["type"]] += 1
	return {
		"rule": rule,
		"days": int(days),
		"documents": len(documents),
		"outcomes": dict(outcomes),
		"branches": dict(branches),
		"actions": dict(action_counts),
	}


def format_dry_run(result):
	lines = [
		f"{result['rule_type']} {result['rule']} on {result['document_type']} (dry run: nothing written)"
	]
	for entry in result["results"]:
		lines.append(outcome_line(entry, entry["document"]))
		for leaf in entry.get("trace") or []:
			mark = "•" if leaf.get("result") is None else "✔" if leaf["result"] else "✘"
			lines.append(
				f"      {mark} {leaf['label']} {leaf['op']} {json.dumps(leaf['expected'], default=str)}: is {json.dumps(leaf['actual'], default=str)}"
			)
		for action in entry.get("actions") or []:
			lines.append(f"      → {action['summary']}")
		if entry.get("explained"):
			lines.append(f"      score {entry['score']['score']}: {entry['explained']}")
		for step in entry.get("schedule") or []:
			lines.append(f"      {step['at']}  {step['what']}")
	return "\n".join(lines)
