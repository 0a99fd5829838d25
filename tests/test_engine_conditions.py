import datetime

import pytest
from sample_fields import LEAD_FIELDS

from crm_automation.engine import RuleError, compile_condition, describe_operators
from crm_automation.engine.fieldtypes import coerce_document_value, parse_rule_value


def leaf(field, op, value=None):
	node = {"field": field, "op": op}
	if value is not None:
		node["value"] = value
	return node


def matches(tree, doc, before=None):
	return compile_condition(tree, LEAD_FIELDS).matches(doc, before)


class TestOperators:
	@pytest.mark.parametrize(
		"op, value, actual, expected",
		[
			("=", 100, 100.0, True),
			("=", "100", 100, True),
			("!=", 100, 99, True),
			(">", 1000, 1000.01, True),
			(">", 1000, 1000, False),
			(">=", 1000, 1000, True),
			("<", 5, 4.99, True),
			("<=", 5, 5.01, False),
			("in", [1, 2, 3], 2, True),
			("not in", "1, 2, 3", 4, True),
			("between", [10, 20], 20, True),
			("between", [10, 20], 20.5, False),
			("is set", None, 0, False),
			("is set", None, 5, True),
			("is not set", None, None, True),
		],
	)
	def test_numbers(self, op, value, actual, expected):
		assert matches({"all": [leaf("annual_revenue", op, value)]}, {"annual_revenue": actual}) is expected

	def test_like_is_case_insensitive_and_contains_without_wildcards(self):
		tree = {"all": [leaf("lead_name", "like", "acme")]}
		assert matches(tree, {"lead_name": "The ACME Corp"})
		assert not matches({"all": [leaf("lead_name", "like", "acme%")]}, {"lead_name": "The ACME Corp"})
		assert matches({"all": [leaf("lead_name", "like", "acme%")]}, {"lead_name": "Acme Corp"})
		assert matches({"all": [leaf("lead_name", "not like", "%bank%")]}, {"lead_name": "Acme"})
		assert matches({"all": [leaf("mobile_no", "like", "9_")]}, {"mobile_no": "91"})

	def test_dates_and_empty_dates(self):
		tree = {"all": [leaf("expected_close", "<", "2026-01-01")]}
		assert matches(tree, {"expected_close": "2025-12-31"})
		assert matches(tree, {"expected_close": datetime.date(2025, 6, 1)})
		assert not matches(tree, {"expected_close": None}), "an empty date is never before anything"
		assert not matches(tree, {"expected_close": ""})
		between = {"all": [leaf("contact_date", "between", ["2026-01-01 00:00:00", "2026-01-31 23:59:59"])]}
		assert matches(between, {"contact_date": datetime.datetime(2026, 1, 15, 10)})
		assert matches(between, {"contact_date": "2026-01-15 10:00:00.000000"})

	def test_time_from_mariadb_timedelta(self):
		tree = {"all": [leaf("call_time", ">=", "09:30:00")]}
		assert matches(tree, {"call_time": datetime.timedelta(hours=10)})
		assert not matches(tree, {"call_time": datetime.timedelta(hours=9)})

	def test_check_accepts_booleans_and_numbers(self):
		tree = {"all": [leaf("unsubscribed", "=", True)]}
		assert matches(tree, {"unsubscribed": 1})
		assert not matches(tree, {"unsubscribed": 0})
		assert not matches(tree, {"unsubscribed": None})

	def test_text_none_and_empty_are_the_same(self):
		assert matches({"all": [leaf("source", "is not set")]}, {"source": None})
		assert matches({"all": [leaf("source", "is not set")]}, {"source": ""})
		assert matches({"all": [leaf("source", "=", "")]}, {"source": None})
		assert matches({"all": [leaf("source", "is set")]}, {"source": "Website"})

	def test_missing_key_is_empty(self):
		assert matches({"all": [leaf("annual_revenue", "=", 0)]}, {})

	def test_change_operators_compare_with_before(self):
		changed_to = {"all": [leaf("status", "changed to", "Replied")]}
		assert matches(changed_to, {"status": "Replied"}, {"status": "Open"})
		assert not matches(changed_to, {"status": "Replied"}, {"status": "Replied"})
		assert not matches(changed_to, {"status": "Replied"}, None), "a new document has no before state"
		changed_from = {"all": [leaf("status", "changed from", "Open")]}
		assert matches(changed_from, {"status": "Replied"}, {"status": "Open"})
		assert not matches(changed_from, {"status": "Open"}, {"status": "Open"})
		changed = {"all": [leaf("annual_revenue", "changed")]}
		assert matches(changed, {"annual_revenue": 5}, {"annual_revenue": 4})
		assert not matches(changed, {"annual_revenue": 0}, {"annual_revenue": None}), "None and 0 are both 0"


