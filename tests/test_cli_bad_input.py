"""Every bad input to `crm-automation` is refused with one located line, exit code 2, no traceback;
a good file of any size streams through in flat memory."""

import datetime
import json
import os
import subprocess
import sys
import tracemalloc

import pytest

from crm_automation.engine.conditions import MAX_CONDITION_DEPTH, compile_condition
from crm_automation.engine.errors import RuleError
from crm_automation.engine.packs import check_pack
from crm_automation.offline import record_files
from crm_automation.offline.cli import ProgressBar, main
from crm_automation.offline.input_files import InputError, resolve_user_path
from crm_automation.offline.simulator import SAMPLES, load_meta, run_simulation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = "2026-11-23 12:00:00"
HEADER = "doctype,name,first_name,email_id,source,annual_revenue,days_idle\n"


def refused(capsys, *argv):
	"""Run the command; it must refuse with exit code 2, print nothing on stdout and only
	'where: message' lines on stderr. Returns stderr."""
	code = main(list(argv))
	out, err = capsys.readouterr()
	assert code == 2, err
	assert out == ""
	assert "Traceback" not in err
	return err.strip()


def simulate_file(tmp_path, capsys, filename, content, *extra):
	path = tmp_path / filename
	if isinstance(content, bytes):
		path.write_bytes(content)
	else:
		path.write_text(content, encoding="utf-8")
	return refused(
		capsys, "simulate", "--pack", "lead_management", "--records", str(path), "--now", NOW, *extra
	)


def test_missing_files_are_named(tmp_path, capsys):
	missing = str(tmp_path / "nope.csv")
	assert refused(capsys, "simulate", "--pack", "lead_management", "--records", missing) == (
		f"{missing}: no such file, and no shipped sample records/{missing}"
	)
	assert "nope.json: no such file" in refused(capsys, "check-pack", str(tmp_path / "nope.json"))
	assert refused(capsys, "check-pack", str(tmp_path)).endswith("is a folder, not a file")


def test_csv_that_is_not_utf8_names_the_line(tmp_path, capsys):
	content = (HEADER + "Lead,L1,Asha,,,1,0\nLead,L2,Andr\xe9,,,1,0\n").encode("latin-1")
	assert simulate_file(tmp_path, capsys, "leads.csv", content) == (
		"leads.csv:3: not UTF-8 text (byte 0xe9); save the file as UTF-8"
	)


def test_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path, capsys):
	path = tmp_path / "leads.csv"
	path.write_text("\ufeff" + HEADER + "Lead,L1,Asha,a@b.example,Exhibition,5,0\n", encoding="utf-8")
	assert main(["simulate", "--pack", "lead_management", "--records", str(path), "--now", NOW]) == 0
	assert "Lead L1  (leads.csv:2)" in capsys.readouterr().out


def test_a_cell_over_the_csv_limit_names_the_line(tmp_path, capsys):
	content = HEADER + "Lead,L1,Asha,,,1,0\n" + f"Lead,L2,{'x' * 200_000},,,1,0\n"
	assert simulate_file(tmp_path, capsys, "leads.csv", content) == (
		f"leads.csv:3: a cell longer than {record_files.CSV_FIELD_LIMIT:,} characters (the CSV limit)"
	)


def test_rows_with_too_many_or_too_few_cells(tmp_path, capsys):
	content = HEADER + "Lead,L1,Asha,,,1,0,surprise,more\nLead,L2,Ben\nLead,L3,Chen,,,1,0,,\n"
	errors = simulate_file(tmp_path, capsys, "leads.csv", content).splitlines()
	assert errors == [
		"2 problem(s):",
		"  leads.csv:2: 9 cells, but the header has 7 columns",
		"  leads.csv:3: 3 cells, but the header has 7 columns",
	], "trailing empty cells (L3) are what spreadsheets write: accepted"


