"""Tier 1: conditions on linked documents and child tables, actions on a linked document, Send SMS."""

import pytest

from crm_automation.engine import RuleError, compile_condition, compile_workflow_rule
from crm_automation.engine.linked_paths import fetch_linked_values
from crm_automation.engine.sms import check_send_sms, is_phone_field, normalize_number

SALES_ORDER = {
	"customer": {"fieldtype": "Link", "options": "Customer", "label": "Customer"},
	"grand_total": {"fieldtype": "Currency", "label": "Grand Total"},
	"contact_mobile": {"fieldtype": "Small Text", "label": "Mobile No"},
	"items": {"fieldtype": "Table", "options": "Sales Order Item", "label": "Items"},
	"status": {"fieldtype": "Select", "options": "Draft\nTo Deliver\nCompleted", "label": "Status"},
}
OPPORTUNITY = {
	"opportunity_from": {"fieldtype": "Link", "options": "DocType", "label": "Opportunity From"},
	"party_name": {"fieldtype": "Dynamic Link", "options": "opportunity_from", "label": "Party"},
	"status": {"fieldtype": "Select", "options": "Open\nConverted\nLost", "label": "Status"},
	"contact_mobile": {"fieldtype": "Data", "options": "Phone", "label": "Mobile"},
}
OTHERS = {
	"Customer": {
		"territory": {"fieldtype": "Link", "options": "Territory", "label": "Territory"},
		"customer_group": {"fieldtype": "Link", "options": "Customer Group", "label": "Customer Group"},
		"account_manager": {"fieldtype": "Link", "options": "User", "label": "Account Manager"},
		"mobile_no": {"fieldtype": "Read Only", "label": "Mobile No"},
		"sales_team": {"fieldtype": "Table", "options": "Sales Team", "label": "Sales Team"},
	},
	"Territory": {
		"parent_territory": {"fieldtype": "Link", "options": "Territory", "label": "Parent Territory"}
	},
	"Sales Order Item": {
		"qty": {"fieldtype": "Float", "label": "Quantity"},
		"amount": {"fieldtype": "Currency", "label": "Amount"},
		"item_code": {"fieldtype": "Link", "options": "Item", "label": "Item"},
	},
}


def get_fields(doctype):
	return OTHERS.get(doctype)


def compile_so(tree):
	return compile_condition(tree, SALES_ORDER, get_fields=get_fields)


def problems_of(tree, fields=SALES_ORDER, lookup=get_fields):
	with pytest.raises(RuleError) as caught:
		compile_condition(tree, fields, get_fields=lookup)
	return [str(p) for p in caught.value.problems]


