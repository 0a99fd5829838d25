"""What one reader is shown of a rule's runs: the history panel, Why?, the log form and dry runs show
a person only the values they may read, and only rule editors see where messages and webhooks go.

- `Reader` works out, field by field, what the session user may read of documents (permission
  levels, linked doctypes and records), once per doctype and record for one answer.
- `redact_*` hide webhook addresses, headers, secrets and recipients from anyone who may not edit
  rules, and condition values of fields above the reader's permission level from everyone.
- `scrub` blots the values a reader may not read out of free text (reasons, errors, messages).
"""

import json
import re
from decimal import Decimal

import frappe
from frappe import _

from crm_automation.engine.fieldtypes import STANDARD_FIELDS
from crm_automation.trust.field_access import NOTHING, hidden_fields
from crm_automation.trust.roles import is_system_manager

HIDDEN = "•••"

# Results a reader who may not edit rules sees as written: these name only the document's own fields
# and records. Every other action (e-mail, notification, ToDo, assignment, webhook, SMS, and any
# type added later) names where a message or a request went, so the reader sees that it ran and how
# it ended, not where to.
ACTIONS_WITH_PLAIN_RESULTS = frozenset(("Set Value", "Add Tag", "Add Comment", "Create Document", "Reject"))
# A safety net over any free text (reasons, errors, results of other actions, rendered templates).
SENSITIVE_TEXT = re.compile(
	r"(?:https?|wss?|ftp)://\S+"  # URLs, with any credentials or tokens in them
	r"|[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses and user ids
	r"|bearer\s+\S+"
	r"|(?:authorization|token|secret|api[_-]?key|password)[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?\S+",
	re.IGNORECASE,
)


def redact_text(text):
	if not isinstance(text, str) or not text:
		return text
	return SENSITIVE_TEXT.sub(HIDDEN, text)


def redact_action(action, sees_recipients, reader=None, doctype=None, doc=None, secrets=()):
	"""An action row of a log (action_type, status, result...) as the reader may see it. With a
	`reader` (a Reader) and the log's `doctype`, a Set Value on a field they may not read shows the
	field, not its values, and `secrets` (values they may not read) are blotted out of its texts."""
	action = frappe._dict(action)
	if reader is not None and not reader.everything:
		if action.get("action_type") == SET_VALUE and not reader.may_read_value_field(
			doctype, action.get("value_field"), action.get("result"), doc
		):
			field = action.get("value_field") or _("a field")
			sentence = (
				_("{0}: {1} → {2}") if action.get("status") in ("Success", "Dry Run") else _("{0}: {1}")
			)
			action["result"] = sentence.format(field, HIDDEN, HIDDEN)
			for key in ("response", "error", "payload"):
				if action.get(key):
					action[key] = HIDDEN
		for key in ("result", "response", "error"):
			if key in action:
				action[key] = scrub(action[key], secrets)
	if sees_recipients:
		return action
	if action.get("action_type") not in ACTIONS_WITH_PLAIN_RESULTS and action.get("result"):
		action["result"] = _("{0} (recipients hidden)").format(_(action.get("status") or "Done"))
	for key in ("result", "response", "error"):
		if key in action:
			action[key] = redact_text(action[key])
	return action


def redact_trace(trace, doctype, user=None, doc=None, reader=None, found=None):
	"""A condition trace without the values of fields the reader may not read: own fields above
	their permission levels, fields of linked documents along a linked path (the link fields on the
	way, the linked doctype, the linked record now in the link, the field's level there) and child
	table aggregates (the table and the rows' field). Such an entry keeps its field and test, not the
	values, nor the expected value and the result, which together would tell the value (a rule may
	compare the field with the very value). Values hidden are added to `found` (a set), to blot out
	of texts."""
	reader = reader or Reader(user)
	if reader.everything:
		return trace
	shown = []
	for leaf in trace or []:
		if not isinstance(leaf, dict):
			continue
		if not reader.may_read_leaf(doctype, leaf, doc):
			if found is not None:
				for key in ("actual", "before", "expected"):
					found |= secret_forms(leaf.get(key))
			leaf = {**leaf, "actual": HIDDEN, "expected": HIDDEN, "result": None, "hidden": 1}
			if "before" in leaf:
				leaf["before"] = HIDDEN
		shown.append(leaf)
	return shown


