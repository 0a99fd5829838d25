"""Who is in (issue 22): Assign and round robin skip users who are away or outside their working hours,
say so in the log and fall back to a named user or role; and who may mark whom away."""

import datetime
from collections import Counter
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, add_to_date, getdate, now_datetime

from crm_automation.tests.factories import (
	default_company,
	delete_test_rules,
	make_lead,
	make_rule,
	make_user,
	new_request,
	open_assignees,
)

IGNORE_TEST_RECORD_DEPENDENCIES = ["DocType", "Role", "User", "Employee", "Holiday List"]

PREFIX = "_Test AV"
ANN, BOB, CAT = (f"av-{name}@example.com" for name in ("ann", "bob", "cat"))
FALLBACK = "av-fallback@example.com"
ROLE_MEMBER = "av-role-member@example.com"
ATTACKER = "av-attacker@example.com"
SELF_SERVE = "av-self@example.com"
FALLBACK_ROLE = "_Test AV Fallback Role"
HOLIDAYS = "_Test AV Holidays"
POLICY = "_Test AV Office Hours"
TERRITORY = "_Test AV Territory"


def assign_action(**fields):
	return {
		"action_type": "Assign",
		"assign_to_type": "Listed Users",
		"to_users": "\n".join([ANN, BOB, CAT]),
		"skip_away": 1,
		**fields,
	}


def mark_away(user, start, end, reason="Conference"):
	if frappe.db.exists("User Availability", user):
		doc = frappe.get_doc("User Availability", user)
	else:
		doc = frappe.get_doc({"doctype": "User Availability", "user": user})
	doc.append("away_periods", {"from_datetime": start, "to_datetime": end, "reason": reason})
	doc.save(ignore_permissions=True)
	return doc


def action_results(lead):
	log = frappe.get_all(
		"Automation Log",
		filters={"reference_doctype": "Lead", "reference_name": lead.name},
		pluck="name",
		order_by="creation desc",
		limit=1,
	)
	return frappe.get_all(
		"Automation Log Action", filters={"parent": log[0]}, fields=["status", "result"], order_by="idx asc"
	)


