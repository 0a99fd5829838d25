"""Every record a rule or a dry run reads or acts on is checked for the user (issue #20), proven as
an attacker on a real site.

Users (created here, rolled back at the end):
- a CRM Automation Manager (+ Sales User) restricted by User Permissions: of the Customers only
  customer A, of the Leads only those of territory A; it reads lead "B-linked" (territory A) whose
  Customer is B, and not the Leads of territory B;
- a plain Sales User, a System Manager, and a "VIP" System Manager whose mobile number and private
  e-mail address are the secrets a Send action could show.

Each attack runs as the manager, through the Python API and through ``frappe.call`` of the
whitelisted path; afterwards the database is checked (no step cancelled, nothing written) and the
secret must not appear anywhere in the JSON of the answer. The same call by a System Manager still
sees or does it.
"""

import json
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase

from crm_automation import api
from crm_automation.escalation import clear_policy_cache
from crm_automation.runtime.workflow_rules import clear_rule_cache
from crm_automation.sequences import steps as sequences
from crm_automation.tests.factories import ensure, make_customer, make_lead, make_user, new_request

IGNORE_TEST_RECORD_DEPENDENCIES = ["User", "Territory", "Customer", "Role"]

PREFIX = "_Test TB2 Records"
MANAGER = "crm-tb2r-manager@example.com"
SALES = "crm-tb2r-sales@example.com"
SYSTEM_MANAGER = "crm-tb2r-sysmgr@example.com"
VIP = "crm-tb2r-vip@example.com"
KEY_ACCOUNT = "crm-tb2r-keyaccount@example.com"
USERS = (MANAGER, SALES, SYSTEM_MANAGER, VIP, KEY_ACCOUNT)

CUSTOMER_A, CUSTOMER_B = "_Test TB2R Customer A", "_Test TB2R Customer B"
MISSING_CUSTOMER = "_Test TB2R No Such Customer"
TERRITORY_A, TERRITORY_B = "_Test TB2R Territory A", "_Test TB2R Territory B"
TAX_A, SECRET_TAX = "TB2R-TAX-A-1001", "TB2R-TAX-SECRET-9917"
SECRET_MOBILE, SECRET_NUMBER = "+49 151 2345 6789", "+4915123456789"
PRIVATE_EMAIL = "tb2r-private-inbox@example.org"
LEAD_MOBILE = "+7 912 345 67 89"
MISSING_STEP = "tb2r-no-such-step"
MISSING_LEAD = "CRM-LEAD-TB2R-NO-SUCH"


def as_user(user, function, *args, **kwargs):
	frappe.set_user(user)
	try:
		return function(*args, **kwargs)
	finally:
		frappe.set_user("Administrator")


def via_rest(user, method, **kwargs):
	"""A whitelisted method called by its dotted path, as /api/method/... calls it."""
	return as_user(user, frappe.call, method, **kwargs)


def save_rule_as(user, name, actions, document_type="Lead", trigger="Manual", **fields):
	"""A Workflow Rule saved by ``user`` through the desk's own insert: it runs as ``user``."""
	frappe.set_user(user)
	try:
		rule = frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": name,
				"document_type": document_type,
				"trigger": trigger,
				"enabled": 1,
				"actions": actions,
				**fields,
			}
		).insert()
	finally:
		frappe.set_user("Administrator")
	clear_rule_cache()
	return rule


def only_tb2r_leads():
	return json.dumps({"field": "first_name", "op": "like", "value": "TB2R%"})


class TrustRecordsCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		# Registered first, so it runs last: no cache keeps the rolled-back users' permissions.
		cls.addClassCleanup(cls.clear_user_caches)
		super().setUpClass()
		for territory in (TERRITORY_A, TERRITORY_B):
			ensure("Territory", territory, territory_name=territory, parent_territory="All Territories")
		make_user(MANAGER, roles=["CRM Automation Manager", "Sales User"])
		make_user(SALES, roles=["Sales User"])
		make_user(SYSTEM_MANAGER, roles=["System Manager", "CRM Automation Manager", "Sales User"])
		make_user(VIP, roles=["System Manager"])
		make_user(KEY_ACCOUNT, roles=["Sales User"])
		frappe.db.set_value("User", VIP, {"mobile_no": SECRET_MOBILE, "email": PRIVATE_EMAIL})
		make_customer(CUSTOMER_A)
		make_customer(CUSTOMER_B)
		for allow, value, applicable_for in (
			("Customer", CUSTOMER_A, "Customer"),
			("Territory", TERRITORY_A, "Lead"),
		):
			frappe.get_doc(
				{
					"doctype": "User Permission",
					"user": MANAGER,
					"allow": allow,
					"for_value": value,
					"apply_to_all_doctypes": 0,
					"applicable_for": applicable_for,
				}
			).insert(ignore_permissions=True)
		frappe.db.set_value("Customer", CUSTOMER_A, "tax_id", TAX_A)
		frappe.db.set_value("Customer", CUSTOMER_B, {"tax_id": SECRET_TAX, "account_manager": KEY_ACCOUNT})
		frappe.db.set_single_value("SMS Settings", "sms_gateway_url", "http://127.0.0.1:9/tb2r-sms")
		frappe.db.set_single_value(
			"CRM Automation Settings", {"enabled": 1, "max_recursion_depth": 3, "failure_threshold": 50}
		)
		for user in USERS:
			frappe.clear_cache(user=user)

	@classmethod
	def clear_user_caches(cls):
		for user in USERS:
			frappe.clear_cache(user=user)
		clear_rule_cache()
		frappe.set_user("Administrator")

	def setUp(self):
		frappe.set_user("Administrator")
		new_request()
		# Delivery and sweeps commit; here everything stays in the test's savepoint.
		self.enterContext(patch.object(frappe.db, "commit"))
		frappe.db.savepoint("tb2r_test")

	def tearDown(self):
		frappe.set_user("Administrator")
		frappe.db.rollback(save_point="tb2r_test")
		clear_rule_cache()
		clear_policy_cache()

	def lead(self, first_name, territory=TERRITORY_A, customer=None, **fields):
		new_request()
		return make_lead(first_name=f"TB2R {first_name}", territory=territory, customer=customer, **fields)

	def lead_with_missing_customer(self, first_name):
		lead = self.lead(first_name)
		frappe.db.set_value("Lead", lead.name, "customer", MISSING_CUSTOMER)
		return frappe.get_doc("Lead", lead.name)

	def assertSecretAbsent(self, answer, *secrets):
		text = frappe.as_json(answer)
		for secret in secrets:
			self.assertNotIn(secret, text)

	def refusal(self, user, function, *args, **kwargs):
		with self.assertRaises(frappe.PermissionError) as caught:
			as_user(user, function, *args, **kwargs)
		return caught.exception

	def assertSameRefusal(self, forbidden, missing, forbidden_name, missing_name):
		"""The same exception class, status and message (but for the name asked for)."""
		self.assertIs(type(forbidden), type(missing))
		self.assertEqual(
			getattr(forbidden, "http_status_code", None), getattr(missing, "http_status_code", None)
		)
		self.assertEqual(
			str(forbidden).replace(forbidden_name, "<name>"), str(missing).replace(missing_name, "<name>")
		)


