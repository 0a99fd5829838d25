"""Find repeated manual work in a document history and propose the rules that would do it.

The input is a stream of history events (plain dicts, see ``EVENT_TYPES`` and docs/opportunities.md's
"history file" section). Events of one document come together, in time order, the ``record``
event (the document as it was created) first. The miner digests one document at a time, adds
what it saw to counters keyed by candidate pattern and forgets the document: memory follows the
number of patterns, never the length of the history.

Two families of patterns:

* **from fields**: "Leads with territory North (when created) were assigned by hand to Zhou":
  the condition is a field value of the new document, the action an assignment or a field set by
  hand at any later time. Confidence = documents where both happened / documents where the
  condition held. Proposed as a rule on **New**.
* **after a transition** (the document was created, or its status changed to a value): an
  assignment, a field set, an e-mail sent within ``window_hours``, or a ToDo / comment written N
  days later (before the next transition). Confidence = documents where the action followed /
  documents that made the transition (for N days: that stayed N days). Proposed as a **Value
  Change**, **New** or **Time** rule.

Each document counts once per pattern. Automation's own actions and data imports are not manual
work: events flagged ``automated`` or ``imported`` and ToDos the app wrote are skipped (and
counted in ``excluded``).
"""

import datetime
from collections import Counter

from . import mining_rules
from .mining_events import (
	ACTION_OF_EVENT,
	ADD_COMMENT,
	ASSIGN,
	AUTOMATION_TODO_PREFIX,
	CREATE_TODO,
	CREATED,
	EVENT_TYPES,
	IGNORED_FIELDS,
	SEND_EMAIL,
	SET_VALUE,
	TRANSITION_FIELDS,
	Action,
	DocumentDigest,
	HistoryError,
	is_automated,
	iter_documents,
	mark_todos_for_assignees,
	parse_when,
	plain_text,
	scalar,
	segment_of,
	text_key,
)

__all__ = [
	"ACTION_OF_EVENT",
	"ADD_COMMENT",
	"ASSIGN",
	"AUTOMATION_TODO_PREFIX",
	"CREATED",
	"CREATE_TODO",
	"DEFAULT_MINUTES",
	"EVENT_TYPES",
	"IGNORED_FIELDS",
	"SEND_EMAIL",
	"SET_VALUE",
	"TRANSITION_FIELDS",
	"Action",
	"DocumentDigest",
	"HistoryError",
	"HistoryMiner",
	"is_automated",
	"iter_documents",
	"mine",
	"parse_when",
	"plain_text",
	"segment_of",
	"text_key",
]

DEFAULT_MIN_SUPPORT = 20
DEFAULT_MIN_CONFIDENCE = 0.8
DEFAULT_WINDOW_HOURS = 24
# A follow-up later than this after its transition is not "N days after" anything.
MAX_FOLLOW_UP_DAYS = 30
# A field with more distinct values than this is an identifier, not a category to decide on.
MAX_DISTINCT_VALUES = 100
# Distinct e-mail subjects / ToDo texts tracked; beyond it new texts are counted as untracked
# (memory stays bounded on a history full of one-off texts).
MAX_TEXT_KEYS = 20000
# Minutes of manual work per action: the defaults of CRM Automation Settings.
DEFAULT_MINUTES = {"Assign": 2, "Set Value": 1, "Send Email": 4, "Create ToDo": 2, "Add Comment": 1}
# A round robin proposed from hand assignments: two people, each with at least this share. Three of
# four people cover 80% of anything by chance; two of them do not.
MAX_TEAM = 2
MIN_TEAM_SHARE = 0.3


