"""Two versions of a Workflow Rule compared in sentences: "the condition *Source is Exhibition*
became *Source is Exhibition or Trade Show*; a Send Email action was added: email Welcome to the
Lead's Email".

A version is a snapshot: the rule's own fields and its child rows as plain dicts (conditions as
trees, not JSON text), as the site's versions/snapshots.py takes them. The words come from
describe.py; what only the site knows comes in as ``labels``: ``{"users": ..., "fields": ...}`` as
describe.py takes them, plus ``"settings"`` (the rule's field labels) and ``"rows"`` (the child
rows' field labels)."""

from .conditions import is_empty_condition
from .describe import describe_action, describe_condition, describe_trigger, describe_wait
from .i18n import _

# The fields describe_trigger reads: a change to any of them is one "the trigger ... became ..." sentence.
TRIGGER_FIELDS = (
	"document_type",
	"trigger",
	"trigger_field",
	"from_value",
	"to_value",
	"time_offset",
	"time_unit",
	"time_direction",
	"time_field",
)
# Said in their own sentences, not as "label: old → new".
_OWN_SENTENCES = {
	*TRIGGER_FIELDS,
	"conditions",
	"condition_expression",
	"stop_conditions",
	"enabled",
	"actions",
	"branches",
	"steps",
}
# A row's place and the words derived from it: neither is a change of the rule.
_ROW_NOISE = {"idx", "name", "action_summary", "condition_summary", "wait_summary"}
_CONDITION_FIELDS = ("conditions", "until_conditions", "step_conditions")


def describe_changes(old, new, fields=None, labels=None):
	"""What changed from snapshot ``old`` to snapshot ``new``, one sentence per change, in order:
	trigger, conditions, branches, actions, steps, settings. No change gives an empty list."""
	labels = labels or {}
	sentences = []
	sentences += _trigger_changes(old, new, fields, labels)
	sentences += _condition_changes(old, new, fields, labels)
	sentences += _branch_changes(old, new, fields, labels)
	sentences += _action_changes(old, new, fields, labels)
	sentences += _step_changes(old, new, fields, labels)
	sentences += _setting_changes(old, new, labels)
	return sentences


def same(a, b):
	"""Equal as a rule means it: an empty text, None and an empty condition are one value."""
	return _plain(a) == _plain(b)


def _plain(value):
	if isinstance(value, dict):
		if is_empty_condition(value) and ("all" in value or "any" in value or not value):
			return None
		return {k: _plain(v) for k, v in value.items() if k not in _ROW_NOISE and _plain(v) is not None}
	if isinstance(value, list | tuple):
		return [_plain(v) for v in value] or None
	if value in (None, ""):
		return None
	if isinstance(value, float) and value.is_integer():
		return int(value)
	return value


def _quoted(text):
	return f"*{text}*"


# ------------------------------------------------------------------------------------ the parts


def _trigger_changes(old, new, fields, labels):
	changed = [f for f in TRIGGER_FIELDS if not same(old.get(f), new.get(f))]
	if not changed:
		return []
	before, after = describe_trigger(old, fields, labels), describe_trigger(new, fields, labels)
	if before == after:  # a trigger the sentence does not tell apart: its fields, then
		setting_labels = labels.get("settings") or {}
		return [
			_("{0}: {1} → {2}").format(setting_labels.get(f) or f, _shown(old.get(f)), _shown(new.get(f)))
			for f in changed
		]
	return [_("the trigger {0} became {1}").format(_quoted(before), _quoted(after))]


def _condition_changes(old, new, fields, labels):
	out = []
	if not same(old.get("conditions"), new.get("conditions")):
		out.append(_changed_condition(old.get("conditions"), new.get("conditions"), fields, labels))
	if not same(old.get("condition_expression"), new.get("condition_expression")):
		before = (old.get("condition_expression") or "").strip()
		after = (new.get("condition_expression") or "").strip()
		if not before:
			out.append(_("an advanced condition was added"))
		elif not after:
			out.append(_("the advanced condition was removed"))
		else:
			out.append(_("the advanced condition changed"))
	if not same(old.get("stop_conditions"), new.get("stop_conditions")):
		before = describe_condition(old.get("stop_conditions"), fields, labels)
		after = describe_condition(new.get("stop_conditions"), fields, labels)
		if not before:
			out.append(_("the steps now stop when {0}").format(_quoted(after)))
		elif not after:
			out.append(_("the stop condition {0} was removed").format(_quoted(before)))
		else:
			out.append(_("the stop condition {0} became {1}").format(_quoted(before), _quoted(after)))
	if not same(old.get("enabled"), new.get("enabled")):
		out.append(_("the rule was enabled") if new.get("enabled") else _("the rule was disabled"))
	return out


def _changed_condition(before_tree, after_tree, fields, labels):
	before = describe_condition(before_tree, fields, labels)
	after = describe_condition(after_tree, fields, labels)
	if not before:
		return _("the condition {0} was added").format(_quoted(after))
	if not after:
		return _("the condition {0} was removed").format(_quoted(before))
	return _("the condition {0} became {1}").format(_quoted(before), _quoted(after))


