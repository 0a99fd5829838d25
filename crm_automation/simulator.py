"""The offline simulator: a rule pack against exported records, on any machine, no bench needed.

It evaluates each record as if it had just been saved (New, Save and Validate rules; Value Change
and Submit-style rules when the record carries its before values; Time rules
show when they would fire), scores it with the pack's Lead Score Rules (activity counts from
``activity:<type>`` columns, idle days from ``days_idle``) and lays out the escalation schedule of
its policies. Field lists for Lead, Opportunity, Sales Order, Issue and Customer ship with the
package (``samples/meta``); ``--meta`` reads others exported from a site.
"""

import csv
import datetime
import json
import os

from crm_automation.engine.conditions import with_standard_fields
from crm_automation.engine.fieldtypes import ValueTypeError, kind_of, parse_rule_value
from crm_automation.engine.packs import check_pack
from crm_automation.engine.workflow import (
	TRIGGER_MANUAL,
	TRIGGER_NEW,
	TRIGGER_SAVE,
	TRIGGER_SCORE_BAND,
	TRIGGER_TIME,
	TRIGGER_VALIDATE,
)
from crm_automation.setup.custom_fields import SCORED_DOCTYPES, score_fields

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")
ON_SAVE_TRIGGERS = (TRIGGER_NEW, TRIGGER_SAVE, TRIGGER_VALIDATE)


class Problem:
	def __init__(self, where, message):
		self.where = where
		self.message = message

	def __str__(self):
		return f"{self.where}: {self.message}"


def shipped_meta():
	meta = {}
	folder = os.path.join(SAMPLES, "meta")
	for filename in sorted(os.listdir(folder)):
		if filename.endswith(".json"):
			with open(os.path.join(folder, filename)) as handle:
				data = json.load(handle)
			meta[data["doctype"]] = data["fields"]
	return meta


def load_meta(extra_paths=()):
	"""Shipped field lists, overridden or extended by files exported from a site; the app's own
	score fields are added to the scored doctypes, as install adds them."""
	meta = shipped_meta()
	for path in extra_paths:
		with open(path) as handle:
			data = json.load(handle)
		for item in data if isinstance(data, list) else [data]:
			meta[item["doctype"]] = item["fields"]
	for doctype in SCORED_DOCTYPES:
		if doctype in meta:
			for field in score_fields():
				if kind_of(field["fieldtype"]) != "unsupported":
					meta[doctype].setdefault(field["fieldname"], {"fieldtype": field["fieldtype"], "label": field.get("label")})
	return meta


def resolve(path_or_name, kind):
	"""A path, or the name of a sample shipped with the package (e.g. lead_management)."""
	if os.path.exists(path_or_name):
		return path_or_name
	for candidate in (f"{path_or_name}.json", f"{path_or_name}.csv", path_or_name):
		shipped = os.path.join(SAMPLES, kind, candidate)
		if os.path.exists(shipped):
			return shipped
	raise FileNotFoundError(f"{path_or_name}: no such file, and no shipped sample {kind}/{path_or_name}")


