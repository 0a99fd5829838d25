"""Active Workflow Rules, compiled once per process (see compiled_cache) and looked up per
(doctype, event) in O(1): a save of a doctype without rules costs one dict lookup."""

import datetime
import decimal
import hashlib
import json

import frappe
from frappe.model.base_document import BaseDocument

from crm_automation.engine import RuleError, compile_workflow_rule
from crm_automation.engine.expressions import EXPRESSION_HELPERS, EXPRESSION_NAMES, evaluate_expression
from crm_automation.engine.rule_index import index_rules
from crm_automation.engine.schedules import SCHEDULE_FIELDS
from crm_automation.engine.workflow import EVENTS_BY_TRIGGER
from crm_automation.runtime.compiled_cache import CompiledCache, forget_local_indexes
from crm_automation.runtime.policy_calendars import calendars_for
from crm_automation.trust.field_access import readable_values
from crm_automation.trust.run_as import run_as_of
from crm_automation.trust.run_as_reads import reader_for

VERSION_KEY = "crm_automation:workflow_rules_version"
# Changes only on a full clear: compiled rules of an older generation are all compiled again.
GENERATION_KEY = "crm_automation:workflow_rules_generation"
RULE_FIELDS = (
	"name",
	"rule_name",
	"enabled",
	"document_type",
	"trigger",
	"priority",
	"fire_mode",
	"minutes_saved",
	"trigger_field",
	"from_value",
	"to_value",
	"time_field",
	"time_offset",
	"time_unit",
	"time_direction",
	"conditions",
	"condition_expression",
	"owner",
	"stop_conditions",
	"stop_when_unmatched",
	"holdout_percent",
	"branch_mode",
	"stop_on_reply",
	"send_window_policy",
	*SCHEDULE_FIELDS,
)
# Doctypes whose saves must never start automation: our own bookkeeping and what it writes.
EXCLUDED_DOCTYPES = frozenset(
	{
		"Workflow Rule",
		"Workflow Rule Action",
		"Workflow Rule Branch",
		"Automation Log",
		"Automation Log Action",
		"Automation Occurrence",
		"Automation Group Member",
		"CRM Automation Settings",
		"Error Log",
		"Scheduled Job Log",
		"Version",
		"Access Log",
		"Activity Log",
		"Route History",
		"Email Queue",
		"Email Queue Recipient",
		"DocType",
		"Custom Field",
		"Property Setter",
		"Lead Score Rule",
		"Lead Score Rule Criterion",
		"Lead Score Rule Activity",
		"Lead Score Rule Band",
		"Escalation Policy",
		"Escalation Policy Level",
		"Escalation Policy Working Hour",
		"Escalation State",
		"Workflow Rule Step",
		"Automation Sequence Step",
		"Automation Sequence Definition",
	}
)


def expression_holds(expression, doc, before, rule=None):
	"""The advanced condition on the values of `doc` and `before`, never on the Documents themselves:
	nothing a condition calls can write, and it sees the fields and get_value reads only what
	`rule`'s run-as user may read. Raises ExpressionError when it is refused or fails."""
	user = run_as_of(rule)
	doc_values = readable_plain_values(doc, user)
	before_values = readable_plain_values(before, user, (doc_values or {}).get("doctype"))
	return bool(evaluate_expression(expression, doc_values, before_values, reader_for(user)))


def readable_plain_values(doc, user, doctype=None):
	"""plain_values of `doc` as `user` may read it: fields above that user's permission levels are
	absent, as from Frappe's get_doc for that user (field_access.py)."""
	values = plain_values(doc)
	doctype = doctype or (values or {}).get("doctype")
	if not values or not doctype:
		return values
	return readable_values(values, doctype, user)


_PLAIN_TYPES = (str, int, float, bool, decimal.Decimal, datetime.date, datetime.time, datetime.timedelta)


def plain_values(doc):
	"""A document (or a dict of its values, with child rows) as plain data for conditions and
	templates: Documents become dicts, private keys are dropped and anything else that is not a
	plain value becomes its text, so nothing reachable from a rule has a method that writes."""
	if doc is None:
		return None
	if isinstance(doc, BaseDocument):
		doc = doc.as_dict(no_nulls=False)
	return _plain(doc)


def _plain(value):
	if value is None or isinstance(value, _PLAIN_TYPES):
		return value
	if isinstance(value, BaseDocument):
		return _plain(value.as_dict(no_nulls=False))
	if isinstance(value, dict):
		return {
			key: _plain(item)
			for key, item in value.items()
			if isinstance(key, str) and not key.startswith("_")
		}
	if isinstance(value, list | tuple):
		return [_plain(item) for item in value]
	return str(value)


