"""Two versions of a Workflow Rule replayed side by side over the documents created or modified in
the last N days: which documents each would have acted on, with what, and where they differ.

Each version is evaluated as a dry run evaluates a rule (dry_run._workflow): on the document as the
person asking may read it, its actions previewed and never carried out, the answer without values
they may not read, one run's budget per document. Nothing is written, not even a log entry."""

import frappe
from frappe import _
from frappe.utils import add_days, now_datetime

from crm_automation.dry_run import _workflow
from crm_automation.engine.budget import Overrun, within_run_budget
from crm_automation.engine.errors import RuleError
from crm_automation.engine.i18n import translating
from crm_automation.runtime.workflow_rules import compile_workflow_rule_doc
from crm_automation.trust.record_access import permitted_document, readable_names
from crm_automation.trust.run_as_reads import reading_as
from crm_automation.versions.revert import apply_snapshot, version_snapshot

MAX_COMPARED_DOCUMENTS = 2000
MAX_DAYS = 365


def compare_versions(rule_name, version_a, version_b=None, days=30):
	"""Version ``version_a`` against ``version_b`` (None: the rule as saved now) over the last
	``days`` days of the rule's documents, at most MAX_COMPARED_DOCUMENTS of them (the newest)."""
	rule = permitted_document("Workflow Rule", rule_name)
	days = min(max(int(days or 30), 1), MAX_DAYS)
	a = _version_rule(rule, version_a)
	b = _version_rule(rule, version_b) if version_b else rule
	for label, version in ((_("Version {0}").format(version_a), a), (_("Version {0}").format(version_b), b)):
		if version.document_type != rule.document_type:
			frappe.throw(
				_("{0} runs on {1}, the rule now on {2}: there are no documents to compare them on").format(
					label, frappe.bold(version.document_type), frappe.bold(rule.document_type)
				)
			)
	since = add_days(now_datetime(), -days)
	names = readable_names(
		rule.document_type,
		filters={"modified": (">=", since)},
		order_by="modified desc",
		limit=MAX_COMPARED_DOCUMENTS + 1,
	)
	rows = []
	with translating(_), reading_as(frappe.session.user):
		for name in names[:MAX_COMPARED_DOCUMENTS]:
			doc = frappe.get_doc(rule.document_type, name)
			rows.append(_side_by_side(doc, a, b))
	return {
		"rule": rule.name,
		"document_type": rule.document_type,
		"days": days,
		"version_a": int(version_a),
		"version_b": int(version_b) if version_b else None,
		"documents": len(rows),
		"capped": len(names) > MAX_COMPARED_DOCUMENTS,
		"max_documents": MAX_COMPARED_DOCUMENTS,
		"acted_on_by_a": sum(1 for row in rows if row["a"]["acts"]),
		"acted_on_by_b": sum(1 for row in rows if row["b"]["acts"]),
		"differ": [row["document"] for row in rows if row["differs"]],
		"rows": rows,
	}


def _version_rule(rule, version_no):
	"""An unsaved Workflow Rule with the version's content, run as the rule is now: the version says
	what the rule does, never whose rights it has."""
	version = frappe.get_doc(
		{"doctype": "Workflow Rule", "name": rule.name, "owner": rule.owner, "run_as": rule.run_as}
	)
	apply_snapshot(version, version_snapshot(rule.name, version_no))
	version.name, version.owner, version.run_as = rule.name, rule.owner, rule.run_as
	try:
		with translating(_):
			compile_workflow_rule_doc(version)
	except RuleError as error:
		problems = "; ".join(problem.message for problem in error.problems)
		frappe.throw(
			_("Version {0} can no longer run on this site: {1}").format(frappe.bold(version_no), problems)
		)
	return version


def _side_by_side(doc, a, b):
	first, second = _what_it_does(a, doc), _what_it_does(b, doc)
	differs = any(first[key] != second[key] for key in ("acts", "outcome", "branch", "actions"))
	return {"document": doc.name, "a": first, "b": second, "differs": differs}


def _what_it_does(rule, doc):
	messages_before = len(frappe.local.message_log)
	try:
		result = within_run_budget(_workflow, rule, doc, False)
	except (RuleError, Overrun, frappe.ValidationError) as error:
		# This document's failure, not the comparison's: no message for the whole request.
		del frappe.local.message_log[messages_before:]
		reason = frappe.utils.strip_html(str(error)) or error.__class__.__name__
		return {"acts": False, "outcome": _("Failed"), "reason": reason, "branch": None, "actions": []}
	return {
		"acts": result["outcome"] in ("Fired", "Rejected"),
		"outcome": result["outcome"],
		"reason": result.get("reason") or "",
		"branch": result.get("branch"),
		"actions": [action.get("summary") or action.get("type") for action in result.get("actions") or []],
	}