class TestLinkedTargets(TrustRecordsCase):
	def linked_rule(self, user, name=f"{PREFIX} Linked", trigger="Manual", **fields):
		return save_rule_as(
			user,
			name,
			[
				{
					"action_type": "Add Comment",
					"target_link_field": "customer",
					"message": "tax {{ doc.tax_id }}",
				},
				{
					"action_type": "Set Value",
					"target_link_field": "customer",
					"target_field": "tax_id",
					"value": "TB2R-OVERWRITTEN",
				},
			],
			trigger=trigger,
			**fields,
		)

	def test_dry_run_of_an_action_on_a_forbidden_linked_record_shows_nothing_of_it(self):
		rule = self.linked_rule(MANAGER)
		forbidden = self.lead("Linked B", customer=CUSTOMER_B)
		missing = self.lead_with_missing_customer("Linked Missing")
		readable = self.lead("Linked A", customer=CUSTOMER_A)
		comments_before = frappe.db.count("Comment", {"reference_name": CUSTOMER_B})

		answers = {}
		for lead in (forbidden, missing, readable):
			answers[lead.name] = as_user(MANAGER, api.dry_run_rule, rule.name, json.dumps([lead.name]))
		self.assertSecretAbsent(answers[forbidden.name], SECRET_TAX)
		self.assertSecretAbsent(answers[missing.name], SECRET_TAX)

		def summaries(answer, name):
			return [a["summary"].replace(name, "<name>") for a in answer["results"][0]["actions"]]

		said = summaries(answers[forbidden.name], CUSTOMER_B)
		self.assertTrue(all("may not read it" in summary for summary in said), said)
		self.assertEqual(said, summaries(answers[missing.name], MISSING_CUSTOMER), "missing = forbidden")
		# A Customer the manager may read is previewed as before.
		self.assertIn(TAX_A, frappe.as_json(answers[readable.name]))

		# The same through the REST path, and a replay over the day's leads.
		rest = via_rest(
			MANAGER, "crm_automation.api.dry_run_rule", rule=rule.name, names=json.dumps([forbidden.name])
		)
		self.assertSecretAbsent(rest, SECRET_TAX)
		replayed = via_rest(MANAGER, "crm_automation.api.replay_rule", rule=rule.name, days=1)
		self.assertSecretAbsent(replayed, SECRET_TAX)
		self.assertGreaterEqual(replayed["documents"], 3)

		# Nothing written on the Customer by any of it.
		self.assertEqual(frappe.db.get_value("Customer", CUSTOMER_B, "tax_id"), SECRET_TAX)
		self.assertEqual(frappe.db.count("Comment", {"reference_name": CUSTOMER_B}), comments_before)

		# A System Manager's dry run of the same rule still shows the Customer's values.
		shown = as_user(SYSTEM_MANAGER, api.dry_run_rule, rule.name, json.dumps([forbidden.name]))
		self.assertIn(SECRET_TAX, frappe.as_json(shown))

	def test_dry_run_of_assign_to_a_forbidden_customers_account_manager_names_nobody(self):
		rule = save_rule_as(
			MANAGER,
			f"{PREFIX} Key Account",
			[
				{
					"action_type": "Assign",
					"assign_to_type": "User in Field",
					"to_field": "customer.account_manager",
				}
			],
		)
		forbidden = self.lead("Key B", customer=CUSTOMER_B)
		missing = self.lead_with_missing_customer("Key Missing")
		answer = as_user(MANAGER, api.dry_run_rule, rule.name, json.dumps([forbidden.name]))
		self.assertSecretAbsent(answer, KEY_ACCOUNT)
		other = as_user(MANAGER, api.dry_run_rule, rule.name, json.dumps([missing.name]))
		self.assertEqual(
			answer["results"][0]["actions"][0]["summary"], other["results"][0]["actions"][0]["summary"]
		)
		shown = as_user(SYSTEM_MANAGER, api.dry_run_rule, rule.name, json.dumps([forbidden.name]))
		self.assertIn(KEY_ACCOUNT, frappe.as_json(shown))

	def test_a_live_run_fails_on_a_linked_record_its_run_as_user_may_not_read(self):
		rule = self.linked_rule(MANAGER, trigger="Save", conditions=only_tb2r_leads())
		comments_before = frappe.db.count("Comment", {"reference_name": CUSTOMER_B})
		forbidden = self.lead("Live B", customer=CUSTOMER_B)  # saved by Administrator
		missing = self.lead_with_missing_customer("Live Missing")
		new_request()
		missing.flags.ignore_links = True
		missing.save(ignore_permissions=True)

		def results(lead, name):
			log = frappe.get_last_doc(
				"Automation Log", filters={"rule": rule.name, "reference_name": lead.name}
			)
			return [(row.status, (row.result or "").replace(name, "<name>")) for row in log.actions], log

		forbidden_results, log = results(forbidden, CUSTOMER_B)
		self.assertEqual([status for status, _result in forbidden_results], ["Failed", "Failed"])
		self.assertIn("may not read it", forbidden_results[0][1])
		self.assertSecretAbsent(log.as_dict(), SECRET_TAX)
		self.assertEqual(forbidden_results, results(missing, MISSING_CUSTOMER)[0], "missing = forbidden")
		self.assertEqual(frappe.db.get_value("Customer", CUSTOMER_B, "tax_id"), SECRET_TAX)
		self.assertEqual(frappe.db.count("Comment", {"reference_name": CUSTOMER_B}), comments_before)

		# The same rule written by a System Manager acts on the Customer.
		frappe.delete_doc("Workflow Rule", rule.name, force=True, ignore_permissions=True)
		self.linked_rule(SYSTEM_MANAGER, trigger="Save", conditions=only_tb2r_leads())
		self.lead("Live B Again", customer=CUSTOMER_B)
		self.assertEqual(frappe.db.get_value("Customer", CUSTOMER_B, "tax_id"), "TB2R-OVERWRITTEN")
		self.assertGreater(frappe.db.count("Comment", {"reference_name": CUSTOMER_B}), comments_before)