@pytest.mark.parametrize(
	"content, message",
	[
		("42", 'records.json:1: a records file holds a JSON list of records or {"Lead": [records], ...}'),
		("null", 'records.json:1: a records file holds a JSON list of records or {"Lead": [records], ...}'),
		('{"Lead": 5}', 'records.json:1: "Lead" must be a list of records'),
		("", "records.json: empty: no records"),
		(
			'[{"doctype": "Lead"},\n {"doctype": "Lead", "name": }]',
			"records.json:2: not valid JSON (Expecting value)",
		),
		('[{"doctype": "Lead"}] trailing', "records.json:1: not valid JSON (more text after the records)"),
		("[" * 100_000, "records.json:1: JSON nested too deeply"),
		(
			'[{"doctype": "Lead", "first_name": "abc',
			"records.json:1: not valid JSON (Unterminated string starting at)",
		),
	],
)
def test_json_files_that_are_not_records(tmp_path, capsys, content, message):
	assert simulate_file(tmp_path, capsys, "records.json", content) == message


def test_values_of_the_wrong_shape_name_row_and_field(tmp_path, capsys):
	records = [
		{"doctype": "Lead", "name": "L1", "annual_revenue": [1, 2]},
		{"doctype": "Lead", "name": ["L2"]},
		{"doctype": ["Lead"], "name": "L3"},
		{"doctype": "Lead", "name": "L4", "first_name": {"text": "x"}, "days_idle": "abc"},
		{"doctype": "Lead", "name": "L5", "before": "yesterday", "activity:Communication": -1},
		{"doctype": "Lead", "name": "L6", "annual_revenue": "1e400", "creation": "soon"},
		"a string",
	]
	errors = simulate_file(tmp_path, capsys, "records.json", json.dumps(records)).splitlines()
	assert errors == [
		"10 problem(s):",
		"  records.json[0].annual_revenue: [1, 2] is not a number for annual_revenue (Currency)",
		"  records.json[1].name: ['L2'] is not text for name (Data)",
		"  records.json[2]: unknown doctype ['Lead'] (give a doctype column or --doctype)",
		"  records.json[3].first_name: {'text': 'x'} is not text for first_name (Data)",
		'  records.json[3].days_idle: "abc" is not a number of days (0 or more)',
		'  records.json[4].before: must be an object of field values, not "yesterday"',
		"  records.json[4].activity:Communication: -1 is not a number of activities (0, 1, 2, ...)",
		'  records.json[5].annual_revenue: "1e400" is not a finite number for annual_revenue (Currency)',
		'  records.json[5].creation: "soon" is not a date and time (YYYY-MM-DD HH:MM:SS) for creation (Datetime)',
		'  records.json[6]: a record must be an object, not "a string"',
	]


def test_days_idle_that_is_not_a_number_in_csv(tmp_path, capsys):
	content = HEADER + "Lead,L1,Asha,,,1,abc\n"
	assert simulate_file(tmp_path, capsys, "leads.csv", content) == (
		'leads.csv:2.days_idle: "abc" is not a number of days (0 or more)'
	)


def test_unknown_column_is_reported_once_not_per_row(tmp_path, capsys):
	content = "doctype,name,colour\n" + "".join(f"Lead,L{i},red\n" for i in range(50))
	assert (
		simulate_file(tmp_path, capsys, "leads.csv", content)
		== "leads.csv:2.colour: Lead has no field 'colour'"
	)


def test_too_many_problems_stop_the_reading(tmp_path, capsys):
	content = HEADER + "".join(f"Lead,L{i},x,,,lots,0\n" for i in range(500))
	errors = simulate_file(tmp_path, capsys, "leads.csv", content).splitlines()
	assert errors[0] == "100 problem(s):"
	assert len(errors) == 101
	assert errors[1] == '  leads.csv:2.annual_revenue: "lots" is not a number for annual_revenue (Currency)'
	assert errors[-1] == "  leads.csv:100: stopped reading here after 99 problems; fix those first"


