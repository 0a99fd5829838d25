"""Replies in the engine and the offline simulator: Until Reply waits (compiled, described, decided,
played on the virtual clock), Stop When the Document Gets a Reply, the Communication Received
trigger's ``communication.*`` condition fields, and records carrying replies as timed events."""

import datetime
import json

import pytest

from crm_automation.engine import RuleError, compile_workflow_rule
from crm_automation.engine.describe import describe_wait
from crm_automation.engine.replies import CONTENT_CHARS, budgeted_content, condition_values
from crm_automation.engine.sequence_story import REPLY, run_sequence, timeline, timeline_text
from crm_automation.engine.sequences import EXITED, PATH_MET, PATH_TIMEOUT, PENDING, RAN
from crm_automation.offline.simulator import run_simulation
from tests.sample_fields import LEAD_FIELDS

T0 = datetime.datetime(2026, 12, 1, 9, 0)
HOUR = datetime.timedelta(hours=1)


def reply_rule(stop_on_reply=False, amount=3, **extra):
	rule = {
		"name": "Nurture",
		"document_type": "Lead",
		"trigger": "New",
		"steps": [
			{
				"step_name": "Wait for answer",
				"wait_type": "Until Reply",
				"wait_amount": amount,
				"wait_unit": "Days",
			},
			{"step_name": "Later", "wait_type": "Duration", "wait_amount": 24, "wait_unit": "Hours"},
		],
		"actions": [
			{"action_type": "Add Comment", "message": "answered", "step": "Wait for answer"},
			{
				"action_type": "Add Comment",
				"message": "no answer",
				"step": "Wait for answer",
				"on_timeout": 1,
			},
			{"action_type": "Add Comment", "message": "later", "step": "Later"},
		],
		"stop_on_reply": int(stop_on_reply),
	}
	rule.update(extra)
	return rule


def compiled(rule):
	return compile_workflow_rule(rule, LEAD_FIELDS)


def problems_of(rule):
	with pytest.raises(RuleError) as caught:
		compiled(rule)
	return {problem.path: problem.message for problem in caught.value.problems}


def test_an_until_reply_step_needs_a_longest_wait():
	problems = problems_of(reply_rule(amount=0))
	assert "wait above zero" in problems["steps[0].wait_amount"]


def test_on_timeout_actions_fit_an_until_reply_step_and_no_duration_step():
	rule = reply_rule()
	rule["actions"].append({"action_type": "Add Comment", "message": "x", "step": "Later", "on_timeout": 1})
	assert "Until Reply" in problems_of(rule)["actions[3].on_timeout"]


def test_stop_on_reply_without_steps_is_refused():
	rule = reply_rule(stop_on_reply=True, steps=[], actions=[{"action_type": "Add Comment", "message": "x"}])
	assert "stop_on_reply" in problems_of(rule)


def test_the_wait_in_words():
	step = compiled(reply_rule()).sequence.step(1)
	assert step.describe_wait(LEAD_FIELDS) == "wait until a reply (at most 3 days)"
	assert describe_wait({"wait_type": "Until Reply", "wait_amount": 3, "wait_unit": "Days"}) == (
		"on a reply (at most 3 days)"
	)
	entries = timeline([], compiled(reply_rule()).sequence, LEAD_FIELDS)
	assert entries[1]["when"] == "on a reply (at the latest +3 d)"
	assert "on timeout: add a comment" in timeline_text(entries)


def test_a_reply_runs_the_step_and_silence_times_out():
	step = compiled(reply_rule()).sequence.step(1)
	assert step.due_at(T0, {}) == T0 + 72 * HOUR
	outcome, path, intents = step.decide({}, condition_met=True)
	assert (outcome, path, [i["message"] for i in intents]) == (RAN, PATH_MET, ["answered"])
	outcome, path, intents = step.decide({}, condition_met=False)
	assert (outcome, path, [i["message"] for i in intents]) == (RAN, PATH_TIMEOUT, ["no answer"])


def test_on_the_virtual_clock_a_reply_ends_the_wait_early():
	sequence = compiled(reply_rule()).sequence
	run = run_sequence(sequence, {"name": "L1"}, T0, T0 + 10 * 24 * HOUR, [(T0 + 30 * HOUR, REPLY)])
	assert run.events[0] == (T0 + 30 * HOUR, 1, RAN, PATH_MET)
	# The next step counts from the reply, not from the longest wait.
	assert run.events[1] == (T0 + 54 * HOUR, 2, RAN, "")
	silent = run_sequence(sequence, {"name": "L2"}, T0, T0 + 10 * 24 * HOUR)
	assert silent.events[0] == (T0 + 72 * HOUR, 1, RAN, PATH_TIMEOUT)


