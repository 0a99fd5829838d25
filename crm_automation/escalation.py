"""Escalation Policies on a site: each document's clock (an Escalation State row), kept in step on
save, and a sweep every 5 minutes that fires what is due, level by level.

The sweep reads only Escalation State rows whose indexed next_escalation_on has passed, so its cost
follows the number due. Each (policy, document, clock, level) is claimed once in Automation
Occurrence; missed levels after downtime fire once each, in order, marked late.
"""

import datetime
import time

import frappe
from frappe import _
from frappe.utils import get_datetime, getdate, now_datetime

from crm_automation import actions
from crm_automation.engine.escalation import CLOCK_FIELD, REOPEN_RESTART, compile_policy
from crm_automation.engine.i18n import translating
from crm_automation.engine.workflow import ADD_COMMENT, CREATE_TODO, NOTIFY, SEND_EMAIL
from crm_automation.runtime.compiled_cache import CompiledCache, forget_local_indexes
from crm_automation.runtime.fan_out import enqueue_chunks
from crm_automation.runtime.linked_values import field_values
from crm_automation.runtime.policy_calendars import holidays_of
from crm_automation.runtime.run_log import claim_occurrence, make_log
from crm_automation.runtime.savepoints import TransactionLost, run_alone
from crm_automation.runtime.workflow_rules import get_fields, get_fields_if_doctype, parse_conditions
from crm_automation.trust.field_access import readable_view
from crm_automation.trust.run_as import run_as_of

VERSION_KEY = "crm_automation:escalation_policies_version"
SWEEP_CHUNK = 200
LATE_AFTER = datetime.timedelta(minutes=10)
WARNING_ACTIONS = (NOTIFY, SEND_EMAIL, CREATE_TODO, ADD_COMMENT)


def policy_as_dict(policy):
	data = {
		key: policy.get(key)
		for key in (
			"name",
			"document_type",
			"clock_start",
			"start_field",
			"on_reopen",
			"pause_field",
			"pause_values",
			"calendar_mode",
			"holiday_list",
		)
	}
	data["conditions"] = parse_conditions(policy.get("conditions"))
	data["stop_conditions"] = parse_conditions(policy.get("stop_conditions"))
	data["working_hours"] = [
		{"weekday": row.weekday, "start_time": str(row.start_time), "end_time": str(row.end_time)}
		for row in policy.get("working_hours") or []
	]
	data["levels"] = [row.as_dict() for row in policy.get("levels") or []]
	return data


def compile_policy_doc(policy):
	compiled = compile_policy(
		policy_as_dict(policy), get_fields(policy.document_type), holidays_of(policy.holiday_list)
	)
	for level in compiled.levels:
		for intent in level.intents:
			intent["row_doctype"] = "Escalation Policy Level"
	compiled.run_as = policy.get("run_as") or policy.owner
	return compiled


def _build_policy_index():
	index = {"by_doctype": {}, "by_name": {}}
	for name in frappe.get_all("Escalation Policy", filters={"enabled": 1}, pluck="name"):
		try:
			compiled = compile_policy_doc(frappe.get_doc("Escalation Policy", name))
		except Exception:
			frappe.log_error(title=f"Escalation Policy {name} no longer compiles")
			continue
		index["by_doctype"].setdefault(compiled.document_type, []).append(compiled)
		index["by_name"][name] = compiled
	return index


_policy_cache = CompiledCache(VERSION_KEY, _build_policy_index)


def policy_index():
	return _policy_cache.get()


def get_policies(doctype):
	return policy_index()["by_doctype"].get(doctype, ())


def clear_policy_cache():
	_policy_cache.clear()


# ----------------------------------------------------------------------------------------------
# Keeping each document's clock in step with the document


def sync_document(doc, now=None):
	"""After a save (or db_set): start, stop, pause, resume or restart this document's clocks."""
	now = get_datetime(now) if now else now_datetime()
	policies = get_policies(doc.doctype)
	if not policies:
		return
	states = _states_of(doc, [policy.name for policy in policies])
	for policy in policies:
		sync_one(policy, doc, now, states.get(policy.name))


def _states_of(doc, policy_names):
	"""{policy: state name} of the document, in one query; none for a document being inserted (its
	clocks start in this save), so a save that matches nothing costs no query."""
	if doc.flags.in_insert:
		return {}
	rows = frappe.get_all(
		"Escalation State",
		filters={
			"reference_doctype": doc.doctype,
			"reference_name": doc.name,
			"policy": ("in", policy_names),
		},
		fields=["name", "policy"],
		order_by="modified desc",
	)
	states = {}
	for row in rows:
		states.setdefault(row.policy, row.name)
	return states


def values_as_run_as(policy, doc):
	"""What the policy's conditions and clock fields read: the document as its run-as user may read
	it, fields above that user's levels absent (field_access.py)."""
	return readable_view(field_values(doc), doc.doctype, run_as_of(policy))


