"""The rule index (engine/rule_index.py) against brute force: evaluating only the index's candidates
fires exactly the rules that evaluating every rule fires."""

import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_fields import LEAD_FIELDS

from crm_automation.engine import compile_workflow_rule, find_cycles
from crm_automation.engine.loops import triggers
from crm_automation.engine.rule_index import index_rules, rule_requirement

# fieldname → (rule values, document values): small pools so that rules match often, and document
# values of every shape Frappe hands over (numbers as text, None and "", dates as text or objects).
POOLS = {
	"status": (["Lead", "Open", "Replied", "Converted"], [None, "", "Lead", "Open", "Replied", "open"]),
	"source": (["", "A", "B", "10"], [None, "", "A", "B", "a", 10, "10", 10.0]),
	"lead_name": (["", "A", "10.0"], [None, "", "A", "a", "10.0", 10.0]),
	"annual_revenue": ([0, 10, "10", 10.5, "0"], [None, "", 0, 10, "10", 10.0, "10.00", 10.5, "x", "1,0"]),
	"no_of_employees": ([0, 1, "2", 10], [None, "", 0, 1, "1", 2.0, "2", 10, "x"]),
	"unsubscribed": ([0, 1, "1", "no"], [None, "", 0, 1, "1", "0", True, False, "yes"]),
	"expected_close": (
		["2026-01-01", "2026-02-01"],
		[
			None,
			"",
			"2026-01-01",
			datetime.date(2026, 1, 1),
			datetime.datetime(2026, 1, 1, 9),
			"bad",
			"2026-02-01",
		],
	),
	"contact_date": (
		["2026-01-01 10:00:00", "2026-01-01"],
		[
			None,
			"2026-01-01 10:00:00",
			datetime.datetime(2026, 1, 1, 10),
			datetime.date(2026, 1, 1),
			"2026-01-01",
		],
	),
}
FIELDS = sorted(POOLS)
KIND_OPS = {
	"text": [
		"=",
		"!=",
		"in",
		"not in",
		"like",
		"is set",
		"is not set",
		"changed",
		"changed from",
		"changed to",
	],
	"ordered": [
		"=",
		"!=",
		"in",
		"not in",
		">",
		"<=",
		"between",
		"is set",
		"changed",
		"changed from",
		"changed to",
	],
	"boolean": ["=", "!=", "changed", "changed from", "changed to"],
}


def kind(fieldname):
	fieldtype = LEAD_FIELDS[fieldname]["fieldtype"]
	if fieldtype == "Check":
		return "boolean"
	if fieldtype in ("Currency", "Int", "Date", "Datetime"):
		return "ordered"
	return "text"


@st.composite
def leaves(draw):
	fieldname = draw(st.sampled_from(FIELDS))
	op = draw(st.sampled_from(KIND_OPS[kind(fieldname)]))
	rule_values = POOLS[fieldname][0]
	node = {"field": fieldname, "op": op}
	if op in ("in", "not in"):
		node["value"] = draw(st.lists(st.sampled_from(rule_values), min_size=1, max_size=3))
	elif op == "between":
		low, high = sorted(draw(st.lists(st.sampled_from(rule_values), min_size=2, max_size=2)), key=_order)
		node["value"] = [low, high]
	elif op not in ("is set", "is not set", "changed"):
		node["value"] = draw(st.sampled_from(rule_values))
	return node


def _order(value):
	return str(value) if isinstance(value, str) and "-" in value else float(value)


def trees():
	return st.recursive(
		leaves(),
		lambda children: st.one_of(
			st.builds(lambda c: {"all": c}, st.lists(children, max_size=3)),
			st.builds(lambda c: {"any": c}, st.lists(children, max_size=3)),
		),
		max_leaves=6,
	)


