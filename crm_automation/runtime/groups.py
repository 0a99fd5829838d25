"""Group membership of a rule with a hold-out or a percentage split (engine/groups.py decides).

The first group a document falls in for a rule is kept in Automation Group Member, one row per
rule and document (its name is a hash of the pair, so a second insert is a no-op). The Automation
Log says the same run by run, but old logs are deleted after the retention period and a rule that
fires on every save logs a document many times; the Rule Outcome report counts these rows instead
(indexed by rule and group). First group wins: a document treated while the hold-out was 10 % stays
treated when the share is raised to 20 %, since it did get the actions (intention to treat).
"""

import hashlib

import frappe
from frappe.utils import now_datetime

from crm_automation.engine.groups import HELD_OUT, TREATED

DOCTYPE = "Automation Group Member"


def has_groups(rule):
	return bool(getattr(rule, "holdout_percent", 0) or getattr(rule, "split_arms", ()))


def group_of_evaluation(rule, evaluation):
	if evaluation.held_out:
		return HELD_OUT
	return evaluation.branch if getattr(rule, "split_arms", ()) else TREATED


def member_name(rule_name, doctype, name):
	return hashlib.sha1(f"{rule_name}\x1f{doctype}\x1f{name}".encode()).hexdigest()


def record_group(rule, doc, evaluation):
	"""Keep the group of ``doc`` for ``rule`` unless it has one already. One statement, no read
	first: INSERT IGNORE on the primary key settles two workers racing."""
	if not has_groups(rule) or not doc.name:
		return
	now, user = now_datetime(), frappe.session.user
	frappe.db.sql(
		f"""insert ignore into `tab{DOCTYPE}`
		(name, creation, modified, owner, modified_by, docstatus, idx,
		rule, group_name, reference_doctype, reference_name)
		values (%s, %s, %s, %s, %s, 0, 0, %s, %s, %s, %s)""",
		(
			member_name(rule.name, doc.doctype, doc.name),
			now,
			now,
			user,
			user,
			rule.name,
			group_of_evaluation(rule, evaluation),
			doc.doctype,
			doc.name,
		),
	)


def group_counts(rule_name):
	"""{group: number of documents} of a rule."""
	rows = frappe.db.sql(
		f"select group_name, count(*) from `tab{DOCTYPE}` where rule = %s group by group_name", rule_name
	)
	return dict(rows)


def members_by_group(rule_name):
	"""{document name: group} of a rule."""
	return dict(
		frappe.db.sql(f"select reference_name, group_name from `tab{DOCTYPE}` where rule = %s", rule_name)
	)
