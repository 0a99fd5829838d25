"""Advanced Conditions: a small Python expression evaluated on read-only values, never with eval.

A condition is parsed once and checked against a whitelist of syntax: comparisons, boolean logic,
arithmetic, literals, field reads on `doc` / `old_doc`, the pure helpers templates have, and a short
list of pure methods (`str.lower`, `get` ...). Lambdas, comprehensions, private names (`__class__`),
imports and any other method are refused when the rule is saved; the tree is then walked by this
module's own interpreter, so nothing outside the whitelist is reachable at run time either.

Each evaluation has a budget (engine/budget.py): no value it builds may pass MAX_VALUE_LENGTH,
checked as it runs on every operator and method call (`"".zfill(n)`, `"%0*d" % (n, 0)` included),
and it stops after a time limit.
"""

import ast
import datetime
import functools
import operator
from collections.abc import Mapping

from crm_automation.engine import budget
from crm_automation.engine.errors import RuleError, RuleProblem
from crm_automation.engine.i18n import _
from crm_automation.engine.payload import current_payload
from crm_automation.engine.reads import READ_HELPER, constant_reads, read_helper
from crm_automation.engine.templates import SAFE_GLOBALS, ReadOnlyDoc, as_read_only, read_only_value

MAX_EXPRESSION_LENGTH = 2_000
MAX_SEQUENCE_REPEAT = 10_000
MAX_VALUE_LENGTH = budget.MAX_VALUE_LENGTH

# One set of helpers for conditions and templates; any/all only make sense on a child table.
EXPRESSION_HELPERS = {**SAFE_GLOBALS, "any": any, "all": all, "bool": bool}
# payload: the body of an inbound webhook (engine/inbound.py), None for other triggers.
EXPRESSION_NAMES = frozenset({"doc", "old_doc", "payload", READ_HELPER, *EXPRESSION_HELPERS})

# Methods without side effects, by the type they may be called on.
PURE_METHODS = {
	str: frozenset(
		{
			"lower",
			"upper",
			"strip",
			"lstrip",
			"rstrip",
			"startswith",
			"endswith",
			"split",
			"title",
			"capitalize",
			"casefold",
			"isdigit",
			"isalpha",
			"isalnum",
			"isspace",
			"islower",
			"isupper",
			"isnumeric",
			"isdecimal",
			"find",
			"count",
			"replace",
			"zfill",
		}
	),
	ReadOnlyDoc: frozenset({"get"}),
	tuple: frozenset({"count", "index"}),
	datetime.date: frozenset({"weekday", "isoweekday", "isoformat"}),
	datetime.datetime: frozenset({"weekday", "isoweekday", "isoformat", "date"}),
}
ALL_PURE_METHODS = frozenset().union(*PURE_METHODS.values())
# Attributes of values other than documents that a condition may read.
PURE_ATTRIBUTES = frozenset({"year", "month", "day", "hour", "minute", "second"})

_BINARY = {
	ast.Add: operator.add,
	ast.Sub: operator.sub,
	ast.Mult: operator.mul,
	ast.Div: operator.truediv,
	ast.FloorDiv: operator.floordiv,
	ast.Mod: operator.mod,
}
_BINARY_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}
_UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {
	ast.Eq: operator.eq,
	ast.NotEq: operator.ne,
	ast.Lt: operator.lt,
	ast.LtE: operator.le,
	ast.Gt: operator.gt,
	ast.GtE: operator.ge,
	ast.Is: operator.is_,
	ast.IsNot: operator.is_not,
	ast.In: lambda a, b: a in b,
	ast.NotIn: lambda a, b: a not in b,
}
_ALLOWED_NODES = (
	ast.Expression,
	ast.BoolOp,
	ast.And,
	ast.Or,
	ast.UnaryOp,
	ast.BinOp,
	ast.Compare,
	ast.IfExp,
	ast.Constant,
	ast.Name,
	ast.Load,
	ast.Attribute,
	ast.Subscript,
	ast.Slice,
	ast.Call,
	ast.List,
	ast.Tuple,
	ast.Set,
	ast.Dict,
	*_BINARY,
	*_UNARY,
	*_COMPARE,
)


class ExpressionError(RuleError):
	"""A condition that does not parse, uses what conditions may not use, or fails on these values."""

	def __init__(self, message, path="condition_expression"):
		super().__init__(RuleProblem(path, message))


