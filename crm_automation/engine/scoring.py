"""Lead Score Rules: explainable points → score, grade and priority, with decay.

A compiled rule scores one document from its field values, the counts of its recent activities and
the days since its last activity. Every point is explained: the breakdown lists each criterion that
counted with its points, the activity totals (and where a cap cut them) and the decay.
"""

import math

from .conditions import compile_condition, with_standard_fields
from .errors import ProblemCollector, RuleError
from .fieldtypes import describe_value
from .i18n import _

ACTIVITY_SOURCES = ("Communication", "ToDo", "Event", "Opportunity", "Comment", "CRM Activity")
DECAY_NONE = "None"
DECAY_HALF_LIFE = "Half-life"
DECAY_PER_WEEK = "Points per Week"
DECAY_MODES = (DECAY_NONE, DECAY_HALF_LIFE, DECAY_PER_WEEK)


def _number(value, path, what, problems, minimum=None):
	if isinstance(value, bool) or value in (None, ""):
		problems.add(path, _("{0} must be a number, not {1}").format(what, describe_value(value)), value=value)
		return None
	try:
		number = float(value)
	except (TypeError, ValueError):
		problems.add(path, _("{0} must be a number, not {1}").format(what, describe_value(value)), value=value)
		return None
	if math.isnan(number) or math.isinf(number):
		problems.add(path, _("{0} must be a finite number, not {1}").format(what, describe_value(value)), value=value)
		return None
	if minimum is not None and number < minimum:
		problems.add(
			path,
			_("{0} must be at least {1}, not {2}").format(what, format(minimum, "g"), describe_value(value)),
			value=value,
		)
		return None
	return number


class Criterion:
	__slots__ = ("condition", "label", "points")


class ActivityCriterion:
	__slots__ = ("activity_type", "cap", "days", "key", "label", "points", "source")


class Band:
	__slots__ = ("grade", "min_score", "priority", "set_field", "set_value")

	def as_dict(self):
		return {slot: getattr(self, slot) for slot in self.__slots__}


class ScoreResult:
	__slots__ = ("band", "base", "breakdown", "decay", "grade", "priority", "score")

	def as_dict(self):
		return {
			"score": self.score,
			"grade": self.grade,
			"priority": self.priority,
			"base": self.base,
			"decay": self.decay,
			"breakdown": self.breakdown,
		}

	def explain(self):
		"""'+3 inquiry, +2 product page view, -1 decay' for timeline comments."""
		parts = [f"{entry['points']:+g} {entry['label']}" for entry in self.breakdown if entry["points"]]
		return _(", ").join(parts) or _("no points")


class CompiledScoreRule:
	def __init__(self, source):
		self.source = source
		self.name = source.get("name")
		self.document_type = source.get("document_type")
		self.criteria = []
		self.activities = []
		self.bands = []
		self.decay_mode = DECAY_NONE
		self.half_life_days = 0.0
		self.points_per_week = 0.0

	@property
	def fields(self):
		names = set()
		for criterion in self.criteria:
			names |= criterion.condition.fields
		return names

	def band_for(self, score):
		chosen = None
		for band in self.bands:
			if score >= band.min_score:
				chosen = band
		return chosen

	def score(self, doc, activity_counts=None, days_idle=0.0):
		"""Score one document. ``activity_counts`` maps each activity criterion's key to the number
		of matching records in its window; ``days_idle`` is the days since the last activity."""
		activity_counts = activity_counts or {}
		breakdown = []
		total = 0.0
		for criterion in self.criteria:
			if criterion.condition.matches(doc, None):
				breakdown.append({"label": criterion.label, "points": criterion.points, "kind": "criterion"})
				total += criterion.points
		for activity in self.activities:
			count = int(activity_counts.get(activity.key) or 0)
			if not count:
				continue
			raw = count * activity.points
			points = raw
			capped = False
			if activity.cap is not None and abs(raw) > activity.cap:
				points = math.copysign(activity.cap, raw)
				capped = True
			entry = {"label": activity.label, "points": points, "kind": "activity", "count": count}
			if capped:
				entry["capped_from"] = raw
			breakdown.append(entry)
			total += points
		base = total
		decay = self.decay_for(base, days_idle)
		if decay:
			label = _("decay ({0} days without activity)").format(f"{days_idle:g}")
			breakdown.append({"label": label, "points": -round(decay, 2), "kind": "decay"})
		result = ScoreResult()
		result.base = round(base, 2)
		result.decay = round(decay, 2)
		result.score = round(base - decay, 2)
		result.breakdown = breakdown
		result.band = self.band_for(result.score)
		result.grade = result.band.grade if result.band else None
		result.priority = result.band.priority if result.band else None
		return result

	def decay_for(self, base, days_idle):
		"""Points lost to inactivity: only positive scores decay, and never below zero."""
		if base <= 0 or not days_idle or days_idle <= 0 or self.decay_mode == DECAY_NONE:
			return 0.0
		if self.decay_mode == DECAY_HALF_LIFE:
			remaining = base * 0.5 ** (days_idle / self.half_life_days)
			return base - remaining
		return min(base, self.points_per_week * days_idle / 7.0)


