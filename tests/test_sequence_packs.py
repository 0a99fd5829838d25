"""The starter packs' follow-up sequences: they compile against the shipped field lists, read as
the CRM practice they stand for, and play out on a virtual clock."""

import datetime
import json
from pathlib import Path

import pytest

from crm_automation.engine.packs import check_pack
from crm_automation.engine.sequence_story import run_sequence, summarize_runs, timeline, timeline_text
from crm_automation.engine.sequences import EXITED, PENDING, SKIPPED
from crm_automation.offline.simulator import load_meta

PACKS = Path(__file__).resolve().parents[1] / "crm_automation" / "samples" / "packs"
DT = datetime.datetime


@pytest.fixture(scope="module")
def meta():
	return load_meta()


def compiled_rule(meta, pack, rule_name):
	data = json.loads((PACKS / f"{pack}.json").read_text())
	check = check_pack(data, meta.get)
	assert check.ok, [str(p) for p in check.problems]
	for _rule, compiled in check.compiled["workflow_rules"]:
		if compiled.name == rule_name:
			return compiled
	raise AssertionError(f"{rule_name} not in {pack}")


def immediate(compiled):
	return [{**i, "action_type": i["type"]} for i in compiled.actions_by_branch.get("", ())]


def test_new_lead_nurture_reads_as_the_story(meta):
	rule = compiled_rule(meta, "lead_management", "New lead nurture")
	text = timeline_text(timeline(immediate(rule), rule.sequence, meta["Lead"]))
	assert text == (
		"now: create a ToDo for the Lead Owner, due in 1 day; "
		"+24 h: notify the Lead Owner: {{ doc.lead_name }} has not been contacted for 24 hours; "
		"+48 h: notify everyone with role Sales Manager: {{ doc.lead_name }} has waited 48 hours for a first contact; "
		"+7 d: tag Cold"
	)


def test_new_lead_nurture_ends_when_the_lead_replies(meta):
	sequence = compiled_rule(meta, "lead_management", "New lead nurture").sequence
	start = DT(2026, 12, 1, 9)
	quiet = run_sequence(sequence, {"status": "Open"}, start, start + datetime.timedelta(days=14))
	replied = run_sequence(
		sequence,
		{"status": "Open"},
		start,
		start + datetime.timedelta(days=14),
		changes=[(start + datetime.timedelta(hours=30), {"status": "Replied"})],
	)
	assert [e[1] for e in quiet.events] == [1, 2, 3]
	assert (replied.status, replied.exited_at_step) == (EXITED, 2)
	rows = summarize_runs(sequence, [quiet, replied])
	assert [(r["reached"], r["ran"], r["exited"]) for r in rows] == [(2, 2, 0), (2, 1, 1), (1, 1, 0)]


def test_quotation_follow_up_only_when_not_ordered(meta):
	sequence = compiled_rule(meta, "sales_pipeline", "Quotation follow-up").sequence
	start = DT(2026, 12, 1, 9)
	ordered = run_sequence(
		sequence,
		{"status": "Open"},
		start,
		start + datetime.timedelta(days=5),
		changes=[(start + datetime.timedelta(days=1), {"status": "Ordered"})],
	)
	assert ordered.status == EXITED
	waiting = run_sequence(sequence, {"status": "Open"}, start, start + datetime.timedelta(days=2))
	assert (waiting.status, waiting.pending_due) == (PENDING, start + datetime.timedelta(days=3))


def test_renewal_reminders_30_14_7_days_before_the_end(meta):
	sequence = compiled_rule(meta, "sales_pipeline", "Renewal reminders").sequence
	run = run_sequence(
		sequence, {"to_date": "2027-03-31", "status": "To Bill"}, DT(2026, 12, 1), DT(2027, 4, 1)
	)
	assert [e[0] for e in run.events] == [DT(2027, 3, 1, 9), DT(2027, 3, 17, 9), DT(2027, 3, 24, 9)]
	late = run_sequence(
		sequence, {"to_date": "2026-12-20", "status": "To Bill"}, DT(2026, 12, 1), DT(2027, 1, 1)
	)
	assert [e[2] for e in late.events][:1] == [SKIPPED]


def test_survey_reminder_only_while_unanswered(meta):
	sequence = compiled_rule(meta, "support", "Satisfaction survey").sequence
	start = DT(2026, 12, 1, 12)
	answered = run_sequence(
		sequence,
		{"status": "Resolved"},
		start,
		start + datetime.timedelta(days=10),
		changes=[(start + datetime.timedelta(days=2), {"status": "Closed"})],
	)
	assert [e[1] for e in answered.events] == [1, 2] and answered.status == EXITED
	silent = run_sequence(sequence, {"status": "Resolved"}, start, start + datetime.timedelta(days=10))
	assert [e[0] for e in silent.events] == [
		start + datetime.timedelta(days=1),
		start + datetime.timedelta(days=4),
	]
