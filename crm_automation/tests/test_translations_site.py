"""Frappe serves the app's zh and ru catalogues (translations/<lang>.csv): to Python's _(), to the
desk's boot messages (the JS strings), with the doctype context the form uses, and in validation
errors and the rule sentence."""

import frappe
import frappe.translate
from frappe import _
from frappe.tests.utils import FrappeTestCase

from crm_automation import translation_sources
from crm_automation.crm_automation.doctype.workflow_rule.workflow_rule import get_fields, rule_as_dict
from crm_automation.runtime.rule_sentences import rule_sentence


class TestTranslationsServed(FrappeTestCase):
	def setUp(self):
		self.addCleanup(self.set_lang, frappe.local.lang)
		frappe.translate.clear_cache()
		self.addCleanup(frappe.translate.clear_cache)

	def set_lang(self, lang):
		frappe.local.lang = lang

	def test_doctype_names_in_chinese_and_russian(self):
		self.set_lang("zh")
		self.assertEqual(_("Workflow Rule"), "工作流规则")
		self.assertEqual(_("Lead"), "线索")  # ours over ERPNext's 商机, as the desk should read
		self.set_lang("ru")
		self.assertEqual(_("Workflow Rule"), "Правило рабочего процесса")
		self.assertEqual(_("Escalation Policy"), "Политика эскалации")
		self.set_lang("en")
		self.assertEqual(_("Workflow Rule"), "Workflow Rule")

	def test_field_option_with_doctype_context(self):
		"""The form translates options with the doctype as context: Manual is "by hand" on a rule,
		while the plain word keeps ERPNext's meaning (a handbook) elsewhere."""
		self.set_lang("zh")
		self.assertEqual(_("Manual", context="Workflow Rule"), "手动")
		self.set_lang("ru")
		self.assertEqual(_("Manual", context="Workflow Rule"), "Вручную")
		self.assertEqual(_("Branch", context="Workflow Rule Action"), "Ветвь")

	def test_validation_error_in_the_users_language(self):
		for lang, expected in (("zh", "不可提交"), ("ru", "нельзя утвердить")):
			with self.subTest(lang=lang):
				self.set_lang(lang)
				rule = frappe.get_doc(
					{
						"doctype": "Workflow Rule",
						"rule_name": "_Test Translations Submit Lead",
						"document_type": "Lead",
						"trigger": "Submit",
						"actions": [{"action_type": "Add Comment", "message": "x"}],
					}
				)
				with self.assertRaises(frappe.ValidationError) as caught:
					rule.insert()
				self.assertIn(expected, str(caught.exception))
				self.assertFalse(frappe.db.exists("Workflow Rule", "_Test Translations Submit Lead"))

	def test_rule_problem_from_the_engine_in_the_users_language(self):
		"""A condition value of the wrong type is refused by the engine, in the reader's language."""
		for lang, expected in (("zh", "不是数字"), ("ru", "не число"), ("en", "is not a number")):
			with self.subTest(lang=lang):
				self.set_lang(lang)
				rule = frappe.get_doc(
					{
						"doctype": "Workflow Rule",
						"rule_name": "_Test Translations Bad Value",
						"document_type": "Lead",
						"trigger": "New",
						"conditions": frappe.as_json(
							{"all": [{"field": "annual_revenue", "op": ">", "value": "abc"}]}
						),
						"actions": [{"action_type": "Add Comment", "message": "x"}],
					}
				)
				with self.assertRaises(frappe.ValidationError) as caught:
					rule.insert()
				self.assertIn(expected, str(caught.exception))

	def test_template_error_in_the_users_language(self):
		for lang, expected in (
			("zh", "Jinja模板无法编译（模板无法解析"),
			("ru", "шаблон Jinja не компилируется (шаблон не разбирается"),
		):
			with self.subTest(lang=lang):
				self.set_lang(lang)
				rule = frappe.get_doc(
					{
						"doctype": "Workflow Rule",
						"rule_name": "_Test Translations Bad Template",
						"document_type": "Lead",
						"trigger": "New",
						"actions": [{"action_type": "Add Comment", "message": "Hello {{ doc.lead_name "}],
					}
				)
				with self.assertRaises(frappe.ValidationError) as caught:
					rule.insert()
				self.assertIn(expected, str(caught.exception))

	def test_problem_names_its_row_and_field_in_the_users_language(self):
		self.set_lang("zh")
		rule = frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": "_Test Translations Empty Email",
				"document_type": "Lead",
				"trigger": "New",
				"actions": [{"action_type": "Send Email", "to_owner": 1}],
			}
		)
		with self.assertRaises(frappe.ValidationError) as caught:
			rule.insert()
		self.assertIn("操作，第1行，邮件模板", str(caught.exception))
		self.assertIn("请选择邮件模板，或填写主题和消息", str(caught.exception))

	def test_rule_sentence_in_chinese_and_russian(self):
		rule = frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": "_Test Translations Sentence",
				"document_type": "Lead",
				"trigger": "New",
				"conditions": frappe.as_json({"all": [{"field": "unsubscribed", "op": "=", "value": 0}]}),
				"actions": [{"action_type": "Add Comment", "message": "x"}],
			}
		)
		expected = {
			"zh": "当线索被创建时，且已退订未勾选 → 添加评论",
			"ru": "Когда создан документ Лид и Отписался не отмечено → добавить комментарий",
			"en": "When a Lead is created and Unsubscribed is not checked → add a comment",
		}
		for lang, sentence in expected.items():
			with self.subTest(lang=lang):
				self.set_lang(lang)
				self.assertEqual(rule_sentence(rule_as_dict(rule), get_fields("Lead")), sentence)

	def test_desk_boot_messages_hold_the_js_strings(self):
		"""The desk's __() reads frappe._messages, which boot fills from get_all_translations."""
		for lang, expected in (("zh", "执行试运行"), ("ru", "Выполнить пробный запуск")):
			with self.subTest(lang=lang):
				self.set_lang(lang)
				messages = frappe.translate.get_messages_for_boot()
				self.assertEqual(messages.get("Run Dry Run"), expected)
				self.assertEqual(messages.get("Manual:Workflow Rule"), _("Manual", context="Workflow Rule"))
				ours = frappe.translate.get_translations_from_apps(lang, ["crm_automation"])
				self.assertEqual(
					ours.get("Which Automations Apply?"), messages.get("Which Automations Apply?")
				)

	def test_every_catalogue_row_is_served(self):
		"""Every string the extractor finds comes back translated from frappe._ (so no CSV row is lost
		to quoting, escaped newlines or HTML in the key)."""
		messages, _violations = translation_sources.collect()
		for lang in translation_sources.LANGUAGES:
			self.set_lang(lang)
			entries, _malformed = translation_sources.read_catalogue(lang)
			unserved = []
			for message in messages:
				if not translation_sources.has_entry(entries, message):
					continue  # punctuation-only templates have none, by design
				key = translation_sources.lookup_key(message.text)
				wanted = entries.get(f"{key}:{message.context}") or entries.get(key)
				if _(message.text, context=message.context) != wanted:
					unserved.append(message.text)
			self.assertFalse(unserved, f"{lang}: {sorted(set(unserved))[:20]}")


