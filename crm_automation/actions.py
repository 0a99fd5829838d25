"""The only layer that writes: carries out the intents the engine returned.

Each action runs inside its own savepoint. A failing action is rolled back alone, recorded with its
traceback and never breaks the user's save. Emails go through Communication + Email Queue (sent by
the scheduler after commit, shown on the document's timeline); webhooks are delivered by a
background job enqueued after commit and retried with backoff by the 5-minute sweep.
"""

import hashlib
import hmac
import json
import traceback

import frappe
from frappe import _
from frappe.utils import add_to_date, get_datetime, now_datetime, nowdate

from crm_automation.engine import workflow as wf

# ERPNext's own mappers, used when a Create Document action asks for them.
STANDARD_MAPPERS = {
	("Opportunity", "Quotation"): "erpnext.crm.doctype.opportunity.opportunity.make_quotation",
	("Opportunity", "Supplier Quotation"): "erpnext.crm.doctype.opportunity.opportunity.make_supplier_quotation",
	("Lead", "Opportunity"): "erpnext.crm.doctype.lead.lead.make_opportunity",
	("Lead", "Customer"): "erpnext.crm.doctype.lead.lead.make_customer",
	("Lead", "Quotation"): "erpnext.crm.doctype.lead.lead.make_quotation",
	("Quotation", "Sales Order"): "erpnext.selling.doctype.quotation.quotation.make_sales_order",
	("Sales Order", "Sales Invoice"): "erpnext.selling.doctype.sales_order.sales_order.make_sales_invoice",
	("Sales Order", "Delivery Note"): "erpnext.selling.doctype.sales_order.sales_order.make_delivery_note",
}
WEBHOOK_BACKOFF_MINUTES = (1, 5, 15, 60, 180, 360, 720, 1440, 1440, 1440)
SIGNATURE_HEADER = "X-CRM-Automation-Signature"


class ActionError(frappe.ValidationError):
	"""An action that cannot be carried out for a reason the administrator can fix."""


def render(template, doc, before):
	if not template or not wf.is_template(template):
		return template or ""
	return frappe.render_template(template, {"doc": doc, "old_doc": before})


def carry_out(intents, doc, before, rule):
	return [_carry_out_one(intent, doc, before, rule) for intent in intents]


def _carry_out_one(intent, doc, before, rule):
	handler = _HANDLERS[intent["type"]]
	result = {"action_type": intent["type"], "action_row": intent.get("row"), "status": "Success"}
	savepoint = f"crm_automation_action_{intent.get('row') or 0}"
	messages_before = len(frappe.local.message_log)
	frappe.db.savepoint(savepoint)
	try:
		result.update(handler(intent, doc, before, rule) or {})
	except Exception as error:
		frappe.db.rollback(save_point=savepoint)
		# The user's save succeeded; the red dialog of a failed automation would say otherwise.
		del frappe.local.message_log[messages_before:]
		result.update(status="Failed", result=_error_summary(error), error=traceback.format_exc())
	return result


def _error_summary(error):
	text = frappe.utils.strip_html(str(error)) or error.__class__.__name__
	return text[:500]


def after_run(log_name, results):
	"""Side effects that leave the database start only after the transaction commits."""
	if any(r["action_type"] == wf.WEBHOOK and r["status"] == "Queued" for r in results):
		frappe.enqueue(
			"crm_automation.actions.deliver_webhooks",
			queue="short",
			enqueue_after_commit=True,
			log_name=log_name,
		)


def minutes_saved(rule, results, settings):
	if getattr(rule, "minutes_saved_override", None):
		return rule.minutes_saved_override
	return sum(r.get("minutes_saved") or 0 for r in results)


def default_minutes(action_type):
	fieldname = "minutes_" + frappe.scrub(action_type)
	return frappe.get_cached_doc("CRM Automation Settings").get(fieldname) or 0


# ----------------------------------------------------------------------------------------------
# Who: users and addresses


def enabled_users(users):
	users = [u for u in dict.fromkeys(users) if u]
	if not users:
		return []
	enabled = set(frappe.get_all("User", filters={"name": ("in", users), "enabled": 1}, pluck="name"))
	return [u for u in users if u in enabled and u != "Guest"]


