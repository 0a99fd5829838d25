"""Which compiled Workflow Rules could fire on a document, found without evaluating them all.

A rule is filed under one thing that must hold for it to fire:

* an **equality**: a leaf ``field = value`` or ``field in (...)`` (or ``changed to``) that every
  match needs (a leaf of the top-level ``all``, of the trigger, or on the same field in every
  branch that has actions when the rule has no unconditioned actions and no follow-up steps). The
  rule sits in a hash table under each value; a document finds it with one lookup of its own value;
* a **change**: ``changed`` / ``changed from`` (Value Change triggers): the rule is a candidate only
  when that field changed in this save;
* a **bound**: ``>``, ``>=``, ``<``, ``<=`` or ``between`` on a number, date or time: the rules are
  sorted by their bound and a document finds those its value can pass with one binary search;
* otherwise it is **always** a candidate.

Keys are the leaf's own coerced values (engine/fieldtypes.py), and a document's value goes through
the same coercer before the lookup, so the hash lookup decides exactly as the leaf's ``==`` does
(100 and "100.0" on a Currency field, None and "" on text, 0 and None on a Check). Leaves on linked
documents and child tables are never used as keys: the document's own dict does not hold them.

``candidates`` returns a superset of the rules that fire, in priority order: the caller evaluates
only those.
"""

from bisect import bisect_left, bisect_right

from .conditions import Group, Leaf

_CHANGE_OPS = ("changed", "changed from")
# operator → (side of the bound, strict); the operators refuse None (an empty date) themselves.
_BOUND_OPS = {
	">": ("lower", True),
	">=": ("lower", False),
	"between": ("lower", False),
	"<": ("upper", True),
	"<=": ("upper", False),
}


class Requirement:
	"""What must hold for a condition to match: ``equal`` maps (field, coercer) → the set of coerced
	values one of which the field must have; ``changed`` holds (field, coercer) pairs that must have
	changed; ``bounds`` maps (field, coercer, "lower" or "upper") → (bound, strict) that the coerced
	value must pass (and it must not be None). Any single entry is a valid index key; an empty
	requirement requires nothing."""

	__slots__ = ("bounds", "changed", "equal")

	def __init__(self, equal=None, changed=None, bounds=None):
		self.equal = equal or {}
		self.changed = changed or frozenset()
		self.bounds = bounds or {}

	def both(self, other):
		"""Both must hold: every entry of either holds (same field twice: the values in both)."""
		equal = dict(self.equal)
		for key, values in other.equal.items():
			equal[key] = equal[key] & values if key in equal else values
		return Requirement(equal, self.changed | other.changed, {**other.bounds, **self.bounds})

	def either(self, other):
		"""One of them holds: only what is required on the same field by both is still required."""
		equal = {key: values | other.equal[key] for key, values in self.equal.items() if key in other.equal}
		bounds = {
			key: _looser(key[2], bound, other.bounds[key])
			for key, bound in self.bounds.items()
			if key in other.bounds
		}
		return Requirement(equal, self.changed & other.changed, bounds)


def _looser(side, first, second):
	"""The bound that lets more values through (equal bounds: the one that is not strict)."""
	if first is None or second is None:
		return None
	(a, a_strict), (b, b_strict) = first, second
	try:
		if a == b:
			return (a, a_strict and b_strict)
		lower_first = a < b
	except TypeError:
		return None  # bounds that cannot be compared (naive and aware datetimes): no bound
	if side == "lower":
		return first if lower_first else second
	return second if lower_first else first


NOTHING = Requirement()


def requirement_of(node):
	"""The requirement of a compiled condition node (a Condition's root, or None: always matches)."""
	if node is None:
		return NOTHING
	if isinstance(node, Leaf):
		return _leaf_requirement(node)
	if isinstance(node, Group):
		if not node.children:
			return NOTHING  # all([]) always matches; any([]) never does, and requiring nothing is safe
		parts = [requirement_of(child) for child in node.children]
		combine = Requirement.both if node.mode == "all" else Requirement.either
		result = parts[0]
		for part in parts[1:]:
			result = combine(result, part)
		return result
	return NOTHING  # an aggregate over child rows


def _leaf_requirement(leaf):
	if leaf.linked:
		return NOTHING
	key = (leaf.fieldname, leaf.coerce)
	if leaf.op == "=" or leaf.op == "changed to":
		return Requirement({key: frozenset((leaf.expected,))})
	if leaf.op == "in":
		return Requirement({key: frozenset(leaf.expected)})
	if leaf.op in _CHANGE_OPS:
		return Requirement(changed=frozenset((key,)))
	if leaf.op in _BOUND_OPS:
		side, strict = _BOUND_OPS[leaf.op]
		bound = leaf.expected[0] if leaf.op == "between" else leaf.expected
		return Requirement(bounds={(*key, side): (bound, strict)})
	return NOTHING


def rule_requirement(rule):
	"""What must hold for a CompiledWorkflowRule to fire (its evaluation's outcome Fired/Rejected)."""
	requirement = NOTHING
	if rule.trigger_condition is not None:
		requirement = requirement.both(requirement_of(rule.trigger_condition.root))
	if rule.condition is not None:
		requirement = requirement.both(requirement_of(rule.condition.root))
	return requirement.both(_branch_requirement(rule))


