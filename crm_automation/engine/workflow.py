"""Workflow Rules: trigger → conditions → branches → actions, compiled once, evaluated to intents.

The engine decides and never writes: ``CompiledWorkflowRule.evaluate`` returns an ``Evaluation``
holding the outcome, the reason, the branch taken, the trace and a list of intents (plain dicts)
that the Frappe side carries out.
"""

import functools
import json
import re

from .conditions import compile_condition, is_empty_condition, with_standard_fields
from .errors import ProblemCollector, RuleError
from .fieldtypes import UNSUPPORTED, ValueTypeError, describe_value, kind_of, parse_rule_value, split_list
from .groups import compile_groups, is_held_out, split_arm
from .i18n import _
from .linked_paths import is_linked_path
from .linked_targets import check_action_target, check_linked_user_field
from .replies import with_communication_fields
from .sequence_compile import compile_sequence
from .sms import SEND_SMS
from .sms import check_send_sms as _check_send_sms

TRIGGER_NEW = "New"
TRIGGER_SAVE = "Save"
TRIGGER_VALUE_CHANGE = "Value Change"
TRIGGER_SUBMIT = "Submit"
TRIGGER_CANCEL = "Cancel"
TRIGGER_DELETE = "Delete"
TRIGGER_VALIDATE = "Validate"
TRIGGER_TIME = "Time"
TRIGGER_MANUAL = "Manual"
TRIGGER_SCORE_BAND = "Score Band Changed"
TRIGGER_WEBHOOK = "Webhook Received"
TRIGGER_SCHEDULE = "Schedule"
TRIGGER_COMMUNICATION = "Communication Received"

TRIGGERS = (
	TRIGGER_NEW,
	TRIGGER_SAVE,
	TRIGGER_VALUE_CHANGE,
	TRIGGER_SUBMIT,
	TRIGGER_CANCEL,
	TRIGGER_DELETE,
	TRIGGER_VALIDATE,
	TRIGGER_TIME,
	TRIGGER_MANUAL,
	TRIGGER_SCORE_BAND,
	TRIGGER_WEBHOOK,
	TRIGGER_SCHEDULE,
	TRIGGER_COMMUNICATION,
)
# The grade a Lead Score Rule writes; Score Band Changed rules watch it.
SCORE_GRADE_FIELD = "crm_score_grade"

# The document event each trigger listens to. Value Change listens to on_change only: Frappe runs it
# after every save and after doc.db_set (which ERPNext uses for statuses), so one hook sees both.
EVENTS_BY_TRIGGER = {
	TRIGGER_NEW: ("after_insert",),
	TRIGGER_SAVE: ("on_update",),
	TRIGGER_VALUE_CHANGE: ("on_change",),
	TRIGGER_SUBMIT: ("on_submit",),
	TRIGGER_CANCEL: ("on_cancel",),
	TRIGGER_DELETE: ("on_trash",),
	TRIGGER_VALIDATE: ("validate",),
	TRIGGER_TIME: (),
	TRIGGER_MANUAL: (),
	TRIGGER_SCORE_BAND: ("score_band_changed",),
	# Pseudo events, raised by the app itself: an inbound call, a scheduled moment, an incoming e-mail.
	TRIGGER_WEBHOOK: ("webhook_received",),
	TRIGGER_SCHEDULE: ("scheduled",),
	TRIGGER_COMMUNICATION: ("communication_received",),
}

FIRE_EVERY_TIME = "Every Time"
FIRE_ONCE = "Once per Document"
FIRE_ON_BECOMING_TRUE = "Each Time Condition Becomes True"
FIRE_MODES = (FIRE_EVERY_TIME, FIRE_ONCE, FIRE_ON_BECOMING_TRUE)

TIME_UNITS = {"Minutes": 60, "Hours": 3600, "Days": 86400}
TIME_DIRECTIONS = ("Before", "After")

