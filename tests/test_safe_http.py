"""The webhook network guard without a bench: which addresses are refused, how URLs are read, and the
client against loopback servers started here (allowlisted deliberately, as a site would)."""

import http.server
import ipaddress
import socket
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_automation.trust import outbound_http as safe_http
from crm_automation.trust.outbound_http import (
	Allowlist,
	BlockedTarget,
	DeliveryError,
	address_problem,
	check_url,
)

BLOCKED = [
	"127.0.0.1",
	"127.8.9.10",
	"0.0.0.0",
	"10.1.2.3",
	"172.16.0.1",
	"172.31.255.255",
	"192.168.1.1",
	"169.254.169.254",  # cloud metadata
	"169.254.0.5",
	"100.64.0.1",  # carrier-grade NAT
	"192.0.0.8",
	"198.18.0.1",  # benchmarking
	"192.0.2.1",  # documentation
	"224.0.0.1",
	"239.255.255.250",
	"240.0.0.1",
	"255.255.255.255",
	"::",
	"::1",
	"fc00::1",
	"fd12:3456::1",
	"fe80::1",
	"ff02::1",
	"::ffff:127.0.0.1",  # IPv4-mapped
	"::ffff:169.254.169.254",
	"::ffff:10.0.0.1",
	"::127.0.0.1",  # IPv4-compatible
	"64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
	"2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
	"2002:7f00:1::1",  # 6to4 of 127.0.0.1
	"2001:db8::1",  # documentation
	"fd00:ec2::254",  # AWS metadata over IPv6
]
PUBLIC = [
	"93.184.216.34",
	"8.8.8.8",
	"1.1.1.1",
	"2606:4700:4700::1111",
	"::ffff:8.8.8.8",
	"172.32.0.1",
	"11.0.0.1",
]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_refused(address):
	assert address_problem(address), address


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
	assert address_problem(address) is None


def test_metadata_is_named():
	assert "metadata" in address_problem("169.254.169.254")
	assert "169.254.169.254" in address_problem("::ffff:169.254.169.254")


NON_PUBLIC_V4 = [
	ipaddress.ip_network(n)
	for n in (
		"10.0.0.0/8",
		"172.16.0.0/12",
		"192.168.0.0/16",
		"127.0.0.0/8",
		"169.254.0.0/16",
		"224.0.0.0/4",
		"0.0.0.0/8",
	)
]


@given(
	st.sampled_from(NON_PUBLIC_V4),
	st.integers(min_value=0, max_value=2**32 - 1),
	st.sampled_from(["plain", "mapped", "nat64", "6to4"]),
)
def test_every_address_of_a_blocked_range_is_refused_in_every_spelling(network, offset, spelling):
	v4 = network[offset % network.num_addresses]
	ip = {
		"plain": v4,
		"mapped": ipaddress.ip_address(f"::ffff:{v4}"),
		"nat64": ipaddress.ip_address(int(ipaddress.ip_address("64:ff9b::")) + int(v4)),
		"6to4": ipaddress.ip_address((0x2002 << 112) | (int(v4) << 80)),
	}[spelling]
	assert address_problem(ip), ip


