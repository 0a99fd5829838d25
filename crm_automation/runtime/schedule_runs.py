"""Schedule triggers on the site: a rule's schedule compiled from its fields and its Escalation Policy's
calendar, each due (rule, moment) claimed once however many schedulers find it, and the documents
that match the rule's conditions at that moment run in chunks on the long queue, each claimed once
per (rule, document, moment). The moments themselves are engine/schedules.py's."""

import frappe
from frappe.utils import get_datetime

from crm_automation.engine.schedules import MOMENT_FIELDS, SCHEDULE_FIELDS, compile_schedule, due_moment
from crm_automation.engine.workflow import TRIGGER_SCHEDULE
from crm_automation.runtime.compiled_cache import forget_local_indexes
from crm_automation.runtime.fan_out import enqueue_chunks
from crm_automation.runtime.policy_calendars import calendar_spec, holidays_of
from crm_automation.runtime.runner import run_rule
from crm_automation.runtime.savepoints import fire_each
from crm_automation.runtime.workflow_rules import compiled_rule_for_sweep, get_compiled_rule
from crm_automation.trust.field_access import ReadableView, hidden_fields
from crm_automation.trust.run_as import run_as_of

CHUNK_SIZE = 100
# Documents read per query while selecting: the selection's memory follows this, not the doctype's size.
PAGE_SIZE = 2000
EVENT = "scheduled"


def policy_calendar(name):
	"""The calendar spec of Escalation Policy ``name`` as a schedule reads it, or None when there is no
	such policy: a 24x7 policy keeps its Holiday List too (engine/schedules.days_only_spec)."""
	spec = calendar_spec(name)
	if spec is not None and spec.get("mode") == "24x7":
		holiday_list = frappe.get_cached_doc("Escalation Policy", name).holiday_list
		spec = {**spec, "holidays": holidays_of(holiday_list) or []}
	return spec


def schedule_of(rule):
	"""The compiled schedule of a Workflow Rule (document or row); raises RuleError."""
	fields = {field: rule.get(field) for field in SCHEDULE_FIELDS}
	return compile_schedule(fields, policy_calendar(fields["schedule_calendar"]))


def due_rules(now):
	"""Enabled Schedule rules whose next moment has come (or was never worked out)."""
	return frappe.get_all(
		"Workflow Rule",
		filters={"enabled": 1, "trigger": TRIGGER_SCHEDULE},
		or_filters=[["schedule_next_moment", "is", "not set"], ["schedule_next_moment", "<=", now]],
		fields=["name", *SCHEDULE_FIELDS, *MOMENT_FIELDS],
	)


def claim_moment(row, now):
	"""Take the rule's due moment for this scheduler: the moment to run, or None when nothing is due
	or a rival scheduler took it first. One conditional UPDATE decides: it moves the next moment on
	only if it still holds what this scheduler read, and MariaDB's row lock makes a second scheduler's
	identical UPDATE wait and then match no row. The rule's modified stamp is left alone: this is
	bookkeeping, not an edit (compiled rules are keyed on it)."""
	try:
		schedule = schedule_of(row)
	except Exception:
		frappe.log_error(
			title=f"Schedule of Workflow Rule {row.name} does not compile; it does not run",
			reference_doctype="Workflow Rule",
			reference_name=row.name,
		)
		return None
	expected = get_datetime(row.schedule_next_moment) if row.schedule_next_moment else None
	moment, next_moment = due_moment(schedule, expected, now)
	assignments = ["schedule_next_moment = %(next)s"]
	if moment:
		assignments.append("schedule_last_moment = %(moment)s")
	frappe.db.sql(
		f"""update `tabWorkflow Rule` set {", ".join(assignments)}
		where name = %(name)s and enabled = 1 and schedule_next_moment <=> %(expected)s""",
		{"name": row.name, "next": next_moment, "moment": moment, "expected": expected},
	)
	if frappe.db._cursor.rowcount != 1:
		return None  # a rival scheduler moved the next moment first (or nothing changed)
	return moment