@st.composite
def rules(draw, name):
	trigger = draw(st.sampled_from(["New", "Save", "Value Change", "Validate"]))
	action = (
		{"action_type": "Set Value", "target_field": "lead_name", "value": "x"}
		if trigger == "Validate"
		else {"action_type": "Add Tag", "tag": "t"}
	)
	rule = {
		"name": name,
		"document_type": "Lead",
		"trigger": trigger,
		"priority": draw(st.integers(0, 3)),
		"fire_mode": draw(
			st.sampled_from(["Every Time", "Once per Document", "Each Time Condition Becomes True"])
		),
		"conditions": draw(st.one_of(st.none(), trees())),
		"branches": [],
		"actions": [],
	}
	if trigger == "Value Change":
		fieldname = draw(st.sampled_from(FIELDS))
		rule["trigger_field"] = fieldname
		for key in ("from_value", "to_value"):
			if draw(st.booleans()):
				rule[key] = draw(st.sampled_from(POOLS[fieldname][0]))
	branch_count = draw(st.integers(0, 3))
	for i in range(branch_count):
		is_else = i == branch_count - 1 and draw(st.booleans())
		rule["branches"].append(
			{"branch_name": f"b{i}", "is_else": is_else, "conditions": None if is_else else draw(trees())}
		)
		if draw(st.booleans()):
			rule["actions"].append({**action, "branch": f"b{i}"})
	if not rule["actions"] or draw(st.booleans()):
		rule["actions"].append(dict(action))
	return compile_workflow_rule(rule, LEAD_FIELDS)


def documents():
	return st.fixed_dictionaries({fieldname: st.sampled_from(POOLS[fieldname][1]) for fieldname in FIELDS})


@st.composite
def rule_sets(draw):
	count = draw(st.integers(1, 12))
	compiled = [draw(rules(f"r{i}")) for i in range(count)]
	return sorted(compiled, key=lambda r: (-r.priority, r.name))


def fired(rules, values, before):
	return [rule.name for rule in rules if rule.evaluate(values, before).fired]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), documents(), st.one_of(st.none(), documents()))
def test_candidates_fire_exactly_what_every_rule_fires(compiled, values, before):
	indexed = index_rules(compiled)
	candidates = indexed.candidates(values, before)
	assert fired(candidates, values, before) == fired(compiled, values, before)
	# In priority order, each rule once.
	positions = [compiled.index(rule) for rule in candidates]
	assert positions == sorted(set(positions))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), documents(), st.one_of(st.none(), documents()), st.integers(0, 11))
def test_candidates_after_a_rule_are_the_rest_in_order(compiled, values, before, position):
	indexed = index_rules(compiled)
	after = compiled[min(position, len(compiled) - 1)]
	rest = indexed.candidates(values, before, after=after)
	everything = indexed.candidates(values, before)
	assert rest == [rule for rule in everything if compiled.index(rule) > compiled.index(after)]


def compile_lead_rule(name="r", **rule):
	source = {
		"name": name,
		"document_type": "Lead",
		"trigger": "Save",
		"actions": [{"action_type": "Add Tag", "tag": "t"}],
		**rule,
	}
	return compile_workflow_rule(source, LEAD_FIELDS)


def candidate_names(rules, values, before=None):
	return [rule.name for rule in index_rules(rules).candidates(values, before)]


