"""Follow-up sequences in the engine: compiling steps, due times of every wait, decisions, exits,
the timeline in words and the virtual-clock run."""

import datetime
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_automation.engine import RuleError, compile_workflow_rule
from crm_automation.engine.business_hours import compile_calendar
from crm_automation.engine.sequence_story import (
	changes_from,
	format_duration,
	parse_span,
	run_sequence,
	summarize_runs,
	timeline,
	timeline_text,
)
from crm_automation.engine.sequences import (
	EXITED,
	PENDING,
	RAN,
	SKIPPED,
	as_moment,
	next_weekday_at,
	working_days_later,
)
from tests.sample_fields import LEAD_FIELDS

DT = datetime.datetime
OFFICE = {
	"mode": "Working Hours",
	"hours": [
		{"weekday": day, "start": "09:00", "end": "17:00"}
		for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
	],
	"holidays": ["2026-12-25"],
}


def nurture(**extra):
	rule = {
		"name": "Nurture",
		"document_type": "Lead",
		"trigger": "New",
		"conditions": {"all": [{"field": "status", "op": "in", "value": ["Lead", "Open"]}]},
		"steps": [
			{
				"step_name": "Remind",
				"wait_type": "Duration",
				"wait_amount": 24,
				"wait_unit": "Hours",
				"step_conditions": {"all": [{"field": "status", "op": "=", "value": "Open"}]},
			},
			{"step_name": "Supervisor", "wait_type": "Duration", "wait_amount": 24, "wait_unit": "Hours"},
		],
		"actions": [
			{"action_type": "Send Email", "subject": "Welcome", "message": "Hi", "to_field": "email_id"},
			{
				"action_type": "Create ToDo",
				"message": "Call {{ doc.lead_name }}",
				"to_owner": 1,
				"step": "Remind",
			},
			{
				"action_type": "System Notification",
				"subject": "Still open",
				"to_users": "boss@example.com",
				"step": "Supervisor",
			},
		],
		"stop_conditions": {"all": [{"field": "status", "op": "in", "value": ["Converted", "Replied"]}]},
	}
	rule.update(extra)
	return rule


def compiled(rule):
	return compile_workflow_rule(rule, LEAD_FIELDS)


def problems_of(rule):
	with pytest.raises(RuleError) as info:
		compiled(rule)
	return {p.path: p.message for p in info.value.problems}


def step(**row):
	return {"step_name": "S", "wait_type": "Duration", "wait_amount": 1, "wait_unit": "Hours", **row}


# Compiling


def test_steps_compile_and_immediate_actions_exclude_step_actions():
	rule = compiled(nurture())
	assert [i["type"] for i in rule.actions_by_branch[""]] == ["Send Email"]
	assert [s.label for s in rule.sequence.steps] == ["Remind", "Supervisor"]
	assert [i["type"] for i in rule.sequence.steps[0].intents] == ["Create ToDo"]


def test_rule_without_steps_has_no_sequence():
	rule = nurture(steps=[], stop_conditions=None)
	rule["actions"] = rule["actions"][:1]
	assert compiled(rule).sequence is None


def test_errors_name_the_step_and_field():
	rule = nurture(
		steps=[
			step(step_name="", wait_type="Duration"),
			step(step_name="A", wait_type="Sometime"),
			step(step_name="B", wait_amount=0),
			step(step_name="C", wait_type="Until Date Field", date_field="lead_name"),
			step(step_name="D", wait_type="Until Weekday and Time", weekday="Funday", at_time="25:00"),
			step(step_name="E", wait_type="Until Condition", until_conditions=None),
			step(step_name="F", wait_type="Business Time", calendar_policy="Nope"),
			step(step_name="G", wait_unit="Weeks"),
			step(step_name="G"),
			step(step_name="H", step_conditions={"all": [{"field": "nope", "op": "=", "value": 1}]}),
		],
	)
	rule["actions"].append({"action_type": "Add Tag", "tag": "x", "step": "Nowhere"})
	rule["actions"].append({"action_type": "Add Tag", "tag": "x", "step": "A", "on_timeout": 1})
	found = problems_of(rule)
	assert "every step needs a name" in found["steps[0].step_name"]
	assert "Sometime" in found["steps[1].wait_type"]
	assert "not a wait above zero" in found["steps[2].wait_amount"]
	assert "lead_name" in found["steps[3].date_field"]
	assert "Funday" in found["steps[4].weekday"]
	assert "25:00" in found["steps[4].at_time"]
	assert "which condition" in found["steps[5].until_conditions"]
	assert "Nope" in found["steps[6].calendar_policy"]
	assert "Weeks" in found["steps[7].wait_unit"]
	assert "used twice" in found["steps[8].step_name"]
	assert "nope" in found["steps[9].step_conditions.all[0]"]
	assert "Nowhere" in found["actions[3].step"]
	# step "A" failed to compile, so its action names no step
	assert "actions[4].step" in found