class TestLinkedPaths:
	def test_one_hop_reads_the_value_under_its_path(self):
		condition = compile_so({"field": "customer.territory", "op": "=", "value": "North"})
		assert condition.matches({"customer": "C1", "customer.territory": "North"})
		assert not condition.matches({"customer": "C1", "customer.territory": "South"})
		assert not condition.matches({"customer": None})
		assert set(condition.linked_paths) == {"customer.territory"}
		# a query on the document's own table never selects a dotted path
		assert condition.fields == frozenset()

	def test_two_hops_and_a_dynamic_link_with_its_type(self):
		tree = {"field": "party_name[Customer].territory.parent_territory", "op": "=", "value": "All"}
		condition = compile_condition(tree, OPPORTUNITY, get_fields=get_fields)
		linked = condition.linked_paths[tree["field"]]
		assert [hop.doctype for hop in linked.hops] == ["Customer", "Territory"]
		assert linked.hops[0].type_field == "opportunity_from"
		assert linked.label == "Party › Territory › Parent Territory"

	def test_trace_shows_the_label_and_the_linked_value(self):
		condition = compile_so({"field": "customer.customer_group", "op": "=", "value": "Key"})
		ok, trace = condition.explain({"customer.customer_group": "Key"})
		assert ok and trace[0]["label"] == "Customer › Customer Group" and trace[0]["actual"] == "Key"

	@pytest.mark.parametrize(
		("field", "says"),
		[
			("customer.nope", 'Customer has no field "nope"'),
			("grand_total.x", "grand_total (Currency) is not a Link field"),
			("missing.territory", '"missing" is not a field'),
			("customer.territory.parent_territory.parent_territory", "at most 2 links"),
			("customer.sales_team", "cannot be used in a condition"),
			("customer[Supplier].territory", "links to Customer, not Supplier"),
			("customer.territory[Territory]", "end on a field"),
			("customer..territory", "is not a field path"),
		],
	)
	def test_a_bad_path_is_refused_naming_the_path(self, field, says):
		(problem,) = problems_of({"all": [{"field": field, "op": "is set"}]})
		assert problem.startswith("conditions.all[0]: ")
		assert f'"{field}"' in problem and says in problem

	def test_a_dynamic_link_needs_its_type(self):
		(problem,) = problems_of({"field": "party_name.territory", "op": "is set"}, OPPORTUNITY)
		assert "party_name[Customer]" in problem

	def test_the_linked_doctype_must_exist(self):
		(problem,) = problems_of({"field": "party_name[Nothing].x", "op": "is set"}, OPPORTUNITY)
		assert '"Nothing" is not a document type' in problem

	def test_operators_on_the_value_before_save_are_refused(self):
		(problem,) = problems_of({"field": "customer.territory", "op": "changed"})
		assert "earlier value is not known" in problem

	def test_the_value_is_parsed_for_the_linked_fieldtype(self):
		(problem,) = problems_of({"field": "items.qty", "agg": "any", "op": ">", "value": "lots"})
		assert "any of items.qty" in problem and "lots" in problem

	def test_without_a_lookup_linked_paths_are_refused(self):
		(problem,) = problems_of({"field": "customer.territory", "op": "is set"}, lookup=None)
		assert "cannot be used here" in problem


class TestAggregates:
	ROWS = [{"qty": 50, "amount": 600}, {"qty": 150, "amount": 700.5}]

	def test_any_all_count_sum(self):
		doc = {"items": self.ROWS}
		assert compile_so({"field": "items.qty", "agg": "any", "op": ">", "value": 100}).matches(doc)
		assert not compile_so({"field": "items.qty", "agg": "all", "op": ">", "value": 100}).matches(doc)
		assert compile_so({"field": "items", "agg": "count", "op": "=", "value": 2}).matches(doc)
		assert compile_so({"field": "items.amount", "agg": "sum", "op": "=", "value": 1300.5}).matches(doc)

	def test_no_rows(self):
		doc = {"items": []}
		assert not compile_so({"field": "items.qty", "agg": "any", "op": ">", "value": 0}).matches(doc)
		# "every item ..." of an order without items is not true
		assert not compile_so({"field": "items.qty", "agg": "all", "op": ">", "value": 0}).matches(doc)
		assert compile_so({"field": "items", "agg": "count", "op": "=", "value": 0}).matches({})
		assert compile_so({"field": "items.amount", "agg": "sum", "op": "=", "value": 0}).matches(
			{"items": None}
		)

	def test_rows_with_bad_values_do_not_crash(self):
		doc = {"items": [{"qty": None}, {"qty": "x"}, {}]}
		assert compile_so({"field": "items.qty", "agg": "sum", "op": "=", "value": 0}).matches(doc)

	def test_explain_shows_the_computed_value(self):
		ok, trace = compile_so({"field": "items.amount", "agg": "sum", "op": ">", "value": 1000}).explain(
			{"items": self.ROWS}
		)
		assert (
			ok and trace[0]["actual"] == 1300.5 and trace[0]["agg"] == "sum" and trace[0]["expected"] == 1000
		)

	@pytest.mark.parametrize(
		("leaf", "says"),
		[
			({"field": "items.qty", "agg": "most", "op": ">", "value": 1}, 'unknown aggregate "most"'),
			({"field": "status.qty", "agg": "any", "op": ">", "value": 1}, '"status" is not a child table'),
			(
				{"field": "items.nope", "agg": "any", "op": ">", "value": 1},
				'Sales Order Item has no field "nope"',
			),
			({"field": "items.item_code", "agg": "sum", "op": ">", "value": 1}, "sum needs a number field"),
			({"field": "items", "agg": "sum", "op": ">", "value": 1}, "sum needs a field of the rows"),
			({"field": "items.qty", "agg": "count", "op": ">", "value": 1}, "count counts rows"),
			({"field": "items.qty", "agg": "any", "op": "changed"}, "does not apply"),
			({"field": "items", "agg": "count", "op": "like", "value": "x"}, "number of Items"),
			({"field": "items.qty", "agg": "any", "op": ">", "value": 1, "extra": 1}, "unknown key(s) extra"),
		],
	)
	def test_a_bad_aggregate_is_refused_naming_the_path(self, leaf, says):
		(problem,) = problems_of({"any": [leaf]})
		assert problem.startswith("conditions.any[0]: ") and says in problem
		assert "__aggregate__" not in problem