def set_next_moment(rule, now):
	"""On a rule's save: the moments shown on the form. A changed schedule (or a rule switched on)
	starts from now; otherwise the moments stay as the scheduler last left them in the database, not
	as the form loaded them, so a save neither skips a due moment nor brings back one already run."""
	if rule.trigger != TRIGGER_SCHEDULE:
		# Frappe's new_doc stamps every Time field with the current time, whatever its default: a
		# rule that runs on no schedule keeps no time of day.
		rule.schedule_next_moment = rule.schedule_time = None
		return
	schedule = schedule_of(rule)
	stored = (
		None
		if rule.is_new()
		else frappe.db.get_value("Workflow Rule", rule.name, MOMENT_FIELDS, as_dict=True)
	)
	changed = any(rule.has_value_changed(field) for field in (*SCHEDULE_FIELDS, "trigger", "enabled"))
	if stored and stored.schedule_next_moment and not changed:
		rule.update(stored)
		return
	rule.schedule_next_moment = schedule.next_moment(get_datetime(now))


def run_scheduled_rule(rule_name, moment):
	"""The job of one claimed (rule, moment): select the documents that match now, page by page, and
	hand them to chunk jobs of CHUNK_SIZE as they are found (fewer than one chunk run here at once).
	Returns how many were handed over or fired."""
	rule = compiled_schedule_rule(rule_name)
	if not rule:
		return 0
	moment = str(get_datetime(moment))
	handed, pending = 0, []
	for page in select_documents(rule):
		pending.extend(page)
		if len(pending) >= CHUNK_SIZE:
			whole = len(pending) - len(pending) % CHUNK_SIZE
			handed += _hand_over(rule_name, moment, pending[:whole])
			pending = pending[whole:]
	if pending and not handed:
		return fire_scheduled_documents(rule_name, moment, pending)
	return handed + _hand_over(rule_name, moment, pending)


def _hand_over(rule_name, moment, names):
	# Deduplicated by (rule, moment, first name): a chunk queued twice (a retried job) runs once.
	return enqueue_chunks(
		"crm_automation.runtime.schedule_runs.fire_scheduled_documents",
		names,
		CHUNK_SIZE,
		"names",
		lambda chunk: f"crm_automation:schedule_chunk:{rule_name}:{moment}:{chunk[0]}",
		rule_name=rule_name,
		moment=moment,
	)


def select_documents(rule):
	"""Pages of names of the documents matching the rule's conditions as its run-as user reads them:
	records that user may not read are never selected (their permission query and user permissions
	apply, through get_list for that user), and fields above their levels are absent to conditions.
	Keyset pages by name, so memory stays flat over any number of documents."""
	user = run_as_of(rule)
	hidden = hidden_fields(rule.document_type, user)
	fields = list(dict.fromkeys(["name", *sorted(rule.condition.fields | {"docstatus"})]))
	last = None
	while True:
		filters = [["docstatus", "<", 2]]
		if last is not None:
			filters.append(["name", ">", last])
		try:
			rows = frappe.get_list(
				rule.document_type,
				filters=filters,
				fields=fields,
				order_by="name asc",
				limit_page_length=PAGE_SIZE,
				user=user,
			)
		except frappe.PermissionError:
			frappe.log_error(
				title=f"Schedule of Workflow Rule {rule.name}: its run-as user {user} may not read "
				f"{rule.document_type}",
				reference_doctype="Workflow Rule",
				reference_name=rule.name,
			)
			frappe.clear_last_message()
			return
		if not rows:
			return
		last = rows[-1].name
		matching = [
			row.name
			for row in rows
			if rule.condition.matches(ReadableView(row, hidden) if hidden else row, None)
		]
		if matching:
			yield matching
		if len(rows) < PAGE_SIZE:
			return


def compiled_schedule_rule(rule_name):
	return compiled_rule_for_sweep(rule_name, TRIGGER_SCHEDULE, "Schedule")


def fire_scheduled_documents(rule_name, moment, names):
	"""A chunk job: run the rule on each document for this moment, each claimed once per (rule,
	document, moment) by its Automation Occurrence, so a chunk run twice (two workers, a retried job)
	fires nothing the second time. Each document runs alone: one that fails is rolled back with its
	claim and logged, and the others commit."""
	rule = compiled_schedule_rule(rule_name)
	if not rule:
		return 0
	return fire_each(
		rule,
		names,
		lambda rule, name: _fire_on(rule, name, moment),
		lambda name: f"Schedule of Workflow Rule {rule.name} failed on {rule.document_type} {name} at {moment}",
		savepoint="crm_automation_schedule_document",
	)


def _fire_on(rule, name, moment):
	if not frappe.db.exists(rule.document_type, name):
		return None
	doc = frappe.get_doc(rule.document_type, name)
	return run_rule(rule, doc, None, EVENT, occurrence_key=f"schedule:{moment}")