class HistoryMiner:
	"""Counters of candidate patterns, fed one document at a time."""

	def __init__(
		self,
		min_support=DEFAULT_MIN_SUPPORT,
		min_confidence=DEFAULT_MIN_CONFIDENCE,
		minutes=None,
		window_hours=DEFAULT_WINDOW_HOURS,
		since=None,
		until=None,
		transition_fields=TRANSITION_FIELDS,
	):
		self.min_support = int(min_support)
		self.min_confidence = float(min_confidence)
		self.minutes = {**DEFAULT_MINUTES, **(minutes or {})}
		self.window = datetime.timedelta(hours=window_hours)
		self.since = parse_when(since, "since") if since else None
		self.until = parse_when(until, "until") if until else None
		self.transition_fields = tuple(transition_fields)
		self.documents = Counter()  # doctype → documents
		self.created = Counter()  # doctype → documents created in the history
		self.held = Counter()  # (doctype, condition) → new documents where it held
		self.filled = Counter()  # (doctype, field) → new documents where it was set
		self.reached = Counter()  # (doctype, transition) → documents that made it
		# (doctype, transition, days) → documents whose longest stay after it was that many days
		self.dwell = Counter()
		# pattern → [documents, seconds from condition to action summed, {who: documents}]: one
		# lookup per document and pattern, the miner's innermost step
		self.stats = {}
		self.samples = {}  # pattern → the first example of its text
		self.values = {}  # (doctype, field) → distinct values seen, None once too many
		self.excluded = Counter()
		self.untracked_texts = 0
		self.text_keys = set()
		self.first_seen = None
		self.last_seen = None

	def feed(self, events):
		for digest in iter_documents(events, self.transition_fields, self.excluded):
			self.add_document(digest)
		return self

	def add_document(self, digest):
		doctype = digest.doctype
		self.documents[doctype] += 1
		digest.actions.sort(key=lambda action: action.when)
		mark_todos_for_assignees(digest)
		self._see_times(digest)
		conditions = self._conditions(digest) if digest.initial is not None else None
		if conditions is not None:
			self.created[doctype] += 1
			for condition in conditions:
				self.held[(doctype, condition)] += 1
				if condition and condition[1] not in ("", 0):
					self.filled[(doctype, condition[0])] += 1
			self._from_fields(digest, conditions)
		self._after_transitions(digest)

	def _see_times(self, digest):
		moments = [
			moment
			for moment in (
				digest.created,
				*(t[1] for t in digest.transitions),
				*(a.when for a in digest.actions),
			)
			if moment
		]
		if moments:
			low, high = min(moments), max(moments)
			self.first_seen = low if self.first_seen is None else min(self.first_seen, low)
			self.last_seen = high if self.last_seen is None else max(self.last_seen, high)

	def _conditions(self, digest):
		conditions = [None]
		for field, value in digest.initial.items():
			value = scalar(value)
			if value is None or field in self.transition_fields:
				continue
			seen = self.values.setdefault((digest.doctype, field), set())
			if seen is None:
				continue
			if value not in seen:
				if len(seen) >= MAX_DISTINCT_VALUES:
					self.values[(digest.doctype, field)] = None
					continue
				seen.add(value)
			conditions.append((field, value))
		return conditions

	@property
	def support(self):
		"""pattern → documents (a copy, for reading)."""
		return Counter({pattern: entry[0] for pattern, entry in self.stats.items()})

	def stayed(self, doctype, transition, days):
		"""Documents that stayed at least ``days`` days after ``transition``."""
		return sum(
			count
			for (kind, key, held), count in self.dwell.items()
			if kind == doctype and key == transition and held >= days
		)

	def _bump(self, pattern, who, delay=0.0, sample=None):
		entry = self.stats.get(pattern)
		if entry is None:
			entry = self.stats[pattern] = [0, 0.0, {}]
			if sample is not None:
				self.samples[pattern] = sample
		entry[0] += 1
		entry[1] += delay
		people = entry[2]
		people[who] = people.get(who, 0) + 1

	def _from_fields(self, digest, conditions):
		doctype = digest.doctype
		assignment = digest.first(ASSIGN)
		if assignment:
			delay = (assignment.when - digest.created).total_seconds()
			action = (ASSIGN, assignment.key)
			for condition in conditions:
				self._bump(("from", doctype, condition, action), assignment.who, delay)
			for field, value in digest.initial.items():
				if value == assignment.key and field not in self.transition_fields:
					self._bump(("by_field", doctype, field, (ASSIGN, field)), assignment.who, delay)
		done = set()
		for action in digest.actions:
			if action.kind != SET_VALUE or action.key in done:
				continue
			done.add(action.key)
			field, value = action.key
			if scalar(digest.initial.get(field)) == value:
				continue
			delay = (action.when - digest.created).total_seconds()
			setting = (SET_VALUE, field, value)
			for condition in conditions:
				if condition is None or condition[0] != field:
					self._bump(("from", doctype, condition, setting), action.who, delay)

	def _after_transitions(self, digest):
		doctype = digest.doctype
		segments = list(digest.segments(self.until))
		if not segments:
			return
		longest = {}
		for key, start, end in segments:
			days = min(int((end - start).total_seconds() // 86400), MAX_FOLLOW_UP_DAYS)
			longest[key] = max(longest.get(key, 0), days)
		for key, days in longest.items():
			self.reached[(doctype, key)] += 1
			self.dwell[(doctype, key, days)] += 1
		counted = set()
		for action in digest.actions:
			if self.until and action.when > self.until:
				continue  # after the end of the history: no stay was counted for it
			segment = segment_of(segments, action.when)
			if segment is None:
				continue
			key, start, end = segment
			delay = action.when - start
			pattern = self._after_pattern(doctype, key, action, delay)
			if pattern is None or pattern in counted:
				continue
			counted.add(pattern)
			self._bump(pattern, action.who, delay.total_seconds(), action.sample)

	def _after_pattern(self, doctype, transition, action, delay):
		if action.kind in (CREATE_TODO, ADD_COMMENT):
			days = int(delay.total_seconds() // 86400)
			if days > MAX_FOLLOW_UP_DAYS or not self._track_text(action):
				return None
			return ("after", doctype, transition, (action.kind, action.key, days))
		if delay > self.window or (transition == CREATED and action.kind in (ASSIGN, SET_VALUE)):
			# an assignment or a field set on a new document is a "from fields" pattern
			return None
		if action.kind == SEND_EMAIL and not self._track_text(action):
			return None
		key = action.key if isinstance(action.key, tuple) else (action.key,)
		return ("after", doctype, transition, (action.kind, *key))

	def _track_text(self, action):
		marker = (action.kind, action.key)
		if marker in self.text_keys:
			return True
		if len(self.text_keys) >= MAX_TEXT_KEYS:
			self.untracked_texts += 1
			return False
		self.text_keys.add(marker)
		return True

	def weeks(self):
		start = self.since or self.first_seen
		end = self.until or self.last_seen
		if not start or not end:
			return 1.0
		return max((end - start).total_seconds() / (7 * 86400), 1 / 7)

	def observed(self, pattern):
		"""How many documents the condition of ``pattern`` held for."""
		family, doctype, condition, action = pattern
		if family == "from":
			return self.held[(doctype, condition)]
		if family == "by_field":
			return self.filled[(doctype, condition)]
		if action[0] in (CREATE_TODO, ADD_COMMENT) and action[2] >= 1:
			return self.stayed(doctype, condition, action[2])
		return self.reached[(doctype, condition)]

	def wide_field(self, doctype, field):
		return self.values.get((doctype, field), ()) is None

	def proposals(self):
		"""Patterns that pass the thresholds, the most hours saved first."""
		found = []
		weeks = self.weeks()
		for pattern, (support, _delay, _people) in self.stats.items():
			if support < self.min_support:
				continue
			family, doctype, condition, _action = pattern
			if family == "from" and condition and self.wide_field(doctype, condition[0]):
				continue  # counted only until the field showed itself an identifier
			observed = self.observed(pattern)
			confidence = support / observed if observed else 0
			if confidence < self.min_confidence:
				continue
			found.append(self._proposal(pattern, support, observed, confidence, weeks))
		found.extend(self._team_proposals(weeks))
		found = _without_redundant(found)
		found.sort(key=lambda p: (-p["hours_per_week"], -p["support"], p["id"]))
		return found

	def _team_proposals(self, weeks):
		"""Documents shared out by hand between two people ("territory South: Li or Ben, 96%"),
		where neither alone reaches the confidence: a round robin between them. Each took at least
		``MIN_TEAM_SHARE`` of the documents."""
		by_condition = {}
		for pattern, entry in self.stats.items():
			family, doctype, condition, action = pattern
			if (
				family == "from"
				and action[0] == ASSIGN
				and not (condition and self.wide_field(doctype, condition[0]))
			):
				by_condition.setdefault((doctype, condition), []).append((entry[0], action[1], entry))
		found = []
		for (doctype, condition), members in by_condition.items():
			observed = self.held[(doctype, condition)]
			if (
				not observed
				or max(count for count, _user, _entry in members) / observed >= self.min_confidence
			):
				continue
			members.sort(key=lambda member: (-member[0], member[1]))
			team = [member for member in members[:MAX_TEAM] if member[0] / observed >= MIN_TEAM_SHARE]
			for size in range(2, len(team) + 1):
				support = sum(member[0] for member in team[:size])
				if support >= self.min_support and support / observed >= self.min_confidence:
					users = ", ".join(sorted(member[1] for member in team[:size]))
					pattern = ("from", doctype, condition, (ASSIGN, users))
					people = {}
					for _count, _user, entry in team[:size]:
						for who, count in entry[2].items():
							people[who] = people.get(who, 0) + count
					entry = [support, sum(member[2][1] for member in team[:size]), people]
					found.append(self._proposal(pattern, support, observed, support / observed, weeks, entry))
					break
		return found

	def _proposal(self, pattern, support, observed, confidence, weeks, entry=None):
		family, doctype, condition, action = pattern
		support, delay, by_person = entry or self.stats[pattern]
		people = sorted(by_person.items(), key=lambda item: (-item[1], item[0]))
		minutes = float(self.minutes.get(action[0]) or 0)
		proposal = {
			"id": mining_rules.pattern_id(pattern),
			"family": family,
			"doctype": doctype,
			"action_type": action[0],
			"condition": mining_rules.describe_condition(family, condition),
			"action": mining_rules.describe_action(action, self.samples.get(pattern)),
			"support": support,
			"observed": observed,
			"confidence": round(confidence, 4),
			"people": [{"user": who, "count": count} for who, count in people],
			"mean_delay_hours": round(delay / support / 3600, 2),
			"minutes_per_action": minutes,
			"hours_per_week": round(support * minutes / 60 / weeks, 2),
			"pattern": pattern,
		}
		proposal["summary"] = mining_rules.summary(proposal)
		proposal["rule"] = mining_rules.rule_for(pattern, self.samples.get(pattern), proposal)
		return proposal

	def report(self):
		proposals = self.proposals()
		return {
			"documents": dict(self.documents),
			"excluded": dict(self.excluded),
			"untracked_texts": self.untracked_texts,
			"weeks": round(self.weeks(), 2),
			"min_support": self.min_support,
			"min_confidence": self.min_confidence,
			"proposals": [{k: v for k, v in p.items() if k != "pattern"} for p in proposals],
		}


def _without_redundant(proposals):
	"""A field condition that does not raise the confidence of the same action on every new
	document by 5 points adds nothing: keep the rule without it."""
	unconditional = {
		(p["doctype"], p["pattern"][3]): p["confidence"]
		for p in proposals
		if p["family"] == "from" and p["pattern"][2] is None
	}
	kept = []
	for proposal in proposals:
		family, doctype, condition, action = proposal["pattern"]
		base = unconditional.get((doctype, action))
		if (
			family == "from"
			and condition is not None
			and base is not None
			and proposal["confidence"] < base + 0.05
		):
			continue
		kept.append(proposal)
	return _with_alternatives(kept)


def _with_alternatives(proposals):
	"""Two field conditions with the very same figures for the same action (territory West and
	source Fair, when every Fair lead is in the West) are one pattern: the first condition by
	field name is proposed, the others listed as its ``alternatives``."""
	first = {}
	kept = []
	for proposal in sorted(proposals, key=lambda p: (str(p["pattern"][2]), p["id"])):
		family, doctype, condition, action = proposal["pattern"]
		if family != "from" or condition is None:
			kept.append(proposal)
			continue
		same = (doctype, action, proposal["support"], proposal["observed"])
		if same in first:
			first[same]["alternatives"].append(proposal["condition"])
			continue
		proposal["alternatives"] = []
		first[same] = proposal
		kept.append(proposal)
	return kept


def mine(events, **options):
	"""Run the miner over ``events`` and return its report (a plain dict)."""
	return HistoryMiner(**options).feed(events).report()