def users_with_role(role):
	users = frappe.get_all(
		"Has Role", filters={"role": role, "parenttype": "User"}, pluck="parent", distinct=True
	)
	return sorted(u for u in enabled_users(users) if u != "Administrator")


def users_in_group(group):
	return sorted(enabled_users(frappe.get_all("User Group Member", filters={"parent": group}, pluck="user")))


def current_assignees(doc):
	return frappe.get_all(
		"ToDo",
		filters={"reference_type": doc.doctype, "reference_name": doc.name, "status": "Open"},
		pluck="allocated_to",
	)


def managers_of(users):
	"""The users their Employee records report to (Employee: Reports To)."""
	if not users or not frappe.db.exists("DocType", "Employee"):
		return []
	managers = frappe.get_all("Employee", filters={"user_id": ("in", users), "reports_to": ("is", "set")}, pluck="reports_to")
	if not managers:
		return []
	return frappe.get_all("Employee", filters={"name": ("in", managers), "user_id": ("is", "set")}, pluck="user_id")


def resolve_users(intent, doc):
	users = []
	if intent.get("to_field"):
		users.append(doc.get(intent["to_field"]))
	if intent.get("to_owner"):
		users.append(doc.owner)
	if intent.get("to_assignees"):
		users.extend(current_assignees(doc))
	if intent.get("to_role"):
		users.extend(users_with_role(intent["to_role"]))
	users.extend(intent.get("to_users") or [])
	if intent.get("to_managers"):
		users.extend(managers_of(enabled_users(users)))
	return enabled_users(users)


def resolve_addresses(intent, doc):
	addresses, users = [], []
	if intent.get("to_field"):
		value = doc.get(intent["to_field"])
		(addresses if value and "@" in value else users).append(value)
	if intent.get("to_owner"):
		users.append(doc.owner)
	if intent.get("to_assignees"):
		users.extend(current_assignees(doc))
	if intent.get("to_role"):
		users.extend(users_with_role(intent["to_role"]))
	for entry in intent.get("to_users") or []:
		(users if frappe.db.exists("User", entry) else addresses).append(entry)
	if intent.get("to_managers"):
		users.extend(managers_of(enabled_users(users)))
	for user in enabled_users(users):
		email = frappe.db.get_value("User", user, "email")
		if email:
			addresses.append(email)
	return [a for a in dict.fromkeys(addresses) if a and "@" in a]


# ----------------------------------------------------------------------------------------------
# Actions


def assign(intent, doc, before, rule):
	from frappe.desk.form import assign_to

	if intent["only_if_unassigned"] and current_assignees(doc):
		return {"status": "Skipped", "result": _("Already assigned")}
	candidates = _assignment_candidates(intent, doc)
	if not candidates:
		raise ActionError(_("No enabled user to assign to ({0})").format(intent["assign_to_type"]))
	strategy = intent["strategy"]
	if intent["assign_to_type"] == wf.ASSIGN_TO_FIELD or strategy == wf.ASSIGN_EVERYONE:
		chosen = candidates
	elif strategy == wf.LOAD_BALANCING:
		chosen = [_least_loaded(candidates, doc.doctype)]
	else:
		chosen = [_next_in_turn(intent["row_id"], candidates, intent.get("row_doctype") or "Workflow Rule Action")]
	assign_to.add(
		{
			"assign_to": chosen,
			"doctype": doc.doctype,
			"name": doc.name,
			"description": _("Assigned by automation rule {0}").format(rule.name),
		},
		ignore_permissions=True,
	)
	todo = frappe.db.get_value(
		"ToDo",
		{"reference_type": doc.doctype, "reference_name": doc.name, "allocated_to": chosen[0], "status": "Open"},
		"name",
	)
	return {
		"result": _("Assigned to {0}").format(", ".join(chosen)),
		"created_doctype": "ToDo",
		"created_name": todo,
		"minutes_saved": default_minutes(wf.ASSIGN),
	}


def _assignment_candidates(intent, doc):
	target = intent["assign_to_type"]
	if target == wf.ASSIGN_TO_USERS:
		return enabled_users(intent["users"])
	if target == wf.ASSIGN_TO_ROLE:
		return users_with_role(intent["role"])
	if target == wf.ASSIGN_TO_GROUP:
		return users_in_group(intent["user_group"])
	return enabled_users([doc.get(intent["user_field"])])


