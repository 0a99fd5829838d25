"""Rules in words: "When a Lead is created and Unsubscribed is not checked → e-mail 'Welcome' to
the Lead's Email; in 24 business hours, if Status is Open: create a ToDo for the owner".

Used by the desk (the sentence at the top of the form, row summaries) and by the simulator.

Every phrase is a whole template with placeholders, marked with ``_()`` so the translation
extractor finds it; the site passes its translator in with :func:`translating` (the engine imports
no frappe). What the engine cannot know (users' full names, e-mail template subjects, labels of
linked fields) comes in as ``labels``: ``{"users": {email: full name}, "fields": {path: label}}``."""

import functools

from .conditions import is_empty_condition
from .fieldtypes import split_list
from .i18n import _, translating
from .schedules import describe_schedule

# Each trigger as (after "a", after "an"): English needs the article, other languages ignore it.
_TRIGGER_PHRASES = {
	"New": (lambda: _("When a {0} is created"), lambda: _("When an {0} is created")),
	"Save": (lambda: _("When a {0} is saved"), lambda: _("When an {0} is saved")),
	"Submit": (lambda: _("When a {0} is submitted"), lambda: _("When an {0} is submitted")),
	"Cancel": (lambda: _("When a {0} is cancelled"), lambda: _("When an {0} is cancelled")),
	"Delete": (lambda: _("When a {0} is deleted"), lambda: _("When an {0} is deleted")),
	"Validate": (lambda: _("When a {0} is about to be saved"), lambda: _("When an {0} is about to be saved")),
	"Manual": (lambda: _("When a {0} is run by hand"), lambda: _("When an {0} is run by hand")),
	"Communication Received": (lambda: _("When a {0} gets an e-mail"), lambda: _("When an {0} gets an e-mail")),
}

# {0} the field, {1} the value (a pair: {1} and {2}).
_OP_PHRASES = {
	"=": lambda: _("{0} is {1}"),
	"!=": lambda: _("{0} is not {1}"),
	">": lambda: _("{0} is greater than {1}"),
	">=": lambda: _("{0} is at least {1}"),
	"<": lambda: _("{0} is less than {1}"),
	"<=": lambda: _("{0} is at most {1}"),
	"in": lambda: _("{0} is one of {1}"),
	"not in": lambda: _("{0} is none of {1}"),
	"like": lambda: _("{0} contains {1}"),
	"not like": lambda: _("{0} does not contain {1}"),
	"is set": lambda: _("{0} is set"),
	"is not set": lambda: _("{0} is not set"),
	"between": lambda: _("{0} is between {1} and {2}"),
	"changed": lambda: _("{0} changed"),
	"changed from": lambda: _("{0} changed from {1}"),
	"changed to": lambda: _("{0} changed to {1}"),
}

_AGGREGATES = {
	"any": lambda: _("any {0}"),
	"all": lambda: _("every {0}"),
	"sum": lambda: _("the sum of {0}"),
	"count": lambda: _("the number of {0}"),
}

_UNITS = {
	"Minutes": (lambda: _("{0} minute"), lambda: _("{0} minutes")),
	"Hours": (lambda: _("{0} hour"), lambda: _("{0} hours")),
	"Days": (lambda: _("{0} day"), lambda: _("{0} days")),
}
_BUSINESS_UNITS = {
	"Minutes": (lambda: _("{0} business minute"), lambda: _("{0} business minutes")),
	"Hours": (lambda: _("{0} business hour"), lambda: _("{0} business hours")),
	"Days": (lambda: _("{0} working day"), lambda: _("{0} working days")),
}
_WEEKDAYS = {
	"Monday": lambda: _("Monday"),
	"Tuesday": lambda: _("Tuesday"),
	"Wednesday": lambda: _("Wednesday"),
	"Thursday": lambda: _("Thursday"),
	"Friday": lambda: _("Friday"),
	"Saturday": lambda: _("Saturday"),
	"Sunday": lambda: _("Sunday"),
}
_ASSIGN_STRATEGIES = {
	"Round Robin": lambda: _("assign round robin to {0}"),
	"Load Balancing": lambda: _("assign to the least busy of {0}"),
	"Everyone": lambda: _("assign to each of {0}"),
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "", "none")