class TestWhatTheIndexFilesARuleUnder:
	def test_a_required_equality_is_a_lookup_with_the_leafs_own_coercion(self):
		rule = compile_lead_rule(conditions={"all": [{"field": "annual_revenue", "op": "=", "value": "100"}]})
		assert candidate_names([rule], {"annual_revenue": 100}) == ["r"]
		assert candidate_names([rule], {"annual_revenue": "100.00"}) == ["r"]
		assert candidate_names([rule], {"annual_revenue": 99}) == []

	def test_text_none_and_empty_are_the_same_key(self):
		rule = compile_lead_rule(conditions={"field": "source", "op": "in", "value": ["", "Web"]})
		assert candidate_names([rule], {"source": None}) == ["r"]
		assert candidate_names([rule], {}) == ["r"]
		assert candidate_names([rule], {"source": "Mail"}) == []

	def test_check_zero_and_none_are_the_same_key(self):
		rule = compile_lead_rule(conditions={"field": "unsubscribed", "op": "=", "value": 0})
		assert candidate_names([rule], {"unsubscribed": None}) == ["r"]
		assert candidate_names([rule], {"unsubscribed": 1}) == []

	def test_an_or_on_one_field_is_the_union_of_its_values(self):
		rule = compile_lead_rule(
			conditions={
				"any": [
					{"field": "status", "op": "=", "value": "Open"},
					{"field": "status", "op": "in", "value": ["Replied"]},
				]
			}
		)
		assert candidate_names([rule], {"status": "Replied"}) == ["r"]
		assert candidate_names([rule], {"status": "Lead"}) == []

	def test_an_or_on_different_fields_is_always_a_candidate(self):
		rule = compile_lead_rule(
			conditions={
				"any": [
					{"field": "status", "op": "=", "value": "Open"},
					{"field": "source", "op": "=", "value": "Web"},
				]
			}
		)
		assert rule_requirement(rule).equal == {}
		assert candidate_names([rule], {"status": "Lead"}) == ["r"]

	def test_branches_count_only_when_every_action_is_in_one(self):
		branches = [
			{"branch_name": "open", "conditions": {"field": "status", "op": "=", "value": "Open"}},
			{"branch_name": "replied", "conditions": {"field": "status", "op": "=", "value": "Replied"}},
		]
		in_branches = compile_lead_rule(
			"in_branches",
			branches=branches,
			actions=[
				{"action_type": "Add Tag", "tag": "t", "branch": "open"},
				{"action_type": "Add Tag", "tag": "u", "branch": "replied"},
			],
		)
		also_plain = compile_lead_rule(
			"also_plain",
			branches=branches,
			actions=[
				{"action_type": "Add Tag", "tag": "t", "branch": "open"},
				{"action_type": "Add Tag", "tag": "u"},
			],
		)
		assert candidate_names([in_branches, also_plain], {"status": "Lead"}) == ["also_plain"]
		assert candidate_names([in_branches, also_plain], {"status": "Replied"}) == [
			"in_branches",
			"also_plain",
		]

	def test_a_branch_without_actions_does_not_widen_the_key(self):
		rule = compile_lead_rule(
			branches=[
				{"branch_name": "lead", "conditions": {"field": "status", "op": "=", "value": "Lead"}},
				{"branch_name": "open", "conditions": {"field": "status", "op": "=", "value": "Open"}},
			],
			actions=[{"action_type": "Add Tag", "tag": "t", "branch": "open"}],
		)
		assert candidate_names([rule], {"status": "Lead"}) == []
		assert candidate_names([rule], {"status": "Open"}) == ["r"]

	def test_value_change_rules_are_candidates_only_when_their_field_changed(self):
		rule = compile_lead_rule(trigger="Value Change", trigger_field="territory")
		assert candidate_names([rule], {"territory": "North"}, {"territory": "North"}) == []
		assert candidate_names([rule], {"territory": "North"}, {"territory": "South"}) == ["r"]
		assert candidate_names([rule], {"territory": "North"}, None) == []

	def test_text_patterns_are_not_keys(self):
		rule = compile_lead_rule(conditions={"field": "lead_name", "op": "like", "value": "%acme%"})
		assert index_rules([rule]).index.always_count == 1

	def test_bounds_are_found_by_binary_search_with_their_strictness(self):
		above = compile_lead_rule("above", conditions={"field": "annual_revenue", "op": ">", "value": 10})
		from_ten = compile_lead_rule(
			"from_ten", conditions={"field": "annual_revenue", "op": ">=", "value": 10}
		)
		below = compile_lead_rule("below", conditions={"field": "annual_revenue", "op": "<", "value": 10})
		rules = [above, from_ten, below]
		assert index_rules(rules).index.bound_count == 3
		assert candidate_names(rules, {"annual_revenue": "10"}) == ["from_ten"]
		assert candidate_names(rules, {"annual_revenue": 10.5}) == ["above", "from_ten"]
		assert candidate_names(rules, {"annual_revenue": None}) == ["below"]

	def test_an_empty_date_passes_no_bound(self):
		rule = compile_lead_rule(
			conditions={"field": "expected_close", "op": "between", "value": ["2026-01-01", "2026-12-31"]}
		)
		assert candidate_names([rule], {"expected_close": ""}) == []
		assert candidate_names([rule], {"expected_close": "2026-03-01"}) == ["r"]
		assert candidate_names([rule], {"expected_close": "2025-03-01"}) == []


