"""The Workflow Rule sentence on the site: engine/describe.py's words, in the reader's language, with
what only the site knows (users' full names, labels of fields on linked documents)."""

import json

import frappe
from frappe import _

from crm_automation.engine.describe import describe_action, describe_condition, describe_rule, translating
from crm_automation.engine.workflow import split_list
from crm_automation.runtime.workflow_rules import get_fields_if_doctype, rule_as_dict

_USER_LIST_FIELDS = ("to_users", "sms_to_users")


def rule_sentence(rule_dict, fields):
	with translating(_):
		return describe_rule(rule_dict, fields, labels_for(rule_dict))


def action_sentence(action, fields, document_type=None, rule_dict=None):
	with translating(_):
		return describe_action(action, fields, labels_for(rule_dict or {"actions": [action]}), document_type)


def condition_sentence(tree, fields, document_type=None):
	with translating(_):
		return describe_condition(tree, fields, {"fields": _linked_labels(document_type, [tree])})


def labels_for(rule_dict):
	actions = rule_dict.get("actions") or []
	users = {
		user for action in actions for field in _USER_LIST_FIELDS for user in split_list(action.get(field))
	}
	trees = [rule_dict.get("conditions"), rule_dict.get("stop_conditions")]
	trees += [branch.get("conditions") for branch in rule_dict.get("branches") or []]
	for step in rule_dict.get("steps") or []:
		trees += [step.get("until_conditions"), step.get("step_conditions")]
	return {"users": full_names(users), "fields": _linked_labels(rule_dict.get("document_type"), trees)}


def full_names(users):
	if not users:
		return {}
	rows = frappe.get_all("User", filters={"name": ("in", list(users))}, fields=["name", "full_name"])
	return {row.name: row.full_name for row in rows if row.full_name}


def _linked_labels(document_type, trees):
	"""Labels of linked paths (customer.territory: Customer, then Territory), by walking the Link fields' doctypes."""
	paths = {path for tree in trees for path in _paths(tree) if "." in path}
	if not document_type or not paths or not frappe.db.exists("DocType", document_type):
		return {}
	return {path: label for path in paths if (label := _path_label(document_type, path))}


def _paths(tree):
	if not isinstance(tree, dict):
		return
	if "field" in tree:
		yield str(tree["field"])
	for child in tree.get("all") or tree.get("any") or []:
		yield from _paths(child)


def _path_label(doctype, path):
	labels = []
	for hop in path.split("."):
		# a party Dynamic Link names the doctype it goes through: party_name[Customer]
		fieldname, _bracket, party_type = hop.rstrip("]").partition("[")
		if not doctype or not frappe.db.exists("DocType", doctype):
			return None
		df = frappe.get_meta(doctype).get_field(fieldname)
		if not df:
			return None
		if party_type:
			labels.append(_("{0} ({1})").format(_(df.label or fieldname), _(party_type)))
			doctype = party_type
		else:
			labels.append(_(df.label or fieldname))
			doctype = df.options if df.fieldtype in ("Link", "Table", "Table MultiSelect") else None
	return " › ".join(labels)
