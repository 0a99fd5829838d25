"""Actions on the document in a Link field of the document ("set the Customer's group").

The engine marks such an intent with a ``target`` (engine/linked_targets.py). The target is loaded
here, checked against the run-as user's rights like the document itself would be, and the action
runs on it. Set Value saves the linked document in full, so its own validations and rules run;
the runner's depth limit and "once per document per request" hold across that save.
"""

import frappe
from frappe import _
from frappe.utils import escape_html

from crm_automation.actions.common import ActionError, default_minutes
from crm_automation.actions.records import checked_change, value_for
from crm_automation.engine import workflow as wf
from crm_automation.engine.linked_paths import Hop, LinkedPath, fetch_linked_values
from crm_automation.runtime.linked_values import load_linked
from crm_automation.trust import field_writes
from crm_automation.trust import run_as as permissions


class TargetSkipped(Exception):
	"""The document has nothing in the target field: the action has nothing to act on."""


def resolve_target(intent, doc, user):
	"""The document the intent acts on: ``doc`` itself, or the document linked in its field when
	``user`` (the run-as user in a run, the person asking in a dry run) may read it. A linked
	document that is missing and one ``user`` may not read fail alike, naming neither reason."""
	target = intent.get("target")
	if not target:
		return doc
	label = _(target.get("label") or target["fieldname"])
	if target.get("type_field") and doc.get(target["type_field"]) != target["doctype"]:
		raise TargetSkipped(
			_("{0} does not link to a {1} here ({2})").format(
				frappe.bold(label), _(target["doctype"]), doc.get(target["type_field"]) or _("empty")
			)
		)
	name = doc.get(target["fieldname"])
	if not name:
		raise TargetSkipped(
			_("{0} is empty: no linked {1} to act on").format(frappe.bold(label), _(target["doctype"]))
		)
	target_doc = readable_record(target["doctype"], name, user)
	if target_doc is None:
		raise ActionError(
			_("{0} {1} (in {2}) was not found, or {3} may not read it").format(
				_(target["doctype"]), frappe.bold(escape_html(str(name))), label, frappe.bold(user)
			)
		)
	return target_doc


def readable_record(doctype, name, user):
	"""The record if ``user`` may read it (roles, User Permissions, shares), else None: a missing and a
	forbidden record look the same."""
	if not isinstance(name, str) or not name or not frappe.db.exists(doctype, name):
		return None
	record = frappe.get_doc(doctype, name)
	if not frappe.has_permission(doctype, "read", doc=record, user=user):
		return None
	return record


def set_linked_value(intent, doc, before, rule):
	"""Set Value on a linked document: a full save as the run-as user would make it, so the linked
	document's validations and its own rules run."""
	user = permissions.run_as_of(rule)
	field_writes.check_field_writable(doc, intent["field"], user)
	value = value_for(intent, doc, None)
	old = doc.get(intent["field"])
	# The save's own checks are the saver's; the link and the workflow transition must be allowed to
	# the run-as user.
	skipped = checked_change(doc, intent["field"], value, user)
	if skipped:
		return skipped
	doc.set(intent["field"], value)
	# The run-as user's rights were checked above; the user whose save set this off may have none.
	doc.flags.ignore_permissions = True
	doc.save()
	return {
		"result": _("{0}: {1} → {2}").format(intent["field"], old, value),
		"minutes_saved": default_minutes(wf.SET_VALUE),
	}


LINKED_HANDLERS = {wf.SET_VALUE: set_linked_value}


def describe_target(result, doc, target_doc):
	if target_doc is doc or not result.get("result"):
		return result
	result["result"] = _("{0} {1}: {2}").format(_(target_doc.doctype), target_doc.name, result["result"])
	return result


def preview_on_target(intent, doc, rule, preview):
	"""A dry run of an action on a linked document: the same preview, on the linked document, with
	nothing written."""
	try:
		target_doc = resolve_target(intent, doc, frappe.session.user)
	except (TargetSkipped, ActionError) as error:
		return {
			"type": intent["type"],
			"summary": _("skipped: {0}").format(frappe.utils.strip_html(str(error))),
		}
	out = preview({**intent, "target": None}, target_doc, rule)
	out["target"] = {"doctype": target_doc.doctype, "name": target_doc.name}
	out["summary"] = _("{0} {1}: {2}").format(
		_(target_doc.doctype), target_doc.name, out.get("summary") or ""
	)
	return out


def with_linked_inputs(intent, doc, reader):
	"""An Assign to the user in a linked field (``customer.account_manager``) becomes an Assign to
	that user, read now from the linked document: only through documents ``reader`` may read, so a
	missing and a forbidden one both leave nobody to assign."""
	path = intent.get("user_path")
	if not path:
		return intent
	linked = LinkedPath(
		path["path"], [Hop(**hop) for hop in path["hops"]], path["fieldname"], None, path["label"]
	)
	user = fetch_linked_values(doc.as_dict(), {linked.path: linked}, _loader_for(reader)).get(linked.path)
	if not user:
		raise TargetSkipped(_("{0} is empty: nobody to assign").format(frappe.bold(path["label"])))
	return {**intent, "assign_to_type": wf.ASSIGN_TO_USERS, "users": [user], "user_field": None}


def _loader_for(reader):
	def load(doctype, name, fieldnames):
		if readable_record(doctype, name, reader) is None:
			return None
		return load_linked(doctype, name, fieldnames)

	return load