class StubRule:
	"""What the loop check reads of a compiled rule."""

	def __init__(self, name, trigger, document_type, trigger_field, set_fields, creates):
		self.name = name
		self.trigger = trigger
		self.document_type = document_type
		self.trigger_field = trigger_field
		self.set_fields = frozenset(set_fields)
		self.created_doctypes = frozenset(creates)
		self.actions_by_branch = {}


def cycles_by_testing_every_pair(rules, through=None):
	"""The loop check as it was: every pair tested with ``triggers``."""
	by_name = {rule.name: rule for rule in rules}
	edges = {name: sorted(o.name for o in rules if triggers(rule, o)) for name, rule in by_name.items()}
	cycles, seen = [], set()
	for start in sorted(by_name):
		stack = [(start, [start])]
		while stack:
			node, path = stack.pop()
			for nxt in edges[node]:
				if nxt == start:
					key = frozenset(path)
					if key not in seen:
						seen.add(key)
						cycles.append([*path, start])
				elif nxt not in path and nxt > start:
					stack.append((nxt, [*path, nxt]))
	return [cycle for cycle in cycles if through in cycle] if through else cycles


@st.composite
def stub_rule_sets(draw):
	count = draw(st.integers(1, 9))
	return [
		StubRule(
			f"r{i}",
			draw(st.sampled_from(["New", "Save", "Validate", "Value Change", "Submit"])),
			draw(st.sampled_from(["Lead", "ToDo"])),
			draw(st.sampled_from(["status", "source"])),
			draw(st.sets(st.sampled_from(["status", "source"]))),
			draw(st.sets(st.sampled_from(["Lead", "ToDo"]))),
		)
		for i in range(count)
	]


@settings(max_examples=300, deadline=None)
@given(stub_rule_sets(), st.integers(0, 9))
def test_the_loop_check_finds_what_testing_every_pair_finds(stubs, through):
	name = f"r{through}"
	assert find_cycles(stubs) == cycles_by_testing_every_pair(stubs)
	assert find_cycles(stubs, through=name) == cycles_by_testing_every_pair(stubs, through=name)


ORDERED = ["annual_revenue", "no_of_employees", "expected_close", "contact_date"]


@st.composite
def bound_rule_sets(draw):
	"""Rules whose only usable requirement is a bound: the binary search decides alone."""
	compiled = []
	for i in range(draw(st.integers(1, 12))):
		fieldname = draw(st.sampled_from(ORDERED))
		op = draw(st.sampled_from([">", ">=", "<", "<=", "between"]))
		values = POOLS[fieldname][0]
		if op == "between":
			value = sorted(draw(st.lists(st.sampled_from(values), min_size=2, max_size=2)), key=_order)
		else:
			value = draw(st.sampled_from(values))
		compiled.append(compile_lead_rule(f"b{i}", conditions={"field": fieldname, "op": op, "value": value}))
	return compiled


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bound_rule_sets(), documents())
def test_bounds_find_exactly_what_every_rule_fires(compiled, values):
	assert fired(index_rules(compiled).candidates(values), values, None) == fired(compiled, values, None)