class TestRecipients(TrustRecordsCase):
	def sms_rule(self, user, trigger="Manual", **fields):
		return save_rule_as(
			user,
			f"{PREFIX} SMS",
			[
				{
					"action_type": "Send SMS",
					"sms_phone_field": "mobile_no",
					"sms_to_role": "System Manager",
					"sms_to_users": VIP,
					"sms_message": "Hello {{ doc.first_name }}",
				}
			],
			trigger=trigger,
			**fields,
		)

	def test_dry_run_of_send_sms_hides_numbers_the_asker_may_not_read(self):
		rule = self.sms_rule(MANAGER)
		lead = self.lead("Sms", mobile_no=LEAD_MOBILE)
		for answer in (
			as_user(MANAGER, api.dry_run_rule, rule.name, json.dumps([lead.name])),
			via_rest(MANAGER, "crm_automation.api.dry_run_rule", rule=rule.name, names=lead.name),
		):
			self.assertSecretAbsent(answer, SECRET_NUMBER, SECRET_MOBILE, "2345 6789")
			(action,) = answer["results"][0]["actions"]
			hidden = [r for r in action["recipients"] if r.get("hidden")]
			self.assertGreaterEqual(len(hidden), 2, "the VIP listed and by role: counted, not shown")
			self.assertIn("hidden", action["summary"])
			# The lead's own number, which the manager may read, is shown.
			self.assertIn("+79123456789", action["summary"])
		shown = as_user(SYSTEM_MANAGER, api.dry_run_rule, rule.name, json.dumps([lead.name]))
		self.assertIn(SECRET_NUMBER, frappe.as_json(shown))

	def test_a_live_sms_reaches_the_role_but_never_writes_a_hidden_number(self):
		from frappe.core.doctype.sms_settings import sms_settings as frappe_sms

		from crm_automation.actions.sms import deliver_sms

		enqueued, sent = [], []
		self.enterContext(patch("frappe.enqueue", side_effect=lambda *a, **kw: enqueued.append(kw)))
		self.enterContext(
			patch.object(
				frappe_sms, "send_sms", side_effect=lambda numbers, message, **kw: sent.extend(numbers)
			)
		)
		rule = self.sms_rule(MANAGER, trigger="New", conditions=only_tb2r_leads())
		lead = self.lead("Live Sms", mobile_no=LEAD_MOBILE)
		log = frappe.get_last_doc("Automation Log", filters={"rule": rule.name, "reference_name": lead.name})
		self.assertSecretAbsent(log.as_dict(), SECRET_NUMBER, SECRET_MOBILE)
		deliver_sms(log.name)
		self.assertIn(SECRET_NUMBER, sent, "delivered to the role, as Frappe's Notification would")
		self.assertIn("+79123456789", sent)
		log.reload()
		self.assertSecretAbsent(log.as_dict(), SECRET_NUMBER, SECRET_MOBILE)
		self.assertTrue(any("number hidden" in (row.result or "") for row in log.actions))

		# A rule running as a System Manager logs the numbers it may read.
		frappe.delete_doc("Workflow Rule", rule.name, force=True, ignore_permissions=True)
		rule = self.sms_rule(SYSTEM_MANAGER, trigger="New", conditions=only_tb2r_leads())
		lead = self.lead("Live Sms Admin", mobile_no=LEAD_MOBILE)
		log = frappe.get_last_doc("Automation Log", filters={"rule": rule.name, "reference_name": lead.name})
		self.assertIn(SECRET_NUMBER, frappe.as_json(log.as_dict()))

	def test_email_addresses_the_user_may_not_read_are_counted_not_shown(self):
		actions = [
			{
				"action_type": "Send Email",
				"to_role": "System Manager",
				"subject": "Hi {{ doc.first_name }}",
				"message": "Hello",
			}
		]
		rule = save_rule_as(MANAGER, f"{PREFIX} Email", actions)
		lead = self.lead("Email")
		answer = as_user(MANAGER, api.dry_run_rule, rule.name, json.dumps([lead.name]))
		self.assertSecretAbsent(answer, PRIVATE_EMAIL)
		(action,) = answer["results"][0]["actions"]
		self.assertGreaterEqual(action["hidden_recipients"], 1)
		self.assertIn(SYSTEM_MANAGER, action["recipients"], "an address that is the user's id is shown")
		shown = as_user(SYSTEM_MANAGER, api.dry_run_rule, rule.name, json.dumps([lead.name]))
		self.assertIn(PRIVATE_EMAIL, frappe.as_json(shown))

		# Live: sent to the private address, which the log of the manager's rule does not name.
		frappe.delete_doc("Workflow Rule", rule.name, force=True, ignore_permissions=True)
		rule = save_rule_as(MANAGER, f"{PREFIX} Email", actions, trigger="New", conditions=only_tb2r_leads())
		lead = self.lead("Live Email")
		log = frappe.get_last_doc("Automation Log", filters={"rule": rule.name, "reference_name": lead.name})
		self.assertEqual(log.actions[0].status, "Success", log.actions[0].result)
		self.assertSecretAbsent(log.as_dict(), PRIVATE_EMAIL)
		self.assertIn("hidden", log.actions[0].result)
		self.assertTrue(
			frappe.db.exists("Email Queue Recipient", {"recipient": PRIVATE_EMAIL}),
			"the e-mail still reaches the role",
		)


