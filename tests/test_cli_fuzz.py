"""Fuzzers for the command line and the pack and record loaders: whatever the files hold, the
command either runs (exit 0) or refuses with located one-line problems (exit 2), never a traceback.

Deterministic (derandomize) and bounded so tier 1 stays fast; raise FUZZ_EXAMPLES to dig deeper:
FUZZ_EXAMPLES=5000 python -m pytest tests/test_cli_fuzz.py
"""

import contextlib
import copy
import io
import json
import os
import re
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_automation.engine.packs import check_pack
from crm_automation.offline import record_files
from crm_automation.offline.cli import main
from crm_automation.offline.simulator import SAMPLES, load_meta

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
FUZZ = settings(
	max_examples=EXAMPLES,
	derandomize=True,
	deadline=None,
	suppress_health_check=list(HealthCheck),
	database=None,
)
FOLDER = tempfile.mkdtemp(prefix="crm-automation-fuzz-")
META = load_meta()
PACKS = {
	name: json.load(open(os.path.join(SAMPLES, "packs", f"{name}.json")))
	for name in ("lead_management", "sales_pipeline", "support")
}
LOCATED_LINE = re.compile(r"^(\d+ problem\(s\):|  \S.*: .+|\S.*: .+)$")

LEAD_COLUMNS = [
	"doctype",
	"name",
	"first_name",
	"email_id",
	"source",
	"annual_revenue",
	"no_of_employees",
	"unsubscribed",
	"creation",
	"days_idle",
	"activity:Communication",
	"before:source",
	"before",
]
KEYS = st.sampled_from(LEAD_COLUMNS) | st.text(max_size=8)
SCALARS = (
	st.none()
	| st.booleans()
	| st.integers(-(10**20), 10**20)
	| st.floats(allow_nan=True, allow_infinity=True)
	| st.text(max_size=12)
	| st.sampled_from(
		["Lead", "Exhibition", "2026-11-20 10:00:00", "1e400", "NaN", "0", "1", "{{ doc.name }}"]
	)
)
JSON_VALUES = st.recursive(
	SCALARS,
	lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
	max_leaves=12,
)
RECORDS = st.lists(
	st.fixed_dictionaries(
		{"doctype": st.sampled_from(["Lead", "Issue", "Spaceship", ""])},
		optional={key: JSON_VALUES for key in LEAD_COLUMNS[1:]},
	)
	| JSON_VALUES,
	max_size=6,
)
CELL = st.text(alphabet=st.sampled_from([*'ab1.,"\n\r \t-:', "\x00", "é", "\ufeff"]), max_size=10)


def write(name, content):
	path = os.path.join(FOLDER, name)
	with open(path, "wb") as handle:
		handle.write(content if isinstance(content, bytes) else content.encode("utf-8"))
	return path


def run(*argv):
	"""main(argv) with its output captured: (exit code, stdout, stderr); it must not raise."""
	out, err = io.StringIO(), io.StringIO()
	with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
		try:
			code = main(list(argv))
		except SystemExit as exit:  # argparse refusing a usage mistake
			code = exit.code
	return code, out.getvalue(), err.getvalue()


def assert_clean(code, out, err):
	assert code in (0, 2), (code, err)
	if code == 2:
		assert out == ""
		lines = err.rstrip("\n").split("\n")
		assert lines and all(LOCATED_LINE.match(line) for line in lines), err
		assert len(lines) == 1 or lines[0].endswith("problem(s):")
	assert "Traceback" not in err


def simulate(path, *extra):
	result = run(
		"simulate",
		"--pack",
		"lead_management",
		"--records",
		path,
		"--now",
		"2026-11-23 12:00:00",
		"--show",
		"3",
		*extra,
	)
	assert_clean(*result)
	return result


@FUZZ
@given(
	header=st.lists(st.sampled_from(LEAD_COLUMNS) | CELL, min_size=1, max_size=6),
	rows=st.lists(st.lists(CELL, max_size=7), max_size=5),
	junk=st.binary(max_size=6),
)
def test_any_csv_runs_or_is_refused_cleanly(header, rows, junk):
	lines = [",".join(header)] + [",".join(row) for row in rows]
	content = "\n".join(lines).encode("utf-8", "surrogatepass") + junk
	simulate(write("fuzz.csv", content))


