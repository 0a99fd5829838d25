"""Incoming e-mail as a trigger: the documents a received Communication belongs to, and the
Communication Received rules run on each with the e-mail's values (``communication``).

Frappe's mail pull (Email Account → Communication) files an incoming e-mail against a reference
document and adds timeline links: the sender's Contact and that Contact's own links (a Lead, a
Customer), as ERPNext links them. The documents it belongs to are, in this order, deduplicated and
at most MAX_TARGETS, and only of doctypes that have work for replies:

1. its reference document (a reply to an e-mail sent from a Lead is filed against the Lead);
2. its timeline links;
3. the documents its Contacts link to (Dynamic Link rows), when Frappe did not add them;
4. Leads whose e-mail address is the sender's (at most MAX_PER_LOOKUP);
5. open Opportunities of the Leads and Customers found, or whose contact e-mail is the sender's
   (at most MAX_PER_LOOKUP each);

and only those whoever inserted the e-mail may read (the mail pull runs as Administrator).

What a rule sees of the e-mail is what its run-as user may see in the desk: the Communication
itself, or the e-mail on the timeline of a document it is filed against that the user may read
(Frappe shows a document's e-mails to whoever may read the document). Otherwise ``communication``
has no values: the rule still runs on a document its user may read, knowing only that a reply came.
"""

from collections import ChainMap

import frappe
from frappe.utils import parse_addr

from crm_automation.engine.replies import budgeted_content, condition_values
from crm_automation.engine.workflow import EVENTS_BY_TRIGGER, TRIGGER_COMMUNICATION
from crm_automation.runtime.linked_values import evaluation_values
from crm_automation.runtime.run_state import run_state
from crm_automation.runtime.runner import run_rule
from crm_automation.runtime.trigger_values import trigger_values
from crm_automation.runtime.workflow_rules import EXCLUDED_DOCTYPES, get_index, get_rules
from crm_automation.trust.field_access import may_read_record, readable_values
from crm_automation.trust.roles import is_system_manager
from crm_automation.trust.run_as import run_as_of

EVENT = EVENTS_BY_TRIGGER[TRIGGER_COMMUNICATION][0]
MAX_TARGETS = 20
MAX_PER_LOOKUP = 5
# Links checked when asking whether a user may see the e-mail on some document's timeline.
MAX_LINKS_CHECKED = 10
CLOSED_OPPORTUNITY = ("Lost", "Closed", "Converted")
# HTML beyond this is not converted to text: the rule reads at most engine/replies.CONTENT_CHARS.
_HTML_READ = 200_000
_SAVEPOINT = "crm_automation_reply_rule"


def is_reply(communication):
	"""An incoming e-mail as the mail pull inserts it; a sent one, a comment or a chat is not."""
	return (
		communication.sent_or_received == "Received"
		and communication.communication_medium == "Email"
		and (communication.communication_type or "Communication") == "Communication"
	)


def rule_doctypes():
	"""Doctypes with a Communication Received rule (from the compiled index)."""
	return frozenset(key[0] for key in get_index() if isinstance(key, tuple) and key[1] == EVENT)


# The documents it belongs to


def reply_targets(communication, doctypes):
	"""[(doctype, name)] of existing documents of ``doctypes`` that ``communication`` belongs to."""
	found = {}

	def add(doctype, name):
		if doctype and name and len(found) < MAX_TARGETS and doctype not in EXCLUDED_DOCTYPES:
			found.setdefault((doctype, name), None)

	links = _links(communication)
	for doctype, name in links:
		add(doctype, name)
	contacts = [name for doctype, name in links if doctype == "Contact"]
	for row in _contact_links(contacts):
		add(row.link_doctype, row.link_name)
	email = _sender_email(communication)
	if email and {"Lead", "Opportunity"} & set(doctypes):
		for lead in frappe.get_all("Lead", filters={"email_id": email}, pluck="name", limit=MAX_PER_LOOKUP):
			add("Lead", lead)
	if "Opportunity" in doctypes:
		for name in _opportunities(list(found), email):
			add("Opportunity", name)
	inserter = frappe.session.user
	return [
		(doctype, name)
		for doctype, name in found
		if doctype in doctypes
		and frappe.db.exists(doctype, name)
		and _inserter_may_read(doctype, name, inserter)
	]