@pytest.mark.parametrize(
	"argv, message",
	[
		(["--now", "tomorrow"], "--now: 'tomorrow' is not a date and time (YYYY-MM-DD HH:MM:SS)"),
		(["--show", "-1"], "--show: '-1' is not a number of records (0, 1, 2, ...)"),
		(["--doctype", "Spaceship"], "--doctype: no field list for 'Spaceship' (add one with --meta)"),
	],
)
def test_bad_options_get_one_line(capsys, argv, message):
	assert refused(capsys, "simulate", "--pack", "lead_management", "--records", "leads", *argv) == message


@pytest.mark.parametrize(
	"content, message",
	[
		("[1, 2]", "meta.json[0]: a field list is"),
		('{"doctype": "Lead", "fields": []}', "meta.json[0].fields: must be an object of fields"),
		(
			'{"doctype": "Lead", "fields": {"x": {"label": "X"}}}',
			'meta.json[0].fields.x: must be an object with a "fieldtype"',
		),
		(
			'{"doctype": "Lead", "fields": {"x": {"fieldtype": "Select", "options": 5}}}',
			"meta.json[0].fields.x.options: must be text",
		),
		("{", "meta.json:1: not valid JSON (Expecting property name enclosed in double quotes, column 2)"),
	],
)
def test_bad_field_lists(tmp_path, capsys, content, message):
	path = tmp_path / "meta.json"
	path.write_text(content)
	err = refused(capsys, "simulate", "--pack", "lead_management", "--records", "leads", "--meta", str(path))
	assert err.startswith(message) or err.endswith(message.split(": ", 1)[1]), err


def test_pack_that_is_not_json_or_not_an_object(tmp_path, capsys):
	path = tmp_path / "pack.json"
	path.write_bytes(b'{"format": "crm_automation.pack",\n "version": 1,\n "name": "\xff"}')
	assert (
		refused(capsys, "check-pack", str(path))
		== f"{path}:3: not UTF-8 text (byte 0xff); save the file as UTF-8"
	)
	for content, message in (
		("42", "pack: a pack is a JSON object"),
		("null", "pack: a pack is a JSON object"),
	):
		path.write_text(content)
		assert refused(capsys, "check-pack", str(path)) == message


def nested(depth):
	tree = {"field": "first_name", "op": "=", "value": "x"}
	for _ in range(depth):
		tree = {"all": [tree]}
	return tree


def test_deeply_nested_conditions_are_refused_with_their_path(tmp_path, capsys):
	with pytest.raises(RuleError) as raised:
		compile_condition(nested(500), {"first_name": {"fieldtype": "Data"}})
	problem = raised.value.first
	assert problem.path == "conditions" + ".all[0]" * MAX_CONDITION_DEPTH
	assert problem.message == f"conditions are nested deeper than {MAX_CONDITION_DEPTH} levels"
	assert (
		compile_condition(nested(MAX_CONDITION_DEPTH - 1), {"first_name": {"fieldtype": "Data"}}).leaf_count
		== 1
	)

	# 300 groups: 600 levels of JSON, which json reads; the compiler is what must refuse it
	leaf = json.dumps({"field": "first_name", "op": "=", "value": "x"})
	rule = {
		"rule_name": "Deep",
		"document_type": "Lead",
		"trigger": "New",
		"actions": [{"action_type": "Add Tag", "tag": "x"}],
	}
	text = json.dumps({"format": "crm_automation.pack", "version": 1, "workflow_rules": [rule]})
	conditions = '{"all": [' * 300 + leaf + "]}" * 300
	path = tmp_path / "deep.json"
	path.write_text(text.replace('"trigger": "New"', f'"trigger": "New", "conditions": {conditions}'))
	err = refused(capsys, "check-pack", str(path))
	assert err.startswith("workflow_rules[0] (Deep).conditions.all[0].all[0]")
	assert err.endswith(f"conditions are nested deeper than {MAX_CONDITION_DEPTH} levels")


