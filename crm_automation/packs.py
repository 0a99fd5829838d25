"""Rule packs on a site: export rules to a pack, import a pack (checked completely first, then all
or nothing in one transaction, idempotent, imported rules disabled until enabled unless asked
otherwise). Webhook secrets and headers leave as a placeholder and are filled in at import."""

import datetime
import json

import frappe
from frappe import _
from frappe.utils import now
from frappe.utils.password import get_decrypted_password

from crm_automation.actions.webhooks import parse_headers
from crm_automation.engine.fieldtypes import STANDARD_FIELDS
from crm_automation.engine.packs import (
	PACK_FORMAT,
	PACK_VERSION,
	SECRET_FIELDS,
	SECRET_PLACEHOLDER,
	SECTIONS,
	check_pack,
	secret_placeholders,
)
from crm_automation.engine.schedules import MOMENT_FIELDS
from crm_automation.engine.workflow import split_list
from crm_automation.runtime.workflow_rules import clear_rule_cache, get_fields_if_doctype

# Set by the app, not by whoever wrote the rule: never part of a pack.
_INTERNAL = {
	*STANDARD_FIELDS,
	"doctype",
	"parent",
	"parentfield",
	"parenttype",
	"action_summary",
	"condition_summary",
	"last_assigned_user",
	"consecutive_failures",
	"disabled_reason",
	"recompute_status",
	"run_as",
	"secret",
	"rule_summary",
	"conditions_html",
	"stop_conditions_html",
	"sequence_timeline",
	"wait_summary",
	"_user_tags",
	"_comments",
	"_assign",
	"_liked_by",
	"_seen",
}
# An inbound webhook's credentials belong to one site: never exported, never imported (the importer
# generates a URL of their own, api/inbound_webhooks.py).
_WEBHOOK_CREDENTIALS = {"webhook_token_hash", "webhook_token_hint", "webhook_secret", "webhook_html"}
_INTERNAL |= _WEBHOOK_CREDENTIALS
# Who a rule runs as and who made it are never taken from a pack, even a hand-written one: the
# importer becomes the run-as user (rules.py's set_run_as then holds for them as for any save).
_NOT_IMPORTED = {"run_as", "owner", "creation", "modified", "modified_by", *_WEBHOOK_CREDENTIALS}
# A row's identity is the site's: a pack row naming another rule's row would take it over.
_NOT_IMPORTED_IN_ROWS = _NOT_IMPORTED | {"name", "parent", "parentfield", "parenttype"}
# How far a schedule has got is this site's bookkeeping (engine/schedules.MOMENT_FIELDS): the importer's
# save works out its own next moment.
_INTERNAL |= set(MOMENT_FIELDS)
_NOT_IMPORTED |= set(MOMENT_FIELDS)
_JSON_FIELDS = {
	"conditions",
	"stop_conditions",
	"until_conditions",
	"step_conditions",
	"field_map",
	"webhook_field_map",
}
# Packs written before headers were a secret carry them as an object; they are still read.
_JSON_ON_IMPORT = _JSON_FIELDS | {"headers"}
_SAVEPOINT = "crm_automation_import_pack"


def _clean(row):
	out = {}
	for key, value in row.items():
		if (
			key in _INTERNAL
			or key.startswith("__")
			or (value in (None, "", [], 0.0) and key not in ("enabled", "level", "min_score"))
		):
			continue
		if key in _JSON_FIELDS and isinstance(value, str):
			try:
				value = json.loads(value)
			except ValueError:
				pass
		if isinstance(value, list):
			value = [_clean(child if isinstance(child, dict) else child.as_dict()) for child in value]
		if isinstance(value, datetime.timedelta):
			seconds = int(value.total_seconds())
			value = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
		elif hasattr(value, "isoformat"):
			value = str(value)
		out[key] = value
	return out


