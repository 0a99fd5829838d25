"""Static contract checks over the app's own files: they need no bench and catch the drift between
doctype JSON, hooks and the code that reads them."""

import ast
import json
import pathlib
import re

import pytest

from crm_automation.engine import workflow as wf

ROOT = pathlib.Path(__file__).resolve().parent.parent
APP = ROOT / "crm_automation"
MODULE = APP / "crm_automation"
DOCTYPES = {
	json.loads(path.read_text())["name"]: json.loads(path.read_text())
	for path in sorted((MODULE / "doctype").glob("*/*.json"))
	if path.parent.name == path.stem
}


def fieldnames(doctype):
	return {f["fieldname"] for f in DOCTYPES[doctype]["fields"]}


def options(doctype, fieldname):
	field = next(f for f in DOCTYPES[doctype]["fields"] if f["fieldname"] == fieldname)
	return tuple(o for o in field.get("options", "").split("\n") if o)


def source(relative):
	return (APP / relative).read_text()


class TestDoctypeFiles:
	def test_the_app_has_its_doctypes(self):
		assert {
			"Workflow Rule",
			"Workflow Rule Action",
			"Workflow Rule Branch",
			"Automation Log",
			"CRM Automation Settings",
		} <= set(DOCTYPES)

	@pytest.mark.parametrize("name", sorted(DOCTYPES))
	def test_doctype_folder_is_complete(self, name):
		meta = DOCTYPES[name]
		snake = name.lower().replace(" ", "_")
		folder = MODULE / "doctype" / snake
		assert meta["module"] == "CRM Automation"
		assert (folder / f"{snake}.py").exists() and (folder / "__init__.py").exists()
		if not meta.get("istable"):
			assert (folder / f"{snake}.js").exists(), f"{name} has no form script"
			assert (folder / f"test_{snake}.py").exists(), f"{name} has no test file"
		assert len(meta["field_order"]) == len(meta["fields"]) == len(fieldnames(name))

	@pytest.mark.parametrize("name", sorted(DOCTYPES))
	def test_tables_and_links_point_to_existing_doctypes(self, name):
		for field in DOCTYPES[name]["fields"]:
			if field["fieldtype"] in ("Table", "Table MultiSelect"):
				assert field["options"] in DOCTYPES, f"{name}.{field['fieldname']}"
				assert DOCTYPES[field["options"]].get("istable")
			if field["fieldtype"] == "Dynamic Link":
				assert field["options"] in fieldnames(name), f"{name}.{field['fieldname']}"

	def test_rules_are_editable_only_by_managers(self):
		for name in ("Workflow Rule", "CRM Automation Settings"):
			roles = {p["role"] for p in DOCTYPES[name]["permissions"] if p.get("write")}
			assert roles == {"System Manager", "CRM Automation Manager"}, name


class TestCodeMatchesDoctypes:
	def test_select_options_match_the_engine(self):
		assert options("Workflow Rule", "trigger") == wf.TRIGGERS
		assert options("Workflow Rule", "fire_mode") == wf.FIRE_MODES
		assert options("Workflow Rule", "time_unit") == tuple(wf.TIME_UNITS)
		assert options("Workflow Rule", "time_direction") == wf.TIME_DIRECTIONS
		assert options("Workflow Rule Action", "action_type") == wf.ACTION_TYPES
		assert options("Workflow Rule Action", "assign_to_type") == wf.ASSIGN_TARGETS
		assert options("Workflow Rule Action", "assign_strategy") == wf.ASSIGN_STRATEGIES
		assert options("Workflow Rule Action", "todo_priority") == wf.TODO_PRIORITIES
		assert set(options("Workflow Rule Action", "due_unit")) == set(wf.DUE_UNITS)

	def test_engine_reads_only_fields_that_exist(self):
		text = (APP / "engine" / "workflow.py").read_text()
		for variable, doctype in (
			("action", "Workflow Rule Action"),
			("rule", "Workflow Rule"),
			("branch", "Workflow Rule Branch"),
		):
			used = set(re.findall(rf'\b{variable}\.get\("([a-z_]+)"\)', text))
			assert used, variable
			assert used <= fieldnames(doctype) | {"name"}, (doctype, used - fieldnames(doctype))

	def test_rule_fields_the_registry_loads_exist(self):
		from crm_automation.engine import schedules

		tree = ast.parse(source("runtime/workflow_rules.py"))
		node = next(
			node.value
			for node in tree.body
			if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "RULE_FIELDS"
		)
		rule_fields = []
		for element in node.elts:
			# A starred name spreads the fields an engine module lists (the schedule's).
			if isinstance(element, ast.Starred):
				rule_fields.extend(getattr(schedules, element.value.id))
			else:
				rule_fields.append(ast.literal_eval(element))
		assert set(rule_fields) - {"name", "owner"} <= fieldnames("Workflow Rule")

	def test_settings_fields_used_in_code_exist(self):
		used = set()
		for path in APP.rglob("*.py"):
			text = path.read_text()
			used |= set(re.findall(r'get_single_value\("CRM Automation Settings", "([a-z_]+)"', text))
			# A variable named exactly "settings" (not log_settings, not a module path).
			used |= set(re.findall(r"(?<![\w.])settings\.([a-z_]+)", text))
		used -= {"get", "meta", "save"}
		assert used, "the scan found no settings"
		assert used <= fieldnames("CRM Automation Settings"), used - fieldnames("CRM Automation Settings")

	def test_every_action_type_has_a_minutes_saved_default(self):
		for action_type in wf.ACTION_TYPES:
			fieldname = "minutes_" + action_type.lower().replace(" ", "_")
			assert fieldname in fieldnames("CRM Automation Settings"), fieldname

	def test_log_writer_uses_log_fields(self):
		text = source("runtime/run_log.py")
		body = text[text.index("def make_log") :]
		log_keys = set(re.findall(r'^\t\t\t"([a-z_]+)":', body, re.M))
		start = text.index("_ACTION_FIELDS = (")
		fields = text[start : text.index("\n)", start)]
		action_keys = set(re.findall(r'^\t"([a-z_]+)",', fields, re.M))
		assert log_keys and log_keys <= fieldnames("Automation Log"), log_keys - fieldnames("Automation Log")
		assert action_keys and action_keys <= fieldnames("Automation Log Action")


