"""What a simulation found, as counts: per rule its outcomes, branches, actions and reasons for
skipping; per score rule its grades; per escalation policy its outcomes. Its size depends on the
pack, never on the number of records. Also the text the command prints: records explained in full,
then the summary."""


class RuleTally:
	__slots__ = ("actions", "branches", "doctype", "outcomes", "reasons", "rule", "trigger")

	def __init__(self, rule, doctype, trigger=None):
		self.rule = rule
		self.doctype = doctype
		self.trigger = trigger
		self.outcomes = {}
		self.branches = {}
		self.actions = {}
		self.reasons = {}

	def as_dict(self):
		shown = {"rule": self.rule, "doctype": self.doctype}
		if self.trigger:
			shown["trigger"] = self.trigger
		shown["outcomes"] = self.outcomes
		for key in ("branches", "actions", "reasons"):
			if getattr(self, key):
				shown[key] = getattr(self, key)
		return shown


def _add(counts, key, amount=1):
	counts[key] = counts.get(key, 0) + amount


class Summary:
	def __init__(self):
		self.records = 0
		self.by_doctype = {}
		self.rule_counts = {}
		self._compiled_rules = {}
		self.scores = {}
		self.score_totals = {}
		self.policies = {}
		self.sequences = None  # a SequencePlayer when simulating with --until

	def count_record(self, doctype):
		self.records += 1
		_add(self.by_doctype, doctype)

	def know_rule(self, rule):
		self._compiled_rules[rule.name] = rule

	def count_rule(self, rule, evaluation):
		# One counter per (rule, outcome, branch, reason): a rule's actions follow from its branch,
		# so they are worked out once in ``rules`` instead of counted per firing.
		if evaluation is None:
			key = (rule.name, None, None, None)
		else:
			key = (rule.name, evaluation.outcome, evaluation.branch, evaluation.reason)
		self.rule_counts[key] = self.rule_counts.get(key, 0) + 1
		self._compiled_rules.setdefault(rule.name, rule)

	@property
	def rules(self):
		"""Per rule: outcomes, branches, action types and reasons for skipping, as counts."""
		tallies = {}
		for (name, outcome, branch, reason), count in self.rule_counts.items():
			rule = self._compiled_rules[name]
			tally = tallies.get(name)
			if tally is None:
				tally = tallies[name] = RuleTally(name, rule.document_type, rule.trigger)
			_add(tally.outcomes, outcome or "Not Simulated", count)
			if outcome in ("Fired", "Rejected"):
				if branch:
					_add(tally.branches, branch, count)
				actions = list(rule.actions_by_branch.get("", ()))
				if branch is not None:
					actions.extend(rule.actions_by_branch.get(branch, ()))
				for intent in actions:
					_add(tally.actions, intent["type"], count)
			elif reason:
				_add(tally.reasons, reason, count)
		return tallies

	@property
	def firings(self):
		return sum(count for key, count in self.rule_counts.items() if key[1] in ("Fired", "Rejected"))

	def count_score(self, rule, result):
		tally = self.scores.get(rule.name)
		if tally is None:
			tally = self.scores[rule.name] = RuleTally(rule.name, rule.document_type)
			self.score_totals[rule.name] = [0.0, None, None]
		_add(tally.outcomes, result.grade or "-")
		totals = self.score_totals[rule.name]
		totals[0] += result.score
		totals[1] = result.score if totals[1] is None else min(totals[1], result.score)
		totals[2] = result.score if totals[2] is None else max(totals[2], result.score)

	def count_policy(self, policy, outcome):
		tally = self.policies.get(policy.name)
		if tally is None:
			tally = self.policies[policy.name] = RuleTally(policy.name, policy.document_type)
		_add(tally.outcomes, outcome)

	def as_dict(self):
		scores = []
		for name, tally in self.scores.items():
			total, low, high = self.score_totals[name]
			count = sum(tally.outcomes.values())
			scores.append(
				{
					"rule": name,
					"doctype": tally.doctype,
					"grades": tally.outcomes,
					"mean": round(total / count, 2),
					"min": low,
					"max": high,
				}
			)
		return {
			"records": self.records,
			"by_doctype": self.by_doctype,
			"firings": self.firings,
			"rules": [tally.as_dict() for tally in self.rules.values()],
			"scores": scores,
			"escalations": [
				{"policy": t.rule, "doctype": t.doctype, "outcomes": t.outcomes}
				for t in self.policies.values()
			],
			**({"sequences": self.sequences.as_dict()} if self.sequences is not None else {}),
		}

	def format_lines(self):
		data = self.as_dict()
		doctypes = ", ".join(f"{doctype} {count:,}" for doctype, count in data["by_doctype"].items())
		lines = [f"Summary of {self.records:,} records ({doctypes or 'none'}):"]
		for rule in data["rules"]:
			lines.append(f"  {rule['rule']} ({rule['trigger']}): {_counts(rule['outcomes'])}")
			for key in ("branches", "actions", "reasons"):
				if rule.get(key):
					lines.append(f"      {key}: {_counts(rule[key])}")
		for score in data["scores"]:
			lines.append(
				f"  score {score['rule']}: {_counts(score['grades'])}; mean {score['mean']:g}, from {score['min']:g} to {score['max']:g}"
			)
		for policy in data["escalations"]:
			lines.append(f"  escalation {policy['policy']}: {_counts(policy['outcomes'])}")
		return lines


def _counts(counts):
	return ", ".join(
		f"{key} {value:,}" for key, value in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
	)


def outcome_line(result, subject):
	"""One outcome as the simulator and the dry run both word it: outcome, what it is of (a rule, a
	policy, a document), then its branch, when it fires and why, each only when there is one."""
	line = f"  {result['outcome']:<13} {subject}"
	if result.get("branch"):
		line += f" branch {result['branch']}"
	if result.get("fires_at"):
		line += f" at {result['fires_at']}"
	if result.get("reason"):
		line += f": {result['reason']}"
	return line


def format_entry(entry):
	"""One record's explanation as text lines."""
	lines = [f"{entry['doctype']} {entry['name']}  ({entry['record']})"]
	for score in entry["scores"]:
		lines.append(
			f"  score {score['score']:g} → {score['grade'] or '-'}  [{score['rule']}: {score['explained']}]"
		)
	for rule in entry["rules"]:
		lines.append(outcome_line(rule, f"{rule['rule']} ({rule['trigger']})"))
		for action in rule.get("actions") or []:
			details = ", ".join(f"{k}={v}" for k, v in action.items() if k not in ("type", "branch"))
			lines.append(f"      → {action['type']}: {details}")
		for line in rule.get("follow_up") or []:
			lines.append(f"      then {line}")
	for escalation in entry["escalations"]:
		lines.append(outcome_line(escalation, escalation["policy"]))
		for step in escalation.get("schedule") or []:
			lines.append(
				f"      {step['at']}  {step['what']}"
				+ (f" ({', '.join(step['actions'])})" if step.get("actions") else "")
			)
	return lines


def format_text(result):
	"""The records shown in full, then the summary of all of them."""
	lines = []
	for entry in result.sample:
		lines.extend(format_entry(entry))
	summary = result.summary
	if summary.records > len(result.sample):
		if result.sample:
			lines.append(
				f"\n(the first {len(result.sample):,} of {summary.records:,} records in full; --show N for more, --details FILE for all)"
			)
		lines.append("")
		lines.extend(summary.format_lines())
	if summary.sequences is not None and summary.sequences.tallies:
		lines.append("")
		lines.extend(summary.sequences.format_lines())
	lines.append(f"\n{summary.records} records, {summary.firings} rule firings")
	return "\n".join(lines)
