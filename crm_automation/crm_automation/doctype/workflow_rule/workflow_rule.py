# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import json
import re

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import now_datetime

from crm_automation.actions.availability import validate_assign_fallbacks
from crm_automation.actions.send_windows import check_window as check_send_window
from crm_automation.actions.sms import validate_sms_actions
from crm_automation.actions.webhooks import validate_webhook_actions
from crm_automation.engine import RuleError, compile_workflow_rule, describe_cycle, find_cycles
from crm_automation.engine.expressions import ExpressionError, check_expression, reads_in_expression
from crm_automation.engine.i18n import translating
from crm_automation.engine.workflow import ASSIGN, TRIGGER_TIME, TRIGGER_WEBHOOK, split_list
from crm_automation.runtime.inbound_webhooks import CREDENTIALS_FLAG
from crm_automation.runtime.inbound_webhooks import check_rule_settings as check_inbound_webhook_settings
from crm_automation.runtime.rule_sentences import action_sentence, condition_sentence, rule_sentence
from crm_automation.runtime.schedule_runs import set_next_moment
from crm_automation.runtime.workflow_rules import (
	EXCLUDED_DOCTYPES,
	clear_rule_cache,
	enabled_compiled_rules,
	expression_holds,
	get_fields,
	get_fields_if_doctype,
	parse_conditions,
	rule_as_dict,
)
from crm_automation.sequences.steps import describe_steps
from crm_automation.setup.time_indexes import ensure_indexes_after_commit
from crm_automation.trust.run_as_reads import check_constant_reads, check_linked_reads
from crm_automation.trust.save_checks import (
	check_action_rights,
	check_expression_reads,
	check_run_as_and_target,
	check_templates,
	check_workflow_rule_reads,
)
from crm_automation.versions.snapshots import delete_versions, record_version

_PATH_RE = re.compile(r"^(actions|branches|steps)\[(\d+)\]\.?(.*)$")
_CHILD_DOCTYPES = {
	"actions": "Workflow Rule Action",
	"branches": "Workflow Rule Branch",
	"steps": "Workflow Rule Step",
}
# Actions whose "Users" are user ids (Send Email also takes plain addresses there).
USER_ACTIONS = (ASSIGN, "System Notification", "Create ToDo")


