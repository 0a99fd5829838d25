"""Every evaluation has a budget (engine/budget.py, issue 20): a `like` pattern matches in linear time,
a template or an Advanced Condition that tries to run for ever or build a huge value is stopped
while it runs, with the reason, and ordinary templates and conditions are unchanged.

Where the point is "it stops", the tests count work (steps, traced lines) rather than time; the few
that need time use bounds far above the limit, so a busy machine does not fail them.
"""

import json
import os
import re
import signal
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crm_automation.engine import budget
from crm_automation.engine.budget import MAX_STEPS, MAX_VALUE_LENGTH, Overrun, run_budget
from crm_automation.engine.expressions import ExpressionError, evaluate_expression
from crm_automation.engine.fieldtypes import ValueTypeError
from crm_automation.engine.operators import MAX_LIKE_PATTERN_LENGTH, like_matcher
from crm_automation.engine.template_check import check_template
from crm_automation.engine.templates import SAFE_GLOBALS, TemplateError, render_template
from crm_automation.offline.simulator import SAMPLES, simulate

TOO_LONG = f"a value longer than {MAX_VALUE_LENGTH} characters is not allowed"


# ------------------------------------------------------------------------------------------------
# like


def regex_like(pattern):
	"""The matcher `like` used before: SQL LIKE as a regular expression. With \\Z where it had `$`,
	which also let a text end in one extra newline (SQL LIKE does not)."""
	text = str(pattern)
	if "%" not in text and "_" not in text:
		text = f"%{text}%"
	regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in text)
	return re.compile(f"^{regex}\\Z", re.IGNORECASE | re.DOTALL).match


# Letters in several cases (Turkish i, long s, Greek sigmas, Kelvin sign), wildcards, regex syntax.
LETTERS = "aAbBiIıİsSſkKKσςΣßẞé\\.*[(\n "
PATTERNS = st.text(alphabet=LETTERS + "%_", max_size=8)
TEXTS = st.text(alphabet=LETTERS + "%_", max_size=12)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PATTERNS, TEXTS)
def test_like_matches_as_the_regular_expression_did(pattern, text):
	assert (like_matcher(pattern)(text) is not None) == (regex_like(pattern)(text) is not None)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab%_", max_size=10), st.text(alphabet="ab", max_size=30))
def test_like_on_a_small_alphabet_where_wildcards_meet_often(pattern, text):
	assert (like_matcher(pattern)(text) is not None) == (regex_like(pattern)(text) is not None)


def test_like_examples():
	assert like_matcher("acme")("The ACME Corp")
	assert like_matcher("acme%")("Acme Corp") and not like_matcher("acme%")("The Acme")
	assert like_matcher("%corp")("ACME CORP") and not like_matcher("%corp")("Corp Ltd")
	assert like_matcher("9_")("91") and not like_matcher("9_")("9") and not like_matcher("9_")("912")
	assert like_matcher("a%b%c")("a-x-b-y-c") and not like_matcher("a%b%c")("a-c-b")
	assert like_matcher("%a_c%")("xxabcxx") and not like_matcher("%a_c%")("xxacxx")
	assert like_matcher("100%")("100 units") and like_matcher("\\%")("\\ anything")
	assert like_matcher("%")("") and not like_matcher("_")("")


def _traced_lines(function, *args):
	"""How many lines of the matcher run for one call: the work done, whatever the machine."""
	count = 0
	source = os.path.join("engine", "operators.py")

	def tracer(frame, event, _arg):
		nonlocal count
		if frame.f_code.co_filename.endswith(source):
			if event == "line":
				count += 1
			return tracer
		return None

	sys.settrace(tracer)
	try:
		function(*args)
	finally:
		sys.settrace(None)
	return count


@pytest.mark.parametrize(
	"pattern, text",
	[
		("%" * 500 + "X", "a" * 20_000),  # the observed attack: backtracked for minutes as a regex
		("%a" * 400 + "%X", "a" * 20_000),
		("%" + "a%" * 300 + "b", "a" * 20_000),
		("_%" * 400 + "X", "a" * 20_000),
		("%" + "a_" * 300 + "b%", "a" * 20_000),  # `_` inside a part: the shift-and scan
		("%_a_a_a_b%", "ab" * 10_000),
	],
)
def test_pathological_like_patterns_take_linear_work(pattern, text):
	matcher = like_matcher(pattern)
	lines = _traced_lines(matcher, text)
	assert matcher(text) is None
	# A regular expression tried each % at each position: len(text) ** (number of %). Here the work
	# grows with the text once (and the pattern once): well under 10 lines per character.
	assert lines <= 10 * (len(text) + len(pattern)), lines


