"""The history miner: planted patterns found with their exact figures, noise not proposed,
thresholds held, automation and imports left out, rules that compile and replay to the figures."""

import json
import os
import pathlib

import pytest

from crm_automation.engine import mining
from crm_automation.engine.mining_replay import replay
from crm_automation.engine.packs import check_pack
from crm_automation.engine.workflow import compile_workflow_rule
from crm_automation.offline import cli
from crm_automation.offline.simulator import load_meta
from tests.history_factory import UNTIL, history, planted, write_jsonl

SINCE = "2026-09-01 08:00:00"
END = UNTIL.strftime("%Y-%m-%d %H:%M:%S")
EXPECTED_IDS = {
	"assign_north": "from|Lead|territory=North|Assign|zhou@example.com",
	"assign_south_team": "from|Lead|territory=South|Assign|ben@example.com, li@example.com",
	"exhibition_in_process": "from|Lead|source=Exhibition|Set Value|qualification_status|In Process",
	"replied_quote": "after|Lead|status->Replied|Send Email|template|Quote Follow Up",
	"interested_call_back": "after|Lead|status->Interested|Create ToDo|call back to discuss the offer|3",
	"opportunity_owner": "by_field|Opportunity|field:opportunity_owner|Assign|opportunity_owner",
}


@pytest.fixture(scope="module")
def events():
	return history()


@pytest.fixture(scope="module")
def meta():
	return load_meta()


def run(events, **options):
	return mining.mine(iter(events), since=SINCE, until=END, **options)


def by_id(report):
	return {proposal["id"]: proposal for proposal in report["proposals"]}


def test_every_planted_pattern_is_found_with_its_exact_figures_and_nothing_else(events):
	report = run(events)
	found = by_id(report)
	assert set(found) == set(EXPECTED_IDS.values())
	for name, figures in planted().items():
		if name == "automated":
			continue
		proposal = found[EXPECTED_IDS[name]]
		assert (proposal["support"], proposal["observed"]) == (figures["support"], figures["observed"]), name
		assert proposal["confidence"] == round(figures["support"] / figures["observed"], 4)


def test_people_and_hours_saved(events):
	report = run(events, minutes={"Assign": 3})
	north = by_id(report)[EXPECTED_IDS["assign_north"]]
	assert north["people"] == [{"user": "maria@example.com", "count": 92}]
	weeks = (UNTIL - mining.parse_when(SINCE)).total_seconds() / (7 * 86400)
	assert north["minutes_per_action"] == 3
	assert north["hours_per_week"] == round(92 * 3 / 60 / weeks, 2)
	quote = by_id(report)[EXPECTED_IDS["replied_quote"]]
	assert quote["minutes_per_action"] == mining.DEFAULT_MINUTES["Send Email"]
	assert sum(person["count"] for person in quote["people"]) == quote["support"]


@pytest.mark.parametrize("min_support,min_confidence", [(20, 0.8), (73, 0.8), (1, 0.91), (10, 0.5), (3, 0.3)])
def test_thresholds_hold(events, min_support, min_confidence):
	report = run(events, min_support=min_support, min_confidence=min_confidence)
	for proposal in report["proposals"]:
		assert proposal["support"] >= min_support
		assert proposal["confidence"] >= min_confidence
		assert proposal["support"] <= proposal["observed"]
	ids = set(by_id(report))
	for name, figures in planted().items():
		if name == "automated":
			continue
		passes = (
			figures["support"] >= min_support and figures["support"] / figures["observed"] >= min_confidence
		)
		if name == "assign_south_team":
			passes = passes and 48 / 100 < min_confidence  # a team only where neither alone passes
		assert (EXPECTED_IDS[name] in ids) == passes, name


