"""The statistics of the Rule Outcome report: does a rule change the outcome? No Frappe import.

Every test and interval comes from statsmodels (scipy underneath); nothing is hand-written:

- A yes/no outcome (converted, won, reached a status, a Check field): the difference of two
  proportions, treated minus held out (or arm minus the first arm), with
  ``confint_proportions_2indep(method="newcomb")`` (Newcombe's hybrid score interval, good with
  small counts and rates near 0 or 1) and the p-value of ``test_proportions_2indep(method="score")``
  (Miettinen-Nurminen score test). The verdict follows the interval.
- A number (Sales Order value, response or resolution time, any number field): the difference of
  two means with Welch's t-test and its interval (``CompareMeans.ttest_ind`` / ``tconfint_diff``,
  ``usevar="unequal"``): no assumption that both groups vary alike.
- "About N more documents": the sample size for 80 % power at the 5 % level for the difference seen
  so far, from ``NormalIndPower`` on ``proportion_effectsize`` (Cohen's h) for proportions and
  ``TTestIndPower`` on Cohen's d for means, with the groups' current ratio.

It refuses to conclude on fewer than MIN_GROUP documents in a group, or, for a yes/no outcome, fewer
than MIN_EVENTS successes or failures in a group: the intervals are not to be trusted there.
"""

import math

from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
	confint_proportions_2indep,
	proportion_effectsize,
	test_proportions_2indep,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from crm_automation.engine.i18n import _

ALPHA = 0.05
POWER = 0.8
MIN_GROUP = 30
MIN_EVENTS = 5

HELPS, HURTS, NO_DIFFERENCE, NOT_ENOUGH = "helps", "hurts", "no difference", "not enough data"


class Comparison:
	"""One group against the reference group (held out, or the split's first arm)."""

	__slots__ = ("ci_high", "ci_low", "difference", "kind", "more_needed", "p_value", "test", "verdict")

	def __init__(self, kind, test, difference=None, ci_low=None, ci_high=None, p_value=None):
		self.kind = kind
		self.test = test
		self.difference = difference
		self.ci_low = ci_low
		self.ci_high = ci_high
		self.p_value = p_value
		self.verdict = NOT_ENOUGH
		self.more_needed = None

	def as_dict(self):
		return {key: getattr(self, key) for key in self.__slots__}


def compare_proportions(successes, count, ref_successes, ref_count, higher_is_better=True):
	"""Treated (``successes`` of ``count``) against the reference group."""
	result = Comparison("proportion", "Newcombe interval, score test")
	if count and ref_count:
		result.difference = successes / count - ref_successes / ref_count
	small = (
		min(count, ref_count) < MIN_GROUP
		or min(successes, count - successes, ref_successes, ref_count - ref_successes) < MIN_EVENTS
	)
	if small:
		result.more_needed = _more_for_proportions(successes, count, ref_successes, ref_count)
		return result
	low, high = confint_proportions_2indep(
		successes, count, ref_successes, ref_count, method="newcomb", compare="diff", alpha=ALPHA
	)
	test = test_proportions_2indep(successes, count, ref_successes, ref_count, method="score", compare="diff")
	result.ci_low, result.ci_high, result.p_value = float(low), float(high), float(test.pvalue)
	_decide(result, higher_is_better)
	if result.verdict == NO_DIFFERENCE:
		result.more_needed = _more_for_proportions(successes, count, ref_successes, ref_count)
	return result


def compare_means(values, ref_values, higher_is_better=True):
	"""Treated values against the reference group's (Welch)."""
	values, ref_values = [float(v) for v in values], [float(v) for v in ref_values]
	result = Comparison("mean", "Welch t-test")
	if values and ref_values:
		result.difference = sum(values) / len(values) - sum(ref_values) / len(ref_values)
	if min(len(values), len(ref_values)) < MIN_GROUP:
		result.more_needed = _more_for_means(values, ref_values)
		return result
	compared = CompareMeans(DescrStatsW(values), DescrStatsW(ref_values))
	_t, p_value, _df = compared.ttest_ind(usevar="unequal")
	low, high = compared.tconfint_diff(alpha=ALPHA, usevar="unequal")
	result.ci_low, result.ci_high = float(low), float(high)
	result.p_value = float(p_value) if not math.isnan(p_value) else 1.0
	_decide(result, higher_is_better)
	if result.verdict == NO_DIFFERENCE:
		result.more_needed = _more_for_means(values, ref_values)
	return result


