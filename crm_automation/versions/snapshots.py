"""A Workflow Rule's content as a snapshot, and a Workflow Rule Version written on each save that
changes it (the rule's on_update calls `record_version`).

A snapshot holds the rule's own fields and its rows, as a revert restores them, and nothing else:
not who made it or when (the version says), not its health or schedule state (the app's, not the
author's), not the words derived from it (summaries), and never a secret (Password fields, the
inbound webhook's token hash): a version is readable by every rule manager and outlives the secret."""

import datetime
import decimal
import json

import frappe
from frappe import _
from frappe.model import no_value_fields, numeric_fieldtypes
from frappe.utils import now_datetime

from crm_automation.crm_automation.doctype.workflow_rule_version.workflow_rule_version import WRITER_FLAG
from crm_automation.engine.i18n import translating
from crm_automation.engine.rule_diff import describe_changes, same
from crm_automation.runtime.rule_sentences import labels_for
from crm_automation.runtime.workflow_rules import get_fields_if_doctype

VERSION_DOCTYPE = "Workflow Rule Version"
# The app's state about a rule, and secrets: never in a snapshot, never restored.
NOT_CONTENT = frozenset(
	{
		"consecutive_failures",
		"disabled_reason",
		"webhook_token_hash",
		"webhook_token_hint",
		"webhook_secret",
		"schedule_last_moment",
		"schedule_next_moment",
		"action_summary",
		"condition_summary",
		"wait_summary",
		"last_assigned_user",
		"secret",
		"headers",
	}
)


def content_fields(meta):
	"""The fields of ``meta`` a snapshot holds: values an author sets, no Password field ever."""
	return [
		df
		for df in meta.fields
		if df.fieldtype not in no_value_fields
		and df.fieldtype != "Password"
		and df.fieldname not in NOT_CONTENT
	]


def snapshot_of(rule):
	"""The rule's content as plain JSON-able data: conditions as trees, rows as lists in order."""
	out = {df.fieldname: _plain(df, rule.get(df.fieldname)) for df in content_fields(rule.meta)}
	for table in rule.meta.get_table_fields():
		child_meta = frappe.get_meta(table.options)
		out[table.fieldname] = [
			{df.fieldname: _plain(df, row.get(df.fieldname)) for df in content_fields(child_meta)}
			for row in rule.get(table.fieldname) or []
		]
	return out


def _plain(df, value):
	# A number the form left empty reads back from the database as 0; a time keeps no fraction.
	if value is None and df.fieldtype in numeric_fieldtypes:
		return 0
	if df.fieldtype == "Time" and isinstance(value, str):
		return value.split(".")[0]
	if df.fieldtype == "JSON" and isinstance(value, str):
		try:
			return json.loads(value) if value.strip() else None
		except ValueError:
			return value
	if isinstance(value, datetime.timedelta):
		seconds = int(value.total_seconds())
		return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
	if isinstance(value, datetime.date | datetime.datetime):
		return str(value)
	if isinstance(value, decimal.Decimal):  # a Float or Currency as the database returns it
		return float(value)
	return value


def latest_version(rule_name):
	"""(version_no, snapshot) of the rule's newest version, or None."""
	row = frappe.db.get_value(
		VERSION_DOCTYPE,
		{"rule": rule_name},
		["version_no", "snapshot"],
		order_by="version_no desc",
		as_dict=True,
	)
	return (row.version_no, parse_snapshot(row.snapshot)) if row else None


def parse_snapshot(text):
	if isinstance(text, dict):
		return text
	return json.loads(text) if text else {}


def record_version(rule):
	"""on_update of a Workflow Rule: a new version when the content changed (or there is none yet).
	A rule saved before versions were kept gets its earlier content as version 1 first, from the
	copy Frappe loaded before this save."""
	snapshot = snapshot_of(rule)
	latest = latest_version(rule.name)
	if latest and same(latest[1], snapshot):
		return None
	reverted_to = rule.flags.get("crm_automation_reverted_to")
	if latest is None:
		before = None if rule.flags.in_insert else rule.get_doc_before_save()
		if before is not None and not same(snapshot_of(before), snapshot):
			earlier = snapshot_of(before)
			_insert(
				rule.name, 1, earlier, _("the rule as it was before versions were kept"), before.modified_by
			)
			latest = (1, earlier)
		else:
			first = _("created") if rule.flags.in_insert else _("the rule as it was before versions were kept")
			return _insert(rule.name, 1, snapshot, first)
	number, previous = latest
	summary = "; ".join(sentences_between(previous, snapshot)) or _("saved")
	if reverted_to:
		summary = _("reverted to v{0}: {1}").format(reverted_to, summary)
	return _insert(rule.name, number + 1, snapshot, summary, reverted_to=reverted_to)


def _insert(rule_name, number, snapshot, summary, saved_by=None, reverted_to=None):
	version = frappe.get_doc(
		{
			"doctype": VERSION_DOCTYPE,
			"rule": rule_name,
			"version_no": number,
			"snapshot": json.dumps(snapshot, indent=1, ensure_ascii=False, sort_keys=True, default=str),
			"summary": summary,
			"saved_by": saved_by or frappe.session.user,
			"saved_on": now_datetime(),
			"reverted_to": reverted_to or 0,
		}
	)
	version.flags[WRITER_FLAG] = True
	# The rule is being saved and the saver is signed in; an earlier saver may since have been deleted.
	version.flags.ignore_links = True
	version.insert(ignore_permissions=True)
	return version


def delete_versions(rule_name):
	"""on_trash of a Workflow Rule: its versions go with it (they are its history, nothing else's)."""
	frappe.db.delete(VERSION_DOCTYPE, {"rule": rule_name})


def sentences_between(old, new):
	"""What changed from snapshot ``old`` to ``new``, in the reader's language, with the labels only
	the site knows (fields, users, linked paths)."""
	document_type = new.get("document_type") or old.get("document_type")
	fields = get_fields_if_doctype(document_type) or {}
	with translating(_):
		return describe_changes(old, new, fields, diff_labels(old, new))


def diff_labels(old, new):
	labels = labels_for(old)
	more = labels_for(new)
	for key in ("users", "fields"):
		labels[key] = {**labels.get(key, {}), **more.get(key, {})}
	rule_meta = frappe.get_meta("Workflow Rule")
	labels["settings"] = {df.fieldname: _(df.label) for df in content_fields(rule_meta) if df.label}
	rows = {}
	for table in rule_meta.get_table_fields():
		for df in content_fields(frappe.get_meta(table.options)):
			if df.label:
				rows.setdefault(df.fieldname, _(df.label))
	labels["rows"] = rows
	return labels