def check_expression(text):
	"""Parse and whitelist a condition; returns the parsed tree or raises ExpressionError."""
	return _parse(text)


def reads_in_expression(text):
	"""The `get_value` reads of a condition whose doctype is written out (engine/reads.py)."""
	calls = []
	for node in ast.walk(_parse(text)):
		if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == READ_HELPER:
			calls.append([_constant(arg) for arg in node.args])
	return constant_reads(calls)


def _constant(node):
	"""A written-out argument: a constant, or a dict literal's keys (the filter fields)."""
	if isinstance(node, ast.Constant):
		return node.value
	if isinstance(node, ast.Dict) and all(isinstance(key, ast.Constant) for key in node.keys):
		return {key.value: None for key in node.keys}
	return None


@functools.lru_cache(maxsize=1024)
def _parse(text):
	if len(text) > MAX_EXPRESSION_LENGTH:
		raise ExpressionError(_("the condition is longer than {0} characters").format(MAX_EXPRESSION_LENGTH))
	try:
		tree = ast.parse(text.strip(), mode="eval")
	except SyntaxError as error:
		raise ExpressionError(_("does not run: {0}").format(error.msg))
	unknown = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} - EXPRESSION_NAMES
	if unknown:
		raise ExpressionError(
			_("uses {0}, which is not available (use doc, old_doc, {1})").format(
				", ".join(sorted(unknown)), ", ".join(sorted(EXPRESSION_HELPERS))
			)
		)
	for node in ast.walk(tree):
		if not isinstance(node, _ALLOWED_NODES):
			raise ExpressionError(_("{0} is not allowed in a condition").format(_describe(node)))
		if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
			raise ExpressionError(_("{0} is private and not allowed in a condition").format(node.attr))
		if isinstance(node, ast.Dict) and None in node.keys:
			raise ExpressionError(_("** unpacking is not allowed in a condition"))
		if isinstance(node, ast.Call):
			_check_call(node)
	return tree


def _check_call(node):
	if node.keywords:
		raise ExpressionError(_("calls with keyword arguments are not allowed in a condition"))
	if any(isinstance(arg, ast.Starred) for arg in node.args):
		raise ExpressionError(_("*arguments are not allowed in a condition"))
	func = node.func
	if isinstance(func, ast.Name) and (func.id in EXPRESSION_HELPERS or func.id == READ_HELPER):
		return
	if isinstance(func, ast.Attribute) and func.attr in ALL_PURE_METHODS:
		return
	called = func.attr if isinstance(func, ast.Attribute) else ast.unparse(func)
	raise ExpressionError(
		_(
			"calls {0}(), which is not allowed in a condition (only the helpers {1}, get() and text methods such as lower())"
		).format(called, ", ".join(sorted(EXPRESSION_HELPERS)))
	)


def _describe(node):
	names = {
		ast.Lambda: "lambda",
		ast.ListComp: "a comprehension",
		ast.SetComp: "a comprehension",
		ast.DictComp: "a comprehension",
		ast.GeneratorExp: "a generator",
		ast.NamedExpr: "the := operator",
		ast.Pow: "the ** operator",
		ast.JoinedStr: "an f-string",
		ast.Starred: "*arguments",
		ast.Await: "await",
		ast.Yield: "yield",
	}
	return names.get(type(node), type(node).__name__)


def evaluate_expression(text, doc, old_doc=None, read=None):
	"""The condition's value on read-only `doc` / `old_doc` (dicts, mappings or documents); `read`
	is what `get_value(...)` reads with (engine/reads.py), None where records cannot be read.
	Raises ExpressionError when it is not allowed or fails on these values."""
	tree = _parse(text)
	context = {
		**EXPRESSION_HELPERS,
		READ_HELPER: read_helper(budget.unmetered(read)),
		"doc": as_read_only(doc),
		"old_doc": as_read_only(old_doc) if old_doc is not None else None,
		"payload": read_only_value(current_payload()),
	}
	with budget.evaluating(budget.CONDITION, ExpressionError):
		try:
			return _Interpreter(context).run(tree.body)
		except (ExpressionError, budget.Overrun):
			raise
		except RuleError as error:
			raise ExpressionError(error.first.message)
		except RecursionError:
			raise ExpressionError(_("the condition is nested too deeply"))
		except Exception as error:
			raise ExpressionError(
				_("failed on this document: {0}: {1}").format(error.__class__.__name__, error)
			)


