"""Send Email, System Notification and Create ToDo: actions that tell people something."""

import frappe
from frappe import _
from frappe.core.doctype.communication.email import _make
from frappe.utils import add_to_date, escape_html, now_datetime
from frappe.utils.html_utils import sanitize_html

from crm_automation.actions import send_windows
from crm_automation.actions.common import ActionError, default_minutes, render
from crm_automation.actions.recipients import (
	address_entries,
	describe_addresses,
	enabled_users,
	resolve_users,
)
from crm_automation.engine import workflow as wf
from crm_automation.trust import run_as as permissions


def send_email(intent, doc, before, rule):
	entries = address_entries(intent, doc)
	recipients = [address for address, _source in entries]
	if not recipients:
		raise ActionError(_("No recipient has an email address"))
	subject, message = email_content(intent, doc, before)
	# Outside the rule's sending window Frappe's Email Queue holds it until the window opens.
	send_after = send_windows.opening_for(rule)
	# Sent by the rule's run-as user: _make takes the sender (and the Communication's owner) from
	# the session, which is whoever's save set the rule off, and the e-mail would go out in their name.
	with permissions.acting_as(permissions.run_as_of(rule)):
		communication = _make(
			doctype=doc.doctype,
			name=doc.name,
			subject=subject,
			content=message,
			recipients=recipients,
			send_email=True,
			email_template=intent.get("email_template"),
			send_after=send_after,
		)
	queue = frappe.db.get_value("Email Queue", {"communication": communication["name"]}, "name")
	# Addresses the run-as user may not read are sent to, not written into the log.
	result = _("Queued to {0}: {1}").format(
		describe_addresses(entries, permissions.run_as_of(rule), doc), subject
	)
	if send_after:
		result = _("{0} ({1})").format(result, send_windows.deferred_note(send_after))
	return {
		"result": result,
		"created_doctype": "Email Queue" if queue else "Communication",
		"created_name": queue or communication["name"],
		"minutes_saved": default_minutes(wf.SEND_EMAIL),
	}


def email_content(intent, doc, before):
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
	# The bell shows the subject as HTML: it is a line of text, escaped; the body is rich text, and
	# sanitised as Frappe sanitises a Text Editor (also when it looks like JSON, which Frappe skips).
	shown_subject = escape_html(subject)
	message = sanitize_html(message, always_sanitize=True) if message else message
	opening = send_windows.opening_for(rule)
	if opening:
		return {
			**send_windows.defer_alerts(
				users, shown_subject, doc.doctype, doc.name, message, permissions.run_as_of(rule), opening
			),
			"result": _("Notify {0}: {1} ({2})").format(
				", ".join(users), subject, send_windows.deferred_note(opening)
			),
			"created_doctype": "Notification Log",
		}
	# resolve_users: enabled users only. The alert comes from the user the rule runs as.
	_enqueue_alerts(users, shown_subject, doc.doctype, doc.name, message, permissions.run_as_of(rule))
	return {
		"result": _("Notified {0}: {1}").format(", ".join(users), subject),
		"created_doctype": "Notification Log",
		"minutes_saved": default_minutes(wf.NOTIFY),
	}


def notify_users(users, subject, doctype, name, message=None, from_user=None):
	"""A Notification Log (Alert) for each enabled user, written by a background job once the run is
	committed, as Frappe writes the alerts of its own Notifications and assignments: the save does
	not wait for the inserts and their realtime pushes, and a run that is rolled back notifies no
	one. ``from_user``: whom the alert comes from (a rule's run-as user). Returns the users to be
	notified."""
	recipients = enabled_users(users)
	if recipients:
		_enqueue_alerts(recipients, subject, doctype, name, message, from_user)
	return recipients


def _enqueue_alerts(users, subject, doctype, name, message, from_user=None):
	frappe.enqueue(
		"crm_automation.actions.messages.make_notification_logs",
		users=users,
		subject=subject,
		doctype=doctype,
		name=name,
		message=message,
		from_user=from_user,
		enqueue_after_commit=True,
		now=frappe.flags.in_test,
	)


def make_notification_logs(users, subject, doctype, name, message=None, from_user=None):
	for user in users:
		frappe.get_doc(
			{
				"doctype": "Notification Log",
				"for_user": user,
				"type": "Alert",
				"document_type": doctype,
				"document_name": name,
				"subject": subject,
				"email_content": message,
				"from_user": from_user or "Administrator",
			}
		).insert(ignore_permissions=True)


def create_todo(intent, doc, before, rule):
	users = resolve_users(intent, doc)
	if not users:
		raise ActionError(_("No enabled user to give the ToDo to"))
	# A ToDo's description is a Text Editor: the author may format it, but nothing in it may run
	# (sanitised as Frappe does, also when it looks like JSON, which Frappe's own save lets through).
	description = sanitize_html(render(intent["description"], doc, before), always_sanitize=True)
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
				# The rule's run-as user gives the ToDo, not whoever saved the document.
				"assigned_by": permissions.run_as_of(rule),
			}
		).insert(ignore_permissions=True)
		names.append(todo.name)
	return {
		"result": _("ToDo for {0}: {1}").format(", ".join(users), frappe.utils.strip_html(description)[:140]),
		"created_doctype": "ToDo",
		"created_name": names[0],
		"minutes_saved": default_minutes(wf.CREATE_TODO),
	}
