"""The lean paths of the scale issue, checked against what they replace: an Assign action leaves what
Frappe's assign_to.add leaves; a save of a doctype without work looks nothing up; an index's
version token reaches other processes only once committed, and every process sees it then."""

import json
from unittest.mock import patch

import frappe
from frappe.desk.form import assign_to
from frappe.tests.utils import FrappeTestCase

from crm_automation import doc_events as events
from crm_automation.actions import assignment
from crm_automation.runtime import compiled_cache
from crm_automation.runtime import workflow_rules as rules
from crm_automation.tests.factories import delete_test_rules, make_lead, make_rule, make_user, new_request

READER = "crm-lean-reader@example.com"  # may read Leads
STRANGER = "crm-lean-stranger@example.com"  # may not (no role): assigning shares the Lead with them


def effects_of_assignment(lead, user):
	"""What an assignment leaves behind, without names and times."""
	todo = frappe.get_all(
		"ToDo",
		filters={"reference_type": "Lead", "reference_name": lead.name, "allocated_to": user},
		fields=["status", "priority", "date", "assigned_by", "assignment_rule", "description"],
	)
	share = frappe.get_all(
		"DocShare",
		filters={"share_doctype": "Lead", "share_name": lead.name, "user": user},
		fields=["read", "write", "share", "submit", "everyone"],
	)
	alerts = frappe.get_all(
		"Notification Log",
		filters={"document_type": "Lead", "document_name": lead.name, "for_user": user},
		fields=["type", "from_user", "subject", "email_content"],
	)
	comments = frappe.get_all(
		"Comment",
		filters={"reference_doctype": "Lead", "reference_name": lead.name, "comment_type": "Assigned"},
		fields=["content"],
	)
	for row in alerts:  # the subject names the Lead
		row.subject = row.subject.replace(lead.name, "LEAD")
	return {
		"todo": todo,
		"_assign": json.loads(frappe.db.get_value("Lead", lead.name, "_assign") or "[]"),
		"share": share,
		"alerts": alerts,
		"comments": [row.content.replace(lead.name, "LEAD") for row in comments],
	}


