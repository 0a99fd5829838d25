"""Tier 1: the simulator shows when a rule's messages would go out under its sending window."""

import datetime
import json

from crm_automation.offline.simulator import simulate

SATURDAY_3AM = datetime.datetime(2026, 12, 12, 3, 0)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def pack(holidays=(), mode="Working Hours", window="Office"):
	return {
		"format": "crm_automation.pack",
		"version": 1,
		"name": "Windows",
		"workflow_rules": [
			{
				"rule_name": "Welcome",
				"document_type": "Issue",
				"trigger": "New",
				"send_window_policy": window,
				"actions": [
					{"action_type": "System Notification", "to_users": "a@example.com", "subject": "New"},
					{"action_type": "Add Tag", "tag": "seen"},
				],
			}
		],
		"escalation_policies": [
			{
				"policy_name": "Office",
				"document_type": "Issue",
				"enabled": 0,
				"calendar_mode": mode,
				"holidays": list(holidays),
				"working_hours": [
					{"weekday": d, "start_time": "09:00:00", "end_time": "18:00:00"} for d in WEEKDAYS
				],
				"levels": [{"level": 1, "after": 1, "unit": "Days", "action_type": "Add Comment", "message": "late"}],
			}
		],
	}


def actions_of(tmp_path, the_pack, now=SATURDAY_3AM):
	records = tmp_path / "issues.json"
	records.write_text(json.dumps({"Issue": [{"name": "ISS-1"}]}))
	entries, problems = simulate(the_pack, str(records), now=now)
	assert problems == []
	return entries[0]["rules"][0]["actions"]


def test_saturday_night_message_would_go_monday_morning(tmp_path):
	notify, tag = actions_of(tmp_path, pack())
	assert notify["send_window"] == "would send Monday 2026-12-14 09:00"
	assert notify["deferred_to"] == "2026-12-14 09:00:00"
	assert "send_window" not in tag, "a tag is no message: never deferred"


def test_a_holiday_moves_it_to_tuesday(tmp_path):
	notify, _tag = actions_of(tmp_path, pack(holidays=["2026-12-14"]))
	assert notify["deferred_to"] == "2026-12-15 09:00:00"


def test_inside_the_window_it_goes_at_once(tmp_path):
	notify, _tag = actions_of(tmp_path, pack(), now=datetime.datetime(2026, 12, 9, 10, 0))
	assert notify["send_window"] == "sent at once"


def test_a_policy_the_pack_lacks_is_not_simulated(tmp_path):
	notify, _tag = actions_of(tmp_path, pack(window="Elsewhere"))
	assert notify["send_window"].startswith("not simulated: no Escalation Policy Elsewhere")
