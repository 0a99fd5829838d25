"""A site's history as the miner's events (``crm_automation.engine.mining``), streamed.

Documents are read in keyset-paginated batches through ``frappe.get_list`` (so only records the
user may read, with their permission query conditions and user permissions); for each batch one
query each reads its Version rows, ToDos, sent Communications and Comments. Only one batch is held
at a time: memory stays flat however long the history.

Not manual work, left out: Version rows written by a data import or on behalf of another process
(``data_import``, ``updater_reference``), ToDos from an Assignment Rule or written by this app,
automated messages, and every ToDo, Communication or Comment an Automation Log entry created.
"""

import json
import os
import tempfile

import frappe
from frappe import _
from frappe.utils import add_days, get_datetime, now_datetime, strip_html

from crm_automation.engine.mining import AUTOMATION_TODO_PREFIX, DEFAULT_MINUTES, TRANSITION_FIELDS
from crm_automation.offline.history_files import header
from crm_automation.trust.field_access import hidden_fields

BATCH_SIZE = 500
CATEGORY_FIELDTYPES = ("Select", "Link", "Check")
# Links that name the document's own lineage or bookkeeping: never a condition.
SKIPPED_FIELDS = frozenset(("naming_series", "amended_from", "company", "currency", "letter_head"))
DEFAULT_DOCTYPES = ("Lead", "Opportunity", "Sales Order", "Issue")


def snapshot_fields(doctype):
	"""Fields whose values the miner may decide on: categories (Select, Link, Check)."""
	meta = frappe.get_meta(doctype)
	return [
		df.fieldname
		for df in meta.fields
		if df.fieldtype in CATEGORY_FIELDTYPES and df.fieldname not in SKIPPED_FIELDS and not df.is_virtual
	]


def email_fields(doctype):
	meta = frappe.get_meta(doctype)
	return [df.fieldname for df in meta.fields if df.fieldtype == "Data" and df.options == "Email"]


def readable_doctypes(doctypes, user=None):
	"""(readable, refused): the doctypes ``user`` may read, and the others."""
	readable, refused = [], []
	for doctype in doctypes:
		if frappe.db.exists("DocType", doctype) and frappe.has_permission(doctype, "read", user=user):
			readable.append(doctype)
		else:
			refused.append(doctype)
	return readable, refused


def period(days):
	until = now_datetime()
	return add_days(until, -int(days)), until


def iter_events(doctypes, since, until=None, user=None, batch_size=BATCH_SIZE):
	"""The events of every document of ``doctypes`` created in [since, until) that ``user`` may
	read, grouped by document and in time order within it."""
	for doctype in doctypes:
		yield from _doctype_events(
			doctype, get_datetime(since), get_datetime(until or now_datetime()), user, batch_size
		)


def _doctype_events(doctype, since, until, user, batch_size):
	# Only fields the reader may read: the list query leaves the others out, but their values were
	# still read back from the Version rows of every change (and proposed as rules to the reader).
	hidden = hidden_fields(doctype, user or frappe.session.user)
	fields = [f for f in snapshot_fields(doctype) if not hidden.hides(f)]
	addresses = [f for f in email_fields(doctype) if not hidden.hides(f)]
	last = ""
	while True:
		rows = frappe.get_list(
			doctype,
			fields=["name", "creation", "owner", *fields, *addresses],
			filters=[["creation", ">=", since], ["creation", "<", until], ["name", ">", last]],
			order_by="name asc",
			limit_page_length=batch_size,
			user=user,
		)
		if not rows:
			return
		last = rows[-1].name
		yield from _batch_events(doctype, rows, fields, addresses)
		if len(rows) < batch_size:
			return


def _batch_events(doctype, rows, fields, addresses):
	names = [row.name for row in rows]
	made_by_automation = _automation_created(doctype, names)
	set_before_save = _set_by_validate_rules(doctype, names)
	by_document = {name: [] for name in names}
	first_old = {name: {} for name in names}
	tracked = sorted(set(fields) | set(TRANSITION_FIELDS))
	for name, when, who, field, old, new, imported in _tracked_changes(doctype, names, tracked):
		old, new = _plain(old), _plain(new)
		old, new = "" if old is None else old, "" if new is None else new
		set_by_rules = set_before_save.get(name)
		by_document[name].append(
			{
				"type": "change",
				"doctype": doctype,
				"name": name,
				"when": str(when),
				"who": who,
				"field": field,
				"old": old,
				"new": new,
				"imported": bool(imported),
				"automated": bool(set_by_rules) and _set_by_rule(set_by_rules, field, when),
			}
		)
		# an imported change still changed the value: undoing it gives the value as created
		first_old[name].setdefault(field, old)
	for event in _todos(doctype, names, made_by_automation):
		by_document[event["name"]].append(event)
	for event in _emails(doctype, names, made_by_automation, rows, addresses):
		by_document[event["name"]].append(event)
	for event in _comments(doctype, names, made_by_automation):
		by_document[event["name"]].append(event)
	for row in rows:
		current = {field: _plain(row.get(field)) for field in fields}
		# the document as created: its current values with every tracked change undone
		created = {**current, **first_old[row.name]}
		yield {
			"type": "record",
			"doctype": doctype,
			"name": row.name,
			"when": str(row.creation),
			"who": row.owner,
			"doc": created,
		}
		yield from sorted(by_document[row.name], key=lambda event: event["when"])


