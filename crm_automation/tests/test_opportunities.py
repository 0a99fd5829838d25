"""Automation Opportunities on a real history: Leads saved, assigned, edited and e-mailed by
different users; the expected proposals with their figures, the one-click rule and its replay,
automation left out, and only what the caller may read."""

import frappe
from frappe.core.doctype.communication.email import _make as make_communication
from frappe.desk.form import assign_to
from frappe.tests.utils import FrappeTestCase

from crm_automation.api import opportunities
from crm_automation.crm_automation.report.automation_opportunities.automation_opportunities import execute
from crm_automation.tests.factories import ensure, make_rule, make_user, new_request

NORTH, WEST, EAST, SOUTH = (
	"_Test Mining North",
	"_Test Mining West",
	"_Test Mining East",
	"_Test Mining South",
)
CENTRAL = "_Test Mining Central"
CALL_BACK = "Call back about the offer"
FAIR = "_Test Mining Fair"
TEMPLATE = "_Test Mining Quote"
MARIA = "maria.mining@example.com"  # the sales manager who assigns
ZHOU = "zhou.mining@example.com"
LI = "li.mining@example.com"
MANAGER = "manager.mining@example.com"  # CRM Automation Manager, reads every Lead
NORTH_MANAGER = "north.mining@example.com"  # CRM Automation Manager, reads North Leads only
SALES_USER = "sam.mining@example.com"


def _lead(territory, source=None):
	new_request()
	values = {"doctype": "Lead", "first_name": "Mining", "company_name": "Mining Co", "territory": territory}
	if source:
		values["source"] = source
	return frappe.get_doc(values).insert()


def _assign(lead, user):
	assign_to.add({"assign_to": [user], "doctype": "Lead", "name": lead.name})


def _proposals(**filters):
	report = opportunities.find_opportunities(**filters)
	return report, {proposal["id"]: proposal for proposal in report["proposals"]}


