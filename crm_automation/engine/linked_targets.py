"""Actions on a linked document: "the document in field X" instead of the document itself.

An action row names ``target_link_field``: a Link field of the document (``customer``) or a Dynamic
Link with its type (``party_name[Customer]``). Set Value, Add Comment, Add Tag, Assign, Create
ToDo and Webhook may take one; the action's own fields (the field to set, the user field to assign
from) are then checked against the linked document type, and the intent carries a ``target``.
"""

import re

from .conditions import with_standard_fields
from .fieldtypes import describe_value
from .i18n import _
from .linked_paths import LinkedPathError, follow_link, resolve_linked_path

LINKED_TARGET_FIELD = "target_link_field"
LINKED_TARGET_ACTIONS = ("Set Value", "Add Comment", "Add Tag", "Assign", "Create ToDo", "Webhook")
# Before the save the linked document would be changed for a save that may still be refused.
_BEFORE_SAVE_TRIGGERS = ("Validate",)
_TARGET_RE = re.compile(r"^([A-Za-z0-9_]+)(?:\[([^\[\]]+)\])?$")


def check_action_target(action, fields, get_fields, rule, path, problems):
	"""(fields the action is checked against, target or None); (None, None) when the target is
	refused (the problem is added)."""
	raw = (action.get(LINKED_TARGET_FIELD) or "").strip()
	if not raw:
		return fields, None
	where = f"{path}.{LINKED_TARGET_FIELD}"
	action_type = action.get("action_type")
	if action_type not in LINKED_TARGET_ACTIONS:
		problems.add(
			where,
			_("{0} acts on the document itself, not on a linked document").format(action_type),
			value=raw,
		)
		return None, None
	if rule.get("trigger") in _BEFORE_SAVE_TRIGGERS:
		problems.add(
			where,
			_("a linked document is changed only after the save (use Save, New or Submit, not Validate)"),
		)
		return None, None
	match = _TARGET_RE.match(raw)
	if not match:
		problems.add(
			where,
			_("{0} is not a Link field (e.g. customer or party_name[Customer])").format(describe_value(raw)),
			value=raw,
		)
		return None, None
	if get_fields is None:
		problems.add(where, _("actions on linked documents are not available here"), value=raw)
		return None, None
	try:
		hop, linked_fields = follow_link(match.group(1), match.group(2), fields, get_fields, raw)
	except LinkedPathError as error:
		problems.add(where, str(error), match.group(1), raw)
		return None, None
	target = {**hop.as_dict(), "label": (fields.get(hop.fieldname) or {}).get("label") or hop.fieldname}
	return with_standard_fields(linked_fields), target


def check_linked_user_field(fieldname, fields, get_fields, where, problems):
	"""Assign to "the user in field" through a link: ``customer.account_manager``. Returns the path
	(as a dict, carried by the intent) or None when refused (the problem is added)."""
	try:
		linked = resolve_linked_path(fieldname, fields, get_fields)
	except LinkedPathError as error:
		problems.add(where, str(error), fieldname, fieldname)
		return None
	field = linked.field
	if not (field["fieldtype"] == "Link" and field.get("options") == "User") and field["fieldtype"] != "Data":
		problems.add(
			where,
			_("{0} is not a field that holds a user").format(describe_value(fieldname)),
			fieldname,
			fieldname,
		)
		return None
	return linked.as_dict()
