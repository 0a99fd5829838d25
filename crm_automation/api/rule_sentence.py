"""The Workflow Rule sentence for the rule form (runtime/rule_sentences.py words it)."""

import json

import frappe

from crm_automation.runtime.rule_sentences import rule_sentence
from crm_automation.runtime.workflow_rules import get_fields_if_doctype, rule_as_dict


@frappe.whitelist()
def get_rule_sentence(doc: str | dict):
	"""The sentence of a Workflow Rule as its form holds it now, unsaved edits included. Unlike a
	document method call it sends nothing back to sync, so rows added while it runs stay."""
	frappe.has_permission("Workflow Rule", "read", throw=True)
	values = json.loads(doc) if isinstance(doc, str) else doc
	rule = frappe.get_doc({**values, "doctype": "Workflow Rule"})
	fields = get_fields_if_doctype(rule.document_type)
	if fields is None or not rule.trigger:
		return ""
	try:
		rule_dict = rule_as_dict(rule)
	except ValueError:  # conditions that are not JSON: the save names them
		return ""
	return rule_sentence(rule_dict, fields)
