"""Inbound webhooks on a site: accept a call (token, rate, size, signature, JSON, delivery id), answer
at once, and on a worker find or create the document and run the rule on it with `payload`.

Every call leaves one Automation Log row; a refused one leaves nothing else and the row keeps no
part of the body. The token is never stored, only its SHA-256 (engine/inbound.token_hash).
"""

import time

import frappe
from frappe import _
from frappe.utils import cint

from crm_automation.actions.inbound_documents import create_from_payload
from crm_automation.engine import inbound
from crm_automation.engine.workflow import TRIGGER_WEBHOOK
from crm_automation.runtime.run_log import claim_occurrence, make_log
from crm_automation.runtime.runner import record_health, run_rule
from crm_automation.runtime.workflow_rules import get_compiled_rule
from crm_automation.trust.field_access import hidden_fields
from crm_automation.trust.run_as import run_as_of

EVENT = "webhook_received"
# Set on the saves that make or drop a rule's URL (api/inbound_webhooks): no other save changes it.
CREDENTIALS_FLAG = "crm_automation_webhook_credentials"
DEFAULT_RATE_LIMIT = 60
# Calls naming no known token are logged up to this many a minute per site: past it they are still
# refused, but an anonymous flood cannot fill the log.
UNKNOWN_TOKEN_LOGS_PER_MINUTE = 100
_RULE_FIELDS = ["name", "enabled", "trigger", "document_type", "webhook_rate_limit", "run_as", "owner"]


class Answer:
	"""What the endpoint answers: an HTTP status and a short message (never the body)."""

	__slots__ = ("message", "status")

	def __init__(self, status, message):
		self.status, self.message = status, message


def accept(raw, headers, token, content_length=None):
	"""Decide on one call. `raw`: a callable returning the body (read only once the size is known to
	be within the cap), `headers`: a mapping, `token`: as given in the URL. Returns an Answer; on 202
	the work is enqueued to run after this request commits."""
	rule = _rule_of_token(token)
	if rule is None:
		_log_unknown_token()
		return Answer(404, _("Not found"))
	if over_rate_limit(rule):
		reason = _("Refused: more than {0} calls in a minute").format(_rate_limit(rule))
		return _refuse(rule, 429, reason)
	if cint(content_length) > inbound.MAX_BODY_BYTES:
		return _refuse(
			rule, 413, _("Refused: the body is larger than {0} bytes").format(inbound.MAX_BODY_BYTES)
		)
	body = raw()
	if len(body) > inbound.MAX_BODY_BYTES:
		return _refuse(
			rule, 413, _("Refused: the body is larger than {0} bytes").format(inbound.MAX_BODY_BYTES)
		)
	secret = _secret_of(rule.name)
	if not inbound.signature_matches(
		secret, body, headers.get(inbound.SIGNATURE_HEADER), headers.get(inbound.FRAPPE_SIGNATURE_HEADER)
	):
		return _refuse(rule, 401, _("Refused: the signature is missing or does not match"))
	try:
		payload = inbound.parse_payload(body)
	except inbound.PayloadError as error:
		return _refuse(rule, 400, _("Refused: {0}").format(error))
	delivery_id = delivery_id_of(headers)
	if delivery_id and not claim_occurrence(
		"Workflow Rule", rule.name, rule.document_type, None, "inbound-delivery:" + delivery_id
	):
		reason = _("Already received: delivery {0}").format(delivery_id)
		_log(rule, "Skipped", reason)
		return Answer(200, _("Already received"))
	log_name = _log(
		rule, "Success", _("Received; queued for a worker (delivery {0})").format(delivery_id or "-")
	)
	frappe.enqueue(
		"crm_automation.runtime.inbound_webhooks.process_delivery",
		queue="short",
		enqueue_after_commit=True,
		rule=rule.name,
		payload=payload,
		delivery_id=delivery_id,
		received_log=log_name,
	)
	return Answer(202, _("Accepted"))


def delivery_id_of(headers):
	"""The sender's delivery id (the first of DELIVERY_HEADERS it sends), cut to a sane length."""
	for name in inbound.DELIVERY_HEADERS:
		value = (headers.get(name) or "").strip()
		if value:
			return value[: inbound.MAX_DELIVERY_ID_LENGTH]
	return None


def _rule_of_token(token):
	token = (token or "").strip()
	if not token or len(token) > 200:
		return None
	rule = frappe.db.get_value(
		"Workflow Rule", {"webhook_token_hash": inbound.token_hash(token)}, _RULE_FIELDS, as_dict=True
	)
	# A disabled rule, or one whose trigger was changed, answers as an unknown token does.
	if not rule or not rule.enabled or rule.trigger != TRIGGER_WEBHOOK:
		return None
	return rule


def _secret_of(rule_name):
	from frappe.utils.password import get_decrypted_password

	return get_decrypted_password("Workflow Rule", rule_name, "webhook_secret", raise_exception=False)


def _rate_limit(rule):
	return cint(rule.webhook_rate_limit) or DEFAULT_RATE_LIMIT


def over_rate_limit(rule):
	"""Count this call in the rule's current minute (frappe.cache, shared by every web worker)."""
	return _count_this_minute(f"crm_automation:inbound:{rule.name}") > _rate_limit(rule)


