"""Which webhook targets a site may call: the address rules, the allowlist and the reading of a URL.

Pure Python (no Frappe, no network but the resolver passed in), so every rule is tested in tier 1.
crm_automation.trust.outbound_http makes the requests; this module decides whether one may be made.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

# The engine's translator (no frappe here): the reasons below reach the rule's author at save
# time, in their language where the site has set one (crm_automation.engine.i18n.translating).
from crm_automation.engine.i18n import _

ALLOWLIST_KEY = "crm_automation_webhook_allowlist"

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
			return _("a scoped (link-local) IPv6 address")
		embedded = _embedded_ipv4(ip)
		if embedded is not None:
			problem = address_problem(embedded)
			return _("an IPv6 address embedding {0}, {1}").format(embedded, problem) if problem else None
	if ip in _METADATA:
		return _("the cloud metadata service")
	for test, label in (
		("is_unspecified", lambda: _("an unspecified address")),
		("is_loopback", lambda: _("a loopback address")),
		("is_link_local", lambda: _("a link-local address")),
		("is_multicast", lambda: _("a multicast address")),
		("is_private", lambda: _("a private address")),
		("is_reserved", lambda: _("a reserved address")),
		("is_site_local", lambda: _("a site-local address")),
	):
		if getattr(ip, test, False):
			return label()
	if not ip.is_global or any(ip.version == n.version and ip in n for n in _NOT_GLOBAL):
		return _("not a public address")
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
			raise ValueError(_("{0} must be a list of host names or networks").format(ALLOWLIST_KEY))
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
				raise ValueError(
					_("{0}: {1} is neither a host name nor a network").format(ALLOWLIST_KEY, repr(entry))
				)
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
		raise BlockedTarget(_("{0} is not a valid URL ({1})").format(repr(text), error)) from None
	scheme = parts.scheme.lower()
	if scheme not in ("http", "https"):
		raise BlockedTarget(_("{0}: only http and https URLs can be called").format(repr(text)))
	host = parts.hostname
	if not host:
		raise BlockedTarget(_("{0} has no host").format(repr(text)))
	if parts.username is not None or parts.password is not None:
		raise BlockedTarget(
			_("{0}: credentials in the URL are not allowed (use a header)").format(repr(text))
		)
	if any(ch.isspace() or ord(ch) < 32 for ch in text):
		raise BlockedTarget(_("{0} contains spaces or control characters").format(repr(text)))
	try:
		literal = ipaddress.ip_address(host)
	except ValueError:
		literal = _legacy_ipv4(host)
	if literal is None:
		try:
			host = host.encode("idna").decode("ascii")
		except UnicodeError:
			raise BlockedTarget(
				_("{0}: {1} is not a valid host name").format(repr(text), repr(host))
			) from None
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
				_("{0} is {1}; add it to {2} in site config to allow it").format(
					target.host, problem, ALLOWLIST_KEY
				)
			)
	elif _local_name(target.host):
		raise BlockedTarget(
			_("{0} is a local host name; add it to {1} in site config to allow it").format(
				target.host, ALLOWLIST_KEY
			)
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
			raise DeliveryError(_("cannot resolve {0}: {1}").format(target.host, error)) from None
		addresses = []
		for info in infos:
			ip = ipaddress.ip_address(info[4][0])
			if ip not in addresses:
				addresses.append(ip)
		if not addresses:
			raise DeliveryError(_("{0} resolves to no address").format(target.host))
	if allowlist.allows_host(target.host):
		return addresses
	for ip in addresses:
		problem = address_problem(ip)
		if problem and not allowlist.allows_address(ip):
			raise BlockedTarget(
				_("{0} resolves to {1}, {2}; add it to {3} in site config to allow it").format(
					target.host, ip, problem, ALLOWLIST_KEY
				)
			)
	return addresses