def compile_score_rule(rule, fields):
	"""Compile a Lead Score Rule (plain dict) against the scored doctype's fields; RuleError lists
	every problem with its path."""
	fields = with_standard_fields(fields)
	problems = ProblemCollector()
	compiled = CompiledScoreRule(rule)
	_compile_criteria(compiled, rule, fields, problems)
	_compile_activities(compiled, rule, problems)
	_compile_decay(compiled, rule, problems)
	_compile_bands(compiled, rule, fields, problems)
	if not compiled.criteria and not compiled.activities and not problems:
		problems.add("criteria", _("the rule has no criteria and no activity criteria"))
	problems.raise_if_any()
	return compiled


def _compile_criteria(compiled, rule, fields, problems):
	for i, row in enumerate(rule.get("criteria") or []):
		path = f"criteria[{i}]"
		criterion = Criterion()
		criterion.label = (row.get("label") or "").strip() or f"criterion {i + 1}"
		criterion.points = _number(row.get("points"), f"{path}.points", _("points"), problems)
		try:
			criterion.condition = compile_condition(row.get("conditions"), fields, f"{path}.conditions")
		except RuleError as error:
			problems.extend(error)
			continue
		if criterion.points is not None:
			compiled.criteria.append(criterion)


def _compile_activities(compiled, rule, problems):
	known_types = rule.get("known_activity_types")
	for i, row in enumerate(rule.get("activity_criteria") or []):
		path = f"activity_criteria[{i}]"
		activity = ActivityCriterion()
		activity.source = row.get("activity_source")
		activity.activity_type = (row.get("activity_type") or "").strip() or None
		if activity.source not in ACTIVITY_SOURCES:
			problems.add(
				f"{path}.activity_source",
				_("unknown activity {0} (use one of: {1})").format(describe_value(activity.source), ', '.join(ACTIVITY_SOURCES)),
				value=activity.source,
			)
			continue
		if activity.activity_type and activity.source != "CRM Activity":
			problems.add(f"{path}.activity_type", _("an activity type only applies to CRM Activity"))
		if activity.source == "CRM Activity" and known_types is not None:
			if activity.activity_type and activity.activity_type not in known_types:
				problems.add(
					f"{path}.activity_type",
					_("unknown activity type {0}").format(describe_value(activity.activity_type)),
					value=activity.activity_type,
				)
		activity.days = _number(row.get("days"), f"{path}.days", _("days"), problems, minimum=1)
		activity.points = _number(row.get("points"), f"{path}.points", _("points"), problems)
		cap = row.get("cap")
		activity.cap = None if cap in (None, "", 0) else _number(cap, f"{path}.cap", _("cap"), problems, minimum=0)
		if None in (activity.days, activity.points):
			continue
		activity.days = int(activity.days)
		activity.label = (row.get("label") or "").strip() or (activity.activity_type or activity.source).lower()
		activity.key = f"{activity.source}|{activity.activity_type or ''}|{activity.days}"
		compiled.activities.append(activity)


def _compile_decay(compiled, rule, problems):
	mode = rule.get("decay_mode") or DECAY_NONE
	if mode not in DECAY_MODES:
		problems.add("decay_mode", _("unknown decay {0} (use one of: {1})").format(describe_value(mode), ', '.join(DECAY_MODES)))
		return
	compiled.decay_mode = mode
	if mode == DECAY_HALF_LIFE:
		half_life = _number(rule.get("half_life_days"), "half_life_days", _("the half-life in days"), problems)
		if half_life is not None and half_life <= 0:
			problems.add(
				"half_life_days",
				_("the half-life must be more than 0 days, not {0}").format(format(half_life, "g")),
			)
		compiled.half_life_days = half_life or 1.0
	elif mode == DECAY_PER_WEEK:
		per_week = _number(rule.get("points_per_week"), "points_per_week", _("points lost per week"), problems, minimum=0)
		compiled.points_per_week = per_week or 0.0


def _compile_bands(compiled, rule, fields, problems):
	previous = None
	grades = set()
	for i, row in enumerate(rule.get("bands") or []):
		path = f"bands[{i}]"
		band = Band()
		band.min_score = _number(row.get("min_score"), f"{path}.min_score", _("the minimum score"), problems)
		band.grade = (row.get("grade") or "").strip()
		band.priority = row.get("priority") or None
		band.set_field = row.get("set_field") or None
		band.set_value = row.get("set_value")
		if not band.grade:
			problems.add(f"{path}.grade", _("every band needs a grade label"))
		elif band.grade in grades:
			problems.add(f"{path}.grade", _("grade {0} is used by two bands").format(describe_value(band.grade)), value=band.grade)
		grades.add(band.grade)
		if band.set_field and band.set_field not in fields:
			problems.add(f"{path}.set_field", _("{0} is not a field of the document").format(describe_value(band.set_field)), band.set_field)
		if band.min_score is None:
			continue
		if previous is not None and band.min_score <= previous.min_score:
			problems.add(
				f"{path}.min_score",
				_("bands must go up: {0} ({1}) is not above {2} ({3})").format(
					format(band.min_score, "g"), band.grade, format(previous.min_score, "g"), previous.grade
				),
				value=band.min_score,
			)
			continue
		previous = band
		compiled.bands.append(band)