class TestFetchLinkedValues:
	DATA = {
		("Customer", "C1"): {"territory": "North", "customer_group": "Key", "name": "C1"},
		("Territory", "North"): {"parent_territory": "All Territories"},
	}

	def fetch(self, tree, values, fields=SALES_ORDER):
		condition = compile_condition(tree, fields, get_fields=get_fields)
		calls = []

		def load(doctype, name, fieldnames):
			calls.append((doctype, name, tuple(fieldnames)))
			row = self.DATA.get((doctype, name))
			return {f: row.get(f) for f in fieldnames} if row else None

		return fetch_linked_values(values, condition.linked_paths, load), calls

	def test_one_load_per_linked_document_however_many_leaves(self):
		tree = {
			"all": [
				{"field": "customer.territory", "op": "=", "value": "North"},
				{"field": "customer.customer_group", "op": "=", "value": "Key"},
				{"field": "customer.territory.parent_territory", "op": "is set"},
			]
		}
		found, calls = self.fetch(tree, {"customer": "C1"})
		assert found == {
			"customer.territory": "North",
			"customer.customer_group": "Key",
			"customer.territory.parent_territory": "All Territories",
		}
		assert calls == [
			("Customer", "C1", ("customer_group", "territory")),
			("Territory", "North", ("parent_territory",)),
		]

	def test_empty_and_dangling_links_read_none(self):
		tree = {"field": "customer.territory.parent_territory", "op": "is set"}
		assert self.fetch(tree, {"customer": ""})[0] == {"customer.territory.parent_territory": None}
		found, calls = self.fetch(tree, {"customer": "Gone"})
		assert found == {"customer.territory.parent_territory": None} and len(calls) == 1

	def test_a_dynamic_link_of_another_type_is_not_followed(self):
		tree = {"field": "party_name[Customer].territory", "op": "is set"}
		found, calls = self.fetch(tree, {"opportunity_from": "Lead", "party_name": "C1"}, OPPORTUNITY)
		assert found == {"party_name[Customer].territory": None} and calls == []
		found, _calls = self.fetch(tree, {"opportunity_from": "Customer", "party_name": "C1"}, OPPORTUNITY)
		assert found == {"party_name[Customer].territory": "North"}


def rule(**overrides):
	base = {"name": "R", "document_type": "Sales Order", "trigger": "Submit", "actions": []}
	base.update(overrides)
	return base


