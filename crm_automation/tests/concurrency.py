"""Helpers that integration tests start as separate OS processes, to save or sweep concurrently
the way two web workers or two RQ workers would.

A process reports on its last line of output, as JSON, what it did and every failure it swallowed
(Error Log entries, failed Automation Logs), so a test that counts results can say why one is
missing instead of only that it is."""

import json
import subprocess
import sys

import frappe

REPORT_PREFIX = "crm_automation_report:"


def run_in_processes(site, calls):
	"""Start one process per (function path, args) at once; wait for all; return their outputs."""
	processes = [
		subprocess.Popen(
			[
				sys.executable,
				"-c",
				"from crm_automation.tests.concurrency import main; main()",
				site,
				path,
				*map(str, args),
			],
			stdout=subprocess.PIPE,
			stderr=subprocess.STDOUT,
			text=True,
		)
		for path, args in calls
	]
	outputs = [process.communicate(timeout=600)[0] for process in processes]
	failed = [(p.returncode, out) for p, out in zip(processes, outputs, strict=True) if p.returncode]
	if failed:
		raise AssertionError(f"a concurrent process failed: {failed}")
	# The caller reads next what the processes committed. Under REPEATABLE READ a transaction of the
	# caller that began before they committed (a read in an after-commit callback is enough) would
	# still see the database as it was: end it, so the next read takes a fresh snapshot.
	frappe.db.commit()
	return outputs


def reports(outputs):
	"""The JSON report each process printed last (see report())."""
	found = []
	for output in outputs:
		lines = [line for line in output.splitlines() if line.startswith(REPORT_PREFIX)]
		found.append(json.loads(lines[-1][len(REPORT_PREFIX) :]) if lines else {"missing report": output})
	return found


def report(**values):
	print(REPORT_PREFIX + json.dumps(values, default=str), flush=True)


def swallowed_errors(since, rule_name=None):
	"""What went wrong in this process without raising: Error Log entries and failed runs."""
	errors = frappe.get_all(
		"Error Log", filters={"creation": (">=", since)}, fields=["method", "error"], order_by="creation"
	)
	filters = {"outcome": ("not in", ("Success", "Skipped")), "creation": (">=", since)}
	if rule_name:
		filters["rule"] = rule_name
	failed = frappe.get_all(
		"Automation Log", filters=filters, fields=["rule", "reference_name", "outcome", "reason", "error"]
	)
	return {"error_logs": errors, "failed_runs": failed}


def main():
	site, path, *args = sys.argv[1:]
	frappe.init(site=site, sites_path=".")
	frappe.connect()
	try:
		frappe.flags.in_test = True  # no gravatar lookups
		frappe.flags.mute_emails = True
		frappe.get_attr(path)(*args)
	finally:
		frappe.destroy()


def insert_leads(count, prefix, territory, industry):
	"""One committed Lead per 'request', as a user saving from the desk. No e-mail address: saving
	one makes Frappe look up a gravatar over the network."""
	from frappe.utils import now_datetime

	started = now_datetime()
	for i in range(int(count)):
		frappe.get_doc(
			{
				"doctype": "Lead",
				"first_name": f"{prefix} {i}",
				"company_name": f"{prefix} Co {i}",
				"territory": territory,
				"industry": industry,
			}
		).insert(ignore_permissions=True)
		frappe.db.commit()
	report(inserted=int(count), **swallowed_errors(started))


def sweep_time_rule(rule_name):
	from frappe.utils import now_datetime

	from crm_automation.scheduler import run_time_trigger

	started = now_datetime()
	fired = run_time_trigger(rule_name)
	frappe.db.commit()
	report(fired=fired, **swallowed_errors(started, rule_name))
