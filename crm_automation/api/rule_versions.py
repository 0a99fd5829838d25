"""Whitelisted methods of a Workflow Rule's History: its versions in words, revert to one, and two
versions replayed side by side. Each checks rights once, then delegates to crm_automation.versions."""

import frappe
from frappe import _
from frappe.utils import escape_html

from crm_automation.trust.record_access import permitted_document
from crm_automation.trust.roles import check_rule_manager
from crm_automation.versions.replay import compare_versions
from crm_automation.versions.revert import revert_to
from crm_automation.versions.snapshots import VERSION_DOCTYPE, parse_snapshot, sentences_between

MAX_LISTED_VERSIONS = 100


@frappe.whitelist()
def get_rule_versions(rule: str):
	"""The rule's versions, newest first, each with what changed from the one before in the reader's
	language: [{version_no, saved_by, saved_on, reverted_to, sentences, current}]."""
	check_rule_manager()
	doc = permitted_document("Workflow Rule", rule)
	rows = frappe.get_all(
		VERSION_DOCTYPE,
		filters={"rule": doc.name},
		fields=["name", "version_no", "saved_by", "saved_on", "reverted_to", "summary", "snapshot"],
		order_by="version_no desc",
		limit=MAX_LISTED_VERSIONS + 1,
	)
	out = []
	for index, row in enumerate(rows[:MAX_LISTED_VERSIONS]):
		previous = rows[index + 1] if index + 1 < len(rows) else None
		if previous and previous.version_no == row.version_no - 1:
			sentences = sentences_between(parse_snapshot(previous.snapshot), parse_snapshot(row.snapshot))
		else:
			sentences = [row.summary] if row.summary else []  # the first, or older than the list goes
		out.append(
			{
				"name": row.name,
				"version_no": row.version_no,
				"saved_by": row.saved_by,
				"saved_by_name": frappe.utils.get_fullname(row.saved_by) if row.saved_by else "",
				"saved_on": row.saved_on,
				"reverted_to": row.reverted_to or None,
				"sentences": sentences,
				"current": index == 0,
			}
		)
	return {"versions": out, "more": len(rows) > MAX_LISTED_VERSIONS}


@frappe.whitelist(methods=["POST"])
def revert_rule(rule: str, version_no: int):
	"""Save the rule with the content of one of its versions, as the person asking: a new version."""
	check_rule_manager()
	doc = permitted_document("Workflow Rule", rule, ("read", "write"))
	number = revert_to(doc.name, _version_number(version_no))
	if number is None:
		frappe.msgprint(_("The rule already is version {0}: nothing was saved").format(int(version_no)))
	return {"version_no": number}


@frappe.whitelist()
def compare_rule_versions(rule: str, version_a: int, version_b: int | None = None, days: int = 30):
	"""Versions A and B (B empty: the rule as saved now) replayed over the last N days of documents,
	side by side; nothing is written. Documents and values only as the person asking may read them."""
	check_rule_manager()
	permitted_document("Workflow Rule", rule)
	version_b = _version_number(version_b) if version_b not in (None, "", 0, "0") else None
	return compare_versions(rule, _version_number(version_a), version_b, _whole(days, "days"))


def _version_number(value):
	return _whole(value, "version_no")


def _whole(value, name):
	try:
		number = int(value)
	except (TypeError, ValueError):
		number = 0
	if number < 1:
		frappe.throw(
			_("{0} must be a whole number of at least 1, not {1}").format(
				name, frappe.bold(escape_html(str(value)))
			)
		)
	return number
