"""Inbound webhooks, the pure part: the body's size and shape, its signature, the value at a payload
path, and the `payload` that conditions and templates of a Webhook Received rule see.

Shared by the site (runtime/inbound_webhooks.py) and the offline simulator, so both read a payload
the same way. No Frappe import.
"""

import base64
import hashlib
import hmac
import json
import re

from .errors import ProblemCollector
from .i18n import _
from .payload import current_payload, payload_context
from .template_check import check_template
from .templates import TemplateError

# The payload's context is re-exported: callers import everything inbound from here.
__all__ = ["current_payload", "payload_context"]

MAX_BODY_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_PATH_LENGTH = 200
# Our own header (hex, optionally "sha256=" first, as actions/webhooks.py signs) and Frappe's
# Webhook convention (base64 of the same HMAC-SHA256 of the raw body).
SIGNATURE_HEADER = "X-CRM-Automation-Signature"
FRAPPE_SIGNATURE_HEADER = "X-Frappe-Webhook-Signature"
# The sender's id of one delivery, in the order they are looked for: a repeat of an id is accepted
# and does nothing (exactly once per delivery id).
DELIVERY_HEADERS = ("X-Webhook-Delivery-Id", "X-CRM-Automation-Delivery", "Idempotency-Key")
MAX_DELIVERY_ID_LENGTH = 200
_SEGMENT = r"[A-Za-z0-9_\-]+"
_PATH_RE = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT})*$")


class PayloadError(ValueError):
	"""A body that is not what an inbound webhook takes; the message says why (no body in it)."""


def parse_payload(raw):
	"""The body as plain data (a JSON object: dicts, lists, text, numbers, booleans, None).
	Raises PayloadError when it is too large, not UTF-8 JSON, not an object or nested too deeply."""
	if len(raw) > MAX_BODY_BYTES:
		raise PayloadError(_("the body is larger than {0} bytes").format(MAX_BODY_BYTES))
	try:
		payload = json.loads(raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw)
	except (UnicodeDecodeError, ValueError) as error:
		raise PayloadError(_("the body is not valid JSON ({0})").format(error.__class__.__name__)) from None
	except RecursionError:
		raise PayloadError(_("the body is nested more than {0} levels deep").format(MAX_DEPTH)) from None
	if not isinstance(payload, dict):
		raise PayloadError(_("the body must be a JSON object"))
	if _depth(payload) > MAX_DEPTH:
		raise PayloadError(_("the body is nested more than {0} levels deep").format(MAX_DEPTH))
	return payload


def plain_copy(payload):
	"""A copy of the payload that is plain JSON data whatever it was handed as (a queued job's
	arguments): nothing in it can be called, nothing shared with the caller."""
	return json.loads(json.dumps(payload, default=str))


def _depth(value):
	deepest, stack = 0, [(value, 1)]
	while stack:
		item, level = stack.pop()
		deepest = max(deepest, level)
		if deepest > MAX_DEPTH:
			return deepest
		if isinstance(item, dict):
			stack.extend((child, level + 1) for child in item.values())
		elif isinstance(item, list):
			stack.extend((child, level + 1) for child in item)
	return deepest


def signature_matches(secret, body, ours=None, frappes=None):
	"""Whether either header carries the HMAC-SHA256 of `body` under `secret`, compared in constant
	time. `ours` is hex (with or without "sha256="), `frappes` base64."""
	if not secret:
		return False
	digest = hmac.new(secret.encode(), bytes(body), hashlib.sha256).digest()
	matched = False
	if ours:
		given = ours.strip()
		given = given[7:] if given.lower().startswith("sha256=") else given
		matched |= hmac.compare_digest(given.lower().encode(), digest.hex().encode())
	if frappes:
		matched |= hmac.compare_digest(frappes.strip().encode(), base64.b64encode(digest))
	return matched


def sign(secret, body):
	"""The two headers a sender puts on `body` (for tests, the benchmark and the docs' example)."""
	digest = hmac.new(secret.encode(), bytes(body), hashlib.sha256).digest()
	return {
		SIGNATURE_HEADER: "sha256=" + digest.hex(),
		FRAPPE_SIGNATURE_HEADER: base64.b64encode(digest).decode(),
	}


def token_hash(token):
	"""What is stored of a rule's token: its SHA-256, so the database never holds the token."""
	return hashlib.sha256(str(token).encode()).hexdigest()


def value_at(payload, path):
	"""The value at a dotted path ("contact.email", "items.0.sku"), None where the path leads nowhere."""
	value = payload
	for segment in (path or "").split("."):
		if isinstance(value, dict):
			value = value.get(segment)
		elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
			value = value[int(segment)]
		else:
			return None
	return value


def check_inbound(rule, fields, with_standard_fields):
	"""The Webhook Received settings of a rule (a dict), checked against the doctype's `fields`:
	the match field, the payload path and the field map of created documents. Raises RuleError."""
	problems = ProblemCollector()
	match_field = (rule.get("webhook_match_field") or "").strip()
	known = with_standard_fields(fields)
	if not match_field:
		problems.add("webhook_match_field", _("choose the field that finds the document"))
	elif match_field not in known:
		problems.add("webhook_match_field", _("{0} is not a field of the document type").format(match_field))
	path = (rule.get("webhook_match_path") or "").strip()
	if not path:
		problems.add("webhook_match_path", _("give the payload path of the value, e.g. email"))
	elif len(path) > MAX_PATH_LENGTH or not _PATH_RE.match(path):
		problems.add(
			"webhook_match_path",
			_("{0} is not a path: names, digits, - and _ joined by dots (e.g. contact.email)").format(
				path[:80]
			),
		)
	field_map = field_map_of(rule, problems)
	for target, source in (field_map or {}).items():
		if target not in known:
			problems.add("webhook_field_map", _("{0} is not a field of the document type").format(target))
		if not isinstance(source, str | int | float | bool | type(None)):
			problems.add(
				"webhook_field_map", _("{0}: the value must be text, a number or a template").format(target)
			)
		elif isinstance(source, str):
			try:
				check_template(source, "webhook_field_map")
			except TemplateError as error:
				problems.add("webhook_field_map", _("{0}: {1}").format(target, error.first.message))
	if rule.get("webhook_create_missing") and not field_map:
		problems.add("webhook_field_map", _("say which fields a created document gets from the payload"))
	problems.raise_if_any()
	return field_map


def field_map_of(rule, problems=None):
	value = rule.get("webhook_field_map")
	if value in (None, ""):
		return {}
	if isinstance(value, dict):
		return value
	try:
		parsed = json.loads(value)
	except (TypeError, ValueError) as error:
		if problems is not None:
			problems.add("webhook_field_map", _("the field mapping is not valid JSON ({0})").format(error))
		return None
	if not isinstance(parsed, dict):
		if problems is not None:
			problems.add("webhook_field_map", _("the field mapping must be a JSON object"))
		return None
	return parsed
