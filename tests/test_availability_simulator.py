"""Who is in, offline: the simulator's Assign actions skip users the availability file marks away,
keep round robin's turns among those in, fall back, and packs carry the action's fields."""

import datetime
import json

from crm_automation.engine.packs import check_pack
from crm_automation.offline.availability_files import checked_availability
from crm_automation.offline.cli import main
from crm_automation.offline.input_files import InputError
from crm_automation.offline.simulator import load_meta, run_simulation

NOW = datetime.datetime(2026, 12, 7, 10, 0)
USERS = ["ann@example.com", "bob@example.com", "cat@example.com"]
AWAY = {"away": [{"user": "bob@example.com", "from": "2026-12-07 00:00", "to": "2026-12-12 09:00"}]}


def pack(**action):
	return {
		"format": "crm_automation.pack",
		"version": 1,
		"name": "Who is in",
		"workflow_rules": [
			{
				"rule_name": "Assign by turns",
				"document_type": "Lead",
				"trigger": "New",
				"actions": [
					{
						"action_type": "Assign",
						"assign_to_type": "Listed Users",
						"to_users": "\n".join(USERS),
						"skip_away": 1,
						"skip_off_hours": 0,
						"fallback_user": "boss@example.com",
						**action,
					}
				],
			}
		],
	}


def records(tmp_path, count):
	path = tmp_path / "leads.csv"
	rows = [f"Lead,L{i},Lead {i},Co {i}" for i in range(count)]
	path.write_text("doctype,name,first_name,company_name\n" + "\n".join(rows) + "\n")
	return str(path)


def assigned(result):
	return [entry["rules"][0]["actions"][0] for entry in result.sample]


def test_a_pack_carries_the_who_is_in_fields():
	checked = check_pack(pack(), load_meta().get)
	assert checked.ok, [str(p) for p in checked.problems]
	rule = checked.compiled["workflow_rules"][0][1]
	intent = rule.evaluate({"name": "L1", "first_name": "Lead"}, None).intents[0]
	assert (intent["skip_away"], intent["skip_off_hours"]) == (True, False)
	assert (intent["fallback_user"], intent["fallback_role"]) == ("boss@example.com", None)


def test_round_robin_offline_skips_the_away_user_and_shares_fairly(tmp_path):
	result = run_simulation(
		pack(), records(tmp_path, 10), now=NOW, show=10, availability=checked_availability(AWAY)
	)
	assert not result.problems
	actions = assigned(result)
	picks = [action["assigned_to"] for action in actions]
	assert picks.count("ann@example.com") == 5 and picks.count("cat@example.com") == 5
	assert actions[0]["skipped"] == ["bob@example.com (away until 2026-12-12 09:00)"]


def test_everyone_away_falls_back_offline(tmp_path):
	everyone = {"away": [{"user": u, "from": "2026-12-07 00:00", "to": "2026-12-08 00:00"} for u in USERS]}
	result = run_simulation(pack(), records(tmp_path, 1), now=NOW, show=1, availability=checked_availability(everyone))
	action = assigned(result)[0]
	assert action["assigned_to"] == "boss@example.com" and action["fallback"] == "user"
	assert len(action["skipped"]) == 3


def test_a_bad_availability_file_is_refused_naming_the_entry(tmp_path, capsys):
	bad = {"away": [{"user": "ann@example.com", "from": "2026-12-08 00:00", "to": "2026-12-07 00:00"}]}
	try:
		checked_availability(bad)
	except InputError as error:
		assert error.where == "availability.away[0].to"
	else:
		raise AssertionError("a period that ends before it starts was accepted")
	path = tmp_path / "people.json"
	path.write_text(json.dumps({"holidays": {"ann@example.com": ["someday"]}}))
	pack_path = tmp_path / "pack.json"
	pack_path.write_text(json.dumps(pack()))
	code = main(
		["simulate", "--pack", str(pack_path), "--records", records(tmp_path, 1), "--availability", str(path)]
	)
	assert code == 2
	assert "'someday' is not a date" in capsys.readouterr().err