def _branch_requirement(rule):
	"""A rule whose every action belongs to a branch fires only when a branch with actions matched
	(the first match is taken, and a branch without actions yields nothing): one of those
	branches' conditions holds. An else branch with actions or unconditioned actions or follow-up
	steps make it fire whatever the branches say."""
	if rule.actions_by_branch.get("") or rule.sequence or not rule.branches:
		return NOTHING
	result = None
	for branch in rule.branches:
		if not rule.actions_by_branch.get(branch.name):
			continue
		if branch.is_else or branch.condition is None:
			return NOTHING
		part = requirement_of(branch.condition.root)
		result = part if result is None else result.either(part)
	return result or NOTHING


class RuleIndex:
	"""The rules of one (doctype, event), in priority order, filed by what must hold for each."""

	__slots__ = ("_always", "_bounds", "_changed", "_equal", "position", "rules")

	def __init__(self, rules):
		self.rules = tuple(rules)
		self.position = {id(rule): i for i, rule in enumerate(self.rules)}
		self._equal = {}  # (field, coercer) → {coerced value → [positions]}
		self._changed = {}  # (field, coercer) → [positions]
		bounds = {}  # (field, coercer, side) → [(bound, strict, position)]
		always = []
		for i, rule in enumerate(self.rules):
			requirement = rule_requirement(rule)
			if requirement.equal:
				# The narrowest equality: fewest values, then the first field by name (deterministic).
				key = min(requirement.equal, key=lambda k: (len(requirement.equal[k]), k[0]))
				table = self._equal.setdefault(key, {})
				for value in requirement.equal[key]:
					table.setdefault(value, []).append(i)
			elif requirement.changed:
				key = min(requirement.changed, key=lambda k: k[0])
				self._changed.setdefault(key, []).append(i)
			elif any(bound is not None for bound in requirement.bounds.values()):
				key = min(
					(k for k, b in requirement.bounds.items() if b is not None), key=lambda k: (k[0], k[2])
				)
				bound, strict = requirement.bounds[key]
				bounds.setdefault(key, []).append((bound, strict, i))
			else:
				always.append(i)
		self._always = tuple(always)
		self._bounds = {key: _BoundTable(key[2], entries) for key, entries in bounds.items()}

	@property
	def always_count(self):
		return len(self._always)

	@property
	def bound_count(self):
		return sum(len(table.entries) for table in self._bounds.values())

	def candidates(self, values, before_values=None, after=None):
		"""The rules that could fire on ``values`` (``before_values``: the document before the save,
		None when new), highest priority first; with ``after``, only those ranked below that rule."""
		found = set(self._always)
		get = values.get
		for (fieldname, coerce), table in self._equal.items():
			hit = table.get(coerce(get(fieldname)))
			if hit:
				found.update(hit)
		if before_values is not None and self._changed:
			before_get = before_values.get
			for (fieldname, coerce), positions in self._changed.items():
				if coerce(before_get(fieldname)) != coerce(get(fieldname)):
					found.update(positions)
		for (fieldname, coerce, _side), table in self._bounds.items():
			table.add_passing(coerce(get(fieldname)), found)
		if after is not None:
			start = self.position[id(after)]
			found = [i for i in found if i > start]
		rules = self.rules
		return [rules[i] for i in sorted(found)]


class _BoundTable:
	"""Rules with a lower (or upper) bound on one field, sorted by it: the rules a value passes are a
	prefix (or suffix) found by binary search, plus those whose bound equals the value and admits it."""

	__slots__ = ("bounds", "entries", "side")

	def __init__(self, side, entries):
		self.side = side
		self.entries = None
		try:
			entries = sorted(entries, key=lambda e: e[0])
		except TypeError:
			pass  # bounds that cannot be ordered together: every rule here is always a candidate
		else:
			self.entries = entries
			self.bounds = [bound for bound, _strict, _position in entries]
		if self.entries is None:
			self.entries = entries
			self.bounds = None

	def add_passing(self, value, found):
		entries = self.entries
		if self.bounds is None:
			found.update(position for _bound, _strict, position in entries)
			return
		if value is None:
			return
		try:
			if self.side == "lower":
				end = bisect_left(self.bounds, value)
				found.update(entries[i][2] for i in range(end))
				i = end
				while i < len(entries) and entries[i][0] == value:
					if not entries[i][1]:
						found.add(entries[i][2])
					i += 1
			else:
				start = bisect_right(self.bounds, value)
				found.update(entries[i][2] for i in range(start, len(entries)))
				i = start - 1
				while i >= 0 and entries[i][0] == value:
					if not entries[i][1]:
						found.add(entries[i][2])
					i -= 1
		except TypeError:
			# A value that cannot be compared with the bounds: the leaves decide, on every rule here.
			found.update(position for _bound, _strict, position in entries)


class IndexedRules(tuple):
	"""A tuple of rules in priority order (what callers iterate) that also answers ``candidates``."""

	def __new__(cls, rules):
		self = super().__new__(cls, rules)
		self.index = RuleIndex(self)
		return self

	def candidates(self, values, before_values=None, after=None):
		return self.index.candidates(values, before_values, after)


def index_rules(rules):
	"""Rules of one (doctype, event) in priority order, with their index; () when there are none."""
	return IndexedRules(rules) if rules else ()


__all__ = ["IndexedRules", "Requirement", "RuleIndex", "index_rules", "rule_requirement"]
