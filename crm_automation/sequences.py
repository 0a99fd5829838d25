"""Follow-up sequences on a site: due rows (Automation Sequence Step) started when a Workflow Rule
with steps fires, ended by saves that meet its exit conditions, and fired by a sweep every minute.

Exactly once: a due row is claimed by one UPDATE ... WHERE status = 'Pending' that only one worker
wins (the loser's UPDATE waits for the winner's commit and then matches no row), and the claim is
committed before the step acts. A claim left by a crashed worker becomes due again after
STALE_CLAIM_AFTER. After downtime, steps due within the catch-up window run; older ones are logged
as Missed and the sequence goes on from their due time.

Versions: a sequence runs on the definition it started with (Automation Sequence Definition, named
by the hash of the rule's steps, step actions, exit conditions and run-as user); editing a rule
changes only the sequences that start afterwards.
"""

import datetime
import hashlib
import json
import time
import types

import frappe
from frappe import _
from frappe.utils import get_datetime

from crm_automation.engine import sequences as seq
from crm_automation.engine.workflow import compile_workflow_rule
from crm_automation.runner import field_values

STEP_DOCTYPE = "Automation Sequence Step"
DEFINITION_DOCTYPE = "Automation Sequence Definition"
PENDING, RUNNING, DONE, SKIPPED, EXITED, CANCELLED, MISSED, FAILED = (
	"Pending",
	"Running",
	"Done",
	"Skipped",
	"Exited",
	"Cancelled",
	"Missed",
	"Failed",
)
ACTIVE = (PENDING, RUNNING)
CHUNK_SIZE = 200
MAX_DUE_PER_SWEEP = 20000
STALE_CLAIM_AFTER = datetime.timedelta(minutes=15)
DOCTYPES_CACHE_KEY = "crm_automation:sequence_doctypes"
_STEP_COLUMNS = (
	"name",
	"creation",
	"modified",
	"owner",
	"modified_by",
	"docstatus",
	"idx",
	"status",
	"due_at",
	"workflow_rule",
	"step_index",
	"step_name",
	"reference_doctype",
	"reference_name",
	"sequence",
	"definition",
	"anchor_at",
	"condition_met",
	"reason",
	"finished_at",
)
_INSERT_SQL = "insert into `tabAutomation Sequence Step` ({}) values ({})".format(
	", ".join(f"`{c}`" for c in _STEP_COLUMNS), ", ".join(f"%({c})s" for c in _STEP_COLUMNS)
)
_compiled_definitions = {}


def now():
	return frappe.utils.now_datetime()


# Definitions (versions)


def calendars_for(steps):
	"""{Escalation Policy: calendar spec} for the business-time waits of ``steps``; a policy that
	does not exist is left out, so the engine names the step that wants it."""
	from crm_automation.escalation import holidays_of

	calendars = {}
	for step in steps:
		name = step.get("calendar_policy")
		if step.get("wait_type") != seq.WAIT_BUSINESS_TIME or not name or name in calendars:
			continue
		if not frappe.db.exists("Escalation Policy", name):
			continue
		policy = frappe.get_cached_doc("Escalation Policy", name)
		if (policy.calendar_mode or "24x7") == "24x7":
			calendars[name] = {"mode": "24x7"}
			continue
		calendars[name] = {
			"mode": "Working Hours",
			"hours": [
				{"weekday": row.weekday, "start": str(row.start_time), "end": str(row.end_time)}
				for row in policy.working_hours
			],
			"holidays": holidays_of(policy.holiday_list) or [],
		}
	return calendars


def definition_of(rule_doc, compiled):
	"""The name of the current version of a rule's sequence; keeps its snapshot on ``compiled``."""
	from crm_automation.rules import rule_as_dict

	snapshot = rule_as_dict(rule_doc)
	snapshot["run_as"] = rule_doc.get("run_as") or rule_doc.owner
	text = json.dumps(snapshot, sort_keys=True, default=str)
	name = "SEQ-" + hashlib.sha1(text.encode()).hexdigest()[:20]
	compiled.sequence_snapshot = text
	return name


