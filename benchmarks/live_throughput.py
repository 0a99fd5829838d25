"""Throughput on a running site: Leads created through the REST API with three typical rules
(assign round robin, e-mail, signed webhook), drained by 1 and 2 RQ workers, against Frappe's own
Assignment Rule + Notification + Webhook doing the same work on the same stack.

	cd /path/to/crm_automation && .venv/bin/python benchmarks/live_throughput.py <site> \
		[--leads 1000] [--workers 1,2] [--clients 4] [--arms ours,frappe]

It starts the same stack as the live tier (tests/live/stack.py: `bench serve`, `bench worker`,
`bench schedule`, a local SMTP server and webhook receiver) and puts the site back afterwards.
Leads are made without an e-mail address (Frappe looks a new Lead's address up on gravatar, a DNS
wait offline): the e-mail goes to a fixed address.

For each arm and number of workers, two runs:
- **live**: the workers run while ``--clients`` threads create the Leads; from save (the REST
  answer) to webhook received, p50 and p99; the time from the first save to the last webhook.
- **drain**: the Leads are saved with no worker running, then the workers start; the time until the
  last webhook arrives gives runs per second per worker (what the workers alone can do).
E-mails leave through Frappe's Email Queue, sent by its scheduled flush (every 4 minutes, made due at
once here): the time until the last one reached the SMTP server is shown apart, once per arm.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.live.stack import Stack, frappe_signature_ok, signature_ok, wait_for

LIVE_USER = "crm-automation-live@example.com"
LIVE_COLLEAGUE = "crm-automation-live-li@example.com"
RECIPIENT = "crm-automation-live-customer@example.com"
SECRET = "bench-" + uuid.uuid4().hex


def our_rules(stack, mark):
	condition = json.dumps({"all": [{"field": "company_name", "op": "=", "value": mark}]})
	rules = [
		(
			"Round Robin",
			{
				"action_type": "Assign",
				"assign_to_type": "Listed Users",
				"assign_strategy": "Round Robin",
				"to_users": f"{LIVE_USER}\n{LIVE_COLLEAGUE}",
			},
		),
		(
			"Welcome",
			{
				"action_type": "Send Email",
				"to_users": RECIPIENT,
				"subject": "Welcome {{ doc.name }}",
				"message": "Hello {{ doc.first_name }}",
			},
		),
		("Hook", {"action_type": "Webhook", "url": stack.receiver.url("/ours"), "secret": SECRET, "retries": 3}),
	]
	for title, action in rules:
		stack.api.insert(
			"Workflow Rule",
			{
				"rule_name": f"{mark} {title}",
				"document_type": "Lead",
				"trigger": "New",
				"enabled": 1,
				"conditions": condition,
				"actions": [action],
			},
		)


def create_leads(stack, mark, count, clients):
	saved = {}

	def one(i):
		lead = stack.api.insert("Lead", {"first_name": f"Bench {i}", "company_name": mark})
		saved[lead["name"]] = time.time()

	started = time.time()
	with ThreadPoolExecutor(clients) as pool:
		list(pool.map(one, range(count)))
	return saved, started, time.time()


def webhook_names(stack, path):
	"""Lead name → when its first webhook arrived."""
	names = {}
	for request in stack.receiver.at(path):
		names.setdefault(json.loads(request["body"])["name"], request["at"])
	return names


def percentile(values, fraction):
	ordered = sorted(values)
	return ordered[min(int(round(fraction * (len(ordered) - 1))), len(ordered) - 1)]


def run_arm(stack, arm, mark, workers, args, timeout):
	path = "/ours" if arm == "ours" else "/frappe"
	check = (lambda r: signature_ok(r, SECRET)) if arm == "ours" else (lambda r: frappe_signature_ok(r, SECRET))
	results = {}
	for mode in ("live", "drain"):
		stack.bench.execute("delete_live_leads")
		with stack.receiver.lock:
			stack.receiver.requests.clear()
		with stack.mailbox.lock:
			stack.mailbox.messages.clear()
		if mode == "live":
			stack.start_workers(workers)
			time.sleep(8)  # the workers connect to redis and import Frappe
		saved, first, last_save = create_leads(stack, mark, args.leads, args.clients)
		if mode == "drain":
			drain_start = time.time()
			stack.start_workers(workers)
		arrived = wait_for(lambda: len(webhook_names(stack, path)) >= len(saved), timeout, interval=0.5)
		names = webhook_names(stack, path)
		stack.stop_workers()
		if not arrived:
			print(f"  {arm} {workers}w {mode}: only {len(names)} of {len(saved)} webhooks in {timeout:.0f} s")
		done = max(names.values()) if names else time.time()
		requests_in = stack.receiver.at(path)
		result = {
			"saves per s": len(saved) / (last_save - first),
			"webhooks": len(names),
			"duplicates": len(requests_in) - len(names),
			"bad signatures": len([r for r in requests_in if not check(r)]),
		}
		if mode == "live":
			latency = [names[n] - saved[n] for n in names if n in saved]
			result.update(
				{
					"first save to last webhook s": done - first,
					"p50 ms": percentile(latency, 0.5) * 1000 if latency else None,
					"p99 ms": percentile(latency, 0.99) * 1000 if latency else None,
				}
			)
		else:
			# From the first webhook to the last: the workers' start (importing Frappe, several
			# seconds) is not their throughput.
			drained = done - min(names.values()) if len(names) > 1 else float("nan")
			result.update(
				{
					"workers started to last webhook s": done - drain_start,
					"drain s": drained,
					"runs per s per worker": (len(names) - 1) / drained / workers if len(names) > 1 else 0.0,
				}
			)
		results[mode] = result
		shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
		print(f"  {arm} {workers} worker(s) {mode}: {json.dumps(shown)}", flush=True)
	return results


def email_drain(stack, count, timeout):
	"""The e-mails of the last run's Leads (some may have left already with a scheduled flush):
	the flush made due every minute until all ``count`` reached the SMTP server."""

	def received():
		with stack.mailbox.lock:
			return len({m["subject"] for m in stack.mailbox.messages if RECIPIENT in m["to"]})

	stack.start_workers(1)
	started = last_rearm = time.time()
	stack.rearm(["frappe.email.queue.flush"])
	while received() < count and time.time() - started < timeout:
		time.sleep(2)
		if time.time() - last_rearm > 60:
			stack.rearm(["frappe.email.queue.flush"])
			last_rearm = time.time()
	stack.stop_workers()
	return received(), time.time() - started


def main():
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	parser.add_argument("site")
	parser.add_argument("--leads", type=int, default=1000)
	parser.add_argument("--workers", default="1,2")
	parser.add_argument("--clients", type=int, default=4)
	parser.add_argument("--arms", default="ours,frappe")
	parser.add_argument("--timeout", type=float, default=900)
	args = parser.parse_args()
	workers_list = [int(w) for w in args.workers.split(",")]
	run = uuid.uuid4().hex[:6]
	stack = Stack(args.site, workers=0)
	table = []
	try:
		stack.start()
		print(f"stack up: web :{stack.web_port}, SMTP :{stack.smtp_port}, receiver :{stack.receiver_port}", flush=True)
		marks = {"ours": f"_Live Bench Ours {run}", "frappe": f"_Live Bench Frappe {run}"}
		our_rules(stack, marks["ours"])
		stack.bench.execute(
			"make_frappe_builtins",
			receiver_url=stack.receiver.url("/frappe"),
			recipient=RECIPIENT,
			users=[LIVE_USER, LIVE_COLLEAGUE],
			secret=SECRET,
			marker=marks["frappe"],
		)
		for arm in args.arms.split(","):
			for workers in workers_list:
				results = run_arm(stack, arm, marks[arm], workers, args, args.timeout)
				table.append((arm, workers, results))
			received, seconds = email_drain(stack, args.leads, args.timeout)
			print(f"  {arm}: {received} e-mails reached SMTP in {seconds:.1f} s after the flush was made due")
			table.append((arm, "mail", {"received": received, "seconds": seconds}))
	finally:
		try:
			stack.bench.execute("delete_frappe_builtins")
		except Exception as error:
			print(f"could not delete the benchmark's Frappe rules: {error}")
		stack.stop()
	print()
	print(f"{args.leads} Leads through REST ({args.clients} client threads), three rules each:")
	print("| Arm | Workers | Saves/s | Save → webhook p50 / p99 | First save → last webhook | Drain: runs/s per worker |")
	print("| --- | --- | --- | --- | --- | --- |")
	for arm, workers, results in table:
		if workers == "mail":
			continue
		live, drain = results["live"], results["drain"]
		print(
			f"| {arm} | {workers} | {live['saves per s']:.1f} | {live['p50 ms'] or 0:.0f} / {live['p99 ms'] or 0:.0f} ms "
			f"| {live['first save to last webhook s']:.1f} s | {drain['runs per s per worker']:.1f} "
			f"({drain['webhooks']} in {drain['drain s']:.1f} s) |"
		)


if __name__ == "__main__":
	main()
