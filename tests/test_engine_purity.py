import ast
import pathlib

ENGINE = pathlib.Path(__file__).resolve().parent.parent / "crm_automation" / "engine"


def imported_modules(path):
	tree = ast.parse(path.read_text(), filename=str(path))
	for node in ast.walk(tree):
		if isinstance(node, ast.Import):
			yield from (alias.name for alias in node.names)
		elif isinstance(node, ast.ImportFrom) and node.level == 0:
			yield node.module or ""
		elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
			yield from (arg.value for arg in node.args if isinstance(arg, ast.Constant))


def test_engine_has_files_to_check():
	assert len(list(ENGINE.glob("*.py"))) >= 5


def test_engine_never_imports_frappe():
	offenders = [
		f"{path.name}: {module}"
		for path in sorted(ENGINE.rglob("*.py"))
		for module in imported_modules(path)
		if module == "frappe" or module.startswith(("frappe.", "erpnext"))
	]
	assert offenders == []


def test_the_scan_itself_catches_a_frappe_import(tmp_path):
	sample = tmp_path / "bad.py"
	sample.write_text("import os\nfrom frappe.utils import now\n")
	assert "frappe.utils" in list(imported_modules(sample))


OFFLINE = ENGINE.parent / "offline"


def test_offline_never_imports_frappe():
	"""The command line and the simulator run without a bench: nothing in offline/ imports frappe,
	and what it imports from the app is engine/ or offline/ itself (setup/custom_fields too, which
	holds plain data)."""
	assert len(list(OFFLINE.glob("*.py"))) >= 5
	offenders = [
		f"{path.name}: {module}"
		for path in sorted(OFFLINE.rglob("*.py"))
		for module in imported_modules(path)
		if module == "frappe"
		or module.startswith(("frappe.", "erpnext"))
		or (
			module.startswith("crm_automation")
			and not module.startswith(
				("crm_automation.engine", "crm_automation.offline", "crm_automation.setup.custom_fields")
			)
		)
	]
	assert offenders == []