def get_state(policy_name, doc):
	name = frappe.db.get_value(
		"Escalation State",
		{"policy": policy_name, "reference_doctype": doc.doctype, "reference_name": doc.name},
	)
	return frappe.get_doc("Escalation State", name) if name else None


def sync_one(policy, doc, now, state_name=None):
	values = values_as_run_as(policy, doc)
	state = frappe.get_doc("Escalation State", state_name) if state_name else None
	live = policy.applies(values) and not policy.stopped(values)
	if state is None:
		if live:
			start_clock(policy, values, doc, now)
		return
	before = clock_fields(state)
	if not live:
		if state.status != "Stopped":
			state.update(
				{
					"status": "Stopped",
					"paused_since": now,
					"next_escalation_on": None,
					"next_escalation": None,
				}
			)
	elif state.status == "Stopped":
		if policy.on_reopen == REOPEN_RESTART:
			restart(state, now)
		else:
			# Continue: the time it stood stopped does not count, like a pause.
			add_paused_time(policy, state, now)
			state.status = "Active"
	elif policy.clock_start == CLOCK_FIELD:
		field_start = values.get(policy.start_field)
		if field_start and get_datetime(field_start) != get_datetime(state.clock_started_on):
			restart(state, get_datetime(field_start))
	if live and state.status != "Stopped":
		is_paused = policy.paused(values)
		if is_paused and state.status == "Active":
			state.update({"status": "Paused", "paused_since": now})
		elif not is_paused and state.status == "Paused":
			add_paused_time(policy, state, now)
			state.status = "Active"
	schedule(policy, state)
	if clock_fields(state) != before:
		state.save(ignore_permissions=True)


def clock_fields(state):
	return tuple(
		str(state.get(field))
		for field in (
			"status",
			"clock_started_on",
			"paused_since",
			"paused_seconds",
			"current_level",
			"next_escalation_on",
		)
	)


def start_clock(policy, values, doc, now):
	start = policy.clock_start_for(values, now)
	if not start:
		return None
	state = frappe.get_doc(
		{
			"doctype": "Escalation State",
			"policy": policy.name,
			"reference_doctype": doc.doctype,
			"reference_name": doc.name,
			"status": "Paused" if policy.paused(values) else "Active",
			"clock_started_on": get_datetime(start),
			"paused_since": now if policy.paused(values) else None,
		}
	)
	schedule(policy, state)
	state.flags.ignore_links = True
	state.insert(ignore_permissions=True)
	return state


def restart(state, start):
	state.update(
		{
			"status": "Active",
			"clock_started_on": start,
			"paused_since": None,
			"paused_seconds": 0,
			"current_level": 0,
			"warned_level": 0,
			"repeats": 0,
		}
	)


def add_paused_time(policy, state, now):
	if state.paused_since:
		paused = policy.calendar.elapsed(get_datetime(state.paused_since), now)
		state.paused_seconds = (state.paused_seconds or 0) + paused.total_seconds()
	state.paused_since = None


def schedule(policy, state):
	due = None
	if state.status == "Active":
		due = policy.next_due(
			get_datetime(state.clock_started_on),
			state.paused_seconds,
			state.current_level or 0,
			state.warned_level or 0,
			state.repeats or 0,
		)
	state.next_escalation_on = due.at if due else None
	with translating(_):  # stored for the document's dashboard: in the site's language, not English
		state.next_escalation = due.describe() if due else None
	return due


# ----------------------------------------------------------------------------------------------
# The sweep


def run_escalations_for_all_policies():
	if not frappe.db.get_single_value("CRM Automation Settings", "enabled"):
		return
	frappe.enqueue(
		"crm_automation.escalation.sweep",
		queue="long",
		job_id="crm_automation:escalation_sweep",
		deduplicate=True,
	)


def sweep(now=None):
	"""Find what is due through the index on next_escalation_on and fire it: inline when it fits in
	one chunk, else as chunk jobs on the long queue so that more workers fire more at once. Two sweeps
	take turns (a named lock); the occurrence claims make each level fire once even so.
	Returns the levels fired inline, or the number of clocks handed to chunk jobs."""
	now = get_datetime(now) if now else now_datetime()
	lock = f"crm_automation:escalations:{frappe.local.site}"[:64]
	if not frappe.db.sql("select get_lock(%s, %s)", (lock, 300))[0][0]:
		return 0
	try:
		due = frappe.get_all(
			"Escalation State",
			filters={"status": "Active", "next_escalation_on": ("<=", now)},
			pluck="name",
			order_by="next_escalation_on asc",
		)
		if len(due) <= SWEEP_CHUNK:
			return fire_due_escalations(due, now)
		return enqueue_chunks(
			"crm_automation.escalation.fire_due_escalations",
			due,
			SWEEP_CHUNK,
			"names",
			lambda chunk: f"crm_automation:escalations:{chunk[0]}:{now:%Y%m%d%H%M}",
			now=str(now),
		)
	finally:
		frappe.db.sql("select release_lock(%s)", lock)


