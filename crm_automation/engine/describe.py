"""Rules in words: "When a Lead is created and Source is Exhibition → assign by round robin to ..."

Used by the desk (the sentence at the top of the form, row summaries) and by the simulator."""

from .conditions import is_empty_condition
from .workflow import split_list

_TRIGGER_PHRASES = {
	"New": "is created",
	"Save": "is saved",
	"Submit": "is submitted",
	"Cancel": "is cancelled",
	"Delete": "is deleted",
	"Validate": "is about to be saved",
	"Manual": "is run by hand",
}
_OP_PHRASES = {
	"=": "is",
	"!=": "is not",
	">": "is greater than",
	">=": "is at least",
	"<": "is less than",
	"<=": "is at most",
	"in": "is one of",
	"not in": "is none of",
	"like": "contains",
	"not like": "does not contain",
	"is set": "is set",
	"is not set": "is not set",
	"between": "is between",
	"changed": "changed",
	"changed from": "changed from",
	"changed to": "changed to",
}


def _label(fields, fieldname):
	field = (fields or {}).get(fieldname) or {}
	return field.get("label") or fieldname


def _value(value):
	if isinstance(value, list | tuple):
		return " and ".join(str(v) for v in value) if len(value) == 2 else ", ".join(str(v) for v in value)
	return str(value)


def describe_condition(tree, fields=None):
	if is_empty_condition(tree):
		return ""
	if "field" in tree:
		phrase = _OP_PHRASES.get(tree.get("op"), tree.get("op"))
		text = f"{_label(fields, tree['field'])} {phrase}"
		if tree.get("op") not in ("is set", "is not set", "changed"):
			text += f" {_value(tree.get('value'))}"
		return text
	mode = "all" if "all" in tree else "any"
	parts = [describe_condition(child, fields) for child in tree[mode]]
	parts = [p for p in parts if p]
	joined = (" and " if mode == "all" else " or ").join(parts)
	return f"({joined})" if len(parts) > 1 and mode == "any" else joined


def describe_trigger(rule, fields=None):
	doctype = rule.get("document_type") or "document"
	article = "an" if doctype[:1].lower() in "aeiou" else "a"
	trigger = rule.get("trigger")
	if trigger == "Value Change":
		text = f"When {_label(fields, rule.get('trigger_field'))} of {article} {doctype} changes"
		if rule.get("from_value"):
			text += f" from {rule['from_value']}"
		if rule.get("to_value"):
			text += f" to {rule['to_value']}"
		return text
	if trigger == "Time":
		offset = rule.get("time_offset") or 0
		unit = (rule.get("time_unit") or "Days").lower()
		when = "on" if not offset else f"{offset} {unit} {(rule.get('time_direction') or 'Before').lower()}"
		return f"{when[0].upper()}{when[1:]} the {_label(fields, rule.get('time_field'))} of {article} {doctype}"
	return f"When {article} {doctype} {_TRIGGER_PHRASES.get(trigger, 'changes')}"


def describe_action(action, fields=None):
	kind = action.get("action_type")
	if kind == "Assign":
		target = action.get("assign_to_type") or "Listed Users"
		who = {
			"Listed Users": ", ".join(split_list(action.get("to_users"))),
			"Role": action.get("to_role"),
			"User Group": action.get("user_group"),
			"User in Field": f"the user in {_label(fields, action.get('to_field'))}",
		}.get(target)
		if target == "User in Field":
			return f"assign to {who}"
		return f"assign by {(action.get('assign_strategy') or 'Round Robin').lower()} to {who or '?'}"
	if kind == "Send Email":
		what = f"email template {action['email_template']}" if action.get("email_template") else "an email"
		return f"send {what}"
	if kind == "System Notification":
		return f"notify: {action.get('subject') or ''}".strip()
	if kind == "Create ToDo":
		return "create a ToDo"
	if kind == "Set Value":
		return f"set {_label(fields, action.get('target_field'))} to {action.get('value')}"
	if kind == "Add Tag":
		return f"tag {action.get('tag')}"
	if kind == "Add Comment":
		return "add a comment"
	if kind == "Create Document":
		return f"create a {action.get('target_doctype')}"
	if kind == "Webhook":
		return f"call {action.get('url')}"
	if kind == "Reject":
		return "reject the save"
	if kind == "Unassign":
		return "close its assignments"
	return str(kind).lower()


def describe_rule(rule, fields=None):
	parts = [describe_trigger(rule, fields)]
	condition = describe_condition(rule.get("conditions"), fields)
	if condition:
		parts.append(f"and {condition}")
	sentence = " ".join(parts)
	actions = rule.get("actions") or []
	common = [describe_action(a, fields) for a in actions if not a.get("branch")]
	branch_texts = []
	for branch in rule.get("branches") or []:
		name = branch.get("branch_name")
		branch_actions = [describe_action(a, fields) for a in actions if a.get("branch") == name]
		if branch.get("is_else"):
			label = "otherwise"
		else:
			label = f"if {describe_condition(branch.get('conditions'), fields) or name}"
		branch_texts.append(f"{label}: {', '.join(branch_actions) or 'nothing'}")
	outcome = ", ".join(common)
	if branch_texts:
		outcome = "; ".join(filter(None, [outcome, *branch_texts]))
	return f"{sentence} → {outcome or 'nothing'}"
