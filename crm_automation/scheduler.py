"""Every scheduler entry point (hooks.py names only these): each fans out to RQ jobs (one per rule,
or one per chunk of what is due) so more workers sweep faster."""

import datetime

import frappe
from frappe.utils import add_to_date, get_datetime, now_datetime

from crm_automation import escalation
from crm_automation.actions import retry_due_webhooks
from crm_automation.actions.send_windows import send_due_alerts
from crm_automation.actions.sms import retry_due_sms
from crm_automation.engine.workflow import TRIGGER_TIME
from crm_automation.runtime import schedule_runs
from crm_automation.runtime.compiled_cache import forget_local_indexes
from crm_automation.runtime.fan_out import enqueue_chunks
from crm_automation.runtime.run_log import occurrence_key
from crm_automation.runtime.runner import run_rule
from crm_automation.runtime.savepoints import fire_each
from crm_automation.runtime.workflow_rules import compiled_rule_for_sweep, get_compiled_rule
from crm_automation.sequences import runs as sequence_runs
from crm_automation.trust.field_access import ReadableView, hidden_fields
from crm_automation.trust.run_as import run_as_of

CHUNK_SIZE = 100
SWEEP_LOCK_WAIT_SECONDS = 300


def run_time_triggers_for_all_rules():
	if not frappe.db.get_single_value("CRM Automation Settings", "enabled"):
		return
	for name in frappe.get_all(
		"Workflow Rule", filters={"enabled": 1, "trigger": TRIGGER_TIME}, pluck="name"
	):
		frappe.enqueue(
			"crm_automation.scheduler.run_time_trigger",
			queue="long",
			job_id=f"crm_automation:time_trigger:{name}",
			deduplicate=True,
			rule_name=name,
		)
	frappe.enqueue(
		"crm_automation.scheduler.retry_webhooks_for_all_logs",
		queue="short",
		job_id="crm_automation:retry_webhooks",
		deduplicate=True,
	)


def run_schedules_for_all_rules(now=None):
	"""Every minute: each Schedule rule whose next moment has come is claimed for that moment (after
	downtime: the latest moment missed, once) and its documents are selected in a job on the long queue.
	Commits after each claim, in a batch of its own: a rival scheduler must see the moment taken before
	it reads the rule, and the job must not start before the claim it relies on is durable."""
	if not frappe.db.get_single_value("CRM Automation Settings", "enabled"):
		return
	now = get_datetime(now) if now else now_datetime()
	for row in schedule_runs.due_rules(now):
		moment = schedule_runs.claim_moment(row, now)
		frappe.db.commit()
		if moment:
			frappe.enqueue(
				"crm_automation.runtime.schedule_runs.run_scheduled_rule",
				queue="long",
				job_id=f"crm_automation:schedule:{row.name}:{moment}",
				deduplicate=True,
				rule_name=row.name,
				moment=str(moment),
			)


def run_escalations_for_all_policies():
	"""Every 5 minutes: one deduplicated sweep job, which fires what is due inline or in chunk jobs.
	crm_automation.escalation.run_escalations_for_all_policies stays for jobs queued under that path."""
	escalation.run_escalations_for_all_policies()


def fire_due_steps_for_all_sequences():
	"""Every minute: the follow-up sequences' sweep (crm_automation.sequences.runs.sweep, still callable
	for jobs queued under that path). It commits as it goes: released stale claims and each step's
	claim must be visible to other workers before a step acts, and many due rows go out as chunk jobs."""
	return sequence_runs.sweep()


def due_window(rule, now, catchup_hours):
	"""The range of the rule's date field whose occurrences (field + offset) fall in
	(now - catch-up window, now]: what this sweep fires, and what a missed sweep left behind."""
	offset = datetime.timedelta(seconds=rule.time_offset_seconds)
	high = now - offset
	low = now - datetime.timedelta(hours=catchup_hours) - offset
	return low, high