def test_a_reply_after_the_clock_stops_leaves_the_step_waiting():
	sequence = compiled(reply_rule()).sequence
	run = run_sequence(sequence, {}, T0, T0 + 24 * HOUR, [(T0 + 30 * HOUR, REPLY)])
	assert (run.status, run.pending_step) == (PENDING, 1)


def test_stop_on_reply_exits_the_sequence():
	sequence = compiled(reply_rule(stop_on_reply=True)).sequence
	assert sequence.reply_exit_reason() == "the document got a reply"
	run = run_sequence(sequence, {}, T0, T0 + 10 * 24 * HOUR, [(T0 + 5 * HOUR, REPLY)])
	assert (run.status, run.exited_at_step) == (EXITED, 1)
	assert run.events == [(T0 + 5 * HOUR, 1, EXITED, "the document got a reply")]
	assert compiled(reply_rule()).sequence.reply_exit_reason() is None


def communication_rule(field="communication.subject", trigger="Communication Received"):
	return {
		"name": "On reply",
		"document_type": "Lead",
		"trigger": trigger,
		"conditions": {"all": [{"field": field, "op": "like", "value": "%price%"}]},
		"actions": [{"action_type": "Add Comment", "message": "{{ communication.subject }}"}],
	}


def test_communication_fields_are_conditions_of_communication_received_rules_only():
	rule = compiled(communication_rule())
	assert rule.events == ("communication_received",)
	values = {"name": "L1", **condition_values({"subject": "Re: price list"})}
	assert rule.evaluate(values).fired
	assert not rule.evaluate({"name": "L1", **condition_values({"subject": "Thanks"})}).fired
	assert not rule.evaluate({"name": "L1", **condition_values(None)}).fired
	problems = problems_of(communication_rule(trigger="Save"))
	assert "communication.subject" in problems["conditions.all[0]"]


def test_content_is_cut_to_its_budget():
	assert budgeted_content("  hi  ") == "hi"
	assert len(budgeted_content("x" * (CONTENT_CHARS * 3))) == CONTENT_CHARS + 1


def pack(*rules):
	return {"format": "crm_automation.pack", "version": 1, "name": "replies", "workflow_rules": list(rules)}


def write_records(tmp_path, rows):
	path = tmp_path / "leads.json"
	path.write_text(json.dumps(rows))
	return str(path)


def test_the_simulator_plays_replies_as_timed_events(tmp_path):
	records = write_records(
		tmp_path,
		[
			{"doctype": "Lead", "name": "L-REPLIED", "status": "Open", "replies": ["30h"]},
			{"doctype": "Lead", "name": "L-SILENT", "status": "Open"},
		],
	)
	rule = {**reply_rule(), "rule_name": "Nurture"}
	rule.pop("name")
	result = run_simulation(pack(rule), records, now=T0, show=10, until=datetime.timedelta(days=10))
	assert not result.problems, [str(p) for p in result.problems]
	follow_ups = {entry["name"]: entry["rules"][0]["follow_up"] for entry in result.sample}
	assert "step 1: Done (met)" in follow_ups["L-REPLIED"][0]
	assert "step 1: Done (timeout)" in follow_ups["L-SILENT"][0]


def test_the_simulator_decides_communication_received_on_the_first_reply_that_fires(tmp_path):
	records = write_records(
		tmp_path,
		[
			{
				"doctype": "Lead",
				"name": "L-1",
				"replies": [{"after": "2h", "subject": "Thanks"}, {"after": "5h", "subject": "Re: price?"}],
			},
			{"doctype": "Lead", "name": "L-2"},
		],
	)
	rule = {**communication_rule(), "rule_name": "On reply"}
	rule.pop("name")
	result = run_simulation(pack(rule), records, now=T0, show=10)
	assert not result.problems, [str(p) for p in result.problems]
	first, second = (entry["rules"][0] for entry in result.sample)
	assert first["outcome"] == "Fired" and first["note"] == "on reply 2 of 2 (after 5h)"
	assert second["outcome"] == "Not Simulated" and "replies" in second["reason"]


def test_bad_replies_are_refused_with_their_place(tmp_path):
	records = write_records(
		tmp_path, [{"doctype": "Lead", "name": "L-1", "replies": ["soon", {"when": "2h"}]}]
	)
	rule = {**reply_rule(), "rule_name": "Nurture"}
	rule.pop("name")
	result = run_simulation(pack(rule), records, now=T0)
	places = [problem.where for problem in result.problems]
	assert any(place.endswith("replies[0].after") for place in places)
	assert any(place.endswith("replies[1]") for place in places)
