"""Packs on a real site through the real bench command: an import is one transaction (a broken last
rule leaves nothing, not even an index), a dry run leaves the database as it was, Time-rule indexes
come after the commit and go at uninstall; webhook secrets travel as placeholders."""

import json
import os
import subprocess
import sys
import tempfile

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import get_bench_path

from crm_automation.engine.packs import SECRET_PLACEHOLDER
from crm_automation.packs import export_pack, import_pack
from crm_automation.setup.time_indexes import app_indexes, drop_app_indexes, index_name
from crm_automation.tests.factories import delete_test_rules, make_rule, new_request

PREFIX = "_Test Pack Atomic"
TIME_FIELD = "qualified_on"  # a Date field of Lead that ERPNext does not index
TOUCHED_TABLES = ("tabLead", "tabWorkflow Rule", "tabWorkflow Rule Action", "tabWorkflow Rule Branch")


def time_rule(name, field=TIME_FIELD):
	return {
		"rule_name": name,
		"document_type": "Lead",
		"trigger": "Time",
		"time_field": field,
		"time_offset": 1,
		"time_unit": "Days",
		"time_direction": "After",
		"actions": [{"action_type": "Add Comment", "message": "a day after qualification"}],
	}


def comment_rule(name):
	return {
		"rule_name": name,
		"document_type": "Lead",
		"trigger": "New",
		"actions": [{"action_type": "Add Comment", "message": "welcome {{ doc.first_name }}"}],
	}


def webhook_rule(name, url="https://hooks.example.com/in", **secrets):
	return {
		"rule_name": name,
		"document_type": "Lead",
		"trigger": "New",
		"actions": [{"action_type": "Webhook", "url": url, **secrets}],
	}


def pack(*rules):
	return {"format": "crm_automation.pack", "version": 1, "name": PREFIX, "workflow_rules": list(rules)}


def app_tables():
	doctypes = frappe.get_all("DocType", filters={"module": "CRM Automation", "issingle": 0}, pluck="name")
	return sorted(
		{f"tab{d}" for d in doctypes} | {"tabVersion", "__Auth", "tabProperty Setter", "tabComment"}
	)


def database_state():
	"""What a write would change: rows and checksum of every app table (and of Version, __Auth,
	Property Setter, Comment), and the indexes of the tables a Time rule touches. Read in a fresh
	snapshot, as another session would see it."""
	frappe.db.rollback()
	state = {}
	for table in app_tables():
		if not frappe.db.sql("show tables like %s", table):
			continue
		count = frappe.db.sql(f"select count(*) from `{table}`")[0][0]
		checksum = frappe.db.sql(f"checksum table `{table}`")[0][1]
		state[table] = (count, checksum)
	for table in TOUCHED_TABLES:
		state[f"indexes of {table}"] = sorted(
			(row[2], row[4], row[3]) for row in frappe.db.sql(f"show index from `{table}`")
		)
	return state


def bench(*args):
	"""`bench --site <this site> crm-automation ...`, run the way bench runs it."""
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
		capture_output=True,
		text=True,
		timeout=300,
		stdin=subprocess.DEVNULL,
	)
	return process.returncode, process.stdout + process.stderr


def write_pack(data):
	handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
	with handle:
		json.dump(data, handle)
	return handle.name


def clean_up():
	frappe.db.rollback()
	delete_test_rules(f"{PREFIX}%")
	frappe.db.commit()
	for table, name in app_indexes():
		if table == "tabLead" and name == index_name(TIME_FIELD):
			frappe.db.sql_ddl(f"alter table `{table}` drop index `{name}`")


