"""The Jinja environment rule templates render in: Jinja's immutable sandbox, metered (budget.py).

Jinja's sandbox stops a template from reaching what it may not; it does not stop one from running
long or building a huge value. Here every loop round, call, filter and `*` `+` `%` `**` operation is
a step of the render's budget, each value they build is size-checked (before it is built where
arguments alone make it large: `'x' * n`, `''.zfill(n)`, `'%0*d' % (n, 0)`, `|center(n)` ...),
and every piece written, by the template or inside a macro or `{% set %}` block, counts toward the
characters it may write. The checks are put into the template when it is compiled, so a template
saved before them is checked too.
"""

import functools
import html

from jinja2 import nodes, pass_context
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

from crm_automation.engine import budget
from crm_automation.engine.budget import Overrun, check_length, check_percent_format, check_text_method
from crm_automation.engine.i18n import _

# Filters the compiler puts in; a template naming them gets nothing it could not do anyway.
LOOP_FILTER = "_metered_loop"
CONCAT_FILTER = "_checked_concat"
MAX_JSON_INDENT = 16


class MeteredSandbox(ImmutableSandboxedEnvironment):
	intercepted_binops = frozenset({"*", "+", "%", "**"})

	def __init__(self, **options):
		super().__init__(finalize=_written, **options)
		self.filters = {name: _metered_filter(name, function) for name, function in self.filters.items()}
		self.filters["striptags"] = _metered_filter("striptags", _striptags)
		self.filters[LOOP_FILTER] = _metered_loop
		self.filters[CONCAT_FILTER] = _concat

	def call_binop(self, context, operator, left, right):
		budget.step()
		budget.check_binop(operator, left, right)
		return budget.checked(super().call_binop(context, operator, left, right))

	def call(__self, __context, __obj, *args, **kwargs):  # Jinja's own signature
		budget.step()
		budget.check_call(__obj, args, kwargs)
		return budget.checked(super().call(__context, __obj, *args, **kwargs))

	def _parse(self, source, name, filename):
		tree = _Metering().visit(super()._parse(source, name, filename))
		tree.set_environment(self)
		return tree


class _Metering(NodeTransformer):
	"""Puts the checks into a parsed template."""

	def visit_For(self, node):
		if node.recursive:
			raise TemplateSyntaxError(_("recursive loops are not available in rule templates"), node.lineno)
		node = self.generic_visit(node)
		node.iter = nodes.Filter(node.iter, LOOP_FILTER, [], [], None, None, lineno=node.lineno)
		return node

	def visit_Concat(self, node):
		# `a ~ b ~ c` joins its parts in one go: they are counted as they are joined instead.
		node = self.generic_visit(node)
		parts = nodes.List(node.nodes, lineno=node.lineno)
		return nodes.Filter(parts, CONCAT_FILTER, [], [], None, None, lineno=node.lineno)

	def visit_TemplateData(self, node):
		# Written text as a constant: it then goes through `_written` like any value, so a loop
		# writing the same text a million times is stopped too.
		return nodes.Const(node.data, lineno=node.lineno)


@pass_context
def _written(_context, value):
	text = str(value)
	meter = budget.current_meter()
	if meter is not None:
		meter.wrote(len(text))
	return text


def _concat(parts):
	texts, total = [], 0
	for part in parts:
		text = str(part)
		total += len(text)
		check_length(total)
		texts.append(text)
	return "".join(texts)


def _metered_loop(iterable):
	for item in iterable:
		budget.step()
		yield item


def _metered_filter(name, function):
	before = _BEFORE.get(name)
	passes_argument = _PassArg.from_obj(function) is not None

	@functools.wraps(function)
	def metered(*args, **kwargs):
		budget.step()
		if before is not None:
			before(*(args[1:] if passes_argument else args), **kwargs)
		return budget.checked(function(*args, **kwargs))

	return metered


def _width(value, width=80, *_args, **_kwargs):
	check_length(budget.as_count(width))


def _indent(text, width=4, *_args, **_kwargs):
	lines = str(text).count("\n") + 1
	each = width if isinstance(width, int) else len(str(width))
	check_length(len(str(text)) + lines * each)


def _format(value, *args, **kwargs):
	check_percent_format(str(value), tuple(args) if not kwargs else kwargs)


def _wordwrap(text, width=79, break_long_words=True, wrapstring=None, *_args, **_kwargs):
	text = str(text)
	pieces = len(text) // max(budget.as_count(width), 1) + 1
	check_length(len(text) + pieces * len(str(wrapstring or "\n")))


def _join(value, d="", attribute=None):
	if isinstance(value, str | list | tuple):
		pieces = 0 if attribute is not None else sum(len(p) for p in value if isinstance(p, str))
		check_length(len(str(d)) * max(len(value) - 1, 0) + pieces)


def _replace(text, old, new, count=None):
	check_text_method(str(text), "replace", (str(old), str(new), -1 if count is None else count), {})


def _pieces(value, count, *_args, **_kwargs):
	check_length(budget.as_count(count))


def _sum(iterable, attribute=None, start=0):
	# Adding up lists or texts copies them again at every item: sum adds numbers only.
	if not isinstance(start, int | float):
		raise Overrun(Overrun.SUM, None)


def _tojson(value, indent=None):
	if indent is not None and (budget.as_count(indent) > MAX_JSON_INDENT or not isinstance(indent, int)):
		raise Overrun(Overrun.INDENT, MAX_JSON_INDENT)


_BEFORE = {
	"center": _width,
	"indent": _indent,
	"format": _format,
	"wordwrap": _wordwrap,
	"join": _join,
	"replace": _replace,
	"batch": _pieces,
	"slice": _pieces,
	"sum": _sum,
	"tojson": _tojson,
}


def _striptags(value):
	"""Jinja's striptags in one pass over the text (MarkupSafe 2 removed each tag by copying the
	whole text again)."""
	text = str(value.__html__()) if hasattr(value, "__html__") else str(value)
	parts, position = [], 0
	while (start := text.find("<", position)) != -1:
		if text.startswith("<!--", start):
			end = text.find("-->", start + 4)
			end = end + 3 if end != -1 else -1
		else:
			end = text.find(">", start)
			end = end + 1 if end != -1 else -1
		if end == -1:
			break
		parts.append(text[position:start])
		position = end
	if position:
		parts.append(text[position:])
		text = "".join(parts)
	return html.unescape(" ".join(text.split()))
