"""The site side of the live tier (tests/live) and of benchmarks/live_throughput.py, run through
`bench --site S execute crm_automation.tests.live_stack.<function>` while no web server, worker or
scheduler of the tier is running yet (setup) or any more (teardown).

setup_live_stack makes what the checks need and records what it changes in a state file;
teardown_live_stack puts every one of those things back as it was (site_config.json byte for byte,
the scheduler switch, the default outgoing Email Account) and deletes what the run made. The checks
themselves never call this module: they go through the REST API with the API key made here.
"""

import json
import os

import frappe
from frappe.utils import add_to_date, now_datetime

from crm_automation.trust.outbound_http import ALLOWLIST_KEY

PREFIX = "_Live"
# Frappe's filters escape a backslash, so "_" (any character in LIKE) cannot be escaped: names are
# selected by LIKE and then checked for the exact prefix (named).
LIKE_PREFIX = f"{PREFIX}%"
LIVE_USER = "crm-automation-live@example.com"
LIVE_COLLEAGUE = "crm-automation-live-li@example.com"
EMAIL_ACCOUNT = "_Live SMTP"
SENDER = "crm-automation-live-sender@example.com"

# The scheduler entries the live checks wait for (Scheduled Job Type methods).
APP_JOBS = (
	"crm_automation.scheduler.fire_due_steps_for_all_sequences",
	"crm_automation.scheduler.run_time_triggers_for_all_rules",
	"crm_automation.scheduler.run_escalations_for_all_policies",
	"frappe.email.queue.flush",
)
# Rows the runs leave on a Lead, by their link to it.
LINKED_TABLES = (
	("ToDo", "reference_type", "reference_name"),
	("Communication", "reference_doctype", "reference_name"),
	("Email Queue", "reference_doctype", "reference_name"),
	("Comment", "reference_doctype", "reference_name"),
	("Notification Log", "document_type", "document_name"),
	("Automation Log", "reference_doctype", "reference_name"),
	("Automation Sequence Step", "reference_doctype", "reference_name"),
	("Escalation State", "reference_doctype", "reference_name"),
	("Automation Occurrence", "reference_doctype", "reference_name"),
	("CRM Activity", "reference_doctype", "reference_name"),
	("Version", "ref_doctype", "docname"),
)


HELD_UNTIL = "2999-01-01 00:00:00"


def setup_live_stack(state_file, smtp_port):
	"""Before the processes start: the API user (and a colleague for round robins), the outgoing
	Email Account aimed at the local SMTP server, loopback webhooks allowed, the scheduler on, the
	site's stale jobs gone and the app's scheduled jobs due now. Writes the state file (0600)."""
	delete_live_records()
	site_config_path = os.path.join(frappe.get_site_path(), "site_config.json")
	with open(site_config_path) as f:
		site_config_text = f.read()
	state = {
		"site_config": site_config_text,
		"enable_scheduler": frappe.db.get_single_value("System Settings", "enable_scheduler"),
		"default_outgoing": frappe.get_all("Email Account", filters={"default_outgoing": 1}, pluck="name"),
		"held_mail": hold_pending_mail(),
	}
	_write_state(state_file, state)

	config = json.loads(site_config_text)
	config[ALLOWLIST_KEY] = ["127.0.0.1"]
	# A paused or muted site would make every check wait for nothing.
	for key in ("pause_scheduler", "mute_emails", "maintenance_mode"):
		config.pop(key, None)
	with open(site_config_path, "w") as f:
		json.dump(config, f, indent=1, sort_keys=True)

	state["api_key"], state["api_secret"] = _make_users()
	for name in state["default_outgoing"]:
		frappe.db.set_value("Email Account", name, "default_outgoing", 0, update_modified=False)
	frappe.get_doc(
		{
			"doctype": "Email Account",
			"email_account_name": EMAIL_ACCOUNT,
			"email_id": SENDER,
			"enable_outgoing": 1,
			"default_outgoing": 1,
			"smtp_server": "127.0.0.1",
			"smtp_port": int(smtp_port),
			"use_tls": 0,
			"use_ssl_for_outgoing": 0,
			"no_smtp_authentication": 1,
			"enable_incoming": 0,
			"always_use_account_email_id_as_sender": 1,
		}
	).insert(ignore_permissions=True)
	frappe.db.set_single_value("System Settings", "enable_scheduler", 1)
	frappe.db.commit()
	flush_site_jobs()
	rearm_jobs()
	_write_state(state_file, state)