class TestPendingSteps(TrustRecordsCase):
	def setUp(self):
		super().setUp()
		frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": f"{PREFIX} Follow Up",
				"document_type": "Lead",
				"trigger": "New",
				"enabled": 1,
				"conditions": only_tb2r_leads(),
				"steps": [
					{"step_name": "Remind", "wait_type": "Duration", "wait_amount": 24, "wait_unit": "Hours"}
				],
				"actions": [{"action_type": "Add Comment", "message": "reminder", "step": "Remind"}],
			}
		).insert(ignore_permissions=True)
		clear_rule_cache()
		self.forbidden = self.lead("Steps B", territory=TERRITORY_B)
		self.readable = self.lead("Steps A", territory=TERRITORY_A)

	def step_of(self, lead):
		return frappe.get_all(
			sequences.STEP_DOCTYPE,
			filters={"reference_doctype": "Lead", "reference_name": lead.name},
			fields=["name", "status"],
		)[0]

	def test_pending_steps_answer_the_same_for_a_missing_and_a_forbidden_lead(self):
		from crm_automation.sequence_panel import get_pending_steps

		self.assertSameRefusal(
			self.refusal(MANAGER, get_pending_steps, "Lead", self.forbidden.name),
			self.refusal(MANAGER, get_pending_steps, "Lead", MISSING_LEAD),
			self.forbidden.name,
			MISSING_LEAD,
		)
		with self.assertRaises(frappe.PermissionError):
			via_rest(
				MANAGER,
				"crm_automation.sequence_panel.get_pending_steps",
				doctype="Lead",
				name=self.forbidden.name,
			)
		(row,) = as_user(MANAGER, get_pending_steps, "Lead", self.readable.name)
		self.assertTrue(row.can_control)
		self.assertEqual(len(as_user(SYSTEM_MANAGER, get_pending_steps, "Lead", self.forbidden.name)), 1)

	def test_a_rule_manager_cannot_skip_or_cancel_the_steps_of_a_lead_they_cannot_read(self):
		from crm_automation.sequence_panel import cancel_step, skip_step

		step = self.step_of(self.forbidden)
		for function in (cancel_step, skip_step):
			with self.subTest(function=function.__name__):
				self.assertSameRefusal(
					self.refusal(MANAGER, function, step.name),
					self.refusal(MANAGER, function, MISSING_STEP),
					step.name,
					MISSING_STEP,
				)
				with self.assertRaises(frappe.PermissionError):
					via_rest(MANAGER, f"crm_automation.sequence_panel.{function.__name__}", name=step.name)
		self.assertEqual(self.step_of(self.forbidden).status, "Pending", "not cancelled, not skipped")
		# Nor through the records themselves: the step is not listed or readable.
		self.assertEqual(
			as_user(
				MANAGER,
				frappe.get_list,
				sequences.STEP_DOCTYPE,
				filters={"reference_name": self.forbidden.name},
			),
			[],
		)
		with self.assertRaises(frappe.PermissionError):
			via_rest(MANAGER, "frappe.client.get", doctype=sequences.STEP_DOCTYPE, name=step.name)
		# The manager may cancel on the lead they read, and a System Manager on the other.
		self.assertEqual(as_user(MANAGER, cancel_step, self.step_of(self.readable).name), "Cancelled")
		self.assertEqual(as_user(SYSTEM_MANAGER, cancel_step, step.name), "Cancelled")
		self.assertEqual(self.step_of(self.forbidden).status, "Cancelled")


