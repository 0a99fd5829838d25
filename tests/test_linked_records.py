"""Tier 1: linked records for the offline simulator, and packs that read linked documents."""

import json

import pytest

from crm_automation.engine import compile_workflow_rule
from crm_automation.engine.packs import check_pack
from crm_automation.offline.input_files import InputError
from crm_automation.offline.linked_record_files import (
	checked_linked_records,
	read_linked_records,
	with_linked,
)
from crm_automation.offline.simulator import shipped_meta

LINKED = {"Customer": {"CUST-1": {"territory": "North", "customer_group": "Key"}}}


def issue_rule():
	meta = shipped_meta()
	rule = {
		"name": "North pool",
		"document_type": "Issue",
		"trigger": "New",
		"conditions": {"field": "customer.territory", "op": "=", "value": "North"},
		"actions": [{"action_type": "Add Tag", "tag": "north"}],
	}
	return compile_workflow_rule(rule, meta["Issue"], meta.get)


def test_linked_values_come_from_the_linked_records():
	rule = issue_rule()
	values = with_linked({"name": "ISS-1", "customer": "CUST-1"}, rule.linked_paths, LINKED)
	assert values["customer.territory"] == "North"
	assert rule.evaluate(values).fired


@pytest.mark.parametrize("customer", ["", None, "CUST-404"])
def test_empty_or_unknown_links_read_nothing(customer):
	rule = issue_rule()
	values = with_linked({"name": "ISS-1", "customer": customer}, rule.linked_paths, LINKED)
	assert values["customer.territory"] is None
	assert not rule.evaluate(values).fired


def test_a_file_is_read_and_checked(tmp_path):
	good = tmp_path / "linked.json"
	good.write_text(json.dumps(LINKED))
	assert read_linked_records(str(good)) == LINKED
	bad = tmp_path / "bad.json"
	bad.write_text(json.dumps({"Customer": ["CUST-1"]}))
	with pytest.raises(InputError, match=r"Customer: must be an object of records by name"):
		read_linked_records(str(bad))


@pytest.mark.parametrize(
	("data", "where"),
	[([], "linked"), ({"Customer": {"C": 1}}, "linked.Customer.C"), ({"Customer": None}, "linked.Customer")],
)
def test_bad_shapes_name_the_entry(data, where):
	with pytest.raises(InputError) as caught:
		checked_linked_records(data)
	assert caught.value.where == where


def test_a_pack_with_linked_conditions_and_targets_is_checked_with_the_shipped_fields():
	pack = {
		"format": "crm_automation.pack",
		"version": 1,
		"name": "Linked",
		"workflow_rules": [
			{
				"rule_name": "Key account on win",
				"document_type": "Opportunity",
				"trigger": "Save",
				"conditions": {"field": "party_name[Customer].territory", "op": "=", "value": "North"},
				"actions": [
					{
						"action_type": "Set Value",
						"target_link_field": "party_name[Customer]",
						"target_field": "customer_group",
						"value": "Key Account",
					}
				],
			},
			{
				"rule_name": "Broken path",
				"document_type": "Issue",
				"trigger": "New",
				"conditions": {"field": "customer.no_such_field", "op": "is set"},
				"actions": [{"action_type": "Add Tag", "tag": "x"}],
			},
		],
	}
	check = check_pack(pack, shipped_meta().get)
	messages = [f"{p.path}: {p.message}" for p in check.problems]
	assert len(messages) == 1, messages
	assert "Broken path" in messages[0] and '"customer.no_such_field"' in messages[0]


PACK_NORTH = {
	"format": "crm_automation.pack",
	"version": 1,
	"name": "North",
	"workflow_rules": [
		{
			"rule_name": "North pool",
			"document_type": "Issue",
			"trigger": "New",
			"conditions": {"field": "customer.territory", "op": "=", "value": "North"},
			"actions": [{"action_type": "Add Tag", "tag": "north"}],
		}
	],
}


