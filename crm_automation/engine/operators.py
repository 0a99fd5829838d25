"""The operator registry: which operators fit which fieldtype, and how each compares.

The desk asks ``describe_operators(fieldtype)`` so an administrator is only offered operators that
fit the chosen field; the compiler asks ``get_operator`` and rejects the rest.
"""

import operator as _op
import re

from .fieldtypes import BOOLEAN, DATE, DATETIME, INTEGER, NUMBER, TEXT, TIME, UNSUPPORTED, kind_of

# How many values an operator takes, which is also the widget the desk shows for it.
NO_VALUE = "none"
ONE_VALUE = "single"
LIST_OF_VALUES = "list"
PAIR_OF_VALUES = "pair"

ORDERED_KINDS = frozenset({NUMBER, INTEGER, DATE, DATETIME, TIME})
ALL_KINDS = frozenset({NUMBER, INTEGER, BOOLEAN, DATE, DATETIME, TIME, TEXT})


class Operator:
	__slots__ = ("compare", "kinds", "label", "name", "needs_before", "values")

	def __init__(self, name, label, values, kinds, compare=None, needs_before=False):
		self.name = name
		self.label = label
		self.values = values
		self.kinds = kinds
		self.compare = compare
		self.needs_before = needs_before

	def fits(self, fieldtype):
		return kind_of(fieldtype) in self.kinds

	def as_dict(self):
		return {
			"operator": self.name,
			"label": self.label,
			"value": self.values,
			"needs_before": self.needs_before,
		}


def _ordered(compare):
	# Empty dates and times are None; an empty value is neither before nor after anything.
	def safe(actual, expected):
		return actual is not None and compare(actual, expected)

	return safe


def _between(actual, bounds):
	return actual is not None and bounds[0] <= actual <= bounds[1]


def _is_set(actual, _expected):
	return bool(actual)


def _is_not_set(actual, _expected):
	return not actual


def _in(actual, expected):
	return actual in expected


def _not_in(actual, expected):
	return actual not in expected


def like_matcher(pattern):
	"""SQL LIKE as Frappe's list filters use it: % and _ are wildcards, case-insensitive.
	Without a wildcard the value is looked for anywhere in the text, as the desk's filter does."""
	text = str(pattern)
	if "%" not in text and "_" not in text:
		text = f"%{text}%"
	regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in text)
	return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL).match


def _like(actual, matcher):
	return matcher(actual) is not None


def _not_like(actual, matcher):
	return matcher(actual) is None


_REGISTRY = {}


def _register(*operators):
	for operator in operators:
		_REGISTRY[operator.name] = operator


_register(
	Operator("=", "Equals", ONE_VALUE, ALL_KINDS, _op.eq),
	Operator("!=", "Not Equals", ONE_VALUE, ALL_KINDS, _op.ne),
	Operator(">", "Greater Than", ONE_VALUE, ORDERED_KINDS, _ordered(_op.gt)),
	Operator(">=", "Greater Than or Equal To", ONE_VALUE, ORDERED_KINDS, _ordered(_op.ge)),
	Operator("<", "Less Than", ONE_VALUE, ORDERED_KINDS, _ordered(_op.lt)),
	Operator("<=", "Less Than or Equal To", ONE_VALUE, ORDERED_KINDS, _ordered(_op.le)),
	Operator("in", "In", LIST_OF_VALUES, ALL_KINDS - {BOOLEAN}, _in),
	Operator("not in", "Not In", LIST_OF_VALUES, ALL_KINDS - {BOOLEAN}, _not_in),
	Operator("like", "Like", ONE_VALUE, frozenset({TEXT}), _like),
	Operator("not like", "Not Like", ONE_VALUE, frozenset({TEXT}), _not_like),
	Operator("is set", "Is Set", NO_VALUE, ALL_KINDS - {BOOLEAN}, _is_set),
	Operator("is not set", "Is Not Set", NO_VALUE, ALL_KINDS - {BOOLEAN}, _is_not_set),
	Operator("between", "Between", PAIR_OF_VALUES, ORDERED_KINDS, _between),
	Operator("changed", "Changed", NO_VALUE, ALL_KINDS, needs_before=True),
	Operator("changed from", "Changed From", ONE_VALUE, ALL_KINDS, needs_before=True),
	Operator("changed to", "Changed To", ONE_VALUE, ALL_KINDS, needs_before=True),
)

OPERATOR_NAMES = tuple(_REGISTRY)


def get_operator(name):
	return _REGISTRY.get(name)


def describe_operators(fieldtype):
	"""The operators that fit a fieldtype, in display order, for the desk's operator dropdown."""
	if kind_of(fieldtype) == UNSUPPORTED:
		return []
	return [operator.as_dict() for operator in _REGISTRY.values() if operator.fits(fieldtype)]


def describe_all_operators(fieldtypes):
	return {fieldtype: describe_operators(fieldtype) for fieldtype in fieldtypes}