ASSIGN = "Assign"
UNASSIGN = "Unassign"
SEND_EMAIL = "Send Email"
NOTIFY = "System Notification"
CREATE_TODO = "Create ToDo"
SET_VALUE = "Set Value"
ADD_TAG = "Add Tag"
ADD_COMMENT = "Add Comment"
CREATE_DOCUMENT = "Create Document"
WEBHOOK = "Webhook"
REJECT = "Reject"

ACTION_TYPES = (
	ASSIGN,
	UNASSIGN,
	SEND_EMAIL,
	NOTIFY,
	CREATE_TODO,
	SET_VALUE,
	ADD_TAG,
	ADD_COMMENT,
	CREATE_DOCUMENT,
	WEBHOOK,
	REJECT,
	SEND_SMS,
)

ASSIGN_TO_USERS = "Listed Users"
ASSIGN_TO_ROLE = "Role"
ASSIGN_TO_GROUP = "User Group"
ASSIGN_TO_FIELD = "User in Field"
ASSIGN_TARGETS = (ASSIGN_TO_USERS, ASSIGN_TO_ROLE, ASSIGN_TO_GROUP, ASSIGN_TO_FIELD)

ROUND_ROBIN = "Round Robin"
LOAD_BALANCING = "Load Balancing"
ASSIGN_EVERYONE = "Everyone"
ASSIGN_STRATEGIES = (ROUND_ROBIN, LOAD_BALANCING, ASSIGN_EVERYONE)

# Before the save only these make sense: the rest would act on a document that may never be saved.
VALIDATE_ACTIONS = (SET_VALUE, REJECT)

TODO_PRIORITIES = ("Low", "Medium", "High")
DUE_UNITS = ("Hours", "Days")

_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def is_template(text):
	return isinstance(text, str) and ("{{" in text or "{%" in text)


def parse_json_object(value, path, problems, what):
	if value in (None, ""):
		return {}
	if isinstance(value, dict):
		return value
	try:
		parsed = json.loads(value)
	except (TypeError, ValueError) as error:
		problems.add(path, _("{0} is not valid JSON ({1})").format(what, error), value=value)
		return None
	if not isinstance(parsed, dict):
		problems.add(path, _("{0} must be a JSON object").format(what), value=value)
		return None
	return parsed


class Evaluation:
	"""What a rule decided for one document: the Frappe side logs it and carries out the intents."""

	__slots__ = ("branch", "intents", "outcome", "reason", "rule", "trace")

	FIRED = "Fired"
	SKIPPED = "Skipped"
	REJECTED = "Rejected"
	# Matched, but in the rule's hold-out control group: no actions, no follow-up (engine/groups.py).
	HELD_OUT = "Held Out"

	def __init__(self, rule, outcome, reason="", branch=None, intents=(), trace=()):
		self.rule = rule
		self.outcome = outcome
		self.reason = reason
		self.branch = branch
		self.intents = list(intents)
		self.trace = list(trace)

	@property
	def fired(self):
		return self.outcome in (self.FIRED, self.REJECTED)

	@property
	def held_out(self):
		return self.outcome == self.HELD_OUT

	def as_dict(self):
		return {
			"rule": self.rule,
			"outcome": self.outcome,
			"reason": self.reason,
			"branch": self.branch,
			"intents": self.intents,
			"trace": self.trace,
		}


class CompiledBranch:
	__slots__ = ("condition", "is_else", "name")

	def __init__(self, name, condition, is_else):
		self.name = name
		self.condition = condition
		self.is_else = is_else


