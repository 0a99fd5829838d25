"""The Workflow Rule sentence on a site: users by full name, linked fields by label, row summaries
written on save, and every phrase through the site's translator."""

import json
from unittest.mock import patch

import frappe
from frappe.tests.utils import FrappeTestCase

ZHOU = "_test-sentence-zhou@example.com"
LI = "_test-sentence-li@example.com"


def make_user(email, first_name):
	if not frappe.db.exists("User", email):
		frappe.get_doc(
			{
				"doctype": "User",
				"email": email,
				"first_name": first_name,
				"send_welcome_email": 0,
				"roles": [{"role": "Sales User"}],
			}
		).insert(ignore_permissions=True)


def lead_rule(**values):
	return frappe.get_doc(
		{
			"doctype": "Workflow Rule",
			"rule_name": "_Test Sentence",
			"document_type": "Lead",
			"trigger": "New",
			"enabled": 0,
			**values,
		}
	)


class TestRuleSentence(FrappeTestCase):
	def setUp(self):
		frappe.set_user("Administrator")
		make_user(ZHOU, "Zhou")
		make_user(LI, "Li")

	def test_round_robin_names_users_by_full_name_and_email_names_its_template(self):
		rule = lead_rule(
			conditions=json.dumps({"all": [{"field": "unsubscribed", "op": "=", "value": 0}]}),
			actions=[
				{"action_type": "Assign", "to_users": f"{ZHOU}\n{LI}"},
				{"action_type": "Send Email", "subject": "Welcome (Exhibition)", "to_field": "email_id"},
			],
		)
		self.assertEqual(
			rule.get_summary(),
			"When a Lead is created and Unsubscribed is not checked → assign round robin to Zhou, Li, "
			"e-mail 'Welcome (Exhibition)' to the Lead's Email",
		)

	def test_row_summaries_are_written_on_save(self):
		rule = lead_rule(
			branches=[
				{
					"branch_name": "Fair",
					"conditions": json.dumps(
						{"all": [{"field": "source", "op": "=", "value": "Exhibition"}]}
					),
				},
				{"branch_name": "Rest", "is_else": 1},
			],
			actions=[
				{"action_type": "Assign", "to_users": ZHOU, "branch": "Fair"},
				{"action_type": "Add Comment", "message": "Hello", "branch": "Rest"},
			],
		)
		rule.insert()
		self.addCleanup(frappe.delete_doc, "Workflow Rule", rule.name, force=True)
		self.assertEqual(
			[a.action_summary for a in rule.actions], ["assign round robin to Zhou", "add a comment"]
		)
		self.assertEqual(rule.branches[0].condition_summary, "Source is Exhibition")
		self.assertEqual(
			rule.get_summary(),
			"When a Lead is created → if Source is Exhibition → assign round robin to Zhou; otherwise → add a comment",
		)

	def test_linked_fields_read_with_their_labels(self):
		from crm_automation.runtime.rule_sentences import labels_for

		labels = labels_for(
			{
				"document_type": "Opportunity",
				"conditions": {
					"all": [
						{"field": "party_name[Customer].customer_group", "op": "=", "value": "X"},
						{"field": "territory.parent_territory", "op": "is set"},
					]
				},
			}
		)
		self.assertEqual(
			labels["fields"],
			{
				"party_name[Customer].customer_group": "Party (Customer) › Customer Group",
				"territory.parent_territory": "Territory › Parent Territory",
			},
		)
		# a path that leads nowhere keeps its fieldname rather than failing
		labels = labels_for(
			{"document_type": "Lead", "conditions": {"all": [{"field": "nope.x", "op": "is set"}]}}
		)
		self.assertEqual(labels["fields"], {})

	def test_every_phrase_goes_through_the_site_translator(self):
		catalogue = {
			"When a {0} is created": "Когда создан {0}",
			"Lead": "Лид",
			"{0} → {1}": "{0} → {1}",
			"assign round robin to {0}": "назначить по очереди: {0}",
		}
		rule = lead_rule(actions=[{"action_type": "Assign", "to_users": f"{ZHOU}\n{LI}"}])
		with patch(
			"crm_automation.runtime.rule_sentences._", side_effect=lambda message: catalogue.get(message, message)
		):
			self.assertEqual(rule.get_summary(), "Когда создан Лид → назначить по очереди: Zhou, Li")
		self.assertEqual(rule.get_summary(), "When a Lead is created → assign round robin to Zhou, Li")


class TestRuleSentenceForTheForm(FrappeTestCase):
	"""What the form calls while the rule is edited (unsaved, half filled)."""

	def tearDown(self):
		frappe.set_user("Administrator")

	def test_unsaved_rule_is_described_from_what_the_form_sends(self):
		from crm_automation.api.rule_sentence import get_rule_sentence

		values = {
			"rule_name": "_Test Unsaved",
			"document_type": "Lead",
			"trigger": "New",
			"conditions": json.dumps({"all": [{"field": "unsubscribed", "op": "=", "value": 1}]}),
			"actions": [{"action_type": "Add Tag", "tag": "vip"}],
		}
		self.assertEqual(
			get_rule_sentence(json.dumps(values)),
			"When a Lead is created and Unsubscribed is checked → tag vip",
		)
		self.assertFalse(frappe.db.exists("Workflow Rule", "_Test Unsaved"))

	def test_half_filled_and_broken_forms_read_as_nothing_yet(self):
		from crm_automation.api.rule_sentence import get_rule_sentence

		self.assertEqual(
			get_rule_sentence(json.dumps({"document_type": "No Such Doctype", "trigger": "New"})), ""
		)
		self.assertEqual(get_rule_sentence(json.dumps({"document_type": "Lead"})), "")
		broken = {"document_type": "Lead", "trigger": "New", "conditions": "{not json"}
		self.assertEqual(get_rule_sentence(json.dumps(broken)), "")
		row_without_type = {"document_type": "Lead", "trigger": "New", "actions": [{"branch": "x"}]}
		self.assertEqual(get_rule_sentence(json.dumps(row_without_type)), "When a Lead is created → nothing")

	def test_guest_may_not_read_rules(self):
		from crm_automation.api.rule_sentence import get_rule_sentence

		frappe.set_user("Guest")
		with self.assertRaises(frappe.PermissionError):
			get_rule_sentence(json.dumps({"document_type": "Lead", "trigger": "New"}))