@FUZZ
@given(
	records=RECORDS,
	layout=st.sampled_from(["list", "by_doctype", "lines", "raw"]),
	chunk=st.sampled_from([3, 4096]),
)
def test_any_json_records_run_or_are_refused_cleanly(records, layout, chunk):
	if layout == "list":
		path = write("fuzz.json", json.dumps(records, indent=1))
	elif layout == "by_doctype":
		path = write("fuzz.json", json.dumps({"Lead": records, "Issue": records[:1]}))
	elif layout == "lines":
		path = write("fuzz.jsonl", "\n".join(json.dumps(record) for record in records))
	else:
		path = write("fuzz.json", json.dumps(records)[: max(1, len(json.dumps(records)) // 2)])
	original = record_files.CHUNK_BYTES
	record_files.CHUNK_BYTES = chunk
	try:
		simulate(path)
	finally:
		record_files.CHUNK_BYTES = original


@FUZZ
@given(
	content=st.binary(max_size=64) | st.text(max_size=64).map(str.encode),
	suffix=st.sampled_from([".csv", ".json", ".jsonl", ".txt"]),
)
def test_any_bytes_as_records_or_pack_or_meta(content, suffix):
	path = write(f"raw{suffix}", content)
	simulate(path)
	assert_clean(*run("check-pack", path))
	assert_clean(*run("simulate", "--pack", "support", "--records", "issues", "--meta", path))


def nodes(value, path=()):
	yield path
	if isinstance(value, dict):
		for key, child in value.items():
			yield from nodes(child, (*path, key))
	elif isinstance(value, list):
		for index, child in enumerate(value):
			yield from nodes(child, (*path, index))


@FUZZ
@given(name=st.sampled_from(sorted(PACKS)), data=st.data())
def test_any_change_to_a_pack_is_checked_not_crashed(name, data):
	pack = copy.deepcopy(PACKS[name])
	for _ in range(data.draw(st.integers(1, 3))):
		paths = [path for path in nodes(pack) if path]
		path = data.draw(st.sampled_from(paths))
		target = pack
		for step in path[:-1]:
			target = target[step]
		target[path[-1]] = data.draw(JSON_VALUES)
	result = check_pack(pack, META.get)  # must not raise
	assert all(problem.path is not None and problem.message for problem in result.problems)
	path = write("pack.json", json.dumps(pack))
	assert_clean(*run("check-pack", path))
	assert_clean(
		*run(
			"simulate",
			"--pack",
			path,
			"--records",
			{"lead_management": "leads", "sales_pipeline": "opportunities", "support": "issues"}[name],
			"--show",
			"1",
		)
	)


@FUZZ
@given(now=st.text(max_size=20), show=st.text(max_size=4), doctype=st.text(max_size=8))
def test_any_option_values(now, show, doctype):
	assert_clean(
		*run("simulate", "--pack", "lead_management", "--records", "leads", "--now", now, "--show", show)
	)
	assert_clean(
		*run(
			"simulate", "--pack", "lead_management", "--records", "leads", "--doctype", doctype, "--show", "0"
		)
	)


@FUZZ
@given(
	records=st.lists(JSON_VALUES, max_size=8), chunk=st.integers(1, 9), indent=st.sampled_from([None, 0, 2])
)
def test_streamed_json_list_equals_json_load(records, chunk, indent):
	path = write("stream.json", json.dumps(records, indent=indent, ensure_ascii=False))
	original = record_files.CHUNK_BYTES
	record_files.CHUNK_BYTES = chunk
	try:
		streamed = [row for _where, row in record_files.RowSource(path)]
	finally:
		record_files.CHUNK_BYTES = original
	assert json.dumps(streamed) == json.dumps(records)


NASTY = [
	None,
	0,
	-1,
	1.5,
	1e400,
	float("nan"),
	True,
	"",
	"x",
	"New",
	"Lead",
	"{{",
	"1e400",
	"nan",
	"2026-13-45",
	"a\nb",
]
NASTY += [
	[],
	[1],
	["a"],
	{},
	{"a": 1},
	{"all": []},
	{"all": "x"},
	[[]],
	[{}],
	{"field": "name", "op": "=", "value": [1]},
]


def test_seeded_pack_mutations_never_crash():
	"""Many cheap mutations with values known to break naive code (a list where text belongs, a
	number too big for a float, NaN): check_pack reports, never raises."""
	import random

	rng = random.Random(12)
	for _ in range(int(os.environ.get("FUZZ_EXAMPLES", "30")) * 15):
		pack = copy.deepcopy(PACKS[rng.choice(sorted(PACKS))])
		for _ in range(rng.randint(1, 3)):
			path = rng.choice([path for path in nodes(pack) if path])
			target = pack
			for step in path[:-1]:
				target = target[step]
			target[path[-1]] = copy.deepcopy(rng.choice(NASTY))
		for problem in check_pack(pack, META.get).problems:
			assert problem.path is not None and problem.message, problem
