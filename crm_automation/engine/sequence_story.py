"""A sequence as a story: the timeline in words ("now: ...; +24 h if ...: ...") and records played
through it on a virtual clock (what the offline simulator runs, and what the site must agree with).
Pure Python, no Frappe."""

import datetime

from .describe import describe_action, describe_condition
from .i18n import _
from .sequences import (
	EXITED,
	PENDING,
	RAN,
	SKIPPED,
	WAIT_BUSINESS_TIME,
	WAIT_CONDITION,
	WAIT_DATE_FIELD,
	WAIT_DURATION,
	WAIT_REPLY,
)

# A reply (an incoming e-mail linked to the record) among a record's timed events; see run_sequence.
REPLY = object()


def timeline(rule_actions, sequence, fields=None, doc=None, start=None):
	"""The story a record follows, as entries ``{"when", "at", "wait", "only_if", "actions",
	"on_timeout"}``: first the immediate actions ("now"), then each step. With ``doc`` and
	``start`` each entry also has its due moment (``at``, None when it would be passed over)."""
	entries = [
		{
			"when": _("now"),
			"at": start,
			"wait": "",
			"only_if": "",
			"actions": [_describe(a, fields) for a in rule_actions],
			"on_timeout": [],
		}
	]
	offset = datetime.timedelta(0)
	fixed = True
	anchor = start
	for step in sequence.steps if sequence else ():
		if step.wait_type == WAIT_DURATION and fixed:
			offset += step.duration
			when = "+" + format_duration(offset)
		elif step.wait_type in (WAIT_CONDITION, WAIT_REPLY):
			# Met early, it moves every later step forward: later offsets would promise too much.
			limit = (
				"+" + format_duration(offset + step.duration)
				if fixed
				else _("{0} later").format(format_duration(step.duration))
			)
			if step.wait_type == WAIT_REPLY:
				when = _("on a reply (at the latest {0})").format(limit)
			else:
				condition = describe_condition(step.until_tree, fields)
				when = _("when {0} (at the latest {1})").format(condition, limit)
			fixed = False
		else:
			fixed = False
			when = step.describe_span(fields)
			if step.wait_type in (WAIT_DURATION, WAIT_BUSINESS_TIME):
				when = _("{0} later").format(when)
		entry = {
			"when": when,
			"step": step.label,
			"wait": step.describe_wait(fields),
			"only_if": describe_condition(step.check_tree, fields) if step.check_tree else "",
			"actions": [_describe_intent(i, fields) for i in step.intents],
			"on_timeout": [_describe_intent(i, fields) for i in step.timeout_intents],
			"at": None,
		}
		if doc is not None and anchor is not None:
			due = step.due_at(anchor, doc)
			if due is not None and not (step.wait_type == WAIT_DATE_FIELD and due < anchor):
				entry["at"] = due
				anchor = due
		entries.append(entry)
	return entries


def timeline_text(entries):
	"""``now: send an email; +24 h if Status is Open: create a ToDo; +48 h: notify: ...``"""
	parts = []
	for entry in entries:
		if entry["when"] == _("now") and not entry["actions"]:
			continue
		text = entry["when"]
		if entry.get("at"):
			text = _("{0} ({1})").format(text, entry["at"].strftime("%Y-%m-%d %H:%M"))
		if entry["only_if"]:
			text = _("{0} if {1}").format(text, entry["only_if"])
		text = _("{0}: {1}").format(text, _(", ").join(entry["actions"]) or _("nothing"))
		if entry["on_timeout"]:
			text = _("{0}; on timeout: {1}").format(text, _(", ").join(entry["on_timeout"]))
		parts.append(text)
	return _("; ").join(parts)


def _describe(action, fields):
	return describe_action(action, fields)


def _describe_intent(intent, fields):
	return describe_action({**intent, "action_type": intent["type"]}, fields)


