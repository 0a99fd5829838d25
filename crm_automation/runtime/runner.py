"""Run compiled rules on a document: decide (engine), act (actions.py), log (Automation Log).

Loop protection at run time: a depth counter across nested automation (settings, default 3) and
"each rule fires at most once per document per request" (or background job).

Budgets: one run of a rule shares engine/budget.RUN_SECONDS of evaluation time (its advanced
condition and every template of every action; the actions' own writes are not counted, they are
bounded by the depth and by Create Document's per-save bound, creating_document). Once it is spent
the run's remaining actions are not carried out and the run fails, logged with the reason.
"""

import time
import traceback
from contextlib import contextmanager

import frappe
from frappe import _

from crm_automation import actions
from crm_automation.engine import Evaluation
from crm_automation.engine.budget import current_run, run_budget
from crm_automation.engine.expressions import ExpressionError
from crm_automation.engine.workflow import FIRE_ONCE, REJECT, TRIGGER_VALIDATE
from crm_automation.runtime import validate_rules as before_save
from crm_automation.runtime.groups import record_group
from crm_automation.runtime.linked_values import evaluation_values, field_values
from crm_automation.runtime.rule_values import RunAsValues, candidates_of, masked_values
from crm_automation.runtime.run_log import claim_occurrence, make_log
from crm_automation.runtime.run_state import creating_document, reset_request_state, run_state
from crm_automation.runtime.workflow_rules import clear_rule_cache, expression_holds
from crm_automation.sequences.steps import start_sequence
from crm_automation.trust.field_access import may_read_doctype, may_read_record
from crm_automation.trust.run_as import run_as_of


def get_settings():
	return frappe.get_cached_doc("CRM Automation Settings")


def run_rules(doc, event, rules):
	"""The hot path of every save with rules: only the rules the index names as candidates
	(engine/rule_index.py) are tested, each with one compiled test on values built once per save.
	While skipped runs are being logged every rule is evaluated, since each decision is logged."""
	before = doc.get_doc_before_save()
	own, own_before = field_values(doc), field_values(before)
	if get_settings().log_skipped_runs or not hasattr(rules, "candidates"):
		by_user = RunAsValues(doc.doctype, own, own_before, rules)
		log_skipped = get_settings().log_skipped_runs
		for rule in rules:
			values = by_user.of(rule)
			if log_skipped or rule.condition_holds(*values):
				run_rule(rule, doc, before, event, values=values)
		return
	masked = masked_values(doc.doctype, own, own_before)
	candidates = candidates_of(rules, own, own_before, masked)
	while candidates:
		by_user = RunAsValues(doc.doctype, own, own_before, candidates)
		for rule in candidates:
			values = by_user.of(rule)
			if rule.condition_holds(*values):
				run_rule(rule, doc, before, event, values=values)
				# What it did may have changed the document: the rules after it are looked up again.
				candidates = candidates_of(rules, own, own_before, masked, after=rule)
				break
		else:
			return


def run_rule(rule, doc, before, event, occurrence_key=None, values=None):
	"""Evaluate one rule on one document and, if it fires, carry out its intents and log the run.
	Returns the Automation Log name (or None when nothing was logged). The run has its own budget
	(run_budget): the rules its actions start have theirs."""
	state = run_state()
	if not state.depth and not state.creating:
		state.root = (doc.doctype, doc.name)
	with run_budget():
		return _run_rule(rule, doc, before, event, occurrence_key, values)


