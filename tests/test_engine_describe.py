"""The rule sentence the Workflow Rule form shows: what happens, in words a non-programmer reads."""

import pytest
from sample_fields import LEAD_FIELDS

from crm_automation.engine.describe import (
	describe_action,
	describe_condition,
	describe_rule,
	describe_wait,
	translating,
)

FIELDS = {**LEAD_FIELDS, "unsubscribed": {"fieldtype": "Check", "label": "Unsubscribed"}}
FIELDS["email_id"] = {"fieldtype": "Data", "options": "Email", "label": "Email"}
FIELDS["status"] = {**LEAD_FIELDS["status"], "label": "Status"}
FIELDS["source"] = {**LEAD_FIELDS["source"], "label": "Source"}
LABELS = {"users": {"zhou@example.com": "Zhou", "li@example.com": "Li"}}


def leaf(field, op, value=None):
	return {"field": field, "op": op, "value": value}


class TestChecks:
	@pytest.mark.parametrize(
		("op", "value", "expected"),
		[
			("=", 0, "Unsubscribed is not checked"),
			("=", "0", "Unsubscribed is not checked"),
			("=", 1, "Unsubscribed is checked"),
			("=", True, "Unsubscribed is checked"),
			("!=", 1, "Unsubscribed is not checked"),
			("!=", 0, "Unsubscribed is checked"),
		],
	)
	def test_check_fields_read_checked_or_not(self, op, value, expected):
		assert describe_condition({"all": [leaf("unsubscribed", op, value)]}, FIELDS) == expected

	def test_a_check_with_an_odd_value_is_not_guessed(self):
		assert (
			describe_condition({"all": [leaf("unsubscribed", "=", "maybe")]}, FIELDS)
			== "Unsubscribed is maybe"
		)

	def test_other_fields_keep_their_operator_phrase(self):
		tree = {"any": [leaf("source", "=", "Exhibition"), leaf("annual_revenue", "between", [1, 5])]}
		assert (
			describe_condition(tree, FIELDS) == "(Source is Exhibition or Annual Revenue is between 1 and 5)"
		)

	def test_a_row_still_being_filled_in_reads_as_unfinished(self):
		assert describe_condition({"all": [{"field": "source", "op": "!="}]}, FIELDS) == "Source is not …"

	def test_linked_field_labels_come_in_from_the_site(self):
		labels = {"fields": {"customer.territory": "Customer → Territory"}}
		tree = {"all": [leaf("customer.territory", "=", "North")]}
		assert describe_condition(tree, FIELDS, labels) == "Customer → Territory is North"


class TestActions:
	def test_email_names_its_template_and_recipient(self):
		action = {
			"action_type": "Send Email",
			"email_template": "Welcome (Exhibition)",
			"to_field": "email_id",
		}
		text = describe_action(action, FIELDS, document_type="Lead")
		assert text == "e-mail 'Welcome (Exhibition)' to the Lead's Email"

	def test_email_without_template_names_its_subject_and_everyone_it_reaches(self):
		action = {
			"action_type": "Send Email",
			"subject": "Hello",
			"to_owner": 1,
			"to_role": "Sales Manager",
			"to_users": "zhou@example.com",
		}
		assert describe_action(action, FIELDS, LABELS) == (
			"e-mail 'Hello' to the owner, everyone with role Sales Manager, Zhou"
		)

	def test_bare_email_is_still_a_sentence(self):
		assert describe_action({"action_type": "Send Email"}, FIELDS) == "send an e-mail"

	def test_round_robin_names_users_by_full_name(self):
		action = {"action_type": "Assign", "to_users": "zhou@example.com\nli@example.com"}
		assert describe_action(action, FIELDS, LABELS) == "assign round robin to Zhou, Li"

	def test_unknown_users_show_their_id(self):
		action = {"action_type": "Assign", "to_users": "x@example.com", "assign_strategy": "Load Balancing"}
		assert describe_action(action, FIELDS, LABELS) == "assign to the least busy of x@example.com"

	def test_assign_to_field_and_role(self):
		assert (
			describe_action(
				{"action_type": "Assign", "assign_to_type": "User in Field", "to_field": "lead_owner"}, FIELDS
			)
			== "assign to the lead_owner"
		)
		action = {
			"action_type": "Assign",
			"assign_to_type": "Role",
			"to_role": "Sales User",
			"only_if_unassigned": 1,
		}
		assert (
			describe_action(action, FIELDS)
			== "assign round robin to everyone with role Sales User, if not assigned yet"
		)

	def test_set_value_on_a_check_and_on_a_linked_document(self):
		assert describe_action(
			{"action_type": "Set Value", "target_field": "unsubscribed", "value": "1"}, FIELDS
		) == ("check Unsubscribed")
		action = {
			"action_type": "Set Value",
			"target_field": "status",
			"value": "Open",
			"target_link_field": "source",
		}
		assert describe_action(action, FIELDS) == "set Status to Open on the Source"

	def test_todo_and_sms(self):
		todo = {"action_type": "Create ToDo", "to_assignees": 1, "due_in": 1, "due_unit": "Days"}
		assert describe_action(todo, FIELDS) == "create a ToDo for the assignees, due in 1 day"
		sms = {"action_type": "Send SMS", "sms_phone_field": "mobile_no", "sms_to_users": "li@example.com"}
		assert describe_action(sms, FIELDS, LABELS, "Lead") == "text the Lead's mobile_no, Li"