class CompiledWorkflowRule:
	def __init__(self, source):
		self.source = source
		self.name = source.get("name")
		self.document_type = source.get("document_type")
		self.trigger = source.get("trigger")
		self.priority = int(source.get("priority") or 0)
		self.fire_mode = source.get("fire_mode") or FIRE_EVERY_TIME
		self.trigger_field = source.get("trigger_field")
		self.time_field = source.get("time_field")
		self.time_offset_seconds = 0
		self.condition = None
		self.trigger_condition = None
		self.branches = []
		self.actions_by_branch = {}
		self.set_fields = frozenset()
		self.created_doctypes = frozenset()
		# Follow-up steps (engine/sequences.py): None for a rule that only acts at once.
		self.sequence = None
		# Hold-out share and percentage-split arms ((branch, share), …), engine/groups.py.
		self.holdout_percent = 0
		self.split_arms = ()

	@property
	def events(self):
		return EVENTS_BY_TRIGGER.get(self.trigger, ())

	@functools.cached_property
	def linked_paths(self):
		"""Linked values (path → LinkedPath) the conditions and branches read: the evaluator fetches
		them all once, before evaluating (engine/linked.py). Worked out once: it is asked on every save."""
		paths = {}
		for condition in (self.condition, *(branch.condition for branch in self.branches)):
			if condition is not None:
				paths.update(condition.linked_paths)
		return paths

	def condition_holds(self, doc, before=None):
		if self.trigger_condition and not self.trigger_condition.matches(doc, before):
			return False
		return self.condition.matches(doc, before)

	def evaluate(self, doc, before=None, explain=False):
		"""Decide for one document. ``before`` is the document before this save (None if new)."""
		trace = []
		if self.trigger_condition:
			if explain:
				ok, part = self.trigger_condition.explain(doc, before)
				trace.extend(part)
			else:
				ok = self.trigger_condition.matches(doc, before)
			if not ok:
				reason = _("{0} did not change as the trigger asks").format(self.trigger_field)
				return Evaluation(self.name, Evaluation.SKIPPED, reason, trace=trace)
		if explain:
			ok, part = self.condition.explain(doc, before)
			trace.extend(part)
		else:
			ok = self.condition.matches(doc, before)
		if not ok:
			return Evaluation(self.name, Evaluation.SKIPPED, _("conditions not met"), trace=trace)
		if self.fire_mode == FIRE_ON_BECOMING_TRUE and before is not None and self.condition.matches(before):
			reason = _("conditions were already true before")
			return Evaluation(self.name, Evaluation.SKIPPED, reason, trace=trace)

		branch_name = None
		if self.split_arms:
			branch_name = split_arm(self.name, doc.get("name"), self.split_arms)
		for branch in () if self.split_arms else self.branches:
			if branch.is_else:
				branch_name = branch.name
				break
			if explain:
				ok, part = branch.condition.explain(doc, before)
				trace.extend({**entry, "branch": branch.name} for entry in part)
			else:
				ok = branch.condition.matches(doc, before)
			if ok:
				branch_name = branch.name
				break

		intents = list(self.actions_by_branch.get("", ()))
		if branch_name is not None:
			intents.extend(self.actions_by_branch.get(branch_name, ()))
		if not intents and not self.sequence:
			reason = _("no branch matched") if self.branches else _("the rule has no actions")
			return Evaluation(self.name, Evaluation.SKIPPED, reason, trace=trace)
		if is_held_out(self.name, doc.get("name"), self.holdout_percent):
			reason = _("held out: in the rule's {0} % control group, given none of its actions").format(
				self.holdout_percent
			)
			return Evaluation(self.name, Evaluation.HELD_OUT, reason, trace=trace)
		outcome = Evaluation.REJECTED if any(i["type"] == REJECT for i in intents) else Evaluation.FIRED
		return Evaluation(self.name, outcome, "", branch_name, [dict(i) for i in intents], trace)