def load_records(path, meta, default_doctype=None):
	"""Records from CSV (a header row; a `doctype` column or --doctype) or JSON (a list of objects
	with "doctype", or {"Lead": [...], ...}). Values are checked against the field types."""
	problems, records = [], []
	name = os.path.basename(path)
	if path.endswith(".csv"):
		with open(path, newline="") as handle:
			rows = [(f"{name}:{i + 2}", row) for i, row in enumerate(csv.DictReader(handle))]
	else:
		with open(path) as handle:
			try:
				data = json.load(handle)
			except ValueError as error:
				return [], [Problem(name, f"not valid JSON ({error})")]
		if isinstance(data, dict):
			data = [{**row, "doctype": doctype} for doctype, items in data.items() for row in items]
		rows = [(f"{name}[{i}]", row) for i, row in enumerate(data)]
	for where, row in rows:
		if not isinstance(row, dict):
			problems.append(Problem(where, "a record must be an object"))
			continue
		doctype = row.get("doctype") or default_doctype
		fields = meta.get(doctype)
		if not fields:
			problems.append(Problem(where, f"unknown doctype {doctype!r} (give a doctype column or --doctype)"))
			continue
		record, activities, before = {}, {}, {}
		all_fields = with_standard_fields(fields)
		items = list(row.items())
		if isinstance(row.get("before"), dict):
			items += [(f"before:{key}", value) for key, value in row["before"].items()]
		for key, value in items:
			if key in ("doctype", "days_idle", "before"):
				continue
			target = record
			if key.startswith("before:"):
				key, target = key.split(":", 1)[1], before
			if key.startswith("activity:"):
				activities[key.split(":", 1)[1]] = value
				continue
			field = all_fields.get(key)
			if field is None:
				problems.append(Problem(f"{where}.{key}", f"{doctype} has no field {key!r}"))
				continue
			if value in (None, ""):
				target[key] = None
				continue
			try:
				target[key] = parse_rule_value(value, field)
			except ValueTypeError as error:
				problems.append(Problem(f"{where}.{key}", f"{error} for {key} ({field['fieldtype']})"))
		record.setdefault("name", row.get("name") or where)
		records.append(
			{
				"where": where,
				"doctype": doctype,
				"values": record,
				"before": {**record, **before} if before else None,
				"activities": activities,
				"days_idle": row.get("days_idle"),
			}
		)
	return records, problems


def _activity_counts(rule, activities, where, problems):
	counts = {}
	for activity in rule.activities:
		raw = activities.get(activity.activity_type or activity.source, 0) or 0
		try:
			counts[activity.key] = int(raw)
		except (TypeError, ValueError):
			problems.append(Problem(where, f"activity count {raw!r} is not a whole number"))
	return counts


def simulate(pack, records_path, meta_paths=(), default_doctype=None, now=None):
	"""Returns (report, problems). An invalid pack or record file yields problems and no report."""
	meta = load_meta(meta_paths)
	check = check_pack(pack, meta.get)
	problems = [Problem(p.path, p.message) for p in check.problems]
	records, record_problems = load_records(records_path, meta, default_doctype)
	problems.extend(record_problems)
	if problems:
		return None, problems
	now = now or datetime.datetime.now().replace(microsecond=0)
	report = []
	for record in records:
		values = record["values"]
		entry = {"record": record["where"], "doctype": record["doctype"], "name": values.get("name"), "rules": [], "scores": [], "escalations": []}
		for _source, rule in check.compiled["lead_score_rules"]:
			if rule.document_type != record["doctype"]:
				continue
			counts = _activity_counts(rule, record["activities"], record["where"], problems)
			result = rule.score(values, counts, float(record["days_idle"] or 0))
			values["crm_score"], values["crm_score_grade"] = result.score, result.grade
			entry["scores"].append({"rule": rule.name, **result.as_dict(), "explained": result.explain()})
		for rule_source, rule in check.compiled["workflow_rules"]:
			if rule.document_type != record["doctype"] or rule_source.get("enabled") == 0:
				continue
			entry["rules"].append(_simulate_rule(rule, values, record["before"], now))
		for _source, policy in check.compiled["escalation_policies"]:
			if policy.document_type == record["doctype"]:
				entry["escalations"].append(_simulate_policy(policy, values, now))
		report.append(entry)
	return report, problems