@pytest.mark.parametrize(
	"change, path, message",
	[
		({"trigger": ["New"]}, "workflow_rules[0] (R).trigger", "must be a single value, not a list"),
		({"priority": "1e400"}, "workflow_rules[0] (R).priority", "'1e400' is not a whole number"),
		({"actions": 7}, "workflow_rules[0] (R).actions", "must be a list of rows, not 7"),
		(
			{"actions": ["Add Tag"]},
			"workflow_rules[0] (R).actions[0]",
			"a row must be an object, not 'Add Tag'",
		),
		(
			{"actions": [{"action_type": "Add Tag", "tag": 5}]},
			"workflow_rules[0] (R).actions[0].tag",
			"must be text, not 5",
		),
		(
			{"document_type": ["Lead"]},
			"workflow_rules[0] (R).document_type",
			"['Lead'] is not a document type here",
		),
		({"rule_name": ["R"]}, "workflow_rules[0].rule_name", "must be text"),
		(
			{"conditions": {"all": [{"field": ["name"], "op": "="}]}},
			"workflow_rules[0] (R).conditions.all[0]",
			"the field and the operator of a condition are text",
		),
		(
			{"conditions": {"all": [{"field": "name", "op": {"=": 1}}]}},
			"workflow_rules[0] (R).conditions.all[0]",
			"the field and the operator of a condition are text",
		),
	],
)
def test_pack_values_of_the_wrong_shape_are_located(change, path, message):
	rule = {
		"rule_name": "R",
		"document_type": "Lead",
		"trigger": "New",
		"actions": [{"action_type": "Add Tag", "tag": "x"}],
		**change,
	}
	problems = check_pack(
		{"format": "crm_automation.pack", "version": 1, "workflow_rules": [rule]}, load_meta().get
	).problems
	assert [(p.path, p.message) for p in problems] == [(path, message)]


def test_the_real_command_never_shows_a_traceback(tmp_path):
	path = tmp_path / "leads.csv"
	path.write_bytes(b"doctype,name\nLead,\xff\n")
	result = subprocess.run(
		[
			sys.executable,
			"-m",
			"crm_automation.offline.cli",
			"simulate",
			"--pack",
			"lead_management",
			"--records",
			str(path),
		],
		capture_output=True,
		text=True,
		cwd=ROOT,
	)
	assert (result.returncode, result.stdout, result.stderr) == (
		2,
		"",
		"leads.csv:2: not UTF-8 text (byte 0xff); save the file as UTF-8\n",
	)


# ----------------------------------------------------------------------------------------------
# Streaming


def lead_rows(count):
	return HEADER + "".join(
		f"Lead,L{i},Asha,a{i}@x.example,{'Exhibition' if i % 3 else 'Campaign'},{i * 1000},{i % 5}\n"
		for i in range(count)
	)


def test_summary_counts_every_record_and_shows_only_the_first(tmp_path, capsys):
	path = tmp_path / "leads.csv"
	path.write_text(lead_rows(300))
	assert (
		main(
			[
				"simulate",
				"--pack",
				"lead_management",
				"--records",
				str(path),
				"--now",
				NOW,
				"--show",
				"2",
				"--format",
				"json",
			]
		)
		== 0
	)
	output = json.loads(capsys.readouterr().out)
	assert output["records"] == 300 and [entry["name"] for entry in output["sample"]] == ["L0", "L1"]
	welcome = {rule["rule"]: rule for rule in output["rules"]}["Welcome email by source"]
	assert welcome["outcomes"] == {"Fired": 300}
	assert welcome["branches"] == {"Exhibition": 200, "Campaign": 100}
	assert welcome["actions"] == {"Send Email": 300}
	assert sum(output["scores"][0]["grades"].values()) == 300


