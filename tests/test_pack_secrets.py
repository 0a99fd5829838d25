"""Pack placeholders for webhook secrets, without a bench: where they are, how they are named, and
that a pack carrying them still checks."""

from crm_automation.engine.packs import SECRET_PLACEHOLDER, check_pack, placeholder_key, secret_placeholders
from tests.sample_fields import LEAD_FIELDS


def pack(*actions):
	return {
		"format": "crm_automation.pack",
		"version": 1,
		"name": "p",
		"workflow_rules": [
			{"rule_name": "Hook: A=B", "document_type": "Lead", "trigger": "New", "actions": list(actions)}
		],
	}


def meta_for(doctype):
	return LEAD_FIELDS if doctype == "Lead" else None


def test_placeholders_are_found_with_their_keys_and_rows():
	data = pack(
		{"action_type": "Add Comment", "message": "x"},
		{"action_type": "Webhook", "url": "https://h.example.com/", "secret": SECRET_PLACEHOLDER},
		{
			"action_type": "Webhook",
			"url": "https://h.example.com/",
			"headers": SECRET_PLACEHOLDER,
			"secret": "clear",
		},
	)
	found = secret_placeholders(data)
	assert [(p["key"], p["row"], p["field"]) for p in found] == [
		("Hook: A=B:2:secret", 2, "secret"),
		("Hook: A=B:3:headers", 3, "headers"),
	]
	assert found[0]["path"] == "workflow_rules[0] (Hook: A=B).actions[1].secret"
	assert placeholder_key("R", 1, "secret") == "R:1:secret"


def test_a_pack_with_placeholders_checks_and_bad_clear_headers_do_not():
	ok = check_pack(
		pack({"action_type": "Webhook", "url": "https://h.example.com/", "headers": SECRET_PLACEHOLDER}),
		meta_for,
	)
	assert ok.ok, ok.problems
	bad = check_pack(
		pack({"action_type": "Webhook", "url": "https://h.example.com/", "headers": "not json"}), meta_for
	)
	assert any("headers" in str(p) for p in bad.problems)


def test_malformed_packs_have_no_placeholders():
	for data in (
		None,
		42,
		[],
		{"workflow_rules": 5},
		{"workflow_rules": [5, {"actions": "x"}, {"actions": [7]}]},
	):
		assert secret_placeholders(data) == []