def get_fields(doctype):
	"""A doctype's fields as the engine reads them: fieldname → fieldtype, options, label."""
	meta = frappe.get_meta(doctype)
	return {
		df.fieldname: {"fieldtype": df.fieldtype, "options": df.options, "label": df.label}
		for df in meta.fields
		if df.fieldname
	}


def get_fields_if_doctype(doctype):
	if not doctype or not frappe.db.exists("DocType", doctype):
		return None
	return get_fields(doctype)


def rule_as_dict(rule):
	"""A Workflow Rule (document or row) as the plain dict the engine compiles."""
	data = {field: rule.get(field) for field in RULE_FIELDS}
	data["conditions"] = parse_conditions(rule.get("conditions"))
	data["branches"] = [
		{
			"branch_name": branch.get("branch_name"),
			"is_else": branch.get("is_else"),
			"split_share": branch.get("split_share"),
			"conditions": parse_conditions(branch.get("conditions")),
		}
		for branch in rule.get("branches") or []
	]
	data["actions"] = [
		{
			key: value
			for key, value in action.as_dict().items()
			if key not in ("secret", "headers", "doctype", "parent")
		}
		for action in rule.get("actions") or []
	]
	_add_sequence(data, rule)
	return data


def _add_sequence(data, rule):
	"""Follow-up steps, their exit conditions and the calendars of the Escalation Policies that
	business-time waits name (see crm_automation.sequences.steps)."""
	data["stop_conditions"] = parse_conditions(rule.get("stop_conditions"))
	data["steps"] = []
	for step in rule.get("steps") or []:
		row = {
			key: value
			for key, value in step.as_dict().items()
			if key not in ("doctype", "parent", "wait_summary")
		}
		row["until_conditions"] = parse_conditions(step.get("until_conditions"))
		row["step_conditions"] = parse_conditions(step.get("step_conditions"))
		data["steps"].append(row)
	if data["steps"]:
		data["calendars"] = calendars_for(data["steps"])


def definition_of(rule_doc, compiled):
	"""The name of the current version of a rule's sequence; keeps its snapshot on ``compiled``."""
	snapshot = _without_bookkeeping(rule_as_dict(rule_doc))
	text = json.dumps(snapshot, sort_keys=True, default=str)
	name = "SEQ-" + hashlib.sha1(text.encode()).hexdigest()[:20]
	compiled.sequence_snapshot = text
	return name


# Saving a rule restamps these on every row; they say nothing about what the sequence does, so a
# save that changes nothing keeps the version.
_BOOKKEEPING = frozenset({"creation", "modified", "modified_by", "docstatus", "parentfield", "parenttype"})


def _without_bookkeeping(value):
	if isinstance(value, dict):
		return {k: _without_bookkeeping(v) for k, v in value.items() if k not in _BOOKKEEPING}
	if isinstance(value, list):
		return [_without_bookkeeping(item) for item in value]
	return value


def parse_conditions(value):
	if not value:
		return None
	if isinstance(value, dict | list):
		return value
	return json.loads(value)


def compile_workflow_rule_doc(rule):
	compiled = compile_workflow_rule(
		rule_as_dict(rule), get_fields(rule.document_type), get_fields_if_doctype
	)
	compiled.owner = rule.owner
	compiled.run_as = rule.get("run_as") or rule.owner
	compiled.send_window_policy = rule.get("send_window_policy") or None
	return compiled


def get_rules(doctype, event):
	"""Enabled, compiled Workflow Rules for (doctype, event), highest priority first: a tuple that
	also answers ``candidates(values, before_values)`` (engine/rule_index.py)."""
	return get_index().get((doctype, event), ())


def has_rules_for(doctype):
	return doctype in get_index().get("doctypes", ())


def get_index():
	return _rules_cache.get()


def _build_index():
	"""Assemble the index from each enabled rule's compiled form. A rule is compiled again only
	when its ``modified`` stamp changed (or after a full clear), so one edit among thousands of
	rules costs one query for the stamps and the loading and compiling of that one rule."""
	compiled_rules = _compiled_rules()
	index = {}
	for name, compiled in compiled_rules.items():
		if compiled.sequence:
			index.setdefault("sequence_doctypes", set()).add(compiled.document_type)
		for event in EVENTS_BY_TRIGGER.get(compiled.trigger, ()):
			index.setdefault((compiled.document_type, event), []).append(compiled)
		index.setdefault("by_name", {})[name] = compiled
		index.setdefault("doctypes", set()).add(compiled.document_type)
	for key, rules in index.items():
		if isinstance(key, tuple):
			rules.sort(key=lambda r: (-r.priority, r.name))
			index[key] = index_rules(rules)
	return index