def _list(items):
	return _(", ").join(item for item in items if item)


def _label(fields, fieldname, labels=None):
	known = ((labels or {}).get("fields") or {}).get(fieldname)
	if known:
		return known
	field = (fields or {}).get(fieldname) or {}
	return _(field.get("label")) if field.get("label") else fieldname


def _value(value):
	if value is None or value == "":
		return "…"  # a row still being filled in
	if isinstance(value, list | tuple):
		return _list(str(v) for v in value)
	return str(value)


def _flag(value):
	"""A Check condition's value as True/False, None when it is not a plain 0 or 1."""
	text = str(value).strip().lower()
	return True if text in _TRUE else False if text in _FALSE else None


def _amount(amount, unit, table=_UNITS):
	amount = float(amount or 0)
	one, many = table.get(unit or "Hours", table["Hours"])
	return (one if amount == 1 else many)().format(f"{amount:g}")


def _document_type(rule):
	return _(rule.get("document_type") or "document")


# ------------------------------------------------------------------------------------- conditions


def describe_condition(tree, fields=None, labels=None):
	if is_empty_condition(tree):
		return ""
	if "field" in tree:
		return _describe_leaf(tree, fields, labels)
	mode = "all" if "all" in tree else "any"
	parts = [describe_condition(child, fields, labels) for child in tree[mode]]
	parts = [p for p in parts if p]
	# Pairwise templates, not a padded " and ": a translated separator loses its spaces (frappe._ strips).
	template = (
		_("{0} and {1}", context="Workflow Rule")
		if mode == "all"
		else _("{0} or {1}", context="Workflow Rule")
	)
	joined = functools.reduce(template.format, parts) if parts else ""
	return f"({joined})" if len(parts) > 1 and mode == "any" else joined


def _describe_leaf(tree, fields, labels):
	op = tree.get("op")
	value = tree.get("value")
	field = (fields or {}).get(tree["field"]) or {}
	label = _label(fields, tree["field"], labels)
	if tree.get("agg") in _AGGREGATES:
		label = _AGGREGATES[tree["agg"]]().format(label)
	if field.get("fieldtype") == "Check" and op in ("=", "!=") and _flag(value) is not None:
		checked = _flag(value) == (op == "=")
		return (_("{0} is checked") if checked else _("{0} is not checked")).format(label)
	template = _OP_PHRASES.get(op)
	if not template:
		return f"{label} {op} {_value(value)}"
	if op == "between":
		pair = list(value) if isinstance(value, list | tuple) and len(value) == 2 else [value, ""]
		return template().format(label, pair[0], pair[1])
	if field.get("fieldtype") == "Select" and value not in (None, ""):
		# Options are words the desk shows translated (Open reads 打开 in zh); other values are data.
		value = [_(str(v)) for v in value] if isinstance(value, list | tuple) else _(str(value))
	return template().format(label, _value(value))


# ------------------------------------------------------------------------------------------ trigger


def describe_trigger(rule, fields=None, labels=None):
	doctype = _document_type(rule)
	trigger = rule.get("trigger")
	if trigger == "Value Change":
		text = _("When {0} of a {1} changes").format(
			_label(fields, rule.get("trigger_field"), labels), doctype
		)
		return _with_from_to(text, rule)
	if trigger == "Score Band Changed":
		return _with_from_to(_("When the score band of a {0} changes").format(doctype), rule)
	if trigger == "Time":
		field = _label(fields, rule.get("time_field"), labels)
		if not rule.get("time_offset"):
			return _("On the {0} of a {1}").format(field, doctype)
		amount = _amount(rule.get("time_offset"), rule.get("time_unit") or "Days")
		if (rule.get("time_direction") or "Before") == "After":
			return _("{0} after the {1} of a {2}").format(amount, field, doctype)
		return _("{0} before the {1} of a {2}").format(amount, field, doctype)
	if trigger == "Schedule":
		return _("{0}, for each {1}").format(describe_schedule(rule), doctype)
	phrases = _TRIGGER_PHRASES.get(trigger)
	if not phrases:
		return _("When a {0} changes").format(doctype)
	article_an = (rule.get("document_type") or "document")[:1].lower() in "aeiou"
	return phrases[1 if article_an else 0]().format(doctype)


