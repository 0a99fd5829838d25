"""Replies: what a Communication Received rule's conditions may test of the incoming e-mail.

The e-mail is no field of the document: its values are given to conditions under the names below
(``{"field": "communication.subject", "op": "like", "value": "%price%"}``) and to templates as
``communication`` (``{{ communication.subject }}``). Only Communication Received rules see them;
for any other trigger these names are unknown fields. Pure Python, no Frappe.
"""

from .i18n import _

PREFIX = "communication."
# The Communication's fields a rule may read, as condition fields (fieldtype, label).
COMMUNICATION_FIELDS = {
	"subject": ("Data", "Subject"),
	"sender": ("Data", "Sender"),
	"sender_full_name": ("Data", "Sender Name"),
	"content": ("Text", "Content"),
	"sent_or_received": ("Data", "Sent or Received"),
	"communication_date": ("Datetime", "Date"),
}
# Content is given as plain text of at most this many characters: a rule reads a reply, not an archive.
CONTENT_CHARS = 10_000


def with_communication_fields(fields):
	"""``fields`` plus the e-mail's values as the conditions of a Communication Received rule read them."""
	merged = dict(fields)
	for fieldname, (fieldtype, label) in COMMUNICATION_FIELDS.items():
		merged[PREFIX + fieldname] = {
			"fieldtype": fieldtype,
			"label": _("{0} of the e-mail").format(_(label)),
		}
	return merged


def condition_values(communication):
	"""The e-mail's values under the names conditions read (``communication.subject``); missing
	ones (a field its reader may not read, or no e-mail at all) are None."""
	communication = communication or {}
	return {PREFIX + fieldname: communication.get(fieldname) for fieldname in COMMUNICATION_FIELDS}


def budgeted_content(text):
	"""Plain text, cut to CONTENT_CHARS."""
	text = (text or "").strip()
	return text if len(text) <= CONTENT_CHARS else text[:CONTENT_CHARS] + "…"