def export_rule(doc):
	exported = _clean(doc.as_dict(no_default_fields=False))
	if doc.doctype == "Workflow Rule":
		# Stored encrypted; a pack carries only the fact that there is one to fill in.
		for action, row in zip(doc.get("actions") or [], exported.get("actions") or [], strict=False):
			for fieldname in SECRET_FIELDS:
				row.pop(fieldname, None)
				if action.get(fieldname):
					row[fieldname] = SECRET_PLACEHOLDER
	return exported


def export_pack(names_by_section=None, name=None):
	"""A pack of the site's rules (all of them, or the named ones per section)."""
	pack = {
		"format": PACK_FORMAT,
		"version": PACK_VERSION,
		"name": name or _("Rules exported from {0}").format(frappe.local.site),
		"exported_from": frappe.local.site,
		"exported_on": now(),
	}
	for section, (doctype, _key) in SECTIONS.items():
		wanted = (names_by_section or {}).get(section)
		names = frappe.get_all(doctype, pluck="name", order_by="name asc") if wanted is None else wanted
		pack[section] = [export_rule(frappe.get_doc(doctype, n)) for n in names]
		if section == "escalation_policies":
			for item in pack[section]:
				if item.get("holiday_list"):
					item["holidays"] = [
						str(d)
						for d in frappe.get_all(
							"Holiday", filters={"parent": item["holiday_list"]}, pluck="holiday_date"
						)
					]
	return pack


def site_problems(data):
	"""What the engine cannot know offline: do the roles, users, templates and lists exist here?"""
	problems = []
	checks = (
		("to_role", "Role"),
		("user_group", "User Group"),
		("email_template", "Email Template"),
		("holiday_list", "Holiday List"),
		("target_doctype", "DocType"),
		("activity_type", "CRM Activity Type"),
		("calendar_policy", "Escalation Policy"),
		("send_window_policy", "Escalation Policy"),
	)

	# A sequence step may take its calendar from an Escalation Policy imported with it.
	in_pack = {
		(item.get("policy_name") or item.get("name"))
		for item in data.get("escalation_policies") or []
		if isinstance(item, dict)
	}

	def visit(where, row):
		for fieldname, doctype in checks:
			value = row.get(fieldname)
			if fieldname in ("calendar_policy", "send_window_policy") and value in in_pack:
				continue
			if value and not frappe.db.exists(doctype, value):
				problems.append(
					_("{0}: {1} {2} does not exist on this site").format(
						f"{where}.{fieldname}", _(doctype), repr(value)
					)
				)
		if (
			row.get("action_type") in ("Assign", "System Notification", "Create ToDo")
			or row.get("reassign_to") == "User"
		):
			for user in split_list(row.get("to_users")):
				if not frappe.db.exists("User", user):
					problems.append(
						_("{0}: user {1} does not exist on this site").format(f"{where}.to_users", repr(user))
					)
		for key, value in row.items():
			if isinstance(value, list):
				for i, child in enumerate(value):
					if isinstance(child, dict):
						visit(f"{where}.{key}[{i}]", child)

	for section, (_doctype, name_key) in SECTIONS.items():
		for i, item in enumerate(data.get(section) or []):
			if isinstance(item, dict):
				visit(f"{section}[{i}] ({item.get(name_key)})", item)
	return problems


def _doc_values(doctype, item):
	values = {"doctype": doctype}
	child_doctypes = {df.fieldname: df.options for df in frappe.get_meta(doctype).get_table_fields()}
	for key, value in item.items():
		if (key == "holidays" and doctype == "Escalation Policy") or key in _NOT_IMPORTED:
			continue
		if key in _JSON_ON_IMPORT and isinstance(value, dict | list):
			value = json.dumps(value, indent=1, ensure_ascii=False)
		elif isinstance(value, list):
			value = [
				{
					**{
						k: json.dumps(v, indent=1, ensure_ascii=False)
						if k in _JSON_ON_IMPORT and isinstance(v, dict | list)
						else v
						for k, v in child.items()
						if k not in _NOT_IMPORTED_IN_ROWS
					},
					**_times(child_doctypes.get(key), child),
				}
				for child in value
			]
		values[key] = value
	values.update(_times(doctype, item))
	values["run_as"] = frappe.session.user
	return values