def compile_workflow_rule(rule, fields, get_fields=None):
	"""Compile a Workflow Rule (a plain dict) against the document type's fields.

	``get_fields(doctype)`` returns another doctype's field list (for Create Document mappings) or
	None when that doctype does not exist. Raises RuleError listing every problem found."""
	fields = with_standard_fields(fields)
	problems = ProblemCollector()
	compiled = CompiledWorkflowRule(rule)

	_compile_trigger(compiled, rule, fields, problems)
	# Conditions and branches of a Communication Received rule also read the e-mail (engine/replies.py).
	tested = with_communication_fields(fields) if rule.get("trigger") == TRIGGER_COMMUNICATION else fields
	compiled.condition = _compile_part(rule.get("conditions"), tested, "conditions", problems, get_fields)
	_compile_branches(compiled, rule, tested, problems, get_fields)
	compiled.holdout_percent, compiled.split_arms = compile_groups(rule, rule.get("branches") or [], problems)
	_refuse_linked_on_time_trigger(compiled, problems)
	_compile_actions(compiled, rule, fields, get_fields, problems)
	_compile_sequence(compiled, rule, fields, get_fields, problems)

	problems.raise_if_any()
	return compiled


def _compile_part(tree, fields, path, problems, get_fields=None):
	try:
		return compile_condition(tree, fields, path, get_fields)
	except RuleError as error:
		problems.extend(error)
		return None


def _compile_trigger(compiled, rule, fields, problems):
	trigger = rule.get("trigger")
	if trigger not in EVENTS_BY_TRIGGER:
		problems.add("trigger", _("unknown trigger {0} (use one of: {1})").format(describe_value(trigger), ', '.join(TRIGGERS)))
		return
	fire_mode = compiled.fire_mode
	if fire_mode not in FIRE_MODES:
		problems.add("fire_mode", _("unknown fire mode {0}").format(describe_value(fire_mode)))
	if trigger == TRIGGER_VALUE_CHANGE:
		_compile_value_change(compiled, rule, fields, problems)
	elif trigger == TRIGGER_SCORE_BAND:
		if SCORE_GRADE_FIELD not in fields:
			problems.add(
				"trigger",
				_("Score Band Changed needs a scored document type (Lead, Opportunity, Customer), not {0}").format(describe_value(rule.get('document_type'))),
			)
			return
		compiled.trigger_field = SCORE_GRADE_FIELD
		_compile_value_change(compiled, {**rule, "trigger_field": SCORE_GRADE_FIELD}, fields, problems)
	elif trigger == TRIGGER_TIME:
		_compile_time_trigger(compiled, rule, fields, problems)


def _compile_value_change(compiled, rule, fields, problems):
	fieldname = rule.get("trigger_field")
	field = fields.get(fieldname) if fieldname else None
	if not field:
		problems.add(
			"trigger_field",
			_("a Value Change trigger needs a field of the document; {0} is not one").format(describe_value(fieldname)),
			fieldname,
		)
		return
	leaves = [{"field": fieldname, "op": "changed"}]
	if rule.get("from_value") not in (None, ""):
		leaves.append({"field": fieldname, "op": "changed from", "value": rule["from_value"]})
	if rule.get("to_value") not in (None, ""):
		leaves.append({"field": fieldname, "op": "changed to", "value": rule["to_value"]})
	compiled.trigger_condition = _compile_part({"all": leaves}, fields, "trigger", problems)


def _compile_time_trigger(compiled, rule, fields, problems):
	fieldname = rule.get("time_field")
	field = fields.get(fieldname) if fieldname else None
	if not field or field["fieldtype"] not in ("Date", "Datetime"):
		problems.add(
			"time_field",
			_("a Time trigger needs a Date or Datetime field; {0} is not one").format(describe_value(fieldname)),
			fieldname,
		)
	unit = rule.get("time_unit") or "Days"
	if unit not in TIME_UNITS:
		problems.add("time_unit", _("unknown unit {0} (use Minutes, Hours or Days)").format(describe_value(unit)))
		return
	direction = rule.get("time_direction") or "Before"
	if direction not in TIME_DIRECTIONS:
		problems.add("time_direction", _("{0} is not Before or After").format(describe_value(direction)))
		return
	offset = rule.get("time_offset") or 0
	if isinstance(offset, bool) or not isinstance(offset, int | float) or offset < 0:
		problems.add("time_offset", _("{0} is not a number of {1} (0 or more)").format(describe_value(offset), unit.lower()))
		return
	seconds = int(offset * TIME_UNITS[unit])
	compiled.time_offset_seconds = -seconds if direction == "Before" else seconds