class TestPackImportIsOneTransaction(FrappeTestCase):
	def setUp(self):
		new_request()
		clean_up()
		self.addCleanup(clean_up)

	def test_broken_last_rule_leaves_no_rows_and_no_index(self):
		"""The first rule is an enabled Time rule (it wants an index), the last one is refused at save
		(its webhook aims at the cloud metadata address, which only the site's check can know)."""
		path = write_pack(
			pack(
				time_rule(f"{PREFIX} Time"),
				comment_rule(f"{PREFIX} Comment"),
				webhook_rule(f"{PREFIX} Broken", url="http://169.254.169.254/latest/meta-data/"),
			)
		)
		self.addCleanup(os.unlink, path)
		before = database_state()
		code, output = bench("import-pack", path, "--enable")
		self.assertEqual(code, 2, output)
		self.assertIn(f"Workflow Rule {PREFIX} Broken", output)
		self.assertIn("Actions, row 1", output)
		self.assertNotIn("Traceback", output)
		self.assertEqual(database_state(), before)
		self.assertFalse(frappe.db.exists("Workflow Rule", {"rule_name": ("like", f"{PREFIX}%")}))

	def test_dry_run_of_a_valid_pack_changes_nothing(self):
		path = write_pack(pack(time_rule(f"{PREFIX} Time"), comment_rule(f"{PREFIX} Comment")))
		self.addCleanup(os.unlink, path)
		before = database_state()
		code, output = bench("import-pack", path, "--dry-run", "--enable")
		self.assertEqual(code, 0, output)
		self.assertIn("dry run, nothing written: 2 created", output)
		self.assertEqual(database_state(), before)

	def test_dry_run_of_a_pack_already_imported_changes_nothing(self):
		"""Updates too (child rows replaced, a Time rule enabled) are undone by a dry run."""
		path = write_pack(pack(time_rule(f"{PREFIX} Time"), comment_rule(f"{PREFIX} Comment")))
		self.addCleanup(os.unlink, path)
		self.assertEqual(bench("import-pack", path)[0], 0)
		changed = pack(
			time_rule(f"{PREFIX} Time"), {**comment_rule(f"{PREFIX} Comment"), "description": "changed"}
		)
		changed_path = write_pack(changed)
		self.addCleanup(os.unlink, changed_path)
		before = database_state()
		code, output = bench("import-pack", changed_path, "--dry-run", "--enable")
		self.assertEqual(code, 0, output)
		self.assertIn("2 updated", output)
		self.assertEqual(database_state(), before)

	def test_index_comes_after_the_commit_and_goes_at_uninstall(self):
		path = write_pack(pack(time_rule(f"{PREFIX} Time")))
		self.addCleanup(os.unlink, path)
		code, output = bench("import-pack", path, "--enable")
		self.assertEqual(code, 0, output)
		frappe.db.rollback()
		self.assertIn(("tabLead", index_name(TIME_FIELD)), app_indexes())
		# Frappe's schema sync keeps it: a two-column index, so no Property Setter is needed.
		self.assertFalse(
			frappe.db.exists(
				"Property Setter", {"doc_type": "Lead", "field_name": TIME_FIELD, "property": "search_index"}
			)
		)
		drop_app_indexes()  # what before_uninstall does
		self.assertEqual([i for i in app_indexes() if i[0] == "tabLead"], [])

	def test_migrate_drops_indexes_no_enabled_rule_needs(self):
		from crm_automation.setup.time_indexes import ensure_time_rule_indexes

		path = write_pack(pack(time_rule(f"{PREFIX} Time")))
		self.addCleanup(os.unlink, path)
		self.assertEqual(bench("import-pack", path, "--enable")[0], 0)
		frappe.db.rollback()
		ensure_time_rule_indexes(prune=True)
		self.assertIn(("tabLead", index_name(TIME_FIELD)), app_indexes(), "still wanted: kept")
		frappe.db.set_value("Workflow Rule", f"{PREFIX} Time", "enabled", 0)
		frappe.db.commit()
		ensure_time_rule_indexes()
		self.assertIn(("tabLead", index_name(TIME_FIELD)), app_indexes(), "kept until migrate")
		ensure_time_rule_indexes(prune=True)
		self.assertNotIn(("tabLead", index_name(TIME_FIELD)), app_indexes())

	def test_legacy_index_is_adopted_and_removed_at_uninstall(self):
		"""Sites where the old code ran have Frappe's `<field>_index` and its "search index" Property
		Setter: the patch marks them as the app's, and uninstall takes both away with the app's own."""
		from crm_automation.patches import adopt_time_rule_indexes
		from crm_automation.setup.install import delete_app_property_setters

		make_rule(
			f"{PREFIX} Legacy",
			"Lead",
			"Time",
			time_field=TIME_FIELD,
			time_offset=1,
			time_unit="Days",
			time_direction="After",
			actions=[{"action_type": "Add Comment", "message": "legacy"}],
		)
		frappe.db.add_index("Lead", [TIME_FIELD])  # what enabling a Time rule did before (commits)
		self.addCleanup(self.drop_legacy)
		adopt_time_rule_indexes.execute()
		self.assertEqual(
			frappe.db.get_value("Property Setter", {"doc_type": "Lead", "field_name": TIME_FIELD}, "module"),
			"CRM Automation",
		)
		delete_app_property_setters()
		drop_app_indexes()
		frappe.db.commit()
		self.assertEqual(frappe.db.sql(f"show index from tabLead where Column_name = '{TIME_FIELD}'"), ())
		self.assertFalse(frappe.db.exists("Property Setter", {"doc_type": "Lead", "field_name": TIME_FIELD}))

	def drop_legacy(self):
		frappe.db.rollback()
		frappe.db.delete("Property Setter", {"doc_type": "Lead", "field_name": TIME_FIELD})
		frappe.db.commit()
		if frappe.db.has_index("tabLead", f"{TIME_FIELD}_index"):
			frappe.db.sql_ddl(f"alter table tabLead drop index {TIME_FIELD}_index")
		frappe.clear_cache(doctype="Lead")

	def test_secret_placeholders_through_the_command(self):
		path = write_pack(pack(webhook_rule(f"{PREFIX} Hook", secret=SECRET_PLACEHOLDER)))
		self.addCleanup(os.unlink, path)
		code, output = bench("import-pack", path, "--enable", "--dry-run")
		self.assertEqual(code, 2, output)
		self.assertIn(f"{PREFIX} Hook:1:secret", output)
		self.assertIn("to be filled in", output)
		code, output = bench(
			"import-pack", path, "--enable", "--secret", f"{PREFIX} Hook:1:secret=s3cret=with=equals"
		)
		self.assertEqual(code, 0, output)
		frappe.db.rollback()
		rule = frappe.get_doc("Workflow Rule", f"{PREFIX} Hook")
		self.assertTrue(rule.enabled)
		self.assertEqual(rule.actions[0].get_password("secret"), "s3cret=with=equals")
		code, output = bench("import-pack", path, "--secret", "No Such:1:secret=x")
		self.assertEqual(code, 2, output)
		self.assertIn("No Such:1:secret", output)