def ensure_definition(rule):
	"""Store the rule's current version once. Checked once per compiled rule (that is, per process
	until a rule changes), so starting a sequence costs one INSERT and no lookup."""
	name = rule.sequence_definition
	if getattr(rule, "sequence_definition_stored", False):
		return name
	if not frappe.db.exists(DEFINITION_DOCTYPE, name):
		doc = frappe.new_doc(DEFINITION_DOCTYPE)
		doc.update(
			{
				"workflow_rule": rule.name,
				"document_type": rule.document_type,
				"definition": rule.sequence_snapshot,
			}
		)
		doc.name = name
		doc.flags.name_set = True
		try:
			doc.db_insert()
		except frappe.DuplicateEntryError:
			pass  # another worker stored the same version first
		frappe.cache.delete_value(DOCTYPES_CACHE_KEY)
	# Trusted only once committed: a rolled-back save must not leave steps pointing at nothing.
	frappe.db.after_commit.add(lambda: setattr(rule, "sequence_definition_stored", True))
	return name


def compiled_definition(name):
	"""(compiled rule, snapshot dict) of a stored version, compiled once per process."""
	if name not in _compiled_definitions:
		from crm_automation.rules import get_fields, get_fields_if_doctype

		snapshot = json.loads(frappe.db.get_value(DEFINITION_DOCTYPE, name, "definition"))
		compiled = compile_workflow_rule(
			snapshot, get_fields(snapshot["document_type"]), get_fields_if_doctype
		)
		compiled.run_as = snapshot.get("run_as") or snapshot.get("owner")
		compiled.owner = snapshot.get("owner")
		compiled.minutes_saved_override = snapshot.get("minutes_saved")
		_compiled_definitions[name] = (compiled, snapshot)
	return _compiled_definitions[name]


def sequence_doctypes():
	"""Doctypes that have (or had) sequences: the save hooks do nothing for any other."""
	return frappe.cache.get_value(
		DOCTYPES_CACHE_KEY,
		lambda: set(frappe.get_all(DEFINITION_DOCTYPE, pluck="document_type", distinct=True)),
	)


# Starting


def start_sequence(rule, doc, event=None, at=None):
	"""After ``rule`` fired on ``doc``: schedule its first step. A document has at most one active
	sequence per rule; a rule that fires again while one runs does not start a second."""
	if not getattr(rule, "sequence", None) or not doc.name:
		return None
	at = at or now()
	if event != "after_insert" and _active_sequence(rule.name, doc):
		return None
	definition = ensure_definition(rule)
	sequence_id = frappe.generate_hash(length=12)
	step, due, passed = rule.sequence.schedule(1, at, field_values(doc))
	base = {
		"workflow_rule": rule.name,
		"reference_doctype": doc.doctype,
		"reference_name": doc.name,
		"sequence": sequence_id,
		"definition": definition,
		"anchor_at": at,
	}
	_insert_passed(base, passed, at)
	if step:
		_insert_step(base, step, due, PENDING)
	return sequence_id


def _active_sequence(rule_name, doc):
	return frappe.db.sql(
		"select name from `tabAutomation Sequence Step` where reference_doctype=%s and reference_name=%s"
		" and status in ('Pending', 'Running') and workflow_rule=%s limit 1",
		(doc.doctype, doc.name, rule_name),
	)


def _insert_step(base, step, due, status, reason=None, finished_at=None):
	stamp = now()
	user = frappe.session.user if frappe.session else "Administrator"
	row = {
		**base,
		"name": frappe.generate_hash(length=14),
		"creation": stamp,
		"modified": stamp,
		"owner": user,
		"modified_by": user,
		"docstatus": 0,
		"idx": 0,
		"status": status,
		"due_at": due,
		"step_index": step.index,
		"step_name": step.label,
		"condition_met": 0,
		"reason": reason,
		"finished_at": finished_at,
	}
	frappe.db.sql(_INSERT_SQL, row)
	return row["name"]


def _insert_passed(base, passed, at):
	for step, reason in passed:
		_insert_step(base, step, at, SKIPPED, reason=_("Passed over: {0}").format(reason), finished_at=at)


# Exits and wait conditions on save


def on_document_change(doc):
	"""on_change (every save and db_set): end sequences whose exit condition the save made true,
	end Until Condition waits that it satisfied, follow a changed date field."""
	if doc.doctype not in (sequence_doctypes() or ()) or not doc.name:
		return
	rows = _pending_rows(doc)
	if not rows:
		return
	values = field_values(doc)
	before = field_values(doc.get_doc_before_save())
	at = now()
	for row in rows:
		compiled, _snapshot = compiled_definition(row.definition)
		sequence = compiled.sequence
		reason = sequence.exit_reason(values, before)
		if reason:
			_finish(row.name, EXITED, _("Ended on save: {0}").format(reason), at, expect=PENDING)
			continue
		step = sequence.step(row.step_index)
		if step is None:
			continue
		if step.wait_type == seq.WAIT_CONDITION and not row.condition_met and step.condition_met(values):
			_update_pending(
				row.name,
				condition_met=1,
				due_at=min(get_datetime(row.due_at), max(at, get_datetime(row.anchor_at))),
			)
		elif step.wait_type == seq.WAIT_DATE_FIELD:
			due = step.due_at(get_datetime(row.anchor_at), values)
			if due and due != get_datetime(row.due_at):
				_update_pending(row.name, due_at=due)


