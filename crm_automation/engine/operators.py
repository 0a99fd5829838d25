"""The operator registry: which operators fit which fieldtype, and how each compares.

The desk asks ``describe_operators(fieldtype)`` so an administrator is only offered operators that
fit the chosen field; the compiler asks ``get_operator`` and rejects the rest.
"""

import operator as _op

from .fieldtypes import (
	BOOLEAN,
	DATE,
	DATETIME,
	INTEGER,
	NUMBER,
	TEXT,
	TIME,
	UNSUPPORTED,
	ValueTypeError,
	kind_of,
)
from .i18n import _, _lt

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


# A pattern is matched in time linear in the text (times the pattern's length / 64 where it has
# `_`): a rule's author writes it and a save waits for it, so it may not backtrack ("%%%...X" with a
# regular expression did for minutes). Longer patterns than this are refused when the rule is saved.
MAX_LIKE_PATTERN_LENGTH = 1_000


def like_matcher(pattern):
	"""SQL LIKE as Frappe's list filters use it: % and _ are wildcards, case-insensitive.
	Without a wildcard the value is looked for anywhere in the text, as the desk's filter does.
	Every other character (a backslash too) stands for itself. Returns a matcher: value -> True or None."""
	text = str(pattern)
	if len(text) > MAX_LIKE_PATTERN_LENGTH:
		raise ValueTypeError(
			_("a like pattern may be at most {0} characters long, not {1}").format(
				MAX_LIKE_PATTERN_LENGTH, len(text)
			)
		)
	if "%" not in text and "_" not in text:
		text = f"%{text}%"
	return _LikePattern(_fold(text))


class _LikePattern:
	"""A LIKE pattern as its `%`-separated parts. Greedy leftmost matching of each part in turn is
	exact for such patterns: the first part is anchored at the start, the last at the end, and a
	middle part found further left never leaves less room for the parts after it."""

	__slots__ = ("first", "last", "literal", "middle", "minimum", "whole")

	def __init__(self, folded):
		parts = folded.split("%")
		self.whole = _Part(parts[0]) if len(parts) == 1 else None
		self.first, self.last = _Part(parts[0]), _Part(parts[-1])
		self.middle = tuple(_Part(part) for part in parts[1:-1] if part)
		self.minimum = sum(len(part) for part in parts)
		# Without `_` every part is found by str methods alone (the usual "%acme%").
		self.literal = None if "_" in folded else (parts[0], parts[-1], tuple(p for p in parts[1:-1] if p))

	def __call__(self, value):
		text = _fold(value if isinstance(value, str) else str(value))
		if len(text) < self.minimum:
			return None
		if self.whole is not None:
			return True if len(text) == self.whole.length and self.whole.at(text, 0) else None
		end = len(text) - self.last.length
		if self.literal is not None:
			first, last, middle = self.literal
			if not text.startswith(first) or not text.endswith(last):
				return None
			position = len(first)
			for part in middle:
				position = text.find(part, position, end)
				if position < 0:
					return None
				position += len(part)
			return True
		if not self.first.at(text, 0) or not self.last.at(text, end):
			return None
		position = self.first.length
		for part in self.middle:
			found = part.find(text, position, end)
			if found < 0:
				return None
			position = found + part.length
		return True


class _Part:
	"""Text between two `%`: literal characters and `_` (any one character)."""

	__slots__ = ("anchor", "anchor_offset", "goal", "length", "masks", "text", "wild", "wild_mask")

	def __init__(self, text):
		self.text = text
		self.length = len(text)
		self.wild = "_" in text
		if not self.wild:
			return
		# Shift-and over the part: bit i set means the part's first i + 1 characters end here.
		self.wild_mask, masks = 0, {}
		for index, char in enumerate(text):
			if char == "_":
				self.wild_mask |= 1 << index
			else:
				masks[char] = masks.get(char, 0) | 1 << index
		self.masks = {char: mask | self.wild_mask for char, mask in masks.items()}
		self.goal = 1 << (self.length - 1)
		# The longest literal run: found with str.find, it lets the scan skip text that cannot match.
		runs = [(len(run), -offset, run) for offset, run in _literal_runs(text)]
		if runs:
			_length, negative_offset, self.anchor = max(runs)
			self.anchor_offset = -negative_offset
		else:
			self.anchor, self.anchor_offset = "", 0

	def at(self, text, start):
		"""Does the part match text[start:start + length]?"""
		if not self.wild:
			return text.startswith(self.text, start)
		if start < 0 or start + self.length > len(text):
			return False
		window = text[start : start + self.length]
		return all(p == "_" or p == c for p, c in zip(self.text, window, strict=True))

	def find(self, text, start, end):
		"""The leftmost position >= start where the part lies wholly before `end`, or -1."""
		if not self.wild:
			return text.find(self.text, start, end)
		if end - start < self.length:
			return -1
		if not self.anchor:
			return start  # only `_`: any characters do
		state, masks, wild_mask, goal = 0, self.masks, self.wild_mask, self.goal
		anchor, offset, next_anchor = self.anchor, self.anchor_offset, -1
		index = start
		while index < end:
			if not state:
				# Nothing begun: no match can start before the next place the literal run fits.
				if next_anchor < index + offset:
					next_anchor = text.find(anchor, index + offset, end)
					if next_anchor < 0:
						return -1
				index = max(index, next_anchor - offset)
			state = ((state << 1) | 1) & masks.get(text[index], wild_mask)
			if state & goal:
				return index - self.length + 1
			index += 1
		return -1