def hook_paths():
	tree = ast.parse(source("hooks.py"))
	paths = []
	for node in ast.walk(tree):
		if (
			isinstance(node, ast.Constant)
			and isinstance(node.value, str)
			and node.value.startswith("crm_automation.")
		):
			paths.append(node.value)
	return paths


class TestHooks:
	def test_hooks_name_handlers(self):
		assert len(hook_paths()) >= 10

	@pytest.mark.parametrize("dotted", hook_paths())
	def test_every_dotted_path_resolves_to_a_function(self, dotted):
		module, _, function = dotted.rpartition(".")
		path = ROOT / (module.replace(".", "/") + ".py")
		assert path.exists(), f"{dotted}: no module {path}"
		names = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
		assert function in names, f"{dotted}: no function {function}"

	def test_included_assets_exist(self):
		for asset in re.findall(r'"/assets/crm_automation/([^"]+)"', source("hooks.py")):
			assert (APP / "public" / asset).exists(), asset

	def test_scheduler_entry_points_are_named_for_all(self):
		text = source("hooks.py")
		scheduled = re.findall(r'"crm_automation\.scheduler\.([a-z_]+)"', text)
		assert scheduled and all("_for_all_" in name for name in scheduled)

	def test_module_and_packaging_files(self):
		assert source("modules.txt").strip() == "CRM Automation"
		assert (APP / "patches.txt").exists()
		assert re.search(r'__version__ = "\d+\.\d+\.\d+"', source("__init__.py"))
		assert (
			(ROOT / "pyproject.toml").exists()
			and (ROOT / "setup.py").exists()
			and (ROOT / "license.txt").exists()
		)


class TestTestCommand:
	def test_ci_runs_the_readme_test_command(self):
		readme = (ROOT / "README.md").read_text()
		ci = (ROOT / ".ci" / "run").read_text()
		command = re.search(r"```(?:bash|sh)?\n(bash scripts/run-tests\.sh)\n```", readme)
		assert command, "the README shows the test command in its own block"
		assert command.group(1) in ci


def _hooks_assignment(name):
	for node in ast.parse(source("hooks.py")).body:
		if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
			return ast.literal_eval(node.value)
	return None


class TestFixtures:
	def test_every_fixture_declared_in_hooks_is_exported(self):
		"""`migrate` syncs fixtures from crm_automation/fixtures/: a declared one without its file
		never reaches a site."""
		declared = _hooks_assignment("fixtures")
		assert declared, "hooks.py declares no fixtures"
		for entry in declared:
			doctype = entry["dt"]
			path = APP / "fixtures" / (doctype.lower().replace(" ", "_") + ".json")
			assert path.exists(), f"fixture {doctype} declared in hooks.py but {path} is missing"
			exported = {row["name"] for row in json.loads(path.read_text())}
			wanted = {
				name
				for field, op, value in entry.get("filters", [])
				if field == "name" and op == "in"
				for name in value
			}
			assert exported == wanted, f"{path.name} holds {exported}, hooks.py filters {wanted}"


def _third_party_imports(folder, skip=()):
	import sys

	local = {"crm_automation", "tests", "conftest", "sample_fields", "frappe", "erpnext"}
	names = set()
	for path in folder.rglob("*.py"):
		if any(folder / part in path.parents for part in skip):
			continue
		for node in ast.walk(ast.parse(path.read_text())):
			if isinstance(node, ast.Import):
				names.update(alias.name.split(".")[0] for alias in node.names)
			elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
				names.add(node.module.split(".")[0])
	return {n for n in names if n not in local and n not in sys.stdlib_module_names}


class TestDeclaredDependencies:
	def test_tier1_and_desk_imports_are_declared(self):
		"""A machine with only Python runs the suite after `pip install -e '.[test]'`: every package
		the tests (and the engine they import) need is declared in pyproject.toml."""
		import tomllib

		project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
		declared = {
			re.split(r"[<>=!~ \[]", requirement)[0].lower()
			for requirement in [*project["dependencies"], *project["optional-dependencies"]["test"]]
		}
		# tests/bench holds helpers run-tests.sh starts with the bench env's own Python, not tier 1's.
		needed = _third_party_imports(ROOT / "tests", skip=("bench",)) | _third_party_imports(APP / "engine")
		assert needed, "found no imports at all: the scan is broken"
		assert {name.lower() for name in needed} <= declared, needed - declared
