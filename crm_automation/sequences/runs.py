"""The minute sweep of follow-up sequences: release stale claims, find the due rows through the
(status, due_at) index, claim each one atomically and fire it with the rule's run-as rights.

Exactly once: a due row is claimed by one UPDATE ... WHERE status = 'Pending' that only one worker
wins (the loser's UPDATE waits for the winner's commit and then matches no row), and the claim is
committed before the step acts. A claim left by a crashed worker becomes due again after
STALE_CLAIM_AFTER; a worker that was only slow then finds its claim token gone when it closes the row
and undoes its run, so the step still runs once. After downtime, steps due within the catch-up window run; older ones are logged
as Missed and the sequence goes on from their due time.
"""

import datetime
import time
import types

import frappe
from frappe import _
from frappe.utils import get_datetime

from crm_automation import actions
from crm_automation.doc_events import skip_automation
from crm_automation.engine import sequences as seq
from crm_automation.engine.send_windows import window_of
from crm_automation.runtime.fan_out import enqueue_chunks
from crm_automation.runtime.linked_values import field_values
from crm_automation.runtime.run_log import make_log
from crm_automation.runtime.runner import get_settings, record_health, run_state
from crm_automation.sequences import steps as sequences
from crm_automation.sequences.steps import CANCELLED, DONE, EXITED, FAILED, MISSED, SKIPPED, STEP_DOCTYPE

CHUNK_SIZE = 200
MAX_DUE_PER_SWEEP = 20000
STALE_CLAIM_AFTER = datetime.timedelta(minutes=15)
_SAVEPOINT = "crm_automation_sequence_step"


class LostClaim(Exception):
	"""The claim went stale and another worker took the step over: this worker's run is undone."""


def sweep(now_at=None):
	"""Every minute: release stale claims, then fire what is due, in chunks on the long queue when
	there are many. Reads only due rows through the (status, due_at) index."""
	if skip_automation():
		return 0
	at = get_datetime(now_at) if now_at else sequences.now()
	frappe.db.sql(
		"update `tabAutomation Sequence Step` set status='Pending', claim_token=null"
		" where status='Running' and claimed_at < %s",
		(at - STALE_CLAIM_AFTER,),
	)
	frappe.db.commit()
	due = frappe.db.sql_list(
		"select name from `tabAutomation Sequence Step` where status='Pending' and due_at <= %s"
		" order by due_at limit %s",
		(at, MAX_DUE_PER_SWEEP),
	)
	if len(due) <= CHUNK_SIZE:
		return fire_steps(due, now_at=at)
	return enqueue_chunks(
		"crm_automation.sequences.runs.fire_steps",
		due,
		CHUNK_SIZE,
		"names",
		lambda chunk: f"crm_automation:sequence_chunk:{chunk[0]}",
		now_at=at,
	)


def fire_steps(names, now_at=None):
	"""Claim and fire each due row; every step commits on its own, so a crash loses at most one."""
	at = get_datetime(now_at) if now_at else sequences.now()
	catchup = datetime.timedelta(
		hours=frappe.db.get_single_value("CRM Automation Settings", "time_trigger_catchup_hours") or 24
	)
	fired = 0
	for name in names:
		token = claim(name, at)
		if not token:
			continue
		frappe.db.savepoint(_SAVEPOINT)
		try:
			fire_claimed(name, at, catchup, token)
			fired += 1
		except LostClaim:
			frappe.db.rollback(save_point=_SAVEPOINT)
		except Exception:
			frappe.db.rollback(save_point=_SAVEPOINT)
			sequences._finish(name, FAILED, frappe.get_traceback()[-2000:], at, token=token)
			frappe.log_error(title=f"Sequence step {name} failed")
		frappe.db.commit()
	return fired


def claim(name, at):
	"""Win the row or learn that someone else did; the claim is committed before the step acts."""
	token = frappe.generate_hash(length=10)
	frappe.db.sql(
		"update `tabAutomation Sequence Step` set status='Running', claim_token=%s, claimed_at=%s, modified=%s"
		" where name=%s and status='Pending' and due_at <= %s",
		(token, at, at, name, at),
	)
	won = frappe.db._cursor.rowcount == 1
	frappe.db.commit()
	return token if won else None


def _close(name, status, reason, at, token, log=None):
	if not sequences._finish(name, status, reason, at, log=log, token=token):
		raise LostClaim(name)