def test_automation_and_imports_are_not_manual_work(events):
	miner = mining.HistoryMiner(since=SINCE, until=END).feed(iter(events))
	assert miner.excluded["assignment"] == planted()["automated"]
	assert miner.excluded["todo"] == sum(1 for e in events if e["type"] == "todo" and e.get("automated"))
	assert miner.excluded["change"] == sum(1 for e in events if e.get("imported"))
	# the automated assignments went to zhou on South leads first; only the hand ones count
	south_by_hand = {
		e["name"]
		for e in events
		if e["type"] == "assignment" and e["to"] == "zhou@example.com" and not e.get("description")
	}
	south_leads = {
		e["name"] for e in events if e["type"] == "record" and e["doc"].get("territory") == "South"
	}
	assert miner.support[("from", "Lead", ("territory", "South"), ("Assign", "zhou@example.com"))] == len(
		south_by_hand & south_leads
	)


def test_counting_the_automated_assignments_would_change_the_figures(events):
	"""The test above can fail: without the exclusion the automated first assignments count."""
	unmarked = [
		{**e, "description": ""} if e.get("description", "").startswith("Assigned by automation") else e
		for e in events
	]
	miner = mining.HistoryMiner(since=SINCE, until=END).feed(iter(unmarked))
	assert miner.excluded["assignment"] == 0
	key = ("from", "Lead", ("territory", "South"), ("Assign", "zhou@example.com"))
	assert miner.support[key] >= planted()["automated"]


def test_proposed_rules_compile_against_the_shipped_field_lists(events, meta):
	for proposal in run(events)["proposals"]:
		compiled = compile_workflow_rule(proposal["rule"], meta[proposal["doctype"]])
		assert compiled.trigger in ("New", "Value Change", "Time")
		assert proposal["rule"]["enabled"] == 0


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_replay_of_every_proposal_reproduces_its_support_and_confidence(meta, seed):
	events = history(leads=160, opportunities=30, seed=seed)
	report = mining.mine(iter(events), since=SINCE, until=END, min_support=3, min_confidence=0.3)
	assert len(report["proposals"]) >= 5
	for proposal in report["proposals"]:
		result = replay(proposal["rule"], iter(events), meta[proposal["doctype"]], until=END)
		assert result["counts"]["same"] == proposal["support"], proposal["id"]
		acted = result["counts"]["same"] + result["counts"]["different"] + result["counts"]["rule_only"]
		assert acted == proposal["observed"], proposal["id"]
		assert result["confidence"] == proposal["confidence"], proposal["id"]


def test_a_round_robin_between_two_people_is_one_proposal(events, meta):
	team = by_id(run(events))[EXPECTED_IDS["assign_south_team"]]
	action = team["rule"]["actions"][0]
	assert (action["assign_strategy"], action["to_users"]) == (
		"Round Robin",
		"ben@example.com, li@example.com",
	)
	assert "one of ben@example.com, li@example.com" in team["summary"]
	result = replay(team["rule"], iter(events), meta["Lead"], until=END)
	# Li and Ben were given other leads too: people_only
	assert (result["counts"]["same"], result["counts"]["different"], result["counts"]["rule_only"]) == (
		96,
		4,
		0,
	)
	# neither alone is proposed, and three of four people are never a "team" by chance
	report = run(events)
	assert not [
		p for p in report["proposals"] if p["action_type"] == "Assign" and p["action"]["user"].count(",") > 1
	]
	assert not [p for p in report["proposals"] if p["id"].endswith("|Assign|li@example.com")]


def test_replay_names_where_the_rule_differs_from_people(events, meta):
	north = by_id(run(events))[EXPECTED_IDS["assign_north"]]
	result = replay(north["rule"], iter(events), meta["Lead"], until=END)
	assert result["counts"]["different"] == 5
	assert result["counts"]["rule_only"] == 3
	assert all(name.startswith("CRM-LEAD-") for name in result["examples"]["different"])
	# someone else's rule (another user) replays to nothing the same
	other = json.loads(json.dumps(north["rule"]))
	other["actions"][0]["to_users"] = "nobody@example.com"
	assert replay(other, iter(events), meta["Lead"], until=END)["counts"]["same"] == 0