class TestAvailability(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		frappe.db.set_single_value("CRM Automation Settings", {"enabled": 1, "max_recursion_depth": 3})
		if not frappe.db.exists("Role", FALLBACK_ROLE):
			frappe.get_doc({"doctype": "Role", "role_name": FALLBACK_ROLE, "desk_access": 1}).insert(
				ignore_permissions=True
			)
		if not frappe.db.exists("Territory", TERRITORY):
			frappe.get_doc(
				{"doctype": "Territory", "territory_name": TERRITORY, "parent_territory": "All Territories"}
			).insert(ignore_permissions=True)
		for user in (ANN, BOB, CAT, FALLBACK, SELF_SERVE):
			make_user(user, roles=["Sales User"])
		make_user(ROLE_MEMBER, roles=["Sales User", FALLBACK_ROLE])
		make_user(ATTACKER, roles=["CRM Automation Manager", "Sales User"])

	def setUp(self):
		new_request()
		frappe.set_user("Administrator")

	def tearDown(self):
		frappe.set_user("Administrator")
		delete_test_rules(f"{PREFIX}%")
		for name in frappe.get_all("User Availability", filters={"user": ["like", "av-%"]}, pluck="name"):
			frappe.delete_doc("User Availability", name, force=True, ignore_permissions=True)
		for name in frappe.get_all("Employee", filters={"first_name": ["like", "AV %"]}, pluck="name"):
			frappe.delete_doc("Employee", name, force=True, ignore_permissions=True)
		frappe.db.delete("ToDo", {"allocated_to": ["like", "av-%"]})

	def leads(self, count):
		return [make_lead(first_name=f"AV {i}", territory=TERRITORY) for i in range(count)]

	def test_round_robin_skips_the_away_user_and_keeps_the_fair_share(self):
		"""Round robin over three users, Bob away: 10 Leads go 5/5 to Ann and Cat, none to Bob, and
		each log says Bob was skipped and until when, never why."""
		mark_away(BOB, add_days(now_datetime(), -1), add_days(now_datetime(), 3), reason="Secret surgery")
		make_rule(f"{PREFIX} Round Robin", "Lead", "New", actions=[assign_action()])
		leads = self.leads(10)
		counts = Counter(user for lead in leads for user in open_assignees(lead))
		self.assertEqual(counts, Counter({ANN: 5, CAT: 5}))
		result = action_results(leads[0])[0]
		self.assertEqual(result.status, "Success")
		self.assertIn("skipped: av-bob (away until", result.result)
		self.assertIn("away until", result.result)
		self.assertNotIn("surgery", result.result)

	def test_without_skip_away_the_away_user_still_gets_work(self):
		mark_away(BOB, add_days(now_datetime(), -1), add_days(now_datetime(), 3))
		make_rule(f"{PREFIX} No Skip", "Lead", "New", actions=[assign_action(skip_away=0)])
		counts = Counter(user for lead in self.leads(3) for user in open_assignees(lead))
		self.assertEqual(counts, Counter({ANN: 1, BOB: 1, CAT: 1}))

	def test_a_holiday_in_the_employees_holiday_list_counts_as_away(self):
		today = getdate()
		if frappe.db.exists("Holiday List", HOLIDAYS):
			frappe.delete_doc("Holiday List", HOLIDAYS, force=True, ignore_permissions=True)
		frappe.get_doc(
			{
				"doctype": "Holiday List",
				"holiday_list_name": HOLIDAYS,
				"from_date": add_days(today, -5),
				"to_date": add_days(today, 30),
				"holidays": [{"holiday_date": today, "description": "Local holiday"}],
			}
		).insert(ignore_permissions=True)
		frappe.get_doc(
			{
				"doctype": "Employee",
				"first_name": "AV Ann",
				"gender": frappe.get_all("Gender", pluck="name", limit=1)[0],
				"date_of_birth": "1990-01-01",
				"date_of_joining": "2020-01-01",
				"company": default_company(),
				"status": "Active",
				"user_id": ANN,
				"holiday_list": HOLIDAYS,
			}
		).insert(ignore_permissions=True)
		make_rule(f"{PREFIX} Holiday", "Lead", "New", actions=[assign_action()])
		leads = self.leads(4)
		counts = Counter(user for lead in leads for user in open_assignees(lead))
		self.assertEqual(counts, Counter({BOB: 2, CAT: 2}))
		self.assertIn("on holiday until", action_results(leads[0])[0].result)

	def test_outside_working_hours_is_skipped_only_when_asked(self):
		"""Ann works Monday to Friday 09:00-17:00; on a Saturday at 03:00 she is skipped when the
		action says so."""
		from crm_automation.crm_automation.doctype.escalation_policy.test_escalation_policy import (
			business_calendar,
			make_policy,
		)

		make_policy(
			POLICY,
			"Lead",
			clock_start="Creation",
			levels=[{"level": 1, "after": 2, "unit": "Hours", "action_type": "Add Comment", "message": "x"}],
			**{**business_calendar(), "working_hours": business_calendar()["working_hours"][:5]},
		)
		frappe.get_doc({"doctype": "User Availability", "user": ANN, "working_hours_policy": POLICY}).insert(
			ignore_permissions=True
		)
		saturday_3am = datetime.datetime(2026, 12, 12, 3, 0)
		make_rule(
			f"{PREFIX} Off Hours",
			"Lead",
			"New",
			actions=[assign_action(to_users=ANN, skip_away=0, skip_off_hours=1, fallback_user=FALLBACK)],
		)
		with patch("crm_automation.actions.assignment.now_datetime", return_value=saturday_3am):
			lead = make_lead(first_name="AV Saturday", territory=TERRITORY)
		self.assertEqual(open_assignees(lead), [FALLBACK])
		result = action_results(lead)[0].result
		self.assertIn("outside working hours", result)
		self.assertIn("fallback user used", result)
		monday_10am = datetime.datetime(2026, 12, 14, 10, 0)
		with patch("crm_automation.actions.assignment.now_datetime", return_value=monday_10am):
			lead = make_lead(first_name="AV Monday", territory=TERRITORY)
		self.assertEqual(open_assignees(lead), [ANN])
		frappe.delete_doc("Escalation Policy", POLICY, force=True, ignore_permissions=True)

	def test_all_away_goes_to_the_fallback_user(self):
		for user in (ANN, BOB, CAT):
			mark_away(user, add_days(now_datetime(), -1), add_days(now_datetime(), 1))
		make_rule(f"{PREFIX} Fallback User", "Lead", "New", actions=[assign_action(fallback_user=FALLBACK)])
		lead = make_lead(first_name="AV All Away", territory=TERRITORY)
		self.assertEqual(open_assignees(lead), [FALLBACK])
		result = action_results(lead)[0].result
		self.assertIn("fallback user used", result)
		for name in ("av-ann", "av-bob", "av-cat"):
			self.assertIn(name, result)

	def test_all_away_goes_to_someone_with_the_fallback_role_who_is_in(self):
		for user in (ANN, BOB, CAT):
			mark_away(user, add_days(now_datetime(), -1), add_days(now_datetime(), 1))
		make_rule(f"{PREFIX} Fallback Role", "Lead", "New", actions=[assign_action(fallback_role=FALLBACK_ROLE)])
		lead = make_lead(first_name="AV Role", territory=TERRITORY)
		self.assertEqual(open_assignees(lead), [ROLE_MEMBER])
		self.assertIn("fallback role used", action_results(lead)[0].result)

	def test_nobody_available_and_no_fallback_fails_the_action_saying_who_was_skipped(self):
		for user in (ANN, BOB, CAT):
			mark_away(user, add_days(now_datetime(), -1), add_days(now_datetime(), 1))
		make_rule(f"{PREFIX} Nobody", "Lead", "New", actions=[assign_action()])
		lead = make_lead(first_name="AV Nobody", territory=TERRITORY)
		self.assertTrue(frappe.db.exists("Lead", lead.name), "the save is kept")
		self.assertEqual(open_assignees(lead), [])
		result = action_results(lead)[0]
		self.assertEqual(result.status, "Failed")
		self.assertIn("Nobody is available", result.result)

	def test_rule_save_refuses_a_disabled_fallback_user_and_a_role_of_everyone(self):
		disabled = make_user("av-disabled@example.com", enabled=0)
		with self.assertRaisesRegex(frappe.ValidationError, "disabled"):
			make_rule(f"{PREFIX} Bad Fallback", "Lead", "New", actions=[assign_action(fallback_user=disabled)])
		with self.assertRaisesRegex(frappe.ValidationError, "every user"):
			make_rule(f"{PREFIX} Bad Role", "Lead", "New", actions=[assign_action(fallback_role="All")])
		self.assertFalse(frappe.db.exists("Workflow Rule", {"rule_name": ["like", f"{PREFIX} Bad%"]}))

	# -- who may mark whom away ------------------------------------------------------------------

	def test_a_sales_user_marks_themselves_away(self):
		frappe.set_user(SELF_SERVE)
		doc = frappe.client.insert(
			{
				"doctype": "User Availability",
				"user": SELF_SERVE,
				"away_periods": [
					{"from_datetime": now_datetime(), "to_datetime": add_to_date(now_datetime(), hours=4), "reason": "Dentist"}
				],
			}
		)
		self.assertEqual(doc["name"], SELF_SERVE)
		self.assertEqual(frappe.get_list("User Availability", pluck="name"), [SELF_SERVE])
		frappe.set_user("Administrator")
		self.assertEqual(frappe.db.count("User Availability Period", {"parent": SELF_SERVE}), 1)

	def test_an_attacker_cannot_mark_another_user_away_nor_read_their_reasons(self):
		"""A CRM Automation Manager + Sales User who is nobody's manager: insert and update of another
		user's record refused over REST, and neither the record nor its reasons can be listed."""
		mark_away(ANN, add_days(now_datetime(), -1), add_days(now_datetime(), 1), reason="Private reason")
		frappe.set_user(ATTACKER)
		with self.assertRaises(frappe.PermissionError):
			frappe.client.insert(
				{
					"doctype": "User Availability",
					"user": BOB,
					"away_periods": [{"from_datetime": now_datetime(), "to_datetime": add_days(now_datetime(), 9)}],
				}
			)
		with self.assertRaises(frappe.PermissionError):
			frappe.client.set_value("User Availability", ANN, "working_hours_policy", None)
		stolen = {
			"doctype": "User Availability",
			"name": ANN,
			"user": ANN,
			"away_periods": [{"from_datetime": now_datetime(), "to_datetime": add_days(now_datetime(), 30)}],
		}
		with self.assertRaises(frappe.PermissionError):
			frappe.client.save(stolen)
		with self.assertRaises(frappe.PermissionError):
			frappe.client.get("User Availability", ANN)
		self.assertEqual(frappe.get_list("User Availability", pluck="name"), [])
		periods = frappe.client.get_list(
			"User Availability Period", parent="User Availability", fields=["parent", "reason"]
		)
		self.assertEqual(periods, [])
		reasons = frappe.get_list("User Availability", fields=["name", "away_periods.reason"])
		self.assertEqual(reasons, [])
		# Their own record cannot be moved onto someone else either.
		frappe.client.insert({"doctype": "User Availability", "user": ATTACKER})
		with self.assertRaises((frappe.PermissionError, frappe.ValidationError)):
			frappe.client.set_value("User Availability", ATTACKER, "user", BOB)
		frappe.set_user("Administrator")
		self.assertFalse(frappe.db.exists("User Availability", BOB))
		self.assertEqual(frappe.db.count("User Availability Period", {"parent": ANN}), 1)
		self.assertEqual(frappe.db.get_value("User Availability", ATTACKER, "user"), ATTACKER)

	def test_a_manager_marks_their_team_away(self):
		"""The user of the Employee that Ann's Employee reports to may mark Ann away."""
		gender = frappe.get_all("Gender", pluck="name", limit=1)[0]

		def employee(first_name, user, reports_to=None):
			return frappe.get_doc(
				{
					"doctype": "Employee",
					"first_name": first_name,
					"gender": gender,
					"date_of_birth": "1990-01-01",
					"date_of_joining": "2020-01-01",
					"company": default_company(),
					"status": "Active",
					"user_id": user,
					"reports_to": reports_to,
				}
			).insert(ignore_permissions=True)

		boss = employee("AV Boss", CAT)
		employee("AV Ann", ANN, reports_to=boss.name)
		frappe.set_user(CAT)
		frappe.client.insert(
			{
				"doctype": "User Availability",
				"user": ANN,
				"away_periods": [{"from_datetime": now_datetime(), "to_datetime": add_days(now_datetime(), 2)}],
			}
		)
		with self.assertRaises(frappe.PermissionError):
			frappe.client.insert({"doctype": "User Availability", "user": BOB})
		frappe.set_user("Administrator")
		self.assertTrue(frappe.db.exists("User Availability", ANN))
		self.assertFalse(frappe.db.exists("User Availability", BOB))
