"""`bench --site S crm-automation import-pack packs/x.json` finds the file where the user stands:
bench runs app commands from sites/, and a relative path used to be looked up there
(FileNotFoundError). Run the way bench runs it: from sites/, with the user's folder in PWD."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import get_bench_path

# Refused by the check (no such doctype): proves the file was found and read, and writes nothing.
PACK = {
	"format": "crm_automation.pack",
	"version": 1,
	"workflow_rules": [{"rule_name": "_Test Path Pack", "document_type": "Spaceship", "trigger": "New"}],
}


def bench(user_folder, *args):
	environ = {**os.environ, "PWD": user_folder}
	process = subprocess.run(
		[
			sys.executable,
			"-m",
			"frappe.utils.bench_helper",
			"frappe",
			"--site",
			frappe.local.site,
			"crm-automation",
			*args,
		],
		cwd=os.path.join(get_bench_path(), "sites"),
		env=environ,
		capture_output=True,
		text=True,
		timeout=300,
		stdin=subprocess.DEVNULL,
	)
	return process.returncode, process.stdout, process.stderr


class TestPackCommandPaths(FrappeTestCase):
	def setUp(self):
		self.user_folder = tempfile.mkdtemp(prefix="crm-automation-user-")
		self.addCleanup(shutil.rmtree, self.user_folder, True)
		os.makedirs(os.path.join(self.user_folder, "packs"))
		with open(os.path.join(self.user_folder, "packs", "x.json"), "w") as handle:
			json.dump(PACK, handle)

	def test_relative_path_is_read_from_where_the_user_stands(self):
		code, out, err = bench(self.user_folder, "import-pack", "packs/x.json", "--dry-run")
		self.assertNotIn("Traceback", err)
		self.assertIn("'Spaceship' is not a document type here", err)
		self.assertEqual(code, 2, out + err)

	def test_missing_file_is_one_line_and_exit_code_2(self):
		code, out, err = bench(self.user_folder, "import-pack", "packs/nope.json", "--dry-run")
		sites = os.path.join(get_bench_path(), "sites")
		self.assertEqual(code, 2, out + err)
		self.assertEqual(
			err.strip().splitlines()[-1],
			f"packs/nope.json: no such file (looked in {self.user_folder}, {os.path.normpath(get_bench_path())}, {sites})",
		)
		self.assertNotIn("Traceback", err)

	def test_file_that_is_not_json_is_one_line_and_exit_code_2(self):
		with open(os.path.join(self.user_folder, "packs", "broken.json"), "wb") as handle:
			handle.write(b'{"format": "crm_automation.pack",\n "version": 1,\n')
		code, out, err = bench(self.user_folder, "import-pack", "packs/broken.json", "--dry-run")
		self.assertEqual(code, 2, out + err)
		self.assertIn(os.path.join(self.user_folder, "packs", "broken.json") + ":3: not valid JSON", err)
		self.assertNotIn("Traceback", err)

	def test_export_writes_where_the_user_stands(self):
		code, out, err = bench(self.user_folder, "export-pack", "-o", "exported.json")
		self.assertEqual(code, 0, out + err)
		with open(os.path.join(self.user_folder, "exported.json")) as handle:
			self.assertEqual(json.load(handle)["format"], "crm_automation.pack")
		self.assertFalse(os.path.exists(os.path.join(get_bench_path(), "sites", "exported.json")))