def hold_pending_mail():
	"""Mail the site already had waiting (tier 2's test runs leave hundreds): Frappe's flush sends
	the oldest 500 first, so the live run's mail would wait behind them, and they would go out
	through the tier's SMTP server. Held back (send_after far ahead) until teardown puts back each
	row's own send_after. Returns [[name, send_after], ...]."""
	rows = frappe.get_all(
		"Email Queue",
		filters={"status": ("in", ("Not Sent", "Partially Sent"))},
		fields=["name", "send_after"],
		order_by="creation",
	)
	held = [[row.name, str(row.send_after) if row.send_after else None] for row in rows]
	for batch in _batches([name for name, _when in held], 500):
		frappe.db.sql(
			"update `tabEmail Queue` set send_after = %s where name in %s", (HELD_UNTIL, tuple(batch))
		)
	frappe.db.commit()
	return held


def release_held_mail(held):
	for name, send_after in held:
		frappe.db.set_value("Email Queue", name, "send_after", send_after, update_modified=False)


def _make_users():
	# Frappe checks an API secret by decrypting it (not a hash, as for a login password).
	from frappe.utils.password import set_encrypted_password

	for email, first_name, roles in (
		(LIVE_USER, "Live Check", ["CRM Automation Manager", "System Manager", "Sales User"]),
		(LIVE_COLLEAGUE, "Li Live", ["Sales User"]),
	):
		user = frappe.get_doc(
			{
				"doctype": "User",
				"email": email,
				"first_name": first_name,
				"send_welcome_email": 0,
				"user_type": "System User",
				"roles": [{"role": role} for role in roles],
			}
		)
		user.flags.no_welcome_mail = True
		user.insert(ignore_permissions=True)
	api_key, api_secret = frappe.generate_hash(length=15), frappe.generate_hash(length=15)
	frappe.db.set_value("User", LIVE_USER, "api_key", api_key, update_modified=False)
	set_encrypted_password("User", LIVE_USER, api_secret, "api_secret")
	return api_key, api_secret