def on_document_gone(doc, what_happened):
	"""on_trash / on_cancel (``what_happened``: "deleted" or "cancelled"): nothing is left to follow up."""
	if doc.doctype not in (sequence_doctypes() or ()) or not doc.name:
		return
	why = _("The document was deleted") if what_happened == "deleted" else _("The document was cancelled")
	frappe.db.sql(
		"update `tabAutomation Sequence Step` set status=%s, reason=%s, finished_at=%s, modified=%s"
		" where reference_doctype=%s and reference_name=%s and status='Pending'",
		(EXITED, why, now(), now(), doc.doctype, doc.name),
	)


def _pending_rows(doc):
	return frappe.db.sql(
		"select name, definition, step_index, condition_met, due_at, anchor_at, sequence"
		" from `tabAutomation Sequence Step` where reference_doctype=%s and reference_name=%s and status='Pending'",
		(doc.doctype, doc.name),
		as_dict=True,
	)


def _update_pending(name, **values):
	sets = ", ".join(f"`{key}`=%({key})s" for key in values)
	frappe.db.sql(
		f"update `tabAutomation Sequence Step` set {sets} where name=%(name)s and status='Pending'",
		{**values, "name": name},
	)


def _finish(name, status, reason, at, expect=RUNNING, log=None):
	"""Close a row; True when it was still in ``expect`` (another worker or user did not get there first)."""
	frappe.db.sql(
		"update `tabAutomation Sequence Step` set status=%s, reason=%s, finished_at=%s, modified=%s,"
		" automation_log=coalesce(%s, automation_log) where name=%s and status=%s",
		(status, reason, at, at, log, name, expect),
	)
	return frappe.db._cursor.rowcount == 1


# The sweep


def sweep(now_at=None):
	"""Every minute: release stale claims, then fire what is due, in chunks on the long queue when
	there are many. Reads only due rows through the (status, due_at) index."""
	from crm_automation.events import skip_automation

	if skip_automation():
		return 0
	at = get_datetime(now_at) if now_at else now()
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
	for start in range(0, len(due), CHUNK_SIZE):
		chunk = due[start : start + CHUNK_SIZE]
		frappe.enqueue(
			"crm_automation.sequences.fire_steps",
			queue="long",
			job_id=f"crm_automation:sequence_chunk:{chunk[0]}",
			deduplicate=True,
			names=chunk,
			now_at=at,
		)
	return len(due)


def fire_steps(names, now_at=None):
	"""Claim and fire each due row; every step commits on its own, so a crash loses at most one."""
	at = get_datetime(now_at) if now_at else now()
	catchup = datetime.timedelta(
		hours=frappe.db.get_single_value("CRM Automation Settings", "time_trigger_catchup_hours") or 24
	)
	fired = 0
	for name in names:
		token = claim(name, at)
		if not token:
			continue
		frappe.db.savepoint("crm_automation_sequence_step")
		try:
			fire_claimed(name, at, catchup)
			fired += 1
		except Exception:
			frappe.db.rollback(save_point="crm_automation_sequence_step")
			_finish(name, FAILED, frappe.get_traceback()[-2000:], at)
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


def fire_claimed(name, at, catchup):
	row = frappe.db.get_value(STEP_DOCTYPE, name, ["*"], as_dict=True)
	due_at = get_datetime(row.due_at)
	rule_state = frappe.db.get_value("Workflow Rule", row.workflow_rule, "enabled")
	if not rule_state:
		why = _("the rule was deleted") if rule_state is None else _("the rule is disabled")
		return _finish(name, CANCELLED, _("Cancelled: {0}").format(why), at)
	if not frappe.db.exists(row.reference_doctype, row.reference_name):
		return _finish(name, EXITED, _("The document no longer exists"), at)
	compiled, _snapshot = compiled_definition(row.definition)
	sequence = compiled.sequence
	step = sequence.step(row.step_index)
	doc = frappe.get_doc(row.reference_doctype, row.reference_name)
	values = field_values(doc)
	if doc.docstatus == 2:
		return _finish(name, EXITED, _("The document was cancelled"), at)
	reason = sequence.exit_reason(values, None)
	if reason:
		return _finish(name, EXITED, _("Ended: {0}").format(reason), at)
	if at - due_at > catchup:
		message = _("Missed: due {0}, older than the catch-up window").format(due_at)
		log = _log(compiled, doc, row, step, "Skipped", message, (), 0.0, time.perf_counter())
		_finish(name, MISSED, message, at, log=log)
	else:
		_run_step(compiled, doc, row, step, at)
	_schedule_next(sequence, row, step, due_at, values)


