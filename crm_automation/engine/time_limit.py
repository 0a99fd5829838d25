"""A time limit on one call, for the few helpers whose cost a rule's author controls (regex_match).

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