def _refuse_linked_on_time_trigger(compiled, problems):
	# The time sweep selects due documents by their own columns only.
	conditions = [c for c in (compiled.condition, *(b.condition for b in compiled.branches)) if c is not None]
	if compiled.trigger == TRIGGER_TIME and any(c.linked_paths or c.tables for c in conditions):
		problems.add("conditions", _("a Time trigger cannot test linked documents or child tables"))
	if compiled.trigger == TRIGGER_SCHEDULE and any(c.linked_paths or c.tables for c in conditions):
		# The schedule selects its documents by their own columns, page by page.
		problems.add("conditions", _("a Schedule trigger cannot test linked documents or child tables"))


def _compile_branches(compiled, rule, fields, problems, get_fields=None):
	seen = set()
	branches = rule.get("branches") or []
	for i, branch in enumerate(branches):
		path = f"branches[{i}]"
		name = (branch.get("branch_name") or "").strip()
		if not name:
			problems.add(f"{path}.branch_name", _("every branch needs a name"))
			continue
		if name in seen:
			problems.add(f"{path}.branch_name", _("branch name {0} is used twice").format(describe_value(name)), value=name)
		seen.add(name)
		is_else = bool(branch.get("is_else"))
		if is_else and i != len(branches) - 1:
			problems.add(f"{path}.is_else", _("the else branch {0} must be the last one").format(describe_value(name)))
		if is_else and not is_empty_condition(branch.get("conditions")):
			problems.add(f"{path}.conditions", _("the else branch {0} takes no conditions").format(describe_value(name)))
		condition = _compile_part(branch.get("conditions"), fields, f"{path}.conditions", problems, get_fields)
		compiled.branches.append(CompiledBranch(name, condition, is_else))


def _compile_actions(compiled, rule, fields, get_fields, problems):
	branch_names = {branch.name for branch in compiled.branches}
	by_branch = {}
	set_fields, created = set(), set()
	actions = rule.get("actions") or []
	if not actions:
		problems.add("actions", _("the rule has no actions"))
	for i, action in enumerate(actions):
		if (action.get("step") or "").strip():
			continue  # a follow-up step's action: compiled with its step by _compile_sequence
		path = f"actions[{i}]"
		action_type = action.get("action_type")
		branch = (action.get("branch") or "").strip()
		if branch and branch not in branch_names:
			problems.add(f"{path}.branch", _("no branch is named {0}").format(describe_value(branch)), value=branch)
		if action_type not in ACTION_TYPES:
			problems.add(
				f"{path}.action_type",
				_("unknown action {0} (use one of: {1})").format(describe_value(action_type), ', '.join(ACTION_TYPES)),
			)
			continue
		if rule.get("trigger") == TRIGGER_VALIDATE and action_type not in VALIDATE_ACTIONS:
			problems.add(
				f"{path}.action_type",
				_("{0} cannot run on Validate, before the document is saved (use Save or New; Validate only sets values or rejects)").format(action_type),
			)
			continue
		action_fields, target = check_action_target(action, fields, get_fields, rule, path, problems)
		if action_fields is None:
			continue
		check = _ACTION_CHECKS[action_type]
		params = check(action, action_fields, get_fields, rule, f"{path}", problems)
		if params is None:
			continue
		intent = {"type": action_type, "row": i + 1, "row_id": action.get("name"), "branch": branch or None, **params}
		by_branch.setdefault(branch, []).append(intent)
		if target:
			# Acts on the document in a Link field: that save runs its own rules (runner depth).
			intent["target"] = target
			continue
		if action_type == SET_VALUE:
			set_fields.add(params["field"])
		elif action_type == CREATE_DOCUMENT:
			created.add(params["doctype"])
	compiled.actions_by_branch = {k: tuple(v) for k, v in by_branch.items()}
	compiled.set_fields = frozenset(set_fields)
	compiled.created_doctypes = frozenset(created)