class TestPackSecrets(FrappeTestCase):
	"""In one process, inside the test's transaction."""

	def setUp(self):
		new_request()

	def tearDown(self):
		frappe.db.rollback()
		delete_test_rules(f"{PREFIX}%")

	def test_export_never_contains_secret_or_headers(self):
		make_rule(
			f"{PREFIX} Export",
			"Lead",
			"New",
			actions=[
				{
					"action_type": "Webhook",
					"url": "https://hooks.example.com/in",
					"secret": "hmac-key-123",
					"headers": json.dumps({"Authorization": "Bearer tok-987"}),
				}
			],
		)
		exported = export_pack(
			{"workflow_rules": [f"{PREFIX} Export"], "lead_score_rules": [], "escalation_policies": []}
		)
		text = json.dumps(exported)
		self.assertNotIn("hmac-key-123", text)
		self.assertNotIn("tok-987", text)
		action = exported["workflow_rules"][0]["actions"][0]
		self.assertEqual((action["secret"], action["headers"]), (SECRET_PLACEHOLDER, SECRET_PLACEHOLDER))

		# The same site imports its own export unchanged, keeping the values it has.
		report = import_pack(json.loads(text))
		self.assertEqual(report["problems"], [])
		self.assertEqual(report["unchanged"], [f"Workflow Rule: {PREFIX} Export"])
		row = frappe.get_doc("Workflow Rule", f"{PREFIX} Export").actions[0]
		self.assertEqual(row.get_password("secret"), "hmac-key-123")

	def test_enabling_with_a_placeholder_is_refused_and_filling_it_works(self):
		data = pack(webhook_rule(f"{PREFIX} New Hook", secret=SECRET_PLACEHOLDER, headers=SECRET_PLACEHOLDER))
		refused = import_pack(data, enable=True)
		self.assertEqual(len(refused["problems"]), 2, refused)
		self.assertIn(f"{PREFIX} New Hook:1:headers", refused["problems"][1])
		self.assertFalse(frappe.db.exists("Workflow Rule", f"{PREFIX} New Hook"))

		disabled = import_pack(data)
		self.assertEqual(disabled["problems"], [])
		self.assertEqual(disabled["to_fill"], [f"{PREFIX} New Hook:1:headers", f"{PREFIX} New Hook:1:secret"])
		rule = frappe.get_doc("Workflow Rule", f"{PREFIX} New Hook")
		rule.enabled = 1
		with self.assertRaisesRegex(frappe.ValidationError, "to be filled in"):
			rule.save(ignore_permissions=True)

		frappe.db.rollback()
		headers = json.dumps({"Authorization": "Bearer abc"})
		filled = import_pack(
			data,
			enable=True,
			secrets={f"{PREFIX} New Hook:1:secret": "k", f"{PREFIX} New Hook:1:headers": headers},
		)
		self.assertEqual(filled["problems"], [])
		row = frappe.get_doc("Workflow Rule", f"{PREFIX} New Hook").actions[0]
		self.assertEqual((row.get_password("secret"), row.get_password("headers")), ("k", headers))

	def test_bad_headers_given_for_a_placeholder_are_refused_by_key(self):
		data = pack(webhook_rule(f"{PREFIX} Bad Headers", headers=SECRET_PLACEHOLDER))
		report = import_pack(data, secrets={f"{PREFIX} Bad Headers:1:headers": "Bearer oops"})
		self.assertEqual(len(report["problems"]), 1)
		self.assertIn(f"{PREFIX} Bad Headers:1:headers", report["problems"][0])
		self.assertIn("not valid JSON", report["problems"][0])
		self.assertFalse(frappe.db.exists("Workflow Rule", f"{PREFIX} Bad Headers"))

	def test_failed_import_leaves_no_after_commit_work_behind(self):
		"""A rolled-back import must not leave an index (or a job) queued for the caller's commit."""

		def queued_work():
			# Publishing the rule cache's version token is the only thing allowed to wait for the commit.
			return [
				f
				for f in frappe.db.after_commit._functions
				if getattr(f, "__name__", "") != "_publish_tokens"
			]

		frappe.db.after_commit.reset()
		report = import_pack(
			pack(time_rule(f"{PREFIX} Time"), webhook_rule(f"{PREFIX} Broken", url="http://10.0.0.1/")),
			enable=True,
		)
		self.assertTrue(report["problems"])
		self.assertEqual(report["created"], [])
		self.assertEqual(queued_work(), [])
		dry = import_pack(pack(time_rule(f"{PREFIX} Time")), enable=True, dry_run=True)
		self.assertEqual(dry["problems"], [])
		self.assertEqual(queued_work(), [])
		self.assertFalse(frappe.db.exists("Workflow Rule", f"{PREFIX} Time"))
		import_pack(pack(time_rule(f"{PREFIX} Time")), enable=True)
		# The index, once committed.
		self.assertIn("_after_commit", [getattr(f, "__name__", "") for f in queued_work()])
