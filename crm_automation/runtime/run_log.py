"""The run log and occurrence claims: an Automation Log for each run, and the Automation Occurrence
that makes "once per document" hold when two workers race. The doctype controllers re-export these."""

import hashlib
import json

import frappe


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
):
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
		log.append(
			"actions",
			{
				"action_type": result.get("action_type"),
				"action_row": result.get("action_row"),
				"status": result.get("status"),
				"result": result.get("result"),
				"created_doctype": result.get("created_doctype"),
				"created_name": result.get("created_name"),
				"attempts": result.get("attempts") or 0,
				"minutes_saved": result.get("minutes_saved") or 0,
				"response": result.get("error") or result.get("response"),
				"payload": result.get("payload"),
			},
		)
	# The document may be a rejected or deleted one; the log must not fail on that link.
	log.flags.ignore_links = True
	log.insert(ignore_permissions=True)
	return log.name
