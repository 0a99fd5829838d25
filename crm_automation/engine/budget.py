"""What one evaluation of a rule's own code may cost: every template render and Advanced Condition,
on a site, in a dry run and in the offline simulator.

A rule's author chooses the code and a user's save waits for it, so nothing here trusts what the
code looks like when it is saved; the limits hold while it runs:

* size: no value it builds is longer than MAX_VALUE_LENGTH (text, list, ...) or a number of more
  than MAX_NUMBER_BITS bits. Operations that can make a large value from small ones (`*`, `+`, `%`
  and format widths, zfill/ljust/center/expandtabs/replace/join/translate ...) are checked *before*
  they run, so the value is never built; everything else is checked on its result.
* steps: a template does at most MAX_STEPS loop rounds, calls, filters and operators, and writes at
  most MAX_WRITTEN characters in all (its output, its macros' and `{% set %}` blocks' included).
  All the values one evaluation builds add up to at most MAX_BUILT characters, so that many values
  each under the size limit cannot fill the memory together (`|map('center', 999999)|join`).
* time: one render or condition stops after EVALUATION_SECONDS; all the evaluations of one run of a
  rule (its conditions and every template of every action) share RUN_SECONDS (run_budget). The time
  is checked at each step, and an interval timer (time_limit.py) also stops code that takes no steps.
  Database reads a template makes are timed but never cut off midway (time_limit.paused).

Passing a limit raises Overrun inside the evaluation; `evaluating` turns it into the caller's error
type with a translated reason once the evaluation's timer is off.
"""

import string
import time
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from crm_automation.engine.i18n import _
from crm_automation.engine.time_limit import TimeLimitExceeded, paused, time_limit

MAX_VALUE_LENGTH = 1_000_000
MAX_NUMBER_BITS = 4_096  # about 1,200 digits: far beyond an amount, a count or a date
MAX_STEPS = 100_000
MAX_WRITTEN = 1_000_000
MAX_BUILT = 10_000_000
EVALUATION_SECONDS = 2.0
RUN_SECONDS = 5.0

CONDITION = "condition"
TEMPLATE = "template"

_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)
_TEXT = (str, bytes, bytearray)


class Overrun(Exception):
	"""A limit passed during an evaluation: which one, and its value (worded by `describe`)."""

	SIZE, NUMBER, STEPS, WRITTEN, TIME, RUN = "size", "number", "steps", "written", "time", "run"
	SUM, INDENT, BUILT = "sum", "indent", "built"

	def __init__(self, kind, limit):
		super().__init__(kind, limit)
		self.kind = kind
		self.limit = limit

	def describe(self, what):
		kind, limit = self.kind, self.limit
		if kind == self.SIZE:
			if what == CONDITION:
				return _("a value longer than {0} characters is not allowed in a condition").format(limit)
			return _("a value longer than {0} characters is not allowed in a template").format(limit)
		if kind == self.NUMBER:
			return _("a number of more than {0} bits is not allowed in rules").format(limit)
		if kind == self.STEPS:
			return _("the template took more than {0} steps (loop rounds, calls, filters)").format(limit)
		if kind == self.BUILT:
			if what == CONDITION:
				return _("the condition built values of more than {0} characters in all").format(limit)
			return _("the template built values of more than {0} characters in all").format(limit)
		if kind == self.WRITTEN:
			return _("the template wrote more than {0} characters").format(limit)
		if kind == self.SUM:
			return _("the sum filter adds up numbers only")
		if kind == self.INDENT:
			return _("tojson indents by a number of at most {0} spaces").format(limit)
		if kind == self.RUN:
			return _("the rule's run went over its time budget of {0} s").format(limit)
		if what == CONDITION:
			return _("the condition took longer than {0} s").format(limit)
		return _("the template took longer than {0} s").format(limit)


class RunBudget:
	"""The time all the evaluations of one run of a rule share. Only evaluation time is counted: an
	action's own work (writing records, the rules those writes start, which have budgets of their
	own) is bounded by the documents and depth limits, and stopping a write midway is worse."""

	__slots__ = ("seconds", "spent")

	def __init__(self, seconds):
		self.seconds = seconds
		self.spent = 0.0

	def left(self):
		return self.seconds - self.spent

	@property
	def exhausted(self):
		return self.spent >= self.seconds


class Meter:
	"""One evaluation's steps, characters written and built, and deadline."""

	__slots__ = ("built", "deadline", "expiry", "max_steps", "max_written", "steps", "written")

	def __init__(self, seconds, expiry, max_steps=MAX_STEPS, max_written=MAX_WRITTEN):
		self.deadline = time.monotonic() + seconds
		self.expiry = expiry
		self.steps = 0
		self.written = 0
		self.built = 0
		self.max_steps = max_steps
		self.max_written = max_written

	def step(self):
		self.steps += 1
		if self.steps > self.max_steps:
			raise Overrun(Overrun.STEPS, self.max_steps)
		if time.monotonic() > self.deadline:
			raise self.expiry

	def wrote(self, length):
		self.written += length
		if self.written > self.max_written:
			raise Overrun(Overrun.WRITTEN, self.max_written)


