"""No import circle among the app's modules (tests aside), and the old dotted paths kept for one
release only import downward. The imports are read with ast, nothing is run."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
APP = ROOT / "crm_automation"

# Old dotted paths kept for one release (queued jobs, hooks of running workers, clients calling
# whitelisted methods): each is a shim that re-exports the same objects from their new home.
SHIMS = {
	"crm_automation.cli": "crm_automation.offline.cli",
	"crm_automation.events": "crm_automation.doc_events",
	"crm_automation.linked_fields": "crm_automation.api.linked_field_pickers",
	"crm_automation.opportunities": "crm_automation.api.opportunities",
	"crm_automation.rule_words": "crm_automation.api.rule_sentence",
	"crm_automation.sequence_panel": "crm_automation.api.sequence_panel",
	"crm_automation.record_access": "crm_automation.trust.record_access",
	"crm_automation.runner": "crm_automation.runtime.runner",
	"crm_automation.sequence_runs": "crm_automation.sequences.runs",
	"crm_automation.tasks": "crm_automation.scheduler",
}


def module_name(path):
	parts = list(path.relative_to(ROOT).with_suffix("").parts)
	if parts[-1] == "__init__":
		parts.pop()
	return ".".join(parts)


def is_test(path):
	return "tests" in path.relative_to(APP).parts or path.name.startswith("test_")


def app_modules():
	return {module_name(path): path for path in APP.rglob("*.py") if not is_test(path)}


def imports_of(name, path, known):
	"""The app modules ``name`` imports, wherever the import stands (in a function too)."""
	package = name if path.name == "__init__.py" else name.rpartition(".")[0]
	found = set()
	for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
		if isinstance(node, ast.Import):
			targets = [alias.name for alias in node.names]
		elif isinstance(node, ast.ImportFrom):
			base = node.module or ""
			if node.level:
				anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
				base = ".".join(anchor + ([base] if base else []))
			# "from package import module" is an arrow to the module; "from module import name" to the module
			targets = [
				f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
			]
		else:
			continue
		for target in targets:
			while target and target not in known:
				target = target.rpartition(".")[0]
			if target and target != name:
				found.add(target)
				found.update(_packages_run_first(name, target, known))
	return found


def _packages_run_first(name, target, known):
	"""Importing a.b.c runs a/__init__ and a/b/__init__ first: an arrow to each of those packages,
	except the importer's own (already being imported when it runs) and the app's root."""
	own = {name.rsplit(".", depth)[0] for depth in range(name.count(".") + 1)}
	parts = target.split(".")
	packages = {".".join(parts[:end]) for end in range(2, len(parts))}
	return {package for package in packages if package in known and package not in own}


def import_graph():
	modules = app_modules()
	return {name: imports_of(name, path, modules) for name, path in modules.items()}


def circles(graph):
	"""Strongly connected components of more than one module (or a module importing itself),
	by Tarjan's algorithm."""
	index, low, stack, on_stack, found = {}, {}, [], set(), []

	def visit(node):
		index[node] = low[node] = len(index)
		stack.append(node)
		on_stack.add(node)
		for nxt in graph.get(node, ()):
			if nxt not in index:
				visit(nxt)
				low[node] = min(low[node], low[nxt])
			elif nxt in on_stack:
				low[node] = min(low[node], index[nxt])
		if low[node] == index[node]:
			component = []
			while True:
				member = stack.pop()
				on_stack.discard(member)
				component.append(member)
				if member == node:
					break
			if len(component) > 1 or node in graph.get(node, ()):
				found.append(sorted(component))

	for node in sorted(graph):
		if node not in index:
			visit(node)
	return found


def test_the_graph_follows_a_package_run_before_its_module():
	"""A module importing actions.common runs actions/__init__ first, and what that imports."""
	modules = app_modules()
	edges = _packages_run_first("crm_automation.runtime.run_state", "crm_automation.actions.common", modules)
	assert edges == {"crm_automation.actions"}
	assert _packages_run_first("crm_automation.actions.records", "crm_automation.actions.common", modules) == set()


def test_the_checker_finds_a_circle():
	graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
	assert sorted(circles(graph)) == [["a", "b", "c"], ["e"]]
	assert circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_graph_reads_relative_and_package_imports():
	graph = import_graph()
	assert "crm_automation.engine.fieldtypes" in graph["crm_automation.engine.workflow"]
	assert "crm_automation.actions" in graph["crm_automation.runtime.runner"]


def test_no_import_circle_among_the_app_modules():
	assert circles(import_graph()) == []


def test_aliases_kept_for_one_release_only_point_down():
	graph = import_graph()
	modules = app_modules()
	for old, new in SHIMS.items():
		assert graph[old] == {new} | _packages_run_first(old, new, modules), old
		assert old not in {m for targets in graph.values() for m in targets}, f"{old} is still imported"
