"""The Rule Outcome report's statistics (crm_automation/outcomes/statistics.py, statsmodels): the
sign and significance of planted effects, no verdict on tiny groups, and the verdict in words."""

import random

import pytest

from crm_automation.outcomes import statistics as st


def test_planted_effect_on_a_rate_is_significant_with_the_right_sign():
	result = st.compare_proportions(45, 150, 15, 150)
	assert result.verdict == st.HELPS
	assert 0 < result.ci_low < 0.2 < result.ci_high
	assert result.p_value < 0.001
	assert st.compare_proportions(15, 150, 45, 150).verdict == st.HURTS
	# Lower is better (e.g. a complaint rate): the same numbers hurt.
	assert st.compare_proportions(45, 150, 15, 150, higher_is_better=False).verdict == st.HURTS


def test_no_effect_is_not_significant():
	result = st.compare_proportions(30, 150, 30, 150)
	assert result.verdict == st.NO_DIFFERENCE
	assert result.ci_low < 0 < result.ci_high
	assert result.p_value > 0.5


@pytest.mark.parametrize(
	("args", "why"),
	[((3, 10, 1, 10), "few documents"), ((2, 200, 1, 200), "few successes"), ((198, 200, 199, 200), "few failures")],
)
def test_tiny_groups_give_not_enough_data(args, why):
	result = st.compare_proportions(*args)
	assert result.verdict == st.NOT_ENOUGH, why
	assert result.ci_low is None and result.p_value is None


def test_more_needed_comes_from_a_power_calculation():
	# 20 % vs 10 % needs about 199 per group for 80 % power (Cohen's h 0.28): 10 + 10 seen.
	result = st.compare_proportions(2, 10, 1, 10)
	assert 350 < result.more_needed < 400
	# No difference seen yet: only the minimum group size is asked.
	assert st.compare_proportions(5, 10, 5, 10).more_needed == 40


def test_means_use_welch():
	rng = random.Random(5)
	fast = [rng.gauss(10, 2) for _ in range(60)]
	slow = [rng.gauss(14, 6) for _ in range(60)]
	result = st.compare_means(fast, slow, higher_is_better=False)
	assert result.test == "Welch t-test"
	assert result.verdict == st.HELPS and result.ci_high < 0
	assert st.compare_means(fast[:10], slow[:10]).verdict == st.NOT_ENOUGH
	same = st.compare_means(fast, [v + 0.01 for v in fast])
	assert same.verdict == st.NO_DIFFERENCE


def test_verdict_in_words():
	result = st.compare_proportions(304, 2000, 236, 2000)
	sentence = st.verdict_sentence(result, "Converted", 304 / 2000, 236 / 2000, "held out")
	assert sentence.startswith("Converted 15.2 % vs 11.8 % held out, +3.4 points, 95 % CI +")
	assert sentence.endswith(": the rule helps")
	tiny = st.compare_proportions(2, 10, 1, 10)
	assert "not enough data yet: about" in st.verdict_sentence(tiny, "Converted", 0.2, 0.1, "held out")
	hours = st.compare_means([1.0] * 40 + [2.0] * 40, [3.0] * 40 + [4.0] * 40, higher_is_better=False)
	assert st.verdict_sentence(hours, "Resolution time", 1.5, 3.5, "held out", " h").startswith(
		"Resolution time 1.5 h vs 3.5 h held out, -2.0 h, 95 % CI -"
	)