def test_an_identifier_field_is_never_a_condition():
	events = []
	for i in range(mining.MAX_DISTINCT_VALUES + 30):
		name = f"L{i:04d}"
		events.append(
			{
				"type": "record",
				"doctype": "Lead",
				"name": name,
				"when": "2026-09-01 10:00:00",
				"doc": {"phone": f"+1555{i:04d}"},
			}
		)
		events.append(
			{
				"type": "assignment",
				"doctype": "Lead",
				"name": name,
				"when": "2026-09-01 10:05:00",
				"who": "m",
				"to": f"user{i % 2}@x",
			}
		)
	report = mining.mine(events, min_support=1, min_confidence=0.5)
	assert not [p for p in report["proposals"] if p["condition"].get("field") == "phone"]


def test_events_of_a_document_must_be_together():
	events = [
		{"type": "record", "doctype": "Lead", "name": "A", "when": "2026-09-01 10:00:00", "doc": {}},
		{"type": "record", "doctype": "Lead", "name": "B", "when": "2026-09-01 10:00:00", "doc": {}},
		{"type": "assignment", "doctype": "Lead", "name": "A", "when": "2026-09-01 11:00:00", "to": "x@y"},
	]
	with pytest.raises(mining.HistoryError, match="event 3: events of Lead A are not together"):
		mining.mine(events)


@pytest.mark.parametrize(
	"event,message",
	[
		({"type": "visit", "doctype": "Lead", "name": "A", "when": "2026-09-01"}, "unknown event type"),
		({"type": "record", "doctype": "Lead", "when": "2026-09-01"}, "needs 'name'"),
		({"type": "record", "doctype": "Lead", "name": "A", "when": "yesterday"}, "not a date and time"),
		({"type": "assignment", "doctype": "Lead", "name": "A", "when": "2026-09-01"}, "needs 'to'"),
		({"type": "email", "doctype": "Lead", "name": "A", "when": "2026-09-01"}, "'template' or 'subject'"),
		({"type": "record", "doctype": "Lead", "name": "A", "when": "2026-09-01", "doc": [1]}, "JSON object"),
	],
)
def test_bad_events_are_refused_by_position(event, message):
	with pytest.raises(mining.HistoryError, match=message):
		mining.mine([event])


# -- the offline command ------------------------------------------------------------------------


def test_suggest_on_the_shipped_sample(capsys):
	assert cli.main(["suggest", "--history", "leads"]) == 0
	out = capsys.readouterr().out
	assert (
		"New Lead with territory = North: assigned by hand to zhou@example.com (90.0% of 30, 27 times)" in out
	)
	assert "e-mail “Quote Follow Up” sent by hand (88.9% of 45, 40 times)" in out
	assert out.count("\n\n") == 6  # six proposals, no noise
	assert "problem:" not in out


def test_suggest_json_and_pack(tmp_path, capsys, meta):
	pack = tmp_path / "proposed.json"
	assert (
		cli.main(
			[
				"suggest",
				"--history",
				"leads",
				"--format",
				"json",
				"--min-confidence",
				"0.89",
				"--pack",
				str(pack),
			]
		)
		== 0
	)
	report = json.loads(capsys.readouterr().out)
	assert {p["id"] for p in report["proposals"]} == {
		EXPECTED_IDS["assign_north"],
		EXPECTED_IDS["opportunity_owner"],
	}
	written = json.loads(pack.read_text())
	assert len(written["workflow_rules"]) == 2
	assert not check_pack(written, meta.get).problems


def test_suggest_writes_and_reads_its_own_file_format(tmp_path, capsys):
	path = tmp_path / "history.jsonl"
	write_jsonl(path, history(leads=80, opportunities=0, seed=5))
	assert cli.main(["suggest", "--history", str(path), "--min-support", "5", "--min-confidence", "80%"]) == 0
	assert "territory = North" in capsys.readouterr().out