def _decide(result, higher_is_better):
	if result.ci_low > 0 or result.ci_high < 0:
		up = result.ci_low > 0
		result.verdict = HELPS if up == higher_is_better else HURTS
	else:
		result.verdict = NO_DIFFERENCE


def _more_for_proportions(successes, count, ref_successes, ref_count):
	"""More documents (both groups together) needed to detect the difference seen so far; at least
	what the minimums ask. None when no difference is seen at all (no size would settle it)."""
	floor = _floor(count, ref_count)
	if not count or not ref_count:
		return floor or None
	rate, ref_rate = successes / count, ref_successes / ref_count
	events_short = sum(
		max(0, MIN_EVENTS - k)
		for k in (successes, count - successes, ref_successes, ref_count - ref_successes)
	)
	if rate == ref_rate:
		return max(floor, _events_floor(events_short, rate, ref_rate)) or None
	effect = abs(proportion_effectsize(rate, ref_rate))
	return max(floor, _power_shortfall(NormalIndPower(), effect, count, ref_count), events_short)


def _more_for_means(values, ref_values):
	floor = _floor(len(values), len(ref_values))
	if len(values) < 2 or len(ref_values) < 2:
		return floor or None
	n1, n2 = len(values), len(ref_values)
	m1, m2 = sum(values) / n1, sum(ref_values) / n2
	var1 = sum((v - m1) ** 2 for v in values) / (n1 - 1)
	var2 = sum((v - m2) ** 2 for v in ref_values) / (n2 - 1)
	pooled = math.sqrt(((n1 - 1) * var1 + (n2 - 1) * var2) / (n1 + n2 - 2))
	if not pooled or m1 == m2:
		return floor or None
	return max(floor, _power_shortfall(TTestIndPower(), abs(m1 - m2) / pooled, n1, n2))


def _floor(count, ref_count):
	return max(0, MIN_GROUP - count) + max(0, MIN_GROUP - ref_count)


def _events_floor(short, rate, ref_rate):
	# Documents needed for the missing successes (or failures) at the rates seen so far.
	rarest = min(r for r in (rate, 1 - rate, ref_rate, 1 - ref_rate) if r > 0) if short else 1
	return math.ceil(short / rarest) if short else 0


def _power_shortfall(power, effect, count, ref_count):
	"""Documents missing, both groups together, for POWER at ALPHA with the current group ratio."""
	if effect <= 0:
		return 0
	ratio = ref_count / count
	needed = power.solve_power(effect_size=effect, alpha=ALPHA, power=POWER, ratio=ratio)
	needed = float(needed)
	return max(0, math.ceil(needed) - count) + max(0, math.ceil(needed * ratio) - ref_count)


def verdict_sentence(comparison, label, value, ref_value, ref_label, unit=""):
	"""The plain-words verdict: "Converted 15.2 % vs 11.8 % held out, +3.4 points, 95 % CI +0.9 to
	+5.9: the rule helps". ``value``/``ref_value`` are rates (0..1) or means."""
	if comparison.kind == "proportion":
		shown = _("{0} {1} % vs {2} % {3}").format(label, _pct(value), _pct(ref_value), ref_label)
	else:
		shown = _("{0} {1}{4} vs {2}{4} {3}").format(label, _num(value), _num(ref_value), ref_label, unit)
	if comparison.verdict == NOT_ENOUGH:
		if comparison.more_needed:
			return _("{0}: not enough data yet: about {1} more documents needed").format(
				shown, comparison.more_needed
			)
		return _("{0}: not enough data yet").format(shown)
	difference = _signed_diff(comparison, comparison.difference, unit)
	scale = 100 if comparison.kind == "proportion" else 1
	interval = _("95 % CI {0} to {1}").format(
		_signed(comparison.ci_low * scale), _signed(comparison.ci_high * scale)
	)
	conclusion = {
		HELPS: _("the rule helps"),
		HURTS: _("the rule hurts"),
		NO_DIFFERENCE: _("no clear difference yet"),
	}[comparison.verdict]
	sentence = _("{0}, {1}, {2}: {3}").format(shown, difference, interval, conclusion)
	if comparison.verdict == NO_DIFFERENCE and comparison.more_needed:
		sentence += " " + _("(about {0} more documents would show a difference this size)").format(
			comparison.more_needed
		)
	return sentence


def _signed_diff(comparison, value, unit):
	if comparison.kind == "proportion":
		return _("{0} points").format(_signed(value * 100))
	return f"{_signed(value)}{unit}"


def _signed(number):
	return f"{number:+.1f}"


def _pct(rate):
	return f"{rate * 100:.1f}"


def _num(number):
	return f"{number:,.1f}"