class _Interpreter:
	__slots__ = ("context",)

	def __init__(self, context):
		self.context = context

	def run(self, node):
		budget.step()
		return getattr(self, "_" + type(node).__name__)(node)

	def _Constant(self, node):
		return node.value

	def _Name(self, node):
		return self.context[node.id]

	def _BoolOp(self, node):
		value = None
		for operand in node.values:
			value = self.run(operand)
			if isinstance(node.op, ast.And) and not value:
				return value
			if isinstance(node.op, ast.Or) and value:
				return value
		return value

	def _UnaryOp(self, node):
		return _UNARY[type(node.op)](self.run(node.operand))

	def _BinOp(self, node):
		left, right = self.run(node.left), self.run(node.right)
		if isinstance(node.op, ast.Mult):
			_check_repeat(left, right)
			_check_repeat(right, left)
		# Checked before it runs: "%0100000000d" % 0 is never built.
		budget.check_binop(_BINARY_SYMBOLS[type(node.op)], left, right)
		return budget.checked(_BINARY[type(node.op)](left, right))

	def _Compare(self, node):
		left = self.run(node.left)
		for op, comparator in zip(node.ops, node.comparators, strict=True):
			right = self.run(comparator)
			if not _COMPARE[type(op)](left, right):
				return False
			left = right
		return True

	def _IfExp(self, node):
		return self.run(node.body) if self.run(node.test) else self.run(node.orelse)

	def _Attribute(self, node):
		value = self.run(node.value)
		if isinstance(value, ReadOnlyDoc):
			return value[node.attr]
		if node.attr in PURE_ATTRIBUTES and isinstance(value, datetime.date | datetime.time):
			return getattr(value, node.attr)
		raise ExpressionError(_("{0} has no readable attribute {1}").format(type(value).__name__, node.attr))

	def _Subscript(self, node):
		value = self.run(node.value)
		key = self.run(node.slice)
		if isinstance(value, ReadOnlyDoc | str | tuple | list | Mapping):
			return value[key]
		raise ExpressionError(_("{0} cannot be indexed").format(type(value).__name__))

	def _Slice(self, node):
		parts = (node.lower, node.upper, node.step)
		return slice(*(self.run(part) if part is not None else None for part in parts))

	def _Call(self, node):
		args = [self.run(arg) for arg in node.args]
		if isinstance(node.func, ast.Name):
			if node.func.id == READ_HELPER:
				args = [dict(arg._values) if isinstance(arg, ReadOnlyDoc) else arg for arg in args]
			return budget.checked(self.context[node.func.id](*args))
		receiver = self.run(node.func.value)
		if isinstance(receiver, ReadOnlyDoc) and node.func.attr != "get":
			raise ExpressionError(
				_("calls {0}(), which is not allowed in a condition").format(node.func.attr)
			)
		allowed = next((methods for kind, methods in PURE_METHODS.items() if type(receiver) is kind), ())
		if node.func.attr not in allowed:
			raise ExpressionError(
				_("{0} has no allowed method {1}()").format(type(receiver).__name__, node.func.attr)
			)
		if isinstance(receiver, ReadOnlyDoc):
			return receiver._get(*args)
		# Checked before it runs: "".zfill(100000000) is never built.
		budget.check_call(getattr(receiver, node.func.attr), args, {})
		return budget.checked(getattr(receiver, node.func.attr)(*args))

	def _List(self, node):
		return tuple(self.run(item) for item in node.elts)

	_Tuple = _List

	def _Set(self, node):
		return frozenset(self.run(item) for item in node.elts)

	def _Dict(self, node):
		return ReadOnlyDoc({self.run(k): self.run(v) for k, v in zip(node.keys, node.values, strict=True)})


def _check_repeat(sequence, count):
	if isinstance(sequence, str | tuple) and isinstance(count, int):
		if count > MAX_SEQUENCE_REPEAT:
			raise ExpressionError(
				_("repeating a value more than {0} times is not allowed").format(MAX_SEQUENCE_REPEAT)
			)
		# A condition computes a yes or no: a value of millions of characters is an attack, not data.
		budget.check_length(len(sequence) * count)
