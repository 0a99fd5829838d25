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

No Frappe import at module level: the address rules and the client are tested without a bench.
"""

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

ALLOWLIST_KEY = "crm_automation_webhook_allowlist"
MAX_REDIRECTS = 3
MAX_RESPONSE_BYTES = 64 * 1024
MAX_KEPT_CHARACTERS = 2000
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# Only these keep the method and body on a redirect; the others turn a POST into a GET, as browsers do.
BODY_PRESERVING_REDIRECTS = (307, 308)

# Ranges that embed an IPv4 address in an IPv6 one: the embedded address is what gets reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
# IANA's special-purpose ranges, spelled out so the verdict does not depend on the Python version's
# idea of is_global (3.11's early releases call 192.0.0.0/24 global).
_NOT_GLOBAL = tuple(
	ipaddress.ip_network(n)
	for n in (
		"0.0.0.0/8",
		"10.0.0.0/8",
		"100.64.0.0/10",
		"127.0.0.0/8",
		"169.254.0.0/16",
		"172.16.0.0/12",
		"192.0.0.0/24",
		"192.0.2.0/24",
		"192.88.99.0/24",
		"192.168.0.0/16",
		"198.18.0.0/15",
		"198.51.100.0/24",
		"203.0.113.0/24",
		"224.0.0.0/4",
		"240.0.0.0/4",
		"::/128",
		"::1/128",
		"100::/64",
		"2001::/23",
		"2001:db8::/32",
		"3fff::/20",
		"5f00::/16",
		"fc00::/7",
		"fe80::/10",
		"fec0::/10",
		"ff00::/8",
	)
)
_BLOCKED_HOST_NAMES = ("localhost", "localhost.localdomain", "metadata.google.internal", "metadata")


class BlockedTarget(ValueError):
	"""The URL or one of the addresses it resolves to may not be called from this site."""


class DeliveryError(Exception):
	"""The request could not be completed (refused, timed out, too many redirects...)."""


def address_problem(address):
	"""Why this IP address may not be called, or None when it is a public address."""
	ip = ipaddress.ip_address(address) if isinstance(address, str) else address
	if ip.version == 6:
		if ip.scope_id:
			return "a scoped (link-local) IPv6 address"
		embedded = _embedded_ipv4(ip)
		if embedded is not None:
			problem = address_problem(embedded)
			return f"an IPv6 address embedding {embedded}, {problem}" if problem else None
	if ip in _METADATA:
		return "the cloud metadata service"
	for test, label in (
		("is_unspecified", "unspecified"),
		("is_loopback", "loopback"),
		("is_link_local", "link-local"),
		("is_multicast", "multicast"),
		("is_private", "private"),
		("is_reserved", "reserved"),
		("is_site_local", "site-local"),
	):
		if getattr(ip, test, False):
			return f"a {label} address"
	if not ip.is_global or any(ip.version == n.version and ip in n for n in _NOT_GLOBAL):
		return "not a public address"
	return None


def _embedded_ipv4(ip):
	if ip.ipv4_mapped:
		return ip.ipv4_mapped
	if ip.sixtofour:
		return ip.sixtofour
	if ip.teredo:
		return ip.teredo[1]
	if ip in _NAT64 or ip in _NAT64_LOCAL:
		return ipaddress.ip_address(int(ip) & 0xFFFFFFFF)
	# IPv4-compatible (deprecated ::a.b.c.d): reached as the IPv4 address by some stacks.
	if int(ip) >> 32 == 0 and int(ip) > 1:
		return ipaddress.ip_address(int(ip))
	return None


@dataclass(frozen=True)
class Allowlist:
	"""Deliberate internal targets: exact host names, ``*.suffix`` host patterns and networks."""

	hosts: frozenset = frozenset()
	suffixes: tuple = ()
	networks: tuple = ()

	@classmethod
	def parse(cls, entries):
		"""From site config: a list, or one comma/space separated string. Raises ValueError naming
		an entry that is neither a host name nor a network."""
		if not entries:
			return cls()
		if isinstance(entries, str):
			entries = entries.replace(",", " ").split()
		if not isinstance(entries, list | tuple):
			raise ValueError(f"{ALLOWLIST_KEY} must be a list of host names or networks")
		hosts, suffixes, networks = set(), [], []
		for entry in entries:
			text = str(entry).strip().lower().rstrip(".")
			if not text:
				continue
			try:
				networks.append(ipaddress.ip_network(text, strict=False))
				continue
			except ValueError:
				pass
			if text.startswith("*.") and _is_host_name(text[2:]):
				suffixes.append(text[1:])
			elif _is_host_name(text):
				hosts.add(text)
			else:
				raise ValueError(f"{ALLOWLIST_KEY}: {entry!r} is neither a host name nor a network")
		return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

	def allows_host(self, host):
		host = host.lower().rstrip(".")
		return host in self.hosts or any(host.endswith(suffix) for suffix in self.suffixes)

	def allows_address(self, ip):
		return any(ip.version == network.version and ip in network for network in self.networks)


def _is_host_name(text):
	labels = text.split(".")
	return all(
		label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum() for label in labels
	)


@dataclass
class Target:
	scheme: str
	host: str
	port: int
	path: str
	literal_ip: object = None  # an ip_address when the host is written as an address

	@property
	def origin(self):
		return (self.scheme, self.host.lower(), self.port)


def parse_url(url):
	"""Scheme, host, port and path of an http(s) URL; BlockedTarget with the reason otherwise."""
	text = (url or "").strip()
	try:
		parts = urlsplit(text)
		port = parts.port
	except ValueError as error:
		raise BlockedTarget(f"{text!r} is not a valid URL ({error})") from None
	scheme = parts.scheme.lower()
	if scheme not in ("http", "https"):
		raise BlockedTarget(f"{text!r}: only http and https URLs can be called")
	host = parts.hostname
	if not host:
		raise BlockedTarget(f"{text!r} has no host")
	if parts.username is not None or parts.password is not None:
		raise BlockedTarget(f"{text!r}: credentials in the URL are not allowed (use a header)")
	if any(ch.isspace() or ord(ch) < 32 for ch in text):
		raise BlockedTarget(f"{text!r} contains spaces or control characters")
	try:
		literal = ipaddress.ip_address(host)
	except ValueError:
		literal = _legacy_ipv4(host)
	if literal is None:
		try:
			host = host.encode("idna").decode("ascii")
		except UnicodeError:
			raise BlockedTarget(f"{text!r}: {host!r} is not a valid host name") from None
	path = parts.path or "/"
	if parts.query:
		path += "?" + parts.query
	return Target(scheme, host, port or (443 if scheme == "https" else 80), path, literal)


def _legacy_ipv4(host):
	"""'2130706433', '0x7f.1', '127.1' are 127.0.0.1 to the C resolver; read them the same way."""
	if not all(part and (part.isdigit() or part.lower().startswith("0x")) for part in host.split(".")):
		return None
	try:
		return ipaddress.ip_address(socket.inet_ntoa(socket.inet_aton(host)))
	except (OSError, ValueError):
		return None


def check_url(url, allowlist=None):
	"""The checks possible without the network (at rule save): scheme, host, and a host written as
	an address or a local name must be public or allowlisted. Returns the Target."""
	allowlist = allowlist or Allowlist()
	target = parse_url(url)
	if allowlist.allows_host(target.host):
		return target
	if target.literal_ip is not None:
		problem = address_problem(target.literal_ip)
		if problem and not allowlist.allows_address(target.literal_ip):
			raise BlockedTarget(
				f"{target.host} is {problem}; add it to {ALLOWLIST_KEY} in site config to allow it"
			)
	elif _local_name(target.host):
		raise BlockedTarget(
			f"{target.host} is a local host name; add it to {ALLOWLIST_KEY} in site config to allow it"
		)
	return target


def _local_name(host):
	host = host.lower().rstrip(".")
	return host in _BLOCKED_HOST_NAMES or host.endswith((".localhost", ".local", ".internal"))


def resolve_target(target, allowlist=None, resolver=None):
	"""Every address the host resolves to, each checked; BlockedTarget if any is not allowed (a host
	that resolves to one public and one private address is refused: which one is used is not ours to
	choose). Returns the addresses to connect to, in the resolver's order."""
	allowlist = allowlist or Allowlist()
	if target.literal_ip is not None:
		addresses = [target.literal_ip]
	else:
		resolver = resolver or socket.getaddrinfo
		try:
			infos = resolver(target.host, target.port, 0, socket.SOCK_STREAM)
		except (OSError, UnicodeError) as error:
			raise DeliveryError(f"cannot resolve {target.host}: {error}") from None
		addresses = []
		for info in infos:
			ip = ipaddress.ip_address(info[4][0])
			if ip not in addresses:
				addresses.append(ip)
		if not addresses:
			raise DeliveryError(f"{target.host} resolves to no address")
	if allowlist.allows_host(target.host):
		return addresses
	for ip in addresses:
		problem = address_problem(ip)
		if problem and not allowlist.allows_address(ip):
			raise BlockedTarget(
				f"{target.host} resolves to {ip}, {problem}; add it to {ALLOWLIST_KEY} in site config to allow it"
			)
	return addresses


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
			raise DeliveryError("timed out (overall deadline)")
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
				raise DeliveryError(f"more than {MAX_REDIRECTS} redirects (last to {location})")
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
			raise DeliveryError("timed out (overall deadline)")
		return (
			response.status,
			response.reason,
			location,
			data.decode("utf-8", "replace")[:MAX_KEPT_CHARACTERS],
			truncated,
		)
	except (OSError, ValueError, http.client.HTTPException) as error:
		if getattr(connection, "aborted", False):
			raise DeliveryError("timed out (overall deadline)") from None
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