def redact_log(log, sees_recipients, reader=None, doctype=None, doc=None):
	"""A log entry (a dict with reason, error, trace and actions) for one reader. With a `reader`, the
	trace and Set Value results hide what they may not read (see redact_trace, redact_action) and
	the values they may not read are blotted out of every text (reasons quote rendered messages
	and advanced-condition errors)."""
	secrets = set()
	if reader is not None and not reader.everything:
		doctype = doctype or log.get("reference_doctype")
		if isinstance(log.get("trace"), str):
			log["trace"] = _redacted_trace_text(log["trace"], doctype, reader, doc, secrets)
		elif log.get("trace"):
			log["trace"] = redact_trace(log["trace"], doctype, doc=doc, reader=reader, found=secrets)
		secrets |= reader.secrets_of(doc)
		secrets = sorted(secrets, key=len, reverse=True)
		if "actions" in log:
			shown_actions = []
			for action in log["actions"]:
				shown = redact_action(action, True, reader, doctype, doc, secrets)
				# The log's error joins its actions' tracebacks: a hidden row's goes from there too.
				hidden_error = action.get("response") if shown.get("response") == HIDDEN else None
				if hidden_error and isinstance(log.get("error"), str):
					log["error"] = log["error"].replace(hidden_error, HIDDEN)
				shown_actions.append(shown)
			log["actions"] = shown_actions
		for key in ("reason", "error"):
			if log.get(key):
				log[key] = scrub(log[key], secrets)
	if sees_recipients:
		return log
	for key in ("reason", "error"):
		if key in log:
			log[key] = redact_text(log[key])
	if "actions" in log:
		log["actions"] = [redact_action(action, False) for action in log["actions"]]
	return log


def _redacted_trace_text(text, doctype, reader, doc, found):
	try:
		trace = json.loads(text)
	except ValueError:
		return HIDDEN
	if not isinstance(trace, list):
		return HIDDEN
	return json.dumps(
		redact_trace(trace, doctype, doc=doc, reader=reader, found=found), indent=1, default=str
	)


# ----------------------------------------------------------------------------------------------
# What one reader may read, field by field
#
# Why?, the automations panel, the log form and dry runs show values of the fields the person
# reading may read: as Frappe's form shows them (permission levels, doctype and record rights of
# linked documents), System Managers and Administrator everything. Values they may not read are
# hidden where the answer names their field (condition traces, Set Value results); free texts
# (reasons, rendered messages, errors) have the values they may not read blotted out, as far as
# those values are known: the document's current values and the hidden trace values.

SET_VALUE = "Set Value"
# A Set Value logged before its field was recorded apart: "field: old → new", "field already is x",
# "Customer CUST-1: field: ..." (the last is not matched: hidden, as anything unreadable).
_SET_VALUE_SENTENCE = re.compile(r"^([A-Za-z0-9_]+)(?::| already is)")
_PATH_SEGMENT = re.compile(r"^([A-Za-z0-9_]+)(?:\[([^\[\]]+)\])?$")
MAX_LINK_HOPS = 2
# Values shorter than this are not blotted out of free text: "1" or "No" would garble every sentence.
MIN_SECRET_LENGTH = 3


def value_field_of(intent):
	"""The field a Set Value sets, as a path from the document the rule runs on (``status``, or
	``customer.credit_limit`` on a linked target): stored with its result so the history can hide
	its values from readers who may not read that field."""
	target = intent.get("target")
	if not target:
		return intent.get("field")
	hop = target["fieldname"] + (f"[{target['doctype']}]" if target.get("type_field") else "")
	return f"{hop}.{intent.get('field')}"