def fire_claimed(name, at, catchup, token=None):
	row = frappe.db.get_value(STEP_DOCTYPE, name, ["*"], as_dict=True)
	due_at = get_datetime(row.due_at)
	live = frappe.db.get_value(
		"Workflow Rule", row.workflow_rule, ["enabled", "run_as", "owner"], as_dict=True
	)
	if not live or not live.enabled:
		why = _("the rule was deleted") if not live else _("the rule is disabled")
		return _close(name, CANCELLED, _("Cancelled: {0}").format(why), at, token)
	if not frappe.db.exists(row.reference_doctype, row.reference_name):
		return _close(name, EXITED, _("The document no longer exists"), at, token)
	compiled, _snapshot = sequences.compiled_definition(row.definition)
	sequence = compiled.sequence
	step = sequence.step(row.step_index)
	doc = frappe.get_doc(row.reference_doctype, row.reference_name)
	# Exit conditions, date-field waits and the step's own condition see the document as the rule's
	# run-as user may read it now.
	values = sequences.values_as(doc, live.run_as or live.owner)
	if doc.docstatus == 2:
		return _close(name, EXITED, _("The document was cancelled"), at, token)
	reason = sequence.exit_reason(values, None)
	if reason:
		return _close(name, EXITED, _("Ended: {0}").format(reason), at, token)
	if at - due_at > catchup:
		message = _("Missed: due {0}, older than the catch-up window").format(due_at)
		log = _log(compiled, doc, row, step, "Skipped", message, (), 0.0, time.perf_counter())
		_close(name, MISSED, message, at, token, log=log)
	else:
		_run_step(compiled, doc, row, step, at, token, live.run_as or live.owner, values)
	sequences._schedule_next(sequence, row, step, due_at, values)


def _run_step(compiled, doc, row, step, at, token, run_as, values):
	started = time.perf_counter()
	outcome, detail, intents = step.decide(values, condition_met=bool(row.condition_met))
	if outcome == seq.SKIPPED:
		log = None
		if get_settings().log_skipped_runs:
			log = _log(compiled, doc, row, step, "Skipped", detail, (), 0.0, started)
		return _close(row.name, SKIPPED, detail, at, token, log=log)
	rule = _live_rule(compiled, run_as)
	rule.send_window_policy = _send_window(compiled, step)
	state = run_state()
	state.depth += 1
	state.chain.append(compiled.name)
	try:
		results = actions.carry_out(intents, doc, None, rule)
	finally:
		state.depth -= 1
		state.chain.pop()
	failed = [r for r in results if r["status"] == "Failed"]
	outcome = "Failed" if failed else "Success"
	minutes = actions.minutes_saved(rule, results, get_settings()) if not failed else 0.0
	path = _("timeout") if detail == seq.PATH_TIMEOUT else ""
	log = _log(compiled, doc, row, step, outcome, path, results, minutes, started)
	# Closed before anything leaves the database: a run undone for a lost claim sends nothing.
	_close(row.name, FAILED if failed else DONE, path or None, at, token, log=log)
	actions.after_run(log, results)
	record_health(rule, failed)


def _send_window(compiled, step):
	"""The step's own sending window, else its rule's, as the version the sequence started with."""
	own = getattr(compiled, "step_windows", ())
	return window_of(
		getattr(compiled, "send_window_policy", None), own[step.index - 1] if step.index <= len(own) else None
	)


def _live_rule(compiled, run_as):
	"""The version the sequence started with, acting as the user the rule runs as *now*: a run-as
	user changed since (say, someone who left) no longer acts for sequences in flight."""
	return types.SimpleNamespace(
		name=compiled.name,
		run_as=run_as or compiled.run_as,
		owner=compiled.owner,
		minutes_saved_override=compiled.minutes_saved_override,
		enabled=True,
		actions=[],
		trigger=compiled.trigger,
	)


def _log(compiled, doc, row, step, outcome, reason, results, minutes, started):
	name = make_log(
		rule_type="Workflow Rule",
		rule=compiled.name,
		trigger=compiled.trigger,
		event="sequence step",
		doc=doc,
		outcome=outcome,
		branch=_("Step {0}: {1}").format(step.index, step.label),
		reason=reason or None,
		results=results,
		duration_ms=(time.perf_counter() - started) * 1000,
		minutes_saved=minutes,
		error="\n\n".join(r.get("error") or "" for r in results if r.get("error")) or None,
	)
	frappe.db.set_value(
		"Automation Log",
		name,
		{"sequence": row.sequence, "sequence_step": f"{step.index}: {step.label}"},
		update_modified=False,
	)
	return name
