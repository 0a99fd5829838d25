"""A rule's groups compared on an outcome: the Rule Outcome report and the workspace's verdicts.

Groups come from Automation Group Member (runtime/groups.py): the first group each matched
document fell in. The reference group is Held Out when the rule has one, else the split's first
branch; every other group is compared with it (statistics.py says which test for which outcome).
"""

import frappe
from frappe import _

from crm_automation.engine.groups import BRANCH_MODE_SPLIT, HELD_OUT
from crm_automation.outcomes import measures, statistics
from crm_automation.runtime.groups import members_by_group


class GroupResult(frappe._dict):
	pass


def rules_with_groups():
	"""Workflow Rules with a hold-out or a percentage split, as the asker may list them."""
	return frappe.get_list(
		"Workflow Rule",
		or_filters=[["holdout_percent", ">", 0], ["branch_mode", "=", BRANCH_MODE_SPLIT]],
		fields=["name", "document_type", "holdout_percent", "branch_mode"],
		order_by="name",
		limit_page_length=0,
	)


def default_outcome(doctype):
	return measures.outcomes_for(doctype)[0]


def compare_rule(rule_name, outcome=None, field=None, value=None, lower_is_better=False):
	"""(groups, verdict sentences, Measure) for one rule. Each group: name, documents, successes or
	mean, and (except the reference) the statistics.Comparison against the reference."""
	rule = frappe.get_doc("Workflow Rule", rule_name)
	rule.check_permission("read")
	if not (rule.holdout_percent or rule.branch_mode == BRANCH_MODE_SPLIT):
		frappe.throw(
			_(
				"Workflow Rule {0} has no hold-out and no percentage split: there are no groups to compare"
			).format(frappe.bold(rule_name))
		)
	outcome = outcome or default_outcome(rule.document_type)
	members = members_by_group(rule_name)
	measure = measures.measure(rule.document_type, list(members), outcome, field, value, lower_is_better)
	order = [HELD_OUT] if rule.holdout_percent else []
	order += [b.branch_name for b in rule.branches] if rule.branch_mode == BRANCH_MODE_SPLIT else ["Treated"]
	order += sorted({g for g in members.values()} - set(order))
	by_group = {name: [] for name in order}
	for doc_name, value_ in measure.values.items():
		by_group.setdefault(members[doc_name], []).append(value_)
	reference = order[0]
	groups, sentences = [], []
	for name in order:
		group = _describe(name, by_group[name], measure)
		if name != reference:
			group.comparison = _compare(by_group[name], by_group[reference], measure)
			sentences.append(_sentence(group, groups[0], measure))
		groups.append(group)
	return groups, sentences, measure


def _describe(name, values, measure):
	group = GroupResult(group=name, documents=len(values), comparison=None)
	if measure.kind == "proportion":
		group.successes = sum(1 for v in values if v)
		group.value = group.successes / len(values) if values else 0
	else:
		group.value = sum(values) / len(values) if values else 0
	return group


def _compare(values, ref_values, measure):
	if measure.kind == "proportion":
		return statistics.compare_proportions(
			sum(1 for v in values if v),
			len(values),
			sum(1 for v in ref_values if v),
			len(ref_values),
			measure.higher_is_better,
		)
	return statistics.compare_means(
		[v * measure.scale for v in values], [v * measure.scale for v in ref_values], measure.higher_is_better
	)


def _sentence(group, reference, measure):
	label = (
		_("{0} ({1})").format(measure.label, _(group.group)) if group.group != "Treated" else measure.label
	)
	ref_label = _("held out") if reference.group == HELD_OUT else _(reference.group)
	scale = 1 if measure.kind == "proportion" else measure.scale
	return statistics.verdict_sentence(
		group.comparison, label, group.value * scale, reference.value * scale, ref_label, measure.unit
	)


def current_verdicts():
	"""[{rule, doctype, outcome, verdict}] for every rule with groups the asker may list, on the default
	outcome of its document type; a rule whose outcome cannot be read says why."""
	verdicts = []
	for rule in rules_with_groups():
		outcome = default_outcome(rule.document_type)
		try:
			_groups, sentences, _measure = compare_rule(rule.name, outcome)
			verdict = " · ".join(sentences) or _("no documents yet")
		except frappe.ValidationError as error:
			frappe.clear_last_message()
			verdict = str(error)
		verdicts.append(
			frappe._dict(rule=rule.name, document_type=rule.document_type, outcome=outcome, verdict=verdict)
		)
	return verdicts
