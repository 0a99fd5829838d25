"""Rule packs on a site: export rules to a pack, import a pack (checked completely first, then all
or nothing, idempotent, imported rules disabled until enabled unless asked otherwise)."""

import datetime
import json

import frappe
from frappe import _
from frappe.utils import now

from crm_automation.engine.packs import PACK_FORMAT, PACK_VERSION, SECTIONS, check_pack
from crm_automation.engine.workflow import split_list
from crm_automation.rules import clear_rule_cache, get_fields_if_doctype

# Set by the app, not by whoever wrote the rule: never part of a pack.
_INTERNAL = {
	"name", "owner", "creation", "modified", "modified_by", "docstatus", "idx", "doctype", "parent",
	"parentfield", "parenttype", "action_summary", "condition_summary", "last_assigned_user",
	"consecutive_failures", "disabled_reason", "recompute_status", "secret", "rule_summary",
	"conditions_html", "_user_tags", "_comments", "_assign", "_liked_by", "_seen",
}
_JSON_FIELDS = {"conditions", "stop_conditions", "field_map", "headers"}


def _clean(row):
	out = {}
	for key, value in row.items():
		if key in _INTERNAL or key.startswith("__") or value in (None, "", [], 0.0) and key not in ("enabled", "level", "min_score"):
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
	return _clean(doc.as_dict(no_default_fields=False))


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
					item["holidays"] = [str(d) for d in frappe.get_all("Holiday", filters={"parent": item["holiday_list"]}, pluck="holiday_date")]
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
	)

	def visit(where, row):
		for fieldname, doctype in checks:
			value = row.get(fieldname)
			if value and not frappe.db.exists(doctype, value):
				problems.append(f"{where}.{fieldname}: {doctype} {value!r} does not exist on this site")
		if row.get("action_type") in ("Assign", "System Notification", "Create ToDo") or row.get("reassign_to") == "User":
			for user in split_list(row.get("to_users")):
				if not frappe.db.exists("User", user):
					problems.append(f"{where}.to_users: user {user!r} does not exist on this site")
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
	for key, value in item.items():
		if key == "holidays" and doctype == "Escalation Policy":
			continue
		if key in _JSON_FIELDS and isinstance(value, dict | list):
			value = json.dumps(value, indent=1, ensure_ascii=False)
		elif isinstance(value, list):
			value = [
				{k: json.dumps(v, indent=1, ensure_ascii=False) if k in _JSON_FIELDS and isinstance(v, dict | list) else v for k, v in child.items()}
				for child in value
			]
		values[key] = value
	return values


def import_pack(data, dry_run=False, enable=False):
	"""Returns {"created": [...], "updated": [...], "unchanged": [...], "problems": [...]}. Nothing is
	written when there is any problem, or on a dry run."""
	known_types = set(frappe.get_all("CRM Activity Type", pluck="name"))
	check = check_pack(data, get_fields_if_doctype, known_types)
	problems = [str(p) for p in check.problems]
	if not problems:
		problems = site_problems(data)
	report = {"created": [], "updated": [], "unchanged": [], "problems": problems}
	if problems:
		return report
	frappe.db.savepoint("crm_automation_import_pack")
	try:
		for section, (doctype, name_key) in SECTIONS.items():
			for item in data.get(section) or []:
				_import_one(doctype, name_key, item, enable, report)
	except Exception as error:
		frappe.db.rollback(save_point="crm_automation_import_pack")
		report["problems"].append(frappe.utils.strip_html(str(error)) or error.__class__.__name__)
		report["created"], report["updated"] = [], []
		return report
	if dry_run:
		frappe.db.rollback(save_point="crm_automation_import_pack")
	clear_rule_cache()
	return report


def _import_one(doctype, name_key, item, enable, report):
	name = item.get(name_key)
	values = _doc_values(doctype, item)
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
		if export_rule(doc) == before:
			report["unchanged"].append(f"{doctype}: {name}")
			return
		changed = sorted(k for k in set(before) | set(export_rule(doc)) if before.get(k) != export_rule(doc).get(k))
		doc.save(ignore_permissions=True)
		report["updated"].append(f"{doctype}: {name} ({', '.join(changed)})")
		return
	doc = frappe.get_doc({**values, "enabled": 1 if enable else 0})
	doc.insert(ignore_permissions=True)
	report["created"].append(f"{doctype}: {name}" + ("" if enable else " (disabled)"))
