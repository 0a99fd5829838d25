"""Static loop check: follow what each rule writes to the rules those writes trigger.

A Set Value action writes a field of its own document (seen by Value Change rules on that field);
Create Document, Assign, Create ToDo, Add Comment and System Notification create documents (seen by
New, Save and Validate rules on those doctypes). A cycle in that graph is reported by rule names so
the administrator can break it before it ever runs.
"""

from .workflow import (
	ADD_COMMENT,
	ASSIGN,
	CREATE_TODO,
	NOTIFY,
	TRIGGER_NEW,
	TRIGGER_SAVE,
	TRIGGER_VALIDATE,
	TRIGGER_VALUE_CHANGE,
)

_CREATES_BY_ACTION = {
	ASSIGN: "ToDo",
	CREATE_TODO: "ToDo",
	ADD_COMMENT: "Comment",
	NOTIFY: "Notification Log",
}
_ON_CREATE_TRIGGERS = (TRIGGER_NEW, TRIGGER_SAVE, TRIGGER_VALIDATE)


def created_doctypes(rule):
	doctypes = set(rule.created_doctypes)
	for intents in rule.actions_by_branch.values():
		for intent in intents:
			if intent["type"] in _CREATES_BY_ACTION:
				doctypes.add(_CREATES_BY_ACTION[intent["type"]])
	return doctypes


def triggers(writer, reader):
	"""Does carrying out ``writer``'s actions start ``reader``?"""
	if reader.trigger == TRIGGER_VALUE_CHANGE and reader.document_type == writer.document_type:
		if reader.trigger_field in writer.set_fields:
			return True
	return reader.trigger in _ON_CREATE_TRIGGERS and reader.document_type in created_doctypes(writer)


def find_cycles(rules, through=None):
	"""Every elementary cycle (as a list of rule names, first name repeated at the end), optionally
	only those passing through the rule named ``through``. Edges come from lookups by what each rule
	listens to, and with ``through`` only the rules that both reach it and are reached from it are
	searched, so checking one rule among thousands stays quick."""
	by_name = {rule.name: rule for rule in rules}
	edges = _edges(by_name)
	if through:
		if through not in edges:
			return []
		around = _reachable(edges, through) & _reachable(_reversed(edges), through)
		edges = {name: [n for n in targets if n in around] for name, targets in edges.items() if name in around}
	cycles, seen = [], set()
	for start in sorted(edges):
		stack = [(start, [start])]
		while stack:
			node, path = stack.pop()
			for nxt in edges[node]:
				if nxt == start:
					cycle = [*path, start]
					key = frozenset(path)
					if key not in seen:
						seen.add(key)
						cycles.append(cycle)
				elif nxt not in path and nxt > start:
					stack.append((nxt, [*path, nxt]))
	if through:
		cycles = [cycle for cycle in cycles if through in cycle]
	return cycles


def _edges(by_name):
	"""name → sorted names of the rules its actions start (``triggers``), without testing every pair."""
	on_change, on_create = {}, {}
	for name, rule in by_name.items():
		if rule.trigger == TRIGGER_VALUE_CHANGE:
			on_change.setdefault((rule.document_type, rule.trigger_field), set()).add(name)
		if rule.trigger in _ON_CREATE_TRIGGERS:
			on_create.setdefault(rule.document_type, set()).add(name)
	edges = {}
	for name, rule in by_name.items():
		targets = set()
		for fieldname in rule.set_fields:
			targets |= on_change.get((rule.document_type, fieldname), set())
		for doctype in created_doctypes(rule):
			targets |= on_create.get(doctype, set())
		edges[name] = sorted(targets)
	return edges


def _reversed(edges):
	reverse = {name: [] for name in edges}
	for name, targets in edges.items():
		for target in targets:
			reverse[target].append(name)
	return reverse


def _reachable(edges, start):
	seen, stack = {start}, [start]
	while stack:
		for nxt in edges[stack.pop()]:
			if nxt not in seen:
				seen.add(nxt)
				stack.append(nxt)
	return seen


def describe_cycle(cycle):
	return " → ".join(cycle)