class Reader:
	"""What `user` (the session user) may read of documents, field by field, worked out once per
	doctype and record for one answer."""

	def __init__(self, user=None):
		self.user = user or frappe.session.user
		self.everything = is_system_manager(self.user)
		self._doctypes = {}
		self._records = {}

	def hidden(self, doctype):
		if self.everything:
			return NOTHING
		return hidden_fields(doctype, self.user)

	def may_read_doctype(self, doctype):
		if self.everything:
			return True
		if doctype not in self._doctypes:
			self._doctypes[doctype] = bool(
				isinstance(doctype, str)
				and frappe.db.exists("DocType", doctype)
				and frappe.has_permission(doctype, "read", user=self.user)
			)
		return self._doctypes[doctype]

	def may_read_field(self, doctype, fieldname, table=None):
		"""A field of `doctype` (of the rows of its `table` field) at a level the reader may read.
		A field the doctype does not have is not readable: nothing is shown of what is not known."""
		if self.everything:
			return True
		if not isinstance(fieldname, str) or not isinstance(doctype, str):
			return False
		if not frappe.db.exists("DocType", doctype):
			return False
		meta = frappe.get_meta(doctype)
		if table:
			table_field = meta.get_field(table)
			if not table_field or table_field.fieldtype not in frappe.model.table_fields:
				return False
			if not (
				fieldname in STANDARD_FIELDS or frappe.get_meta(table_field.options).has_field(fieldname)
			):
				return False
			return not self.hidden(doctype).hides(fieldname, table)
		if not (fieldname in STANDARD_FIELDS or meta.has_field(fieldname)):
			return False
		return not self.hidden(doctype).hides(fieldname)

	def may_read_record(self, doctype, name):
		key = (doctype, name)
		if key not in self._records:
			record = None
			if isinstance(name, str) and name and frappe.db.exists(doctype, name):
				record = frappe.get_doc(doctype, name)
				if not frappe.has_permission(doctype, "read", doc=record, user=self.user):
					record = None
			self._records[key] = record
		return self._records[key]

	def may_read_leaf(self, doctype, leaf, doc=None):
		"""Whether the reader may read the value a condition trace entry reports."""
		if self.everything:
			return True
		field = leaf.get("field")
		if not isinstance(field, str) or not field:
			return False
		if leaf.get("agg"):
			table, _dot, row_field = field.partition(".")
			if not self.may_read_field(doctype, table):
				return False
			return not row_field or self.may_read_field(doctype, row_field, table=table)
		return self.may_read_path(doctype, field, doc)

	def may_read_path(self, doctype, path, doc=None):
		"""A field of the document (``status``) or of a linked one (``customer.territory``,
		``party_name[Customer].customer_group``, two links at most): every link field on the way and
		the last field at a level the reader may read, in doctypes they may read. With `doc` (the
		document as it is now), the linked records now in the links must be ones they may read."""
		if self.everything:
			return True
		segments = [_PATH_SEGMENT.match(part.strip()) for part in path.split(".")]
		if not all(segments) or len(segments) > MAX_LINK_HOPS + 1:
			return False
		current, values = doctype, doc
		for segment in segments[:-1]:
			fieldname, declared = segment.group(1), segment.group(2)
			if not self.may_read_field(current, fieldname):
				return False
			df = frappe.get_meta(current).get_field(fieldname)
			if df.fieldtype == "Link" and (not declared or declared == df.options):
				linked, type_field = df.options, None
			elif df.fieldtype == "Dynamic Link" and declared:
				linked, type_field = declared, df.options
				if not self.may_read_field(current, type_field):
					return False
			else:
				return False
			if not self.may_read_doctype(linked):
				return False
			name = values.get(fieldname) if values is not None else None
			if name and type_field and values.get(type_field) != linked:
				name = None
			if name:
				values = self.may_read_record(linked, str(name))
				if values is None:
					return False
			else:
				values = None
			current = linked
		last, declared = segments[-1].group(1), segments[-1].group(2)
		return not declared and self.may_read_field(current, last)

	def may_read_value_field(self, doctype, value_field, result=None, doc=None):
		"""Whether the reader may read the values a Set Value result names (see value_field_of). A
		row logged before the field was recorded apart is read from its sentence."""
		if self.everything:
			return True
		if not value_field:
			match = _SET_VALUE_SENTENCE.match(result or "")
			if not match:
				return not result
			value_field = match.group(1)
		return bool(doctype) and self.may_read_path(doctype, value_field, doc)

	def secrets_of(self, doc):
		"""The values of `doc` (its own fields and its child rows') the reader may not read, in the
		forms a text would show them."""
		if self.everything or doc is None:
			return set()
		hidden = self.hidden(doc.doctype)
		found = set()
		for fieldname in hidden.own:
			value = doc.get(fieldname)
			if isinstance(value, list):  # a whole table the reader may not read
				for row in value:
					row = row.as_dict() if hasattr(row, "as_dict") else row
					for key, item in row.items() if isinstance(row, dict) else ():
						if key not in frappe.model.default_fields:
							found |= secret_forms(item)
			else:
				found |= secret_forms(value)
		for table, fieldnames in hidden.tables.items():
			for row in doc.get(table) or ():
				for fieldname in fieldnames:
					found |= secret_forms(row.get(fieldname))
		return found

	def shown_document(self, doc):
		"""A copy of `doc` without the fields the reader may not read (a child row's too): what a
		dry run renders and shows for the person asking. `doc` itself when nothing is hidden."""
		if self.everything or doc is None:
			return doc
		hidden = self.hidden(doc.doctype)
		if not hidden:
			return doc
		shown = frappe.get_doc(doc.as_dict())
		for fieldname in hidden.own:
			if isinstance(shown.get(fieldname), list):
				shown.set(fieldname, [])
			elif fieldname in shown.__dict__:
				delattr(shown, fieldname)
		for table, fieldnames in hidden.tables.items():
			for row in shown.get(table) or ():
				for fieldname in fieldnames:
					if fieldname in row.__dict__:
						delattr(row, fieldname)
		return shown


def secret_forms(value):
	"""The texts a value may appear as in a sentence: itself, and a whole number without ".0"."""
	if value is None or isinstance(value, bool) or value == "":
		return set()
	if isinstance(value, list | tuple | set | frozenset):
		return set().union(*(secret_forms(v) for v in value)) if value else set()
	if isinstance(value, dict):
		return set()
	forms = {str(value).strip()}
	if isinstance(value, float | Decimal) and value == int(value):
		forms.add(str(int(value)))
	if hasattr(value, "isoformat"):
		forms.add(value.isoformat())
	return {form for form in forms if len(form) >= MIN_SECRET_LENGTH and form != HIDDEN}


def scrub(text, secrets):
	"""`text` with every one of `secrets` (longest first) replaced by the hidden mark."""
	if not isinstance(text, str) or not text or not secrets:
		return text
	for secret in sorted(secrets, key=len, reverse=True):
		if secret in text:
			text = text.replace(secret, HIDDEN)
	return text


def scrub_all(value, secrets):
	"""`scrub` over every text in a dry run's answer (dicts and lists of texts)."""
	if not secrets:
		return value
	if isinstance(value, str):
		return scrub(value, secrets)
	if isinstance(value, dict):
		return {key: scrub_all(item, secrets) for key, item in value.items()}
	if isinstance(value, list | tuple):
		return [scrub_all(item, secrets) for item in value]
	return value