def test_timeout_actions_only_on_until_condition_steps():
	rule = nurture()
	rule["actions"].append({"action_type": "Add Tag", "tag": "x", "step": "Remind", "on_timeout": 1})
	assert "only an Until Condition or Until Reply step times out" in problems_of(rule)["actions[3].on_timeout"]


def test_step_actions_checked_like_rule_actions_and_reject_refused():
	rule = nurture()
	rule["actions"].append({"action_type": "Set Value", "target_field": "nope", "value": 1, "step": "Remind"})
	rule["actions"].append({"action_type": "Reject", "message": "no", "step": "Remind"})
	rule["actions"].append({"action_type": "Add Tag", "tag": "x", "step": "Remind", "branch": "B"})
	found = problems_of(rule)
	assert "nope" in found["actions[3].target_field"]
	assert "cannot run in a follow-up step" in found["actions[4].action_type"]
	assert "takes no branch" in found["actions[5].branch"]


def test_stop_conditions_without_steps_and_validate_sequences_refused():
	rule = nurture(steps=[])
	rule["actions"] = rule["actions"][:1]
	assert "add steps" in problems_of(rule)["stop_conditions"]
	assert "cannot start a sequence" in problems_of(nurture(trigger="Validate"))["steps"]


def test_rule_with_only_step_actions_fires_with_no_immediate_intents():
	rule = nurture()
	rule["actions"] = rule["actions"][1:]
	evaluation = compiled(rule).evaluate({"status": "Open"}, None)
	assert evaluation.fired and evaluation.intents == []


def test_set_value_in_a_step_feeds_loop_detection():
	rule = nurture()
	rule["actions"].append(
		{"action_type": "Set Value", "target_field": "status", "value": "Open", "step": "Remind"}
	)
	assert "status" in compiled(rule).set_fields


# Due times


def due(row, anchor, doc=None, calendars=None):
	rule = nurture(steps=[row], calendars=calendars or {})
	rule["actions"] = [*rule["actions"][:1], {"action_type": "Add Tag", "tag": "x", "step": row["step_name"]}]
	return compiled(rule).sequence.steps[0].due_at(anchor, doc or {})


def test_duration_waits():
	start = DT(2026, 12, 2, 10, 30)
	assert due(step(wait_amount=90, wait_unit="Minutes"), start) == DT(2026, 12, 2, 12, 0)
	assert due(step(wait_amount=3, wait_unit="Days"), start) == DT(2026, 12, 5, 10, 30)


def test_business_time_waits_use_the_policy_calendar():
	friday_4pm = DT(2026, 12, 4, 16, 0)
	row = step(wait_type="Business Time", calendar_policy="Office", wait_amount=2, wait_unit="Hours")
	assert due(row, friday_4pm, calendars={"Office": OFFICE}) == DT(2026, 12, 7, 10, 0)
	row = step(wait_type="Business Time", calendar_policy="Office", wait_amount=1, wait_unit="Days")
	assert due(row, friday_4pm, calendars={"Office": OFFICE}) == DT(2026, 12, 7, 16, 0)
	# Thursday 24th + 1 working day skips the 25th (holiday) and the weekend
	assert due(row, DT(2026, 12, 24, 11, 0), calendars={"Office": OFFICE}) == DT(2026, 12, 28, 11, 0)


def test_date_field_waits():
	doc = {"expected_close": "2027-01-31", "contact_date": DT(2027, 1, 10, 15, 0)}
	row = step(
		wait_type="Until Date Field",
		date_field="expected_close",
		wait_amount=30,
		wait_unit="Days",
		at_time="09:00",
	)
	assert due(row, DT(2026, 12, 1), doc) == DT(2027, 1, 1, 9, 0)
	row = step(
		wait_type="Until Date Field",
		date_field="contact_date",
		date_direction="After",
		wait_amount=2,
		wait_unit="Hours",
	)
	assert due(row, DT(2026, 12, 1), doc) == DT(2027, 1, 10, 17, 0)
	assert due(row, DT(2026, 12, 1), {"contact_date": None}) is None