def test_like_work_grows_linearly_with_the_text():
	matcher = like_matcher("%" + "a_" * 50 + "b%")
	small, large = (_traced_lines(matcher, "a" * n) for n in (2_000, 20_000))
	assert large <= 11 * small


def test_a_very_long_like_pattern_is_refused_at_compile_time():
	with pytest.raises(ValueTypeError, match="at most"):
		like_matcher("a" * (MAX_LIKE_PATTERN_LENGTH + 1))


# ------------------------------------------------------------------------------------------------
# Templates


def steps_refused(template, doc):
	with pytest.raises(TemplateError, match=f"more than {MAX_STEPS} steps"):
		render_template(template, doc)


def test_three_nested_loops_stop_after_the_step_budget():
	doc = {"s": "x" * 1000}
	nested = (
		"{% for a in doc.s %}{% for b in doc.s %}{% for c in doc.s %}x{% endfor %}{% endfor %}{% endfor %}"
	)
	steps_refused(nested, doc)
	steps_refused(nested.replace("x{%", "{%"), doc)  # writing nothing takes steps too
	steps_refused("{% for a in doc.s %}{% for b in doc.s %}{{ a ~ b }}{% endfor %}{% endfor %}", doc)


def test_a_budget_is_counted_in_steps_not_time(monkeypatch):
	"""The same template stops after the same number of steps on any machine."""
	monkeypatch.setattr(budget, "EVALUATION_SECONDS", 600)  # however slow the machine is today
	counted = []
	original = budget.Meter.step

	def counting(meter):
		counted.append(1)
		original(meter)

	budget.Meter.step = counting
	try:
		with pytest.raises(TemplateError):
			render_template(
				"{% for a in doc.s %}{% for b in doc.s %}{% endfor %}{% endfor %}", {"s": "x" * 1000}
			)
	finally:
		budget.Meter.step = original
	assert len(counted) == MAX_STEPS + 1


@pytest.mark.parametrize(
	"template",
	[
		"{% set a = doc.s * 10000 %}{% set a = a * 10000 %}{{ a|length }}",  # 100,000,000 characters
		"{% set a = doc.s ~ doc.s %}" + "{% set a = a ~ a %}" * 30 + "{{ a|length }}",
		"{% set a = doc.s + doc.s %}" + "{% set a = a + a %}" * 30 + "{{ a|length }}",
		"{% set n = 100000000 %}{{ doc.s * n }}",
		"{{ ''.zfill(100000000) }}",
		"{{ ''.ljust(100000000) }}{{ ''.rjust(100000000) }}",
		"{{ ''.center(100000000) }}",
		"{{ '%0100000000d' % 0 }}",
		"{{ '%0*d' % (100000000, 0) }}",
		"{{ '%.*f' % (100000000, 1.5) }}",
		"{{ '{:>100000000}'.format(1) }}",
		"{{ '{:>{}}'.format(1, 100000000) }}",
		"{{ '{x:>100000000}'.format_map({'x': 1}) }}",
		"{{ 'a\tb'.expandtabs(100000000) }}",
		"{{ (doc.s * 1000).replace('x', doc.s * 100) }}",
		"{{ ''.replace('', doc.s * 1000) }}{{ (doc.s * 2000).replace('', doc.s) }}",
		"{{ (doc.s * 1000).join(doc.s * 1000) }}",
		"{{ (doc.s * 1000).translate({120: doc.s * 100}) }}",
		"{{ (2).to_bytes(100000000, 'big')|length }}",
		"{{ ''|center(100000000) }}",
		"{{ 'a\nb'|indent(100000000, true) }}",
		"{{ '%0100000000d'|format(0) }}",
		"{{ (doc.s * 1000)|join(doc.s * 100) }}",
		"{{ (doc.s * 100)|wordwrap(1, true, doc.s * 100) }}",
		"{{ (doc.s * 100)|replace('x', doc.s * 1000) }}",
		"{{ [1]|batch(100000000, 0)|list|length }}",
		"{{ [1]|slice(100000000)|list|length }}",
		"{{ (doc.s,) * 1000000 }}",
	],
)
def test_size_bombs_are_stopped_while_rendering(template):
	doc = {"s": "x" * 1000}
	started = time.monotonic()
	with pytest.raises(TemplateError, match=TOO_LONG + " in a template"):
		render_template(template, doc)
	assert time.monotonic() - started < budget.EVALUATION_SECONDS * 5