@pytest.mark.parametrize(
	"url, reason",
	[
		("ftp://example.com/x", "only http and https"),
		("file:///etc/passwd", "only http and https"),
		("gopher://example.com", "only http and https"),
		("http:///path", "no host"),
		("http://user:pw@example.com/", "credentials"),
		("http://127.0.0.1/", "loopback"),
		("http://[::1]:8000/", "loopback"),
		("http://169.254.169.254/latest/meta-data/", "metadata"),
		("http://[::ffff:169.254.169.254]/", "169.254.169.254"),
		("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
		("http://0x7f.1/", "loopback"),
		("http://127.1/", "loopback"),
		("http://10.0.0.1:8080/hook", "private"),
		("http://localhost:8000/", "local host name"),
		("http://LOCALHOST./", "local host name"),
		("http://api.localhost/", "local host name"),
		("http://metadata.google.internal/", "local host name"),
		("http://example.com:99999/", "not a valid URL"),
		("", "only http and https"),
	],
)
def test_urls_refused_without_the_network(url, reason):
	with pytest.raises(BlockedTarget, match=reason):
		check_url(url)


def test_public_url_passes_and_is_read():
	target = check_url("HTTPS://Hooks.Example.com/in?x=1")
	assert (target.scheme, target.host, target.port, target.path) == (
		"https",
		"hooks.example.com",
		443,
		"/in?x=1",
	)


def test_allowlist_by_network_and_by_host():
	allow = Allowlist.parse(["127.0.0.1", "10.20.0.0/16", "erp.internal", "*.corp.example"])
	check_url("http://127.0.0.1:8000/", allow)
	check_url("http://10.20.3.4/", allow)
	check_url("http://erp.internal/", allow)
	check_url("http://a.b.corp.example/", allow)
	with pytest.raises(BlockedTarget):
		check_url("http://10.21.0.1/", allow)
	with pytest.raises(BlockedTarget):
		check_url("http://127.0.0.2/", allow)
	with pytest.raises(BlockedTarget):
		check_url("http://corp.example.evil.com.local/", allow)
	assert Allowlist.parse("127.0.0.1, erp.internal").allows_host("ERP.internal")


def test_allowlist_entry_that_is_nothing_is_refused_by_name():
	with pytest.raises(ValueError, match="'http://x/'"):
		Allowlist.parse(["http://x/"])


def fake_resolver(table):
	def resolve(host, port, *args):
		if host not in table:
			raise socket.gaierror(f"unknown host {host}")
		return [
			(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
			for a in table[host]
		]

	return resolve


def test_every_resolved_address_is_checked():
	target = check_url("http://hooks.example.com/")
	resolver = fake_resolver({"hooks.example.com": ["93.184.216.34", "10.0.0.5"]})
	with pytest.raises(BlockedTarget, match=r"10\.0\.0\.5"):
		safe_http.resolve_target(target, resolver=resolver)
	resolver = fake_resolver({"hooks.example.com": ["93.184.216.34"]})
	assert safe_http.resolve_target(target, resolver=resolver) == [ipaddress.ip_address("93.184.216.34")]


def test_host_that_resolves_to_metadata_is_refused():
	target = check_url("http://innocent.example.com/")
	with pytest.raises(BlockedTarget, match="metadata"):
		safe_http.resolve_target(
			target, resolver=fake_resolver({"innocent.example.com": ["169.254.169.254"]})
		)


# --- the client against loopback servers ---------------------------------------------------------


class Server:
	"""A loopback HTTP server answering with ``handler(request) -> (status, headers, body)``."""

	def __init__(self, handler):
		self.requests = []
		outer = self

		class Handler(http.server.BaseHTTPRequestHandler):
			def _any(self):
				length = int(self.headers.get("Content-Length") or 0)
				body = self.rfile.read(length) if length else b""
				outer.requests.append(
					{"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
				)
				result = handler(self)
				if result is None:
					return
				status, headers, payload = result
				self.send_response(status)
				for key, value in headers.items():
					self.send_header(key, value)
				self.send_header("Content-Length", str(len(payload)))
				self.end_headers()
				self.wfile.write(payload)

			do_POST = do_GET = _any

			def log_message(self, *args):
				pass

		self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
		self.port = self.httpd.server_port
		self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
		self.thread.start()

	def close(self):
		self.httpd.shutdown()
		self.httpd.server_close()


@pytest.fixture
def serve():
	servers = []

	def start(handler):
		server = Server(handler)
		servers.append(server)
		return server

	yield start
	for server in servers:
		server.close()


LOOPBACK = Allowlist.parse(["127.0.0.1"])


def test_loopback_is_refused_unless_allowlisted(serve):
	server = serve(lambda r: (200, {}, b"ok"))
	with pytest.raises(BlockedTarget):
		safe_http.post(f"http://127.0.0.1:{server.port}/", b"{}", {}, 5)
	assert server.requests == []
	response = safe_http.post(
		f"http://127.0.0.1:{server.port}/in", b"{}", {"Content-Type": "application/json"}, 5, LOOPBACK
	)
	assert (response.status, response.body, len(server.requests)) == (200, "ok", 1)


def test_connects_to_the_checked_address_and_keeps_the_host_name(serve):
	"""DNS rebinding: the name is resolved once, checked, and the socket goes to that address; the
	Host header still names the host."""
	server = serve(lambda r: (200, {}, b"ok"))
	answers = iter([["127.0.0.1"], ["169.254.169.254"]])
	calls = []

	def rebinding(host, port, *args):
		calls.append(host)
		return fake_resolver({host: next(answers)})(host, port)

	allow = Allowlist.parse(["127.0.0.1"])
	safe_http.post(f"http://hooks.example.com:{server.port}/x", b"{}", {}, 5, allow, resolver=rebinding)
	assert calls == ["hooks.example.com"]
	assert server.requests[0]["headers"]["Host"] == f"hooks.example.com:{server.port}"


def test_redirect_to_a_blocked_target_is_refused(serve):
	"""The first host is allowed by name; its redirect to the metadata address (or to loopback by
	address, which only the name was allowed for) is not followed."""
	for location in (
		"http://169.254.169.254/latest/meta-data/",
		"http://127.0.0.1:{port}/",
		"file:///etc/passwd",
	):
		server = serve(
			lambda r, location=location: (302, {"Location": location.format(port=r.server.server_port)}, b"")
		)
		allow = Allowlist.parse(["hooks.test"])
		with pytest.raises(BlockedTarget):
			safe_http.post(
				f"http://hooks.test:{server.port}/",
				b"{}",
				{},
				5,
				allow,
				resolver=fake_resolver({"hooks.test": ["127.0.0.1"]}),
			)
		assert len(server.requests) == 1


def test_redirects_are_followed_a_few_times_then_refused(serve):
	def bounce(request):
		hops = int(request.path.strip("/") or 0)
		if hops < 2:
			return 307, {"Location": f"/{hops + 1}"}, b""
		return 200, {}, b"landed"

	server = serve(bounce)
	response = safe_http.post(f"http://127.0.0.1:{server.port}/0", b'{"a": 1}', {"X-Token": "t"}, 5, LOOPBACK)
	assert (response.status, response.body, len(response.redirects)) == (200, "landed", 2)
	assert [r["method"] for r in server.requests] == ["POST", "POST", "POST"]
	assert server.requests[-1]["body"] == b'{"a": 1}'

	loop = serve(lambda r: (302, {"Location": "/again"}, b""))
	with pytest.raises(DeliveryError, match="more than 3 redirects"):
		safe_http.post(f"http://127.0.0.1:{loop.port}/", b"{}", {}, 5, LOOPBACK)
	assert len(loop.requests) == 4


def test_cross_host_redirect_drops_custom_headers(serve):
	final = serve(lambda r: (200, {}, b"ok"))
	first = serve(lambda r: (307, {"Location": f"http://127.0.0.1:{final.port}/"}, b""))
	safe_http.post(
		f"http://127.0.0.1:{first.port}/",
		b"{}",
		{"Authorization": "Bearer x", "Content-Type": "application/json"},
		5,
		LOOPBACK,
	)
	assert first.requests[0]["headers"]["Authorization"] == "Bearer x"
	assert "Authorization" not in final.requests[0]["headers"]


def test_response_is_read_up_to_64kb_and_2000_characters_kept(serve):
	sent = {}

	def huge(request):
		request.send_response(200)
		request.send_header("Content-Length", str(10 * 1024 * 1024))
		request.end_headers()
		try:
			for _ in range(10 * 1024):
				request.wfile.write(b"x" * 1024)
				sent["bytes"] = sent.get("bytes", 0) + 1024
		except OSError:
			pass

	server = serve(huge)
	response = safe_http.post(f"http://127.0.0.1:{server.port}/", b"{}", {}, 10, LOOPBACK)
	assert response.truncated
	assert len(response.body) == safe_http.MAX_KEPT_CHARACTERS


def test_overall_deadline_holds_against_a_server_that_drips(serve):
	"""A server that sends a byte now and then resets every per-socket timeout; the deadline is for
	the whole exchange."""
	stop = threading.Event()

	def drip(request):
		request.send_response(200)
		request.send_header("Content-Length", "100000")
		request.end_headers()
		while not stop.is_set():
			try:
				request.wfile.write(b"x")
				request.wfile.flush()
			except OSError:
				return
			stop.wait(0.05)

	server = serve(drip)
	started = time.monotonic()
	try:
		with pytest.raises(DeliveryError, match="deadline"):
			safe_http.post(f"http://127.0.0.1:{server.port}/", b"{}", {}, 1, LOOPBACK)
	finally:
		stop.set()
	# Generous: the point is that it ends near 1 s and not after the 100,000 bytes (~80 minutes).
	assert time.monotonic() - started < 20


def test_connection_refused_is_a_delivery_error():
	with socket.socket() as probe:
		probe.bind(("127.0.0.1", 0))
		port = probe.getsockname()[1]
	with pytest.raises(DeliveryError):
		safe_http.post(f"http://127.0.0.1:{port}/", b"{}", {}, 2, LOOPBACK)


def _self_signed(directory, name):
	"""A certificate for ``name`` made with the openssl command (skips where there is none)."""
	import shutil
	import subprocess

	if not shutil.which("openssl"):
		pytest.skip("openssl is not installed")
	cert, key = directory / f"{name}.pem", directory / f"{name}.key"
	subprocess.run(
		[
			"openssl",
			"req",
			"-x509",
			"-newkey",
			"rsa:2048",
			"-nodes",
			"-days",
			"1",
			"-subj",
			f"/CN={name}",
			"-addext",
			f"subjectAltName=DNS:{name}",
			"-keyout",
			str(key),
			"-out",
			str(cert),
		],
		check=True,
		capture_output=True,
	)
	return cert, key


@pytest.mark.parametrize("certificate_for, ok", [("hooks.test", True), ("other.test", False)])
def test_https_to_the_pinned_address_still_checks_the_certificate_name(tmp_path, certificate_for, ok):
	"""The socket goes to the checked IP, but TLS is spoken to the host name: SNI is sent and the
	certificate must be for that name."""
	import ssl

	cert, key = _self_signed(tmp_path, certificate_for)
	server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
	server_context.load_cert_chain(cert, key)
	seen = {}

	def remember_sni(sock, server_name, context):
		seen["sni"] = server_name

	server_context.sni_callback = remember_sni
	server = Server(lambda r: (200, {}, b"secure"))
	server.httpd.socket = server_context.wrap_socket(server.httpd.socket, server_side=True)
	client_context = ssl.create_default_context(cafile=str(cert))
	allow = Allowlist.parse(["hooks.test"])
	resolver = fake_resolver({"hooks.test": ["127.0.0.1"]})
	try:
		if ok:
			response = safe_http.post(
				f"https://hooks.test:{server.port}/",
				b"{}",
				{},
				5,
				allow,
				resolver=resolver,
				tls_context=client_context,
			)
			assert (response.status, response.body) == (200, "secure")
		else:
			with pytest.raises(DeliveryError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
				safe_http.post(
					f"https://hooks.test:{server.port}/",
					b"{}",
					{},
					5,
					allow,
					resolver=resolver,
					tls_context=client_context,
				)
		assert seen["sni"] == "hooks.test"
	finally:
		server.close()
