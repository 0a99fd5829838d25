"""regex_match cannot hold a save up: a pattern that backtracks for ever is stopped after 50 ms and
fails the condition or template with the reason; a timer someone else set (RQ's job timeout) still
fires afterwards (engine/time_limit.py)."""

import signal
import time

import pytest

from crm_automation.engine.expressions import ExpressionError, evaluate_expression
from crm_automation.engine.templates import MAX_REGEX_LENGTH, TemplateError, render_template
from crm_automation.engine.time_limit import TimeLimitExceeded, time_limit

# (a+)+$ on 40 a's and a b takes minutes without a limit.
CATASTROPHIC = {"x": "a" * 40 + "b"}


def test_a_catastrophic_pattern_in_a_condition_is_stopped_with_the_reason():
	with pytest.raises(ExpressionError, match="regex_match took longer than 50 ms"):
		evaluate_expression("regex_match('(a+)+$', doc.x)", CATASTROPHIC)


def test_a_catastrophic_pattern_in_a_template_is_stopped_with_the_reason():
	with pytest.raises(TemplateError, match="regex_match took longer than 50 ms"):
		render_template("{{ regex_match('(a+)+$', doc.x) }}", CATASTROPHIC)


def test_ordinary_patterns_still_match():
	assert evaluate_expression("regex_match('[a-z]+@example[.]com', doc.email)", {"email": "ann@example.com"})
	assert render_template("{{ regex_match('a+b', doc.x) }}", {"x": "aab"}) == "True"
	assert evaluate_expression("regex_match('a+b', doc.x)", {"x": None}) is False


def test_a_very_long_pattern_is_refused():
	with pytest.raises(ExpressionError, match="longer than"):
		evaluate_expression(f"regex_match('{'a' * (MAX_REGEX_LENGTH + 1)}', doc.x)", {"x": "a"})


def test_a_timer_set_before_still_fires_after_the_limited_call():
	fired = []
	previous = signal.signal(signal.SIGALRM, lambda *_args: fired.append(True))
	try:
		signal.setitimer(signal.ITIMER_REAL, 0.3)
		with pytest.raises(ExpressionError):
			evaluate_expression("regex_match('(a+)+$', doc.x)", CATASTROPHIC)
		assert signal.getitimer(signal.ITIMER_REAL)[0] > 0, "the earlier timer is armed again"
		deadline = time.monotonic() + 5
		while not fired and time.monotonic() < deadline:
			time.sleep(0.01)
		assert fired == [True]
	finally:
		signal.setitimer(signal.ITIMER_REAL, 0)
		signal.signal(signal.SIGALRM, previous)


def test_an_earlier_deadline_is_left_to_its_owner():
	"""When someone else's timer is due before ours, it fires as they meant: ours is not set."""

	class Theirs(BaseException):
		pass

	def theirs(*_args):
		raise Theirs

	previous = signal.signal(signal.SIGALRM, theirs)
	try:
		signal.setitimer(signal.ITIMER_REAL, 0.02)
		with pytest.raises(Theirs), time_limit(1, "ours"):
			time.sleep(1)
	finally:
		signal.setitimer(signal.ITIMER_REAL, 0)
		signal.signal(signal.SIGALRM, previous)


def test_the_limit_raises_its_own_error_and_disarms():
	with pytest.raises(TimeLimitExceeded, match="too slow"), time_limit(0.02, "too slow"):
		while True:
			pass
	assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