def test_writing_more_than_the_budget_is_stopped_even_inside_a_block():
	doc = {"s": "x" * 1000}
	doubling = "{% set a %}{{ doc.s }}{{ doc.s }}{% endset %}" + "{% set a %}{{ a }}{{ a }}{% endset %}" * 30
	with pytest.raises(TemplateError, match=f"wrote more than {budget.MAX_WRITTEN} characters"):
		render_template(doubling + "{{ a|length }}", doc)
	macro = "{% macro m(x) %}{{ x }}{{ x }}{% endmacro %}{% set a = doc.s %}" + "{% set a = m(a) %}" * 30
	with pytest.raises(TemplateError, match="characters"):
		render_template(macro + "{{ a|length }}", doc)


def test_many_values_each_under_the_limit_are_limited_together():
	"""Each padded text is under the size limit; a million of them joined would not be."""
	with pytest.raises(TemplateError, match=f"built values of more than {budget.MAX_BUILT} characters"):
		render_template("{{ (doc.s * 100)|map('center', 999999)|join|length }}", {"s": "x" * 1000})


@pytest.mark.parametrize(
	"template, reason",
	[
		("{{ 99999 ** 99999 }}", "number of more than"),
		("{% set n = 10 ** 300 %}{{ n * n * n * n * n }}", "number of more than"),
		("{% macro m(n) %}{{ m(n) }}{{ m(n) }}{% endmacro %}{{ m(1) }}", "calls itself too deeply"),
		("{% for c in doc.s recursive %}{{ loop(doc.s) }}{% endfor %}", "recursive loops are not available"),
		("{{ [[1], [2]]|sum(start=[]) }}", "adds up numbers only"),
		("{{ doc|tojson(100000) }}", "tojson indents"),
	],
)
def test_other_bombs_are_refused_with_their_reason(template, reason):
	with pytest.raises(TemplateError, match=re.escape(reason)):
		render_template(template, {"s": "x" * 100})


def test_recursive_loops_are_refused_when_the_rule_is_saved():
	with pytest.raises(TemplateError, match="recursive loops"):
		check_template("{% for c in doc.items recursive %}{{ loop(c.items) }}{% endfor %}")


SLOW = "{% for a in doc.s %}{{ (doc.t|list|sort)|length }}{% endfor %}"
SLOW_DOC = {"s": "x" * 1000, "t": "".join(chr(65 + (i * 7919) % 50) for i in range(50_000))}


def test_a_slow_template_stops_after_the_run_budget():
	started = time.monotonic()
	with run_budget(0.2) as run, pytest.raises(TemplateError, match=r"time budget of 0\.2 s"):
		render_template(SLOW, SLOW_DOC)
	assert time.monotonic() - started < 0.2 * 5 + 1
	assert run.exhausted
	# Once the run's budget is spent, its next template does not start.
	with run_budget(0.2) as run:
		run.spent = 0.2
		with pytest.raises(TemplateError, match="time budget"):
			render_template("{{ 1 }}", {})


def test_the_time_budget_holds_where_no_timer_can_be_set():
	"""Interval timers only work in the main thread: elsewhere the steps check the clock."""
	outcome = []

	def render():
		started = time.monotonic()
		with run_budget(0.2):
			try:
				render_template(SLOW, SLOW_DOC)
				outcome.append("rendered")
			except TemplateError as error:
				outcome.append(error.first.message)
		outcome.append(time.monotonic() - started)

	thread = threading.Thread(target=render)
	thread.start()
	thread.join(30)
	assert "time budget" in outcome[0]
	assert outcome[1] < 0.2 * 5 + 1


def test_a_read_is_never_cut_off_midway():
	"""A database read inside a template finishes; the template stops after it, over its time."""
	finished = []

	def read(doctype, name, fieldname):
		time.sleep(0.5)
		finished.append(name)
		return "value"

	template = "{{ get_value('Customer', 'A', 'customer_name') }}{% for x in doc.s %}{{ x }}{% endfor %}"
	# Compiled once outside the budget, so that on a busy machine the budget is not spent on
	# compiling before the read starts.
	render_template(template, {"s": ""}, read=lambda *_args: "warm")
	with run_budget(0.2), pytest.raises(TemplateError, match="time budget"):
		render_template(template, {"s": "x" * 100}, read=read)
	assert finished == ["A"]


