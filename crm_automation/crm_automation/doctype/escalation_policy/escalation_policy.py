# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import json

import frappe
from frappe import _
from frappe.model.document import Document

from crm_automation.actions.sms import validate_sms_actions
from crm_automation.engine import RuleError
from crm_automation.engine.describe import describe_action
from crm_automation.engine.i18n import translating
from crm_automation.escalation import clear_policy_cache, compile_policy_doc, holidays_of
from crm_automation.runtime.workflow_rules import EXCLUDED_DOCTYPES, get_fields
from crm_automation.trust.save_checks import (
	check_action_rights,
	check_readable_fields,
	check_run_as_and_target,
	check_templates,
	condition_reads,
)

_TABLE_LABELS = {"levels": "Levels", "working_hours": "Working Hours"}


class EscalationPolicy(Document):
	def validate(self):
		self.validate_document_type()
		self.validate_run_as()
		self.validate_holiday_list()
		self.normalize_conditions()
		self.validate_policy()
		self.validate_templates()
		self.validate_field_reads()
		self.validate_action_rights()
		self.validate_sms()
		self.set_summaries()

	def onload(self):
		# The stored level summaries speak the language of whoever saved the policy; the form
		# speaks the reader's.
		if self.document_type and frappe.db.exists("DocType", self.document_type):
			self.set_summaries()

	def on_update(self):
		clear_policy_cache()

	def on_trash(self):
		clear_policy_cache()
		frappe.db.delete("Escalation State", {"policy": self.name})

	def validate_sms(self):
		if self.enabled:
			validate_sms_actions(self.levels)

	def validate_document_type(self):
		meta = frappe.get_meta(self.document_type)
		if self.document_type in EXCLUDED_DOCTYPES or meta.istable or meta.issingle:
			frappe.throw(_("Escalation Policies cannot watch {0}").format(frappe.bold(self.document_type)))

	def validate_run_as(self):
		check_run_as_and_target(self, _("Escalation Policies"))

	def validate_templates(self):
		check_templates(self.levels, self.meta.get_label("levels"), self.run_as, self.document_type)

	def validate_field_reads(self):
		"""Conditions and clock fields read only what the run-as user may read (field_access.py)."""
		compiled = compile_policy_doc(self)
		for fieldname, condition in (
			("conditions", compiled.condition),
			("stop_conditions", compiled.stop_condition),
		):
			where = _(self.meta.get_label(fieldname), context=self.doctype)
			check_readable_fields(self.document_type, condition_reads(condition), self.run_as, where)
		for fieldname in ("start_field", "pause_field"):
			if self.get(fieldname):
				where = _(self.meta.get_label(fieldname), context=self.doctype)
				check_readable_fields(self.document_type, {self.get(fieldname)}, self.run_as, where)

	def validate_action_rights(self):
		check_action_rights(self.levels, self.document_type, self.run_as, self.meta.get_label("levels"))

	def validate_holiday_list(self):
		if self.calendar_mode == "Working Hours" and self.holiday_list and holidays_of(self.holiday_list) is None:
			frappe.throw(_("Holiday List {0} does not exist").format(frappe.bold(self.holiday_list)))

	def normalize_conditions(self):
		for fieldname in ("conditions", "stop_conditions"):
			value = self.get(fieldname)
			if value and isinstance(value, str):
				try:
					self.set(fieldname, json.dumps(json.loads(value), indent=1, ensure_ascii=False))
				except ValueError:
					frappe.throw(_("{0} is not valid JSON").format(frappe.bold(self.meta.get_label(fieldname))))

	def validate_policy(self):
		try:
			with translating(_):  # the engine's problems in the reader's language
				compile_policy_doc(self)
		except RuleError as error:
			frappe.throw(
				[self.describe_problem(problem) for problem in error.problems],
				title=_("Invalid Escalation Policy"),
				as_list=True,
			)

	def describe_problem(self, problem):
		table, _sep, rest = (problem.path or "").partition("[")
		if table in _TABLE_LABELS and rest:
			index = rest.partition("]")[0]
			where = _("{0}, row {1}").format(_(_TABLE_LABELS[table]), int(index) + 1)
			return f"{frappe.bold(where)}: {problem.message}"
		label = _(self.meta.get_label(table), context=self.doctype) if table else ""
		return f"{frappe.bold(label or problem.path)}: {problem.message}" if problem.path else problem.message

	def set_summaries(self):
		fields = get_fields(self.document_type)
		for row in self.levels:
			if row.action_type == "Reassign":
				target = row.to_users or row.to_role or row.user_group or "?"
				row.action_summary = _("reassign to {0}").format(target)
			else:
				with translating(_):  # the engine's words in the reader's language
					row.action_summary = describe_action(row.as_dict(), fields)
