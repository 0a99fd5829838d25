"""Tier 1: linked records for the offline simulator, and packs that read linked documents."""

import json

import pytest

from crm_automation.engine import compile_workflow_rule
from crm_automation.engine.packs import check_pack
from crm_automation.input_files import InputError
from crm_automation.linked_records import checked_linked_records, read_linked_records, with_linked
from crm_automation.simulator import shipped_meta

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
