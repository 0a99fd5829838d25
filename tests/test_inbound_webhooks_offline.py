"""Inbound webhooks without a site: the body's checks, signatures, payload paths, `payload` in
conditions and templates, and payloads played by the offline simulator (issue 22)."""

import base64
import hashlib
import hmac
import json

import pytest

from crm_automation.engine import inbound
from crm_automation.engine.conditions import with_standard_fields
from crm_automation.engine.errors import RuleError
from crm_automation.engine.expressions import ExpressionError, evaluate_expression
from crm_automation.engine.templates import TemplateError, render_template
from crm_automation.offline.simulator import load_meta, run_simulation

SECRET = "s3cret"


def test_both_signature_conventions_are_checked_in_constant_time():
	body = b'{"a": 1}'
	digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
	assert inbound.signature_matches(SECRET, body, ours="sha256=" + digest.hex())
	assert inbound.signature_matches(SECRET, body, ours=digest.hex().upper())
	assert inbound.signature_matches(SECRET, body, frappes=base64.b64encode(digest).decode())
	assert not inbound.signature_matches(SECRET, body + b" ", ours="sha256=" + digest.hex())
	assert not inbound.signature_matches("other", body, frappes=base64.b64encode(digest).decode())
	assert not inbound.signature_matches(SECRET, body)
	assert not inbound.signature_matches("", body, ours=digest.hex())
	assert inbound.sign(SECRET, body)[inbound.SIGNATURE_HEADER] == "sha256=" + digest.hex()


@pytest.mark.parametrize(
	"raw",
	[
		b"{not json",
		b"[1, 2]",
		b'"text"',
		b"\xff\xfe",
		("[" * 40 + "]" * 40).encode(),
		b"x" * (inbound.MAX_BODY_BYTES + 1),
	],
)
def test_bodies_that_are_refused(raw):
	with pytest.raises(inbound.PayloadError):
		inbound.parse_payload(raw)


def test_payload_paths():
	payload = {"contact": {"email": "a@example.com"}, "items": [{"sku": "X"}]}
	assert inbound.value_at(payload, "contact.email") == "a@example.com"
	assert inbound.value_at(payload, "items.0.sku") == "X"
	assert inbound.value_at(payload, "items.5.sku") is None
	assert inbound.value_at(payload, "contact.email.more") is None
	assert inbound.token_hash("t") == hashlib.sha256(b"t").hexdigest()


def test_settings_are_checked():
	fields = {"email_id": {"fieldtype": "Data"}, "first_name": {"fieldtype": "Data"}}
	good = {"webhook_match_field": "email_id", "webhook_match_path": "contact.email"}
	assert inbound.check_inbound(good, fields, with_standard_fields) == {}
	for bad in (
		{**good, "webhook_match_field": "nope"},
		{**good, "webhook_match_path": "a..b"},
		{**good, "webhook_match_path": "a b"},
		{**good, "webhook_create_missing": 1},
		{**good, "webhook_field_map": '{"nope": "x"}'},
		{**good, "webhook_field_map": "[1]"},
		{**good, "webhook_field_map": '{"first_name": "{{ payload.__class__ }}"}'},
	):
		with pytest.raises(RuleError):
			inbound.check_inbound(bad, fields, with_standard_fields)


def test_conditions_and_templates_see_the_payload_read_only():
	payload = {"event": "signup", "contact": {"email": "a@example.com"}, "tags": ["x"]}
	with inbound.payload_context(payload):
		assert render_template("{{ payload.contact.email }}/{{ payload.tags[0] }}") == "a@example.com/x"
		assert evaluate_expression('payload.event == "signup" and payload.get("missing") is None', {})
		with pytest.raises(TemplateError):
			render_template("{{ payload.contact.update({'email': 'b'}) }}")
		with pytest.raises(ExpressionError):
			evaluate_expression("payload.__class__", {})
	assert payload["contact"]["email"] == "a@example.com"
	# Outside an inbound run there is no payload.
	assert render_template("{{ payload }}") == "None"


def _webhook_pack():
	return {
		"format": "crm_automation.pack",
		"version": 1,
		"name": "Inbound",
		"workflow_rules": [
			{
				"rule_name": "Signups",
				"document_type": "Lead",
				"trigger": "Webhook Received",
				"webhook_match_field": "email_id",
				"webhook_match_path": "contact.email",
				"webhook_create_missing": 1,
				"webhook_field_map": {
					"first_name": "{{ payload.contact.name }}",
					"email_id": "{{ payload.contact.email }}",
				},
				"condition_expression": 'payload.event != "ignore"',
				"actions": [
					{"action_type": "Add Comment", "message": "{{ payload.event }} from {{ doc.first_name }}"}
				],
			}
		],
	}


def test_the_simulator_finds_or_creates_the_target_of_each_payload(tmp_path):
	records = tmp_path / "leads.json"
	records.write_text(
		json.dumps(
			[{"doctype": "Lead", "name": "LEAD-1", "first_name": "Asha", "email_id": "asha@example.com"}]
		)
	)
	payloads = tmp_path / "payloads.jsonl"
	lines = [
		{"event": "renewal", "contact": {"email": "asha@example.com", "name": "A"}},
		{
			"rule": "Signups",
			"payload": {"event": "signup", "contact": {"email": "new@example.com", "name": "Nia"}},
		},
		{"event": "again", "contact": {"email": "new@example.com", "name": "Nia"}},
		{"event": "ignore", "contact": {"email": "asha@example.com"}},
	]
	payloads.write_text("\n".join(json.dumps(line) for line in lines))
	entries = []
	result = run_simulation(
		_webhook_pack(), str(records), load_meta(), show=0, details=entries.append, payloads=str(payloads)
	)
	assert not result.problems, [str(p) for p in result.problems]
	played = [entry for entry in entries if "target" in entry]
	assert [entry["target"] for entry in played] == ["found", "created", "found", "found"]
	assert [entry["name"] for entry in played][:3] == ["LEAD-1", "new-lead-1", "new-lead-1"]
	comments = [entry["rules"][0]["actions"][0]["message"] for entry in played[:3]]
	assert comments == ["renewal from Asha", "signup from Nia", "again from Nia"]
	assert played[3]["rules"][0]["outcome"] == "Skipped"
	# The record file's own rows do not run the webhook rule: only payloads do.
	assert all(entry.get("rules") == [] for entry in entries if "target" not in entry)