_run = ContextVar("crm_automation_run_budget", default=None)
_meter = ContextVar("crm_automation_meter", default=None)
_OWN_TIMER = object()


@contextmanager
def run_budget(seconds=None):
	"""The budget of one run of a rule: every evaluation inside the block draws on it."""
	budget = RunBudget(RUN_SECONDS if seconds is None else seconds)
	token = _run.set(budget)
	try:
		yield budget
	finally:
		_run.reset(token)


def within_run_budget(function, *args, **kwargs):
	"""`function(*args, **kwargs)` as one run of a rule (a dry run's preview of one document)."""
	with run_budget():
		return function(*args, **kwargs)


def current_run():
	return _run.get()


def current_meter():
	return _meter.get()


def step():
	meter = _meter.get()
	if meter is not None:
		meter.step()


@contextmanager
def evaluating(what, error, seconds=None, max_steps=None):
	"""Meter one evaluation (`what`: CONDITION or TEMPLATE); a limit passed raises `error(reason)`."""
	seconds = EVALUATION_SECONDS if seconds is None else seconds
	max_steps = MAX_STEPS if max_steps is None else max_steps
	run = _run.get()
	limit, expiry = seconds, Overrun(Overrun.TIME, seconds)
	if run is not None and run.left() <= seconds:
		limit, expiry = run.left(), Overrun(Overrun.RUN, run.seconds)
		if limit <= 0:
			raise error(expiry.describe(what))
	meter = Meter(limit, expiry, max_steps)
	token = _meter.set(meter)
	started = time.monotonic()
	try:
		with time_limit(limit, _OWN_TIMER):
			yield meter
	except Overrun as overrun:
		reason = overrun
	except TimeLimitExceeded as expired:
		if expired.first.message is not _OWN_TIMER:
			raise
		reason = expiry
	else:
		return
	finally:
		_meter.reset(token)
		if run is not None:
			run.spent += time.monotonic() - started
	if reason.kind == Overrun.RUN:
		run.spent = max(run.spent, run.seconds)
	raise error(reason.describe(what)) from None


def unmetered(read):
	"""`read` (engine/reads.py) with the evaluation's timer held while it talks to the database."""
	if read is None:
		return None

	def held(*args, **kwargs):
		with paused():
			return read(*args, **kwargs)

	return held


# ------------------------------------------------------------------------------------------------
# Sizes


def check_length(length):
	if length > MAX_VALUE_LENGTH:
		raise Overrun(Overrun.SIZE, MAX_VALUE_LENGTH)


def checked(value):
	"""`value`, if it is within the size limits; it counts toward what the evaluation built."""
	if isinstance(value, _SIZED):
		size = weight(value)
		check_length(size)
		meter = _meter.get()
		if meter is not None:
			meter.built += size
			if meter.built > MAX_BUILT:
				raise Overrun(Overrun.BUILT, MAX_BUILT)
	elif isinstance(value, int) and value.bit_length() > MAX_NUMBER_BITS:
		raise Overrun(Overrun.NUMBER, MAX_NUMBER_BITS)
	return value


def weight(value):
	"""A value's size as the text it becomes: a text's length; a list's length plus the weight of
	what it holds, nested lists included (a list of a million references to one long text is short,
	its text is not). Counting stops just past the limit, so weighing costs at most the limit."""
	if isinstance(value, _TEXT):
		return len(value)
	if not isinstance(value, _SIZED):
		return 0
	total, stack = 0, [value]
	while stack and total <= MAX_VALUE_LENGTH:
		item = stack.pop()
		if isinstance(item, _TEXT):
			total += len(item)
		elif isinstance(item, dict):
			total += len(item)
			stack.extend(item.keys())
			stack.extend(item.values())
		elif isinstance(item, _SIZED):
			total += len(item)
			stack.extend(item)
	return total


def as_count(value):
	"""A width, a repeat count, a number of pieces: an int, or anything else as no size at all."""
	return value if isinstance(value, int) else 0


def check_binop(operator, left, right):
	"""Before `left <operator> right` runs: the operators that make a large value from small ones."""
	if operator == "*":
		if isinstance(left, _SIZED) and isinstance(right, int):
			check_length(weight(left) * right)
		elif isinstance(right, _SIZED) and isinstance(left, int):
			check_length(weight(right) * left)
		elif isinstance(left, int) and isinstance(right, int):
			_check_bits(left.bit_length() + right.bit_length())
	elif operator == "+":
		if isinstance(left, _SIZED) and isinstance(right, _SIZED):
			check_length(weight(left) + weight(right))
	elif operator == "%":
		if isinstance(left, _TEXT):
			check_percent_format(left, right)
	elif operator == "**":
		if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
			_check_bits(left.bit_length() * right)