def find_due_documents(rule, now=None):
	"""(name, field value) of documents whose occurrence is due and not yet claimed, oldest first.
	Selected through the index on the date field, so the cost follows the number due."""
	now = get_datetime(now) if now else now_datetime()
	catchup = frappe.db.get_single_value("CRM Automation Settings", "time_trigger_catchup_hours") or 24
	low, high = due_window(rule, now, catchup)
	field = rule.time_field
	# The rule sees the documents as its run-as user may read them: a date field that user may no
	# longer read sets nothing off, and conditions on a field they may not read see it absent.
	hidden = hidden_fields(rule.document_type, run_as_of(rule))
	if hidden.hides(field):
		return []
	is_date = frappe.get_meta(rule.document_type).get_field(field).fieldtype == "Date"
	bounds = (low.date(), high.date()) if is_date else (low, high)
	fields = ["name", field, *sorted(rule.condition.fields | {"docstatus"})]
	rows = frappe.get_all(
		rule.document_type,
		filters=[[field, ">=", bounds[0]], [field, "<=", bounds[1]], ["docstatus", "<", 2]],
		fields=list(dict.fromkeys(fields)),
		order_by=f"{field} asc",
	)
	due = []
	for row in rows:
		moment = get_datetime(row[field])
		shown = ReadableView(row, hidden) if hidden else row
		if low < moment <= high and rule.condition.matches(shown, None):
			due.append((row.name, row[field]))
	if not due:
		return []
	keys = {
		occurrence_key("Workflow Rule", rule.name, rule.document_type, name, f"time:{value}"): (name, value)
		for name, value in due
	}
	claimed = set(
		frappe.get_all(
			"Automation Occurrence", filters={"occurrence_key": ("in", list(keys))}, pluck="occurrence_key"
		)
	)
	return [pair for key, pair in keys.items() if key not in claimed]


def run_time_trigger(rule_name, now=None):
	rule = compiled_time_rule(rule_name)
	if not rule:
		return 0
	# Two sweeps of one rule take turns: their claims would otherwise interleave on the unique index
	# of Automation Occurrence and deadlock. The second finds everything claimed and fires nothing.
	lock = f"crm_automation:time_trigger:{frappe.local.site}:{rule_name}"[:64]
	if not frappe.db.sql("select get_lock(%s, %s)", (lock, SWEEP_LOCK_WAIT_SECONDS))[0][0]:
		return 0
	try:
		due = find_due_documents(rule, now)
		if len(due) <= CHUNK_SIZE:
			return fire_due_documents(rule_name, due)
		# Fan out: each chunk is a job on the long queue, so more workers fire more at once.
		return enqueue_chunks(
			"crm_automation.scheduler.fire_due_documents",
			due,
			CHUNK_SIZE,
			"due",
			lambda chunk: f"crm_automation:time_chunk:{rule_name}:{chunk[0][0]}:{chunk[0][1]}",
			rule_name=rule_name,
		)
	finally:
		frappe.db.sql("select release_lock(%s)", lock)


def compiled_time_rule(rule_name):
	return compiled_rule_for_sweep(rule_name, TRIGGER_TIME, "Time trigger")


def fire_due_documents(rule_name, due):
	"""Fire a Time rule on (name, date value) pairs; each occurrence is claimed before it fires.

	Each document runs alone (savepoints.run_alone): one that fails is rolled back with its claim and
	logged, the next sweep tries it again, and the others commit."""
	rule = compiled_time_rule(rule_name)
	if not rule:
		return 0
	return fire_each(
		rule,
		due,
		lambda rule, item: _fire_on(rule, *item),
		lambda name: f"Time trigger of Workflow Rule {rule.name} failed on {rule.document_type} {name}; "
		"retried on the next sweep",
		savepoint="crm_automation_time_document",
	)


def _fire_on(rule, name, value):
	if not frappe.db.exists(rule.document_type, name):
		return None
	doc = frappe.get_doc(rule.document_type, name)
	return run_rule(rule, doc, None, "time", occurrence_key=f"time:{value}")


def retry_webhooks_for_all_logs():
	retry_due_webhooks()
	retry_due_sms()
	# Deferred System Notifications whose sending window opened (deferred SMS are retry_due_sms's).
	send_due_alerts()


def apply_decay_for_all_score_rules():
	"""Daily: scores lose points as days pass without activity. A band change from decay is the
	lead's own behaviour, so it is announced (timeline, Score Band Changed rules)."""
	for name in frappe.get_all(
		"Lead Score Rule", filters={"enabled": 1, "decay_mode": ("!=", "None")}, pluck="name"
	):
		frappe.enqueue(
			"crm_automation.scoring.recompute_all",
			queue="long",
			timeout=3600,
			job_id=f"crm_automation:decay:{name}",
			deduplicate=True,
			rule_name=name,
			announce=True,
		)
