"""Rule packs and the offline simulator: the app's main job on any machine, no bench needed."""

import datetime
import json
import os
import subprocess
import sys

import pytest

from crm_automation.engine.packs import check_pack
from crm_automation.offline.cli import main
from crm_automation.offline.simulator import SAMPLES, load_meta, simulate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKS = sorted(name[:-5] for name in os.listdir(os.path.join(SAMPLES, "packs")) if name.endswith(".json"))
NOW = datetime.datetime(2026, 11, 23, 12, 0)


def load(name):
	with open(os.path.join(SAMPLES, "packs", f"{name}.json")) as handle:
		return json.load(handle)


def test_starter_packs_are_shipped():
	assert PACKS == ["lead_management", "sales_pipeline", "support"]


@pytest.mark.parametrize("name", PACKS)
def test_every_starter_pack_validates_against_erpnext_fields(name):
	result = check_pack(load(name), load_meta().get)
	assert [str(p) for p in result.problems] == []
	assert sum(len(items) for items in result.compiled.values()) >= 3


def test_simulating_lead_management_on_sample_leads():
	report, problems = simulate(
		load("lead_management"), os.path.join(SAMPLES, "records", "leads.csv"), now=NOW
	)
	assert problems == []
	by_name = {entry["name"]: entry for entry in report}
	asha = by_name["LEAD-0001"]
	assert (asha["scores"][0]["score"], asha["scores"][0]["grade"]) == (12, "Hot")
	rules = {rule["rule"]: rule for rule in asha["rules"]}
	assert rules["Assign new leads"]["branch"] == "Large company"
	assert (
		rules["Welcome email by source"]["actions"][0]["subject"] == "Thank you for visiting our stand, Asha"
	)
	assert rules["Hot lead alert"]["outcome"] == "Fired"
	chen = {rule["rule"]: rule for rule in by_name["LEAD-0003"]["rules"]}
	assert chen["Welcome email by source"]["outcome"] == "Skipped"
	assert any(not leaf["result"] for leaf in chen["Welcome email by source"]["trace"]), "the trace says why"


def test_escalation_schedule_in_business_hours():
	report, problems = simulate(load("support"), os.path.join(SAMPLES, "records", "issues.csv"), now=NOW)
	assert problems == []
	# Created Friday 16:00: one business hour left that day, then Monday from 09:00.
	friday = next(entry for entry in report if entry["name"] == "ISS-0001")["escalations"][0]
	assert friday["outcome"] == "Running"
	assert [step["at"] for step in friday["schedule"]] == [
		"2026-11-23 09:30:00",
		"2026-11-23 10:00:00",
		"2026-11-23 12:00:00",
	]
	replied = next(entry for entry in report if entry["name"] == "ISS-0004")["escalations"][0]
	assert replied["outcome"] == "Stopped"


def test_value_change_is_simulated_from_before_values():
	report, _ = simulate(
		load("sales_pipeline"), os.path.join(SAMPLES, "records", "opportunities.json"), now=NOW
	)
	proposal = {rule["rule"]: rule for rule in report[1]["rules"]}["Quotation at proposal stage"]
	assert proposal["outcome"] == "Fired"
	assert proposal["actions"][0] == {"type": "Create Document", "doctype": "Quotation", "use_mapper": True}


def test_invalid_pack_lists_every_problem_by_location(tmp_path, capsys):
	pack = load("lead_management")
	pack["workflow_rules"][0]["document_type"] = "Spaceship"
	pack["workflow_rules"][1]["conditions"]["all"][0]["field"] = "emial_id"
	pack["workflow_rules"][2]["actions"][0]["due_in"] = "tomorrow"
	pack["lead_score_rules"][0]["bands"][2]["min_score"] = 1
	path = tmp_path / "broken.json"
	path.write_text(json.dumps(pack))
	assert main(["simulate", "--pack", str(path), "--records", "leads"]) == 2
	errors = capsys.readouterr().err
	assert "4 problem(s)" in errors
	assert (
		"workflow_rules[0] (Assign new leads).document_type: 'Spaceship' is not a document type here"
		in errors
	)
	assert 'workflow_rules[1] (Welcome email by source).conditions.all[0]: unknown field "emial_id"' in errors
	assert (
		'workflow_rules[2] (Follow up new leads).actions[0].due_in: "tomorrow" is not a number of hours or days'
		in errors
	)
	assert "lead_score_rules[0] (Lead score).bands[2].min_score: bands must go up" in errors


def test_unknown_version_and_malformed_pack(tmp_path, capsys):
	path = tmp_path / "future.json"
	path.write_text(json.dumps({"format": "crm_automation.pack", "version": 7}))
	assert main(["check-pack", str(path)]) == 2
	assert "unknown pack version 7" in capsys.readouterr().err
	assert [str(p) for p in check_pack([], load_meta().get).problems] == ["pack: a pack is a JSON object"]


def test_records_with_wrong_types_are_listed(tmp_path, capsys):
	records = tmp_path / "leads.csv"
	records.write_text(
		"doctype,name,annual_revenue,unsubscribed,creation,colour\nLead,L1,lots,2,yesterday,red\nLead,L2,5,0,2026-01-01,\n"
	)
	assert main(["simulate", "--pack", "lead_management", "--records", str(records)]) == 2
	errors = capsys.readouterr().err
	assert 'leads.csv:2.annual_revenue: "lots" is not a number for annual_revenue (Currency)' in errors
	assert 'leads.csv:2.unsubscribed: "2" is not 0 or 1' in errors
	assert 'leads.csv:2.creation: "yesterday" is not a date and time' in errors
	assert "leads.csv:2.colour: Lead has no field 'colour'" in errors


def test_json_output_and_the_installed_command():
	result = subprocess.run(
		[
			sys.executable,
			"-m",
			"crm_automation.offline.cli",
			"simulate",
			"--pack",
			"support",
			"--records",
			"issues",
			"--format",
			"json",
			"--now",
			"2026-11-23 12:00:00",
		],
		capture_output=True,
		text=True,
		cwd=ROOT,
		check=True,
	)
	output = json.loads(result.stdout)
	report = output["sample"]
	assert [entry["name"] for entry in report] == ["ISS-0001", "ISS-0002", "ISS-0003", "ISS-0004"]
	urgent = {rule["rule"]: rule for rule in report[2]["rules"]}["Prioritise urgent issues"]
	assert urgent["actions"] == [{"type": "Set Value", "field": "priority", "value": "High"}]
	assert output["records"] == 4 and output["by_doctype"] == {"Issue": 4}
	tally = {rule["rule"]: rule for rule in output["rules"]}["Prioritise urgent issues"]
	assert tally["actions"] == {"Set Value": sum(tally["outcomes"].get(o, 0) for o in ("Fired", "Rejected"))}