def fire_due_escalations(names, now=None):
	"""Escalate each clock alone (savepoints.run_alone): one that fails is rolled back with its claims
	and clock changes and logged; it is still due, so the next sweep tries it again."""
	now = get_datetime(now) if now else now_datetime()
	documents = {
		row.name: row
		for row in frappe.get_all(
			"Escalation State",
			filters={"name": ("in", names)},
			fields=["name", "policy", "reference_doctype", "reference_name"],
		)
	}
	fired = 0
	try:
		for name in names:
			state = documents.get(name) or frappe._dict(
				policy=None, reference_doctype=None, reference_name=None
			)
			done, count = run_alone(
				lambda name=name: escalate(name, now),
				f"Escalation Policy {state.policy} failed on {state.reference_doctype} {state.reference_name}"
				"; retried on the next sweep",
				state.reference_doctype,
				state.reference_name,
				savepoint="crm_automation_escalation",
			)
			fired += count if done else 0
	except TransactionLost:
		pass
	# Commit the chunk: its fired levels and claims become final and visible to the next sweep.
	frappe.db.commit()
	return fired


def escalate(state_name, now):
	state = frappe.get_doc("Escalation State", state_name)
	policy = _compiled_policy(state.policy)
	if not policy or not frappe.db.exists(state.reference_doctype, state.reference_name):
		state.db_set({"status": "Stopped", "next_escalation_on": None, "next_escalation": None})
		return 0
	doc = frappe.get_doc(state.reference_doctype, state.reference_name)
	values = values_as_run_as(policy, doc)
	if not policy.applies(values) or policy.stopped(values) or policy.paused(values):
		# Changed without a save we saw (a db_set in a report, a direct import): catch up now.
		sync_one(policy, doc, now, state_name)
		return 0
	fired = 0
	due = schedule(policy, state)
	while due and due.at <= now:
		key = f"{get_datetime(state.clock_started_on).isoformat()}:{due.key}"
		if claim_occurrence("Escalation Policy", policy.name, doc.doctype, doc.name, key):
			fire(policy, doc, due, now)
			fired += 1
		if due.is_warning:
			state.warned_level = due.level.number
		elif due.repeat:
			state.repeats = due.repeat
		else:
			state.current_level, state.repeats = due.level.number, 0
		state.last_escalated_on = now
		due = schedule(policy, state)
	state.save(ignore_permissions=True)
	return fired


def _compiled_policy(name):
	"""The compiled policy, rebuilt once when this process's index lacks a policy that is enabled:
	an index built in an older snapshot would otherwise stop that policy's clocks as if it were gone."""
	policy = policy_index()["by_name"].get(name)
	refreshed = getattr(frappe.local, "crm_automation_refreshed_policies", None)
	if refreshed is None:
		refreshed = frappe.local.crm_automation_refreshed_policies = set()
	# Once per policy per job: a policy that does not compile must not cost a rebuild per clock.
	if policy is None and name not in refreshed:
		refreshed.add(name)
		if frappe.db.exists("Escalation Policy", {"name": name, "enabled": 1}):
			forget_local_indexes()
			policy = policy_index()["by_name"].get(name)
	return policy


class _PolicyAsRule:
	"""What actions.py needs to know of the rule that asked: its name (for messages and turns) and
	the user its actions run as."""

	minutes_saved_override = None

	def __init__(self, name, run_as):
		self.name = name
		self.run_as = run_as


def fire(policy, doc, due, now):
	started = time.perf_counter()
	intents = [dict(intent) for intent in due.level.intents]
	if due.is_warning:
		intents = [i for i in intents if i["type"] in WARNING_ACTIONS]
		for intent in intents:
			for key in ("subject", "description", "message"):
				if intent.get(key):
					intent[key] = _("Warning: {0}").format(intent[key])
	results = actions.carry_out(
		intents, doc, None, _PolicyAsRule(policy.name, getattr(policy, "run_as", None))
	)
	late = now - due.at
	reason = _("{0} due {1}").format(due.describe(), due.at)
	if late > LATE_AFTER:
		reason += " · " + _("late by {0} (the scheduler was not running)").format(str(late).split(".")[0])
	failed = any(r["status"] == "Failed" for r in results)
	log_name = make_log(
		rule_type="Escalation Policy",
		rule=policy.name,
		trigger="Escalation",
		event=due.describe(),
		doc=doc,
		outcome="Failed" if failed else "Success",
		reason=reason,
		results=results,
		duration_ms=(time.perf_counter() - started) * 1000,
		minutes_saved=0 if failed else sum(r.get("minutes_saved") or 0 for r in results),
		error="\n\n".join(r.get("error") or "" for r in results if r.get("error")) or None,
	)
	# Send SMS of a level: one row per recipient, delivered after the commit.
	actions.after_run(log_name, results)