def test_weekday_waits():
	row = step(wait_type="Until Weekday and Time", weekday="Monday", at_time="09:00")
	assert due(row, DT(2026, 12, 2, 10, 0)) == DT(2026, 12, 7, 9, 0)  # Wednesday → next Monday
	assert due(row, DT(2026, 12, 7, 8, 0)) == DT(2026, 12, 7, 9, 0)  # Monday 08:00 → today 09:00
	assert due(row, DT(2026, 12, 7, 9, 0)) == DT(2026, 12, 14, 9, 0)  # strictly after


@settings(deadline=None)  # a loaded CI machine must not turn slowness into a failure
@given(st.datetimes(min_value=DT(2000, 1, 1), max_value=DT(2100, 1, 1)), st.integers(0, 6), st.times())
def test_next_weekday_is_the_first_matching_moment_after(anchor, weekday, at):
	result = next_weekday_at(anchor, weekday, at)
	assert result > anchor
	assert result.weekday() == weekday and result.time() == at
	assert result - anchor <= datetime.timedelta(days=7)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=DT(2026, 1, 1), max_value=DT(2028, 1, 1)), st.integers(0, 30))
def test_working_days_later_lands_on_working_time_and_grows(anchor, days):
	calendar = compile_calendar(OFFICE)
	result = working_days_later(calendar, anchor, days)
	assert calendar.is_working(result)
	assert result >= anchor
	if days:
		assert working_days_later(calendar, anchor, days - 1) < result


def test_until_condition_path_met_or_timeout():
	rule = nurture(
		steps=[
			{
				"step_name": "Wait reply",
				"wait_type": "Until Condition",
				"until_conditions": {"all": [{"field": "status", "op": "=", "value": "Replied"}]},
				"wait_amount": 3,
				"wait_unit": "Days",
			}
		],
		stop_conditions=None,
	)
	rule["actions"] = [
		{"action_type": "Add Tag", "tag": "thanks", "step": "Wait reply"},
		{"action_type": "Add Tag", "tag": "reminder", "step": "Wait reply", "on_timeout": 1},
	]
	wait = compiled(rule).sequence.steps[0]
	assert wait.due_at(DT(2026, 12, 1), {}) == DT(2026, 12, 4)
	outcome, path, intents = wait.decide({"status": "Replied"})
	assert (outcome, path, intents[0]["tag"]) == (RAN, "met", "thanks")
	outcome, path, intents = wait.decide({"status": "Open"})
	assert (outcome, path, intents[0]["tag"]) == (RAN, "timeout", "reminder")
	assert wait.decide({"status": "Open"}, condition_met=True)[1] == "met"


def test_only_if_condition_skips_a_step():
	first = compiled(nurture()).sequence.steps[0]
	outcome, reason, intents = first.decide({"status": "Replied"})
	assert outcome == SKIPPED and "status is Open" in reason
	assert intents == ()
	assert first.decide({"status": "Open"})[0] == RAN


# Exits


def test_exit_reasons():
	sequence = compiled(nurture(stop_when_unmatched=1)).sequence
	assert sequence.exit_reason({"status": "Open"}) is None
	assert "stop when" in sequence.exit_reason({"status": "Converted"})
	assert "no longer matches" in sequence.exit_reason({"status": "Interested"})


# Timeline


def test_timeline_text_reads_as_the_issue_says():
	rule = compiled(nurture())
	entries = timeline(
		[{"action_type": "Send Email", "subject": "Welcome"}],
		rule.sequence,
		LEAD_FIELDS,
		{"status": "Open"},
		DT(2026, 12, 2, 9),
	)
	text = timeline_text(entries)
	assert text.startswith(
		"now (2026-12-02 09:00): e-mail 'Welcome'; +24 h (2026-12-03 09:00) if status is Open: create a ToDo"
	)
	assert "+48 h (2026-12-04 09:00): notify boss@example.com: Still open" in text


def test_format_duration():
	assert format_duration(datetime.timedelta(hours=48)) == "48 h"
	assert format_duration(datetime.timedelta(days=7)) == "7 d"
	assert format_duration(datetime.timedelta(minutes=90)) == "90 min"


