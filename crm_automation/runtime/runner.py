"""Run compiled rules on a document: decide (engine), act (actions.py), log (Automation Log).

Loop protection at run time: a depth counter across nested automation (settings, default 3) and
"each rule fires at most once per document per request" (or background job).
"""

import time
import traceback

import frappe
from frappe import _

from crm_automation import actions
from crm_automation.engine import Evaluation
from crm_automation.engine.expressions import ExpressionError
from crm_automation.engine.workflow import FIRE_ONCE, REJECT, TRIGGER_VALIDATE
from crm_automation.runtime import validate_rules as before_save
from crm_automation.runtime.linked_values import (
	evaluation_values,
	field_values,
	linked_paths_of,
	with_linked_values,
)
from crm_automation.runtime.run_log import claim_occurrence, make_log
from crm_automation.runtime.workflow_rules import clear_rule_cache, expression_holds
from crm_automation.sequences.steps import start_sequence


class _State:
	__slots__ = ("chain", "depth", "fired")

	def __init__(self):
		self.depth = 0
		self.chain = []
		self.fired = {}


def run_state():
	state = getattr(frappe.local, "crm_automation_state", None)
	if state is None:
		state = frappe.local.crm_automation_state = _State()
	return state


def reset_request_state(*args, **kwargs):
	"""Each request and each background job starts with nothing fired (before_request, before_job)."""
	frappe.local.crm_automation_state = _State()


def get_settings():
	return frappe.get_cached_doc("CRM Automation Settings")


def run_rules(doc, event, rules):
	"""The hot path of every save with rules: only the rules the index names as candidates
	(engine/rule_index.py) are tested, each with one compiled test on values built once per save.
	While skipped runs are being logged every rule is evaluated, since each decision is logged."""
	before = doc.get_doc_before_save()
	own, own_before = field_values(doc), field_values(before)
	if get_settings().log_skipped_runs or not hasattr(rules, "candidates"):
		values = with_linked_values(own, own_before, linked_paths_of(rules))
		log_skipped = get_settings().log_skipped_runs
		for rule in rules:
			if log_skipped or rule.condition_holds(*values):
				run_rule(rule, doc, before, event, values=values)
		return
	candidates = rules.candidates(own, own_before)
	while candidates:
		values = with_linked_values(own, own_before, linked_paths_of(candidates))
		for rule in candidates:
			if rule.condition_holds(*values):
				run_rule(rule, doc, before, event, values=values)
				# What it did may have changed the document: the rules after it are looked up again.
				candidates = rules.candidates(own, own_before, after=rule)
				break
		else:
			return


def run_rule(rule, doc, before, event, occurrence_key=None, values=None):
	"""Evaluate one rule on one document and, if it fires, carry out its intents and log the run.
	Returns the Automation Log name (or None when nothing was logged)."""
	started = time.perf_counter()
	state = run_state()
	settings = get_settings()
	fired_here = state.fired.setdefault((doc.doctype, doc.name), set())
	if rule.name in fired_here:
		return None

	# One evaluation, with the trace the log shows as "why did this fire / not fire". Callers reach
	# here only for rules whose conditions hold (or while skipped runs are logged), so the trace's
	# extra cost is never paid by a rule that does not match.
	values, before_values = values or evaluation_values(doc, before, (rule,))
	evaluation = rule.evaluate(values, before_values, explain=True)
	if evaluation.fired and rule.condition_expression:
		try:
			holds = expression_holds(rule.condition_expression, doc, before, rule)
		except ExpressionError as error:
			# A condition that fails on this document (or tries what conditions may not) fails the
			# run, visibly; the user's save goes on.
			reason = _("The advanced condition failed: {0}").format(error.first.message)
			log_name = _log(rule, doc, event, evaluation, "Failed", started, reason=reason)
			record_health(rule, [{"result": reason}])
			return log_name
		if not holds:
			evaluation = Evaluation(
				rule.name, Evaluation.SKIPPED, _("the advanced condition is false"), trace=evaluation.trace
			)
	if not evaluation.fired:
		if settings.log_skipped_runs:
			return _log(rule, doc, event, evaluation, "Skipped", started, reason=evaluation.reason or None)
		return None

	max_depth = settings.max_recursion_depth or 3
	if state.depth >= max_depth:
		chain = " → ".join([*state.chain, rule.name])
		reason = _("Stopped: depth limit {0} reached ({1})").format(max_depth, chain)
		return _log(rule, doc, event, evaluation, "Skipped", started, reason=reason)

	if rule.fire_mode == FIRE_ONCE and rule.trigger != TRIGGER_VALIDATE:
		if not claim_occurrence("Workflow Rule", rule.name, doc.doctype, doc.name, "once"):
			if settings.log_skipped_runs:
				reason = _("Already fired once for this document")
				return _log(rule, doc, event, evaluation, "Skipped", started, reason=reason)
			return None
	if occurrence_key and not claim_occurrence("Workflow Rule", rule.name, doc.doctype, doc.name, occurrence_key):
		return None

	fired_here.add(rule.name)
	if event == "validate":
		return _run_before_save(rule, doc, before, evaluation, started)

	state.depth += 1
	state.chain.append(rule.name)
	try:
		results = actions.carry_out(evaluation.intents, doc, before, rule)
	finally:
		state.depth -= 1
		state.chain.pop()
	failed = [r for r in results if r["status"] == "Failed"]
	outcome = "Failed" if failed else "Success"
	log_name = _log(rule, doc, event, evaluation, outcome, started, results=results)
	actions.after_run(log_name, results)
	record_health(rule, failed)
	if getattr(rule, "sequence", None):
		start_sequence(rule, doc, event)
	return log_name


