"""What a mined pattern means in words, and the Workflow Rule (as the desk stores it) that would do
the same work. A pattern is a tuple ``(family, doctype, condition, action)``:

* family ``from``: condition ``None`` (every new document) or ``(field, value)`` of the new document;
* family ``by_field``: condition is the field that holds the user the document was assigned to;
* family ``after``: condition is the transition ``("", "created")`` or ``(field, value)``;
* action ``("Assign", user)``, ``("Assign", field)`` (by_field), ``("Set Value", field, value)``,
  ``("Send Email", "template" | "subject", key)``, ``("Create ToDo" | "Add Comment", text key, days)``.
"""

from .i18n import _

RULE_NAME_LENGTH = 120
CREATED_KEY = ("", "created")


def _identity(text):
	return text


def pattern_id(pattern):
	family, doctype, condition, action = pattern
	if family == "after":
		condition_part = "created" if condition == CREATED_KEY else f"{condition[0]}->{condition[1]}"
	elif family == "by_field":
		condition_part = f"field:{condition}"
	else:
		condition_part = "*" if condition is None else f"{condition[0]}={condition[1]}"
	return "|".join(str(part) for part in (family, doctype, condition_part, *action))


def describe_condition(family, condition):
	if family == "after":
		if condition == CREATED_KEY:
			return {"event": "created"}
		return {"event": "changed", "field": condition[0], "value": condition[1]}
	if family == "by_field":
		return {"user_field": condition}
	if condition is None:
		return {}
	return {"field": condition[0], "value": condition[1]}


def describe_action(action, sample=None):
	kind = action[0]
	if kind == "Assign":
		return {"type": kind, "user": action[1]}
	if kind == "Set Value":
		return {"type": kind, "field": action[1], "value": action[2]}
	if kind == "Send Email":
		described = {"type": kind, action[1]: action[2]}
		if sample:
			described.update(template=sample.get("template") or "", subject=sample.get("subject") or "")
		return described
	described = {"type": kind, "days": action[2]}
	if sample:
		described["text"] = sample.get("text") or ""
	return described


def summary(proposal, translate=_identity):
	"""One sentence for a proposal; ``translate`` is the site's ``_`` (placeholders filled after)."""
	_ = translate
	condition, action = proposal["condition"], proposal["action"]
	doctype = _(proposal["doctype"])
	if "event" in condition:
		if condition["event"] == "created":
			when = _("After a {0} was created").format(doctype)
		else:
			when = _("After {0} of a {1} changed to {2}").format(
				condition["field"], doctype, condition["value"]
			)
	elif "user_field" in condition:
		when = _("New {0}").format(doctype)
	elif condition:
		when = _("New {0} with {1} = {2}").format(
			doctype, condition["field"], _value_text(condition["value"], _)
		)
	else:
		when = _("Every new {0}").format(doctype)
	kind = action["type"]
	if kind == "Assign" and "user_field" in condition:
		what = _("assigned by hand to the user in {0}").format(condition["user_field"])
	elif kind == "Assign" and ", " in action["user"]:
		what = _("assigned by hand to one of {0}").format(action["user"])
	elif kind == "Assign":
		what = _("assigned by hand to {0}").format(action["user"])
	elif kind == "Set Value":
		what = _("{0} set by hand to {1}").format(action["field"], _value_text(action["value"], _))
	elif kind == "Send Email":
		what = _("e-mail {0} sent by hand").format(_quoted(action.get("template") or action.get("subject")))
	elif kind == "Create ToDo":
		what = _("ToDo {0} written by hand {1}").format(
			_quoted(action.get("text")), _days_text(action["days"], _)
		)
	else:
		what = _("comment {0} written by hand {1}").format(
			_quoted(action.get("text")), _days_text(action["days"], _)
		)
	figures = _("{0}% of {1}, {2} times").format(
		round(proposal["confidence"] * 100, 1), proposal["observed"], proposal["support"]
	)
	return f"{when}: {what} ({figures})"


def _value_text(value, _):
	return _("(not set)") if value in ("", None) else str(value)


