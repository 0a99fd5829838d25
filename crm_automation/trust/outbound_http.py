"""Outbound HTTP that a rule author cannot aim at the site's own network.

A webhook URL is written by a CRM Automation Manager, not by a System Manager, so the request must
not reach what only the server can reach: loopback, private and link-local networks (the cloud
metadata service at 169.254.169.254 among them), multicast and reserved ranges. Every address the
host resolves to is checked, the connection goes to the checked address (a second DNS answer cannot
swap it: the IP is pinned, the Host header and TLS SNI keep the name), each redirect target is
checked the same way, the whole exchange has one deadline, and at most 64 KB of the answer is read.

A site opts in to deliberate internal targets with ``crm_automation_webhook_allowlist`` in its site
config: host names (``erp.internal``, ``*.corp.example``) or networks (``10.20.0.0/16``,
``127.0.0.1``).

The rules themselves (which addresses, the allowlist, reading a URL) are crm_automation.trust.address_rules;
this module makes the request. No Frappe import at module level: both are tested without a bench.
"""

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin

from crm_automation.engine.i18n import _
from crm_automation.trust.address_rules import (
	ALLOWLIST_KEY,
	Allowlist,
	BlockedTarget,
	DeliveryError,
	Target,
	address_problem,
	check_url,
	parse_url,
	resolve_target,
)

MAX_REDIRECTS = 3
MAX_RESPONSE_BYTES = 64 * 1024
MAX_KEPT_CHARACTERS = 2000
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# Only these keep the method and body on a redirect; the others turn a POST into a GET, as browsers do.
BODY_PRESERVING_REDIRECTS = (307, 308)


@dataclass
class Response:
	status: int
	reason: str
	body: str  # at most MAX_KEPT_CHARACTERS
	url: str
	redirects: list = field(default_factory=list)
	truncated: bool = False

	@property
	def ok(self):
		return 200 <= self.status < 300


class _Deadline:
	"""One clock for the whole exchange: connect, TLS, send, headers and body of every redirect."""

	def __init__(self, seconds, clock=time.monotonic):
		self.clock = clock
		self.ends = clock() + seconds

	def remaining(self):
		left = self.ends - self.clock()
		if left <= 0:
			raise DeliveryError(_("timed out (overall deadline)"))
		return left


class _PinnedConnection(http.client.HTTPConnection):
	def __init__(self, host, port, address, deadline):
		super().__init__(host, port, timeout=deadline.remaining())
		self.address = address
		self.deadline = deadline

	def connect(self):
		self.sock = socket.create_connection(
			(str(self.address), self.port), timeout=self.deadline.remaining()
		)
		self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
		self.pinned_sock = self.sock


class _PinnedTLSConnection(_PinnedConnection):
	default_port = 443

	def __init__(self, host, port, address, deadline, context):
		super().__init__(host, port, address, deadline)
		self.context = context

	def connect(self):
		super().connect()
		self.sock = self.pinned_sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


def post(url, body, headers, timeout, allowlist=None, resolver=None, tls_context=None):
	"""POST ``body`` (bytes) to ``url`` with every target checked; follows at most MAX_REDIRECTS
	redirects, each checked the same way. ``timeout`` (seconds) bounds the whole exchange. Returns a
	Response (any status); raises BlockedTarget or DeliveryError."""
	allowlist = allowlist or Allowlist()
	deadline = _Deadline(timeout)
	method, current, sent_headers = "POST", url, dict(headers)
	redirects = []
	first_origin = None
	while True:
		target = check_url(current, allowlist)
		first_origin = first_origin or target.origin
		if target.origin != first_origin:
			# Custom headers (tokens) and the signature are meant for the first host only.
			sent_headers = {
				k: v for k, v in sent_headers.items() if k.lower() in ("content-type", "user-agent")
			}
		addresses = resolve_target(target, allowlist, resolver)
		status, reason, location, text, truncated = _exchange(
			target,
			addresses[0],
			method,
			body if method == "POST" else None,
			sent_headers,
			deadline,
			tls_context,
		)
		if status in REDIRECT_STATUSES and location:
			if len(redirects) >= MAX_REDIRECTS:
				raise DeliveryError(
					_("more than {0} redirects (last to {1})").format(MAX_REDIRECTS, location)
				)
			current = urljoin(current, location)
			redirects.append(current)
			if status not in BODY_PRESERVING_REDIRECTS:
				method = "GET"
				sent_headers.pop("Content-Type", None)
			continue
		return Response(status, reason, text, current, redirects, truncated)


def _exchange(target, address, method, body, headers, deadline, tls_context):
	if target.scheme == "https":
		context = tls_context or ssl.create_default_context()
		connection = _PinnedTLSConnection(target.host, target.port, address, deadline, context)
	else:
		connection = _PinnedConnection(target.host, target.port, address, deadline)
	# A server that drips bytes resets every socket timeout; the watchdog closes the socket at the
	# deadline whatever it does.
	watchdog = threading.Timer(deadline.remaining(), _abort, args=(connection,))
	watchdog.daemon = True
	watchdog.start()
	try:
		connection.request(method, target.path, body=body, headers=headers)
		# getresponse() may hand the socket over to the response and forget it; keep our own handle.
		sock = connection.pinned_sock
		sock.settimeout(deadline.remaining())
		response = connection.getresponse()
		location = response.getheader("Location")
		data, truncated = _read_capped(response, sock, deadline)
		if getattr(connection, "aborted", False):
			raise DeliveryError(_("timed out (overall deadline)"))
		return (
			response.status,
			response.reason,
			location,
			data.decode("utf-8", "replace")[:MAX_KEPT_CHARACTERS],
			truncated,
		)
	except (OSError, ValueError, http.client.HTTPException) as error:
		if getattr(connection, "aborted", False):
			raise DeliveryError(_("timed out (overall deadline)")) from None
		deadline.remaining()  # an abort by the watchdog reads as the deadline it is
		raise DeliveryError(f"{target.host}: {error.__class__.__name__}: {error}") from None
	finally:
		watchdog.cancel()
		connection.close()


def _read_capped(response, sock, deadline):
	chunks, size = [], 0
	while size < MAX_RESPONSE_BYTES:
		sock.settimeout(deadline.remaining())
		chunk = response.read1(min(16384, MAX_RESPONSE_BYTES - size))
		if not chunk:
			return b"".join(chunks), False
		chunks.append(chunk)
		size += len(chunk)
	return b"".join(chunks), True


def _abort(connection):
	connection.aborted = True
	sock = getattr(connection, "pinned_sock", None)
	if sock is not None:
		try:
			sock.shutdown(socket.SHUT_RDWR)
		except OSError:
			pass


def site_allowlist():
	"""The allowlist of the current site's config (imports frappe: call it on a site only)."""
	import frappe

	return Allowlist.parse(frappe.conf.get(ALLOWLIST_KEY))
