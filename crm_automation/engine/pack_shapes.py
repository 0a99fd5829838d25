"""The shape of a rule in a pack, checked before the engine compiles it.

The desk hands the compilers values of the right type (a Data field is text, a table is a list of
rows); a pack is JSON anyone can write, where a list can stand where text belongs. This check names
each such value by its path, so the compilers only ever see the shapes the desk would give them.
"""

import math

from .i18n import _

# Child tables: a list of rows (objects), each checked with the same rules.
ROW_LISTS = frozenset(
	{"actions", "branches", "criteria", "activity_criteria", "bands", "levels", "working_hours", "steps"}
)
# Condition trees: the condition compiler checks them, path by path.
CONDITION_TREES = frozenset({"conditions", "stop_conditions", "until_conditions", "step_conditions"})
# A JSON object, or its text as the desk stores it.
OBJECTS = frozenset({"field_map", "headers", "webhook_field_map"})
# Several values: a list, or text with one a line (or comma separated).
VALUE_LISTS = frozenset({"to_users", "to_assignees", "pause_values", "holidays", "known_activity_types"})
# Whole numbers: of the rule itself, and of its rows (a band's "priority" is text, the rule's is not).
RULE_WHOLE_NUMBERS = frozenset({"priority", "enabled"})
ROW_WHOLE_NUMBERS = frozenset({"is_else", "level"})
# Names and labels the compilers read as text.
TEXTS = frozenset(
	{"activity_type", "branch", "branch_name", "grade", "label", "step", "step_name", "tag", "url"}
)
SCALARS = (str, int, float, bool)


def shape_problems(item, where):
	"""(path, message) for every value of ``item`` whose type cannot be right."""
	problems = []
	_check_row(item, where, problems, RULE_WHOLE_NUMBERS)
	return problems


def _check_row(row, where, problems, whole_numbers=ROW_WHOLE_NUMBERS):
	for key, value in row.items():
		path = f"{where}.{key}"
		if value is None or key in CONDITION_TREES:
			continue
		if key in ROW_LISTS:
			if not isinstance(value, list):
				problems.append((path, _("must be a list of rows, not {0}").format(_kind(value))))
				continue
			for index, child in enumerate(value):
				if isinstance(child, dict):
					_check_row(child, f"{path}[{index}]", problems)
				else:
					problems.append(
						(f"{path}[{index}]", _("a row must be an object, not {0}").format(_kind(child)))
					)
		elif key in OBJECTS:
			if not isinstance(value, dict | str):
				problems.append(
					(path, _("must be an object (or its JSON text), not {0}").format(_kind(value)))
				)
		elif key in VALUE_LISTS:
			items = value if isinstance(value, list) else [value]
			if not all(isinstance(entry, SCALARS) and _finite(entry) for entry in items):
				problems.append((path, _("must be text, or a list of single values")))
		elif not isinstance(value, SCALARS):
			problems.append((path, _("must be a single value, not {0}").format(_kind(value))))
		elif not _finite(value):
			problems.append((path, _("{0} is not a finite number").format(repr(value))))
		elif key in TEXTS and not isinstance(value, str):
			problems.append((path, _("must be text, not {0}").format(_kind(value))))
		elif key in whole_numbers and not _whole_number(value):
			problems.append((path, _("{0} is not a whole number").format(repr(value))))


def _finite(value):
	return not isinstance(value, float) or math.isfinite(value)


def _whole_number(value):
	if isinstance(value, bool | int):
		return True
	if isinstance(value, float):
		return value.is_integer()
	text = value.strip()
	return not text or text.lstrip("+-").isdigit()


def _kind(value):
	if isinstance(value, dict):
		return _("an object")
	if isinstance(value, list):
		return _("a list")
	return repr(value)[:40]