class TestWorkflowRules:
	def test_rule_lists_the_paths_of_conditions_and_branches(self):
		compiled = compile_workflow_rule(
			rule(
				conditions={"field": "customer.territory", "op": "=", "value": "North"},
				branches=[
					{
						"branch_name": "Key",
						"conditions": {"field": "customer.customer_group", "op": "=", "value": "Key"},
					}
				],
				actions=[{"action_type": "Add Tag", "tag": "x"}],
			),
			SALES_ORDER,
			get_fields,
		)
		assert set(compiled.linked_paths) == {"customer.territory", "customer.customer_group"}

	def test_time_trigger_refuses_linked_conditions(self):
		with pytest.raises(RuleError, match="Time trigger cannot test linked"):
			compile_workflow_rule(
				rule(
					trigger="Time",
					time_field="delivery_date",
					conditions={"field": "items", "agg": "count", "op": ">", "value": 1},
					actions=[{"action_type": "Add Tag", "tag": "x"}],
				),
				{**SALES_ORDER, "delivery_date": {"fieldtype": "Date"}},
				get_fields,
			)

	def test_action_on_the_linked_document_is_checked_against_its_fields(self):
		compiled = compile_workflow_rule(
			rule(
				actions=[
					{
						"action_type": "Set Value",
						"target_link_field": "customer",
						"target_field": "customer_group",
						"value": "Key",
					},
					{
						"action_type": "Assign",
						"target_link_field": "customer",
						"assign_to_type": "User in Field",
						"to_field": "account_manager",
					},
				]
			),
			SALES_ORDER,
			get_fields,
		)
		intents = compiled.actions_by_branch[""]
		assert intents[0]["target"]["doctype"] == "Customer" and intents[0]["field"] == "customer_group"
		assert (
			intents[1]["target"]["fieldname"] == "customer" and intents[1]["user_field"] == "account_manager"
		)
		# a value set on the Customer is not a field of the Sales Order for the loop check
		assert compiled.set_fields == frozenset()

	def test_assign_to_the_user_in_a_linked_field(self):
		compiled = compile_workflow_rule(
			rule(
				actions=[
					{
						"action_type": "Assign",
						"assign_to_type": "User in Field",
						"to_field": "customer.account_manager",
					}
				]
			),
			SALES_ORDER,
			get_fields,
		)
		(intent,) = compiled.actions_by_branch[""]
		assert intent["user_path"]["hops"] == [
			{"fieldname": "customer", "doctype": "Customer", "type_field": None}
		]
		assert intent["user_path"]["label"] == "Customer › Account Manager"
		with pytest.raises(RuleError) as caught:
			compile_workflow_rule(
				rule(
					actions=[
						{
							"action_type": "Assign",
							"assign_to_type": "User in Field",
							"to_field": "customer.territory",
						}
					]
				),
				SALES_ORDER,
				get_fields,
			)
		assert caught.value.first.path == "actions[0].to_field"
		assert "not a field that holds a user" in caught.value.first.message

	def test_a_field_of_the_document_is_not_one_of_the_linked_document(self):
		with pytest.raises(RuleError) as caught:
			compile_workflow_rule(
				rule(
					actions=[
						{
							"action_type": "Set Value",
							"target_link_field": "customer",
							"target_field": "grand_total",
							"value": 1,
						}
					]
				),
				SALES_ORDER,
				get_fields,
			)
		assert caught.value.first.path == "actions[0].target_field"

	@pytest.mark.parametrize(
		("action", "trigger", "says"),
		[
			(
				{"action_type": "Send Email", "subject": "s", "message": "m", "to_owner": 1},
				"Submit",
				"acts on the document itself",
			),
			(
				{"action_type": "Set Value", "target_field": "customer_group", "value": "K"},
				"Validate",
				"only after the save",
			),
			(
				{"action_type": "Add Tag", "tag": "x", "target_link_field": "grand_total"},
				"Submit",
				"is not a Link field",
			),
			(
				{"action_type": "Add Tag", "tag": "x", "target_link_field": "customer; drop"},
				"Submit",
				"is not a Link field",
			),
		],
	)
	def test_bad_targets_are_refused_at_the_target_field(self, action, trigger, says):
		action = {"target_link_field": "customer", **action}
		with pytest.raises(RuleError) as caught:
			compile_workflow_rule(rule(trigger=trigger, actions=[action]), SALES_ORDER, get_fields)
		problems = [p for p in caught.value.problems if p.path == "actions[0].target_link_field"]
		assert problems and says in problems[0].message


