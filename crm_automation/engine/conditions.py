"""Condition trees: ``{"all": [...]}`` / ``{"any": [...]}`` nested, with leaves
``{"field": ..., "op": ..., "value": ...}``.

``compile_condition`` checks a tree against a document's field list once and returns a
``Condition`` with two ways to evaluate it:

* ``matches(doc, before)``: the hot path, short-circuiting closures, no allocation per leaf;
* ``explain(doc, before)``: every leaf with its actual value, expected value and outcome, the
  "why did this fire / not fire" that users see.
"""

from .errors import ProblemCollector, RuleError
from .fieldtypes import (
	STANDARD_FIELDS,
	TEXT,
	UNSUPPORTED,
	ValueTypeError,
	describe_value,
	document_coercer,
	kind_of,
	parse_rule_value,
)
from .i18n import _
from .linked_paths import (
	AggregateLeaf,
	LinkedPathError,
	compile_aggregate_leaf,
	is_linked_path,
	resolve_linked_path,
)
from .operators import (
	LIST_OF_VALUES,
	NO_VALUE,
	OPERATOR_NAMES,
	PAIR_OF_VALUES,
	describe_operators,
	get_operator,
	like_matcher,
)

GROUP_KEYS = ("all", "any")
# Far beyond what anyone builds by hand, far below Python's recursion limit: a tree nested deeper
# (a generated or hostile pack) is refused with its path instead of crashing the compiler.
MAX_CONDITION_DEPTH = 32


def with_standard_fields(fields):
	merged = dict(STANDARD_FIELDS)
	merged.update(fields or {})
	return merged


def field_label(field, fieldname):
	return f"{fieldname} ({field['fieldtype']})"


class Leaf:
	__slots__ = ("coerce", "expected", "field", "fieldname", "label", "linked", "op", "path", "shown", "test")

	def explain(self, doc, before):
		actual = self.coerce(doc.get(self.fieldname))
		entry = {
			"path": self.path,
			"field": self.fieldname,
			"label": self.label,
			"op": self.op,
			"expected": _jsonable(self.shown),
			"actual": _jsonable(actual),
			"result": bool(self.test(doc, before)),
		}
		if get_operator(self.op).needs_before:
			entry["before"] = _jsonable(self.coerce(before.get(self.fieldname))) if before else None
		return entry["result"], [entry]


class Group:
	__slots__ = ("children", "mode", "path", "test")

	def explain(self, doc, before):
		results, trace = [], []
		for child in self.children:
			result, child_trace = child.explain(doc, before)
			results.append(result)
			trace.extend(child_trace)
		outcome = all(results) if self.mode == "all" else any(results)
		return outcome, trace


class Condition:
	"""A compiled condition tree. An empty tree always matches."""

	__slots__ = ("fields", "leaf_count", "linked_paths", "matches", "root", "source", "tables", "uses_before")

	def __init__(self, root, source):
		self.root = root
		self.source = source
		self.matches = root.test if root else _always
		leaves = list(_iter_leaves(root)) if root else []
		self.leaf_count = len(leaves)
		plain = [leaf for leaf in leaves if isinstance(leaf, Leaf) and not leaf.linked]
		# Own columns only (what a query on the document's table can select); linked values and
		# child rows are read through linked_paths and tables.
		self.fields = frozenset(leaf.fieldname for leaf in plain)
		self.linked_paths = {leaf.fieldname: leaf.linked for leaf in leaves if getattr(leaf, "linked", None)}
		self.tables = frozenset(leaf.table for leaf in leaves if isinstance(leaf, AggregateLeaf))
		self.uses_before = any(get_operator(leaf.op).needs_before for leaf in plain)

	def explain(self, doc, before=None):
		if not self.root:
			return True, []
		return self.root.explain(doc, before)


def _always(doc, before=None):
	return True


def _iter_leaves(node):
	if isinstance(node, Leaf | AggregateLeaf):
		yield node
	else:
		for child in node.children:
			yield from _iter_leaves(child)


def _jsonable(value):
	if isinstance(value, frozenset | set | tuple | list):
		return [_jsonable(v) for v in value]
	if hasattr(value, "isoformat"):
		return value.isoformat()
	if callable(value):
		return None
	return value