def _compile_sequence(compiled, rule, fields, get_fields, problems):
	def compile_step_actions(rows):
		return compile_action_rows(rows, rule, fields, get_fields, problems)

	compiled.sequence = compile_sequence(rule, fields, problems, compile_step_actions)
	if compiled.sequence:
		for step in compiled.sequence.steps:
			for intent in (*step.intents, *step.timeout_intents):
				if intent["type"] == SET_VALUE:
					compiled.set_fields |= {intent["field"]}
				elif intent["type"] == CREATE_DOCUMENT:
					compiled.created_doctypes |= {intent["doctype"]}


def compile_action_rows(rows, rule, fields, get_fields, problems):
	"""Intents for ``(index, action row)`` pairs, checked as a rule's actions are (problems at
	``actions[index]``); a follow-up step's actions go through here."""
	intents = []
	for i, action in rows:
		path = f"actions[{i}]"
		action_type = action.get("action_type")
		if action_type not in ACTION_TYPES or action_type == REJECT:
			problems.add(
				f"{path}.action_type",
				_("{0} cannot run in a follow-up step").format(describe_value(action_type)),
			)
			continue
		params = _ACTION_CHECKS[action_type](action, fields, get_fields, rule, path, problems)
		if params is not None:
			intents.append({"type": action_type, "row": i + 1, "row_id": action.get("name"), "branch": None, **params})
	return intents


def _user_field_ok(fields, fieldname):
	field = fields.get(fieldname)
	if not field:
		return False
	return (field["fieldtype"] == "Link" and field.get("options") == "User") or field["fieldtype"] in (
		"Data",
		"Dynamic Link",
	)


def _email_field_ok(fields, fieldname):
	field = fields.get(fieldname)
	if not field:
		return False
	return field["fieldtype"] in ("Data", "Link", "Small Text", "Read Only")


def _recipients(action, fields, path, problems, *, emails_allowed):
	recipients = {
		"to_field": action.get("to_field") or None,
		"to_owner": bool(action.get("to_owner")),
		"to_assignees": bool(action.get("to_assignees")),
		"to_role": action.get("to_role") or None,
		"to_users": split_list(action.get("to_users")),
	}
	if recipients["to_field"]:
		ok = _email_field_ok if emails_allowed else _user_field_ok
		if not ok(fields, recipients["to_field"]):
			message = (
				_("{0} is not a field that holds an email address or user")
				if emails_allowed
				else _("{0} is not a field that holds a user")
			)
			problems.add(
				f"{path}.to_field", message.format(describe_value(recipients["to_field"])), recipients["to_field"]
			)
	if not emails_allowed:
		for user in recipients["to_users"]:
			if "@" not in user and user not in ("Administrator", "Guest"):
				problems.add(f"{path}.to_users", _("{0} is not a user id").format(describe_value(user)), value=user)
	if not any(recipients.values()):
		problems.add(f"{path}", _("choose at least one recipient (field, owner, assignees, role or users)"))
	return recipients