# Virtual clock


def test_run_sequence_runs_skips_and_exits():
	sequence = compiled(nurture()).sequence
	start = DT(2026, 12, 1, 9)
	run = run_sequence(sequence, {"status": "Open"}, start, start + datetime.timedelta(days=14))
	assert run.status == RAN and [e[2] for e in run.events] == [RAN, RAN]
	run = run_sequence(sequence, {"status": "Open"}, start, start + datetime.timedelta(hours=30))
	assert run.status == PENDING and run.pending_step == 2
	run = run_sequence(
		sequence,
		{"status": "Open"},
		start,
		start + datetime.timedelta(days=14),
		changes=[(start + datetime.timedelta(hours=30), {"status": "Converted"})],
	)
	assert run.status == EXITED and run.exited_at_step == 2
	counts = summarize_runs(
		sequence, [run, run_sequence(sequence, {"status": "Lead"}, start, start + datetime.timedelta(days=3))]
	)
	assert counts[0]["reached"] == 2 and counts[0]["ran"] == 1 and counts[0]["skipped"] == 1
	assert (counts[1]["reached"], counts[1]["exited"], counts[1]["ran"]) == (2, 1, 1)


def test_run_sequence_until_condition_met_early_moves_the_anchor():
	rule = nurture(
		steps=[
			{
				"step_name": "Wait",
				"wait_type": "Until Condition",
				"wait_amount": 3,
				"wait_unit": "Days",
				"until_conditions": {"all": [{"field": "status", "op": "=", "value": "Interested"}]},
			},
			{"step_name": "After", "wait_type": "Duration", "wait_amount": 1, "wait_unit": "Days"},
		],
		stop_conditions=None,
	)
	rule["actions"] = [
		{"action_type": "Add Tag", "tag": "a", "step": "Wait"},
		{"action_type": "Add Tag", "tag": "b", "step": "After"},
	]
	sequence = compiled(rule).sequence
	start = DT(2026, 12, 1)
	run = run_sequence(
		sequence,
		{"status": "Open"},
		start,
		start + datetime.timedelta(days=10),
		changes=[(DT(2026, 12, 2), {"status": "Interested"})],
	)
	assert [(e[0], e[2], e[3]) for e in run.events] == [
		(DT(2026, 12, 2), RAN, "met"),
		(DT(2026, 12, 3), RAN, ""),
	]


def test_past_date_steps_are_passed_over_not_sent_late():
	rule = nurture(
		steps=[
			step(
				step_name=f"{n} days",
				wait_type="Until Date Field",
				date_field="expected_close",
				wait_amount=n,
				wait_unit="Days",
			)
			for n in (30, 14, 7)
		],
		stop_conditions=None,
	)
	rule["actions"] = [{"action_type": "Add Tag", "tag": str(n), "step": f"{n} days"} for n in (30, 14, 7)]
	sequence = compiled(rule).sequence
	run = run_sequence(sequence, {"expected_close": "2026-12-20"}, DT(2026, 12, 1), DT(2027, 1, 1))
	assert [(e[1], e[2]) for e in run.events] == [(1, SKIPPED), (2, RAN), (3, RAN)]
	assert run.events[1][0] == DT(2026, 12, 6, 9)  # 09:00 when the step names no time


def test_changes_from_record_entries():
	start = DT(2026, 12, 1)
	assert changes_from([{"after": "30h", "values": {"status": "Replied"}}], start) == [
		(DT(2026, 12, 2, 6), {"status": "Replied"})
	]
	with pytest.raises(ValueError, match=r"changes\[0\].after"):
		changes_from([{"after": "soon", "values": {}}], start)
	with pytest.raises(ValueError, match=r"changes\[0\] must be"):
		changes_from(["status=Replied"], start)


def test_parse_span_and_moments():
	assert parse_span("14d") == datetime.timedelta(days=14)
	assert parse_span("36h") == datetime.timedelta(hours=36)
	with pytest.raises(ValueError, match="fortnight"):
		parse_span("fortnight")
	assert as_moment("2026-12-01", datetime.time(9)) == DT(2026, 12, 1, 9)
	assert as_moment("not a date") is None


