"""A time limit on one call, for what a rule's author controls the cost of: regex_match, and each
template render and Advanced Condition as a whole (engine/budget.py).

CPython's regular expression engine checks for signals while it backtracks, so an interval timer
can stop it. Timers only work in the main thread, which is where Frappe's web workers and RQ work
horses run a request or a job; elsewhere (a threaded dev server) the call runs without a limit. A
timer already set by someone else (RQ's job timeout uses SIGALRM) is put back afterwards with the
time it had left, so this never swallows or postpones it.
"""

import signal
import threading
import time
from contextlib import contextmanager

from crm_automation.engine.errors import RuleError, RuleProblem


class TimeLimitExceeded(RuleError):
	def __init__(self, message, path="time_limit"):
		super().__init__(RuleProblem(path, message))


class _Expired(BaseException):
	"""Raised by the timer inside the limited call; BaseException so that no `except Exception`
	in the call swallows it."""


@contextmanager
def time_limit(seconds, message):
	if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
		yield
		return
	previous_handler = signal.getsignal(signal.SIGALRM)
	previous_delay, previous_interval = signal.getitimer(signal.ITIMER_REAL)
	if previous_delay and previous_delay <= seconds:
		yield  # an earlier deadline is already set: let it fire as its owner meant
		return

	def expire(_signum, _frame):
		raise _Expired

	expire.pausable = True
	started = time.monotonic()
	signal.signal(signal.SIGALRM, expire)
	signal.setitimer(signal.ITIMER_REAL, seconds)
	try:
		yield
	except _Expired:
		raise TimeLimitExceeded(message) from None
	finally:
		signal.setitimer(signal.ITIMER_REAL, 0)
		signal.signal(signal.SIGALRM, previous_handler)
		if previous_delay:
			left = max(previous_delay - (time.monotonic() - started), 0.001)
			signal.setitimer(signal.ITIMER_REAL, left, previous_interval)


@contextmanager
def paused():
	"""Hold a running time_limit while the block runs: a read from the database inside a template may
	not be cut in the middle of talking to the server (the connection would be left unusable). The
	time the block takes is still counted: the limit fires right after it if it is over by then.
	Someone else's timer (RQ's) is left as it is."""
	if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
		yield
		return
	if not getattr(signal.getsignal(signal.SIGALRM), "pausable", False):
		yield
		return
	delay, interval = signal.setitimer(signal.ITIMER_REAL, 0)
	started = time.monotonic()
	try:
		yield
	finally:
		if delay:
			left = max(delay - (time.monotonic() - started), 0.001)
			signal.setitimer(signal.ITIMER_REAL, left, interval)