def _check_bits(bits):
	if bits > MAX_NUMBER_BITS:
		raise Overrun(Overrun.NUMBER, MAX_NUMBER_BITS)


def check_percent_format(template, values):
	"""`template % values` would not build a value over the limit: the widths and precisions written
	in it, those taken from `values` by `*`, and the plain sum of the parts."""
	values = values if isinstance(values, tuple) else (values,)
	stars = False
	for width in _percent_widths(template):
		if width is None:
			stars = True
		else:
			check_length(width)
	if stars:
		for value in values:
			check_length(as_count(value))
	check_length(len(template) + sum(len(v) for v in values if isinstance(v, _SIZED)))


def _percent_widths(template):
	"""Each width and precision of a %-format (None for `*`), read in one pass over it."""
	if isinstance(template, bytes | bytearray):
		template = template.decode("latin-1")
	index, end = 0, len(template)
	while True:
		index = template.find("%", index)
		if index < 0:
			return
		index += 1
		if index < end and template[index] == "(":
			close = template.find(")", index)
			if close < 0:
				return  # Python refuses it itself
			index = close + 1
		while index < end and template[index] in "#0- +":
			index += 1
		for part in ("width", "precision"):
			if index < end and template[index] == "*":
				yield None
				index += 1
			else:
				start = index
				while index < end and template[index] in "0123456789":
					index += 1
				if index > start:
					# More digits than the limit has is over it, without reading a huge number.
					digits = template[start:index]
					yield int(digits) if len(digits) <= 9 else MAX_VALUE_LENGTH + 1
			if part == "width" and index < end and template[index] == ".":
				index += 1
			else:
				break
		index += 1  # the conversion (or the second % of %%)


def check_format_method(template, args, kwargs):
	"""`template.format(*args, **kwargs)` would not build a value over the limit."""
	nested = False
	try:
		fields = list(string.Formatter().parse(template))
	except (ValueError, TypeError):
		return  # it fails by itself
	for _literal, _field, spec, _conversion in fields:
		if not spec:
			continue
		if "{" in spec:
			nested = True
		for width in _digit_runs(spec):
			check_length(width)
	if nested:
		for value in (*args, *kwargs.values()):
			check_length(as_count(value))
	check_length(len(template) + sum(len(v) for v in (*args, *kwargs.values()) if isinstance(v, _SIZED)))


def _digit_runs(text):
	number = ""
	for char in (*text, ""):
		if char and char in "0123456789":
			number += char
		elif number:
			yield int(number) if len(number) <= 9 else MAX_VALUE_LENGTH + 1
			number = ""


def check_call(function, args, kwargs):
	"""Before a method call: the methods of text (and bytes, and int.to_bytes) that make a large
	value from small arguments. Anything else is checked on its result (`checked`)."""
	receiver = getattr(function, "__self__", None)
	if receiver is None:
		wrapped = getattr(function, "__wrapped__", None)  # Jinja's wrapper of str.format
		receiver = getattr(wrapped, "__self__", None)
	name = getattr(function, "__name__", None)
	if isinstance(receiver, _TEXT):
		check_text_method(receiver, name, args, kwargs)
	elif isinstance(receiver, int) and name == "to_bytes":
		check_length(as_count(args[0] if args else kwargs.get("length", 1)))


def check_text_method(text, name, args, kwargs):
	def argument(position, keyword, default=None):
		if len(args) > position:
			return args[position]
		return kwargs.get(keyword, default)

	if name in ("zfill", "ljust", "rjust", "center"):
		check_length(as_count(argument(0, "width")))
	elif name == "expandtabs":
		tabs = text.count(b"\t" if isinstance(text, bytes | bytearray) else "\t")
		check_length(len(text) + tabs * as_count(argument(0, "tabsize", 8)))
	elif name == "replace":
		old, new, count = argument(0, "old"), argument(1, "new"), argument(2, "count", -1)
		if isinstance(old, _TEXT) and isinstance(new, _TEXT) and type(old) is type(text):
			times = text.count(old) if old else len(text) + 1
			if isinstance(count, int) and count >= 0:
				times = min(times, count)
			check_length(len(text) + times * max(len(new) - len(old), 0))
	elif name == "join":
		pieces = argument(0, "iterable")
		if isinstance(pieces, _SIZED):
			total = len(text) * max(len(pieces) - 1, 0)
			check_length(total + sum(len(piece) for piece in pieces if isinstance(piece, _TEXT)))
	elif name == "translate":
		table = argument(0, "table")
		if isinstance(table, Mapping):
			longest = max((len(v) for v in table.values() if isinstance(v, _TEXT)), default=1)
			check_length(len(text) * max(longest, 1))
	elif name in ("format", "format_map") and isinstance(text, str):
		if name == "format_map":
			mapping = argument(0, "mapping")
			check_format_method(text, (), dict(mapping) if isinstance(mapping, Mapping) else {})
		else:
			check_format_method(text, args, kwargs)