def _count_this_minute(prefix):
	key = frappe.cache.make_key(f"{prefix}:{int(time.time() // 60)}")
	count = frappe.cache.incr(key)
	if count == 1:
		frappe.cache.expire(key, 120)
	return count


def _log_unknown_token():
	if _count_this_minute("crm_automation:inbound:unknown") <= UNKNOWN_TOKEN_LOGS_PER_MINUTE:
		_log(None, "Rejected", _("Refused: no enabled Webhook Received rule has this token"))


def _refuse(rule, status, reason):
	_log(rule, "Rejected", reason)
	return Answer(status, reason)


def _log(rule, outcome, reason, doc=None, started=None):
	return make_log(
		rule_type="Workflow Rule",
		rule=rule.name if rule else None,
		trigger=TRIGGER_WEBHOOK,
		event=EVENT,
		doc=doc or frappe._dict(doctype=rule.document_type if rule else None, name=None),
		outcome=outcome,
		reason=reason,
		duration_ms=(time.perf_counter() - started) * 1000 if started else 0.0,
		run_as=run_as_of(rule) if rule else "Guest",
	)


# ----------------------------------------------------------------------------------------------
# On a worker


def process_delivery(rule, payload, delivery_id=None, received_log=None):
	"""Find the document the payload names (as the rule's run-as user may read it), create it when
	none is found and the rule says so, then run the rule on it with `payload`."""
	started = time.perf_counter()
	rule_row = frappe.db.get_value(
		"Workflow Rule",
		rule,
		[
			*_RULE_FIELDS,
			"webhook_match_field",
			"webhook_match_path",
			"webhook_create_missing",
			"webhook_field_map",
		],
		as_dict=True,
	)
	compiled = get_compiled_rule(rule)
	if not rule_row or compiled is None or rule_row.trigger != TRIGGER_WEBHOOK:
		return _log(rule_row, "Skipped", _("Skipped: the rule is disabled or no longer takes webhooks"))
	payload = inbound.plain_copy(payload)
	with inbound.payload_context(payload):
		doc = _find_or_create(rule_row, compiled, payload, started)
		if doc is None or isinstance(doc, str):
			return doc
		return run_rule(compiled, doc, None, EVENT)


def _find_or_create(rule_row, compiled, payload, started):
	"""The target document, or the name of the log saying why there is none."""
	value = inbound.value_at(payload, rule_row.webhook_match_path)
	if value in (None, "") or isinstance(value, dict | list):
		reason = _("Skipped: the payload has no value at {0}").format(rule_row.webhook_match_path)
		return _log(rule_row, "Skipped", reason, started=started)
	user = run_as_of(rule_row)
	doctype, fieldname = rule_row.document_type, rule_row.webhook_match_field
	if hidden_fields(doctype, user).hides(fieldname):
		reason = _("Failed: run-as user {0} may not read {1} of {2}").format(user, fieldname, _(doctype))
		record_health(compiled, [{"result": reason}])
		return _log(rule_row, "Failed", reason, started=started)
	# Frappe's list permissions for the run-as user: roles, User Permissions, owner rules, shares.
	names = frappe.get_list(
		doctype, filters={fieldname: str(value)}, pluck="name", user=user, order_by="creation asc", limit=1
	)
	if names:
		return frappe.get_doc(doctype, names[0])
	if not cint(rule_row.webhook_create_missing):
		reason = _("Skipped: no {0} whose {1} is {2} that run-as user {3} may read").format(
			_(doctype), fieldname, value, user
		)
		return _log(rule_row, "Skipped", reason, started=started)
	savepoint = "crm_automation_inbound_create"
	frappe.db.savepoint(savepoint)
	try:
		return create_from_payload(doctype, inbound.field_map_of(rule_row) or {}, compiled)
	except Exception as error:
		frappe.db.rollback(save_point=savepoint)
		reason = _("Failed: the {0} could not be created: {1}").format(
			_(doctype), frappe.utils.strip_html(str(error))[:300] or error.__class__.__name__
		)
		record_health(compiled, [{"result": reason}])
		return _log(rule_row, "Failed", reason, started=started)


# ----------------------------------------------------------------------------------------------
# At the rule's save


def check_rule_settings(rule):
	"""validate of a Webhook Received rule: the match field is one of the doctype's fields its run-as
	user may read, the path is sane, and the field map of a created document is within what that
	user may create (Create Document's own check)."""
	from crm_automation.engine import RuleError
	from crm_automation.engine.conditions import with_standard_fields
	from crm_automation.engine.i18n import translating
	from crm_automation.runtime.workflow_rules import get_fields
	from crm_automation.trust.save_checks import check_create_rights, check_readable_fields

	try:
		with translating(_):
			field_map = inbound.check_inbound(rule, get_fields(rule.document_type), with_standard_fields)
	except RuleError as error:
		frappe.throw(
			[rule.describe_problem(problem) for problem in error.problems],
			title=_("Invalid Inbound Webhook"),
			as_list=True,
		)
	where = _(rule.meta.get_label("webhook_match_field"))
	check_readable_fields(rule.document_type, [rule.webhook_match_field], rule.run_as, where)
	if rule.webhook_create_missing:
		where = _(rule.meta.get_label("webhook_field_map"))
		check_create_rights(rule.document_type, field_map, rule.run_as, where)