def _run_before_save(rule, doc, before, evaluation, started):
	"""Validate rules change the document being saved or reject the save; nothing else. Only a
	deliberate Reject stops the save: a rule that fails otherwise is undone, logged, counted in its
	health and shown as one short notice (before_save.py)."""
	results, rejection = before_save.apply_intents(rule, doc, before, evaluation.intents)
	failed = [r for r in results if r["status"] == "Failed"]
	if rejection:
		message = actions.reject_message(rejection, doc, before, rule)
		# The rejected save is rolled back, and the log with it; write the log after the rollback.
		frappe.db.after_rollback.add(lambda: _log_after_rollback(rule, doc, evaluation, started, message))
		frappe.throw(message, title=_("Rejected by {0}").format(rule.name))
	_log(rule, doc, "validate", evaluation, "Failed" if failed else "Success", started, results=results)
	record_health(rule, failed)
	if failed:
		before_save.notify_failure(rule)


def _log_after_rollback(rule, doc, evaluation, started, message):
	_log(rule, doc, "validate", evaluation, "Rejected", started, reason=message)
	frappe.db.commit()  # nothing else of the rejected request is left to commit with it


def _log(rule, doc, event, evaluation, outcome, started, results=(), reason=None):
	settings = get_settings()
	minutes = 0.0
	if outcome == "Success":
		minutes = actions.minutes_saved(rule, results, settings)
	return make_log(
		rule_type="Workflow Rule",
		rule=rule.name,
		trigger=rule.trigger,
		event=event,
		doc=doc,
		outcome=outcome,
		branch=evaluation.branch,
		reason=reason or evaluation.reason,
		trace=evaluation.trace,
		results=results,
		duration_ms=(time.perf_counter() - started) * 1000,
		minutes_saved=minutes,
		depth=run_state().depth,
		error="\n\n".join(r.get("error") or "" for r in results if r.get("error")) or None,
	)


def record_health(rule, failed):
	"""Count consecutive failing runs; notify the rule's owner, and switch the rule off past the
	threshold so one broken rule does not fail on every save."""
	# On every run: one plain query, without get_value's query building.
	current = frappe.db.sql("select consecutive_failures from `tabWorkflow Rule` where name = %s", rule.name)
	current = (current[0][0] if current else 0) or 0
	if not failed:
		if current:
			frappe.db.set_value("Workflow Rule", rule.name, "consecutive_failures", 0, update_modified=False)
		return
	# Counted in the database, not read-then-written: two saves failing at once count two.
	frappe.db.sql(
		"update `tabWorkflow Rule` set consecutive_failures = ifnull(consecutive_failures, 0) + 1 where name = %s",
		rule.name,
	)
	count = frappe.db.sql("select consecutive_failures from `tabWorkflow Rule` where name = %s", rule.name)
	count = count[0][0] if count else current + 1
	threshold = get_settings().failure_threshold or 5
	values = {"consecutive_failures": count}
	subject = _("Workflow Rule {0} failed: {1}").format(rule.name, failed[0]["result"])
	if count >= threshold:
		values.update(
			enabled=0,
			disabled_reason=_("Disabled after {0} consecutive failures; last: {1}").format(
				count, failed[0]["result"]
			),
		)
		subject = _("Workflow Rule {0} was disabled after {1} consecutive failures").format(rule.name, count)
	frappe.db.set_value("Workflow Rule", rule.name, values, update_modified=False)
	if count >= threshold:
		clear_rule_cache()
	actions.notify_users([rule.owner], subject, "Workflow Rule", rule.name)


def format_exception():
	return traceback.format_exc()