def _next_in_turn(row_id, candidates, row_doctype="Workflow Rule Action"):
	"""Round robin that stays fair when two processes save at once: the action row is locked
	(SELECT ... FOR UPDATE) until the saving transaction ends, so turns are taken one at a time."""
	last = frappe.db.sql(
		f"select last_assigned_user from `tab{row_doctype}` where name = %s for update", row_id
	)
	last = last[0][0] if last else None
	following = [user for user in candidates if last and user > last]
	chosen = following[0] if following else candidates[0]
	frappe.db.set_value(row_doctype, row_id, "last_assigned_user", chosen, update_modified=False)
	return chosen


def _least_loaded(candidates, doctype):
	todo = frappe.qb.DocType("ToDo")
	rows = (
		frappe.qb.from_(todo)
		.select(todo.allocated_to, frappe.query_builder.functions.Count("*"))
		.where((todo.status == "Open") & (todo.reference_type == doctype) & todo.allocated_to.isin(candidates))
		.groupby(todo.allocated_to)
	).run()
	load = dict(rows)
	return min(candidates, key=lambda user: (load.get(user, 0), user))


def unassign(intent, doc, before, rule):
	from frappe.desk.form.assign_to import close_all_assignments

	closed = current_assignees(doc)
	close_all_assignments(doc.doctype, doc.name, ignore_permissions=True)
	return {
		"result": _("Closed assignments of {0}").format(", ".join(closed)) if closed else _("Nothing to close"),
		"minutes_saved": default_minutes(wf.UNASSIGN) if closed else 0,
	}


def send_email(intent, doc, before, rule):
	from frappe.core.doctype.communication.email import _make

	recipients = resolve_addresses(intent, doc)
	if not recipients:
		raise ActionError(_("No recipient has an email address"))
	subject, message = _email_content(intent, doc, before)
	communication = _make(
		doctype=doc.doctype,
		name=doc.name,
		subject=subject,
		content=message,
		recipients=recipients,
		send_email=True,
		email_template=intent.get("email_template"),
	)
	queue = frappe.db.get_value("Email Queue", {"communication": communication["name"]}, "name")
	return {
		"result": _("Queued to {0}: {1}").format(", ".join(recipients), subject),
		"created_doctype": "Email Queue" if queue else "Communication",
		"created_name": queue or communication["name"],
		"minutes_saved": default_minutes(wf.SEND_EMAIL),
	}


def _email_content(intent, doc, before):
	if intent.get("email_template"):
		template = frappe.get_cached_doc("Email Template", intent["email_template"])
		body = template.response_html if template.use_html else template.response
		return render(template.subject, doc, before), render(body, doc, before)
	return render(intent["subject"], doc, before), render(intent["message"], doc, before)


def system_notification(intent, doc, before, rule):
	users = resolve_users(intent, doc)
	if not users:
		raise ActionError(_("No enabled user to notify"))
	subject = render(intent["subject"], doc, before)
	message = render(intent.get("message"), doc, before)
	names = notify_users(users, subject, doc.doctype, doc.name, message)
	return {
		"result": _("Notified {0}: {1}").format(", ".join(users), subject),
		"created_doctype": "Notification Log",
		"created_name": names[0] if names else None,
		"minutes_saved": default_minutes(wf.NOTIFY),
	}


def notify_users(users, subject, doctype, name, message=None):
	names = []
	for user in enabled_users(users):
		log = frappe.get_doc(
			{
				"doctype": "Notification Log",
				"for_user": user,
				"type": "Alert",
				"document_type": doctype,
				"document_name": name,
				"subject": subject,
				"email_content": message,
				"from_user": "Administrator",
			}
		)
		log.insert(ignore_permissions=True)
		names.append(log.name)
	return names