def _inserter_may_read(doctype, name, user):
	"""Whoever inserted the e-mail may read the document: the mail pull runs as Administrator, but
	any Inbox User can insert a "Received" Communication through REST and file it against any
	document; that must not set off rules, or end follow-ups, on documents they cannot read."""
	return is_system_manager(user) or frappe.has_permission(doctype, "read", doc=name, user=user, throw=False)


def _links(communication):
	"""The reference document, then the timeline links (Frappe adds the sender's Contact and its links)."""
	links = []
	if communication.reference_doctype and communication.reference_name:
		if communication.reference_doctype != "Communication":
			links.append((communication.reference_doctype, communication.reference_name))
	for row in communication.get("timeline_links") or []:
		links.append((row.link_doctype, row.link_name))
	return links


def _contact_links(contacts):
	if not contacts:
		return []
	return frappe.get_all(
		"Dynamic Link",
		filters={"parenttype": "Contact", "parent": ("in", contacts[:MAX_PER_LOOKUP])},
		fields=["link_doctype", "link_name"],
		limit=MAX_TARGETS,
	)


def _sender_email(communication):
	return (parse_addr(communication.sender or "")[1] or "").strip().lower() or None


def _opportunities(found, email):
	names = []
	for party_type in ("Lead", "Customer"):
		parties = [name for doctype, name in found if doctype == party_type]
		if parties:
			names += frappe.get_all(
				"Opportunity",
				filters={
					"opportunity_from": party_type,
					"party_name": ("in", parties),
					"status": ("not in", CLOSED_OPPORTUNITY),
				},
				pluck="name",
				limit=MAX_PER_LOOKUP,
			)
	if email:
		names += frappe.get_all(
			"Opportunity",
			filters={"contact_email": email, "status": ("not in", CLOSED_OPPORTUNITY)},
			pluck="name",
			limit=MAX_PER_LOOKUP,
		)
	return names


# What a rule sees of it


def may_see(communication, user):
	"""Whether ``user`` may see this e-mail in the desk: as a record, or on the timeline of a
	document it is filed against that the user may read."""
	if is_system_manager(user) or may_read_record(communication, user):
		return True
	for doctype, name in _links(communication)[:MAX_LINKS_CHECKED]:
		if frappe.db.exists(doctype, name) and frappe.has_permission(
			doctype, "read", doc=name, user=user, throw=False
		):
			return True
	return False


def communication_values(communication, user):
	"""The e-mail as ``user``'s rule reads it: subject, sender, content as plain text (budgeted), …;
	an empty dict when that user may not see it; fields above their permission levels absent."""
	if not may_see(communication, user):
		return {}
	values = {
		"name": communication.name,
		"subject": communication.subject,
		"sender": communication.sender,
		"sender_full_name": communication.sender_full_name,
		"content": plain_content(communication.content),
		"sent_or_received": communication.sent_or_received,
		"communication_date": communication.communication_date,
	}
	return readable_values(values, "Communication", user)


def plain_content(html):
	from frappe.core.utils import html2text

	text = (html or "")[:_HTML_READ]
	try:
		text = html2text(text)
	except Exception:
		text = frappe.utils.strip_html(text)
	return budgeted_content(text)


# Running the rules


def run_reply_rules(communication, targets):
	"""The Communication Received rules of each target, each run on its own: one that fails is
	logged (Error Log) and undone, and never fails the insert of the e-mail."""
	for doctype, name in targets:
		rules = get_rules(doctype, EVENT)
		if not rules:
			continue
		doc = frappe.get_doc(doctype, name)
		for rule in rules:
			frappe.db.savepoint(_SAVEPOINT)
			try:
				run_on_reply(rule, doc, communication)
			except Exception:
				frappe.db.rollback(save_point=_SAVEPOINT)
				frappe.log_error(title=f"Workflow Rule {rule.name} failed on an incoming e-mail")


def run_on_reply(rule, doc, communication):
	"""One rule on one document for one e-mail: at most once per (rule, document, e-mail)."""
	user = run_as_of(rule)
	shown = communication_values(communication, user)
	values, _before = evaluation_values(doc, None, (rule,), user=user)
	values = ChainMap(condition_values(shown), values)
	state = run_state()
	if not state.depth:
		# Each e-mail is its own event: a mail pull files several replies to one document in a job.
		state.fired.get((doc.doctype, doc.name), set()).discard(rule.name)
	with trigger_values(rule.name, communication=shown):
		return run_rule(
			rule, doc, None, EVENT, occurrence_key=f"reply:{communication.name}", values=(values, None)
		)