def _times(doctype, row):
	"""Time fields as they will be stored, so importing twice is a no-op: one the pack leaves out
	stays empty (Frappe would give a new row the current time; "" is not filled in and is stored as
	NULL), and "09:00" is "09:00:00", as the site gives it back."""
	if not doctype or not isinstance(row, dict):
		return {}
	times = {}
	for df in frappe.get_meta(doctype).fields:
		if df.fieldtype != "Time":
			continue
		value = row.get(df.fieldname)
		if value in (None, ""):
			times[df.fieldname] = ""
			continue
		try:
			times[df.fieldname] = frappe.utils.get_time(value).strftime("%H:%M:%S")
		except Exception:
			pass  # not a time: the document's own validation names the field
	return times


def import_pack(data, dry_run=False, enable=False, secrets=None):
	"""Returns {"created": [...], "updated": [...], "unchanged": [...], "problems": [...],
	"to_fill": [...]}. Nothing is written when there is any problem, or on a dry run: the import is
	one transaction (no commit inside; an index a Time rule needs is added after the caller commits).

	``secrets`` fills the pack's placeholders: {"<rule>:<action row>:secret|headers": value}. A
	placeholder left unfilled keeps the value the rule has on this site (same row, same URL), or stays
	a placeholder, and a rule with one left cannot be enabled."""
	known_types = set(frappe.get_all("CRM Activity Type", pluck="name"))
	check = check_pack(data, get_fields_if_doctype, known_types)
	problems = [str(p) for p in check.problems]
	if not problems:
		problems = site_problems(data)
	report = {"created": [], "updated": [], "unchanged": [], "problems": problems, "to_fill": []}
	if problems:
		return report
	fills, problems = _secret_fills(data, secrets or {}, enable)
	report["problems"] = problems
	report["to_fill"] = sorted(key for key, value in fills.items() if value is None)
	if problems:
		return report
	callbacks = _pending_callbacks()
	frappe.db.savepoint(_SAVEPOINT)
	try:
		# Policies first: a rule's follow-up step may take its calendar from one of them.
		for section, (doctype, name_key) in sorted(
			SECTIONS.items(), key=lambda s: s[0] != "escalation_policies"
		):
			for i, item in enumerate(data.get(section) or []):
				# Secrets given now (or carried in clear by an old pack) may differ from the ones stored,
				# which no export can show: such a rule counts as changed.
				given = _given_secrets(section, item, secrets or {}) + _clear_secrets(item)
				_import_one(doctype, name_key, _with_fills(section, i, item, fills), enable, report, given)
	except Exception as error:
		_roll_back(callbacks)
		report["problems"].append(_describe_failure(error))
		report["created"], report["updated"] = [], []
		return report
	if dry_run:
		_roll_back(callbacks)
	clear_rule_cache()
	return report


def _secret_fills(data, secrets, enable):
	"""{placeholder key: clear value, or None when it stays to be filled in}, and the problems."""
	placeholders = secret_placeholders(data)
	known = {p["key"] for p in placeholders}
	problems = [
		_("--secret {0}: the pack has no secret to fill in by that name (it has: {1})").format(
			key, ", ".join(sorted(known)) or _("none")
		)
		for key in secrets
		if key not in known
	]
	fills = {}
	for placeholder in placeholders:
		key = placeholder["key"]
		value = secrets.get(key)
		if value and placeholder["field"] == "headers":
			try:
				parse_headers(value)
			except ValueError as error:
				problems.append(f"{placeholder['path']} ({key}): {error}")
		fills[key] = value or _value_on_site(data, placeholder)
		rule_enabled = enable or frappe.db.get_value("Workflow Rule", placeholder["rule"], "enabled")
		if fills[key] is None and rule_enabled:
			problems.append(
				_(
					"{0}: to be filled in before the rule can be enabled; pass --secret '{1}=...' or import it disabled"
				).format(placeholder["path"], key)
			)
	return fills, problems