class TestAssignLikeAssignTo(FrappeTestCase):
	def setUp(self):
		make_user(READER, roles=("Sales User",))
		make_user(STRANGER)
		new_request()

	def tearDown(self):
		frappe.db.rollback()

	def assert_same_effects(self, user):
		ours, theirs = make_lead(first_name="Lean Same"), make_lead(first_name="Lean Same")
		description = "Assigned by automation rule _Test Lean"
		cannot_read = not frappe.has_permission("Lead", "read", doc=ours, user=user, throw=False)
		assignment.add_assignment(ours, user, description, share=cannot_read)
		assign_to.add(
			{"assign_to": [user], "doctype": "Lead", "name": theirs.name, "description": description},
			ignore_permissions=True,
		)
		expected = effects_of_assignment(theirs, user)
		self.assertEqual(len(expected["todo"]), 1)
		self.assertEqual(effects_of_assignment(ours, user), expected)
		return expected

	def test_a_user_who_may_read_gets_the_todo_assign_comment_and_alert(self):
		effects = self.assert_same_effects(READER)
		self.assertEqual(effects["_assign"], [READER])
		self.assertEqual(effects["share"], [])
		self.assertEqual([row.type for row in effects["alerts"]], ["Assignment"])

	def test_a_user_who_may_not_read_is_given_a_share_as_assign_to_does(self):
		self.assertFalse(frappe.has_permission("Lead", "read", user=STRANGER))
		effects = self.assert_same_effects(STRANGER)
		self.assertEqual(len(effects["share"]), 1)
		self.assertEqual(effects["share"][0].read, 1)

	def test_an_open_todo_for_that_user_skips_the_assignment(self):
		rule = make_rule(
			"_Test Lean Assign",
			"Lead",
			"Save",
			[{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": READER}],
			conditions={"field": "job_title", "op": "=", "value": "saved again"},
		)
		lead = make_lead(first_name="Lean Twice")
		assign_to.add({"assign_to": [READER], "doctype": "Lead", "name": lead.name}, ignore_permissions=True)
		new_request()
		lead.reload()
		lead.job_title = "saved again"
		lead.save(ignore_permissions=True)
		todos = frappe.get_all(
			"ToDo", filters={"reference_type": "Lead", "reference_name": lead.name, "status": "Open"}
		)
		self.assertEqual(len(todos), 1)
		log = frappe.get_last_doc("Automation Log", filters={"rule": rule.name, "reference_name": lead.name})
		self.assertEqual(log.outcome, "Success")
		self.assertEqual([row.status for row in log.actions], ["Skipped"])

	def test_the_action_names_the_todo_it_created(self):
		rule = make_rule(
			"_Test Lean Assign",
			"Lead",
			"New",
			[{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": READER}],
		)
		lead = make_lead(first_name="Lean Named")
		log = frappe.get_last_doc("Automation Log", filters={"rule": rule.name, "reference_name": lead.name})
		(row,) = log.actions
		self.assertEqual(row.status, "Success")
		self.assertEqual(
			frappe.db.get_value("ToDo", row.created_name, ["allocated_to", "reference_name", "status"]),
			(READER, lead.name, "Open"),
		)


class TestNoWorkLooksNothingUp(FrappeTestCase):
	def tearDown(self):
		frappe.db.rollback()
		rules.clear_rule_cache()

	def test_a_doctype_without_work_never_reaches_the_rule_lookup(self):
		self.assertNotIn("ToDo", events._work()["any"])
		with patch.object(events, "get_rules", side_effect=AssertionError("looked up rules")) as lookup:
			frappe.get_doc({"doctype": "ToDo", "description": "no work"}).insert(ignore_permissions=True)
		lookup.assert_not_called()

	def test_a_new_document_matching_nothing_looks_up_no_clock_or_step(self):
		"""Lead has an Escalation Policy and a rule with follow-up steps, neither matching this Lead:
		its insert reads neither table (a new document has no clock, and steps only if this save
		started them); an update of it reads each once (benchmarks/no_match_queries.py counts both)."""
		from crm_automation.crm_automation.doctype.escalation_policy.test_escalation_policy import make_policy

		never = {"all": [{"field": "company_name", "op": "=", "value": "_Lean Nobody"}]}
		make_policy(
			"_Test Lean Policy",
			"Lead",
			[{"level": 1, "after": 1, "unit": "Hours", "action_type": "Add Comment", "message": "late"}],
			conditions=never,
		)
		make_rule(
			"_Test Lean Steps",
			"Lead",
			"New",
			[{"action_type": "Add Comment", "message": "later", "step": "Later"}],
			conditions=never,
			steps=[{"step_name": "Later", "wait_type": "Duration", "wait_amount": 1, "wait_unit": "Hours"}],
		)
		new_request()
		self.assertIn("Lead", events._work()["escalation"])
		self.assertIn("Lead", events._work()["sequence"])
		seen = []
		original = frappe.db.sql

		def sql(query, *args, **kwargs):
			seen.append(str(query))
			return original(query, *args, **kwargs)

		def touched():
			tables = ("from `tabEscalation State`", "from `tabAutomation Sequence Step`")
			return [q for q in seen if any(table in q for table in tables)]

		with patch.object(frappe.db, "sql", side_effect=sql):
			lead = make_lead(first_name="Lean", company_name="Lean Co")
			self.assertEqual(touched(), [])
			new_request()
			lead.company_name = "Lean Co 2"
			lead.save(ignore_permissions=True)
		self.assertEqual(len(touched()), 2, touched())

	def test_install_and_migrate_saves_are_skipped_before_the_work_is_worked_out(self):
		"""The app's tables may not exist yet: working out which doctypes have work would query them."""
		frappe.flags.in_migrate = True
		try:
			with patch.object(events, "_work", side_effect=AssertionError("worked out")) as work:
				frappe.get_doc({"doctype": "ToDo", "description": "during migrate"}).insert(
					ignore_permissions=True
				)
			work.assert_not_called()
		finally:
			frappe.flags.in_migrate = False

	def test_a_rule_saved_on_such_a_doctype_fires_on_its_next_save(self):
		events._work()  # worked out before the rule exists
		make_rule(
			"_Test Lean ToDo",
			"ToDo",
			"New",
			[{"action_type": "Add Tag", "tag": "lean"}],
		)
		todo = frappe.get_doc({"doctype": "ToDo", "description": "now with work"}).insert(
			ignore_permissions=True
		)
		self.assertIn("ToDo", events._work()["any"])
		self.assertTrue(
			frappe.db.exists("Automation Log", {"rule": "_Test Lean ToDo", "reference_name": todo.name})
		)


class TestVersionTokens(FrappeTestCase):
	"""Another process is this one with an empty frappe.local.cache (what a new request starts with):
	the tokens it sees decide whether it builds its index again."""

	def setUp(self):
		frappe.db.rollback()  # no token of an earlier test pending
		frappe.db.after_commit.reset()

	def tearDown(self):
		frappe.db.rollback()
		frappe.cache.hdel("defaults", compiled_cache.TOKEN_PARENT)  # a token "published" by a test
		rules.clear_rule_cache()
		frappe.db.rollback()

	def token_of_a_new_request(self):
		frappe.local.cache = {}
		return compiled_cache.request_versions()[rules.VERSION_KEY]

	def test_a_token_reaches_other_processes_with_the_commit_not_before(self):
		frappe.defaults.get_defaults_for(compiled_cache.TOKEN_PARENT)  # as every process has them cached
		committed = compiled_cache.request_versions()[rules.VERSION_KEY]
		make_rule("_Test Lean Token", "Lead", "Save", [{"action_type": "Add Tag", "tag": "t"}])
		written = compiled_cache.request_versions()[rules.VERSION_KEY]
		self.assertNotEqual(written, committed)
		self.assertIn("_Test Lean Token", [r.name for r in rules.get_rules("Lead", "on_update")])
		writer = frappe.local.cache
		self.assertEqual(self.token_of_a_new_request(), committed, "an uncommitted token reached others")
		# What the writer's commit runs after committing (the transaction itself stays uncommitted).
		frappe.local.cache = writer
		frappe.db.after_commit.run()
		self.assertEqual(self.token_of_a_new_request(), written)

	def test_an_index_imported_after_the_request_began_is_not_built_again(self):
		"""scoring and escalation register their indexes when first imported, mid-request."""
		rules.clear_rule_cache()
		rules.get_rules("Lead", "on_update")
		compiled_cache.request_versions().pop(rules.VERSION_KEY)  # as if registered after this was read
		with patch.object(rules._rules_cache, "build", side_effect=AssertionError("built again")):
			rules.get_rules("Lead", "on_update")

	def test_the_token_is_published_without_a_query(self):
		"""A query after the commit would open the next transaction's snapshot at once: a job that
		commits and later reads would not see what others committed in between."""
		rules.clear_rule_cache()
		with patch.object(frappe.db, "sql", side_effect=AssertionError("queried after the commit")):
			frappe.db.after_commit.run()

	def test_an_index_built_in_an_older_snapshot_is_built_again(self):
		"""Labelled with the token its own transaction read, not the newer one the request saw: the
		next request finds the label stale and builds again."""
		with patch.object(compiled_cache, "_token_in_database", return_value="older"):
			frappe.local.cache = {}
			rules._rules_cache._by_site.pop(frappe.local.site, None)
			rules.get_rules("Lead", "on_update")
		self.assertEqual(rules._rules_cache._by_site[frappe.local.site][0], "older")
		frappe.local.cache = {}
		rules.get_rules("Lead", "on_update")
		self.assertNotEqual(rules._rules_cache._by_site[frappe.local.site][0], "older")

	def test_a_rolled_back_token_is_forgotten(self):
		rules.get_rules("Lead", "on_update")
		published = compiled_cache.request_versions()[rules.VERSION_KEY]
		make_rule("_Test Lean Rolled Back", "Lead", "Save", [{"action_type": "Add Tag", "tag": "t"}])
		self.assertNotEqual(compiled_cache.request_versions()[rules.VERSION_KEY], published)
		frappe.db.rollback()
		self.assertEqual(compiled_cache.request_versions()[rules.VERSION_KEY], published)
		self.assertEqual(
			[r.name for r in rules.get_rules("Lead", "on_update") if r.name.startswith("_Test Lean")], []
		)
