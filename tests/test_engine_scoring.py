import pytest

from crm_automation.engine import RuleError
from crm_automation.engine.scoring import compile_score_rule

FIELDS = {"industry": {"fieldtype": "Link"}, "unsubscribed": {"fieldtype": "Check"}, "status": {"fieldtype": "Data"}}


def rule(**overrides):
	base = {
		"criteria": [
			{"label": "IT industry", "points": 2, "conditions": {"all": [{"field": "industry", "op": "=", "value": "IT"}]}},
			{"label": "unsubscribed", "points": -5, "conditions": {"all": [{"field": "unsubscribed", "op": "=", "value": 1}]}},
		],
		"activity_criteria": [
			{"activity_source": "CRM Activity", "activity_type": "Product Page View", "days": 30, "points": 2, "label": "product page view"},
			{"activity_source": "CRM Activity", "activity_type": "Inquiry", "days": 30, "points": 3, "cap": 6, "label": "inquiry"},
		],
		"bands": [{"min_score": -100, "grade": "Cold"}, {"min_score": 5, "grade": "Warm", "priority": "Medium"}, {"min_score": 8, "grade": "High Value", "priority": "High"}],
	}
	base.update(overrides)
	return compile_score_rule(base, FIELDS)


def counts(compiled, page_views=0, inquiries=0):
	return {compiled.activities[0].key: page_views, compiled.activities[1].key: inquiries}


def test_the_issue_example():
	compiled = rule()
	two_views = compiled.score({}, counts(compiled, page_views=2))
	assert (two_views.score, two_views.grade) == (4, "Cold")
	high = compiled.score({}, counts(compiled, page_views=1, inquiries=2))
	assert (high.score, high.grade, high.priority) == (8, "High Value", "High")
	assert high.explain() == "+2 product page view, +6 inquiry"


def test_negative_points_and_caps_are_explained():
	compiled = rule()
	result = compiled.score({"industry": "IT", "unsubscribed": 1}, counts(compiled, inquiries=5))
	assert result.score == 2 - 5 + 6
	inquiry = next(entry for entry in result.breakdown if entry["label"] == "inquiry")
	assert (inquiry["points"], inquiry["capped_from"], inquiry["count"]) == (6, 15, 5)


def test_half_life_and_weekly_decay():
	half_life = rule(decay_mode="Half-life", half_life_days=14)
	activity = counts(half_life, page_views=1, inquiries=2)
	assert half_life.score({}, activity, days_idle=0).score == 8
	assert half_life.score({}, activity, days_idle=14).score == 4
	assert half_life.score({}, activity, days_idle=28).score == 2
	weekly = rule(decay_mode="Points per Week", points_per_week=3)
	assert weekly.score({}, counts(weekly, 1, 2), days_idle=14).score == 2
	assert weekly.score({}, counts(weekly, 1, 2), days_idle=70).score == 0, "decay never goes below zero"
	assert weekly.score({"unsubscribed": 1}, {}, days_idle=70).score == -5, "negative scores do not decay"


def test_band_is_the_highest_reached():
	compiled = rule()
	assert compiled.band_for(4.99).grade == "Cold"
	assert compiled.band_for(5).grade == "Warm"
	assert compiled.band_for(100).grade == "High Value"
	assert rule(bands=[{"min_score": 0, "grade": "Some"}]).band_for(-1) is None


@pytest.mark.parametrize(
	"overrides, message",
	[
		({"bands": [{"min_score": 5, "grade": "A"}, {"min_score": 3, "grade": "B"}]}, "bands[1].min_score: bands must go up: 3 (B) is not above 5 (A)"),
		({"bands": [{"min_score": 1, "grade": "A"}, {"min_score": 2, "grade": "A"}]}, 'bands[1].grade: grade "A" is used by two bands'),
		({"criteria": [{"label": "x", "points": "lots", "conditions": None}]}, 'criteria[0].points: points must be a number, not "lots"'),
		({"activity_criteria": [{"activity_source": "Telepathy", "days": 1, "points": 1}]}, 'activity_criteria[0].activity_source: unknown activity "Telepathy"'),
		({"activity_criteria": [{"activity_source": "Comment", "days": 0, "points": 1}]}, "activity_criteria[0].days: days must be at least 1, not 0"),
		({"activity_criteria": [{"activity_source": "Comment", "days": 7, "points": 1, "cap": -2}]}, "activity_criteria[0].cap: cap must be at least 0"),
		({"decay_mode": "Half-life", "half_life_days": 0}, "half_life_days: the half-life must be more than 0 days"),
		({"criteria": [{"label": "x", "points": 1, "conditions": {"all": [{"field": "nope", "op": "=", "value": 1}]}}]}, 'criteria[0].conditions.all[0]: unknown field "nope"'),
	],
)
def test_bad_rules_name_the_place_and_value(overrides, message):
	with pytest.raises(RuleError) as caught:
		rule(**overrides)
	assert any(str(problem).startswith(message) for problem in caught.value.problems), [str(p) for p in caught.value.problems]


def test_unknown_crm_activity_type_when_the_site_lists_them():
	with pytest.raises(RuleError, match='unknown activity type "Telepathy"'):
		compile_score_rule(
			{"known_activity_types": {"Inquiry"}, "activity_criteria": [{"activity_source": "CRM Activity", "activity_type": "Telepathy", "days": 3, "points": 1}]},
			FIELDS,
		)