def _value_on_site(data, placeholder):
	"""What the rule on this site has in the same action row, when that row calls the same URL."""
	if not frappe.db.exists("Workflow Rule", placeholder["rule"]):
		return None
	action = data["workflow_rules"][placeholder["index"]]["actions"][placeholder["row"] - 1]
	row = frappe.db.get_value(
		"Workflow Rule Action",
		{"parent": placeholder["rule"], "parenttype": "Workflow Rule", "idx": placeholder["row"]},
		["name", "url"],
		as_dict=True,
	)
	if not row or (row.url or "").strip() != (action.get("url") or "").strip():
		return None
	value = get_decrypted_password(
		"Workflow Rule Action", row.name, placeholder["field"], raise_exception=False
	)
	return None if value == SECRET_PLACEHOLDER else value


def _with_fills(section, index, item, fills):
	if section != "workflow_rules" or not isinstance(item.get("actions"), list):
		return item
	placeholders = secret_placeholders({"workflow_rules": [item]})
	if not placeholders:
		return item
	actions = [dict(action) for action in item["actions"]]
	for placeholder in placeholders:
		value = fills.get(placeholder["key"])
		actions[placeholder["row"] - 1][placeholder["field"]] = (
			value if value is not None else SECRET_PLACEHOLDER
		)
	return {**item, "actions": actions}


def _pending_callbacks():
	return {name: len(getattr(frappe.db, name)._functions) for name in ("before_commit", "after_commit")}


def _roll_back(callbacks):
	"""Undo the import: its rows, and what its saves queued for after the commit (jobs, indexes),
	which a rollback to a savepoint would otherwise leave to run at the caller's next commit."""
	frappe.db.rollback(save_point=_SAVEPOINT)
	for name, length in callbacks.items():
		queue = getattr(frappe.db, name)._functions
		while len(queue) > length:
			queue.pop()


def _describe_failure(error):
	text = frappe.utils.strip_html(str(error)) or error.__class__.__name__
	doc = getattr(error, "crm_automation_item", None)
	return f"{doc}: {text}" if doc else text


def _import_one(doctype, name_key, item, enable, report, given=()):
	name = item.get(name_key)
	try:
		_import_item(doctype, name, item, enable, report, given)
	except Exception as error:
		error.crm_automation_item = f"{doctype} {name}"
		raise


def _import_item(doctype, name, item, enable, report, given):
	values = _doc_values(doctype, item)
	filled = sorted(set(given))
	if frappe.db.exists(doctype, name):
		doc = frappe.get_doc(doctype, name)
		before = export_rule(doc)
		enabled = doc.enabled
		for table in [df.fieldname for df in doc.meta.get_table_fields()]:
			doc.set(table, [])
		doc.update(values)
		doc.enabled = 1 if enable else enabled
		# Compare like with like: the defaults a save would fill in, filled in now.
		doc._set_defaults()
		if export_rule(doc) == before and not filled:
			report["unchanged"].append(f"{doctype}: {name}")
			return
		changed = sorted(
			k for k in set(before) | set(export_rule(doc)) if before.get(k) != export_rule(doc).get(k)
		)
		changed += [f for f in filled if f not in changed]
		doc.save(ignore_permissions=True)
		report["updated"].append(f"{doctype}: {name} ({', '.join(changed)})")
		return
	doc = frappe.get_doc({**values, "enabled": 1 if enable else 0})
	doc.insert(ignore_permissions=True)
	report["created"].append(f"{doctype}: {name}" + ("" if enable else " (disabled)"))


def _given_secrets(section, item, secrets):
	if section != "workflow_rules":
		return []
	return sorted(
		{p["field"] for p in secret_placeholders({"workflow_rules": [item]}) if p["key"] in secrets}
	)


def _clear_secrets(item):
	"""Secret fields a pack carries in clear (packs written before secrets were left out)."""
	actions = item.get("actions") if isinstance(item.get("actions"), list) else []
	found = set()
	for action in actions:
		for fieldname in SECRET_FIELDS:
			if isinstance(action, dict) and action.get(fieldname) and action[fieldname] != SECRET_PLACEHOLDER:
				found.add("actions." + fieldname)
	return sorted(found)
