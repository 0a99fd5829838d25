"""Inbound webhooks offline: a file of payloads played against a pack's Webhook Received rules.

Each payload finds its target among the exported records as the site would (the rule's match field
equal to the value at its payload path), or, when none is found and the rule creates documents, a
new record made from the rule's field map rendered over the payload; the rule is then decided on
that record with `payload` seen by its conditions (the advanced condition included) and templates.

The payloads file is JSON (a list) or JSON lines; each entry is ``{"rule": "<rule name>", "payload":
{...}}``, or a bare payload object, which every Webhook Received rule of the pack receives. No Frappe
imported.
"""

import json

from crm_automation.engine import inbound
from crm_automation.engine.budget import run_budget
from crm_automation.engine.expressions import ExpressionError, evaluate_expression
from crm_automation.engine.templates import TemplateError, render_template
from crm_automation.engine.workflow import TRIGGER_WEBHOOK, Evaluation
from crm_automation.offline.input_files import InputError
from crm_automation.offline.record_files import RowSource
from crm_automation.offline.record_reader import RecordReader

NOT_SIMULATED_REASON = "runs on inbound webhook payloads (--payloads)"


def webhook_rules(compiled):
	"""(source, compiled rule) of the pack's enabled Webhook Received rules."""
	return [
		(source, rule)
		for source, rule in compiled["workflow_rules"]
		if rule.trigger == TRIGGER_WEBHOOK and source.get("enabled") != 0
	]


def play_payloads(
	compiled, payloads_path, records_path, meta, report, describe, default_doctype=None, summary=None
):
	"""Yield one explained entry per (payload, rule) it reaches, in the simulator's entry shape plus
	``target`` (found / created / none), each counted in ``summary``. ``report(where, message)``
	takes problems of the files; ``describe(intent, values)`` is how the simulator shows an action
	(its templates are rendered inside the payload's context, so they see `payload`)."""
	rules = webhook_rules(compiled)
	if not rules:
		report(payloads_path, "the pack has no enabled Webhook Received rule to send payloads to")
		return
	targets = TargetIndex(rules, records_path, meta, report, default_doctype)
	for where, row in RowSource(payloads_path):
		for source, rule, payload in _deliveries(where, row, rules, report):
			entry, evaluation = _play_one(where, source, rule, payload, targets, describe)
			if summary is not None:
				summary.count_rule(rule, evaluation)
			yield entry


def _deliveries(where, row, rules, report):
	if not isinstance(row, dict):
		report(where, "a payload entry must be a JSON object")
		return []
	if isinstance(row.get("payload"), dict):
		named, payload = row.get("rule"), row["payload"]
		chosen = [(source, rule) for source, rule in rules if not named or rule.name == named]
		if not chosen:
			report(where, f"no enabled Webhook Received rule named {named!r} in the pack")
	else:
		payload, chosen = row, rules
	try:
		payload = inbound.parse_payload(json.dumps(payload).encode())
	except inbound.PayloadError as error:
		report(where, f"the payload would be refused: {error}")
		return []
	return [(source, rule, payload) for source, rule in chosen]


class TargetIndex:
	"""The exported records of the rules' doctypes, by (doctype, match field, value); records the
	payloads create are added, so a second payload for the same person finds the first's record."""

	def __init__(self, rules, records_path, meta, report, default_doctype):
		self.by_key, self.created = {}, 0
		wanted = {(rule.document_type, source.get("webhook_match_field")) for source, rule in rules}
		if not records_path:
			return
		reader = RecordReader(meta, report, default_doctype)
		try:
			for where, row in RowSource(records_path):
				record = reader.read(where, row)
				if record is None:
					continue
				for doctype, fieldname in wanted:
					value = record["values"].get(fieldname)
					if record["doctype"] == doctype and value not in (None, ""):
						self.by_key.setdefault((doctype, fieldname, str(value)), record["values"])
		except InputError as error:
			report(error.where, error.message)

	def find(self, doctype, fieldname, value):
		return self.by_key.get((doctype, fieldname, str(value)))

	def add(self, doctype, fieldname, values):
		self.created += 1
		values.setdefault("name", f"new-{doctype.lower().replace(' ', '-')}-{self.created}")
		if values.get(fieldname) not in (None, ""):
			self.by_key[(doctype, fieldname, str(values[fieldname]))] = values
		return values


def _play_one(where, source, rule, payload, targets, describe):
	entry = {"record": where, "doctype": rule.document_type, "rules": [], "scores": [], "escalations": []}
	outcome = {"rule": rule.name, "trigger": rule.trigger}
	entry["rules"].append(outcome)
	path, fieldname = source.get("webhook_match_path") or "", source.get("webhook_match_field") or ""
	value = inbound.value_at(payload, path)
	with inbound.payload_context(payload), run_budget():
		values = (
			None
			if value in (None, "") or isinstance(value, dict | list)
			else targets.find(rule.document_type, fieldname, value)
		)
		entry["target"] = "found" if values is not None else "none"
		if values is None and value not in (None, "") and source.get("webhook_create_missing"):
			values, problem = _created(source, rule, fieldname, targets)
			if problem:
				outcome.update(outcome="Failed", reason=problem)
				entry["name"] = None
				return entry, Evaluation(rule.name, "Failed", problem)
			entry["target"] = "created"
		entry["name"] = (values or {}).get("name")
		if values is None:
			reason = f"no {rule.document_type} whose {fieldname} is {value!r}"
			outcome.update(outcome=Evaluation.SKIPPED, reason=reason)
			return entry, Evaluation(rule.name, Evaluation.SKIPPED, reason)
		evaluation = rule.evaluate(values, None, explain=True)
		evaluation = _with_advanced_condition(source, rule, evaluation, values)
		outcome.update(
			outcome=evaluation.outcome,
			reason=evaluation.reason,
			branch=evaluation.branch,
			actions=[describe(intent, values) for intent in evaluation.intents],
			trace=evaluation.trace,
		)
	return entry, evaluation


def _created(source, rule, fieldname, targets):
	"""The new record from the field map over `payload` (inside payload_context), or a problem."""
	values = {"doctype": rule.document_type}
	for target, template in (inbound.field_map_of(source) or {}).items():
		try:
			values[target] = render_template(template, {}) if isinstance(template, str) else template
		except TemplateError as error:
			return None, f"the field map's {target} could not be rendered: {error}"
	return targets.add(rule.document_type, fieldname, values), None


def _with_advanced_condition(source, rule, evaluation, values):
	expression = (source.get("condition_expression") or "").strip()
	if not evaluation.fired or not expression:
		return evaluation
	try:
		holds = evaluate_expression(expression, values)
	except ExpressionError as error:
		return Evaluation(rule.name, "Failed", f"the advanced condition failed: {error.first.message}")
	if holds:
		return evaluation
	return Evaluation(
		rule.name, Evaluation.SKIPPED, "the advanced condition is false", trace=evaluation.trace
	)