def _run_rule(rule, doc, before, event, occurrence_key=None, values=None):
	started = time.perf_counter()
	state = run_state()
	settings = get_settings()
	fired_here = state.fired.setdefault((doc.doctype, doc.name), set())
	if rule.name in fired_here:
		return None

	# One evaluation, with the trace the log shows as "why did this fire / not fire". Callers reach
	# here only for rules whose conditions hold (or while skipped runs are logged), so the trace's
	# extra cost is never paid by a rule that does not match.
	values, before_values = values or evaluation_values(doc, before, (rule,), user=run_as_of(rule))
	evaluation = rule.evaluate(values, before_values, explain=True)
	if (evaluation.fired or evaluation.held_out) and not _may_read(rule, doc):
		# A rule acts only on documents its run-as user may read (a manager restricted to a
		# territory); nothing is wrong with the rule, so this is no failure, and the log keeps no
		# values of a document that user may not see.
		reason = _("Skipped: run-as user {0} may not read {1} {2}").format(
			run_as_of(rule), _(doc.doctype), doc.name
		)
		evaluation = Evaluation(rule.name, Evaluation.SKIPPED, reason)
		return _log(rule, doc, event, evaluation, "Skipped", started, reason=reason)
	if (evaluation.fired or evaluation.held_out) and rule.condition_expression:
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
	if evaluation.held_out:
		return _hold_out(rule, doc, event, evaluation, started, fired_here, occurrence_key)
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
	record_group(rule, doc, evaluation)
	if event == "validate":
		return _run_before_save(rule, doc, before, evaluation, started)

	state.depth += 1
	state.chain.append(rule.name)
	try:
		results = _carry_out_within_budget(evaluation.intents, doc, before, rule)
	finally:
		state.depth -= 1
		state.chain.pop()
	failed = [r for r in results if r["status"] == "Failed"]
	outcome = "Failed" if failed else "Success"
	log_name = _log(rule, doc, event, evaluation, outcome, started, results=results, reason=_over_budget())
	actions.after_run(log_name, results)
	record_health(rule, failed)
	if getattr(rule, "sequence", None):
		start_sequence(rule, doc, event)
	return log_name


def _hold_out(rule, doc, event, evaluation, started, fired_here, occurrence_key=None):
	"""A matched document in the rule's control group: no actions, no follow-up steps, and always a
	log (whatever log_skipped_runs says): the Rule Outcome report and the document's timeline need
	to show it was held out on purpose. A Once per Document rule logs it once, a Time rule once per
	due moment, as they would have fired."""
	if rule.fire_mode == FIRE_ONCE and rule.trigger != TRIGGER_VALIDATE:
		if not claim_occurrence("Workflow Rule", rule.name, doc.doctype, doc.name, "once"):
			return None
	if occurrence_key and not claim_occurrence("Workflow Rule", rule.name, doc.doctype, doc.name, occurrence_key):
		return None
	fired_here.add(rule.name)
	record_group(rule, doc, evaluation)
	return _log(rule, doc, event, evaluation, "Held Out", started)


def _carry_out_within_budget(intents, doc, before, rule):
	"""The actions one by one while the run's budget lasts; those after it is spent are not carried
	out, each reported Failed with the reason."""
	budget, results = current_run(), []
	for intent in intents:
		if budget is not None and budget.exhausted:
			reason = _("Not carried out: the run went over its time budget of {0} s").format(budget.seconds)
			results.append(
				{
					"action_type": intent["type"],
					"action_row": intent.get("row"),
					"status": "Failed",
					"result": reason,
				}
			)
			continue
		results.extend(actions.carry_out([intent], doc, before, rule))
	return results


def _over_budget():
	budget = current_run()
	if budget is None or not budget.exhausted:
		return None
	return _("Stopped: the run went over its time budget of {0} s").format(budget.seconds)


def _may_read(rule, doc):
	"""False when the rule's run-as user may read the doctype but not this document. A user who may
	not read the doctype at all is a rule that lost its rights: its actions fail, visibly, and
	count toward its health (permissions.check_action_allowed)."""
	user = run_as_of(rule)
	return may_read_record(doc, user) or not may_read_doctype(doc.doctype, user)


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
		# The desk shows server messages as HTML; the message is the author's text over values users
		# typed, so it is shown as text (the log keeps it plain: its readers escape it).
		frappe.throw(
			actions.shown_text(message), title=_("Rejected by {0}").format(actions.shown_text(rule.name))
		)
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
		run_as=run_as_of(rule),
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
	# Both are shown as HTML (the bell, the rule's read-only field) and carry what the failure said,
	# values users typed included: shown as text.
	name, last = actions.shown_text(rule.name), actions.shown_text(failed[0]["result"])
	subject = _("Workflow Rule {0} failed: {1}").format(name, last)
	if count >= threshold:
		values.update(
			enabled=0,
			disabled_reason=_("Disabled after {0} consecutive failures; last: {1}").format(count, last),
		)
		subject = _("Workflow Rule {0} was disabled after {1} consecutive failures").format(name, count)
	frappe.db.set_value("Workflow Rule", rule.name, values, update_modified=False)
	if count >= threshold:
		clear_rule_cache()
	actions.notify_users([rule.owner], subject, "Workflow Rule", rule.name, from_user=run_as_of(rule))


def format_exception():
	return traceback.format_exc()