def _check_assign(action, fields, get_fields, rule, path, problems):
	target = action.get("assign_to_type") or ASSIGN_TO_USERS
	strategy = action.get("assign_strategy") or ROUND_ROBIN
	if target not in ASSIGN_TARGETS:
		problems.add(f"{path}.assign_to_type", _("unknown assignee source {0}").format(describe_value(target)))
		return None
	if strategy not in ASSIGN_STRATEGIES:
		problems.add(f"{path}.assign_strategy", _("unknown strategy {0}").format(describe_value(strategy)))
		return None
	params = {
		"assign_to_type": target,
		"strategy": strategy,
		"only_if_unassigned": bool(action.get("only_if_unassigned")),
		# Who is in (engine/availability.py): skip users away or off hours, and whom to fall back to.
		"skip_away": bool(action.get("skip_away")),
		"skip_off_hours": bool(action.get("skip_off_hours")),
		"fallback_user": action.get("fallback_user") or None,
		"fallback_role": action.get("fallback_role") or None,
		"users": [],
		"role": None,
		"user_group": None,
		"user_field": None,
	}
	if target == ASSIGN_TO_USERS:
		params["users"] = split_list(action.get("to_users"))
		if not params["users"]:
			problems.add(f"{path}.to_users", _("list at least one user to assign to"))
	elif target == ASSIGN_TO_ROLE:
		params["role"] = action.get("to_role")
		if not params["role"]:
			problems.add(f"{path}.to_role", _("choose the role whose users are assigned"))
	elif target == ASSIGN_TO_GROUP:
		params["user_group"] = action.get("user_group")
		if not params["user_group"]:
			problems.add(f"{path}.user_group", _("choose the user group whose users are assigned"))
	else:
		params["user_field"] = action.get("to_field")
		if is_linked_path(params["user_field"]):
			# The user in a field of a linked document: the Customer's account manager.
			params["user_path"] = check_linked_user_field(
				params["user_field"], fields, get_fields, f"{path}.to_field", problems
			)
		elif not _user_field_ok(fields, params["user_field"]):
			problems.add(
				f"{path}.to_field",
				_("{0} is not a field that holds a user").format(describe_value(params['user_field'])),
				params["user_field"],
			)
	return params


def _check_unassign(action, fields, get_fields, rule, path, problems):
	return {}


def _check_send_email(action, fields, get_fields, rule, path, problems):
	template = action.get("email_template") or None
	subject = action.get("subject") or ""
	message = action.get("message") or ""
	if not template and not (subject and message):
		problems.add(f"{path}.email_template", _("choose an Email Template or write a subject and a message"))
	recipients = _recipients(action, fields, path, problems, emails_allowed=True)
	return {"email_template": template, "subject": subject, "message": message, **recipients}


def _check_notify(action, fields, get_fields, rule, path, problems):
	subject = action.get("subject") or ""
	if not subject:
		problems.add(f"{path}.subject", _("a notification needs a subject"))
	recipients = _recipients(action, fields, path, problems, emails_allowed=False)
	return {"subject": subject, "message": action.get("message") or "", **recipients}


def _check_create_todo(action, fields, get_fields, rule, path, problems):
	description = action.get("message") or ""
	if not description:
		problems.add(f"{path}.message", _("a ToDo needs a description"))
	due_in = action.get("due_in") or 0
	if isinstance(due_in, bool) or not isinstance(due_in, int | float) or due_in < 0:
		problems.add(f"{path}.due_in", _("{0} is not a number of hours or days (0 or more)").format(describe_value(due_in)))
		due_in = 0
	due_unit = action.get("due_unit") or "Days"
	if due_unit not in DUE_UNITS:
		problems.add(f"{path}.due_unit", _("{0} is not Hours or Days").format(describe_value(due_unit)))
	priority = action.get("todo_priority") or "Medium"
	if priority not in TODO_PRIORITIES:
		problems.add(f"{path}.todo_priority", _("{0} is not Low, Medium or High").format(describe_value(priority)))
	recipients = _recipients(action, fields, path, problems, emails_allowed=False)
	return {"description": description, "due_in": due_in, "due_unit": due_unit, "priority": priority, **recipients}


def _check_set_value(action, fields, get_fields, rule, path, problems):
	fieldname = action.get("target_field")
	field = fields.get(fieldname) if fieldname else None
	if not field or kind_of(field["fieldtype"]) == UNSUPPORTED or fieldname in ("name", "docstatus", "idx"):
		problems.add(f"{path}.target_field", _("{0} is not a field that can be set").format(describe_value(fieldname)), fieldname)
		return None
	if rule.get("trigger") == TRIGGER_DELETE:
		problems.add(f"{path}.action_type", _("Set Value cannot run when the document is deleted"))
	raw = action.get("value")
	value = raw
	if not is_template(raw) and raw not in (None, ""):
		try:
			value = parse_rule_value(raw, field)
		except ValueTypeError as error:
			problems.add(f"{path}.value", _("{0} for {1} ({2})").format(error, fieldname, field['fieldtype']), fieldname, raw)
			return None
		if hasattr(value, "isoformat"):
			value = value.isoformat(sep=" ") if hasattr(value, "hour") and hasattr(value, "day") else value.isoformat()
	return {"field": fieldname, "value": value, "is_template": is_template(raw)}