def _with_from_to(text, rule):
	if rule.get("from_value") and rule.get("to_value"):
		return _("{0} from {1} to {2}", context="Workflow Rule").format(
			text, rule["from_value"], rule["to_value"]
		)
	if rule.get("from_value"):
		return _("{0} from {1}", context="Workflow Rule").format(text, rule["from_value"])
	if rule.get("to_value"):
		return _("{0} to {1}", context="Workflow Rule").format(text, rule["to_value"])
	return text


# ------------------------------------------------------------------------------------------ actions


def describe_action(action, fields=None, labels=None, document_type=None):
	kind = action.get("action_type")
	describe = _ACTIONS.get(kind)
	text = describe(action, fields, labels or {}, document_type) if describe else _(str(kind or "")).lower()
	if action.get("target_link_field"):
		return _("{0} on the {1}").format(text, _label(fields, action["target_link_field"], labels))
	return text


def _user_names(users, labels):
	names = labels.get("users") or {}
	return _list(names.get(user) or user for user in users)


def _field_of_document(fields, fieldname, labels, document_type):
	label = _label(fields, fieldname, labels)
	if document_type:
		return _("the {0}'s {1}").format(_(document_type), label)
	return _("the {0}").format(label)


def _recipients(action, fields, labels, document_type):
	"""Who a message reaches, from the action's recipient fields, in the order they are resolved."""
	who = []
	if action.get("to_field"):
		who.append(_field_of_document(fields, action["to_field"], labels, document_type))
	if action.get("to_owner"):
		who.append(_("the owner"))
	if action.get("to_assignees"):
		who.append(_("the assignees"))
	if action.get("to_role"):
		who.append(_("everyone with role {0}").format(_(action["to_role"])))
	users = split_list(action.get("to_users"))
	if users:
		who.append(_user_names(users, labels))
	return _list(who)


def _assign(action, fields, labels, document_type):
	target = action.get("assign_to_type") or "Listed Users"
	if target == "User in Field":
		text = _("assign to {0}").format(
			_field_of_document(fields, action.get("to_field"), labels, document_type)
		)
	else:
		who = {
			"Listed Users": lambda: _user_names(split_list(action.get("to_users")), labels),
			"Role": lambda: _("everyone with role {0}").format(_(action.get("to_role") or "?")),
			"User Group": lambda: _("the group {0}").format(action.get("user_group") or "?"),
		}.get(target, lambda: "")()
		strategy = _ASSIGN_STRATEGIES.get(
			action.get("assign_strategy") or "Round Robin", _ASSIGN_STRATEGIES["Round Robin"]
		)
		text = strategy().format(who or "?")
	text = _who_is_in(action, text, labels)
	if action.get("only_if_unassigned"):
		return _("{0}, if not assigned yet").format(text)
	return text


def _who_is_in(action, text, labels):
	"""Who is in (engine/availability.py): the users skipped, and the fallback."""
	if action.get("skip_away") and action.get("skip_off_hours"):
		text = _("{0}, skipping users who are away or outside their working hours").format(text)
	elif action.get("skip_away"):
		text = _("{0}, skipping users who are away").format(text)
	elif action.get("skip_off_hours"):
		text = _("{0}, skipping users outside their working hours").format(text)
	if action.get("fallback_user"):
		text = _("{0}; if nobody is available, {1}").format(text, _user_names([action["fallback_user"]], labels))
	elif action.get("fallback_role"):
		text = _("{0}; if nobody is available, someone with role {1}").format(text, _(action["fallback_role"]))
	return text


