# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import json

import frappe
from frappe import _
from frappe.model.document import Document

from crm_automation.engine import RuleError
from crm_automation.engine.describe import describe_condition
from crm_automation.engine.i18n import translating
from crm_automation.runtime.workflow_rules import get_fields, parse_conditions
from crm_automation.scoring import clear_score_cache, compile_score_rule_doc, enqueue_recompute
from crm_automation.trust.roles import check_rule_manager
from crm_automation.trust.save_checks import (
	check_field_rights,
	check_readable_fields,
	check_run_as_and_target,
	condition_reads,
)

_TABLE_LABELS = {"criteria": "Criteria", "activity_criteria": "Activity Criteria", "bands": "Bands"}


class LeadScoreRule(Document):
	def validate(self):
		self.validate_run_as()
		self.normalize_conditions()
		self.validate_rule()
		self.validate_field_reads()
		self.validate_band_fields()
		self.validate_one_rule_per_score_field()
		self.set_summaries()

	def onload(self):
		"""The criteria's summaries in the reader's language (the stored ones speak the saver's);
		criteria whose conditions are not JSON keep their stored words until the next save."""
		if not (self.document_type and frappe.db.exists("DocType", self.document_type)):
			return
		try:
			self.set_summaries()
		except ValueError:
			pass

	def on_update(self):
		clear_score_cache()
		if self.enabled:
			self.recompute_status = _("Recompute queued")
			self.db_set("recompute_status", self.recompute_status, update_modified=False)
			enqueue_recompute(self.name)

	def on_trash(self):
		clear_score_cache()

	def validate_run_as(self):
		check_run_as_and_target(self, _("Lead Score Rules"))

	def validate_field_reads(self):
		"""Criteria read only what the run-as user may read: a score must not tell a hidden value."""
		compiled = compile_score_rule_doc(self)
		for row, criterion in zip(self.criteria, compiled.criteria, strict=False):
			where = _("{0}, row {1}").format(_(self.meta.get_label("criteria")), row.idx)
			check_readable_fields(
				self.document_type, condition_reads(criterion.condition), self.run_as, where
			)

	def validate_band_fields(self):
		"""A band that sets a field writes the scored document: within the run-as user's rights."""
		for band in self.bands:
			if band.get("set_field"):
				where = _("{0}, row {1}").format(_(self.meta.get_label("bands")), band.idx)
				check_field_rights(self.document_type, band.set_field, self.run_as, where)

	def normalize_conditions(self):
		for row in self.criteria:
			if row.conditions and isinstance(row.conditions, str):
				try:
					row.conditions = json.dumps(json.loads(row.conditions), indent=1, ensure_ascii=False)
				except ValueError:
					pass

	def validate_rule(self):
		try:
			with translating(_):  # the engine's problems in the reader's language
				compile_score_rule_doc(self)
		except RuleError as error:
			frappe.throw(
				[self.describe_problem(problem) for problem in error.problems],
				title=_("Invalid Lead Score Rule"),
				as_list=True,
			)
		except ValueError as error:
			frappe.throw(_("Conditions are not valid JSON: {0}").format(frappe.bold(str(error))))

	def describe_problem(self, problem):
		table, _sep, rest = (problem.path or "").partition("[")
		if table in _TABLE_LABELS and rest:
			index, _close, field = rest.partition("]")
			return f"{frappe.bold(_('{0}, row {1}').format(_(_TABLE_LABELS[table]), int(index) + 1))}: {problem.message}"
		return f"{frappe.bold(problem.path)}: {problem.message}" if problem.path else problem.message

	def validate_one_rule_per_score_field(self):
		if not self.enabled:
			return
		other = frappe.db.get_value(
			"Lead Score Rule", {"enabled": 1, "document_type": self.document_type, "name": ("!=", self.name)}
		)
		if other:
			frappe.throw(
				_("{0} already writes the score of {1}; two enabled rules cannot write the same score field").format(
					frappe.bold(other), frappe.bold(self.document_type)
				),
				title=_("Score Field Taken"),
			)

	def set_summaries(self):
		fields = get_fields(self.document_type)
		with translating(_):  # the engine's words in the reader's language
			for row in self.criteria:
				row.condition_summary = describe_condition(parse_conditions(row.conditions), fields)

	@frappe.whitelist()
	def recompute_now(self):
		check_rule_manager()
		enqueue_recompute(self.name)
		return _("Recompute queued")
