"""Schedule rules in the offline simulator, on a virtual clock.

Without ``--until`` a Schedule rule is decided once, at its next moment after ``--now``. With it, the
rule runs at every moment of its schedule in (now, now + until], each time over the record as it
stands then: the record's ``changes`` ([{"after": "30h", "values": {...}}]) that happened by that
moment are applied first, so a lead that turns Open on day 2 is picked up by the first run after.
Each run is counted, so the summary's numbers are runs (one per record and moment), not records.
"""

import itertools

from crm_automation.engine.budget import run_budget
from crm_automation.engine.sequence_story import parse_span
from crm_automation.engine.workflow import TRIGGER_SCHEDULE

# An every-minute schedule over two weeks is 20,160 moments a record: the first ones tell the story.
MAX_MOMENTS = 500


def is_scheduled(rule):
	return rule.trigger == TRIGGER_SCHEDULE and getattr(rule, "schedule", None) is not None


class ScheduleClock:
	"""The moments of each Schedule rule between ``now`` and ``now + until`` (or its next one)."""

	def __init__(self, now, until=None):
		self.now = now
		self.until = until
		self._moments = {}

	def moments(self, rule):
		known = self._moments.get(rule.name)
		if known is None:
			schedule = rule.schedule
			if self.until is None:
				first = schedule.next_moment(self.now)
				known = [first] if first else []
			else:
				found = schedule.moments_between(self.now, self.now + self.until)
				known = list(itertools.islice(found, MAX_MOMENTS))
			self._moments[rule.name] = known
		return known

	def runs(self, rule, values, changes=(), explain=False):
		"""(moment, Evaluation) for each of the rule's moments, on the record as it stands then."""
		timed = sorted(
			((parse_span(change["after"]), change["values"]) for change in changes or ()), key=_first
		)
		for moment in self.moments(rule):
			current = values
			for after, changed in timed:
				if self.now + after > moment:
					break
				current = {**current, **changed}
			yield moment, rule.evaluate(current, None, explain=explain)

	def count(self, rule, values, changes, counts):
		"""The hot path: one counter per (rule, outcome, branch, reason), once per run."""
		for _moment, evaluation in self.runs(rule, values, changes):
			key = (rule.name, evaluation.outcome, evaluation.branch, evaluation.reason)
			counts[key] = counts.get(key, 0) + 1

	def explain(self, rule, values, changes, summary, describe):
		"""The rule's outcome at its first moment, in full (``describe(evaluation)``), and every run's
		outcome as a line: "2027-03-01 09:00 Fired"."""
		outcome, lines = None, []
		for moment, evaluation in self.runs(rule, values, changes, explain=True):
			summary.count_rule(rule, evaluation)
			if outcome is None:
				with run_budget():  # its templates share one run's budget, as on a site
					outcome = describe(evaluation)
				outcome["runs_at"] = moment.isoformat(sep=" ")
			lines.append(f"{moment:%Y-%m-%d %H:%M} {evaluation.outcome}")
		if outcome is None:
			outcome = {"rule": rule.name, "trigger": rule.trigger, "outcome": "Not Simulated"}
			outcome["reason"] = "no scheduled moment in the simulated span"
		outcome["schedule_runs"] = lines
		return outcome


def _first(pair):
	return pair[0]
