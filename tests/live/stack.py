"""A site run the way users run it, for the live tier (tests/live) and benchmarks/live_throughput.py.

The bench's own processes, each started in its own process group and stopped by that group's id:
`bench --site S serve` (the web server), `bench worker --queue short,default,long` (RQ workers)
and `bench schedule` (the scheduler), against the bench's redis. In this process: a local SMTP
server (aiosmtpd) and a webhook receiver (http.server) that record what reaches them. The site is
prepared and put back through `bench --site S execute crm_automation.tests.live_stack.*`; the
checks use only the REST API with an API key (``Stack.api``).

No Frappe import: this runs in the test virtualenv, outside the bench.
"""

import base64
import contextlib
import email
import email.policy
import hashlib
import hmac
import json
import os
import pwd
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HELPER = "crm_automation.tests.live_stack"


def find_bench():
	for candidate in (
		os.environ.get("CRM_AUTOMATION_BENCH"),
		os.path.expanduser("~/frappe-bench"),
		"/home/frappe/frappe-bench",
	):
		if candidate and os.path.isdir(os.path.join(candidate, "apps", "frappe")):
			return os.path.realpath(candidate)
	return None


def site_env():
	"""The environment of the site's processes: this one's without CI. With CI set, Frappe's background
	jobs run with frappe.flags.in_test, and an Email Queue row is then marked Sent without the mail
	leaving (frappe/utils/background_jobs.py): the stack must run as users run it."""
	return {key: value for key, value in os.environ.items() if key != "CI"}


def spare_port(first, tries=50):
	for port in range(first, first + tries):
		with contextlib.closing(socket.socket()) as s:
			try:
				s.bind(("127.0.0.1", port))
			except OSError:
				continue
			return port
	raise RuntimeError(f"no free port in {first}..{first + tries}")