@pytest.mark.parametrize(
	"lines,args,message",
	[
		(['{"type": "record"}'], [], ":1: the first line must be the header"),
		(['{"type": "history", "version": 9}'], [], "version 9 is not supported"),
		(['{"type": "history", "version": 1}', "{oops"], [], ":2: not valid JSON"),
		(
			[
				'{"type": "history", "version": 1}',
				'{"type": "record", "doctype": "Lead", "name": "A", "when": "soon"}',
			],
			[],
			":2.when: 'soon' is not a date",
		),
		(
			['{"type": "history", "version": 1}'],
			["--min-confidence", "lots"],
			"--min-confidence: 'lots' is not a share",
		),
		(['{"type": "history", "version": 1}'], ["--min-confidence", "150"], "not between 0 and 100%"),
		(
			['{"type": "history", "version": 1}'],
			["--min-support", "-3"],
			"--min-support: '-3' is not a whole number",
		),
	],
)
def test_suggest_refuses_bad_input_with_its_place(tmp_path, capsys, lines, args, message):
	path = tmp_path / "bad.jsonl"
	path.write_text("\n".join(lines) + "\n")
	assert cli.main(["suggest", "--history", str(path), *args]) == cli.EXIT_REFUSED
	err = capsys.readouterr().err
	assert message in err
	assert "Traceback" not in err


def test_suggest_on_a_missing_file(capsys):
	assert cli.main(["suggest", "--history", os.path.join("no", "such.jsonl")]) == cli.EXIT_REFUSED
	assert "no such file" in capsys.readouterr().err


def test_an_email_counts_after_a_transition_only_within_the_window():
	def lead(name, hours_after):
		return [
			{
				"type": "record",
				"doctype": "Lead",
				"name": name,
				"when": "2026-09-01 10:00:00",
				"doc": {"status": "Open"},
			},
			{
				"type": "change",
				"doctype": "Lead",
				"name": name,
				"when": "2026-09-02 10:00:00",
				"field": "status",
				"old": "Open",
				"new": "Replied",
			},
			{
				"type": "email",
				"doctype": "Lead",
				"name": name,
				"when": f"2026-09-02 {10 + hours_after}:00:00",
				"subject": "Hi",
			},
		]

	events = lead("A", 3) + lead("B", 13)
	found = mining.mine(events, min_support=1, min_confidence=0.1, window_hours=12)
	[proposal] = [p for p in found["proposals"] if p["family"] == "after"]
	assert (proposal["support"], proposal["observed"]) == (1, 2)
	found = mining.mine(events, min_support=1, min_confidence=0.1, window_hours=14)
	[proposal] = [p for p in found["proposals"] if p["family"] == "after"]
	assert (proposal["support"], proposal["observed"]) == (2, 2)


def test_the_order_of_documents_does_not_change_the_figures(events):
	import random

	blocks = {}
	for event in events:
		blocks.setdefault((event["doctype"], event["name"]), []).append(event)
	order = list(blocks)
	random.Random(13).shuffle(order)
	shuffled = [event for key in order for event in blocks[key]]
	assert run(shuffled)["proposals"] == run(events)["proposals"]


_JSON_VALUES = None


def _json_values():
	from hypothesis import strategies as st

	scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
	return st.recursive(
		scalars,
		lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
		max_leaves=6,
	)


def test_any_json_in_an_event_is_mined_or_refused_by_name():
	"""A hand-made history file may hold anything: the miner answers with HistoryError, never a
	traceback."""
	from hypothesis import given, settings
	from hypothesis import strategies as st

	field_values = _json_values()
	event = st.fixed_dictionaries(
		{
			"type": st.sampled_from(mining.EVENT_TYPES),
			"doctype": st.sampled_from(["Lead", "Lead", 7, ["Lead"]]),
			"name": st.sampled_from(["A", "B", 3, None, {"x": 1}]),
			"when": st.sampled_from(["2026-09-01 10:00:00", "2026-09-02", "x", 5]),
		},
		optional={
			key: field_values
			for key in (
				"who",
				"to",
				"field",
				"old",
				"new",
				"doc",
				"template",
				"subject",
				"description",
				"text",
				"automated",
				"message",
				"to_field",
			)
		},
	)

	@settings(max_examples=300, deadline=None)
	@given(st.lists(event, max_size=6))
	def check(events):
		events = sorted(events, key=lambda e: str(e["name"]))
		try:
			report = mining.mine(events, min_support=1, min_confidence=0.1)
		except mining.HistoryError:
			return
		for proposal in report["proposals"]:
			json.dumps(proposal)

	check()