def _run_step(compiled, doc, row, step, at):
	from crm_automation import actions
	from crm_automation.runner import _state, get_settings, record_health

	started = time.perf_counter()
	outcome, detail, intents = step.decide(field_values(doc), condition_met=bool(row.condition_met))
	if outcome == seq.SKIPPED:
		log = None
		if get_settings().log_skipped_runs:
			log = _log(compiled, doc, row, step, "Skipped", detail, (), 0.0, started)
		return _finish(row.name, SKIPPED, detail, at, log=log)
	rule = _live_rule(compiled)
	state = _state()
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
	actions.after_run(log, results)
	record_health(rule, failed)
	_finish(row.name, FAILED if failed else DONE, path or None, at, log=log)


def _live_rule(compiled):
	"""The compiled version with the identity the action layer reads (name, run-as, owner)."""
	return types.SimpleNamespace(
		name=compiled.name,
		run_as=compiled.run_as,
		owner=compiled.owner,
		minutes_saved_override=compiled.minutes_saved_override,
		enabled=True,
		actions=[],
		trigger=compiled.trigger,
	)


def _log(compiled, doc, row, step, outcome, reason, results, minutes, started):
	from crm_automation.crm_automation.doctype.automation_log.automation_log import make_log

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


def _schedule_next(sequence, row, step, anchor, values):
	nxt, due, passed = sequence.schedule(step.index + 1, anchor, values)
	base = {
		"workflow_rule": row.workflow_rule,
		"reference_doctype": row.reference_doctype,
		"reference_name": row.reference_name,
		"sequence": row.sequence,
		"definition": row.definition,
		"anchor_at": anchor,
	}
	_insert_passed(base, passed, anchor)
	if nxt:
		_insert_step(base, nxt, due, PENDING)


# Skip and cancel from the document


def skip_or_cancel(name, action, user=None):
	"""Skip one pending step (the sequence goes on with the next) or cancel it (the sequence ends).
	Allowed to rule managers and to users who may write the document."""
	user = user or frappe.session.user
	row = frappe.db.get_value(STEP_DOCTYPE, name, ["*"], as_dict=True)
	if not row:
		frappe.throw(
			_("Sequence step {0} does not exist").format(frappe.bold(name)), frappe.DoesNotExistError
		)
	if not may_control(row, user):
		frappe.throw(
			_("You may not change the automation of {0} {1}").format(
				row.reference_doctype, frappe.bold(row.reference_name)
			),
			frappe.PermissionError,
		)
	if action not in ("skip", "cancel"):
		frappe.throw(_("{0} is not skip or cancel").format(frappe.bold(action)))
	at = now()
	if action == "cancel":
		if not _finish(name, CANCELLED, _("Cancelled by {0}").format(user), at, expect=PENDING):
			frappe.throw(_("This step is no longer pending"))
		return CANCELLED
	if not _finish(name, SKIPPED, _("Skipped by {0}").format(user), at, expect=PENDING):
		frappe.throw(_("This step is no longer pending"))
	compiled, _snapshot = compiled_definition(row.definition)
	step = compiled.sequence.step(row.step_index)
	doc = frappe.get_doc(row.reference_doctype, row.reference_name)
	_schedule_next(compiled.sequence, row, step, get_datetime(row.due_at), field_values(doc))
	return SKIPPED


def may_control(row, user):
	from crm_automation.permissions import is_system_manager

	if is_system_manager(user) or "CRM Automation Manager" in frappe.get_roles(user):
		return True
	return bool(frappe.has_permission(row.reference_doctype, "write", row.reference_name, user=user))


# The rule form


def describe_steps(rule_doc, compiled):
	"""Each step row's wait in words (the grid's Summary column)."""
	from crm_automation.rules import get_fields

	if not compiled.sequence:
		return
	fields = get_fields(rule_doc.document_type)
	for row, step in zip(rule_doc.steps, compiled.sequence.steps, strict=False):
		row.wait_summary = step.describe_wait(fields)
