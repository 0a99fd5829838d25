"""Time and size attacks on the pure engine that held when tried (issue 20, attacker review), kept as
tests so they keep holding; and the dry-run dialog's rendering of an action that would fail."""

import json
import pathlib
import re
import subprocess
import sys

import pytest

from crm_automation.engine import budget
from crm_automation.engine.expressions import ExpressionError, evaluate_expression
from crm_automation.engine.templates import TemplateError, render_template

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = {"name": "L1", "first_name": "Ann", "company_name": "a" * 100}


@pytest.mark.parametrize(
	"template",
	[
		"{{ 2**4095 * 2 }}",
		"{% set x = 10**1200 %}{{ x*x*x }}",
		"{{ '%d' % (10**4000) }}",
		"{{ ('ab'*400000)|wordwrap(1) }}",
		"{{ ('http://x.com '*70000)|urlize|length }}",
		"{{ {'a':'<x>'*300000}|xmlattr|length }}",
		"{{ ('<'*900000)|e|e|e|length }}",
		"{{ ('ß'*600000).upper()|length }}",
		"{{ ('ß'*600000).swapcase()|length }}",
		"{{ ('a'*999999).partition('a')|length }}",
		"{{ ('a'*999999)|list|length }}",
		"{{ '{:.999999f}'.format(1.5)|length }}",
		"{% macro m(n) %}{{ m(n) ~ m(n) }}{% endmacro %}{{ m(0) }}",
		"{{ regex_match('(a+)+$', 'a'*40 + 'b') }}",
	],
)
def test_template_bombs_are_refused(template):
	with budget.run_budget(), pytest.raises(TemplateError):
		render_template(template, DOC)


@pytest.mark.parametrize(
	"expression, reason",
	[
		('int("9"*4400)', "Exceeds the limit"),  # int/str conversion limit: reported, not leaked
		('int("9"*1300) * int("9"*1300)', "bits"),
		("(" * 300 + "1" + ")" * 300, "does not run"),
		("-" * 1999 + "1", "nested too deeply"),
		('("a"*999999).splitlines()', "not allowed"),
		('regex_match("((a*)*)*b", doc.company_name * 50)', "regex_match took longer"),
		("((1,)*10000)*10000", "characters is not allowed"),
	],
)
def test_condition_bombs_are_expression_errors(expression, reason):
	with budget.run_budget(), pytest.raises(ExpressionError, match=reason):
		evaluate_expression(expression, DOC)


def test_a_deeply_nested_pack_is_a_problem_not_a_traceback(tmp_path):
	tree = {"field": "first_name", "op": "=", "value": "x"}
	for _ in range(400):
		tree = {"all": [tree]}
	pack = {
		"format": "crm_automation.pack",
		"version": 1,
		"name": "Deep",
		"workflow_rules": [
			{
				"rule_name": "deep",
				"document_type": "Lead",
				"trigger": "New",
				"conditions": tree,
				"actions": [{"action_type": "Set Value", "target_field": "first_name", "value": "x"}],
			},
			{
				"rule_name": "deep text",
				"document_type": "Lead",
				"trigger": "New",
				"conditions": "[" * 100000 + "]" * 100000,
				"actions": [{"action_type": "Set Value", "target_field": "first_name", "value": "x"}],
			},
		],
	}
	path = tmp_path / "deep.json"
	path.write_text(json.dumps(pack))
	command = [sys.executable, "-m", "crm_automation.offline.cli", "simulate", "--pack", str(path)]
	done = subprocess.run(
		[*command, "--records", "leads", "--show", "0", "--no-progress"],
		capture_output=True,
		text=True,
		timeout=120,
		cwd=ROOT,
	)
	assert done.returncode == 2, done.stderr
	assert "Traceback" not in done.stdout + done.stderr
	assert "nested deeper than" in done.stdout + done.stderr


def test_the_dry_run_dialog_marks_a_failing_action_and_shows_it_as_text():
	source = (ROOT / "crm_automation/public/js/condition_builder.js").read_text()
	body = source[source.index("crm_automation.show_dry_run = function") :]
	body = body[: body.index("dialog.show()")]
	assert 'a.status === "Failed"' in body
	# Every value of an action reaches the HTML through esc(); nothing rule-made is put in raw.
	for interpolated in re.findall(r"\$\{([^{}]*a\.[a-z_]+[^{}]*)\}", body):
		if "?" in interpolated:
			continue  # a condition choosing between two escaped parts
		assert interpolated.startswith("esc("), interpolated