def test_two_conditions_on_the_same_documents_are_one_proposal_with_an_alternative():
	events = []
	for i in range(50):
		north = i % 2 == 0
		name = f"L{i:03d}"
		doc = {"territory": "North" if north else "South", "region": "N" if north else "S"}
		events.append(
			{"type": "record", "doctype": "Lead", "name": name, "when": "2026-09-01 10:00:00", "doc": doc}
		)
		to = "zhou@x" if north else ("li@x" if i % 4 == 1 else "ben@x")
		events.append(
			{
				"type": "assignment",
				"doctype": "Lead",
				"name": name,
				"when": "2026-09-01 10:05:00",
				"who": "m",
				"to": to,
			}
		)
	report = mining.mine(events, min_support=10, min_confidence=0.8)
	zhou = [p for p in report["proposals"] if p["action"].get("user") == "zhou@x"]
	assert len(zhou) == 1
	assert zhou[0]["condition"] == {"field": "region", "value": "N"}
	assert zhou[0]["alternatives"] == [{"field": "territory", "value": "North"}]
	assert (zhou[0]["support"], zhou[0]["observed"]) == (25, 25)


def test_work_after_the_end_of_the_history_is_not_counted():
	events = []
	for name in ("A", "B"):
		events.append(
			{"type": "record", "doctype": "Lead", "name": name, "when": "2026-09-01 10:00:00", "doc": {}}
		)
		events.append(
			{
				"type": "todo",
				"doctype": "Lead",
				"name": name,
				"when": "2026-09-04 11:00:00",
				"description": "Call",
			}
		)
	ended_before = mining.mine(events, min_support=1, min_confidence=0.1, until="2026-09-04 10:30:00")
	assert not [p for p in ended_before["proposals"] if p["action_type"] == "Create ToDo"]
	ended_after = mining.mine(events, min_support=1, min_confidence=0.1, until="2026-09-05 00:00:00")
	[proposal] = [p for p in ended_after["proposals"] if p["action_type"] == "Create ToDo"]
	assert (proposal["support"], proposal["observed"], proposal["action"]["days"]) == (2, 2, 3)


@pytest.mark.parametrize(
	"data,message",
	[
		(b'{"type": "history", "version": 1}\n\xff\xfe{"type"}\n', ":2: not UTF-8 text"),
		(b'{"type": "history", "version": 1}\n[1, 2]\n', ":2: an event is a JSON object"),
		(b"", "empty: no header line"),
		(
			b'{"type": "history", "version": 1}\n{"type": "record", "doctype": "Lead", "name": "A", "when": "2026-09-01", "who": 5}\n',
			":2.who: 5 is not text",
		),
	],
)
def test_suggest_refuses_a_broken_file_in_one_line(tmp_path, capsys, data, message):
	path = tmp_path / "broken.jsonl"
	path.write_bytes(data)
	assert cli.main(["suggest", "--history", str(path)]) == cli.EXIT_REFUSED
	err = capsys.readouterr().err
	assert message in err
	assert len(err.strip().splitlines()) == 1


def test_a_history_file_with_a_byte_order_mark_is_read(tmp_path, capsys):
	path = tmp_path / "bom.jsonl"
	path.write_bytes(
		b"\xef\xbb\xbf"
		+ pathlib.Path(cli.__file__).parent.with_name("samples").joinpath("history", "leads.jsonl").read_bytes()
	)
	assert cli.main(["suggest", "--history", str(path)]) == 0
	assert "territory = North" in capsys.readouterr().out
