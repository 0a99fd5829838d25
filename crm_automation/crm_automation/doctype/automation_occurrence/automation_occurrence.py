# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

import hashlib

import frappe
from frappe.model.document import Document


class AutomationOccurrence(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		occurrence_key: DF.Data
		reference_doctype: DF.Link | None
		reference_name: DF.DynamicLink | None
		rule: DF.DynamicLink | None
		rule_type: DF.Link | None
	# end: auto-generated types

	pass


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