def test_details_file_has_every_record_and_a_refused_run_leaves_none(tmp_path, capsys):
	records, details = tmp_path / "leads.csv", tmp_path / "details.jsonl"
	records.write_text(lead_rows(40))
	assert (
		main(
			[
				"simulate",
				"--pack",
				"lead_management",
				"--records",
				str(records),
				"--now",
				NOW,
				"--show",
				"0",
				"--details",
				str(details),
			]
		)
		== 0
	)
	out = capsys.readouterr().out
	assert "Lead L0" not in out and "Summary of 40 records (Lead 40):" in out
	entries = [json.loads(line) for line in details.read_text().splitlines()]
	assert [entry["name"] for entry in entries] == [f"L{i}" for i in range(40)]
	assert entries[1]["rules"][1]["actions"][0]["subject"] == "Thank you for visiting our stand, Asha"

	details.unlink()
	records.write_text(lead_rows(40) + "Lead,bad,x,,,lots,0\n")
	refused(
		capsys, "simulate", "--pack", "lead_management", "--records", str(records), "--details", str(details)
	)
	assert os.listdir(tmp_path) == ["leads.csv"]


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_memory_stays_flat_as_the_file_grows(tmp_path, monkeypatch, suffix):
	monkeypatch.setattr(record_files, "CHUNK_BYTES", 512)  # both files span many chunks

	def peak(count):
		path = tmp_path / f"leads{count}{suffix}"
		rows = [
			{
				"doctype": "Lead",
				"name": f"L{i}",
				"first_name": "Asha",
				"annual_revenue": i,
				"source": "Campaign",
			}
			for i in range(count)
		]
		if suffix == ".json":
			path.write_text(json.dumps(rows, indent=1))
		elif suffix == ".jsonl":
			path.write_text("".join(json.dumps(row) + "\n" for row in rows))
		else:
			path.write_text(
				"doctype,name,first_name,annual_revenue,source\n"
				+ "".join(f"Lead,L{i},Asha,{i},Campaign\n" for i in range(count))
			)
		pack = json.loads(open(os.path.join(SAMPLES, "packs", "lead_management.json")).read())
		tracemalloc.start()
		result = run_simulation(pack, str(path), now=datetime.datetime(2026, 11, 23), show=1)
		peak_bytes = tracemalloc.get_traced_memory()[1]
		tracemalloc.stop()
		assert not result.problems and result.summary.records == count
		return peak_bytes

	peak(10)  # caches (field lists, compiled templates) filled once per process
	small, large = peak(100), peak(1000)
	assert large < small * 1.2, (small, large)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_json_list_read_in_any_chunk_size_gives_the_same_records(tmp_path, monkeypatch, chunk):
	rows = [
		{"doctype": "Lead", "name": f"L{i}", "first_name": "Ä" * i, "annual_revenue": 10**i + 0.5}
		for i in range(12)
	]
	path = tmp_path / "leads.json"
	path.write_text(
		" \n[ " + " ,\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + " ]\n", encoding="utf-8"
	)
	monkeypatch.setattr(record_files, "CHUNK_BYTES", chunk)
	assert [row for _where, row in record_files.RowSource(str(path))] == rows
	by_doctype = {"Lead": rows[:5], "Opportunity": []}
	path.write_text(json.dumps(by_doctype))
	assert [where for where, _row in record_files.RowSource(str(path))] == [
		f'leads.json["Lead"][{i}]' for i in range(5)
	]


def test_progress_bar_only_on_a_terminal(tmp_path, capsys):
	path = tmp_path / "leads.csv"
	path.write_text(lead_rows(5000))
	assert main(["simulate", "--pack", "lead_management", "--records", str(path), "--show", "0"]) == 0
	assert capsys.readouterr().err == "", "stderr is not a terminal here: no bar"

	class Terminal:
		def __init__(self):
			self.written = []

		def write(self, text):
			self.written.append(text)

		def flush(self):
			pass

	class Source:
		bytes_read, size = 250, 1000

	ticks = iter([0.0, 1.0, 1.1, 2.0])
	terminal = Terminal()
	bar = ProgressBar(terminal, clock=lambda: next(ticks))
	bar(1000, Source())  # at 1.0 s
	bar(1100, Source())  # 0.1 s later: not redrawn
	bar(2000, Source(), done=True)
	assert terminal.written[0] == "\r" + "█" * 7 + "░" * 23 + "  25%  1,000 records  1,000/s"
	assert terminal.written[1:] == ["\r\033[K"]