def test_holding_the_timer_leaves_someone_elses_alone():
	"""RQ's job timeout (a SIGALRM timer of its own) keeps running through a template's read."""
	from crm_automation.engine.time_limit import paused, time_limit

	previous = signal.signal(signal.SIGALRM, lambda *_args: None)
	try:
		signal.setitimer(signal.ITIMER_REAL, 5)
		with paused():
			assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
	finally:
		signal.setitimer(signal.ITIMER_REAL, 0)
		signal.signal(signal.SIGALRM, previous)
	with time_limit(5, "ours"):
		with paused():
			assert signal.getitimer(signal.ITIMER_REAL)[0] == 0, "ours is held"
		assert 4 < signal.getitimer(signal.ITIMER_REAL)[0] <= 5, "and armed again after"
	assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def test_the_budget_error_is_not_swallowed_by_the_template():
	"""A template cannot catch its own stop: the error leaves the sandbox whatever the template does."""
	with pytest.raises(TemplateError, match="characters is not allowed"):
		render_template("{{ (''.zfill(100000000)) or 'caught' }}", {})


# Templates a rule writes every day: the metered sandbox renders them exactly as Jinja's own did.
ORDINARY_TEMPLATES = [
	"Hello {{ doc.first_name }}",
	"{% for row in doc.items %}{{ loop.index }}:{{ row.qty }} x {{ row.item_code }}{% if not loop.last %}, {% endif %}{% endfor %}",
	"{% set total = doc.items|sum(attribute='qty') %}Total {{ total }} ({{ '%.2f'|format(total * 1.5) }})",
	"{{ doc.company_name|upper }} {{ doc.company_name|lower|title }} {{ doc.company_name|length }}",
	"{{ doc.get('website') or 'no site' }} {{ len(doc.items) }} {{ max(1, 2) }}",
	"{% if old_doc %}{{ old_doc.company_name }}{% else %}new{% endif %}",
	"{{ doc.notes|striptags }} | {{ doc.notes|replace('<b>', '[')|truncate(20) }}",
	"{{ doc.items|map(attribute='item_code')|join(', ') }}",
	"{{ '%05d' % doc.items|length }} {{ 'x'.zfill(4) }} {{ '{:>6}'.format('ab') }} {{ doc.first_name ~ '!' }}",
	"{{ doc.items|selectattr('qty', 'gt', 2)|list|length }} {{ doc.items|sort(attribute='qty', reverse=true)|first }}",
	"{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}",
	"{{ doc.first_name * 3 }} {{ [1, 2] + [3] }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 1.5 * 2 }}",
	"{{ doc.notes|wordcount }} {{ doc.notes|wordwrap(10) }} {{ doc.notes|indent(2) }}",
	"{{ doc.items|batch(1)|list|length }} {{ [1, 'a']|tojson(2) }} {{ doc.first_name|center(11) }}",
	"{% macro line(r) %}- {{ r.item_code }}{% endmacro %}{% for r in doc.items %}{{ line(r) }}\n{% endfor %}",
	"{% filter upper %}shout {{ doc.first_name }}{% endfilter %}",
	"plain text, no template",
]
ORDINARY_DOC = {
	"first_name": "Asha",
	"company_name": "pune pumps ltd",
	"website": None,
	"notes": "<b>Called</b> on Monday, <i>interested</i> in pumps &amp; valves",
	"items": [{"item_code": "P-1", "qty": 2}, {"item_code": "V-7", "qty": 5}],
}


@pytest.mark.parametrize("template", ORDINARY_TEMPLATES)
def test_ordinary_templates_render_as_before(template):
	from crm_automation.engine.templates import as_read_only

	plain = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=False)
	plain.globals.clear()
	plain.globals.update(SAFE_GLOBALS)
	if "{" in template:
		expected = plain.from_string(template).render(doc=as_read_only(ORDINARY_DOC), old_doc=None)
	else:
		expected = template
	check_template(template)
	assert render_template(template, ORDINARY_DOC) == expected


# ------------------------------------------------------------------------------------------------
# Advanced Conditions


@pytest.mark.parametrize(
	"expression",
	[
		'"".zfill(100000000) == ""',
		"doc.name.zfill(100000000)",
		'"%0100000000d" % 0',
		'"%0*d" % (100000000, 0)',
		'"%.*f" % (100000000, 1.0)',
		'("x" * 10000 * 10000)',
		'("x" * 10000).replace("x", "y" * 1000)',
		'doc.name.replace("", "y" * 1000000)',
		'("x" * 10000) * 10000',
		"(doc.big + doc.big)",
	],
)
def test_condition_size_bombs_are_refused_while_running(expression):
	started = time.monotonic()
	with pytest.raises(ExpressionError, match=TOO_LONG + " in a condition|repeating a value"):
		evaluate_expression(expression, {"name": "Acme", "big": "x" * 600_000})
	assert time.monotonic() - started < budget.EVALUATION_SECONDS * 5


