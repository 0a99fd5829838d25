"""Indexes on the date fields Time rules sweep by, kept out of the transaction that saves a rule.

An ALTER TABLE commits whatever is pending, so it never runs while a rule (or a pack of them) is
being saved: saving an enabled Time rule asks for the indexes after the commit, install and migrate
add any that are missing, and uninstall drops them. Every index the app adds is named with
INDEX_PREFIX, so the app can tell its own from the site's, and covers (field, name): a two-column
index, which Frappe's schema sync leaves alone (it drops single-column indexes of fields not marked
"search index"), so no Property Setter is needed to keep it.
"""

import hashlib

import frappe

INDEX_PREFIX = "crm_automation_time_"


def index_name(fieldname):
	name = INDEX_PREFIX + fieldname
	if len(name) <= 64:  # MariaDB's limit for identifiers
		return name
	return INDEX_PREFIX + hashlib.sha1(fieldname.encode()).hexdigest()[:20]


def ensure_indexes_after_commit():
	"""Add the missing indexes once the current transaction has committed; nothing if it rolls back.
	Queued once per transaction."""
	if _after_commit not in frappe.db.after_commit._functions:
		frappe.db.after_commit.add(_after_commit)


def _after_commit():
	ensure_time_rule_indexes()


def wanted_indexes():
	"""(doctype, fieldname) of every enabled Time rule, as committed."""
	if not frappe.db.table_exists("Workflow Rule"):
		return set()
	rows = frappe.get_all(
		"Workflow Rule",
		filters={"enabled": 1, "trigger": "Time", "time_field": ("is", "set")},
		fields=["document_type", "time_field"],
	)
	return {(row.document_type, row.time_field) for row in rows}


def ensure_time_rule_indexes(prune=False):
	"""Add an index for each enabled Time rule's field that has none; with ``prune`` (on migrate),
	drop the app's indexes no enabled Time rule needs any more. Commits (DDL): call it only where
	nothing else is pending, i.e. after a commit, on install or migrate."""
	wanted = wanted_indexes()
	added = []
	for doctype, fieldname in sorted(wanted):
		if ensure_index(doctype, fieldname):
			added.append(f"{doctype}.{fieldname}")
	if prune:
		keep = {(f"tab{doctype}", index_name(fieldname)) for doctype, fieldname in wanted}
		for table, name in app_indexes():
			if (table, name) not in keep:
				frappe.db.sql_ddl(f"alter table `{table}` drop index `{name}`")
	return added


def ensure_index(doctype, fieldname):
	table = f"tab{doctype}"
	if not frappe.db.table_exists(doctype) or not frappe.db.has_column(doctype, fieldname):
		return False
	if frappe.db.get_column_index(table, fieldname, unique=False) or frappe.db.has_index(
		table, index_name(fieldname)
	):
		return False  # the field is indexed already (by its doctype, or by us)
	frappe.db.sql_ddl(f"alter table `{table}` add index `{index_name(fieldname)}` (`{fieldname}`, `name`)")
	return True


def app_indexes():
	"""Every index in this database that the app added: [(table, index name)]."""
	return frappe.db.sql(
		"""select distinct table_name, index_name from information_schema.statistics
		where table_schema = database() and index_name like %s""",
		(INDEX_PREFIX.replace("_", "\\_") + "%",),
	)


def drop_app_indexes():
	for table, name in app_indexes():
		frappe.db.sql_ddl(f"alter table `{table}` drop index `{name}`")
