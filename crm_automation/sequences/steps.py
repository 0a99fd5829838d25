"""Follow-up sequences on a site: due rows (Automation Sequence Step) started when a Workflow Rule
with steps fires, ended by saves that meet its exit conditions, skipped or cancelled by users, and
fired by the sweep every minute (sequence_runs.py).

Versions: a sequence runs on the definition it started with (Automation Sequence Definition, named
by the hash of the rule's steps, step actions and exit conditions); editing a rule changes only the
sequences that start afterwards. Steps act as the user the rule runs as when they run.
"""

import datetime
import json
import time
import types

import frappe
from frappe import _
from frappe.utils import escape_html, get_datetime

from crm_automation.engine import sequences as seq
from crm_automation.engine.workflow import compile_workflow_rule
from crm_automation.runtime.compiled_cache import versioned_memo
from crm_automation.runtime.linked_values import field_values
from crm_automation.runtime.workflow_rules import get_fields, get_fields_if_doctype, get_index
from crm_automation.trust.field_access import readable_view
from crm_automation.trust.roles import is_rule_manager, is_system_manager
from crm_automation.trust.run_as import run_as_of

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
_HOOK_SAVEPOINT = "crm_automation_sequence_hook"
# On a document whose save started a sequence: its on_change then looks for pending steps.
STARTED_FLAG = "crm_automation_sequence_started"
STEP_COLUMNS = (
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
	", ".join(f"`{c}`" for c in STEP_COLUMNS), ", ".join(f"%({c})s" for c in STEP_COLUMNS)
)
_compiled_definitions = {}


def now():
	return frappe.utils.now_datetime()


# Definitions (versions)


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
	# Trusted only once committed: a rolled-back save must not leave steps pointing at nothing.
	frappe.db.after_commit.add(lambda: setattr(rule, "sequence_definition_stored", True))
	return name


def compiled_definition(name):
	"""(compiled rule, snapshot dict) of a stored version, compiled once per process."""
	if name not in _compiled_definitions:
		snapshot = json.loads(frappe.db.get_value(DEFINITION_DOCTYPE, name, "definition"))
		compiled = compile_workflow_rule(
			snapshot, get_fields(snapshot["document_type"]), get_fields_if_doctype
		)
		compiled.run_as = snapshot.get("run_as") or snapshot.get("owner")
		compiled.owner = snapshot.get("owner")
		compiled.minutes_saved_override = snapshot.get("minutes_saved")
		# Sending windows of this version: the rule's, and each step's own (engine/send_windows.py).
		compiled.send_window_policy = snapshot.get("send_window_policy")
		compiled.step_windows = tuple(row.get("send_window_policy") for row in snapshot.get("steps") or ())
		_compiled_definitions[name] = (compiled, snapshot)
	return _compiled_definitions[name]


def sequence_doctypes():
	"""Doctypes whose saves the sequences follow; the save hooks do nothing for any other. Those of
	enabled rules with steps (the compiled index), and those with steps still pending from a rule
	since disabled or changed. Worked out once per process until an index changes: a doctype outside
	the enabled rules gets no new pending step, and a rule that stops changes the index, so a
	doctype whose sequences have all ended costs nothing again from then on."""
	return versioned_memo("sequence_doctypes", _sequence_doctypes)


def _sequence_doctypes():
	enabled = frozenset(get_index().get("sequence_doctypes", ()))
	stored = frappe.get_all(DEFINITION_DOCTYPE, pluck="document_type", distinct=True)
	return enabled | frozenset(
		doctype
		for doctype in set(stored) - enabled
		if frappe.db.sql(
			"select 1 from `tabAutomation Sequence Step` where reference_doctype = %s and status = %s limit 1",
			(doctype, PENDING),
		)
	)


# Starting


def start_sequence(rule, doc, event=None, at=None):
	"""After ``rule`` fired on ``doc``: schedule its first step. A document has at most one active
	sequence per rule; a rule that fires again while one runs does not start a second. A failure is
	logged and never breaks the save that fired the rule."""
	if not getattr(rule, "sequence", None) or not doc.name:
		return None
	doc.flags[STARTED_FLAG] = True
	return _guarded(_start, rule, doc, event, at, title=f"Follow-up steps of {rule.name} could not start")


def values_as(doc, user):
	"""The values conditions and date-field waits read: the document as `user` (the rule's run-as
	user) may read it, fields above that user's levels absent (field_access.py)."""
	return readable_view(field_values(doc), doc.doctype, user)


def _guarded(function, *args, title):
	frappe.db.savepoint(_HOOK_SAVEPOINT)
	try:
		return function(*args)
	except Exception:
		frappe.db.rollback(save_point=_HOOK_SAVEPOINT)
		frappe.log_error(title=title)
		return None