def _send_email(action, fields, labels, document_type):
	what = action.get("email_template") or action.get("subject")
	who = _recipients(action, fields, labels, document_type)
	if what and who:
		return _("e-mail '{0}' to {1}").format(what, who)
	if what:
		return _("e-mail '{0}'").format(what)
	if who:
		return _("send an e-mail to {0}").format(who)
	return _("send an e-mail")


def _notify(action, fields, labels, document_type):
	who = _recipients(action, fields, labels, document_type)
	subject = action.get("subject") or ""
	if who:
		return _("notify {0}: {1}").format(who, subject).rstrip(": ")
	return _("notify: {0}").format(subject).rstrip(": ")


def _create_todo(action, fields, labels, document_type):
	who = _recipients(action, fields, labels, document_type)
	text = _("create a ToDo for {0}").format(who) if who else _("create a ToDo")
	if action.get("due_in"):
		unit = "Hours" if action.get("due_unit") == "Hours" else "Days"
		return _("{0}, due in {1}").format(text, _amount(action["due_in"], unit))
	return text


def _set_value(action, fields, labels, document_type):
	fieldname = action.get("target_field")
	field = (fields or {}).get(fieldname) or {}
	label = _label(fields, fieldname, labels)
	if field.get("fieldtype") == "Check" and _flag(action.get("value")) is not None:
		return (_("check {0}") if _flag(action.get("value")) else _("uncheck {0}")).format(label)
	return _("set {0} to {1}").format(label, action.get("value") if action.get("value") is not None else "")


def _send_sms(action, fields, labels, document_type):
	who = []
	if action.get("sms_phone_field"):
		who.append(_field_of_document(fields, action["sms_phone_field"], labels, document_type))
	if action.get("sms_contact_of"):
		who.append(_("the contact of {0}").format(_label(fields, action["sms_contact_of"], labels)))
	if action.get("sms_to_role"):
		who.append(_("everyone with role {0}").format(_(action["sms_to_role"])))
	users = split_list(action.get("sms_to_users"))
	if users:
		who.append(_user_names(users, labels))
	return _("text {0}").format(_list(who)) if who else _("send an SMS")


_ACTIONS = {
	"Assign": _assign,
	"Send Email": _send_email,
	"System Notification": _notify,
	"Create ToDo": _create_todo,
	"Set Value": _set_value,
	"Send SMS": _send_sms,
	"Add Tag": lambda a, f, labels, d: _("tag {0}").format(a.get("tag") or ""),
	"Add Comment": lambda a, f, labels, d: _("add a comment"),
	"Create Document": lambda a, f, labels, d: _("create a {0}").format(
		_(a.get("target_doctype") or "document")
	),
	"Webhook": lambda a, f, labels, d: _("call {0}").format(a.get("url") or ""),
	"Reject": lambda a, f, labels, d: _("reject the save"),
	"Unassign": lambda a, f, labels, d: _("close its assignments"),
}


# --------------------------------------------------------------------------------- follow-up steps


def describe_wait(step, fields=None, labels=None, first=True):
	"""A step's wait from its row: "in 24 business hours", "2 days later", "on the next Monday at 09:00"."""
	wait_type = step.get("wait_type") or "Duration"
	amount = step.get("wait_amount") or 0
	unit = step.get("wait_unit") or "Hours"
	if wait_type in ("Duration", "Business Time"):
		table = _BUSINESS_UNITS if wait_type == "Business Time" else _UNITS
		return (_("in {0}") if first else _("{0} later")).format(_amount(amount, unit, table))
	at_time = (step.get("at_time") or "").strip()
	if wait_type == "Until Weekday and Time":
		day = _WEEKDAYS.get(step.get("weekday"), lambda: step.get("weekday") or "?")()
		return (
			_("on the next {0} at {1}").format(day, at_time) if at_time else _("on the next {0}").format(day)
		)
	if wait_type == "Until Date Field":
		label = _label(fields, step.get("date_field"), labels)
		if amount:
			template = _("{0} after {1}") if step.get("date_direction") == "After" else _("{0} before {1}")
			text = template.format(_amount(amount, unit), label)
		else:
			text = _("on {0}").format(label)
		return _("{0} at {1}").format(text, at_time) if at_time else text
	if wait_type == "Until Condition":
		condition = describe_condition(step.get("until_conditions"), fields, labels) or "?"
		return _("when {0} (at most {1})").format(condition, _amount(amount, unit))
	if wait_type == "Until Reply":
		return _("on a reply (at most {0})").format(_amount(amount, unit))
	return wait_type