class TestTrees:
	def test_nested_any_and_all(self):
		tree = {
			"any": [
				{"all": [leaf("territory", "=", "India"), leaf("industry", "=", "IT")]},
				leaf("annual_revenue", ">", 1_000_000),
			]
		}
		assert matches(tree, {"territory": "India", "industry": "IT"})
		assert matches(tree, {"territory": "Peru", "annual_revenue": 2_000_000})
		assert not matches(tree, {"territory": "India", "industry": "Retail"})

	@pytest.mark.parametrize("tree", [None, {}, {"all": []}, {"any": []}])
	def test_empty_condition_always_matches(self, tree):
		assert compile_condition(tree, LEAD_FIELDS).matches({}, None)

	def test_explain_traces_every_leaf(self):
		condition = compile_condition(
			{"all": [leaf("territory", "=", "India"), leaf("annual_revenue", ">", "1000"), leaf("lead_name", "like", "ac")]},
			LEAD_FIELDS,
		)
		result, trace = condition.explain({"territory": "Peru", "annual_revenue": 5000, "lead_name": "Acme"})
		assert result is False
		assert [(t["path"], t["actual"], t["expected"], t["result"]) for t in trace] == [
			("conditions.all[0]", "Peru", "India", False),
			("conditions.all[1]", 5000.0, 1000.0, True),
			("conditions.all[2]", "Acme", "ac", True),
		]

	def test_explain_shows_before_value_for_change_operators(self):
		condition = compile_condition({"all": [leaf("status", "changed to", "Replied")]}, LEAD_FIELDS)
		result, trace = condition.explain({"status": "Replied"}, {"status": "Open"})
		assert result is True
		assert trace[0]["before"] == "Open"

	def test_fields_and_uses_before(self):
		condition = compile_condition({"all": [leaf("status", "changed"), leaf("territory", "=", "X")]}, LEAD_FIELDS)
		assert condition.fields == {"status", "territory"}
		assert condition.uses_before and condition.leaf_count == 2


class TestCompileErrors:
	def problems(self, tree):
		with pytest.raises(RuleError) as caught:
			compile_condition(tree, LEAD_FIELDS)
		return [str(p) for p in caught.value.problems]

	def test_message_names_path_field_and_value(self):
		tree = {"all": [leaf("status", "=", "Open"), leaf("source", "is set"), leaf("annual_revenue", ">", "abc")]}
		assert self.problems(tree) == ['conditions.all[2]: "abc" is not a number for annual_revenue (Currency)']

	def test_every_problem_is_listed(self):
		tree = {
			"any": [
				leaf("nope", "=", 1),
				leaf("status", "=", "Closed"),
				leaf("annual_revenue", "like", "1%"),
				leaf("status", "equals", "Open"),
				leaf("notes", "is set"),
				leaf("no_of_employees", "=", "1.5"),
				leaf("expected_close", ">", "next week"),
				leaf("annual_revenue", "between", [10]),
				leaf("annual_revenue", "between", [10, 5]),
				leaf("territory", "in", []),
			]
		}
		problems = self.problems(tree)
		assert len(problems) == 10
		assert problems[0] == 'conditions.any[0]: unknown field "nope"'
		assert "is not one of the options (Lead, Open, Replied" in problems[1]
		assert 'operator "like" does not fit annual_revenue (Currency)' in problems[2]
		assert 'unknown operator "equals"' in problems[3]
		assert "notes (Table) cannot be used in a condition" in problems[4]
		assert '"1.5" is not a whole number for no_of_employees (Int)' in problems[5]
		assert '"next week" is not a date (YYYY-MM-DD) for expected_close (Date)' in problems[6]
		assert "is not a pair of values" in problems[7]
		assert "the first is after the second" in problems[8]
		assert "needs at least one value" in problems[9]

	def test_malformed_groups(self):
		assert self.problems({"all": "x"}) == ["conditions.all: must be a list of conditions"]
		assert "exactly one of" in self.problems({"all": [], "any": []})[0]
		assert "is not a condition" in self.problems({"all": [42]})[0]
		assert "unknown key(s) valeu" in self.problems({"all": [{"field": "status", "op": "=", "valeu": 1}]})[0]


class TestFieldtypes:
	@pytest.mark.parametrize(
		"value, fieldtype, expected",
		[
			(None, "Currency", 0.0),
			("", "Float", 0.0),
			("1,200.5", "Currency", 1200.5),
			(None, "Int", 0),
			("7", "Int", 7),
			(None, "Check", 0),
			("1", "Check", 1),
			(None, "Data", ""),
			(12, "Data", "12"),
			(None, "Date", None),
			("", "Datetime", None),
			("2026-02-03 04:05:06", "Date", datetime.date(2026, 2, 3)),
			(datetime.date(2026, 2, 3), "Datetime", datetime.datetime(2026, 2, 3)),
		],
	)
	def test_document_values_coerce_like_frappe_stores_them(self, value, fieldtype, expected):
		assert coerce_document_value(value, fieldtype) == expected

	def test_rule_values_are_strict(self):
		assert parse_rule_value("12.5", {"fieldtype": "Currency"}) == 12.5
		assert parse_rule_value("yes", {"fieldtype": "Check"}) == 1
		with pytest.raises(ValueError, match="is not a number"):
			parse_rule_value(True, {"fieldtype": "Currency"})
		with pytest.raises(ValueError, match="is not 0 or 1"):
			parse_rule_value(2, {"fieldtype": "Check"})
		with pytest.raises(ValueError, match="is not text"):
			parse_rule_value({"a": 1}, {"fieldtype": "Data"})


class TestOperatorRegistry:
	def names(self, fieldtype):
		return [o["operator"] for o in describe_operators(fieldtype)]

	def test_text_gets_like_but_no_ordering(self):
		names = self.names("Data")
		assert "like" in names and ">" not in names and "between" not in names

	def test_numbers_and_dates_get_ordering_but_no_like(self):
		for fieldtype in ("Currency", "Int", "Date", "Datetime"):
			names = self.names(fieldtype)
			assert ">" in names and "between" in names and "like" not in names, fieldtype

	def test_check_gets_only_equality_and_change(self):
		assert self.names("Check") == ["=", "!=", "changed", "changed from", "changed to"]

	def test_unsupported_fieldtypes_get_nothing(self):
		assert describe_operators("Table") == []
		assert describe_operators("Password") == []

	def test_descriptions_say_what_value_widget_to_show(self):
		by_name = {o["operator"]: o for o in describe_operators("Date")}
		assert by_name["between"]["value"] == "pair"
		assert by_name["in"]["value"] == "list"
		assert by_name["is set"]["value"] == "none"
		assert by_name["changed to"]["needs_before"] is True
