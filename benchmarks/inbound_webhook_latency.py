"""Inbound webhook acceptance: latency (p50, p99) and throughput of signed calls to a running site.

Starts nothing: point it at a Webhook Received rule's URL on a site that is being served, e.g.

    bench --site SITE serve --port 8011            # one web worker (Werkzeug), in another shell
    python benchmarks/inbound_webhook_latency.py --url 'http://SITE:8011/api/method/...receive?token=...' \\
        --secret SECRET [--calls 500] [--concurrency 4] [--host-header SITE]

Each call carries a fresh delivery id and a body of about 300 bytes signed as a sender signs it
(X-CRM-Automation-Signature). What is timed is the answer (202, after the log row is written and the
job queued), not the worker's run of the rule. Only the standard library is used.
"""

import argparse
import concurrent.futures
import hashlib
import hmac
import json
import statistics
import time
import urllib.error
import urllib.request
import uuid


def signed_request(url, secret, index, host=None):
	email = f"bench-iw-{index}-{uuid.uuid4().hex[:8]}@example.com"
	body = json.dumps(
		{
			"event": "signup",
			"contact": {"email": email, "first_name": "Bench"},
			"company": "Bench Co",
			"note": "x" * 150,
		}
	).encode()
	digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
	headers = {
		"Content-Type": "application/json",
		"X-CRM-Automation-Signature": "sha256=" + digest,
		"X-Webhook-Delivery-Id": uuid.uuid4().hex,
	}
	if host:
		headers["Host"] = host
	return urllib.request.Request(url, data=body, headers=headers, method="POST")


def one_call(url, secret, index, host):
	request = signed_request(url, secret, index, host)
	started = time.perf_counter()
	try:
		with urllib.request.urlopen(request, timeout=30) as response:
			status = response.status
			response.read()
	except urllib.error.HTTPError as error:
		status = error.code
	except OSError as error:
		# A development server that restarts (its reloader) drops connections: counted, not fatal.
		status = type(error).__name__
	return status, time.perf_counter() - started


def percentile(values, fraction):
	ordered = sorted(values)
	return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main():
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--url", required=True, help="the rule's full webhook URL (with ?token=)")
	parser.add_argument("--secret", required=True, help="the rule's signing secret")
	parser.add_argument("--calls", type=int, default=500)
	parser.add_argument("--concurrency", type=int, default=4)
	parser.add_argument("--warmup", type=int, default=20)
	parser.add_argument("--host-header", help="Host header, when the URL names 127.0.0.1 and not the site")
	args = parser.parse_args()

	for i in range(args.warmup):
		one_call(args.url, args.secret, -i - 1, args.host_header)
	started = time.perf_counter()
	with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
		results = list(
			pool.map(lambda i: one_call(args.url, args.secret, i, args.host_header), range(args.calls))
		)
	elapsed = time.perf_counter() - started
	statuses = {}
	for status, _seconds in results:
		statuses[status] = statuses.get(status, 0) + 1
	latencies = [seconds * 1000 for status, seconds in results if status == 202]
	print(f"calls: {args.calls}, concurrency: {args.concurrency}, answers: {statuses}")
	if latencies:
		print(
			f"acceptance latency (202): p50 {statistics.median(latencies):.1f} ms, "
			f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
		)
	print(f"throughput: {len(results) / elapsed:.1f} calls/s over {elapsed:.1f} s")


if __name__ == "__main__":
	main()
