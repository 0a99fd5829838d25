"""History events for the miner (``crm_automation.engine.mining``): their format, checks, and one
``DocumentDigest`` per document, grouped from a stream without holding it.

An event is a plain dict with ``type`` (one of ``EVENT_TYPES``), ``doctype``, ``name``, ``when``
and ``who``; ``record`` carries the document's values as created (``doc``), ``change`` a field
and its ``old`` / ``new`` value, ``assignment`` the user it went ``to``, ``email`` its
``template`` or ``subject`` (and ``message``, ``to_field``), ``todo`` its ``description`` and
``to``, ``comment`` its ``text``. ``automated`` or ``imported`` mark work that was not done by hand.
"""

import datetime
import re

from .errors import RuleError
from .i18n import _

TRANSITION_FIELDS = ("status",)
AUTOMATION_TODO_PREFIX = "Assigned by automation rule"

EVENT_TYPES = ("record", "change", "assignment", "email", "todo", "comment")
ASSIGN, SET_VALUE, SEND_EMAIL, CREATE_TODO, ADD_COMMENT = (
	"Assign",
	"Set Value",
	"Send Email",
	"Create ToDo",
	"Add Comment",
)
ACTION_OF_EVENT = {
	"assignment": ASSIGN,
	"change": SET_VALUE,
	"email": SEND_EMAIL,
	"todo": CREATE_TODO,
	"comment": ADD_COMMENT,
}
# The pseudo transition every new document makes.
CREATED = ("", "created")
# Fields that are bookkeeping, never a condition or an action.
IGNORED_FIELDS = frozenset(
	(
		"name",
		"creation",
		"modified",
		"modified_by",
		"docstatus",
		"idx",
		"_assign",
		"_comments",
		"_liked_by",
		"_user_tags",
		"_seen",
	)
)

# A tag ends at the next > or <: "<<<<..." from an outside sender is read in one pass, not one per "<".
_TAG_RE = re.compile(r"<[^<>]*>")
_SPACE_RE = re.compile(r"\s+")
_DIGITS_RE = re.compile(r"\d+")


class HistoryError(RuleError):
	"""An event the miner cannot use; ``where`` names it (file line or position)."""

	def __init__(self, where, message):
		ValueError.__init__(self, f"{where}: {message}")
		self.where = where
		self.message = message
		self.problems = []


def parse_when(value, where="when"):
	if isinstance(value, datetime.datetime):
		return value
	if isinstance(value, datetime.date):
		return datetime.datetime(value.year, value.month, value.day)
	if not isinstance(value, str):
		raise HistoryError(where, _("{0} is not a date and time (YYYY-MM-DD HH:MM:SS)").format(repr(value)))
	try:
		moment = _from_iso(value)
	except ValueError:
		try:
			moment = _from_iso(value.strip().replace("T", " "))
		except ValueError:
			raise HistoryError(
				where, _("{0} is not a date and time (YYYY-MM-DD HH:MM:SS)").format(repr(value))
			)
	return moment if moment.tzinfo is None else moment.replace(tzinfo=None)


_from_iso = datetime.datetime.fromisoformat


def plain_text(text, docname=None):
	"""An e-mail subject or ToDo text as a rule would write it: tags and extra spaces gone, the
	document's name replaced by a template placeholder."""
	text = _SPACE_RE.sub(" ", _TAG_RE.sub(" ", str(text or ""))).strip()
	if docname:
		text = text.replace(str(docname), "{{ doc.name }}")
	return text


def text_key(text):
	"""Texts that differ only in case, spacing or numbers are the same text."""
	return _DIGITS_RE.sub("0", text.lower())


def is_automated(event):
	if event.get("automated") or event.get("imported"):
		return True
	if event["type"] in ("assignment", "todo"):
		return plain_text(event.get("description")).startswith(AUTOMATION_TODO_PREFIX)
	return False


def scalar(value):
	if value is None or isinstance(value, bool | int | float | str):
		return "" if value is None else value
	return None


class Action:
	"""One thing a person did by hand: its kind, the key that says "the same thing again", when."""

	__slots__ = ("key", "kind", "sample", "when", "who")

	def __init__(self, kind, key, when, who, sample=None):
		self.kind = kind
		self.key = key
		self.when = when
		self.who = who
		self.sample = sample


class DocumentDigest:
	"""One document's history, reduced to what the patterns need."""

	__slots__ = ("actions", "created", "doctype", "initial", "name", "transitions")

	def __init__(self, doctype, name):
		self.doctype = doctype
		self.name = name
		self.initial = None
		self.created = None
		self.transitions = []  # (transition key, when), in time order
		self.actions = []

	def segments(self, until):
		"""(transition, start, end) for each stretch between transitions; ``end`` is the next
		transition or the end of the history."""
		starts = ([(CREATED, self.created)] if self.created else []) + sorted(
			self.transitions, key=lambda t: t[1]
		)
		for i, (key, start) in enumerate(starts):
			end = starts[i + 1][1] if i + 1 < len(starts) else max(until or start, start)
			yield key, start, end

	def first(self, kind):
		return next((action for action in self.actions if action.kind == kind), None)


def _required(event, keys, where):
	for key in keys:
		if event.get(key) in (None, ""):
			raise HistoryError(where, _("a {0} event needs {1}").format(event.get("type"), repr(key)))


