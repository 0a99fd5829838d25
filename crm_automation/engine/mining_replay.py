"""Replay a proposed rule over the history it was mined from: per document, would the rule have
done what people did (``same``), something else than they did (``different``), acted where nobody
did (``rule_only``), or stayed still where people acted (``people_only``)?

The rule is read back from its stored form (trigger, condition, first action), so an administrator's
edits before the replay count. For a rule made from a proposal, ``same`` is the proposal's
support and ``same / (same + different + rule_only)`` its confidence.
"""

import datetime
from collections import Counter

from .i18n import _
from .mining import (
	ASSIGN,
	CREATED,
	DEFAULT_WINDOW_HOURS,
	SEND_EMAIL,
	SET_VALUE,
	TRANSITION_FIELDS,
	HistoryError,
	iter_documents,
	parse_when,
	segment_of,
	text_key,
)
from .workflow import compile_workflow_rule, split_list

OUTCOMES = ("same", "different", "rule_only", "people_only")
IMMEDIATE_KINDS = (ASSIGN, SET_VALUE, SEND_EMAIL)


class ReplayShape:
	"""What the rule watches (its transition or its condition on the new document) and which
	hand action counts as the same work."""

	def __init__(self, rule, fields):
		self.compiled = compile_workflow_rule(rule, fields)
		actions = rule.get("actions") or []
		self.action = actions[0]
		self.kind = self.action.get("action_type")
		self.doctype = rule.get("document_type")
		trigger = rule.get("trigger")
		self.days = 0
		self.transition = None  # None: judged on the new document's values
		if trigger == "Value Change":
			self.transition = (rule.get("trigger_field"), str(rule.get("to_value") or ""))
		elif trigger == "Time":
			self.days = int(rule.get("time_offset") or 0)
			self.transition = CREATED if rule.get("time_field") == "creation" else _condition_transition(rule)
		elif trigger == "New" and self.kind not in (ASSIGN, SET_VALUE):
			self.transition = CREATED
		elif trigger != "New":
			raise HistoryError(
				"trigger", _("a replay needs a New, Value Change or Time rule, not {0}").format(repr(trigger))
			)
		self.key = self._expected_key()

	def _expected_key(self):
		action = self.action
		if self.kind == ASSIGN:
			if action.get("assign_to_type") == "User in Field":
				return ("field", action.get("to_field"))
			return ("users", frozenset(split_list(action.get("to_users"))))
		if self.kind == SET_VALUE:
			return (
				action.get("target_field"),
				str(action.get("value") if action.get("value") is not None else ""),
			)
		if self.kind == SEND_EMAIL:
			if action.get("email_template"):
				return ("template", action["email_template"])
			return ("subject", text_key(action.get("subject") or ""))
		return text_key(action.get("message") or "")

	def is_same(self, action, digest):
		if action.kind != self.kind:
			return False
		if self.kind == ASSIGN:
			kind, target = self.key
			if kind == "field":
				return action.key == (digest.initial or {}).get(target)
			return action.key in target
		if self.kind == SET_VALUE:
			return (action.key[0], str(action.key[1])) == self.key
		return action.key == self.key

	def is_other(self, action):
		"""The same kind of work, done differently (another user, value, e-mail or text)."""
		if action.kind != self.kind:
			return False
		if self.kind == SET_VALUE:
			return action.key[0] == self.key[0]
		return True


def _condition_transition(rule):
	leaves = (rule.get("conditions") or {}).get("all") or []
	for leaf in leaves:
		if leaf.get("op") == "=":
			return (leaf["field"], str(leaf.get("value")))
	raise HistoryError("conditions", _("a Time rule on modified needs a condition field = value to replay"))


def replay(
	rule,
	events,
	fields,
	window_hours=DEFAULT_WINDOW_HOURS,
	until=None,
	transition_fields=TRANSITION_FIELDS,
	examples=20,
):
	"""Counts per outcome, the first ``examples`` document names of each, and the confidence the
	replay measured."""
	shape = ReplayShape(rule, fields)
	window = datetime.timedelta(hours=window_hours)
	until = parse_when(until, "until") if until else None
	counts = Counter()
	named = {outcome: [] for outcome in OUTCOMES}
	for digest in iter_documents(events, transition_fields):
		if digest.doctype != shape.doctype:
			continue
		digest.actions.sort(key=lambda action: action.when)
		if shape.transition is None:
			outcome = _judge_new_document(shape, digest)
		else:
			outcome = _judge_transitions(shape, digest, window, until)
		if outcome is None:
			continue
		counts[outcome] += 1
		if len(named[outcome]) < examples:
			named[outcome].append(digest.name)
	acted = counts["same"] + counts["different"] + counts["rule_only"]
	return {
		"counts": {outcome: counts[outcome] for outcome in OUTCOMES},
		"examples": named,
		"confidence": round(counts["same"] / acted, 4) if acted else 0,
	}


def _judge_new_document(shape, digest):
	if digest.initial is None:
		return None
	values = dict(digest.initial)
	would_act = shape.compiled.condition.matches(values, None)
	if shape.kind == ASSIGN:
		if shape.key[0] == "field" and values.get(shape.key[1]) in (None, ""):
			would_act = False
		first = digest.first(ASSIGN)
		done = [first] if first else []
	else:
		field, value = shape.key
		if str(values.get(field) if values.get(field) is not None else "") == value:
			return "rule_only" if would_act else None  # nothing to do by hand: the value was there
		done = [action for action in digest.actions if action.kind == SET_VALUE and action.key[0] == field]
	same = any(shape.is_same(action, digest) for action in done)
	if would_act:
		if same:
			return "same"
		return "different" if done else "rule_only"
	return "people_only" if same else None


def _judge_transitions(shape, digest, window, until):
	segments = list(digest.segments(until))
	in_segment = {}
	for action in digest.actions:
		if until is None or action.when <= until:
			in_segment.setdefault(segment_of(segments, action.when), []).append(action)
	outcome = None
	for segment in segments:
		key, start, end = segment
		if key != shape.transition:
			continue
		if shape.days and (end - start).total_seconds() // 86400 < shape.days:
			continue
		verdict = "rule_only"
		for action in in_segment.get(segment, ()):
			delay = action.when - start
			if shape.kind in IMMEDIATE_KINDS and delay > window:
				continue
			if shape.is_same(action, digest) and (shape.kind in IMMEDIATE_KINDS or delay.days == shape.days):
				verdict = "same"
				break
			if shape.is_other(action):
				verdict = "different"
		outcome = _better(outcome, verdict)
	if outcome is None:
		for action in digest.actions:
			if shape.is_same(action, digest):
				return "people_only"
	return outcome


def _better(current, verdict):
	order = {None: 0, "rule_only": 1, "different": 2, "same": 3}
	return verdict if order[verdict] > order[current] else current