def create_todo(intent, doc, before, rule):
	users = resolve_users(intent, doc)
	if not users:
		raise ActionError(_("No enabled user to give the ToDo to"))
	description = render(intent["description"], doc, before)
	due = add_to_date(now_datetime(), **{intent["due_unit"].lower(): intent["due_in"]})
	names = []
	for user in users:
		todo = frappe.get_doc(
			{
				"doctype": "ToDo",
				"allocated_to": user,
				"description": description,
				"reference_type": doc.doctype,
				"reference_name": doc.name,
				"priority": intent["priority"],
				"date": due.date(),
				"assigned_by": frappe.session.user,
			}
		).insert(ignore_permissions=True)
		names.append(todo.name)
	return {
		"result": _("ToDo for {0}: {1}").format(", ".join(users), frappe.utils.strip_html(description)[:140]),
		"created_doctype": "ToDo",
		"created_name": names[0],
		"minutes_saved": default_minutes(wf.CREATE_TODO),
	}


def _value_for(intent, doc, before):
	return render(intent["value"], doc, before) if intent["is_template"] else intent["value"]


def _check_value_fits(doc, fieldname, value):
	"""db_set skips the document's validation, so a Link or Select value is checked here."""
	if value in (None, ""):
		return
	df = doc.meta.get_field(fieldname)
	if not df:
		return
	if df.fieldtype == "Link" and not frappe.db.exists(df.options, value):
		raise ActionError(_("{0} {1} does not exist (for {2})").format(df.options, frappe.bold(value), fieldname))
	if df.fieldtype == "Select":
		options = (df.options or "").split("\n")
		if value not in options:
			raise ActionError(_("{0} is not an option of {1}").format(frappe.bold(value), fieldname))


def set_value(intent, doc, before, rule):
	value = _value_for(intent, doc, before)
	_check_value_fits(doc, intent["field"], value)
	old = doc.get(intent["field"])
	if str(old if old is not None else "") == str(value if value is not None else ""):
		return {"status": "Skipped", "result": _("{0} already is {1}").format(intent["field"], value)}
	# db_set writes once, without another save; Frappe runs on_change, so Value Change rules on
	# this field still see it (the runner stops this rule from re-firing itself).
	doc.db_set(intent["field"], value)
	return {
		"result": _("{0}: {1} → {2}").format(intent["field"], old, value),
		"minutes_saved": default_minutes(wf.SET_VALUE),
	}


def set_value_before_save(intent, doc, before):
	value = _value_for(intent, doc, before)
	old = doc.get(intent["field"])
	doc.set(intent["field"], value)
	return {
		"action_type": wf.SET_VALUE,
		"action_row": intent.get("row"),
		"status": "Success",
		"result": _("{0}: {1} → {2}").format(intent["field"], old, value),
		"minutes_saved": default_minutes(wf.SET_VALUE),
	}


def add_tag(intent, doc, before, rule):
	from frappe.desk.doctype.tag.tag import add_tag as frappe_add_tag

	tag = render(intent["tag"], doc, before)
	frappe_add_tag(tag, doc.doctype, doc.name)
	return {"result": _("Tagged {0}").format(tag), "minutes_saved": default_minutes(wf.ADD_TAG)}


def add_comment(intent, doc, before, rule):
	comment = doc.add_comment("Comment", text=render(intent["message"], doc, before))
	return {
		"result": _("Commented"),
		"created_doctype": "Comment",
		"created_name": comment.name,
		"minutes_saved": default_minutes(wf.ADD_COMMENT),
	}


def create_document(intent, doc, before, rule):
	target_doctype = intent["doctype"]
	mapper = STANDARD_MAPPERS.get((doc.doctype, target_doctype)) if intent["use_mapper"] else None
	if mapper:
		new = frappe.get_attr(mapper)(doc.name)
	else:
		new = frappe.new_doc(target_doctype)
	for fieldname, source in intent["field_map"].items():
		if isinstance(source, str) and source.startswith("doc.") and not wf.is_template(source):
			new.set(fieldname, doc.get(source[4:]))
		else:
			new.set(fieldname, render(source, doc, before) if isinstance(source, str) else source)
	_link_back(new, doc)
	# A draft for a person to complete: ERPNext's mandatory fields (items, rates) come later.
	new.flags.ignore_mandatory = True
	new.insert(ignore_permissions=True)
	return {
		"result": _("Created {0} {1}").format(target_doctype, new.name),
		"created_doctype": target_doctype,
		"created_name": new.name,
		"minutes_saved": default_minutes(wf.CREATE_DOCUMENT),
	}