class TestCallersNames(TrustRecordsCase):
	def test_dry_run_and_replay_of_a_rule_answer_the_same_for_missing_and_forbidden(self):
		from crm_automation.dry_run import dry_run

		lead = self.lead("Rule Names")
		missing_rule = f"{PREFIX} No Such Rule"
		with self.assertRaises(frappe.PermissionError) as caught:
			as_user(SALES, dry_run, missing_rule, names=[lead.name], log=False)
		self.assertIn("may not read it", str(caught.exception))
		self.assertSameRefusal(
			self.refusal(MANAGER, api.replay_rule, missing_rule, days=1),
			self.refusal(MANAGER, api.replay_rule, f"{missing_rule} Two", days=1),
			missing_rule,
			f"{missing_rule} Two",
		)

	def test_retry_of_a_log_about_a_forbidden_lead_is_refused_like_a_missing_log(self):
		from crm_automation.crm_automation.doctype.automation_log.automation_log import make_log

		lead = self.lead("Retry B", territory=TERRITORY_B)
		log = make_log(
			rule_type="Workflow Rule",
			rule=f"{PREFIX} Retry",
			trigger="Save",
			event="on_update",
			doc=lead,
			outcome="Failed",
			reason="x",
			results=[{"action_type": "Add Comment", "status": "Failed", "result": "x"}],
		)
		self.assertSameRefusal(
			self.refusal(MANAGER, api.retry_failed_actions, log),
			self.refusal(MANAGER, api.retry_failed_actions, "tb2r-no-such-log"),
			log,
			"tb2r-no-such-log",
		)
		for function in (
			api.get_automation_history,
			api.get_escalation_status,
			api.get_applicable_automations,
		):
			with self.subTest(function=function.__name__):
				self.assertSameRefusal(
					self.refusal(MANAGER, function, "Lead", lead.name),
					self.refusal(MANAGER, function, "Lead", MISSING_LEAD),
					lead.name,
					MISSING_LEAD,
				)


class TestPacksRunAs(TrustRecordsCase):
	def pack(self, name, message="hello", **item):
		return {
			"format": "crm_automation.pack",
			"version": 1,
			"name": "TB2R pack",
			"workflow_rules": [
				{
					"rule_name": name,
					"document_type": "Lead",
					"trigger": "New",
					"enabled": 0,
					"actions": [{"action_type": "Add Comment", "message": message}],
					**item,
				}
			],
		}

	def test_a_packs_run_as_is_never_imported_the_importer_runs_it(self):
		from crm_automation.packs import export_pack, import_pack

		name = f"{PREFIX} Pack"
		pack = self.pack(name, run_as="Administrator", owner="Administrator")
		report = as_user(MANAGER, import_pack, pack)
		self.assertEqual(report["problems"], [])
		self.assertEqual(frappe.db.get_value("Workflow Rule", name, ["run_as", "owner"]), (MANAGER, MANAGER))

		# Imported again, changed, by a System Manager whose pack names the manager: the importer.
		changed = self.pack(name, message="changed", run_as=MANAGER)
		report = as_user(SYSTEM_MANAGER, import_pack, changed)
		self.assertEqual(report["problems"], [])
		self.assertEqual(frappe.db.get_value("Workflow Rule", name, "run_as"), SYSTEM_MANAGER)

		# Changed again by the manager, naming the System Manager: the manager runs it now.
		again = self.pack(name, message="again", run_as=SYSTEM_MANAGER)
		self.assertEqual(as_user(MANAGER, import_pack, again)["problems"], [])
		self.assertEqual(frappe.db.get_value("Workflow Rule", name, "run_as"), MANAGER)

		exported = export_pack({"workflow_rules": [name]})["workflow_rules"][0]
		self.assertNotIn("run_as", exported)
		self.assertNotIn("owner", exported)

	def test_a_pack_row_cannot_take_over_another_rules_row(self):
		from crm_automation.packs import import_pack

		victim = save_rule_as(
			SYSTEM_MANAGER, f"{PREFIX} Victim", [{"action_type": "Add Comment", "message": "v"}]
		)
		row_name = victim.actions[0].name
		pack = self.pack(f"{PREFIX} Thief")
		pack["workflow_rules"][0]["actions"][0]["name"] = row_name
		self.assertEqual(as_user(MANAGER, import_pack, pack)["problems"], [])
		self.assertEqual(frappe.db.get_value("Workflow Rule Action", row_name, "parent"), victim.name)
		self.assertEqual(frappe.db.get_value("Workflow Rule Action", row_name, "message"), "v")


