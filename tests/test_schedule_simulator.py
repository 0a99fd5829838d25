"""Schedule rules in packs and in the offline simulator: on a virtual clock from --now over --until,
the rule runs at each moment over the records as they stand then."""

import datetime
import json

from crm_automation.engine.packs import check_pack
from crm_automation.offline.simulator import load_meta, run_simulation

NOW = "2027-02-26 12:00:00"  # a Friday


def pack(**schedule):
	rule = {
		"rule_name": "Weekly closing check",
		"document_type": "Lead",
		"trigger": "Schedule",
		"schedule_frequency": "Weekly",
		"schedule_weekday": "Monday",
		"schedule_time": "09:00:00",
		"conditions": {"all": [{"field": "status", "op": "=", "value": "Open"}]},
		"actions": [{"action_type": "Create ToDo", "message": "Call {{ doc.first_name }}", "to_owner": 1}],
		**schedule,
	}
	return {"format": "crm_automation.pack", "version": 1, "name": "t", "workflow_rules": [rule]}


def records(tmp_path):
	rows = [
		{"name": "L1", "first_name": "Open now", "status": "Open"},
		{
			"name": "L2",
			"first_name": "Opens later",
			"status": "Lead",
			"changes": [{"after": "5d", "values": {"status": "Open"}}],
		},
		{"name": "L3", "first_name": "Never", "status": "Converted"},
	]
	path = tmp_path / "leads.json"
	path.write_text(json.dumps([{"doctype": "Lead", **row} for row in rows]))
	return str(path)


def simulate(tmp_path, until=None, **schedule):
	now = datetime.datetime.fromisoformat(NOW)
	span = datetime.timedelta(days=until) if until else None
	details = []
	result = run_simulation(
		pack(**schedule), records(tmp_path), load_meta(), now=now, show=0, details=details.append, until=span
	)
	assert not result.problems, list(result.problems)
	return {entry["name"]: entry["rules"][0] for entry in details}, result.summary


def test_without_until_the_rule_runs_at_its_next_moment(tmp_path):
	by_name, _summary = simulate(tmp_path)
	assert by_name["L1"]["outcome"] == "Fired"
	assert by_name["L1"]["runs_at"] == "2027-03-01 09:00:00"
	assert by_name["L2"]["outcome"] == "Skipped"
	assert by_name["L1"]["schedule_runs"] == ["2027-03-01 09:00 Fired"]


def test_over_three_weeks_each_monday_runs_over_the_records_as_they_are_then(tmp_path):
	by_name, summary = simulate(tmp_path, until=21)
	assert by_name["L1"]["schedule_runs"] == [
		"2027-03-01 09:00 Fired",
		"2027-03-08 09:00 Fired",
		"2027-03-15 09:00 Fired",
	]
	# L2 turns Open on Wednesday 3 March: the Mondays after it pick it up.
	assert by_name["L2"]["schedule_runs"] == [
		"2027-03-01 09:00 Skipped",
		"2027-03-08 09:00 Fired",
		"2027-03-15 09:00 Fired",
	]
	assert summary.firings == 5
	# The fast path (no record explained) counts the same runs.
	now = datetime.datetime.fromisoformat(NOW)
	fast = run_simulation(
		pack(), records(tmp_path), load_meta(), now=now, show=0, until=datetime.timedelta(days=21)
	)
	assert fast.summary.firings == 5


def test_a_pack_with_a_bad_schedule_names_the_field():
	meta = load_meta()
	check = check_pack(pack(schedule_frequency="Monthly", schedule_day_of_month=40), meta.get)
	messages = [f"{p.path}: {p.message}" for p in check.problems]
	assert any("schedule_day_of_month" in m and "40" in m for m in messages), messages


def test_a_pack_schedule_reads_the_packs_policy_calendar():
	data = pack(schedule_frequency="Daily", schedule_calendar="Office")
	data["escalation_policies"] = [
		{
			"policy_name": "Office",
			"document_type": "Lead",
			"calendar_mode": "Working Hours",
			"working_hours": [{"weekday": "Monday", "start_time": "09:00", "end_time": "17:00"}],
			"levels": [
				{"level": 1, "after": 1, "unit": "Hours", "action_type": "Add Comment", "message": "x"}
			],
		}
	]
	check = check_pack(data, load_meta().get)
	assert check.ok, [str(p) for p in check.problems]
	[(_source, compiled)] = check.compiled["workflow_rules"]
	assert compiled.schedule.next_moment(datetime.datetime(2027, 2, 26, 12)) == datetime.datetime(
		2027, 3, 1, 9
	)