@pytest.mark.parametrize("method", ["ljust", "rjust", "center", "format", "join", "expandtabs", "format_map"])
def test_conditions_cannot_call_the_padding_and_formatting_methods(method):
	with pytest.raises(ExpressionError, match="not allowed"):
		evaluate_expression(f'"x".{method}(100000000)', {})


@pytest.mark.parametrize(
	"text, method, args",
	[
		("", "zfill", (100_000_000,)),
		("", "ljust", (100_000_000,)),
		("", "rjust", (100_000_000, "-")),
		("", "center", (100_000_000,)),
		("a\tb", "expandtabs", (100_000_000,)),
		("{:>100000000}", "format", (1,)),
		("{:>{}}", "format", (1, 100_000_000)),
		(",", "join", (("x" * 1000,) * 1001,)),
		("x" * 10_000, "replace", ("x", "y" * 1000)),
		("x" * 10_000, "translate", ({120: "y" * 1000},)),
		(b"", "zfill", (100_000_000,)),
	],
)
def test_every_text_method_that_can_grow_a_value_is_checked_before_it_runs(text, method, args):
	with pytest.raises(Overrun):
		budget.check_call(getattr(text, method), args, {})


def test_the_check_passes_what_fits():
	budget.check_call("x".zfill, (10,), {})
	budget.check_call("{:>10}".format, (1,), {})
	budget.check_call(",".join, (("a", "b"),), {})
	budget.check_percent_format("%05d of %s", (3, "x"))
	budget.check_percent_format("%d%%", 5)
	budget.check_binop("*", "ab", 1000)
	budget.check_binop("**", 2, 1000)


def test_percent_format_is_read_in_one_pass():
	"""Reading a format's widths must not itself be slow on a hostile format."""
	started = time.monotonic()
	budget.check_percent_format("%(" * 200_000, ())
	budget.check_percent_format("%" * 400_000, ())
	assert time.monotonic() - started < 5


def test_a_condition_stops_when_the_run_budget_is_spent():
	with run_budget(0.1) as run:
		run.spent = 0.1
		with pytest.raises(ExpressionError, match=r"time budget of 0\.1 s"):
			evaluate_expression("doc.name == 'Acme'", {"name": "Acme"})


@pytest.mark.parametrize(
	"expression, expected",
	[
		('"%05d" % 3 == "00003"', True),
		("doc.name.zfill(6)", "00Acme"),
		('doc.name.replace("A", "a") + "!"', "acme!"),
		('"-" * 3', "---"),
		("999999999999 * 999999999999", 999999999998000000000001),
		("len(doc.items) * 2", 4),
	],
)
def test_ordinary_conditions_are_unchanged(expression, expected):
	assert evaluate_expression(expression, {"name": "Acme", "items": [1, 2]}) == expected


# ------------------------------------------------------------------------------------------------
# The offline simulator


def test_the_simulator_stops_a_bomb_in_a_pack_and_goes_on():
	with open(os.path.join(SAMPLES, "packs", "lead_management.json")) as handle:
		pack_format = json.load(handle)["format"]
	pack = {
		"format": pack_format,
		"version": 1,
		"name": "bombs",
		"workflow_rules": [
			{
				"rule_name": "Loop bomb",
				"document_type": "Lead",
				"trigger": "New",
				"actions": [
					{
						"action_type": "Add Comment",
						"message": "{% for a in doc.company_name * 100 %}{% for b in doc.company_name * 100 %}"
						"{% for c in doc.company_name %}x{% endfor %}{% endfor %}{% endfor %}",
					}
				],
			},
			{
				"rule_name": "Size bomb",
				"document_type": "Lead",
				"trigger": "New",
				"actions": [
					{
						"action_type": "Add Comment",
						"message": "{% set a = doc.company_name * 10000 %}{{ (a * 10000)|length }}",
					}
				],
			},
			{
				"rule_name": "Fine",
				"document_type": "Lead",
				"trigger": "New",
				"actions": [{"action_type": "Add Comment", "message": "Hello {{ doc.first_name }}"}],
			},
		],
	}
	report, problems = simulate(pack, os.path.join(SAMPLES, "records", "leads.csv"))
	assert problems == []
	first = {rule["rule"]: rule for rule in report[0]["rules"]}
	assert "steps" in first["Loop bomb"]["actions"][0]["message"]
	assert "characters is not allowed" in first["Size bomb"]["actions"][0]["message"]
	assert first["Fine"]["actions"][0]["message"] == "Hello Asha"