def test_player_tallies_records_per_rule():
	from crm_automation.engine.sequence_story import SequencePlayer

	rule = compiled(nurture())
	player = SequencePlayer(DT(2026, 12, 1, 9), DT(2026, 12, 15, 9))
	player.play(rule, {"status": "Open"})
	player.play(rule, {"status": "Open"}, [{"after": "30h", "values": {"status": "Converted"}}])
	rows = player.as_dict()["Nurture"]
	assert [(r["reached"], r["ran"], r["exited"]) for r in rows] == [(2, 2, 0), (2, 1, 1)]
	assert player.format_lines()[0] == "Nurture: follow-up steps over 14 d (until 2026-12-15 09:00)"
	assert player.format_lines()[2] == "    2. Supervisor: reached 2, ran 1, skipped 0, exited 1, waiting 0"


@settings(max_examples=150, deadline=None)
@given(
	st.lists(st.integers(1, 72), min_size=1, max_size=5),
	st.integers(0, 400),
	st.lists(st.tuples(st.integers(0, 400), st.sampled_from(["Open", "Lead", "Converted"])), max_size=4),
)
def test_virtual_clock_properties(hours, horizon, saves):
	"""Steps happen in order at non-decreasing times; a sequence ends only at a save that makes the
	stop condition true; without such a save it runs every step whose time has come."""
	rule = nurture(
		steps=[step(step_name=f"S{i}", wait_amount=h) for i, h in enumerate(hours)],
		stop_conditions={"all": [{"field": "status", "op": "=", "value": "Converted"}]},
	)
	rule["actions"] = [{"action_type": "Add Tag", "tag": "t", "step": f"S{i}"} for i in range(len(hours))]
	sequence = compiled(rule).sequence
	start = DT(2026, 12, 1)
	until = start + datetime.timedelta(hours=horizon)
	changes = [(start + datetime.timedelta(hours=h), {"status": status}) for h, status in saves]
	run = run_sequence(sequence, {"status": "Open"}, start, until, changes)
	moments = [event[0] for event in run.events]
	assert moments == sorted(moments)
	assert [event[1] for event in run.events] == list(range(1, len(run.events) + 1))
	first_stop = min(
		(at for at, values in changes if values["status"] == "Converted" and at <= until), default=None
	)
	if run.status == EXITED:
		assert run.events[-1][0] == first_stop
	else:
		due = list(itertools.accumulate(datetime.timedelta(hours=h) for h in hours))
		ran = [start + d for d in due if start + d <= until]
		assert moments == ran
		assert first_stop is None or first_stop >= (moments[-1] if run.status == RAN else start)


def test_until_condition_can_wait_for_a_change():
	rule = nurture(
		steps=[
			{
				"step_name": "Wait",
				"wait_type": "Until Condition",
				"wait_amount": 3,
				"wait_unit": "Days",
				"until_conditions": {"all": [{"field": "status", "op": "changed to", "value": "Replied"}]},
			}
		],
		stop_conditions=None,
	)
	rule["actions"] = [{"action_type": "Add Tag", "tag": "replied", "step": "Wait"}]
	sequence = compiled(rule).sequence
	start = DT(2026, 12, 1)
	run = run_sequence(
		sequence,
		{"status": "Open"},
		start,
		start + datetime.timedelta(days=5),
		[(DT(2026, 12, 2), {"status": "Replied"})],
	)
	assert run.events == [(DT(2026, 12, 2), 1, RAN, "met")]


def test_timeline_of_an_until_condition_step_does_not_promise_fixed_offsets():
	rule = nurture(
		steps=[
			{
				"step_name": "Wait",
				"wait_type": "Until Condition",
				"wait_amount": 3,
				"wait_unit": "Days",
				"until_conditions": {"all": [{"field": "status", "op": "=", "value": "Replied"}]},
			},
			step(step_name="After", wait_amount=24),
		],
	)
	rule["actions"] = [
		{"action_type": "Add Tag", "tag": "thanks", "step": "Wait"},
		{"action_type": "Add Tag", "tag": "nudge", "step": "Wait", "on_timeout": 1},
		{"action_type": "Add Tag", "tag": "later", "step": "After"},
	]
	text = timeline_text(timeline([], compiled(rule).sequence, LEAD_FIELDS))
	assert text == (
		"when status is Replied (at the latest +3 d): tag thanks; on timeout: tag nudge; "
		"24 hours later: tag later"
	)