def _write_state(state_file, state):
	fd = os.open(state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
	with os.fdopen(fd, "w") as f:
		json.dump(state, f)


def rearm_jobs(methods=None):
	"""Make the named scheduled jobs (default: those the live checks wait for) due at the
	scheduler's next tick. A job's next run follows its last execution: on a site whose clock or
	time zone moved, or whose 5-minute job just ran, the next run can be minutes or hours away."""
	past = add_to_date(now_datetime(), minutes=-10)
	for method in methods or APP_JOBS:
		frappe.db.set_value(
			"Scheduled Job Type", {"method": method}, "last_execution", past, update_modified=False
		)
	frappe.db.commit()


def flush_site_jobs():
	"""Remove this site's queued jobs (stale ones would run first and hold up the checks, or run
	against records the tier has deleted). Other sites' jobs are left alone."""
	from frappe.utils.background_jobs import get_queues

	removed = 0
	for queue in get_queues():
		for job in queue.get_jobs():
			try:
				site = (job.kwargs or {}).get("site") if job else None
			except Exception:
				# A job whose arguments no longer load (a class that moved): its id still says the site.
				site = job.id.split("::", 1)[0] if job and "::" in job.id else None
			if site == frappe.local.site:
				job.delete()
				removed += 1
	print(f"removed {removed} queued jobs of {frappe.local.site}")


def teardown_live_stack(state_file):
	"""After every process of the run has stopped: delete what the run made and put back what
	setup changed."""
	with open(state_file) as f:
		state = json.load(f)
	flush_site_jobs()
	delete_live_records()
	release_held_mail(state.get("held_mail") or [])
	frappe.db.set_single_value("System Settings", "enable_scheduler", state["enable_scheduler"] or 0)
	for name in state.get("default_outgoing") or []:
		if frappe.db.exists("Email Account", name):
			frappe.db.set_value("Email Account", name, "default_outgoing", 1, update_modified=False)
	frappe.db.commit()
	with open(os.path.join(frappe.get_site_path(), "site_config.json"), "w") as f:
		f.write(state["site_config"])
	frappe.clear_cache()
	os.remove(state_file)


def delete_live_records():
	"""Everything a live run makes, whatever state an earlier run that died left it in."""
	delete_live_leads()
	rules = named("Workflow Rule")
	for name in rules:
		frappe.db.delete("Automation Log", {"rule": name})
		frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
	for doctype in ("Escalation Policy", "Assignment Rule", "Notification", "Webhook", "Email Template"):
		for name in named(doctype):
			frappe.delete_doc(doctype, name, force=True, ignore_permissions=True)
	# Log rows left without their parent by the bulk deletes above.
	frappe.db.sql(
		"""delete from `tabAutomation Log Action` where parenttype = 'Automation Log'
		and parent not in (select name from `tabAutomation Log`)"""
	)
	queues = frappe.get_all("Email Queue", filters={"sender": ("like", f"%{SENDER}%")}, pluck="name")
	for batch in _batches(queues, 500):
		frappe.db.delete("Email Queue Recipient", {"parent": ("in", batch)})
		frappe.db.delete("Email Queue", {"name": ("in", batch)})
	for user in (LIVE_USER, LIVE_COLLEAGUE):
		frappe.db.delete("ToDo", {"allocated_to": user})
		frappe.db.delete("Notification Log", {"for_user": user})
		if frappe.db.exists("User", user):
			frappe.delete_doc("User", user, force=True, ignore_permissions=True)
	if frappe.db.exists("Email Account", EMAIL_ACCOUNT):
		frappe.delete_doc("Email Account", EMAIL_ACCOUNT, force=True, ignore_permissions=True)
	frappe.db.commit()


def _delete_linked(doctype, names):
	for table, type_field, name_field in LINKED_TABLES:
		if not frappe.db.table_exists(table):
			continue
		children = {"Automation Log": "Automation Log Action", "Email Queue": "Email Queue Recipient"}
		if table in children:
			parents = frappe.get_all(
				table, filters={type_field: doctype, name_field: ("in", names)}, pluck="name"
			)
			if parents:
				frappe.db.delete(children[table], {"parent": ("in", parents)})
		frappe.db.delete(table, {type_field: doctype, name_field: ("in", names)})


def named(doctype, field="name"):
	"""Names of ``doctype`` whose ``field`` starts with the live prefix."""
	rows = frappe.get_all(doctype, filters={field: ("like", LIKE_PREFIX)}, fields=["name", field])
	return [row.name for row in rows if (row.get(field) or "").startswith(PREFIX)]


def _batches(items, size):
	return [items[i : i + size] for i in range(0, len(items), size)]


def make_frappe_builtins(receiver_url, recipient, users, secret, marker):
	"""The benchmark's other arm: Frappe's own Assignment Rule (round robin), Notification (e-mail on
	New) and Webhook (signed, after insert) doing the work of the app's three rules, for Leads of
	``marker`` only."""
	condition = f'doc.company_name == "{marker}"'
	frappe.get_doc(
		{
			"doctype": "Assignment Rule",
			"name": f"{PREFIX} Frappe Round Robin",
			"document_type": "Lead",
			"priority": 1,
			"rule": "Round Robin",
			"assign_condition": condition,
			"users": [{"user": user} for user in users],
			"assignment_days": [
				{"day": day}
				for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
			],
		}
	).insert(ignore_permissions=True)
	frappe.get_doc(
		{
			"doctype": "Notification",
			"name": f"{PREFIX} Frappe Welcome",
			"subject": "Welcome {{ doc.name }}",
			"document_type": "Lead",
			"event": "New",
			"channel": "Email",
			"condition": condition,
			"message": "Hello {{ doc.first_name }}",
			"recipients": [{"cc": recipient}],
			"enabled": 1,
		}
	).insert(ignore_permissions=True)
	frappe.get_doc(
		{
			"doctype": "Webhook",
			"__newname": f"{PREFIX} Frappe Hook",
			"webhook_doctype": "Lead",
			"webhook_docevent": "after_insert",
			"condition": condition,
			"request_url": receiver_url,
			"request_method": "POST",
			"request_structure": "JSON",
			"enable_security": 1,
			"webhook_secret": secret,
			"webhook_json": '{"name": "{{ doc.name }}", "doctype": "Lead"}',
			"enabled": 1,
		}
	).insert(ignore_permissions=True)
	frappe.db.commit()


def delete_frappe_builtins():
	for doctype in ("Assignment Rule", "Notification", "Webhook"):
		for name in named(doctype):
			frappe.delete_doc(doctype, name, force=True, ignore_permissions=True)
	frappe.db.commit()


def delete_live_leads():
	"""The run's Leads and what hangs on them (between benchmark runs: the rules stay)."""
	leads = named("Lead", "company_name")
	for batch in _batches(leads, 500):
		_delete_linked("Lead", batch)
		frappe.db.delete("Lead", {"name": ("in", batch)})
	queues = frappe.get_all("Email Queue", filters={"sender": ("like", f"%{SENDER}%")}, pluck="name")
	for batch in _batches(queues, 500):
		frappe.db.delete("Email Queue Recipient", {"parent": ("in", batch)})
		frappe.db.delete("Email Queue", {"name": ("in", batch)})
	frappe.db.commit()