def _quoted(text):
	text = str(text or "")
	return f"“{text[:80]}{'…' if len(text) > 80 else ''}”"


def _days_text(days, _):
	return _("the same day") if days == 0 else _("{0} day(s) later").format(days)


def rule_for(pattern, sample, proposal):
	"""The Workflow Rule (a plain dict, as in a rule pack) that would have done the same work."""
	family, doctype, condition, action = pattern
	rule = {
		"rule_name": proposal_rule_name(proposal),
		"document_type": doctype,
		"enabled": 0,
		"fire_mode": "Every Time",
		"description": _("Proposed from the site's history: {0}").format(summary(proposal)),
		"conditions": {},
	}
	if family in ("from", "by_field"):
		rule["trigger"] = "New"
		if family == "from" and condition is not None:
			rule["conditions"] = {"all": [_leaf(*condition)]}
	elif action[0] in ("Create ToDo", "Add Comment") and action[2] >= 1:
		rule.update(trigger="Time", time_offset=action[2], time_unit="Days", time_direction="After")
		if condition == CREATED_KEY:
			rule["time_field"] = "creation"
		else:
			# no field records when the status changed: "N days after the last change while the
			# status still is X" is the closest a Time rule comes
			rule["time_field"] = "modified"
			rule["conditions"] = {"all": [_leaf(*condition)]}
	elif condition == CREATED_KEY:
		rule["trigger"] = "New"
	else:
		rule.update(trigger="Value Change", trigger_field=condition[0], to_value=str(condition[1]))
	rule["actions"] = [_action_row(family, condition, action, sample or {})]
	return rule


def proposal_rule_name(proposal):
	action = proposal["action"]
	kind = action["type"]
	target = {
		"Assign": action.get("user") or proposal["condition"].get("user_field"),
		"Set Value": f"{action.get('field')} = {action.get('value')}",
		"Send Email": action.get("template") or action.get("subject"),
	}.get(kind, action.get("text"))
	condition = proposal["condition"]
	if "event" in condition:
		when = (
			"on create"
			if condition["event"] == "created"
			else f"when {condition['field']} → {condition['value']}"
		)
	elif condition.get("field"):
		when = f"when {condition['field']} = {condition['value']}"
	else:
		when = "on create"
	if action.get("days"):
		when += f" + {action['days']} days"
	name = f"{proposal['doctype']}: {kind} {target} {when}".replace("{{", "").replace("}}", "")
	return " ".join(name.split())[:RULE_NAME_LENGTH]


def _leaf(field, value):
	if value in ("", None):
		return {"field": field, "op": "is not set"}
	return {"field": field, "op": "=", "value": value}


def _action_row(family, condition, action, sample):
	kind = action[0]
	if kind == "Assign":
		if family == "by_field":
			return {
				"action_type": kind,
				"assign_to_type": "User in Field",
				"to_field": action[1],
				"only_if_unassigned": 1,
			}
		return {
			"action_type": kind,
			"assign_to_type": "Listed Users",
			"to_users": action[1],
			"assign_strategy": "Round Robin",
			"only_if_unassigned": 1,
		}
	if kind == "Set Value":
		return {"action_type": kind, "target_field": action[1], "value": action[2]}
	if kind == "Send Email":
		row = {"action_type": kind}
		if sample.get("template"):
			row["email_template"] = sample["template"]
		else:
			subject = sample.get("subject") or ""
			row.update(subject=subject, message=sample.get("message") or f"<p>{subject}</p>")
		if sample.get("to_field"):
			row["to_field"] = sample["to_field"]
		else:
			row["to_assignees"] = 1
		return row
	if kind == "Create ToDo":
		row = {
			"action_type": kind,
			"message": sample.get("text") or "",
			"due_in": 0,
			"due_unit": "Days",
			"todo_priority": "Medium",
		}
		if sample.get("for_assignee") or not sample.get("to"):
			row["to_assignees"] = 1
		else:
			row["to_users"] = sample["to"]
		return row
	return {"action_type": kind, "message": sample.get("text") or ""}