def _plain(value):
	if value is None or isinstance(value, bool | int | float | str):
		return value
	return str(value)


def _tracked_changes(doctype, names, tracked):
	"""(name, when, who, field, old, new, imported) of each change of a ``tracked`` field in the
	documents' Version rows, in order. MariaDB unpacks the JSON itself (JSON_TABLE), so only the
	changes wanted cross the wire; elsewhere Python does."""
	if frappe.db.db_type == "mariadb":
		return frappe.db.sql(
			"""select v.docname, cast(v.creation as char), v.owner, change_row.field, change_row.old_value, change_row.new_value,
				(json_exists(v.data, '$.updater_reference.doctype')
					or coalesce(json_value(v.data, '$.data_import'), '') not in ('', 'false', '0', 'null')) as imported
			from `tabVersion` v, json_table(v.data, '$.changed[*]' columns(
				position for ordinality,
				field varchar(140) path '$[0]', old_value longtext path '$[1]', new_value longtext path '$[2]'
			)) as change_row
			where v.ref_doctype = %(doctype)s and v.docname in %(names)s and change_row.field in %(tracked)s
			order by v.docname, v.creation, change_row.position""",
			{"doctype": doctype, "names": names, "tracked": tracked},
		)
	return _changes_in_python(doctype, names, tracked)


def _changes_in_python(doctype, names, tracked):
	tracked = set(tracked)
	for name, when, who, data in frappe.db.sql(
		"""select docname, creation, owner, data from `tabVersion`
		where ref_doctype = %(doctype)s and docname in %(names)s order by docname, creation""",
		{"doctype": doctype, "names": names},
	):
		try:
			diff = json.loads(data or "{}")
		except ValueError:
			continue
		if not isinstance(diff, dict):
			continue
		imported = bool(diff.get("data_import") or diff.get("updater_reference"))
		for change in diff.get("changed") or ():
			if len(change) >= 3 and change[0] in tracked:
				yield name, when, who, change[0], change[1], change[2], imported


def _automation_created(doctype, names):
	"""(doctype, name) of every record an Automation Log entry on these documents created."""
	if not frappe.db.table_exists("Automation Log Action"):
		return set()
	rows = frappe.db.sql(
		"""select action.created_doctype, action.created_name
		from `tabAutomation Log Action` action join `tabAutomation Log` log on log.name = action.parent
		where log.reference_doctype = %(doctype)s and log.reference_name in %(names)s
		and ifnull(action.created_name, '') != ''""",
		{"doctype": doctype, "names": names},
	)
	created = {(kind, name) for kind, name in rows}
	queues = [name for kind, name in created if kind == "Email Queue"]
	if queues:
		for (communication,) in frappe.db.sql(
			"select communication from `tabEmail Queue` where name in %(names)s and ifnull(communication, '') != ''",
			{"names": queues},
		):
			created.add(("Communication", communication))
	return created


# A Validate rule's Set Value lands in the user's own save: its Version row follows the rule's log
# entry within the same request.
SAME_SAVE_SECONDS = 60


def _set_by_validate_rules(doctype, names):
	"""name → [(when, field)] for the fields Validate rules set on these documents."""
	if not frappe.db.table_exists("Automation Log Action"):
		return {}
	found = {}
	for name, when, result in frappe.db.sql(
		"""select log.reference_name, log.creation, action.result
		from `tabAutomation Log Action` action join `tabAutomation Log` log on log.name = action.parent
		where log.reference_doctype = %(doctype)s and log.reference_name in %(names)s
		and log.event = 'validate' and action.action_type = 'Set Value' and action.status = 'Success'""",
		{"doctype": doctype, "names": names},
	):
		field = (result or "").split(":", 1)[0].strip()
		if field:
			found.setdefault(name, []).append((get_datetime(when), field))
	return found