def _where(event, position):
	return (event.get("_where") if isinstance(event, dict) else None) or f"event {position + 1}"


def iter_documents(events, transition_fields=TRANSITION_FIELDS, excluded=None):
	"""Group a stream of events into one DocumentDigest per document. ``excluded`` (a Counter)
	receives the events that are not manual work, by type."""
	current = None
	current_key = None
	# hashes of the documents already digested: a document seen again means an unsorted history
	# (its figures would count twice); hashes keep this small
	finished = set()
	event_types = frozenset(EVENT_TYPES)
	for position, event in enumerate(events):
		if not isinstance(event, dict) or event.get("type") not in event_types:
			where = _where(event, position)
			if not isinstance(event, dict):
				raise HistoryError(where, _("an event is a JSON object"))
			raise HistoryError(
				where,
				_("unknown event type {0} (use one of: {1})").format(
					repr(event.get("type")), ", ".join(EVENT_TYPES)
				),
			)
		kind = event["type"]
		doctype, name, when = event.get("doctype"), event.get("name"), event.get("when")
		if not doctype or name in (None, "") or not when:
			_required(event, ("doctype", "name", "when"), _where(event, position))
		if not isinstance(doctype, str) or not isinstance(name, str | int):
			raise HistoryError(_where(event, position), _("doctype and name are text"))
		document = (doctype, name if isinstance(name, str) else str(name))
		if document != current_key:
			if current is not None:
				finished.add(hash(current_key))
				yield current
			if hash(document) in finished:
				raise HistoryError(
					_where(event, position),
					_("events of {0} {1} are not together; sort the history by doctype, name, when").format(
						document[0], document[1]
					),
				)
			current = DocumentDigest(*document)
			current_key = document
		try:
			when = _from_iso(when)
		except (TypeError, ValueError):
			when = parse_when(when, f"{_where(event, position)}.when")
		if when.tzinfo is not None:
			when = when.replace(tzinfo=None)
		if (
			event.get("automated") or event.get("imported") or kind in ("assignment", "todo")
		) and is_automated(event):
			if excluded is not None:
				excluded[kind] += 1
			continue
		_digest(current, event, kind, when, position, transition_fields)
	if current is not None:
		yield current


_TEXT_KEYS = {
	"record": ("who",),
	"change": ("who", "field"),
	"assignment": ("who", "to"),
	"email": ("who", "template", "subject", "message", "to_field"),
	"todo": ("who", "to", "description"),
	"comment": ("who", "text"),
}


def _check_texts(event, position):
	for key in _TEXT_KEYS[event["type"]]:
		value = event.get(key)
		if value is not None and not isinstance(value, str):
			raise HistoryError(f"{_where(event, position)}.{key}", _("{0} is not text").format(repr(value)))


def _digest(digest, event, kind, when, position, transition_fields):
	_check_texts(event, position)
	who = event.get("who") or ""
	if kind == "record":
		values = event.get("doc") or {}
		if not isinstance(values, dict):
			raise HistoryError(f"{_where(event, position)}.doc", _("the document's values are a JSON object"))
		digest.initial = {
			field: value
			for field, value in values.items()
			if field not in IGNORED_FIELDS and scalar(value) is not None
		}
		digest.created = when
		return
	if kind == "change":
		_required(event, ("field",), _where(event, position))
		field = event["field"]
		new = scalar(event.get("new"))
		if field in IGNORED_FIELDS or new is None:
			return
		if field in transition_fields:
			digest.transitions.append(((field, new), when))
		else:
			digest.actions.append(Action(SET_VALUE, (field, new), when, who))
		return
	if kind == "assignment":
		_required(event, ("to",), _where(event, position))
		digest.actions.append(Action(ASSIGN, event["to"], when, who))
		return
	if kind == "email":
		template = event.get("template") or ""
		subject = plain_text(event.get("subject"), digest.name)
		if not template and not subject:
			raise HistoryError(_where(event, position), _("an email event needs 'template' or 'subject'"))
		key = ("template", template) if template else ("subject", text_key(subject))
		sample = {
			"template": template,
			"subject": subject,
			"message": event.get("message") or "",
			"to_field": event.get("to_field") or "",
		}
		digest.actions.append(Action(SEND_EMAIL, key, when, who, sample))
		return
	text = plain_text(event.get("description") if kind == "todo" else event.get("text"), digest.name)
	if not text:
		message = (
			_("a todo event needs its description") if kind == "todo" else _("a {0} event needs its text")
		)
		raise HistoryError(_where(event, position), message.format(kind))
	sample = {"text": text, "to": event.get("to") or ""}
	digest.actions.append(Action(ACTION_OF_EVENT[kind], text_key(text), when, who, sample))


def mark_todos_for_assignees(digest):
	"""A follow-up written for whoever the document was assigned to becomes a ToDo for the
	assignees, not for one listed user."""
	assigned = set()
	for action in digest.actions:
		if action.kind == ASSIGN:
			assigned.add(action.key)
		elif action.kind == CREATE_TODO and action.sample is not None:
			action.sample["for_assignee"] = action.sample.get("to") in assigned


def segment_of(segments, moment):
	found = None
	for segment in segments:
		if segment[1] <= moment:
			found = segment
		else:
			break
	return found
