"""Connect a benchmark script to a site: run from the bench's sites folder with the bench's Python,
    cd ~/frappe-bench/sites && ../env/bin/python /path/to/crm_automation/benchmarks/<script>.py <site>
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def connect():
	import frappe

	site = sys.argv[1] if len(sys.argv) > 1 else None
	if not site:
		sys.exit(__doc__)
	frappe.init(site=site, sites_path=".")
	frappe.connect()
	frappe.set_user("Administrator")
	return frappe


def timed(function, *args):
	started = time.perf_counter()
	function(*args)
	return time.perf_counter() - started


def summary(label, samples):
	total = sum(samples)
	return f"{label}: total {total:.3f} s, median block {statistics.median(samples) * 1000:.1f} ms"