def _link_back(new, source):
	for df in new.meta.get_link_fields():
		if df.options == source.doctype and not new.get(df.fieldname):
			new.set(df.fieldname, source.name)
			return
	for df in new.meta.get_dynamic_link_fields():
		if not new.get(df.fieldname) and not new.get(df.options):
			new.set(df.options, source.doctype)
			new.set(df.fieldname, source.name)
			return


def webhook(intent, doc, before, rule):
	return {"status": "Queued", "result": _("POST {0} queued").format(intent["url"]), "attempts": 0}


def reject(intent, doc, before, rule):
	# Reject only runs on Validate (the engine refuses it elsewhere); see runner._run_before_save.
	raise ActionError(render(intent["message"], doc, before))


_HANDLERS = {
	wf.ASSIGN: assign,
	wf.UNASSIGN: unassign,
	wf.SEND_EMAIL: send_email,
	wf.NOTIFY: system_notification,
	wf.CREATE_TODO: create_todo,
	wf.SET_VALUE: set_value,
	wf.ADD_TAG: add_tag,
	wf.ADD_COMMENT: add_comment,
	wf.CREATE_DOCUMENT: create_document,
	wf.WEBHOOK: webhook,
	wf.REJECT: reject,
}


# ----------------------------------------------------------------------------------------------
# Webhook delivery (background)


def deliver_webhooks(log_name):
	"""Deliver every queued webhook of one log. Runs on the short queue after the save committed."""
	log = frappe.get_doc("Automation Log", log_name)
	rule = frappe.get_doc("Workflow Rule", log.rule) if frappe.db.exists("Workflow Rule", log.rule) else None
	for row in log.actions:
		if row.action_type == wf.WEBHOOK and row.status == "Queued":
			_deliver_one(log, row, rule)
	log.save(ignore_permissions=True)
	if log.outcome != "Failed" and any(r.status == "Failed" for r in log.actions):
		log.db_set("outcome", "Failed")


def _deliver_one(log, row, rule):
	import requests

	action = _rule_action(rule, row.action_row)
	if not action:
		row.status, row.result = "Failed", _("The rule or its action row no longer exists")
		return
	doc = frappe.get_doc(log.reference_doctype, log.reference_name)
	body = json.dumps(
		{"rule": log.rule, "event": log.event, "doctype": doc.doctype, "name": doc.name, "doc": doc.as_dict()},
		default=str,
	)
	headers = {"Content-Type": "application/json"}
	headers.update(json.loads(action.headers) if action.headers else {})
	secret = action.get_password("secret", raise_exception=False) if action.secret else None
	if secret:
		headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
	row.attempts = (row.attempts or 0) + 1
	try:
		response = requests.post(action.url, data=body, headers=headers, timeout=action.timeout or 10)
		row.response = json.dumps({"status_code": response.status_code, "body": response.text[:2000]})
		response.raise_for_status()
		row.status, row.result = "Success", _("POST {0}: HTTP {1}").format(action.url, response.status_code)
		row.minutes_saved = default_minutes(wf.WEBHOOK)
	except Exception as error:
		retries = action.retries if action.retries is not None else 3
		row.response = (row.response or "") + "\n" + traceback.format_exc()[-2000:]
		if row.attempts <= retries:
			wait = WEBHOOK_BACKOFF_MINUTES[min(row.attempts - 1, len(WEBHOOK_BACKOFF_MINUTES) - 1)]
			row.next_attempt_on = add_to_date(now_datetime(), minutes=wait)
			row.result = _("Attempt {0} failed ({1}); retrying at {2}").format(
				row.attempts, _error_summary(error), row.next_attempt_on
			)
		else:
			row.status = "Failed"
			row.result = _("Failed after {0} attempts: {1}").format(row.attempts, _error_summary(error))


def _rule_action(rule, row_number):
	if not rule:
		return None
	for action in rule.actions:
		if action.idx == row_number:
			return action
	return None


def retry_due_webhooks():
	"""Deliver webhooks whose backoff has passed; called by the 5-minute sweep."""
	due = frappe.get_all(
		"Automation Log Action",
		filters={"status": "Queued", "next_attempt_on": ("<=", now_datetime()), "parenttype": "Automation Log"},
		pluck="parent",
		distinct=True,
		limit=500,
	)
	for log_name in due:
		deliver_webhooks(log_name)
		frappe.db.commit()  # one log at a time: a slow endpoint must not hold the others back
