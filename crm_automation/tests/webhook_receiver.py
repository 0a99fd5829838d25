"""For webhook tests: a loopback HTTP server that counts what it receives, and the site-config
allowlist entry that lets a rule call it (the network guard refuses loopback otherwise)."""

import collections
import contextlib
import http.server
import json
import threading

import frappe
from frappe.installer import update_site_config

from crm_automation.trust.outbound_http import ALLOWLIST_KEY


@contextlib.contextmanager
def loopback_allowed(also_for_other_processes=False):
	"""Allow 127.0.0.1 as a webhook target for the duration: in this process, and with
	``also_for_other_processes`` in the site's config file (read by workers started meanwhile).
	Restores what was there before."""
	before = frappe.conf.get(ALLOWLIST_KEY)
	frappe.conf[ALLOWLIST_KEY] = ["127.0.0.1"]
	if also_for_other_processes:
		update_site_config(ALLOWLIST_KEY, ["127.0.0.1"])
	try:
		yield
	finally:
		if also_for_other_processes:
			update_site_config(ALLOWLIST_KEY, before if before is not None else "None")
		if before is None:
			frappe.conf.pop(ALLOWLIST_KEY, None)
		else:
			frappe.conf[ALLOWLIST_KEY] = before


class Receiver:
	"""Counts requests per delivery (the X-CRM-Automation-Delivery header) and per (rule, document);
	answers 503 to the first ``fail_first`` attempts of each delivery, 200 after."""

	def __init__(self, fail_first=0):
		self.fail_first = fail_first
		self.attempts = collections.Counter()  # delivery → requests received
		self.accepted = collections.Counter()  # (rule, name) → requests answered 200
		self.bodies = []
		self.lock = threading.Lock()
		outer = self

		class Handler(http.server.BaseHTTPRequestHandler):
			def do_POST(self):
				body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
				delivery = self.headers.get("X-CRM-Automation-Delivery")
				with outer.lock:
					outer.attempts[delivery] += 1
					failing = outer.attempts[delivery] <= outer.fail_first
					if not failing:
						data = json.loads(body)
						outer.accepted[(data["rule"], data["name"])] += 1
						outer.bodies.append(data)
				self.send_response(503 if failing else 200)
				self.send_header("Content-Length", "2")
				self.end_headers()
				self.wfile.write(b"no" if failing else b"ok")

			def log_message(self, *args):
				pass

		self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
		self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
		self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

	def __enter__(self):
		self.thread.start()
		return self

	def __exit__(self, *exc):
		self.server.shutdown()
		self.server.server_close()
