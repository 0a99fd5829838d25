"""Advanced Conditions and rule templates are read-only: the pure checks and evaluator (no frappe)."""

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_automation.engine.expressions import (
	EXPRESSION_HELPERS,
	ExpressionError,
	check_expression,
	evaluate_expression,
)
from crm_automation.engine.template_check import check_template
from crm_automation.engine.templates import SAFE_GLOBALS, TemplateError, render_template


class LiveDocument:
	"""Stands for a Frappe Document: methods that write, which nothing may reach."""

	def __init__(self):
		self.deleted = False
		self.company_name = "Acme"

	def delete(self):
		self.deleted = True

	def as_dict(self):
		return {"company_name": self.company_name, "items": [{"qty": 2}, {"qty": 3}], "mobile_no": "123"}


DOC = {
	"name": "CRM-LEAD-1",
	"company_name": "Acme Ltd",
	"mobile_no": "01234567890",
	"website": None,
	"creation": datetime.datetime(2026, 1, 2, 3, 4, 5),
	"items": [{"item_code": "A", "qty": 2}, {"item_code": "B", "qty": 3}],
}

CONDITION_ESCAPES = [
	"doc.delete()",
	"doc.db_set('company_name', 'PWNED') or True",
	"doc.save()",
	"old_doc.delete()",
	"frappe.db.commit()",
	"getattr(doc, 'delete')()",
	"(lambda: 1)()",
	"[x for x in doc.items]",
	"{x for x in doc.items}",
	"any(x for x in doc.items)",
	"__import__('os')",
	"doc.__class__",
	"doc.company_name.__class__",
	"type(doc)",
	"(x := 1)",
	"{**doc}",
	"f'{doc}'",
	"doc.company_name.format(doc)",
	"2 ** 1000",
	"print(doc)",
	"doc.get('x', default=1)",
	"max(*doc.items)",
]


@pytest.mark.parametrize("expression", CONDITION_ESCAPES)
def test_condition_escapes_are_refused_before_running(expression):
	with pytest.raises(ExpressionError):
		check_expression(expression)


def test_the_live_document_is_never_reached():
	live = LiveDocument()
	for expression in ("doc.delete", "doc.get('delete')", "doc['delete']"):
		assert evaluate_expression(expression, live) is None
	assert not live.deleted


@pytest.mark.parametrize(
	("expression", "expected"),
	[
		("doc.company_name.lower().startswith('acme')", True),
		("not regex_match(r'\\d{11}', doc.mobile_no)", False),
		("len(doc.items) == 2 and doc.items[1].qty == 3", True),
		("doc.items[0].get('item_code') in ('A', 'C')", True),
		("doc.get('website') or 'none'", "none"),
		("doc.creation.year == 2026 and doc.creation.weekday() == 4", True),
		("old_doc is None", True),
		("any([doc.website, doc.name])", True),
		("int('3') + float('1.5') + round(2.4) + abs(-1)", 7.5),
		("doc.company_name.split(' ')[-1]", "Ltd"),
		("doc.mobile_no[:3]", "012"),
		("'x' if doc.website else 'y'", "y"),
		("1 < len(doc.items) <= 2", True),
	],
)
def test_conditions_read_plain_values(expression, expected):
	assert evaluate_expression(expression, DOC) == expected


def test_a_failure_on_the_data_is_an_expression_error():
	with pytest.raises(ExpressionError, match="NoneType has no allowed method lower"):
		evaluate_expression("doc.website.lower() == 'x'", DOC)
	with pytest.raises(ExpressionError, match="failed on this document"):
		evaluate_expression("doc.items[5]", DOC)
	with pytest.raises(ExpressionError, match="repeating"):
		evaluate_expression("doc.company_name * 100000", DOC)
	with pytest.raises(ExpressionError, match="longer than"):
		evaluate_expression("(doc.company_name * 5000).replace('A', doc.company_name * 5000)", DOC)


def test_conditions_and_templates_share_their_helpers():
	assert set(SAFE_GLOBALS) <= set(EXPRESSION_HELPERS)


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_any_text_is_either_a_condition_or_an_expression_error(text):
	try:
		check_expression(text)
	except ExpressionError:
		return
	try:
		evaluate_expression(text, DOC)
	except ExpressionError:
		pass


TEMPLATE_ESCAPES = [
	"{{ frappe.db.commit() }}",
	"{{ doc.__class__ }}",
	"{{ doc._values }}",
	"{{ doc['__class__'] }}",
	"{{ doc|attr('__class__') }}",
	"{{ doc.items|map(attribute='__class__')|list }}",
	"{{ cycler }}",
	"{{ joiner }}",
	"{{ namespace() }}",
	"{{ lipsum() }}",
	"{{ range(3) }}",
	"{{ dict() }}",
	"{{ self }}",
	"{{ config }}",
	"{{ request }}",
	"{% include 'x' %}",
	"{% import 'x' as y %}",
	"{% from 'x' import y %}",
	"{% extends 'x' %}",
	"{{ doc.name ",
	"{{ 'x' * 1000000000 }}",
	"{{ 10 ** 10 }}",
]


@pytest.mark.parametrize("template", TEMPLATE_ESCAPES)
def test_template_escapes_are_refused_before_rendering(template):
	with pytest.raises(TemplateError):
		check_template(template)


@pytest.mark.parametrize(
	"template",
	[
		"Hello {{ doc.company_name }}",
		"{% for row in doc.items %}{{ loop.index }}:{{ row.qty }} {% endfor %}",
		"{% set total = doc.items|sum(attribute='qty') %}{{ total }}",
		"{{ doc.get('website') or 'no site' }} {{ today() }} {{ len(doc.items) }}",
		"{% if old_doc %}{{ old_doc.company_name }}{% endif %}",
		"plain text",
	],
)
def test_legitimate_templates_pass_the_check(template):
	check_template(template)
	render_template(template, DOC)