def _start(rule, doc, event, at):
	at = at or now()
	if event != "after_insert" and _active_sequence(rule.name, doc):
		return None
	definition = ensure_definition(rule)
	sequence_id = frappe.generate_hash(length=12)
	step, due, passed = rule.sequence.schedule(1, at, values_as(doc, run_as_of(rule)))
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
	end Until Condition waits that it satisfied, follow a changed date field. A failure is logged
	and never breaks the save."""
	if doc.doctype not in (sequence_doctypes() or ()) or not doc.name:
		return
	if doc.flags.in_insert and not doc.flags.get(STARTED_FLAG):
		return  # a document being inserted has steps only if this save started them
	rows = _pending_rows(doc)  # read before the savepoint: most saves have none, and pay one query
	if rows:
		_guarded(
			_follow_save,
			doc,
			rows,
			title=f"Follow-up steps of {doc.doctype} {doc.name} could not follow a save",
		)


def _follow_save(doc, rows):
	own, own_before = field_values(doc), field_values(doc.get_doc_before_save())
	at = now()
	for row in rows:
		compiled, _snapshot = compiled_definition(row.definition)
		sequence = compiled.sequence
		# Exit and wait conditions see the document as the rule's run-as user may read it.
		user = run_as_of(compiled)
		values = readable_view(own, doc.doctype, user)
		before = readable_view(own_before, doc.doctype, user)
		reason = sequence.exit_reason(values, before)
		if reason:
			_finish(row.name, EXITED, _("Ended on save: {0}").format(reason), at, expect=PENDING)
			continue
		step = sequence.step(row.step_index)
		if step is None:
			continue
		if (
			step.wait_type == seq.WAIT_CONDITION
			and not row.condition_met
			and step.condition_met(values, before)
		):
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
	_guarded(_end_all, doc, why, title=f"Follow-up steps of {doc.doctype} {doc.name} could not end")


def _end_all(doc, why):
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


def _finish(name, status, reason, at, expect=RUNNING, log=None, token=None):
	"""Close a row; True when it was still in ``expect`` (and still held by ``token``, the claim of
	the worker closing it): another worker or user did not get there first."""
	frappe.db.sql(
		"update `tabAutomation Sequence Step` set status=%s, reason=%s, finished_at=%s, modified=%s,"
		" automation_log=coalesce(%s, automation_log) where name=%s and status=%s"
		+ (" and claim_token=%s" if token else ""),
		(status, reason, at, at, log, name, expect, *((token,) if token else ())),
	)
	return frappe.db._cursor.rowcount == 1


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


class StepNotAvailable(frappe.DoesNotExistError, frappe.PermissionError):
	"""The one answer to a step that does not exist, one on a document the user may not read and
	one they may not change: it never tells whether a step, or its document, exists."""

	http_status_code = 403


def skip_or_cancel(name, action, user=None):
	"""Skip one pending step (the sequence goes on with the next) or cancel it (the sequence ends).
	Allowed to rule managers who may read the document and to users who may write it."""
	user = user or frappe.session.user
	row = frappe.db.get_value(STEP_DOCTYPE, name, ["*"], as_dict=True) if isinstance(name, str) else None
	if not row or not may_control(row, user):
		frappe.throw(
			_("Sequence step {0} was not found, or you may not change it").format(
				frappe.bold(escape_html(str(name)))
			),
			StepNotAvailable,
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
	values = values_as(doc, run_as_of(compiled))
	_schedule_next(compiled.sequence, row, step, get_datetime(row.due_at), values)
	return SKIPPED


def may_control(row, user):
	"""Rule managers may skip or cancel the steps of a document they may read (they could change the
	rule itself); anyone else needs write permission on the document. The steps of a document that
	no longer exists are a System Manager's to clear."""
	doctype, name = row.reference_doctype, row.reference_name
	if not (doctype and name and frappe.db.exists("DocType", doctype) and frappe.db.exists(doctype, name)):
		return is_system_manager(user)
	if not frappe.has_permission(doctype, "read", doc=name, user=user):
		return False
	if is_rule_manager(user):
		return True
	return bool(frappe.has_permission(doctype, "write", doc=name, user=user))


# The rule form


def describe_steps(rule_doc, compiled):
	"""Each step row's wait in words (the grid's Summary column)."""
	if not compiled.sequence:
		return
	fields = get_fields(rule_doc.document_type)
	for row, step in zip(rule_doc.steps, compiled.sequence.steps, strict=False):
		row.wait_summary = step.describe_wait(fields)