def _branch_changes(old, new, fields, labels):
	out = []
	olds = {b.get("branch_name"): b for b in old.get("branches") or []}
	news = {b.get("branch_name"): b for b in new.get("branches") or []}
	for name, branch in news.items():
		if name not in olds:
			out.append(_("the branch {0} was added").format(_quoted(name)))
			continue
		before = olds[name]
		if not same(before.get("conditions"), branch.get("conditions")):
			out.append(
				_("branch {0}: {1}").format(
					_quoted(name),
					_changed_condition(before.get("conditions"), branch.get("conditions"), fields, labels),
				)
			)
		out += _row_fields(before, branch, labels, _quoted(name), skip=("conditions",))
	out += [_("the branch {0} was removed").format(_quoted(name)) for name in olds if name not in news]
	if not out and [b.get("branch_name") for b in old.get("branches") or []] != list(news):
		out.append(_("the branches were reordered"))
	return out


def _action_changes(old, new, fields, labels):
	"""Actions have no name: rows equal in everything are the same action; then the remaining rows
	pair up in order by type, branch and step (a changed action); what is left was added or removed."""
	before = list(old.get("actions") or [])
	after = list(new.get("actions") or [])
	kept = _pair(before, after, same)
	rest_before = [a for j, a in enumerate(before) if j not in kept]
	rest_after = [a for i, a in enumerate(after) if i not in kept.values()]
	changed = _pair(
		rest_before,
		rest_after,
		lambda a, b: all(same(a.get(k), b.get(k)) for k in ("action_type", "branch", "step")),
	)
	document_type = new.get("document_type") or old.get("document_type")

	def words(action):
		return describe_action(action, fields, labels, document_type)

	out = []
	for j, i in sorted(changed.items(), key=lambda pair: pair[1]):
		a, b = rest_before[j], rest_after[i]
		if words(a) != words(b):
			out.append(
				_("the {0} action {1} became {2}").format(
					_(b.get("action_type") or ""), _quoted(words(a)), _quoted(words(b))
				)
			)
		else:
			out += _row_fields(a, b, labels, _quoted(words(b)))
	for i, action in enumerate(rest_after):
		if i not in changed.values():
			out.append(_added_action(action, words(action)))
	for j, action in enumerate(rest_before):
		if j not in changed:
			out.append(
				_("the {0} action {1} was removed").format(
					_(action.get("action_type") or ""), _quoted(words(action))
				)
			)
	if not out and not same(before, after):
		out.append(_("the actions were reordered"))
	return out


def _added_action(action, words):
	kind = action.get("action_type") or ""
	if kind[:1].lower() in "aeiou":
		return _("an {0} action was added: {1}").format(_(kind), _quoted(words))
	return _("a {0} action was added: {1}").format(_(kind), _quoted(words))


def _pair(before, after, matches):
	"""{index in before: index in after}: each row of ``after`` paired with the first unpaired row
	of ``before`` that it matches."""
	pairs = {}
	for i, b in enumerate(after):
		for j, a in enumerate(before):
			if j not in pairs and matches(a, b):
				pairs[j] = i
				break
	return pairs


def _step_changes(old, new, fields, labels):
	out = []
	olds = {s.get("step_name"): s for s in old.get("steps") or []}
	news = {s.get("step_name"): s for s in new.get("steps") or []}
	for name, step in news.items():
		if name not in olds:
			out.append(
				_("the step {0} was added: {1}").format(_quoted(name), describe_wait(step, fields, labels))
			)
			continue
		before = olds[name]
		wait_before, wait_after = describe_wait(before, fields, labels), describe_wait(step, fields, labels)
		if wait_before != wait_after:
			out.append(_("step {0}: {1} became {2}").format(_quoted(name), wait_before, wait_after))
		if not same(before.get("step_conditions"), step.get("step_conditions")):
			out.append(
				_("step {0}: {1}").format(
					_quoted(name),
					_changed_condition(
						before.get("step_conditions"), step.get("step_conditions"), fields, labels
					),
				)
			)
		out += _row_fields(
			before,
			step,
			labels,
			_quoted(name),
			skip=(
				"step_conditions",
				"until_conditions",
				"wait_type",
				"wait_amount",
				"wait_unit",
				"weekday",
				"at_time",
				"date_field",
				"date_direction",
			),
		)
	out += [_("the step {0} was removed").format(_quoted(name)) for name in olds if name not in news]
	return out


def _row_fields(before, after, labels, where, skip=()):
	"""'where: Label: old → new' for each other field of a row that changed."""
	row_labels = labels.get("rows") or {}
	out = []
	for key in sorted(set(before) | set(after)):
		if key in skip or key in _ROW_NOISE or same(before.get(key), after.get(key)):
			continue
		label = row_labels.get(key) or key
		if key in _CONDITION_FIELDS:
			out.append(_("{0}: {1} changed").format(where, label))
		else:
			out.append(
				_("{0}: {1}: {2} → {3}").format(where, label, _shown(before.get(key)), _shown(after.get(key)))
			)
	return out


def _setting_changes(old, new, labels):
	setting_labels = labels.get("settings") or {}
	out = []
	order = {key: index for index, key in enumerate(setting_labels)}
	for key in sorted(set(old) | set(new), key=lambda k: (order.get(k, len(order)), k)):
		if key in _OWN_SENTENCES or same(old.get(key), new.get(key)):
			continue
		out.append(
			_("{0}: {1} → {2}").format(
				setting_labels.get(key) or key, _shown(old.get(key)), _shown(new.get(key))
			)
		)
	return out


def _shown(value):
	if value in (None, ""):
		return "—"
	if isinstance(value, dict | list):
		return _("(changed)")
	text = str(value)
	return text if len(text) <= 80 else text[:79] + "…"
