"""Automation Opportunities: rules proposed from the site's own history, and a proposal turned into
a (disabled) Workflow Rule in one click, with a replay of what it would have done.

Only rule managers (CRM Automation Manager, System Manager) may mine or create; the history read
is the one the caller may read (doctypes and records), so figures never leak what they cannot see.
"""

import json

import frappe
from frappe import _
from frappe.utils import cint, flt

from crm_automation.engine import mining
from crm_automation.engine.errors import RuleError
from crm_automation.engine.i18n import translating
from crm_automation.engine.mining_replay import replay
from crm_automation.mining import history_export
from crm_automation.offline.history_files import rule_problems
from crm_automation.runtime.workflow_rules import get_fields, rule_as_dict
from crm_automation.trust.roles import check_rule_manager

# What a proposal's rule carries; anything else in the request (owner, run_as, enabled...) is not
# taken from the browser.
PROPOSAL_RULE_KEYS = (
	"rule_name",
	"document_type",
	"trigger",
	"fire_mode",
	"description",
	"trigger_field",
	"from_value",
	"to_value",
	"time_field",
	"time_offset",
	"time_unit",
	"time_direction",
)
ACTION_ROW_SKIPPED = frozenset(
	("name", "doctype", "parent", "parenttype", "parentfield", "idx", "owner", "last_assigned_user")
)
MAX_DAYS = 3660


def parse_doctypes(value):
	if not value:
		return list(history_export.DEFAULT_DOCTYPES)
	if isinstance(value, str):
		try:
			value = json.loads(value)
		except ValueError:
			value = value.split(",")
	if not isinstance(value, list | tuple):
		frappe.throw(_("Document Types must be a list, not {0}").format(frappe.bold(value)))
	return [str(item).strip() for item in value if str(item).strip()]


def parse_days(days):
	value = cint(90 if days in (None, "") else days)
	if not 1 <= value <= MAX_DAYS:
		frappe.throw(_("Period (Days) must be from 1 to {0}, not {1}").format(MAX_DAYS, frappe.bold(days)))
	return value


def parse_thresholds(min_support, min_confidence):
	support = cint(mining.DEFAULT_MIN_SUPPORT if min_support in (None, "") else min_support)
	if support < 1:
		frappe.throw(_("Minimum Support must be 1 or more, not {0}").format(frappe.bold(min_support)))
	confidence = flt(mining.DEFAULT_MIN_CONFIDENCE * 100 if min_confidence in (None, "") else min_confidence)
	if confidence <= 1 and min_confidence not in (None, "") and "." in str(min_confidence):
		confidence *= 100  # 0.8 means 80%
	if not 0 < confidence <= 100:
		frappe.throw(
			_("Minimum Confidence must be a percentage from 1 to 100, not {0}").format(
				frappe.bold(min_confidence)
			)
		)
	return support, confidence / 100


def find_opportunities(doctypes=None, days=90, min_support=None, min_confidence=None):
	"""The miner's report over the caller's readable history of the last ``days`` days."""
	check_rule_manager()
	support, confidence = parse_thresholds(min_support, min_confidence)
	readable, refused = history_export.readable_doctypes(parse_doctypes(doctypes))
	since, until = history_export.period(parse_days(days))
	miner = mining.HistoryMiner(
		min_support=support,
		min_confidence=confidence,
		minutes=history_export.minutes_per_action(),
		since=since,
		until=until,
	)
	miner.feed(history_export.iter_events(readable, since, until))
	report = miner.report()
	report["refused_doctypes"] = refused
	report["untracked_doctypes"] = [
		doctype for doctype in readable if not frappe.get_meta(doctype).track_changes
	]
	for proposal in report["proposals"]:
		proposal["summary"] = mining.mining_rules.summary(proposal, _)
		proposal["problems"] = rule_problems(proposal["rule"], get_fields(proposal["doctype"]))
	return report


def parse_proposed_rule(rule):
	if isinstance(rule, str):
		try:
			rule = json.loads(rule)
		except ValueError:
			frappe.throw(_("The proposed rule is not valid JSON"))
	if not isinstance(rule, dict) or not rule.get("document_type") or not rule.get("actions"):
		frappe.throw(_("The proposed rule needs a document type and actions"))
	return rule


def proposal_rule_values(rule):
	values = {key: rule[key] for key in PROPOSAL_RULE_KEYS if key in rule}
	values.update(doctype="Workflow Rule", enabled=0, conditions=json.dumps(rule.get("conditions") or {}))
	values["rule_name"] = _free_name(rule.get("rule_name") or _("Proposed rule"))
	values["actions"] = [
		{key: value for key, value in row.items() if key not in ACTION_ROW_SKIPPED}
		for row in rule["actions"]
		if isinstance(row, dict)
	]
	return values


def _free_name(name):
	candidate, number = name, 1
	while frappe.db.exists("Workflow Rule", candidate):
		number += 1
		candidate = f"{name} ({number})"
	return candidate