class TestMessagesInTheReadersLanguage(FrappeTestCase):
	"""Messages the engine and the address rules build, and the rows' summaries, read in the
	reader's language (issue 21): not English for a Chinese or Russian user."""

	def setUp(self):
		self.addCleanup(self.set_lang, frappe.local.lang)
		frappe.translate.clear_cache()
		self.addCleanup(frappe.translate.clear_cache)

	def set_lang(self, lang):
		frappe.local.lang = lang

	def refused(self, rule):
		with self.assertRaises(frappe.ValidationError) as caught:
			frappe.get_doc(
				{"doctype": "Workflow Rule", "document_type": "Lead", "trigger": "New", **rule}
			).insert()
		self.assertFalse(frappe.db.exists("Workflow Rule", rule["rule_name"]))
		return str(caught.exception)

	def test_recipient_field_that_holds_no_user(self):
		"""Create ToDo / Send Email to a field that holds no user (Number of Employees)."""
		expected = {
			"zh": ("不是存放用户的字段", "不是存放邮件地址或用户的字段"),
			"ru": ("не поле с пользователем", "не поле с адресом электронной почты"),
			"en": ("is not a field that holds a user", "is not a field that holds an email address or user"),
		}
		for lang, (todo, email) in expected.items():
			with self.subTest(lang=lang):
				self.set_lang(lang)
				message = self.refused(
					{
						"rule_name": "_Test Translations ToDo Field",
						"actions": [
							{"action_type": "Create ToDo", "to_field": "no_of_employees", "message": "x"}
						],
					}
				)
				self.assertIn(todo, message)
				self.assertIn('"no_of_employees"', message)
				message = self.refused(
					{
						"rule_name": "_Test Translations Email Field",
						"actions": [
							{
								"action_type": "Send Email",
								"to_field": "no_of_employees",
								"subject": "x",
								"message": "x",
							}
						],
					}
				)
				self.assertIn(email, message)

	def test_webhook_address_refused(self):
		"""The address rules (net_guard) speak the reader's language at save."""
		for lang, expected in (
			("zh", "127.0.0.1是环回地址；如需允许"),
			("ru", "127.0.0.1 — это адрес обратной петли (loopback); чтобы разрешить"),
			("en", "127.0.0.1 is a loopback address; add it to"),
		):
			with self.subTest(lang=lang):
				self.set_lang(lang)
				message = self.refused(
					{
						"rule_name": "_Test Translations Webhook",
						"actions": [{"action_type": "Webhook", "url": "http://127.0.0.1/hook"}],
					}
				)
				self.assertIn(expected, message)

	def test_row_summaries_follow_the_reader(self):
		"""Saved in English, the rule's action and step rows read in Chinese and Russian when the form
		loads (onload), while the stored words stay as saved."""
		self.set_lang("en")
		rule = frappe.get_doc(
			{
				"doctype": "Workflow Rule",
				"rule_name": "_Test Translations Summaries",
				"document_type": "Lead",
				"trigger": "Save",
				"enabled": 0,
				"steps": [
					{"step_name": "Chase", "wait_type": "Duration", "wait_amount": 24, "wait_unit": "Hours"}
				],
				"actions": [
					{"action_type": "Add Comment", "message": "x"},
					{"action_type": "Create ToDo", "step": "Chase", "to_owner": 1, "message": "Call"},
				],
			}
		).insert()
		self.addCleanup(frappe.delete_doc, "Workflow Rule", rule.name, force=True)
		expected = {
			"zh": (["添加评论", "为所有者创建待办事项"], ["等待24小时"]),
			"ru": (["добавить комментарий", "создать задачу (для: владелец)"], ["ждать 24 ч."]),
			"en": (["add a comment", "create a ToDo for the owner"], ["wait 24 hours"]),
		}
		for lang, (actions, waits) in expected.items():
			with self.subTest(lang=lang):
				self.set_lang(lang)
				doc = frappe.get_doc("Workflow Rule", rule.name)
				doc.run_method("onload")
				self.assertEqual([a.action_summary for a in doc.actions], actions)
				self.assertEqual([s.wait_summary for s in doc.steps], waits)
		stored = frappe.get_all(
			"Workflow Rule Action", filters={"parent": rule.name}, pluck="action_summary", order_by="idx"
		)
		self.assertEqual(stored, ["add a comment", "create a ToDo for the owner"])

	def test_operator_labels_with_their_own_context(self):
		"""The builder's operators: Frappe's "Like" (a thumbs-up) and "In" (ru: on a site) are other
		words; ours carry the context the desk asks with."""
		for lang, like, is_in in (("zh", "匹配", "属于"), ("ru", "похоже на", "входит в")):
			with self.subTest(lang=lang):
				self.set_lang(lang)
				self.assertEqual(_("Like", context="Condition Operator"), like)
				messages = frappe.translate.get_messages_for_boot()
				self.assertEqual(messages.get("In:Condition Operator"), is_in)