class TestAutomationOpportunities(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		# ERPNext does not track Lead changes; an administrator turns it on to mine field edits.
		# Cleanups run last-in first-out: this one after the class's rollback.
		cls.addClassCleanup(frappe.clear_cache, doctype="Lead")
		super().setUpClass()
		frappe.set_user("Administrator")
		from frappe.custom.doctype.property_setter.property_setter import make_property_setter

		make_property_setter("Lead", None, "track_changes", 1, "Check", for_doctype=True)
		frappe.clear_cache(doctype="Lead")
		for territory in (NORTH, WEST, EAST, SOUTH, CENTRAL):
			ensure("Territory", territory, territory_name=territory, parent_territory="All Territories")
		ensure("Lead Source", FAIR, source_name=FAIR)
		if not frappe.db.exists("Email Template", TEMPLATE):
			frappe.get_doc(
				{
					"doctype": "Email Template",
					"name": TEMPLATE,
					"subject": "Your quote {{ doc.name }}",
					"response": "Here it is.",
				}
			).insert(ignore_permissions=True)
		make_user(MARIA, ["Sales Manager", "Sales User"])
		for user in (ZHOU, LI, SALES_USER):
			make_user(user, ["Sales User"])
		make_user(MANAGER, ["CRM Automation Manager", "Sales Manager"])
		make_user(NORTH_MANAGER, ["CRM Automation Manager", "Sales Manager"])
		frappe.get_doc(
			{"doctype": "User Permission", "user": NORTH_MANAGER, "allow": "Territory", "for_value": NORTH}
		).insert(ignore_permissions=True)
		# automation assigns the East leads: not manual work
		make_rule(
			"_Test Mining East Assign",
			"Lead",
			"New",
			conditions={"all": [{"field": "territory", "op": "=", "value": EAST}]},
			actions=[{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": ZHOU}],
		)
		# and a Validate rule sets the request type when a South lead becomes Interested: the change
		# is in the user's own Version row, but it is not their work
		make_rule(
			"_Test Mining South Request Type",
			"Lead",
			"Validate",
			conditions={
				"all": [
					{"field": "territory", "op": "=", "value": SOUTH},
					{"field": "status", "op": "=", "value": "Interested"},
				]
			},
			actions=[
				{"action_type": "Set Value", "target_field": "request_type", "value": "Product Enquiry"}
			],
		)
		cls.north, cls.west, cls.south, cls.central = [], [], [], []
		frappe.set_user(MARIA)
		for i in range(25):  # 23 to Zhou, 2 to Li, by hand
			lead = _lead(NORTH)
			_assign(lead, ZHOU if i < 23 else LI)
			cls.north.append(lead.name)
		for i in range(24):
			lead = _lead(WEST, FAIR)
			_assign(lead, LI if i % 2 else ZHOU)
			cls.west.append(lead.name)
		for _i in range(20):
			_lead(EAST)
		for _i in range(20):
			cls.south.append(_lead(SOUTH).name)
		# 22 of the Fair leads qualified by hand, then marked Replied and sent the quote by e-mail
		for i, name in enumerate(cls.west):
			frappe.set_user(ZHOU if i % 2 == 0 else LI)
			if i < 22:
				lead = frappe.get_doc("Lead", name)
				lead.qualification_status = "In Process"
				lead.save(ignore_version=False)  # Frappe skips versions in tests unless asked
			if i < 21:
				lead = frappe.get_doc("Lead", name)
				lead.status = "Replied"
				lead.save(ignore_version=False)  # Frappe skips versions in tests unless asked
				if i < 20:
					make_communication(
						doctype="Lead",
						name=name,
						subject=f"Your quote {name}",
						content="Here it is.",
						recipients="buyer@example.com",
						send_email=True,
						email_template=TEMPLATE,
					)
		cls._make_follow_ups()
		frappe.set_user(ZHOU)
		for name in cls.south:
			new_request()
			lead = frappe.get_doc("Lead", name)
			lead.status = "Interested"
			lead.save(ignore_version=False)
		frappe.set_user("Administrator")

	@classmethod
	def _make_follow_ups(cls):
		"""22 Central leads marked Interested by Li; for 20 of them Zhou writes the same follow-up
		ToDo. The saves are real; only the clock is moved afterwards (in SQL, as days passing):
		created and marked Interested five days ago, the ToDo written two days ago."""
		for i in range(22):
			frappe.set_user(MARIA)
			lead = _lead(CENTRAL)
			cls.central.append(lead.name)
			frappe.set_user(LI)
			lead = frappe.get_doc("Lead", lead.name)
			lead.status = "Interested"
			lead.save(ignore_version=False)
			if i < 20:
				frappe.set_user(ZHOU)
				assign_to.add(
					{"assign_to": [ZHOU], "doctype": "Lead", "name": lead.name, "description": CALL_BACK}
				)
		names = {"names": cls.central}
		frappe.db.sql(
			"update `tabLead` set creation = creation - interval 5 day where name in %(names)s", names
		)
		frappe.db.sql(
			"""update `tabVersion` set creation = creation - interval 5 day
			where ref_doctype = 'Lead' and docname in %(names)s""",
			names,
		)
		frappe.db.sql(
			"""update `tabToDo` set creation = creation - interval 2 day
			where reference_type = 'Lead' and reference_name in %(names)s""",
			names,
		)

	def setUp(self):
		frappe.set_user(MANAGER)

	def tearDown(self):
		frappe.set_user("Administrator")

	def test_expected_proposals_with_their_figures(self):
		report, found = _proposals(doctypes=["Lead"], min_support=20, min_confidence=80)
		north = found[f"from|Lead|territory={NORTH}|Assign|{ZHOU}"]
		self.assertEqual((north["support"], north["observed"]), (23, 25))
		self.assertEqual(north["confidence"], 0.92)
		self.assertEqual(north["people"], [{"user": MARIA, "count": 23}])
		self.assertEqual(north["rule"]["actions"][0]["to_users"], ZHOU)
		fair = found[f"from|Lead|source={FAIR}|Set Value|qualification_status|In Process"]
		self.assertEqual((fair["support"], fair["observed"]), (22, 24))
		self.assertEqual({p["user"] for p in fair["people"]}, {ZHOU, LI})
		# every Fair lead is in the West: one proposal, the other condition named beside it
		self.assertEqual(fair["alternatives"], [{"field": "territory", "value": WEST}])
		quote = found[f"after|Lead|status->Replied|Send Email|template|{TEMPLATE}"]
		self.assertEqual(quote["support"], 20)
		self.assertEqual(quote["observed"], self._leads_replied_in_period())
		self.assertGreater(quote["hours_per_week"], 0)
		for proposal in report["proposals"]:
			self.assertEqual(proposal["problems"], [], proposal["id"])

	def test_automation_is_not_manual_work(self):
		report, found = _proposals(doctypes=["Lead"], min_support=5, min_confidence=50)
		self.assertFalse([key for key in found if EAST in key])
		self.assertGreaterEqual(report["excluded"].get("assignment", 0), 20)
		# the Validate rule's request type is left out; the status people set is kept
		self.assertEqual(frappe.db.get_value("Lead", self.south[0], "request_type"), "Product Enquiry")
		self.assertFalse([key for key in found if "request_type" in key])
		self.assertGreaterEqual(report["excluded"].get("change", 0), 20)

	def test_the_one_click_rule_is_disabled_and_replays_the_human_actions(self):
		_report, found = _proposals(doctypes=["Lead"])
		created = {}
		for key in (
			f"from|Lead|territory={NORTH}|Assign|{ZHOU}",
			f"after|Lead|status->Replied|Send Email|template|{TEMPLATE}",
		):
			proposal = found[key]
			result = opportunities.create_rule_from_proposal(frappe.as_json(proposal["rule"]), days=90)
			created[key] = result["rule"]
			self.assertEqual(frappe.db.get_value("Workflow Rule", result["rule"], "enabled"), 0)
			replay = result["replay"]
			self.assertFalse(replay["enabled"])
			self.assertEqual(replay["counts"]["same"], proposal["support"], key)
			self.assertEqual(replay["confidence"], proposal["confidence"], key)
		# Zhou was also given 12 West leads and 20 Central follow-ups by hand: people did that, the
		# North rule would not have
		north_replay = opportunities.replay_rule(created[f"from|Lead|territory={NORTH}|Assign|{ZHOU}"])
		self.assertEqual(
			north_replay["counts"], {"same": 23, "different": 2, "rule_only": 0, "people_only": 12 + 20}
		)
		self.assertEqual(set(north_replay["examples"]["different"]), set(self.north[23:]))

	def test_a_proposal_cannot_smuggle_an_enabled_rule_or_another_run_as_user(self):
		_report, found = _proposals(doctypes=["Lead"])
		rule = dict(found[f"from|Lead|territory={NORTH}|Assign|{ZHOU}"]["rule"])
		rule.update(
			enabled=1, run_as="Administrator", owner="Administrator", rule_name="_Test Mining Smuggled"
		)
		result = opportunities.create_rule_from_proposal(frappe.as_json(rule))
		stored = frappe.db.get_value(
			"Workflow Rule", result["rule"], ["enabled", "owner", "run_as"], as_dict=True
		)
		self.assertEqual((stored.enabled, stored.owner), (0, MANAGER))
		self.assertNotEqual(stored.run_as, "Administrator")

	def test_a_data_import_is_not_manual_work(self):
		from crm_automation.mining import history_export

		frappe.set_user("Administrator")
		lead = frappe.get_doc("Lead", self.north[0])
		lead.request_type = "Request for Information"
		lead.flags.updater_reference = {"doctype": "Data Import", "docname": "x", "label": "via Data Import"}
		lead.save(ignore_version=False)
		since, until = history_export.period(1)
		changes = [
			event
			for event in history_export.iter_events(["Lead"], since, until)
			if event["name"] == lead.name and event["type"] == "change"
		]
		self.assertEqual(
			[(c["field"], c["new"], c["imported"]) for c in changes],
			[("request_type", "Request for Information", True)],
		)
		# the Python reading of Version rows (other databases) gives the same as MariaDB's JSON_TABLE
		names, tracked = (
			self.north + self.west + self.south,
			["qualification_status", "request_type", "status"],
		)
		self.assertEqual(
			[
				(
					row[0],
					frappe.utils.get_datetime(row[1]),
					*row[2:4],
					str(row[4] or ""),
					str(row[5] or ""),
					bool(row[6]),
				)
				for row in history_export._tracked_changes("Lead", names, tracked)
			],
			[
				(
					row[0],
					frappe.utils.get_datetime(row[1]),
					*row[2:4],
					str(row[4] or ""),
					str(row[5] or ""),
					bool(row[6]),
				)
				for row in history_export._changes_in_python("Lead", names, tracked)
			],
		)
		record = next(e for e in history_export.iter_events(["Lead"], since, until) if e["name"] == lead.name)
		self.assertEqual(record["doc"]["request_type"], "")  # as created: the import's change undone

	def test_a_sales_user_cannot_mine_or_create(self):
		frappe.set_user(SALES_USER)
		with self.assertRaises(frappe.PermissionError):
			opportunities.find_opportunities(doctypes=["Lead"])
		with self.assertRaises(frappe.PermissionError):
			execute({"doctypes": ["Lead"]})
		rule = {
			"rule_name": "_Test Mining Sneaky",
			"document_type": "Lead",
			"trigger": "New",
			"actions": [{"action_type": "Add Tag", "tag": "x"}],
		}
		with self.assertRaises(frappe.PermissionError):
			opportunities.create_rule_from_proposal(frappe.as_json(rule))
		self.assertFalse(frappe.db.exists("Workflow Rule", "_Test Mining Sneaky"))

	def test_records_the_user_cannot_read_are_not_counted(self):
		frappe.set_user(NORTH_MANAGER)
		report, found = _proposals(doctypes=["Lead"], min_support=5, min_confidence=50)
		# all this manager sees are the 25 North leads: "every new Lead → Zhou" says it all
		north = found.get(f"from|Lead|territory={NORTH}|Assign|{ZHOU}") or found[f"from|Lead|*|Assign|{ZHOU}"]
		self.assertEqual((north["support"], north["observed"]), (23, 25))
		self.assertFalse([key for key in found if FAIR in key or WEST in key or TEMPLATE in key])
		frappe.set_user(MANAGER)
		everything, _found = _proposals(doctypes=["Lead"], min_support=5, min_confidence=50)
		self.assertGreaterEqual(everything["documents"]["Lead"] - report["documents"]["Lead"], 24 + 20 + 20)

	def test_the_report(self):
		_columns, rows, message, _chart, summary = execute(
			{"doctypes": ["Lead"], "days": 90, "min_support": 20, "min_confidence": 80}
		)
		row = next(row for row in rows if NORTH in row["pattern"] and row["action_type"] == "Assign")
		self.assertEqual((row["support"], row["confidence"]), (23, 92.0))
		self.assertEqual(row["create_rule"], "Create Rule")
		self.assertIn(ZHOU, row["rule_json"])
		self.assertIn("Left out as automation or data import", message)
		self.assertGreaterEqual({card["label"]: card["value"] for card in summary}["Patterns Found"], 3)

	def test_the_report_through_the_desk(self):
		from frappe.desk.query_report import run

		filters = {"doctypes": frappe.as_json(["Lead"]), "days": 90, "min_support": 20, "min_confidence": 80}
		result = run("Automation Opportunities", filters=filters)
		ids = {row["proposal_id"] for row in result["result"]}
		self.assertIn(f"from|Lead|territory={NORTH}|Assign|{ZHOU}", ids)
		frappe.set_user(SALES_USER)
		with self.assertRaises(frappe.PermissionError):
			run("Automation Opportunities", filters=filters)

	def test_bad_filters_are_refused_by_name(self):
		for filters, text in (
			({"days": 0}, "Period (Days)"),
			({"min_support": -1}, "Minimum Support"),
			({"min_confidence": 150}, "Minimum Confidence"),
		):
			with self.assertRaises(frappe.ValidationError) as caught:
				opportunities.find_opportunities(doctypes=["Lead"], **filters)
			self.assertIn(text, str(caught.exception))

	def test_the_exported_history_gives_the_same_proposals_offline(self):
		import os
		import tempfile

		from crm_automation.mining.history_export import write_history_file
		from crm_automation.offline.history_files import suggest

		site, _found = _proposals(doctypes=["Lead"], min_support=20, min_confidence=80)
		with tempfile.TemporaryDirectory() as folder:
			path = os.path.join(folder, "history.jsonl")
			self.assertGreater(write_history_file(path, ["Lead"], 90), 69)
			offline = suggest(path, min_support=20, min_confidence=0.8)
		self.assertEqual(
			[(p["id"], p["support"], p["observed"]) for p in offline["proposals"]],
			[(p["id"], p["support"], p["observed"]) for p in site["proposals"]],
		)
		self.assertEqual(offline["excluded"], site["excluded"])

	def test_a_follow_up_days_after_a_status_becomes_a_time_rule(self):
		_report, found = _proposals(doctypes=["Lead"])
		key = f"after|Lead|status->Interested|Create ToDo|{CALL_BACK.lower()}|3"
		proposal = found.get(key) or self.fail(f"no {key} among {sorted(found)}")
		self.assertEqual(
			(proposal["support"], proposal["observed"]), (20, self._leads_interested_days_ago(3))
		)
		rule = proposal["rule"]
		self.assertEqual((rule["trigger"], rule["time_field"], rule["time_offset"]), ("Time", "modified", 3))
		self.assertEqual(rule["actions"][0]["to_assignees"], 1)
		result = opportunities.create_rule_from_proposal(frappe.as_json(rule))
		self.assertEqual(result["replay"]["counts"]["same"], 20)
		self.assertEqual(result["replay"]["confidence"], proposal["confidence"])

	def _leads_interested_days_ago(self, days):
		"""Leads created in the period that became Interested ``days`` days ago or earlier."""
		return frappe.db.sql(
			"""select count(distinct v.docname) from `tabVersion` v join `tabLead` l on l.name = v.docname
			where v.ref_doctype = 'Lead' and l.creation >= now() - interval 90 day
			and v.creation <= now() - interval %(days)s day and v.data like '%%["status",%%"Interested"]%%'""",
			{"days": days},
		)[0][0]

	def test_a_bad_proposal_is_refused_and_nothing_is_created(self):
		before = frappe.db.count("Workflow Rule")
		for rule, text in (
			("{oops", "not valid JSON"),
			(frappe.as_json({"rule_name": "x"}), "needs a document type and actions"),
			(
				frappe.as_json(
					{
						"rule_name": "_Test Mining Unknown Field",
						"document_type": "Lead",
						"trigger": "New",
						"conditions": {"all": [{"field": "no_such_field", "op": "=", "value": 1}]},
						"actions": [{"action_type": "Add Tag", "tag": "x"}],
					}
				),
				"no_such_field",
			),
		):
			with self.assertRaises(frappe.ValidationError) as caught:
				opportunities.create_rule_from_proposal(rule)
			self.assertIn(text, str(caught.exception))
		self.assertEqual(frappe.db.count("Workflow Rule"), before)

	def _leads_replied_in_period(self):
		"""Leads created in the period with a status change to Replied, counted straight from SQL."""
		return frappe.db.sql(
			"""select count(distinct v.docname) from `tabVersion` v join `tabLead` l on l.name = v.docname
			where v.ref_doctype = 'Lead' and l.creation >= now() - interval 90 day
			and v.data like '%%["status",%%"Replied"]%%'"""
		)[0][0]