def _check_add_tag(action, fields, get_fields, rule, path, problems):
	tag = (action.get("tag") or "").strip()
	if not tag:
		problems.add(f"{path}.tag", _("choose the tag to add"))
	return {"tag": tag}


def _check_add_comment(action, fields, get_fields, rule, path, problems):
	message = action.get("message") or ""
	if not message:
		problems.add(f"{path}.message", _("a comment needs a text"))
	return {"message": message}


def _check_create_document(action, fields, get_fields, rule, path, problems):
	doctype = action.get("target_doctype")
	if not doctype:
		problems.add(f"{path}.target_doctype", _("choose the document type to create"))
		return None
	mapping = parse_json_object(action.get("field_map"), f"{path}.field_map", problems, "the field mapping")
	if mapping is None:
		return None
	target_fields = get_fields(doctype) if get_fields else None
	if get_fields and target_fields is None:
		problems.add(f"{path}.target_doctype", _("{0} is not a document type").format(describe_value(doctype)), value=doctype)
		return None
	for target, source in mapping.items():
		if target_fields is not None and target not in with_standard_fields(target_fields):
			problems.add(
				f"{path}.field_map", _("{0} is not a field of {1}").format(describe_value(target), doctype), target, target
			)
		if isinstance(source, str) and not is_template(source) and source.startswith("doc."):
			if source[4:] not in fields:
				problems.add(f"{path}.field_map", _("{0}: no such field on the document").format(describe_value(source)), source)
	return {"doctype": doctype, "field_map": mapping, "use_mapper": bool(action.get("use_mapper"))}


def _check_webhook(action, fields, get_fields, rule, path, problems):
	url = (action.get("url") or "").strip()
	if not _URL_RE.match(url):
		problems.add(f"{path}.url", _("{0} is not an http(s) URL").format(describe_value(url)), value=url)
	headers = parse_json_object(action.get("headers"), f"{path}.headers", problems, "the headers")
	timeout = action.get("timeout") or 10
	if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= 60:
		problems.add(f"{path}.timeout", _("{0} is not a timeout from 1 to 60 seconds").format(describe_value(timeout)))
	retries = action.get("retries")
	retries = 3 if retries in (None, "") else retries
	if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
		problems.add(f"{path}.retries", _("{0} is not a number of retries from 0 to 10").format(describe_value(retries)))
	return {"url": url, "headers": headers or {}, "timeout": timeout, "retries": retries}


def _check_reject(action, fields, get_fields, rule, path, problems):
	if rule.get("trigger") != TRIGGER_VALIDATE:
		problems.add(
			f"{path}.action_type",
			_("Reject only works with the Validate trigger, not {0}").format(describe_value(rule.get('trigger'))),
		)
	message = action.get("message") or ""
	if not message:
		problems.add(f"{path}.message", _("say why the save is rejected"))
	return {"message": message}


_ACTION_CHECKS = {
	ASSIGN: _check_assign,
	UNASSIGN: _check_unassign,
	SEND_EMAIL: _check_send_email,
	NOTIFY: _check_notify,
	CREATE_TODO: _check_create_todo,
	SET_VALUE: _check_set_value,
	ADD_TAG: _check_add_tag,
	ADD_COMMENT: _check_add_comment,
	CREATE_DOCUMENT: _check_create_document,
	WEBHOOK: _check_webhook,
	REJECT: _check_reject,
	SEND_SMS: _check_send_sms,
}
