"""get_value in conditions and templates, as the engine sees it: arguments checked, reads cached and
capped, nothing read where no reader is given, and the reads a rule writes out found for the save
check (engine/reads.py). The site's reader is tested on a bench (crm_automation/tests/test_rule_reads.py)."""

import pytest

from crm_automation.engine.expressions import (
	ExpressionError,
	check_expression,
	evaluate_expression,
	reads_in_expression,
)
from crm_automation.engine.reads import MAX_READS
from crm_automation.engine.template_check import check_template, reads_in_template
from crm_automation.engine.templates import TemplateError, render_template
from crm_automation.offline.linked_record_files import reader as linked_reader

CUSTOMERS = {
	"Customer": {"CUST-1": {"territory": "North", "customer_group": "Key"}, "CUST-2": {"territory": "South"}}
}


class CountingReader:
	def __init__(self, records):
		self.read = linked_reader(records)
		self.calls = []

	def __call__(self, doctype, name, fieldname):
		self.calls.append((doctype, name, fieldname))
		return self.read(doctype, name, fieldname)


def test_a_template_reads_a_linked_value():
	text = "{{ get_value('Customer', doc.customer, 'territory') }}"
	assert render_template(text, {"customer": "CUST-1"}, read=linked_reader(CUSTOMERS)) == "North"


def test_a_condition_reads_a_linked_value():
	expression = "get_value('Customer', doc.customer, 'territory') == 'North'"
	read = linked_reader(CUSTOMERS)
	assert evaluate_expression(expression, {"customer": "CUST-1"}, None, read) is True
	assert evaluate_expression(expression, {"customer": "CUST-2"}, None, read) is False


def test_a_missing_record_and_an_empty_link_read_as_none_without_a_read():
	reader = CountingReader(CUSTOMERS)
	assert (
		render_template(
			"[{{ get_value('Customer', doc.customer, 'territory') }}]", {"customer": None}, read=reader
		)
		== "[None]"
	)
	assert reader.calls == []
	assert render_template("[{{ get_value('Customer', 'NOPE', 'territory') }}]", {}, read=reader) == "[None]"


def test_filters_find_the_first_matching_record():
	read = linked_reader(CUSTOMERS)
	assert render_template("{{ get_value('Customer', {'territory': 'South'}) }}", {}, read=read) == "CUST-2"
	condition = "get_value('Customer', {'territory': 'North', 'customer_group': 'Key'}, 'name') == 'CUST-1'"
	assert evaluate_expression(condition, {}, None, read) is True


def test_the_same_read_twice_is_read_once():
	reader = CountingReader(CUSTOMERS)
	text = (
		"{{ get_value('Customer', 'CUST-1', 'territory') }}{{ get_value('Customer', 'CUST-1', 'territory') }}"
	)
	assert render_template(text, {}, read=reader) == "NorthNorth"
	assert len(reader.calls) == 1


def test_reads_are_capped_per_evaluation():
	numbers = ",".join(str(i) for i in range(MAX_READS + 5))
	text = "{% for i in [" + numbers + "] %}{{ get_value('Customer', 'C' ~ i, 'territory') }}{% endfor %}"
	reader = CountingReader(CUSTOMERS)
	with pytest.raises(TemplateError, match=f"at most {MAX_READS}"):
		render_template(text, {}, read=reader)
	assert len(reader.calls) == MAX_READS


def test_without_a_reader_nothing_is_read_and_the_reason_is_given():
	with pytest.raises(TemplateError, match="cannot read records here"):
		render_template("{{ get_value('Customer', 'CUST-1', 'territory') }}", {})
	with pytest.raises(ExpressionError, match="cannot read records here"):
		evaluate_expression("get_value('Customer', 'CUST-1', 'territory')", {})


@pytest.mark.parametrize(
	"call, reason",
	[
		("get_value(1, 'CUST-1', 'territory')", "doctype must be a text"),
		("get_value('Customer', 'CUST-1', 3)", "fieldname must be a text"),
		("get_value('', 'CUST-1', 'territory')", "doctype must be a text"),
		("get_value('Customer', ['CUST-1'], 'territory')", "name must be a text or a dict"),
		("get_value('Customer', {}, 'territory')", "at least one field"),
		("get_value('Customer', {'territory': ['North']}, 'name')", "must be a plain value"),
	],
)
def test_bad_arguments_fail_with_the_argument_named(call, reason):
	with pytest.raises(ExpressionError, match=reason):
		evaluate_expression(call, {}, None, linked_reader(CUSTOMERS))


def test_a_reader_that_returns_something_writable_still_cannot_be_written_through():
	"""Whatever a reader returns, a template can only show it: the sandbox refuses mutation."""
	read = lambda doctype, name, fieldname: ["a"]  # noqa: E731
	with pytest.raises(TemplateError):
		render_template("{{ get_value('X', 'y', 'z').append('b') }}", {}, read=read)


def test_get_value_passes_the_save_checks_and_nothing_else_new_does():
	check_template("{{ get_value('Customer', doc.customer, 'territory') }}")
	check_expression("get_value('Customer', doc.customer, 'territory') == 'North'")
	with pytest.raises(ExpressionError):
		check_expression("get_value.__globals__")
	with pytest.raises(TemplateError):
		check_template("{{ get_value.__globals__ }}")


def test_written_out_reads_are_found_for_the_save_check():
	assert reads_in_template(
		"{{ get_value('Customer', doc.customer, 'territory') }}{{ get_value('User', {'email': doc.x}) }}"
		"{{ get_value('Item', doc.item, fieldname='item_name') }}{{ get_value(doc.kind, 'x', 'y') }}"
	) == [("Customer", "territory", ()), ("User", "name", ("email",)), ("Item", "item_name", ())]
	found = reads_in_expression(
		"get_value('Customer', {'territory': 'N'}, 'customer_group') and get_value(doc.x, 'y')"
	)
	assert found == [("Customer", "customer_group", ("territory",))]


def test_the_simulator_reader_reads_the_linked_records_file():
	read = linked_reader(CUSTOMERS)
	assert read("Customer", "CUST-1", "customer_group") == "Key"
	assert read("Customer", "CUST-1", "name") == "CUST-1"
	assert read("Customer", "CUST-9", "territory") is None
	assert read("Territory", "North", "name") is None