def format_duration(delta):
	"""``24 h``, ``48 h``, ``7 d``, ``90 min``: days only from three days on, as people say them."""
	seconds = int(delta.total_seconds())
	if seconds and seconds % 86400 == 0 and seconds >= 3 * 86400:
		return _("{0} d").format(seconds // 86400)
	if seconds % 3600 == 0:
		return _("{0} h").format(seconds // 3600)
	if seconds % 60 == 0:
		return _("{0} min").format(seconds // 60)
	return _("{0} s").format(seconds)


class SequenceRun:
	"""One record's way through a sequence on a virtual clock: ``events`` are ``(moment, step
	index, status, detail)`` in order; ``status`` is PENDING (waiting at ``pending_step`` when the
	clock stopped), EXITED or RAN (every step done)."""

	__slots__ = ("events", "exited_at_step", "pending_due", "pending_step", "status")

	def __init__(self):
		self.events = []
		self.status = RAN
		self.pending_step = None
		self.pending_due = None
		self.exited_at_step = None


def run_sequence(sequence, doc, start, until, changes=()):
	"""Play one record through ``sequence`` from ``start`` to ``until`` on a virtual clock, as the
	site would: ``changes`` are saves ``(moment, {field: value})`` applied in time order; each save
	may end the sequence (stop conditions) or satisfy an Until Condition wait. A change whose values
	are ``REPLY`` is a reply: it ends the sequence when it stops on a reply, or an Until Reply wait.
	Returns a SequenceRun. The record dict is not modified."""
	run = SequenceRun()
	doc = dict(doc)
	pending_changes = sorted(changes, key=lambda change: change[0])
	step, due, passed = sequence.schedule(1, start, doc)
	anchor = start
	_record_passed(run, anchor, passed)
	met = False
	while step is not None:
		while pending_changes and pending_changes[0][0] < due and pending_changes[0][0] <= until:
			moment, values = pending_changes.pop(0)
			if values is REPLY:
				reason = sequence.reply_exit_reason()
				if reason:
					run.events.append((moment, step.index, EXITED, reason))
					run.status, run.exited_at_step = EXITED, step.index
					return run
				if step.wait_type == WAIT_REPLY and not met:
					met, due = True, max(moment, anchor)
				continue
			before = dict(doc)
			doc.update(values)
			reason = sequence.exit_reason(doc, before)
			if reason:
				run.events.append((moment, step.index, EXITED, reason))
				run.status, run.exited_at_step = EXITED, step.index
				return run
			if step.wait_type == WAIT_CONDITION and not met and step.condition_met(doc, before):
				met, due = True, max(moment, anchor)
		if due > until:
			run.status, run.pending_step, run.pending_due = PENDING, step.index, due
			return run
		outcome, detail, _intents = step.decide(doc, condition_met=met)
		run.events.append((due, step.index, outcome, detail))
		anchor, met = due, False
		step, due, passed = sequence.schedule(step.index + 1, anchor, doc)
		_record_passed(run, anchor, passed)
	return run


def _record_passed(run, moment, passed):
	for step, reason in passed:
		run.events.append((moment, step.index, SKIPPED, reason))


class StepTally:
	"""Per step of one sequence: how many records reached it (were waiting for it at some point),
	ran its actions, were skipped at it (Only If false, or a date already past), exited while waiting
	for it, or still wait for it. The same columns as the efficacy report's drop-off; counts only,
	so a million records cost no memory."""

	COLUMNS = ("reached", "ran", "skipped", "exited", "waiting")

	def __init__(self, sequence):
		self.rows = [
			{"step": step.index, "step_name": step.label, **dict.fromkeys(self.COLUMNS, 0)}
			for step in sequence.steps
		]

	def add(self, run):
		rows = self.rows
		for _moment, index, status, _detail in run.events:
			row = rows[index - 1]
			row["reached"] += 1
			if status == RAN:
				row["ran"] += 1
			elif status == SKIPPED:
				row["skipped"] += 1
			elif status == EXITED:
				row["exited"] += 1
		if run.status == PENDING:
			rows[run.pending_step - 1]["reached"] += 1
			rows[run.pending_step - 1]["waiting"] += 1

	def lines(self):
		return [
			f"{row['step']}. {row['step_name']}: "
			+ ", ".join(f"{column} {row[column]}" for column in self.COLUMNS)
			for row in self.rows
		]


def summarize_runs(sequence, runs):
	"""The StepTally rows of ``runs``."""
	tally = StepTally(sequence)
	for run in runs:
		tally.add(run)
	return tally.rows


def changes_from(items, start):
	"""A record's saves on the virtual clock, ``[{"after": "30h", "values": {...}}, ...]``, as
	``(moment, values)`` pairs; raises ValueError naming the entry that is not one."""
	changes = []
	for i, item in enumerate(items or ()):
		if not isinstance(item, dict) or not isinstance(item.get("values"), dict):
			raise ValueError(_("changes[{0}] must be an object with after and values").format(i))
		try:
			changes.append((start + parse_span(item.get("after")), item["values"]))
		except ValueError as error:
			raise ValueError(f"changes[{i}].after: {error}") from None
	return changes


def parse_span(text):
	"""``"14d"``, ``"36h"``, ``"90m"`` or ``"2w"`` as a timedelta; raises ValueError naming the text."""
	units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
	cleaned = (text or "").strip().lower()
	if len(cleaned) >= 2 and cleaned[-1] in units and cleaned[:-1].isdigit():
		return datetime.timedelta(**{units[cleaned[-1]]: int(cleaned[:-1])})
	raise ValueError(_("{0} is not a span such as 90m, 36h, 14d or 2w").format(repr(text)))


class SequencePlayer:
	"""The offline simulator's part: every record a rule with follow-up steps fires on is played
	from ``start`` to ``until`` on the virtual clock, and each rule keeps a StepTally."""

	def __init__(self, start, until):
		self.start = start
		self.until = until
		self.tallies = {}

	def play(self, rule, values, changes=(), replies=()):
		"""Play one record; ``changes`` as a record carries them ([{"after", "values"}, ...]),
		``replies`` the e-mails that come back to it ([{"after", ...}, ...], offline/replies.py)."""
		tally = self.tallies.get(rule.name)
		if tally is None:
			tally = self.tallies[rule.name] = StepTally(rule.sequence)
		timed = changes_from(changes, self.start)
		timed += [(self.start + parse_span(reply["after"]), REPLY) for reply in replies or ()]
		run = run_sequence(rule.sequence, values, self.start, self.until, timed)
		tally.add(run)
		return run

	def as_dict(self):
		return {name: tally.rows for name, tally in self.tallies.items()}

	def format_lines(self):
		span = format_duration(self.until - self.start)
		lines = []
		for name, tally in self.tallies.items():
			until = self.until.strftime("%Y-%m-%d %H:%M")
			lines.append(_("{0}: follow-up steps over {1} (until {2})").format(name, span, until))
			lines.extend(f"    {line}" for line in tally.lines())
		return lines
