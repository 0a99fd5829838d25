"""Inbound webhooks: the Guest endpoint other systems call, and the token's life (generated and shown
once, rotated, revoked) for those who may edit the rule.

The endpoint reads the token from the query string and the body raw from the request: Frappe puts
a JSON body's keys into form_dict, so nothing of the payload is taken as an argument here.
"""

import secrets

import frappe
from frappe import _
from frappe.utils import get_url

from crm_automation.engine import inbound
from crm_automation.engine.workflow import TRIGGER_WEBHOOK
from crm_automation.runtime.inbound_webhooks import CREDENTIALS_FLAG, accept
from crm_automation.trust.roles import check_rule_manager

ENDPOINT = "/api/method/crm_automation.api.inbound_webhooks.receive"


@frappe.whitelist(allow_guest=True, methods=["POST"])
def receive():
	"""POST /api/method/crm_automation.api.inbound_webhooks.receive?token=…, a signed JSON body.
	202 accepted (worked on by a worker), 200 a delivery id already received, 400 not a JSON
	object, 401 bad signature, 404 unknown or revoked token, 413 too large, 429 over the limit."""
	request = frappe.request
	answer = accept(
		lambda: request.get_data(cache=True),
		request.headers,
		request.args.get("token"),
		content_length=request.content_length,
	)
	frappe.local.response["http_status_code"] = answer.status
	return answer.message


@frappe.whitelist(methods=["POST"])
def generate_webhook_url(rule):
	"""The rule's URL and signing secret, made now and shown this once (the token is not stored,
	the secret is stored encrypted). A rule that has a URL keeps it: rotate makes a new one."""
	doc = _editable_rule(rule)
	if doc.webhook_token_hash:
		frappe.throw(
			_("{0} already has a URL (ending in {1}); rotate it to get a new one").format(
				frappe.bold(doc.name), frappe.bold(doc.webhook_token_hint)
			),
			title=_("Webhook URL"),
		)
	return _new_credentials(doc, new_secret=not doc.webhook_secret)


@frappe.whitelist(methods=["POST"])
def rotate(rule, new_secret=0):
	"""A new token (the old URL stops working at once) and, if asked, a new secret; shown once."""
	doc = _editable_rule(rule)
	return _new_credentials(doc, new_secret=frappe.utils.cint(new_secret) or not doc.webhook_secret)


@frappe.whitelist(methods=["POST"])
def revoke(rule):
	"""The URL stops working; the secret is kept for a URL generated later."""
	doc = _editable_rule(rule)
	doc.webhook_token_hash = None
	doc.webhook_token_hint = None
	doc.flags[CREDENTIALS_FLAG] = True
	doc.save()
	return {"revoked": 1}


def _editable_rule(rule):
	check_rule_manager()
	doc = frappe.get_doc("Workflow Rule", rule)
	doc.check_permission("write")
	if doc.trigger != TRIGGER_WEBHOOK:
		frappe.throw(
			_("{0} is not a {1} rule").format(frappe.bold(doc.name), frappe.bold(_(TRIGGER_WEBHOOK))),
			title=_("Webhook URL"),
		)
	return doc


def _new_credentials(doc, new_secret):
	"""Saved as any edit of the rule is: by the caller, who then is its run-as user (set_run_as), so
	calls to the new URL do only what that caller may."""
	token = secrets.token_urlsafe(32)
	doc.webhook_token_hash = inbound.token_hash(token)
	doc.webhook_token_hint = token[-4:]
	secret = secrets.token_urlsafe(32) if new_secret else None
	if secret:
		doc.webhook_secret = secret
	doc.flags[CREDENTIALS_FLAG] = True
	doc.save()
	return {
		"url": get_url(f"{ENDPOINT}?token={token}"),
		"token_hint": doc.webhook_token_hint,
		# None when the secret was kept: the sender already has it.
		"secret": secret,
	}
