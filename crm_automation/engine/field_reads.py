"""The document fields a template or an Advanced Condition names, found without running it.

A rule is refused at save when it names a field its run-as user may not read, so the author learns
then, not from a value that is silently absent later. What is written out is found: ``doc.x``,
``old_doc.x``, ``doc['x']``, ``doc.get('x')``, a field of a child row reached through the table
(``doc.items[0].rate``, ``{% for row in doc.items %}{{ row.rate }}``, ``[r.rate for r in doc.items]``,
``doc.items|map(attribute='rate')``). A name built at run time (``doc['sec' + 'ret']``) cannot be
told here: at run time such a field is simply absent from what the rule sees.

Each read is a fieldname, or a (table fieldname, row fieldname) pair.
"""

import ast

from jinja2 import nodes

from crm_automation.engine.templates import is_template, sandbox_environment

DOC_NAMES = frozenset({"doc", "old_doc"})
# Jinja filters that read an attribute of each item, named by their `attribute` argument.
_ATTRIBUTE_FILTERS = frozenset(
	{"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)


def fields_in_template(text):
	"""The reads a Jinja template writes out (empty for text that is not a template or does not parse:
	check_template reports the latter)."""
	if not is_template(text):
		return set()
	try:
		tree = sandbox_environment().parse(text)
	except Exception:
		return set()
	rows = {}  # loop variable → table fieldname
	for loop in tree.find_all(nodes.For):
		source = loop.iter
		while isinstance(source, nodes.Filter):  # a filtered table (or the sandbox's loop meter)
			source = source.node
		table = _jinja_field(source)
		if table and isinstance(loop.target, nodes.Name):
			rows[loop.target.name] = table
	reads = set()
	for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Filter)):
		if isinstance(node, nodes.Call):
			if isinstance(node.node, nodes.Getattr) and node.node.attr == "get" and node.args:
				source, key = node.node.node, _jinja_constant(node.args[0])
				_add(reads, _jinja_source(source, rows), key)
			continue
		if isinstance(node, nodes.Filter):
			table = _jinja_field(node.node)
			if table and node.name in _ATTRIBUTE_FILTERS:
				for value in [*node.args, *(kw.value for kw in node.kwargs if kw.key == "attribute")]:
					key = _jinja_constant(value)
					if key:
						reads.add((table, key.split(".")[0]))
			continue
		key = node.attr if isinstance(node, nodes.Getattr) else _jinja_constant(node.arg)
		_add(reads, _jinja_source(node.node, rows), key)
	return reads


def _add(reads, source, key):
	if not key or source is None:
		return
	reads.add(key if source == "" else (source, key))


def _jinja_source(node, rows):
	"""'' for the document itself, a table fieldname for one of its rows, None for anything else."""
	if isinstance(node, nodes.Name):
		if node.name in DOC_NAMES:
			return ""
		return rows.get(node.name)
	if isinstance(node, nodes.Getitem):
		return _jinja_field(node.node)
	return None


def _jinja_field(node):
	"""The fieldname of ``doc.x`` / ``doc['x']``, else None."""
	if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name in DOC_NAMES:
		return node.attr
	if isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.Name) and node.node.name in DOC_NAMES:
		return _jinja_constant(node.arg)
	return None


def _jinja_constant(node):
	if isinstance(node, nodes.Const) and isinstance(node.value, str):
		return node.value
	return None


def fields_in_expression(text):
	"""The reads an Advanced Condition writes out (empty when it does not parse: the expression check
	reports that)."""
	try:
		tree = ast.parse((text or "").strip(), mode="eval")
	except (SyntaxError, ValueError):
		return set()
	rows = {}
	for comprehension in ast.walk(tree):
		if isinstance(comprehension, ast.comprehension) and isinstance(comprehension.target, ast.Name):
			table = _python_field(comprehension.iter)
			if table:
				rows[comprehension.target.id] = table
	reads = set()
	for node in ast.walk(tree):
		if isinstance(node, ast.Attribute):
			_add(reads, _python_source(node.value, rows), node.attr)
		elif isinstance(node, ast.Subscript):
			_add(reads, _python_source(node.value, rows), _python_constant(node.slice))
		elif (
			isinstance(node, ast.Call)
			and isinstance(node.func, ast.Attribute)
			and node.func.attr == "get"
			and node.args
		):
			_add(reads, _python_source(node.func.value, rows), _python_constant(node.args[0]))
	return reads


def _python_source(node, rows):
	if isinstance(node, ast.Name):
		if node.id in DOC_NAMES:
			return ""
		return rows.get(node.id)
	if isinstance(node, ast.Subscript):
		return _python_field(node.value)
	return None


def _python_field(node):
	if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in DOC_NAMES:
		return node.attr
	if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in DOC_NAMES:
		return _python_constant(node.slice)
	return None


def _python_constant(node):
	if isinstance(node, ast.Constant) and isinstance(node.value, str):
		return node.value
	return None