class Bench:
	"""Commands as the bench's owner, from its directory."""

	def __init__(self, path, site):
		self.path = path
		self.site = site
		self.owner = pwd.getpwuid(os.stat(path).st_uid)
		self.logs = tempfile.mkdtemp(prefix="crm-live-")
		os.chmod(self.logs, 0o777)

	def command(self, *args):
		if os.geteuid() == self.owner.pw_uid:
			return list(args)
		return [
			"runuser", "-u", self.owner.pw_name, "--", "env", f"HOME={self.owner.pw_dir}",
			f"PATH={os.environ.get('PATH', '')}", *args,
		]  # fmt: skip

	def execute(self, function, **kwargs):
		args = [
			"bench",
			"--site",
			self.site,
			"execute",
			f"{HELPER}.{function}",
			"--kwargs",
			json.dumps(kwargs),
		]
		done = subprocess.run(
			self.command(*args), cwd=self.path, capture_output=True, text=True, timeout=600, env=site_env()
		)
		if done.returncode != 0:
			raise RuntimeError(f"{function} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
		return done.stdout

	def start(self, name, *args):
		log = open(os.path.join(self.logs, f"{name}.log"), "ab")
		process = subprocess.Popen(
			self.command(*args),
			cwd=self.path,
			stdout=log,
			stderr=subprocess.STDOUT,
			start_new_session=True,
			env=site_env(),
		)
		log.close()
		return process

	def scheduler_lock_held(self):
		"""Another `bench schedule` holds the bench's one scheduler lock: ours would exit at once."""
		return (
			subprocess.run(
				self.command("flock", "-n", os.path.join(self.path, "config", "scheduler_process"), "true"),
				cwd=self.path,
				capture_output=True,
			).returncode
			!= 0
		)


def stop_group(process, grace=15):
	"""Stop a process started by Bench.start and everything it started (its process group)."""
	if process is None:
		return
	process.poll()  # reaps the leader if it has exited, so only live members count
	if not _group_alive(process.pid):
		return
	for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
		with contextlib.suppress(ProcessLookupError):
			os.killpg(process.pid, sig)
		deadline = time.time() + wait
		while time.time() < deadline and _group_alive(process.pid):
			with contextlib.suppress(subprocess.TimeoutExpired):
				process.wait(timeout=0.2)
		if not _group_alive(process.pid):
			return


def _group_alive(pgid):
	try:
		os.killpg(pgid, 0)
	except ProcessLookupError:
		return False
	# A member of the group that is not a zombie (a zombie is gone, only not yet reaped).
	for entry in os.listdir("/proc"):
		if not entry.isdigit():
			continue
		try:
			with open(f"/proc/{entry}/stat") as f:
				fields = f.read().rsplit(")", 1)[1].split()
		except OSError:
			continue
		if fields[0] != "Z" and int(fields[2]) == pgid:
			return True
	return False


class Mailbox:
	"""A local SMTP server (aiosmtpd) keeping every message it receives."""

	def __init__(self, port):
		from aiosmtpd.controller import Controller

		self.messages = []
		self.lock = threading.Lock()
		mailbox = self

		class Handler:
			async def handle_DATA(self, server, session, envelope):
				message = email.message_from_bytes(envelope.content, policy=email.policy.default)
				# Headers and every part decoded (quoted-printable, base64), to search as text.
				parts = [str(message["Subject"] or "")]
				for part in message.walk():
					if part.get_content_maintype() == "text":
						with contextlib.suppress(Exception):
							parts.append(part.get_content())
				with mailbox.lock:
					mailbox.messages.append(
						{
							"at": time.time(),
							"from": envelope.mail_from,
							"to": list(envelope.rcpt_tos),
							"subject": str(message["Subject"] or ""),
							"data": "\n".join(parts),
						}
					)
				return "250 OK"

		self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
		self.port = port

	def start(self):
		self.controller.start()

	def stop(self):
		self.controller.stop()

	def find(self, text):
		with self.lock:
			return [m for m in self.messages if text in m["data"]]


class Receiver:
	"""A webhook receiver that records every request; paths in ``fail_once`` answer 503 to their
	first request (to prove a retry)."""

	def __init__(self, port, fail_once=()):
		self.requests = []
		self.lock = threading.Lock()
		self.fail_once = set(fail_once)
		receiver = self

		class Handler(BaseHTTPRequestHandler):
			def do_POST(self):
				body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
				with receiver.lock:
					failing = self.path in receiver.fail_once
					receiver.fail_once.discard(self.path)
					receiver.requests.append(
						{
							"at": time.time(),
							"path": self.path,
							"headers": {k.lower(): v for k, v in self.headers.items()},
							"body": body,
							"answered": 503 if failing else 200,
						}
					)
				self.send_response(503 if failing else 200)
				self.send_header("Content-Type", "application/json")
				self.end_headers()
				self.wfile.write(b'{"ok": false}' if failing else b'{"ok": true}')

			def log_message(self, *args):
				pass

		self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
		self.server.daemon_threads = True
		self.port = port
		self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

	def url(self, path):
		return f"http://127.0.0.1:{self.port}{path}"

	def start(self):
		self.thread.start()

	def stop(self):
		self.server.shutdown()
		self.server.server_close()

	def at(self, path):
		with self.lock:
			return [r for r in self.requests if r["path"] == path]


def signature_ok(request, secret):
	"""Both signatures the app sends: hex with a sha256= prefix, and Frappe's base64."""
	digest = hmac.new(secret.encode(), request["body"], hashlib.sha256).digest()
	ours = request["headers"].get("x-crm-automation-signature", "")
	frappes = request["headers"].get("x-frappe-webhook-signature", "")
	return hmac.compare_digest(ours, "sha256=" + digest.hex()) and hmac.compare_digest(
		frappes, base64.b64encode(digest).decode()
	)


def frappe_signature_ok(request, secret):
	"""Frappe's own Webhook: base64 HMAC-SHA256 of the body in X-Frappe-Webhook-Signature."""
	digest = hmac.new(secret.encode(), request["body"], hashlib.sha256).digest()
	return hmac.compare_digest(
		request["headers"].get("x-frappe-webhook-signature", ""), base64.b64encode(digest).decode()
	)


class Api:
	"""The site's REST API with an API key, as a connector uses it."""

	def __init__(self, base, key, secret):
		self.base = base
		self.session = requests.Session()
		self.session.headers["Authorization"] = f"token {key}:{secret}"
		self.session.headers["Accept"] = "application/json"

	def insert(self, doctype, doc):
		response = self.session.post(f"{self.base}/api/resource/{doctype}", json=doc, timeout=60)
		if not response.ok:
			raise AssertionError(f"POST {doctype}: HTTP {response.status_code} {response.text[:1500]}")
		return response.json()["data"]

	def get_list(self, doctype, filters, fields=("name",), limit=1000):
		response = self.session.get(
			f"{self.base}/api/resource/{doctype}",
			params={
				"filters": json.dumps(filters),
				"fields": json.dumps(list(fields)),
				"limit_page_length": limit,
			},
			timeout=60,
		)
		if not response.ok:
			raise AssertionError(f"GET {doctype}: HTTP {response.status_code} {response.text[:1500]}")
		return response.json()["data"]

	def get(self, doctype, name):
		response = self.session.get(f"{self.base}/api/resource/{doctype}/{name}", timeout=60)
		if not response.ok:
			raise AssertionError(f"GET {doctype} {name}: HTTP {response.status_code} {response.text[:1500]}")
		return response.json()["data"]


class Stack:
	"""Start with ``start()``, always end with ``stop()`` (it puts the site back)."""

	def __init__(self, site, bench_path=None, workers=1, with_worker=True, fail_once=()):
		self.bench = Bench(bench_path or find_bench(), site)
		self.site = site
		self.workers = workers if with_worker else 0
		self.web_port = spare_port(8021)
		self.smtp_port = spare_port(2526)
		self.receiver_port = spare_port(8091)
		self.mailbox = Mailbox(self.smtp_port)
		self.receiver = Receiver(self.receiver_port, fail_once)
		self.state_file = os.path.join(self.bench.logs, "state.json")
		self.processes = {}
		self.prepared = False
		self.api = None

	def start(self):
		if self.bench.scheduler_lock_held():
			raise RuntimeError(
				"another `bench schedule` is running on this bench (config/scheduler_process is locked)"
			)
		self.mailbox.start()
		self.receiver.start()
		# Setup needs the SMTP server up: Frappe checks the connection when the Email Account is saved.
		self.bench.execute("setup_live_stack", state_file=self.state_file, smtp_port=self.smtp_port)
		self.prepared = True
		with open(self.state_file) as f:
			state = json.load(f)
		base = f"http://127.0.0.1:{self.web_port}"
		self.api = Api(base, state["api_key"], state["api_secret"])
		self.processes["web"] = self.bench.start(
			"web", "bench", "--site", self.site, "serve", "--port", str(self.web_port), "--noreload"
		)
		self.start_workers(self.workers)
		self.processes["scheduler"] = self.bench.start("scheduler", "bench", "schedule")
		deadline = time.time() + 120
		while time.time() < deadline:
			with contextlib.suppress(requests.RequestException):
				if requests.get(f"{base}/api/method/ping", timeout=5).ok:
					break
			time.sleep(1)
		else:
			raise RuntimeError(f"the web server did not answer on {base}: see {self.bench.logs}/web.log")
		return self

	def start_workers(self, count):
		for i in range(count):
			self.processes[f"worker{i}"] = self.bench.start(
				f"worker{i}", "bench", "worker", "--queue", "short,default,long"
			)

	def stop_workers(self):
		for name in [n for n in self.processes if n.startswith("worker")]:
			stop_group(self.processes.pop(name))

	def rearm(self, methods=None):
		"""The scheduled jobs the checks wait for, due at the scheduler's next tick."""
		self.bench.execute("rearm_jobs", **({"methods": list(methods)} if methods else {}))

	def stop(self):
		for name in list(self.processes):
			stop_group(self.processes.pop(name))
		errors = []
		if self.prepared:
			try:
				self.bench.execute("teardown_live_stack", state_file=self.state_file)
				self.prepared = False
			except Exception as error:
				errors.append(error)
		for part in (self.receiver, self.mailbox):
			with contextlib.suppress(Exception):
				part.stop()
		if errors:
			raise errors[0]


def wait_for(what, timeout, interval=1.0):
	"""Poll ``what()`` until it returns something truthy or ``timeout`` seconds pass."""
	deadline = time.time() + timeout
	while True:
		value = what()
		if value or time.time() >= deadline:
			return value
		time.sleep(interval)
