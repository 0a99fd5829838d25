"""Checks a rule's template when the rule is saved, before it ever renders.

The sandbox of engine/templates.py already makes private attributes render as nothing and refuses
calls that change values; this check refuses them outright, with a reason, so the author learns at
save time that `{{ doc.__class__ }}`, `{{ cycler }}` or `{% include %}` is not available.

The limits on time and size are not this check's: a repeat count or a width can come from a field
or a variable, so the render enforces them as it runs (engine/budget.py). What is refused here
(`**`, repeating by a written-out number over MAX_REPEAT, recursive loops) only tells the author
early.
"""

from jinja2 import meta, nodes

from crm_automation.engine.i18n import _
from crm_automation.engine.reads import READ_HELPER, constant_reads
from crm_automation.engine.templates import (
	SAFE_GLOBALS,
	TemplateError,
	compile_template,
	is_template,
	sandbox_environment,
)

# A template writes a message: repeating text thousands of times is an attempt to exhaust memory.
MAX_REPEAT = 10_000
# payload: the body of an inbound webhook (engine/inbound.py), None for other triggers.
# communication: the incoming e-mail of a Communication Received rule (runtime/replies.py), else None.
TEMPLATE_NAMES = frozenset({"doc", "old_doc", "payload", "communication", READ_HELPER, *SAFE_GLOBALS})
# Jinja's own names for the template and macros: a way back to the template's context.
_SPECIAL_NAMES = frozenset({"self", "super", "caller", "varargs", "kwargs", "loop_context"})
_LOADING_NODES = (nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)
_ATTRIBUTE_FILTERS = frozenset(
	{"attr", "map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)


def check_template(text, path="template", names=TEMPLATE_NAMES):
	"""Raise TemplateError if `text` does not parse or reaches for what templates may not use.
	Text that is not a template passes as it is."""
	if not is_template(text):
		return
	compile_template(text)
	tree = sandbox_environment().parse(text)
	for node in tree.find_all(_LOADING_NODES):
		raise TemplateError(
			_("{{% {0} %}} is not available in rule templates").format(type(node).__name__.lower()), path
		)
	for node in tree.find_all(nodes.Name):
		if node.name in _SPECIAL_NAMES:
			raise TemplateError(_("{0} is not available in rule templates").format(node.name), path)
	for node in tree.find_all(nodes.Getattr):
		if node.attr.startswith("_"):
			raise TemplateError(
				_("{0} is private and not available in rule templates").format(node.attr), path
			)
	for node in tree.find_all(nodes.Getitem):
		if _private_constant(node.arg):
			raise TemplateError(
				_("{0} is private and not available in rule templates").format(node.arg.value), path
			)
	for node in tree.find_all(nodes.Filter):
		if node.name in _ATTRIBUTE_FILTERS and any(
			_private_constant(arg) for arg in [*node.args, *(kw.value for kw in node.kwargs)]
		):
			raise TemplateError(_("the {0} filter may not read private attributes").format(node.name), path)
	if any(True for _node in tree.find_all(nodes.Pow)):
		raise TemplateError(_("the ** operator is not available in rule templates"), path)
	for node in tree.find_all(nodes.Mul):
		if any(_large_constant(side) for side in (node.left, node.right)):
			raise TemplateError(
				_("repeating a value more than {0} times is not available in rule templates").format(
					MAX_REPEAT
				),
				path,
			)
	unknown = sorted(meta.find_undeclared_variables(tree) - names)
	if unknown:
		raise TemplateError(
			_("uses {0}, which is not available (use doc, old_doc, {1})").format(
				", ".join(unknown), ", ".join(sorted([*SAFE_GLOBALS, READ_HELPER]))
			),
			path,
		)


def reads_in_template(text):
	"""The `get_value` reads of a template whose doctype is written out (engine/reads.py)."""
	if not is_template(text):
		return []
	calls = []
	for node in sandbox_environment().parse(text).find_all(nodes.Call):
		if isinstance(node.node, nodes.Name) and node.node.name == READ_HELPER:
			args = [_constant(arg) for arg in node.args]
			for keyword in node.kwargs:
				position = {"doctype": 0, "name": 1, "fieldname": 2}.get(keyword.key)
				if position is not None:
					args += [None] * (position + 1 - len(args))
					args[position] = _constant(keyword.value)
			calls.append(args)
	return constant_reads(calls)


def _constant(node):
	"""A written-out argument: a constant, or a dict literal's keys (the filter fields)."""
	if isinstance(node, nodes.Const):
		return node.value
	if isinstance(node, nodes.Dict) and all(isinstance(pair.key, nodes.Const) for pair in node.items):
		return {pair.key.value: None for pair in node.items}
	return None


def _large_constant(node):
	return isinstance(node, nodes.Const) and isinstance(node.value, int) and node.value > MAX_REPEAT


def _private_constant(node):
	return isinstance(node, nodes.Const) and isinstance(node.value, str) and node.value.startswith("_")
