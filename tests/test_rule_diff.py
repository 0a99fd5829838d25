"""Two versions of a rule compared in sentences (engine/rule_diff.py): no frappe."""

import copy

from crm_automation.engine.rule_diff import describe_changes, same

FIELDS = {
	"source": {"label": "Source", "fieldtype": "Link"},
	"status": {"label": "Status", "fieldtype": "Select"},
	"email_id": {"label": "Email", "fieldtype": "Data"},
}
LABELS = {"settings": {"priority": "Priority", "fire_mode": "Fire"}, "rows": {"message": "Message"}}

V1 = {
	"document_type": "Lead",
	"trigger": "New",
	"enabled": 1,
	"priority": 0,
	"fire_mode": "Every Time",
	"conditions": {"all": [{"field": "source", "op": "=", "value": "Exhibition"}]},
	"branches": [],
	"steps": [],
	"actions": [{"action_type": "Add Tag", "tag": "expo", "idx": 1}],
}


def changed(**edits):
	new = copy.deepcopy(V1)
	new.update(edits)
	return new


def test_no_change_says_nothing_and_row_order_numbers_do_not_count():
	again = copy.deepcopy(V1)
	again["actions"][0]["idx"] = 7
	again["conditions"] = {"all": [{"field": "source", "op": "=", "value": "Exhibition"}]}
	assert describe_changes(V1, again, FIELDS, LABELS) == []
	assert same({"all": []}, None) and same("", None) and same(1.0, 1)


def test_condition_became_and_action_added_as_in_the_issue():
	new = changed(
		conditions={
			"any": [
				{"field": "source", "op": "=", "value": "Exhibition"},
				{"field": "source", "op": "=", "value": "Trade Show"},
			]
		},
		actions=[
			*V1["actions"],
			{"action_type": "Send Email", "subject": "Welcome", "to_field": "email_id"},
		],
	)
	sentences = describe_changes(V1, new, FIELDS, LABELS)
	assert sentences[0] == (
		"the condition *Source is Exhibition* became *(Source is Exhibition or Source is Trade Show)*"
	)
	assert sentences[1].startswith("a Send Email action was added: *")
	assert len(sentences) == 2


def test_condition_added_and_removed():
	assert describe_changes(changed(conditions=None), V1, FIELDS) == [
		"the condition *Source is Exhibition* was added"
	]
	assert describe_changes(V1, changed(conditions={"all": []}), FIELDS) == [
		"the condition *Source is Exhibition* was removed"
	]


def test_trigger_changed_in_words():
	sentences = describe_changes(V1, changed(trigger="Save"), FIELDS)
	assert sentences == ["the trigger *When a Lead is created* became *When a Lead is saved*"]


def test_a_trigger_the_sentence_does_not_tell_apart_is_named_by_its_fields():
	labels = {"settings": {"trigger": "Trigger"}}
	old, new = changed(trigger="Unknown A"), changed(trigger="Unknown B")
	assert describe_changes(old, new, FIELDS, labels) == ["Trigger: Unknown A → Unknown B"]


def test_action_changed_removed_and_an_article():
	new = changed(actions=[{"action_type": "Add Tag", "tag": "trade"}])
	assert describe_changes(V1, new, FIELDS) == ["the Add Tag action *tag expo* became *tag trade*"]
	assert describe_changes(V1, changed(actions=[]), FIELDS) == ["the Add Tag action *tag expo* was removed"]
	added = changed(actions=[*V1["actions"], {"action_type": "Add Comment", "message": "hi"}])
	assert describe_changes(V1, added, FIELDS) == ["an Add Comment action was added: *add a comment*"]


def test_action_changed_in_a_field_its_words_do_not_show():
	old = changed(actions=[{"action_type": "Add Comment", "message": "hello"}])
	new = changed(actions=[{"action_type": "Add Comment", "message": "goodbye"}])
	assert describe_changes(old, new, FIELDS, LABELS) == ["*add a comment*: Message: hello → goodbye"]


def test_branches_added_removed_and_their_conditions():
	one = changed(
		branches=[
			{"branch_name": "Expo", "conditions": {"all": [{"field": "status", "op": "=", "value": "Open"}]}}
		]
	)
	assert describe_changes(V1, one, FIELDS) == ["the branch *Expo* was added"]
	assert describe_changes(one, V1, FIELDS) == ["the branch *Expo* was removed"]
	other = copy.deepcopy(one)
	other["branches"][0]["conditions"]["all"][0]["value"] = "Replied"
	assert describe_changes(one, other, FIELDS) == [
		"branch *Expo*: the condition *Status is Open* became *Status is Replied*"
	]


def test_steps_added_and_their_wait_changed():
	one = changed(
		steps=[{"step_name": "Nudge", "wait_type": "Duration", "wait_amount": 24, "wait_unit": "Hours"}]
	)
	assert describe_changes(V1, one, FIELDS) == ["the step *Nudge* was added: in 24 hours"]
	two = copy.deepcopy(one)
	two["steps"][0]["wait_amount"] = 2
	two["steps"][0]["wait_unit"] = "Days"
	assert describe_changes(one, two, FIELDS) == ["step *Nudge*: in 24 hours became in 2 days"]


def test_settings_with_their_labels_and_enabled_in_words():
	sentences = describe_changes(
		V1, changed(priority=5, fire_mode="Once per Document", enabled=0), FIELDS, LABELS
	)
	assert sentences == ["the rule was disabled", "Priority: 0 → 5", "Fire: Every Time → Once per Document"]


def test_sentences_are_translated_when_a_translator_is_set():
	from crm_automation.engine.i18n import translating

	with translating(lambda message: message.replace("was removed", "ENTFERNT")):
		assert describe_changes(V1, changed(actions=[]), FIELDS) == ["the Add Tag action *tag expo* ENTFERNT"]