def is_empty_condition(tree):
	if not tree:
		return True
	if isinstance(tree, dict) and len(tree) == 1:
		key = next(iter(tree))
		return key in GROUP_KEYS and not tree[key]
	return False


def compile_condition(tree, fields, path="conditions", get_fields=None):
	"""Compile a condition tree against ``fields`` (fieldname → {fieldtype, options, label}).

	``get_fields(doctype)`` (fields of another doctype, or None) lets leaves read linked documents
	and child tables (see engine/linked.py); without it such leaves are refused.
	Raises RuleError listing every problem found, each with its path."""
	fields = with_standard_fields(fields)
	problems = ProblemCollector()
	if is_empty_condition(tree):
		return Condition(None, tree)
	root = _compile_node(tree, fields, path, problems, get_fields=get_fields)
	problems.raise_if_any()
	return Condition(root, tree)


def _compile_node(node, fields, path, problems, depth=1, get_fields=None):
	if depth > MAX_CONDITION_DEPTH:
		problems.add(path, _("conditions are nested deeper than {0} levels").format(MAX_CONDITION_DEPTH))
		return None
	if not isinstance(node, dict):
		problems.add(path, _("{0} is not a condition (expected an object)").format(describe_value(node)), value=node)
		return None
	group_keys = [key for key in GROUP_KEYS if key in node]
	if group_keys:
		if len(node) != 1:
			problems.add(path, _("a group holds exactly one of 'all' or 'any' and nothing else"))
			return None
		mode = group_keys[0]
		children_source = node[mode]
		if not isinstance(children_source, list):
			problems.add(f"{path}.{mode}", _("must be a list of conditions"), value=children_source)
			return None
		children = [
			_compile_node(child, fields, f"{path}.{mode}[{i}]", problems, depth + 1, get_fields)
			for i, child in enumerate(children_source)
		]
		children = [child for child in children if child is not None]
		group = Group()
		group.mode = mode
		group.path = path
		group.children = tuple(children)
		group.test = _group_test(mode, tuple(child.test for child in children))
		return group
	if "agg" in node:
		return compile_aggregate_leaf(node, fields, path, problems, get_fields, _compile_leaf)
	return _compile_leaf(node, fields, path, problems, get_fields)


def _group_test(mode, tests):
	if len(tests) == 1:
		return tests[0]
	if mode == "all":

		def all_match(doc, before=None):
			for test in tests:
				if not test(doc, before):
					return False
			return True

		return all_match

	def any_match(doc, before=None):
		for test in tests:
			if test(doc, before):
				return True
		return False

	return any_match


def _compile_leaf(node, fields, path, problems, get_fields=None):
	fieldname = node.get("field")
	op_name = node.get("op")
	value = node.get("value")
	unknown_keys = set(node) - {"field", "op", "value"}
	if unknown_keys:
		problems.add(path, _("unknown key(s) {0} in a condition").format(", ".join(sorted(unknown_keys))))
		return None
	if not fieldname:
		problems.add(path, _("the condition has no field"), value=node)
		return None
	if not isinstance(fieldname, str) or not isinstance(op_name, str | None):
		problems.add(path, _("the field and the operator of a condition are text"), value=node)
		return None
	field = fields.get(fieldname)
	linked = None
	if field is None and is_linked_path(fieldname):
		try:
			linked = resolve_linked_path(fieldname, fields, get_fields)
		except LinkedPathError as error:
			problems.add(path, str(error), field=fieldname, value=fieldname)
			return None
		field = linked.field
	if field is None:
		problems.add(path, _("unknown field {0}").format(describe_value(fieldname)), field=fieldname, value=fieldname)
		return None
	kind = kind_of(field["fieldtype"])
	if kind == UNSUPPORTED:
		problems.add(
			path,
			_("{0} cannot be used in a condition").format(field_label(field, fieldname)),
			field=fieldname,
		)
		return None
	operator = get_operator(op_name)
	if operator is None:
		problems.add(
			path,
			_("unknown operator {0} for {1} (use one of: {2})").format(
				describe_value(op_name), fieldname, ", ".join(OPERATOR_NAMES)
			),
			field=fieldname,
			value=op_name,
		)
		return None
	if not operator.fits(field["fieldtype"]):
		allowed = ", ".join(o["operator"] for o in describe_operators(field["fieldtype"]))
		problems.add(
			path,
			_("operator {0} does not fit {1} (use one of: {2})").format(
				describe_value(op_name), field_label(field, fieldname), allowed
			),
			field=fieldname,
			value=op_name,
		)
		return None

	if linked and operator.needs_before:
		problems.add(
			path,
			_(
				"operator {0} does not apply to {1}: the linked document's earlier value is not known"
			).format(describe_value(op_name), describe_value(fieldname)),
			field=fieldname,
			value=op_name,
		)
		return None

	expected = _parse_expected(operator, value, field, fieldname, path, problems)
	if expected is _INVALID:
		return None

	leaf = Leaf()
	leaf.linked = linked
	leaf.fieldname = fieldname
	leaf.label = field.get("label") or fieldname
	leaf.op = op_name
	leaf.path = path
	leaf.field = field
	leaf.coerce = document_coercer(kind)
	leaf.expected = expected
	# A like pattern is compiled to a matcher; the trace shows what the administrator typed.
	leaf.shown = value if op_name in ("like", "not like") else expected
	leaf.test = _leaf_test(operator, fieldname, leaf.coerce, expected, kind)
	return leaf