def describe_step(step, actions, fields=None, labels=None, first=True, document_type=None):
	"""One step: "in 24 business hours, if Status is Open: create a ToDo; if the wait times out: ..."."""
	name = step.get("step_name")
	mine = [a for a in actions if a.get("step") and a.get("step") == name]
	done = _list(describe_action(a, fields, labels, document_type) for a in mine if not a.get("on_timeout"))
	timeout = _list(describe_action(a, fields, labels, document_type) for a in mine if a.get("on_timeout"))
	when = describe_wait(step, fields, labels, first)
	only_if = describe_condition(step.get("step_conditions"), fields, labels)
	if only_if:
		when = _("{0}, if {1}").format(when, only_if)
	text = _("{0}: {1}").format(when, done or _("nothing"))
	if timeout:
		text = _("{0}; if the wait times out: {1}").format(text, timeout)
	return text


def describe_steps(rule, fields=None, labels=None):
	actions = rule.get("actions") or []
	document_type = rule.get("document_type")
	parts = [
		describe_step(step, actions, fields, labels, index == 0, document_type)
		for index, step in enumerate(rule.get("steps") or [])
	]
	stop = describe_condition(rule.get("stop_conditions"), fields, labels)
	if stop and parts:
		parts.append(_("stop when {0}").format(stop))
	if rule.get("stop_when_unmatched") and parts:
		parts.append(_("stop when it no longer matches"))
	return parts


# ------------------------------------------------------------------------------------------ the rule


def describe_rule(rule, fields=None, labels=None):
	"""The whole rule in one sentence: trigger, conditions, actions, branches, follow-up steps."""
	document_type = rule.get("document_type")
	head = describe_trigger(rule, fields, labels)
	condition = describe_condition(rule.get("conditions"), fields, labels)
	if condition:
		head = _("{0} and {1}", context="Workflow Rule").format(head, condition)
	if (rule.get("condition_expression") or "").strip():
		head = _("{0} (and an advanced condition holds)").format(head)
	if rule.get("holdout_percent"):
		head = _("{0}, holding out {1} % as a control group").format(head, rule.get("holdout_percent"))
	actions = rule.get("actions") or []

	def words(rows):
		return _list(describe_action(a, fields, labels, document_type) for a in rows)

	common = words(a for a in actions if not a.get("branch") and not a.get("step"))
	parts = [common] if common else []
	for branch in rule.get("branches") or []:
		name = branch.get("branch_name")
		branch_actions = words(a for a in actions if a.get("branch") == name and not a.get("step")) or _(
			"nothing"
		)
		if branch.get("is_else"):
			parts.append(_("otherwise → {0}").format(branch_actions))
		elif rule.get("branch_mode") == "Percentage Split":
			share = branch.get("split_share") or 0
			parts.append(_("{0} % of them ({1}) → {2}").format(share, name, branch_actions))
		else:
			when = describe_condition(branch.get("conditions"), fields, labels) or name
			parts.append(_("if {0} → {1}").format(when, branch_actions))
	parts.extend(describe_steps(rule, fields, labels))
	return _("{0} → {1}").format(head, _("; ").join(p for p in parts if p) or _("nothing"))