def _set_by_rule(set_by_rules, field, when):
	moment = get_datetime(when)
	return any(
		changed == field and 0 <= (moment - logged).total_seconds() <= SAME_SAVE_SECONDS
		for logged, changed in set_by_rules
	)


def _automation_texts():
	return {AUTOMATION_TODO_PREFIX, _(AUTOMATION_TODO_PREFIX)}


def _default_assignment_text(doctype, name):
	return {f"Assignment for {doctype} {name}", _("Assignment for {0} {1}").format(doctype, name)}


def _todos(doctype, names, made_by_automation):
	automation_texts = _automation_texts()
	rows = frappe.db.sql(
		"""select name, reference_name, allocated_to, assigned_by, owner, description, creation, assignment_rule
		from `tabToDo` where reference_type = %(doctype)s and reference_name in %(names)s
		order by reference_name, creation""",
		{"doctype": doctype, "names": names},
		as_dict=True,
	)
	for row in rows:
		text = strip_html(row.description or "").strip()
		automated = bool(
			row.assignment_rule
			or ("ToDo", row.name) in made_by_automation
			or any(text.startswith(t) for t in automation_texts)
		)
		common = {
			"doctype": doctype,
			"name": row.reference_name,
			"when": str(row.creation),
			"who": row.assigned_by or row.owner,
			"to": row.allocated_to,
			"automated": automated,
		}
		yield {"type": "assignment", **common}
		if not automated and text and text not in _default_assignment_text(doctype, row.reference_name):
			yield {"type": "todo", **common, "description": text}


def _emails(doctype, names, made_by_automation, rows, addresses):
	address_of = {row.name: {row.get(field): field for field in addresses if row.get(field)} for row in rows}
	for row in frappe.db.sql(
		"""select name, reference_name, subject, email_template, recipients, owner, creation, left(content, 2000) as content
		from `tabCommunication` where reference_doctype = %(doctype)s and reference_name in %(names)s
		and communication_type = 'Communication' and communication_medium = 'Email' and sent_or_received = 'Sent'
		order by reference_name, creation""",
		{"doctype": doctype, "names": names},
		as_dict=True,
	):
		recipients = [
			part.strip() for part in (row.recipients or "").replace(";", ",").split(",") if part.strip()
		]
		to_field = next(
			(address_of[row.reference_name][r] for r in recipients if r in address_of[row.reference_name]), ""
		)
		yield {
			"type": "email",
			"doctype": doctype,
			"name": row.reference_name,
			"when": str(row.creation),
			"who": row.owner,
			"subject": row.subject or "",
			"template": row.email_template or "",
			"message": row.content or "",
			"to_field": to_field,
			"automated": ("Communication", row.name) in made_by_automation,
		}


def _comments(doctype, names, made_by_automation):
	for row in frappe.db.sql(
		"""select name, reference_name, content, owner, creation from `tabComment`
		where reference_doctype = %(doctype)s and reference_name in %(names)s and comment_type = 'Comment'
		order by reference_name, creation""",
		{"doctype": doctype, "names": names},
		as_dict=True,
	):
		text = strip_html(row.content or "").strip()
		if text:
			yield {
				"type": "comment",
				"doctype": doctype,
				"name": row.reference_name,
				"when": str(row.creation),
				"who": row.owner,
				"text": text,
				"automated": ("Comment", row.name) in made_by_automation,
			}


def minutes_per_action():
	"""Minutes saved per action type, as CRM Automation Settings says (the efficacy report's)."""
	settings = frappe.get_cached_doc("CRM Automation Settings")
	return {
		kind: settings.get("minutes_" + frappe.scrub(kind)) or minutes
		for kind, minutes in DEFAULT_MINUTES.items()
	}


def write_history_file(path, doctypes=None, days=90):
	"""Write the history of ``doctypes`` over the last ``days`` days to ``path`` (JSON lines, the
	format `crm-automation suggest` reads), through a temporary file so a failed export leaves
	nothing half-written. Returns the number of events written."""
	readable, refused = readable_doctypes(doctypes or DEFAULT_DOCTYPES)
	if refused:
		frappe.throw(_("Not document types you may read: {0}").format(", ".join(refused)))
	since, until = period(days)
	folder = os.path.dirname(os.path.abspath(path))
	descriptor, temporary = tempfile.mkstemp(prefix=".history-", suffix=".partial", dir=folder)
	count = 0
	try:
		with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
			first = header(
				since, until, site=frappe.local.site, doctypes=readable, minutes=minutes_per_action()
			)
			handle.write(json.dumps(first, ensure_ascii=False) + "\n")
			for event in iter_events(readable, since, until):
				handle.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
				count += 1
		os.replace(temporary, path)
	except BaseException:
		os.unlink(temporary)
		raise
	return count
