"""Helpers that integration tests start as separate OS processes, to save or sweep concurrently
the way two web workers or two RQ workers would."""

import subprocess
import sys

import frappe


def run_in_processes(site, calls):
	"""Start one process per (function path, args) at once; wait for all; return their outputs."""
	processes = [
		subprocess.Popen(
			[sys.executable, "-c", "from crm_automation.tests.concurrency import main; main()", site, path, *map(str, args)],
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
	return outputs


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
	"""One committed Lead per 'request', as a user saving from the desk."""
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


def sweep_time_rule(rule_name):
	from crm_automation.tasks import run_time_trigger

	print("fired", run_time_trigger(rule_name))
	frappe.db.commit()