class TestSendSms:
	@pytest.mark.parametrize(
		("raw", "number"),
		[
			("+7 (912) 345-67-89", "+79123456789"),
			("138 0013 8000", "13800138000"),
			("0049 30 1234567", "+49301234567"),
			("13800138000", "13800138000"),
		],
	)
	def test_numbers_are_normalised(self, raw, number):
		assert normalize_number(raw) == (number, None)

	@pytest.mark.parametrize(
		"raw", [None, "", "   ", "12345", "call me", "+7 912 ext 5", "++79123456789", "1" * 16]
	)
	def test_missing_or_invalid_numbers_have_a_reason(self, raw):
		number, reason = normalize_number(raw)
		assert number is None and reason

	def test_phone_fields(self):
		assert is_phone_field("contact_mobile", OPPORTUNITY["contact_mobile"])
		assert is_phone_field("mobile_no", {"fieldtype": "Data"})
		assert is_phone_field("phone", {"fieldtype": "Phone"})
		assert not is_phone_field("customer", SALES_ORDER["customer"])
		assert not is_phone_field("telephone_count", {"fieldtype": "Int"})

	def test_the_action_compiles_to_an_intent(self):
		compiled = compile_workflow_rule(
			rule(
				actions=[
					{
						"action_type": "Send SMS",
						"sms_phone_field": "contact_mobile",
						"sms_contact_of": "customer",
						"sms_to_users": "a@example.com\nb@example.com",
						"sms_to_role": "Sales Manager",
						"sms_message": "Order {{ doc.name }} ships today",
					}
				]
			),
			SALES_ORDER,
			get_fields,
		)
		(intent,) = compiled.actions_by_branch[""]
		assert intent["type"] == "Send SMS" and intent["phone_field"] == "contact_mobile"
		assert intent["contact_of"] == {"fieldname": "customer", "doctype": "Customer", "type_field": None}
		assert intent["users"] == ["a@example.com", "b@example.com"] and intent["role"] == "Sales Manager"

	@pytest.mark.parametrize(
		("action", "path", "says"),
		[
			({"sms_message": "hi"}, "actions[0]", "at least one SMS recipient"),
			(
				{"sms_phone_field": "grand_total", "sms_message": "hi"},
				"actions[0].sms_phone_field",
				"not a phone",
			),
			({"sms_phone_field": "contact_mobile"}, "actions[0].sms_message", "needs a text"),
			(
				{"sms_contact_of": "grand_total", "sms_message": "hi"},
				"actions[0].sms_contact_of",
				"not a Link field",
			),
			({"sms_to_users": "bob", "sms_message": "hi"}, "actions[0].sms_to_users", "not a user id"),
			({"sms_to_role": "X", "sms_message": "x" * 1001}, "actions[0].sms_message", "longer than"),
		],
	)
	def test_bad_sms_actions_are_refused(self, action, path, says):
		with pytest.raises(RuleError) as caught:
			compile_workflow_rule(
				rule(actions=[{"action_type": "Send SMS", **action}]), SALES_ORDER, get_fields
			)
		assert any(p.path == path and says in p.message for p in caught.value.problems), caught.value.problems

	def test_contact_of_this_document(self):
		problems = []

		class Collect:
			def add(self, *args, **kwargs):
				problems.append(args)

		params = check_send_sms(
			{"sms_contact_of": "This Document", "sms_message": "x"}, SALES_ORDER, None, {}, "a", Collect()
		)
		assert params["contact_of"]["fieldname"] is None and not problems

	def test_escalation_level_sends_sms(self):
		from crm_automation.engine.escalation import compile_policy

		policy = {
			"name": "P",
			"document_type": "Sales Order",
			"clock_start": "Creation",
			"levels": [
				{
					"level": 1,
					"after": 1,
					"unit": "Hours",
					"action_type": "Send SMS",
					"to_role": "Support",
					"message": "Overdue {{ doc.name }}",
				}
			],
		}
		compiled = compile_policy(policy, SALES_ORDER)
		(level,) = compiled.levels
		(intent,) = level.intents
		assert (
			intent["type"] == "Send SMS"
			and intent["role"] == "Support"
			and intent["message"] == "Overdue {{ doc.name }}"
		)