class TestSenders(TrustRecordsCase):
	def test_alerts_todos_and_assignments_come_from_the_rules_run_as_user(self):
		rule = save_rule_as(
			MANAGER,
			f"{PREFIX} Senders",
			[
				{
					"action_type": "System Notification",
					"to_users": SALES,
					"subject": "Look at {{ doc.name }}",
				},
				{"action_type": "Create ToDo", "to_users": SALES, "message": "Call back"},
				{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": KEY_ACCOUNT},
			],
			trigger="New",
			conditions=only_tb2r_leads(),
		)
		# Saved by another user than the rule's author: the sender is still the author.
		lead = as_user(SALES, self.lead, "Senders")
		log = frappe.get_last_doc("Automation Log", filters={"rule": rule.name, "reference_name": lead.name})
		self.assertEqual(
			[row.status for row in log.actions], ["Success"] * 3, [r.result for r in log.actions]
		)
		alerts = frappe.get_all(
			"Notification Log",
			filters={"document_type": "Lead", "document_name": lead.name},
			fields=["for_user", "type", "from_user"],
		)
		self.assertIn({"for_user": SALES, "type": "Alert", "from_user": MANAGER}, alerts)
		self.assertIn({"for_user": KEY_ACCOUNT, "type": "Assignment", "from_user": MANAGER}, alerts)
		todos = frappe.get_all(
			"ToDo",
			filters={"reference_type": "Lead", "reference_name": lead.name},
			fields=["allocated_to", "assigned_by"],
			order_by="allocated_to asc",
		)
		self.assertEqual(
			[(t.allocated_to, t.assigned_by) for t in todos], [(KEY_ACCOUNT, MANAGER), (SALES, MANAGER)]
		)

	def test_the_health_alert_of_a_failing_rule_comes_from_its_run_as_user(self):
		rule = save_rule_as(
			MANAGER,
			f"{PREFIX} Failing",
			[{"action_type": "Add Comment", "target_link_field": "customer", "message": "x"}],
			trigger="Save",
			conditions=only_tb2r_leads(),
		)
		self.lead("Failing", customer=CUSTOMER_B)
		alert = frappe.get_all(
			"Notification Log",
			filters={"document_type": "Workflow Rule", "document_name": rule.name, "for_user": MANAGER},
			fields=["from_user", "subject"],
		)
		self.assertEqual([row.from_user for row in alert], [MANAGER])
		self.assertNotIn(SECRET_TAX, alert[0].subject)

	def test_escalation_alerts_come_from_the_policys_run_as_user(self):
		import datetime

		from frappe.utils import get_datetime

		from crm_automation.escalation import sweep

		frappe.set_user(MANAGER)
		try:
			frappe.get_doc(
				{
					"doctype": "Escalation Policy",
					"policy_name": f"{PREFIX} Idle",
					"document_type": "Lead",
					"enabled": 1,
					"clock_start": "Date Field",
					"start_field": "modified",
					"conditions": only_tb2r_leads(),
					"levels": [
						{
							"level": 1,
							"after": 1,
							"unit": "Hours",
							"action_type": "System Notification",
							"to_users": SALES,
							"subject": "{{ doc.name }} idle",
						}
					],
				}
			).insert()
		finally:
			frappe.set_user("Administrator")
		clear_policy_cache()
		lead = self.lead("Idle")
		sweep(get_datetime(lead.modified) + datetime.timedelta(hours=1, minutes=1))
		alerts = frappe.get_all(
			"Notification Log",
			filters={"document_type": "Lead", "document_name": lead.name, "for_user": SALES},
			pluck="from_user",
		)
		self.assertEqual(alerts, [MANAGER])