class WorkflowRule(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		from crm_automation.crm_automation.doctype.workflow_rule_action.workflow_rule_action import (
			WorkflowRuleAction,
		)
		from crm_automation.crm_automation.doctype.workflow_rule_branch.workflow_rule_branch import (
			WorkflowRuleBranch,
		)

		actions: DF.Table[WorkflowRuleAction]
		branches: DF.Table[WorkflowRuleBranch]
		condition_expression: DF.Code | None
		conditions: DF.JSON | None
		consecutive_failures: DF.Int
		description: DF.SmallText | None
		disabled_reason: DF.SmallText | None
		document_type: DF.Link
		enabled: DF.Check
		fire_mode: DF.Literal["Every Time", "Once per Document", "Each Time Condition Becomes True"]
		from_value: DF.Data | None
		minutes_saved: DF.Float
		priority: DF.Int
		rule_name: DF.Data
		run_as: DF.Link | None
		time_direction: DF.Literal["Before", "After"]
		time_field: DF.Literal[None]
		time_offset: DF.Int
		time_unit: DF.Literal["Minutes", "Hours", "Days"]
		to_value: DF.Data | None
		trigger: DF.Literal[
			"New", "Save", "Value Change", "Submit", "Cancel", "Delete", "Validate", "Time", "Manual"
		]
		trigger_field: DF.Literal[None]
	# end: auto-generated types

	def validate(self):
		self.validate_document_type()
		self.validate_run_as()
		self.normalize_conditions()
		self.validate_rule()
		self.validate_schedule()
		self.validate_steps()
		self.validate_templates()
		self.validate_condition_expression()
		self.validate_linked_reads()
		self.validate_field_reads()
		self.validate_action_rights()
		self.validate_users()
		self.validate_assign_fallbacks()
		self.validate_webhooks()
		self.validate_inbound_webhook()
		self.validate_sms()
		self.validate_send_windows()
		self.set_summaries()
		self.reset_health_when_enabled()

	def onload(self):
		"""The row summaries (actions, branches, steps) in the reader's language: the stored ones
		speak the language of whoever saved the rule. A rule that no longer compiles (a field gone
		from its doctype) keeps its stored words; its next save names the problem."""
		fields = get_fields_if_doctype(self.document_type)
		if fields is None:
			return
		try:
			self.set_summaries()
			if self.steps:
				with translating(_):
					compiled = compile_workflow_rule(rule_as_dict(self), fields, get_fields_if_doctype)
					describe_steps(self, compiled)
		except (RuleError, ValueError):
			pass

	def on_update(self):
		self.warn_about_loops()
		self.index_time_field()
		# The save moved this rule's modified stamp: other processes recompile this rule only.
		clear_rule_cache(only_changed_rules=True)
		record_version(self)

	def on_trash(self):
		clear_rule_cache(only_changed_rules=True)
		delete_versions(self.name)

	def validate_document_type(self):
		meta = frappe.get_meta(self.document_type)
		if self.document_type in EXCLUDED_DOCTYPES or meta.istable or meta.issingle:
			frappe.throw(
				_("Workflow Rules cannot run on {0}").format(frappe.bold(self.document_type)),
				title=_("Invalid Document Type"),
			)
		if self.trigger in ("Submit", "Cancel") and not meta.is_submittable:
			frappe.throw(
				_("{0} is not submittable, so the trigger {1} never happens").format(
					frappe.bold(_(self.document_type)), frappe.bold(_(self.trigger, context="Workflow Rule"))
				)
			)

	def validate_run_as(self):
		check_run_as_and_target(self, _("Workflow Rules"))

	def validate_action_rights(self):
		check_action_rights(self.actions, self.document_type, self.run_as, self.meta.get_label("actions"))

	def normalize_conditions(self):
		"""Store condition JSON as the desk's JSON control shows it, so opening a rule does not mark
		it as changed."""
		for row in [self, *self.branches]:
			if row.conditions and isinstance(row.conditions, str):
				try:
					row.conditions = json.dumps(json.loads(row.conditions), indent=1, ensure_ascii=False)
				except ValueError:
					pass  # validate_rule reports it with the field's name

	def validate_rule(self):
		try:
			with translating(_):  # the engine's problems in the reader's language
				self._compiled = compile_workflow_rule(
					rule_as_dict(self), get_fields(self.document_type), get_fields_if_doctype
				)
		except RuleError as error:
			frappe.throw(
				[self.describe_problem(problem) for problem in error.problems],
				title=_("Invalid Workflow Rule"),
				as_list=True,
			)
		except ValueError as error:  # conditions that are not JSON
			frappe.throw(_("Conditions are not valid JSON: {0}").format(frappe.bold(str(error))))

	def validate_schedule(self):
		"""A Schedule rule's fields (each wrong one named with its value) and its next moment."""
		try:
			with translating(_):
				set_next_moment(self, now_datetime())
		except RuleError as error:
			frappe.throw(
				[self.describe_problem(problem) for problem in error.problems],
				title=_("Invalid Schedule"),
				as_list=True,
			)

	def describe_problem(self, problem):
		"""'actions[2].url: ...' → 'Actions, row 3, URL: ...', the way the desk labels things."""
		match = _PATH_RE.match(problem.path or "")
		if not match:
			label = (
				_(self.meta.get_label(problem.path.split(".")[0]), context=self.doctype)
				if problem.path
				else ""
			)
			return (
				f"{frappe.bold(label or problem.path)}: {problem.message}"
				if problem.path
				else problem.message
			)
		table, index, rest = match.group(1), int(match.group(2)), match.group(3)
		child_doctype = _CHILD_DOCTYPES[table]
		fieldname = rest.split(".")[0].split("[")[0] if rest else ""
		label = frappe.get_meta(child_doctype).get_label(fieldname) if fieldname else ""
		where = _("{0}, row {1}").format(_(self.meta.get_label(table)), index + 1)
		if label:
			where = _("{0}, {1}").format(where, _(label, context=child_doctype))
		return f"{frappe.bold(where)}: {problem.message}"

	def validate_steps(self):
		"""Follow-up steps were checked with the rule; here each gets its wait in words."""
		with translating(_):  # the waits in the saver's language; onload speaks the reader's
			describe_steps(self, self._compiled)

	def validate_templates(self):
		check_templates(self.actions, self.meta.get_label("actions"), self.run_as, self.document_type)

	def validate_condition_expression(self):
		"""Check the advanced condition's syntax and names, then test-run it on an empty document so an
		unknown field is found now and not on a user's save. Errors that only come from the sample's
		empty values (None.lower()) are the data's, not the expression's: at run time they fail the
		run, logged."""
		expression = (self.condition_expression or "").strip()
		if not expression:
			return
		try:
			with translating(_):  # the engine's reason in the reader's language
				check_expression(expression)
		except ExpressionError as error:
			self.throw_condition_error(expression, error.first.message)
		known = set(get_fields(self.document_type)) | set(frappe.model.default_fields)
		for fieldname in re.findall(r"\b(?:old_)?doc\.([a-zA-Z_]\w*)\b(?!\s*\()", expression):
			if fieldname not in known:
				frappe.throw(
					_("Advanced Condition: {0} has no field {1}").format(
						frappe.bold(self.document_type), frappe.bold(fieldname)
					),
					title=_("Invalid Condition"),
				)
		check_constant_reads(reads_in_expression(expression), self.run_as, _("Advanced Condition"))
		check_expression_reads(self.document_type, expression, self.run_as, _("Advanced Condition"))
		try:
			expression_holds(expression, frappe.new_doc(self.document_type), None, self)
		except ExpressionError:
			pass

	def validate_linked_reads(self):
		check_linked_reads(self._compiled.linked_paths, self.document_type, self.run_as, _("Conditions"))

	def validate_field_reads(self):
		"""A rule sees only the fields its run-as user may read: one that names another is refused
		now, rather than finding the field absent on every run."""
		check_workflow_rule_reads(self, self._compiled)

	def throw_condition_error(self, expression, reason):
		if reason.startswith(_("uses {0}, which is not available (use doc, old_doc, {1})").split("{0}")[0]):
			frappe.throw(_("Advanced Condition {0}").format(reason), title=_("Invalid Condition"))
		frappe.throw(
			_("Advanced Condition {0} does not run: {1}").format(frappe.bold(expression), reason),
			title=_("Invalid Condition"),
		)

	def validate_users(self):
		for action in self.actions:
			if action.action_type not in USER_ACTIONS:
				continue
			for user in split_list(action.to_users):
				enabled = frappe.db.get_value("User", user, "enabled")
				if enabled is None:
					frappe.throw(
						_("Actions, row {0}: user {1} does not exist").format(action.idx, frappe.bold(user)),
						title=_("Invalid User"),
					)
				if not enabled:
					frappe.throw(
						_("Actions, row {0}: user {1} is disabled").format(action.idx, frappe.bold(user)),
						title=_("Invalid User"),
					)

	def validate_assign_fallbacks(self):
		validate_assign_fallbacks(self.actions)

	def set_summaries(self):
		fields = get_fields(self.document_type)
		for branch in self.branches:
			branch.condition_summary = condition_sentence(
				parse_conditions(branch.conditions), fields, self.document_type
			)
		for action in self.actions:
			action.action_summary = action_sentence(action.as_dict(), fields, self.document_type)

	def reset_health_when_enabled(self):
		if self.enabled and not self.is_new() and self.has_value_changed("enabled"):
			self.consecutive_failures = 0
			self.disabled_reason = None

	def warn_about_loops(self):
		if not self.enabled:
			return
		# The other rules as this process last compiled them: a save among thousands compiles one.
		others = enabled_compiled_rules(skip=self.name)
		rules = [self._compiled, *(rule for name, rule in others.items() if name != self.name)]
		cycles = find_cycles(rules, through=self.name)
		if cycles:
			frappe.msgprint(
				[
					_("These rules can trigger each other in a loop: {0}").format(describe_cycle(c))
					for c in cycles
				],
				title=_("Possible Automation Loop"),
				indicator="orange",
				as_list=True,
			)
		self.flags.loop_cycles = cycles

	def index_time_field(self):
		# The 5-minute sweep selects due documents by this field; without an index it would scan them all.
		# Adding one commits (DDL), so it waits until this save (or a whole pack import) has committed.
		if self.enabled and self.trigger == TRIGGER_TIME and self.time_field:
			ensure_indexes_after_commit()

	def validate_webhooks(self):
		with translating(_):  # the address rules' reasons in the reader's language
			validate_webhook_actions(self)

	def validate_inbound_webhook(self):
		self.keep_webhook_credentials()
		if self.trigger == TRIGGER_WEBHOOK:
			check_inbound_webhook_settings(self)

	def keep_webhook_credentials(self):
		"""The URL's token hash changes only through generate / rotate / revoke (api/inbound_webhooks):
		a hash copied from another rule by an edit, REST or a duplicate would take that rule's calls."""
		if self.flags.get(CREDENTIALS_FLAG):
			return
		stored = None
		if not self.is_new():
			stored = frappe.db.get_value(
				"Workflow Rule", self.name, ["webhook_token_hash", "webhook_token_hint"], as_dict=True
			)
		self.webhook_token_hash = stored.webhook_token_hash if stored else None
		self.webhook_token_hint = stored.webhook_token_hint if stored else None

	def validate_sms(self):
		if self.enabled:
			validate_sms_actions(self.actions)

	def validate_send_windows(self):
		"""Send Only Within (the rule's and each step's) names a Working Hours calendar."""
		check_send_window(self.send_window_policy, _(self.meta.get_label("send_window_policy")))
		step_label = _(frappe.get_meta("Workflow Rule Step").get_label("send_window_policy"))
		for step in self.steps or []:
			check_send_window(step.send_window_policy, _("Step {0}: {1}").format(step.idx, step_label))

	@frappe.whitelist()
	def get_summary(self):
		return rule_sentence(rule_as_dict(self), get_fields(self.document_type))
