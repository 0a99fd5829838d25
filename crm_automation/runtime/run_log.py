"""The run log and occurrence claims: an Automation Log for each run, and the Automation Occurrence
that makes "once per document" hold when two workers race. The doctype controllers re-export these."""

import hashlib
import json

import frappe
from frappe.model import table_fields

from crm_automation.trust.field_access import hidden_fields
from crm_automation.trust.roles import is_system_manager
from crm_automation.trust.run_as import run_as_of


def occurrence_key(rule_type, rule, doctype, name, what):
	raw = "\x1f".join(str(part) for part in (rule_type, rule, doctype, name, what))
	return hashlib.sha1(raw.encode()).hexdigest()


def claim_occurrence(rule_type, rule, doctype, name, what):
	"""Record that (rule, document, what) happened; False if it already had. The unique index on
	occurrence_key makes this the arbiter when two workers race: the second insert waits for the
	first transaction and then fails as a duplicate."""
	key = occurrence_key(rule_type, rule, doctype, name, what)
	# A cheap early answer only: in a snapshot older than a rival's commit this says "not yet", and
	# then the unique index answers.
	if frappe.db.exists("Automation Occurrence", {"occurrence_key": key}):
		return False
	savepoint = "crm_automation_occurrence"
	messages_before = len(frappe.local.message_log)
	frappe.db.savepoint(savepoint)
	try:
		frappe.get_doc(
			{
				"doctype": "Automation Occurrence",
				"rule_type": rule_type,
				"rule": rule,
				"reference_doctype": doctype,
				"reference_name": name,
				"occurrence_key": key,
			}
		).insert(ignore_permissions=True, ignore_links=True)
	except (frappe.DuplicateEntryError, frappe.UniqueValidationError):
		frappe.db.rollback(save_point=savepoint)
		# Losing the race is the normal outcome, not the user's error ("must be unique").
		del frappe.local.message_log[messages_before:]
		return False
	return True


def make_log(
	*,
	rule_type,
	rule,
	trigger,
	event,
	doc,
	outcome,
	branch=None,
	reason=None,
	trace=(),
	results=(),
	duration_ms=0.0,
	minutes_saved=0.0,
	depth=0,
	error=None,
	run_as=None,
):
	"""Write one run's log. Its trace keeps no value of a field the rule's run-as user (`run_as`, or
	as the rule names it now) may not read: what a dry run evaluated as someone else included."""
	if trace:
		trace = readable_trace(trace, doc.doctype, run_as or _run_as_of(rule_type, rule))
	log = frappe.new_doc("Automation Log")
	log.update(
		{
			"rule_type": rule_type,
			"rule": rule,
			"trigger": trigger,
			"event": event,
			"reference_doctype": doc.doctype,
			"reference_name": doc.name,
			"outcome": outcome,
			"branch": branch,
			"reason": reason,
			"trace": json.dumps(trace, default=str, indent=1) if trace else None,
			"duration_ms": duration_ms,
			"minutes_saved": minutes_saved,
			"depth": depth,
			"error": error,
		}
	)
	for result in results:
		log.append("actions", {field: _action_value(result, field) for field in _ACTION_FIELDS})
	return write_log(log)


# What a run's result dict holds for each column of its Automation Log Action row.
_ACTION_FIELDS = (
	"action_type",
	"action_row",
	"status",
	"result",
	"value_field",
	"created_doctype",
	"created_name",
	"attempts",
	"minutes_saved",
	"response",
	"payload",
	# A deferred message (a sending window) waits in its Queued row until then.
	"next_attempt_on",
)


def _action_value(result, field):
	if field == "response":
		return result.get("error") or result.get("response")
	if field in ("attempts", "minutes_saved"):
		return result.get(field) or 0
	return result.get(field)


def write_log(log):
	"""The log and its action rows in one batch: a multi-row insert per table, whatever the number of
	actions, in the transaction of the run (so a log is never lost while its run's writes are kept,
	and never kept when they are rolled back). Document.insert would validate links, run hooks and
	write each row alone, for rows only the app writes; what it guarantees for them is kept: no
	markup in the texts (Frappe's own sanitising) and lengths that fit their columns."""
	stamp = frappe.utils.now()
	user = frappe.session.user
	log.name = frappe.generate_hash(length=10)
	rows = [log, *log.actions]
	for idx, row in enumerate(rows):
		row._sanitize_content()
		row._validate_length()
		row.update({"creation": stamp, "modified": stamp, "owner": user, "modified_by": user, "docstatus": 0})
		if idx:
			row.update({"name": frappe.generate_hash(length=10), "parent": log.name, "idx": idx})
			row.update({"parenttype": "Automation Log", "parentfield": "actions"})
	for doctype, batch in (("Automation Log", rows[:1]), ("Automation Log Action", rows[1:])):
		if batch:
			values = [row.get_valid_dict(convert_dates_to_str=True, ignore_nulls=True) for row in batch]
			fields = sorted({key for value in values for key in value})
			frappe.db.bulk_insert(doctype, fields, [[value.get(key) for key in fields] for value in values])
	return log.name


_RULE_TYPES = ("Workflow Rule", "Escalation Policy", "Lead Score Rule")


def _run_as_of(rule_type, rule):
	if rule_type not in _RULE_TYPES or not rule or not frappe.db.exists(rule_type, rule):
		return "Guest"  # reads no field above level 0
	return run_as_of(frappe.db.get_value(rule_type, rule, ["run_as", "owner"], as_dict=True))


def readable_trace(trace, doctype, user):
	"""The trace as `user` may read it: an entry on a field above that user's permission levels (its
	own, of a child row, along a linked path) keeps its test and result, not the values. A live run
	evaluated on the document as that user reads it, so this only holds the line for any caller
	that did not (a dry run evaluates as the system reads)."""
	if is_system_manager(user):
		return trace
	linked = any(isinstance(entry, dict) and "." in str(entry.get("field") or "") for entry in trace)
	if not linked and not hidden_fields(doctype, user):
		return trace
	shown = []
	for entry in trace:
		field = str(entry.get("field") or "") if isinstance(entry, dict) else ""
		if field and _hides(doctype, field.split("."), user):
			entry = {key: value for key, value in entry.items() if key not in ("actual", "before")}
		shown.append(entry)
	return shown


def _hides(doctype, segments, user):
	"""Whether `user` may not read the field `segments` names from `doctype` (a field, a child table's
	row field, or a linked path such as customer.territory or party_name[Customer].tax_id)."""
	hidden = hidden_fields(doctype, user)
	fieldname, _bracket, declared = segments[0].partition("[")
	if fieldname in hidden.own:
		return True
	if len(segments) == 1:
		return False
	df = frappe.get_meta(doctype).get_field(fieldname)
	if df is None:
		return False
	if df.fieldtype in table_fields:
		return hidden.hides(segments[1], fieldname)
	target = declared.rstrip("]") or (df.options if df.fieldtype == "Link" else None)
	if not target or not frappe.db.exists("DocType", target):
		return False
	return _hides(target, segments[1:], user)