_INVALID = object()


def _parse_expected(operator, value, field, fieldname, path, problems):
	def parse_one(raw):
		return parse_rule_value(raw, field)

	try:
		if operator.values == NO_VALUE:
			return None
		if operator.values == LIST_OF_VALUES:
			items = _as_list(value)
			if not items:
				problems.add(path, _("operator {0} needs at least one value for {1}").format(operator.name, fieldname), fieldname)
				return _INVALID
			return frozenset(parse_one(item) for item in items)
		if operator.values == PAIR_OF_VALUES:
			items = _as_list(value)
			if len(items) != 2:
				problems.add(
					path,
					_("{0} is not a pair of values (from, to) for {1}").format(
						describe_value(value), field_label(field, fieldname)
					),
					fieldname,
					value,
				)
				return _INVALID
			low, high = parse_one(items[0]), parse_one(items[1])
			if low > high:
				problems.add(path, _("between {0} and {1}: the first is after the second").format(items[0], items[1]), fieldname, value)
				return _INVALID
			return (low, high)
		if value is None:
			if kind_of(field["fieldtype"]) == TEXT:
				value = ""
			else:
				problems.add(path, _("operator {0} needs a value for {1}").format(operator.name, field_label(field, fieldname)), fieldname)
				return _INVALID
		parsed = parse_one(value)
		if operator.name in ("like", "not like"):
			return like_matcher(parsed)
		return parsed
	except ValueTypeError as error:
		problems.add(path, _("{0} for {1}").format(error, field_label(field, fieldname)), fieldname, value)
		return _INVALID


def _as_list(value):
	if value is None:
		return []
	if isinstance(value, list | tuple | set | frozenset):
		return list(value)
	if isinstance(value, str):
		separator = "\n" if "\n" in value else ","
		return [item.strip() for item in value.split(separator) if item.strip()]
	return [value]


def _leaf_test(operator, fieldname, coerce, expected, kind):
	name = operator.name
	if name == "changed":

		def changed(doc, before=None):
			return before is not None and coerce(before.get(fieldname)) != coerce(doc.get(fieldname))

		return changed
	if name == "changed from":

		def changed_from(doc, before=None):
			if before is None or coerce(before.get(fieldname)) != expected:
				return False
			return coerce(doc.get(fieldname)) != expected

		return changed_from
	if name == "changed to":

		def changed_to(doc, before=None):
			if before is None or coerce(doc.get(fieldname)) != expected:
				return False
			return coerce(before.get(fieldname)) != expected

		return changed_to

	compare = operator.compare

	def test(doc, before=None):
		return compare(coerce(doc.get(fieldname)), expected)

	return test


def compile_or_problems(tree, fields, path="conditions", get_fields=None):
	"""Compile, returning (condition, problems) instead of raising: for callers that collect."""
	try:
		return compile_condition(tree, fields, path, get_fields), []
	except RuleError as error:
		return None, error.problems