def enabled_compiled_rules(skip=None):
	"""{name: compiled rule} of every enabled Workflow Rule that compiles, reusing what this
	process compiled before (the static loop check reads this instead of compiling every rule).
	``skip``: a rule being saved, which its caller has compiled already."""
	return _compiled_rules(skip)


# site → (generation, {name: (modified, compiled or None)}): compiled rules of this process.
_compiled_by_site = {}


def _compiled_rules(skip=None):
	generation = frappe.cache.get_value(GENERATION_KEY)
	if generation is None:
		generation = frappe.generate_hash(length=12)
		frappe.cache.set_value(GENERATION_KEY, generation)
	cached = _compiled_by_site.get(frappe.local.site)
	known = cached[1] if cached and cached[0] == generation else {}
	stamps = dict(
		frappe.get_all("Workflow Rule", filters={"enabled": 1}, fields=["name", "modified"], as_list=True)
	)
	stale = [
		name for name, modified in stamps.items() if known.get(name, (None,))[0] != modified and name != skip
	]
	fresh = {name: known[name] for name in stamps if name in known and name not in stale}
	for rule in _load_rules(stale):
		fresh[rule.name] = (stamps[rule.name], _compile_for_index(rule))
	_compiled_by_site[frappe.local.site] = (generation, fresh)
	return {name: compiled for name, (_modified, compiled) in sorted(fresh.items()) if compiled is not None}


def _load_rules(names):
	"""Workflow Rule documents with their child rows, in one query per table (as get_doc loads them,
	without one round trip per rule)."""
	if not names:
		return []
	meta = frappe.get_meta("Workflow Rule")
	parents = frappe.db.get_values("Workflow Rule", {"name": ("in", names)}, "*", as_dict=True, order_by=None)
	children = {}
	for df in meta.get_table_fields():
		rows = frappe.db.get_values(
			df.options,
			{"parent": ("in", names), "parenttype": "Workflow Rule", "parentfield": df.fieldname},
			"*",
			as_dict=True,
			order_by="idx asc",
		)
		for row in rows:
			children.setdefault((row.parent, df.fieldname), []).append(row)
	rules = []
	for parent in parents:
		rule = frappe.get_doc({**parent, "doctype": "Workflow Rule"})
		for df in meta.get_table_fields():
			rule.set(df.fieldname, children.get((parent.name, df.fieldname), []))
		rules.append(rule)
	return rules


def _compile_for_index(rule):
	name = rule.name
	try:
		compiled = compile_workflow_rule_doc(rule)
	except (RuleError, frappe.DoesNotExistError):
		# A rule that compiled when saved can break later (a custom field deleted): it stays off
		# until fixed, and the error says why.
		frappe.log_error(title=f"Workflow Rule {name} no longer compiles")
		return None
	compiled.condition_expression = (rule.condition_expression or "").strip()
	compiled.minutes_saved_override = rule.minutes_saved
	if compiled.sequence:
		compiled.sequence_definition = definition_of(rule, compiled)
	return compiled


def get_compiled_rule(name):
	return get_index().get("by_name", {}).get(name)


def clear_rule_cache(only_changed_rules=False):
	"""Every process rebuilds its index. With ``only_changed_rules`` (a Workflow Rule saved or
	deleted through its controller, which moves its ``modified`` stamp) each process recompiles
	only the rules whose stamp moved; otherwise (a custom field, a pack, a rule changed without its
	stamp) every rule is compiled again."""
	if not only_changed_rules:
		frappe.cache.delete_value(GENERATION_KEY)
		_compiled_by_site.pop(frappe.local.site, None)
	_rules_cache.clear()


_rules_cache = CompiledCache(VERSION_KEY, _build_index)


def compiled_rule_for_sweep(rule_name, trigger, what):
	"""The compiled rule of a sweep (a Time or Schedule rule, ``trigger``), or None, with the reason in
	the Error Log when an enabled rule does not compile: a sweep that finds nothing to fire must never
	be a rule that silently failed to load. This process's index can predate the rule (a long-lived
	worker builds it inside a transaction whose snapshot may be older than the commit that added the
	rule), so it is built once more before giving up. ``what`` names the sweep in the log."""
	rule = get_compiled_rule(rule_name)
	if rule is None and frappe.db.exists("Workflow Rule", {"name": rule_name, "enabled": 1}):
		forget_local_indexes()
		rule = get_compiled_rule(rule_name)
		if rule is None:
			frappe.log_error(
				title=f"{what} of Workflow Rule {rule_name} skipped: the rule does not compile",
				reference_doctype="Workflow Rule",
				reference_name=rule_name,
			)
	if rule and rule.trigger != trigger:
		return None
	return rule