# ----------------------------------------------------------------------------------------------
# bench --site S crm-automation import-pack RELATIVE/PATH


def test_relative_pack_path_is_found_where_the_user_stands(tmp_path):
	user_folder, bench_sites = tmp_path / "work", tmp_path / "bench" / "sites"
	(user_folder / "packs").mkdir(parents=True)
	bench_sites.mkdir(parents=True)
	(user_folder / "packs" / "x.json").write_text("{}")
	found = resolve_user_path(
		"packs/x.json", cwd=str(bench_sites), environ={"PWD": str(user_folder)}, fallbacks=("..",)
	)
	assert found == str(user_folder / "packs" / "x.json")


def test_relative_pack_path_falls_back_to_the_bench_folder_then_sites(tmp_path):
	bench, sites = tmp_path / "bench", tmp_path / "bench" / "sites"
	sites.mkdir(parents=True)
	(bench / "x.json").write_text("{}")
	(sites / "y.json").write_text("{}")
	assert resolve_user_path("x.json", cwd=str(sites), environ={}, fallbacks=("..",)) == str(bench / "x.json")
	assert resolve_user_path(
		"y.json", cwd=str(sites), environ={"PWD": "relative/ignored"}, fallbacks=("..",)
	) == str(sites / "y.json")
	with pytest.raises(InputError) as raised:
		resolve_user_path("packs/z.json", cwd=str(sites), environ={"PWD": str(tmp_path)}, fallbacks=("..",))
	assert str(raised.value) == f"packs/z.json: no such file (looked in {tmp_path}, {bench}, {sites})"


def test_a_newline_in_a_column_name_or_value_stays_on_one_line(tmp_path, capsys):
	records = [{"doctype": "Lead", "name": "L1", "bad\nkey": 1, "annual_revenue": "a\nb"}]
	assert simulate_file(tmp_path, capsys, "records.json", json.dumps(records)).splitlines() == [
		"2 problem(s):",
		"  records.json[0].bad\\nkey: Lead has no field 'bad\\nkey'",
		'  records.json[0].annual_revenue: "a\\nb" is not a number for annual_revenue (Currency)',
	]


def test_a_usage_mistake_is_one_line_too(capsys):
	with pytest.raises(SystemExit) as raised:
		main(["simulate", "--pack", "lead_management", "--records", "leads", "--now"])
	assert raised.value.code == 2
	assert (
		capsys.readouterr().err
		== "crm-automation simulate: argument --now: expected one argument (--help for usage)\n"
	)


def test_policy_name_of_the_wrong_type_beside_a_sequence():
	sequence = {
		"rule_name": "S",
		"document_type": "Lead",
		"trigger": "New",
		"steps": [{"step_name": "one", "wait_type": "Duration", "wait_amount": 1, "wait_unit": "Hours"}],
		"actions": [{"action_type": "Add Tag", "tag": "x"}],
	}
	policy = {"policy_name": ["P"], "document_type": "Lead", "calendar_mode": "Working Hours"}
	data = {
		"format": "crm_automation.pack",
		"version": 1,
		"workflow_rules": [sequence],
		"escalation_policies": [policy],
	}
	problems = check_pack(data, load_meta().get).problems
	assert ("escalation_policies[0].policy_name", "must be text") in [(p.path, p.message) for p in problems]


def test_details_into_a_folder_or_a_missing_folder_is_refused(tmp_path, capsys):
	assert refused(
		capsys, "simulate", "--pack", "lead_management", "--records", "leads", "--details", str(tmp_path)
	) == (f"{tmp_path}: is a folder; --details takes a file name")
	missing = tmp_path / "no" / "such" / "details.jsonl"
	assert refused(
		capsys, "simulate", "--pack", "lead_management", "--records", "leads", "--details", str(missing)
	) == (f"{missing}: cannot write there (No such file or directory)")
