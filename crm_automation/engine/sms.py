"""Send SMS: the compile check of the action and the number rules, shared by the site and offline.

Recipients come from up to four sources, each optional, at least one required:

* ``sms_phone_field``: a phone field of the document (fieldtype Phone, Data with options Phone, or
  a mobile/phone field such as ``mobile_no``);
* ``sms_contact_of``: the mobile number of the primary Contact linked (Dynamic Link) to this
  document (``This Document``) or to the document in a Link field (``customer``,
  ``party_name[Customer]``);
* ``sms_to_users``: users, one per line, whose User mobile number is used;
* ``sms_to_role``: every enabled user with that role.

The text is ``sms_message``, a template rendered in the read-only sandbox. Numbers are normalised
(``normalize_number``) and a missing or invalid number is skipped with its reason, never sent.
"""

import re

from .fieldtypes import TEXT, describe_value, kind_of
from .i18n import _
from .linked_paths import LinkedPathError, follow_link

SEND_SMS = "Send SMS"
CONTACT_OF_SELF = "This Document"
MAX_MESSAGE_LENGTH = 1000
_NUMBER_RE = re.compile(r"^\+?[0-9]{6,15}$")
_STRIPPED = re.compile(r"[\s\-().]")
_PHONE_NAME_RE = re.compile(r"(^|_)(mobile|phone|cell)(_|$)")


def normalize_number(raw):
	"""(number, None) for a number that can be sent, else (None, reason). Spaces, dashes, dots and
	parentheses are dropped and a leading + kept: "+7 (912) 345-67-89" → "+79123456789"."""
	if raw is None or not str(raw).strip():
		return None, _("no number")
	text = str(raw).strip()
	number = _STRIPPED.sub("", text)
	if number.startswith("00"):
		number = "+" + number[2:]
	if not _NUMBER_RE.match(number):
		reason = _("{0} is not a phone number (6 to 15 digits, optionally after +)")
		return None, reason.format(describe_value(text))
	return number, None


def is_phone_field(fieldname, field):
	"""A field that holds a phone number: Phone, Data with options Phone, or a text field named
	like mobile_no / phone / contact_mobile."""
	if not field:
		return False
	fieldtype = field.get("fieldtype")
	if fieldtype == "Phone" or (fieldtype == "Data" and field.get("options") == "Phone"):
		return True
	return (
		kind_of(fieldtype) == TEXT
		and fieldtype not in ("Link", "Dynamic Link")
		and bool(_PHONE_NAME_RE.search(fieldname or ""))
	)


def phone_fields(fields):
	return sorted(name for name, field in fields.items() if is_phone_field(name, field))


def _split(value):
	if not value:
		return []
	if isinstance(value, list | tuple):
		return [str(v).strip() for v in value if str(v).strip()]
	return [item.strip() for item in re.split(r"[\n,]", str(value)) if item.strip()]


def check_send_sms(action, fields, get_fields, rule, path, problems):
	"""The Send SMS compile check (registered in workflow._ACTION_CHECKS)."""
	params = {
		"phone_field": action.get("sms_phone_field") or None,
		"contact_of": None,
		"users": _split(action.get("sms_to_users")),
		"role": action.get("sms_to_role") or None,
		"message": action.get("sms_message") or "",
	}
	if params["phone_field"] and not is_phone_field(params["phone_field"], fields.get(params["phone_field"])):
		problems.add(
			f"{path}.sms_phone_field",
			_("{0} is not a phone or mobile number field of the document").format(
				describe_value(params["phone_field"])
			),
			params["phone_field"],
			params["phone_field"],
		)
	contact_of = (action.get("sms_contact_of") or "").strip()
	if contact_of:
		params["contact_of"] = _contact_source(
			contact_of, fields, get_fields, f"{path}.sms_contact_of", problems
		)
	for user in params["users"]:
		if "@" not in user and user != "Administrator":
			problems.add(
				f"{path}.sms_to_users", _("{0} is not a user id").format(describe_value(user)), value=user
			)
	if not (params["phone_field"] or contact_of or params["users"] or params["role"]):
		problems.add(path, _("choose at least one SMS recipient (phone field, contact, users or role)"))
	message = params["message"]
	if not message.strip():
		problems.add(f"{path}.sms_message", _("an SMS needs a text"))
	elif len(message) > MAX_MESSAGE_LENGTH:
		problems.add(
			f"{path}.sms_message", _("the SMS text is longer than {0} characters").format(MAX_MESSAGE_LENGTH)
		)
	return params


def _contact_source(contact_of, fields, get_fields, path, problems):
	if contact_of == CONTACT_OF_SELF:
		return {"fieldname": None, "doctype": None, "type_field": None}
	match = re.match(r"^([A-Za-z0-9_]+)(?:\[([^\[\]]+)\])?$", contact_of)
	if not match:
		problems.add(
			path,
			_("{0} is not {1} or a Link field").format(describe_value(contact_of), CONTACT_OF_SELF),
			value=contact_of,
		)
		return None
	try:
		# Only the hop matters here; the linked doctype's fields are not read.
		hop, _linked_fields = follow_link(
			match.group(1), match.group(2), fields, get_fields or _any_doctype, contact_of
		)
	except LinkedPathError as error:
		problems.add(path, str(error), match.group(1), contact_of)
		return None
	return hop.as_dict()


def _any_doctype(doctype):
	return {}