def _literal_runs(text):
	offset = 0
	for run in text.split("_"):
		if run:
			yield offset, run
		offset += len(run) + 1


def _fold_char(code):
	"""The character standing for every character `code` matches case-insensitively, as the regular
	expression matcher this replaced compared them (simple lower case, plus the few letters with more
	than one lower case form: s and long s, the Greek sigmas)."""
	lower = _tolower(code)
	return chr(min((lower, *_EXTRA_CASES.get(lower, ()))))


try:  # the mapping Python's own re module uses for IGNORECASE
	from _sre import unicode_tolower as _tolower
	from re._casefix import _EXTRA_CASES
except ImportError:  # pragma: no cover - another Python

	def _tolower(code):
		lower = chr(code).lower()
		return ord(lower) if len(lower) == 1 else code

	_EXTRA_CASES = {}


class _FoldTable(dict):
	"""str.translate's table: each character's fold, worked out once; bounded so that a text of many
	distinct characters cannot grow it without end."""

	def __missing__(self, code):
		folded = _fold_char(code)
		if len(self) < 20_000:
			self[code] = folded
		return folded


_FOLD_TABLE = _FoldTable()


def _fold(text):
	return text.lower() if text.isascii() else text.translate(_FOLD_TABLE)


def _like(actual, matcher):
	return matcher(actual) is not None


def _not_like(actual, matcher):
	return matcher(actual) is None


_REGISTRY = {}


def _register(*operators):
	for operator in operators:
		_REGISTRY[operator.name] = operator


# The desk translates an operator's label with the context "Condition Operator": Frappe's own
# "Like" and "In" are other words in zh and ru (a thumbs-up, a web page).
_register(
	Operator("=", _lt("Equals", context="Condition Operator"), ONE_VALUE, ALL_KINDS, _op.eq),
	Operator("!=", _lt("Not Equals", context="Condition Operator"), ONE_VALUE, ALL_KINDS, _op.ne),
	Operator(
		">", _lt("Greater Than", context="Condition Operator"), ONE_VALUE, ORDERED_KINDS, _ordered(_op.gt)
	),
	Operator(
		">=",
		_lt("Greater Than or Equal To", context="Condition Operator"),
		ONE_VALUE,
		ORDERED_KINDS,
		_ordered(_op.ge),
	),
	Operator("<", _lt("Less Than", context="Condition Operator"), ONE_VALUE, ORDERED_KINDS, _ordered(_op.lt)),
	Operator(
		"<=",
		_lt("Less Than or Equal To", context="Condition Operator"),
		ONE_VALUE,
		ORDERED_KINDS,
		_ordered(_op.le),
	),
	Operator("in", _lt("In", context="Condition Operator"), LIST_OF_VALUES, ALL_KINDS - {BOOLEAN}, _in),
	Operator(
		"not in", _lt("Not In", context="Condition Operator"), LIST_OF_VALUES, ALL_KINDS - {BOOLEAN}, _not_in
	),
	Operator("like", _lt("Like", context="Condition Operator"), ONE_VALUE, frozenset({TEXT}), _like),
	Operator(
		"not like", _lt("Not Like", context="Condition Operator"), ONE_VALUE, frozenset({TEXT}), _not_like
	),
	Operator("is set", _lt("Is Set", context="Condition Operator"), NO_VALUE, ALL_KINDS - {BOOLEAN}, _is_set),
	Operator(
		"is not set",
		_lt("Is Not Set", context="Condition Operator"),
		NO_VALUE,
		ALL_KINDS - {BOOLEAN},
		_is_not_set,
	),
	Operator(
		"between", _lt("Between", context="Condition Operator"), PAIR_OF_VALUES, ORDERED_KINDS, _between
	),
	Operator("changed", _lt("Changed", context="Condition Operator"), NO_VALUE, ALL_KINDS, needs_before=True),
	Operator(
		"changed from",
		_lt("Changed From", context="Condition Operator"),
		ONE_VALUE,
		ALL_KINDS,
		needs_before=True,
	),
	Operator(
		"changed to", _lt("Changed To", context="Condition Operator"), ONE_VALUE, ALL_KINDS, needs_before=True
	),
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
