"""`crm-automation simulate --until 14d`: follow-up sequences played on a virtual clock, with how
many records reach, run, skip, exit or still wait for each step."""

import json

import pytest

from crm_automation.offline.cli import main

NOW = "2026-12-01 09:00:00"


def leads(tmp_path, rows):
	path = tmp_path / "leads.json"
	path.write_text(json.dumps([{"doctype": "Lead", **row} for row in rows]))
	return str(path)


@pytest.fixture
def records(tmp_path):
	return leads(
		tmp_path,
		[
			{"name": "L1", "first_name": "Quiet", "status": "Open"},
			{
				"name": "L2",
				"first_name": "Replies",
				"status": "Open",
				"changes": [{"after": "30h", "values": {"status": "Replied"}}],
			},
			{
				"name": "L3",
				"first_name": "Converts late",
				"status": "Lead",
				"changes": [{"after": "10d", "values": {"status": "Converted"}}],
			},
			{"name": "L4", "first_name": "Not a match", "status": "Converted"},
		],
	)


def test_until_reports_reach_and_exit_per_step(records, capsys):
	code = main(
		[
			"simulate",
			"--pack",
			"lead_management",
			"--records",
			records,
			"--now",
			NOW,
			"--until",
			"14d",
			"--show",
			"0",
		]
	)
	out = capsys.readouterr().out
	assert code == 0, out
	assert "New lead nurture: follow-up steps over 14 d (until 2026-12-15 09:00)" in out
	assert "1. Remind owner: reached 3, ran 3, skipped 0, exited 0, waiting 0" in out
	assert "2. Tell supervisor: reached 3, ran 2, skipped 0, exited 1, waiting 0" in out
	assert "3. Mark cold: reached 2, ran 2, skipped 0, exited 0, waiting 0" in out


def test_a_shorter_clock_leaves_records_waiting(records, capsys):
	main(
		[
			"simulate",
			"--pack",
			"lead_management",
			"--records",
			records,
			"--now",
			NOW,
			"--until",
			"36h",
			"--format",
			"json",
		]
	)
	data = json.loads(capsys.readouterr().out)
	steps = data["sequences"]["New lead nurture"]
	assert [(s["ran"], s["exited"], s["waiting"]) for s in steps] == [(3, 0, 0), (0, 1, 2), (0, 0, 0)]


def test_without_until_no_sequences_are_played(records, capsys):
	main(["simulate", "--pack", "lead_management", "--records", records, "--now", NOW, "--format", "json"])
	assert "sequences" not in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("span", ["fortnight", "14", "-3d", "0d"])
def test_a_bad_span_is_refused_in_one_line(records, span, capsys):
	assert main(["simulate", "--pack", "lead_management", "--records", records, f"--until={span}"]) == 2
	err = capsys.readouterr().err
	assert "--until" in err and len(err.strip().splitlines()) == 1


def test_explained_records_show_their_follow_up(records, capsys):
	main(["simulate", "--pack", "lead_management", "--records", records, "--now", NOW, "--until", "14d"])
	out = capsys.readouterr().out
	assert "then 2026-12-02 09:00 step 1: Done\n" in out
	assert "then 2026-12-02 15:00 step 2: Exited (stop when status is one of Replied" in out


def test_bad_changes_are_refused_with_their_place(tmp_path, capsys):
	path = leads(
		tmp_path,
		[{"name": "L1", "status": "Open", "changes": [{"after": "soon", "values": {"status": "Replied"}}]}],
	)
	assert main(["simulate", "--pack", "lead_management", "--records", path, "--until", "14d"]) == 2
	assert "changes[0].after" in capsys.readouterr().err
	path = leads(
		tmp_path,
		[{"name": "L1", "status": "Open", "changes": [{"after": "1d", "values": {"statos": "Replied"}}]}],
	)
	assert main(["simulate", "--pack", "lead_management", "--records", path, "--until", "14d"]) == 2
	assert "statos" in capsys.readouterr().err