def rule(**values):
	return {"document_type": "Lead", "trigger": "New", "actions": [], **values}


class TestRule:
	def test_plain_rule(self):
		text = describe_rule(
			rule(
				conditions={"all": [leaf("unsubscribed", "=", 0)]},
				actions=[
					{
						"action_type": "Send Email",
						"email_template": "Welcome (Exhibition)",
						"to_field": "email_id",
					}
				],
			),
			FIELDS,
		)
		assert (
			text
			== "When a Lead is created and Unsubscribed is not checked → e-mail 'Welcome (Exhibition)' to the Lead's Email"
		)

	def test_branches_read_if_otherwise(self):
		text = describe_rule(
			rule(
				branches=[
					{"branch_name": "Fair", "conditions": {"all": [leaf("source", "=", "Exhibition")]}},
					{"branch_name": "Rest", "is_else": 1},
				],
				actions=[
					{"action_type": "Add Tag", "tag": "new"},
					{
						"action_type": "Assign",
						"to_users": "zhou@example.com\nli@example.com",
						"branch": "Fair",
					},
					{"action_type": "Add Comment", "branch": "Rest"},
				],
			),
			FIELDS,
			LABELS,
		)
		assert text == (
			"When a Lead is created → tag new; if Source is Exhibition → assign round robin to Zhou, Li; "
			"otherwise → add a comment"
		)

	def test_an_empty_rule_does_nothing_in_words(self):
		assert (
			describe_rule(rule(trigger="Save", document_type="Issue"), FIELDS)
			== "When an Issue is saved → nothing"
		)

	def test_steps_say_their_wait_and_condition(self):
		text = describe_rule(
			rule(
				steps=[
					{
						"step_name": "Chase",
						"wait_type": "Business Time",
						"wait_amount": 24,
						"wait_unit": "Hours",
						"step_conditions": {"all": [leaf("status", "=", "Open")]},
					},
					{"step_name": "Again", "wait_type": "Duration", "wait_amount": 2, "wait_unit": "Days"},
				],
				actions=[
					{"action_type": "Send Email", "subject": "Hi", "to_owner": 1},
					{"action_type": "Create ToDo", "to_owner": 1, "step": "Chase"},
					{
						"action_type": "System Notification",
						"subject": "Still open",
						"to_owner": 1,
						"step": "Again",
					},
				],
				stop_conditions={"all": [leaf("status", "=", "Converted")]},
			),
			FIELDS,
		)
		assert text == (
			"When a Lead is created → e-mail 'Hi' to the owner; "
			"in 24 business hours, if Status is Open: create a ToDo for the owner; "
			"2 days later: notify the owner: Still open; stop when Status is Converted"
		)

	@pytest.mark.parametrize(
		("step", "expected"),
		[
			({"wait_type": "Duration", "wait_amount": 1, "wait_unit": "Hours"}, "in 1 hour"),
			(
				{"wait_type": "Until Weekday and Time", "weekday": "Monday", "at_time": "09:00"},
				"on the next Monday at 09:00",
			),
			(
				{
					"wait_type": "Until Date Field",
					"date_field": "expected_close",
					"wait_amount": 3,
					"wait_unit": "Days",
				},
				"3 days before expected_close",
			),
			(
				{
					"wait_type": "Until Condition",
					"until_conditions": {"all": [leaf("status", "=", "Replied")]},
					"wait_amount": 48,
				},
				"when Status is Replied (at most 48 hours)",
			),
		],
	)
	def test_each_wait_kind(self, step, expected):
		assert describe_wait(step, FIELDS) == expected

	def test_sentence_is_built_from_translated_templates(self):
		"""Word order is the translation's: every phrase goes through the translator whole."""
		catalogue = {
			"When a {0} is created": "创建{0}时",
			"Lead": "线索",
			"{0} is not checked": "{0}未勾选",
			"Unsubscribed": "已退订",
			"{0} and {1}": "{0}且{1}",
			"{0} → {1}": "{0} → {1}",
			"e-mail '{0}' to {1}": "向{1}发送邮件“{0}”",
			"the {0}'s {1}": "{0}的{1}",
			"Email": "邮箱",
		}
		seen = []

		def translate(message):
			seen.append(message)
			return catalogue.get(message, message)

		with translating(translate):
			text = describe_rule(
				rule(
					conditions={"all": [leaf("unsubscribed", "=", 0)]},
					actions=[
						{"action_type": "Send Email", "email_template": "Welcome", "to_field": "email_id"}
					],
				),
				FIELDS,
			)
		assert text == "创建线索时且已退订未勾选 → 向线索的邮箱发送邮件“Welcome”"
		assert (
			describe_condition({"all": [leaf("unsubscribed", "=", 0)]}, FIELDS)
			== "Unsubscribed is not checked"
		)


def test_no_phrase_is_built_before_it_is_translated():
	"""An f-string or a concatenation inside _() has no catalogue entry and breaks word order."""
	import ast
	import pathlib

	import crm_automation.engine.describe as module

	calls = [
		node
		for node in ast.walk(ast.parse(pathlib.Path(module.__file__).read_text()))
		if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_"
	]
	assert len(calls) > 100
	for call in calls:
		assert len(call.args) == 1 and not isinstance(call.args[0], ast.JoinedStr | ast.BinOp), ast.unparse(
			call
		)