def _simulate_rule(rule, values, before, now):
	outcome = {"rule": rule.name, "trigger": rule.trigger}
	if before is not None and rule.trigger not in (TRIGGER_TIME, TRIGGER_SCORE_BAND):
		evaluation = rule.evaluate(values, before, explain=True)
		outcome["note"] = "as a change from the record's before values"
	elif rule.trigger == TRIGGER_SCORE_BAND:
		before = {**values, "crm_score_grade": None}
		evaluation = rule.evaluate(values, before, explain=True)
		outcome["note"] = "as if the record just reached its grade"
	elif rule.trigger in ON_SAVE_TRIGGERS or rule.trigger == TRIGGER_MANUAL:
		evaluation = rule.evaluate(values, None, explain=True)
	elif rule.trigger == TRIGGER_TIME:
		evaluation = rule.evaluate(values, None, explain=True)
		moment = values.get(rule.time_field)
		if moment is not None:
			if not isinstance(moment, datetime.datetime):
				moment = datetime.datetime.combine(moment, datetime.time())
			outcome["fires_at"] = (moment + datetime.timedelta(seconds=rule.time_offset_seconds)).isoformat(sep=" ")
	else:
		outcome.update(outcome="Not Simulated", reason=f"{rule.trigger} needs the record's before values (a before object or before:<field> columns)")
		return outcome
	outcome.update(
		outcome=evaluation.outcome,
		reason=evaluation.reason,
		branch=evaluation.branch,
		actions=[_describe_intent(intent, values) for intent in evaluation.intents],
		trace=evaluation.trace,
	)
	return outcome


def _render(text, values):
	try:
		import jinja2.sandbox
	except ImportError:
		return text
	try:
		return jinja2.sandbox.SandboxedEnvironment().from_string(text or "").render(doc=values, old_doc=None)
	except Exception as error:
		return f"{text}  [template error: {error}]"


def _describe_intent(intent, values):
	shown = {key: value for key, value in intent.items() if key not in ("row", "row_id", "row_doctype") and value not in (None, "", [], False, {})}
	for key in ("subject", "message", "description", "value"):
		if isinstance(shown.get(key), str):
			shown[key] = _render(shown[key], values)
	return shown


def _simulate_policy(policy, values, now):
	start = policy.clock_start_for(values, now)
	if not policy.applies(values):
		return {"policy": policy.name, "outcome": "Not Watched", "reason": "the conditions do not hold"}
	if policy.stopped(values):
		return {"policy": policy.name, "outcome": "Stopped", "reason": "the stop condition holds"}
	if start is None:
		return {"policy": policy.name, "outcome": "No Clock", "reason": "the clock's start field is empty"}
	if not isinstance(start, datetime.datetime):
		start = datetime.datetime.combine(start, datetime.time())
	schedule = []
	for level in policy.levels:
		if level.warn_before:
			schedule.append({"at": policy.calendar.deadline(start, level.after - level.warn_before).isoformat(sep=" "), "what": f"Warning before level {level.number}"})
		schedule.append({"at": policy.calendar.deadline(start, level.after).isoformat(sep=" "), "what": level.label(), "actions": [i["type"] for i in level.intents]})
	return {"policy": policy.name, "outcome": "Paused" if policy.paused(values) else "Running", "clock_started": start.isoformat(sep=" "), "schedule": schedule}


def format_text(report):
	lines = []
	for entry in report:
		lines.append(f"{entry['doctype']} {entry['name']}  ({entry['record']})")
		for score in entry["scores"]:
			lines.append(f"  score {score['score']:g} → {score['grade'] or '-'}  [{score['rule']}: {score['explained']}]")
		for rule in entry["rules"]:
			head = f"  {rule['outcome']:<13} {rule['rule']} ({rule['trigger']})"
			if rule.get("branch"):
				head += f" branch {rule['branch']}"
			if rule.get("fires_at"):
				head += f" at {rule['fires_at']}"
			if rule.get("reason"):
				head += f": {rule['reason']}"
			lines.append(head)
			for action in rule.get("actions") or []:
				details = ", ".join(f"{k}={v}" for k, v in action.items() if k not in ("type", "branch"))
				lines.append(f"      → {action['type']}: {details}")
		for escalation in entry["escalations"]:
			lines.append(f"  {escalation['outcome']:<13} {escalation['policy']}" + (f": {escalation['reason']}" if escalation.get("reason") else ""))
			for step in escalation.get("schedule") or []:
				lines.append(f"      {step['at']}  {step['what']}" + (f" ({', '.join(step['actions'])})" if step.get("actions") else ""))
	fired = sum(1 for e in report for r in e["rules"] if r["outcome"] in ("Fired", "Rejected"))
	lines.append(f"\n{len(report)} records, {fired} rule firings")
	return "\n".join(lines)
