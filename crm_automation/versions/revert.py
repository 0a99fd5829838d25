"""Revert a Workflow Rule to one of its versions: the version's content put back on the rule and
saved as any edit is, by the person reverting. So every check of a save holds for them (their run-as
rights, the doctypes and fields they may read, webhook addresses): reverting a rule someone else
wrote gains nothing a hand edit would not. The save writes a new version ("reverted to v3") and a
comment on the rule says who reverted to what."""

import json

import frappe
from frappe import _
from frappe.utils.password import get_decrypted_password

from crm_automation.engine.rule_diff import same
from crm_automation.trust.roles import is_system_manager
from crm_automation.versions.snapshots import (
	VERSION_DOCTYPE,
	content_fields,
	parse_snapshot,
	snapshot_of,
)

SECRET_FIELDS = ("secret", "headers")


def version_snapshot(rule_name, version_no):
	"""The snapshot of version ``version_no`` of the rule; a clear error when there is none."""
	text = frappe.db.get_value(
		VERSION_DOCTYPE, {"rule": rule_name, "version_no": int(version_no)}, "snapshot"
	)
	if text is None:
		frappe.throw(
			_("Workflow Rule {0} has no version {1}").format(frappe.bold(rule_name), frappe.bold(version_no)),
			frappe.DoesNotExistError,
		)
	return parse_snapshot(text)


def revert_to(rule_name, version_no):
	"""Save the rule with version ``version_no``'s content; returns the new version's number, or
	None when the rule already has that content (nothing saved)."""
	snapshot = version_snapshot(rule_name, version_no)
	rule = frappe.get_doc("Workflow Rule", rule_name)
	if same(snapshot_of(rule), snapshot):
		return None
	apply_snapshot(rule, snapshot)
	rule.flags.crm_automation_reverted_to = int(version_no)
	rule.save()  # the reverting user's own save: permission, validation, run-as
	rule.add_comment("Info", _("Reverted to version {0} by {1}").format(int(version_no), frappe.session.user))
	return frappe.db.get_value(VERSION_DOCTYPE, {"rule": rule_name}, "version_no", order_by="version_no desc")


def apply_snapshot(rule, snapshot):
	"""Put ``snapshot``'s content on ``rule`` (unsaved). A field the snapshot does not know (added to
	the doctype since) takes its default. Secrets are not in snapshots: a Webhook row keeps the
	secret and headers of the rule's current row with the same address, if there is one."""
	kept_secrets = _secrets_by_address(rule)
	for df in content_fields(rule.meta):
		if df.fieldname == "run_as" and not is_system_manager(frappe.session.user):
			# Not chosen by this save: validation makes the reverting user the run-as user.
			continue
		rule.set(df.fieldname, _stored(df, snapshot.get(df.fieldname, df.default)))
	for table in rule.meta.get_table_fields():
		child_meta = frappe.get_meta(table.options)
		rows = []
		for values in snapshot.get(table.fieldname) or []:
			row = {
				df.fieldname: _stored(df, values.get(df.fieldname, df.default))
				for df in content_fields(child_meta)
			}
			if table.fieldname == "actions":
				row.update(kept_secrets.pop((row.get("action_type"), row.get("url")), {}))
			rows.append(row)
		rule.set(table.fieldname, rows)


def _stored(df, value):
	if df.fieldtype == "JSON" and value is not None and not isinstance(value, str):
		return json.dumps(value, indent=1, ensure_ascii=False)
	return value


def _secrets_by_address(rule):
	found = {}
	for action in rule.get("actions") or []:
		if not action.get("url"):
			continue
		values = {
			fieldname: get_decrypted_password(action.doctype, action.name, fieldname, raise_exception=False)
			for fieldname in SECRET_FIELDS
			if action.get(fieldname)
		}
		found.setdefault((action.action_type, action.url), {k: v for k, v in values.items() if v})
	return found