def test_the_simulator_reads_linked_records(tmp_path):
	from crm_automation.offline.simulator import simulate

	records = tmp_path / "issues.json"
	records.write_text(
		json.dumps(
			{"Issue": [{"name": "ISS-1", "customer": "CUST-1"}, {"name": "ISS-2", "customer": "CUST-2"}]}
		)
	)
	linked = {"Customer": {**LINKED["Customer"], "CUST-2": {"territory": "South"}}}
	entries, problems = simulate(PACK_NORTH, str(records), linked=linked)
	assert problems == []
	outcomes = {entry["name"]: entry["rules"][0]["outcome"] for entry in entries}
	assert outcomes == {"ISS-1": "Fired", "ISS-2": "Skipped"}
	trace = entries[0]["rules"][0]["trace"]
	assert trace[0]["label"] == "Customer › Territory" and trace[0]["actual"] == "North"
	# without the linked records nothing is known of the customer
	entries, _problems = simulate(PACK_NORTH, str(records))
	assert [entry["rules"][0]["outcome"] for entry in entries] == ["Skipped", "Skipped"]


def test_the_summary_counts_use_linked_records_too(tmp_path):
	from crm_automation.offline.simulator import run_simulation

	records = tmp_path / "issues.json"
	records.write_text(json.dumps({"Issue": [{"name": f"ISS-{i}", "customer": "CUST-1"} for i in range(5)]}))
	result = run_simulation(PACK_NORTH, str(records), show=0, linked=LINKED)
	assert list(result.problems) == []
	fired = [
		count
		for key, count in result.summary.rule_counts.items()
		if key[0] == "North pool" and key[1] == "Fired"
	]
	assert fired == [5]


ORDER_META = {
	"Sales Order": {
		"customer": {"fieldtype": "Link", "options": "Customer", "label": "Customer"},
		"items": {"fieldtype": "Table", "options": "Sales Order Item", "label": "Items"},
	},
	"Sales Order Item": {"qty": {"fieldtype": "Float", "label": "Quantity"}},
}
BIG_ITEMS_PACK = {
	"format": "crm_automation.pack",
	"version": 1,
	"name": "Big items",
	"workflow_rules": [
		{
			"rule_name": "Bulk order",
			"document_type": "Sales Order",
			"trigger": "New",
			"conditions": {"field": "items.qty", "agg": "any", "op": ">", "value": 100},
			"actions": [{"action_type": "Add Tag", "tag": "bulk"}],
		}
	],
}


def test_json_records_carry_child_rows_for_aggregates(tmp_path):
	from crm_automation.offline.simulator import run_simulation

	records = tmp_path / "orders.json"
	records.write_text(
		json.dumps(
			{
				"Sales Order": [
					{"name": "SO-1", "items": [{"qty": 5}, {"qty": 150}]},
					{"name": "SO-2", "items": [{"qty": 5}]},
					{"name": "SO-3"},
				]
			}
		)
	)
	result = run_simulation(BIG_ITEMS_PACK, str(records), meta=ORDER_META, show=3)
	assert list(result.problems) == []
	assert [entry["rules"][0]["outcome"] for entry in result.sample] == ["Fired", "Skipped", "Skipped"]


def test_child_rows_that_are_not_rows_are_refused_with_their_place(tmp_path):
	from crm_automation.offline.simulator import run_simulation

	records = tmp_path / "orders.json"
	records.write_text(json.dumps({"Sales Order": [{"name": "SO-1", "items": "150"}]}))
	result = run_simulation(BIG_ITEMS_PACK, str(records), meta=ORDER_META)
	(problem,) = list(result.problems)
	assert "items" in problem.where and "list of objects" in problem.message


def test_the_command_takes_a_linked_records_file(tmp_path, capsys):
	from crm_automation.offline.cli import main

	pack = tmp_path / "pack.json"
	pack.write_text(json.dumps(PACK_NORTH))
	records = tmp_path / "issues.json"
	records.write_text(json.dumps({"Issue": [{"name": "ISS-1", "customer": "CUST-1"}]}))
	linked = tmp_path / "linked.json"
	linked.write_text(json.dumps(LINKED))
	args = ["simulate", "--pack", str(pack), "--records", str(records), "--format", "json", "--no-progress"]
	assert main([*args, "--linked", str(linked)]) == 0
	out = json.loads(capsys.readouterr().out)
	assert out["sample"][0]["rules"][0]["outcome"] == "Fired"
	linked.write_text("[1]")
	assert main([*args, "--linked", str(linked)]) == 2
	assert "linked records are an object of document types" in capsys.readouterr().err
