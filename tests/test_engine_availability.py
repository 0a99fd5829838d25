"""Who is in (engine/availability.py): away periods, holidays, working hours, the fair share of round
robin among those who are in, and the fallback."""

import datetime

from crm_automation.engine import availability as av
from crm_automation.engine.business_hours import compile_calendar

MONDAY_10 = datetime.datetime(2026, 12, 7, 10, 0)
OFFICE = compile_calendar(
	{
		"mode": "Working Hours",
		"hours": [
			{"weekday": day, "start": "09:00", "end": "17:00"}
			for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
		],
	}
)


def away(start, end, kind=av.AWAY):
	return {"from": start, "to": end, "kind": kind}


def test_nobody_asked_for_means_everyone_is_in():
	availability = {"ann": {"away": [away(MONDAY_10, MONDAY_10 + datetime.timedelta(days=1))]}}
	assert av.who_is_in(["ann", "bob"], availability, MONDAY_10, False, False) == (["ann", "bob"], [])


def test_an_away_period_is_half_open_and_says_when_the_user_is_back():
	back = datetime.datetime(2026, 12, 12, 9, 0)
	availability = {"ann": {"away": [away(MONDAY_10, back)]}}
	present, skipped = av.who_is_in(["ann", "bob"], availability, MONDAY_10)
	assert present == ["bob"]
	assert skipped == [av.Skipped("ann", av.AWAY, back)]
	assert skipped[0].describe("Ann") == "Ann (away until 2026-12-12 09:00)"
	# At the moment the period ends, Ann is back.
	assert av.who_is_in(["ann"], availability, back) == (["ann"], [])


def test_back_to_back_periods_report_the_last_end():
	first_end = MONDAY_10 + datetime.timedelta(days=2)
	last_end = first_end + datetime.timedelta(days=1)
	availability = {"ann": {"away": [away(MONDAY_10, first_end), away(first_end, last_end, av.LEAVE)]}}
	_present, skipped = av.who_is_in(["ann"], availability, MONDAY_10)
	assert skipped[0].until == last_end


def test_a_holiday_is_a_whole_day_away_until_the_first_day_that_is_not_one():
	monday, tuesday = MONDAY_10.date(), MONDAY_10.date() + datetime.timedelta(days=1)
	availability = {"ann": {"holidays": {monday, tuesday}}}
	present, skipped = av.who_is_in(["ann"], availability, MONDAY_10)
	assert present == []
	assert skipped == [av.Skipped("ann", av.HOLIDAY, monday + datetime.timedelta(days=2))]
	assert "on holiday until 2026-12-09" in skipped[0].describe()


def test_outside_working_hours_only_when_asked():
	saturday = datetime.datetime(2026, 12, 12, 11, 0)
	availability = {"ann": {"calendar": OFFICE}}
	assert av.who_is_in(["ann"], availability, saturday, True, False) == (["ann"], [])
	present, skipped = av.who_is_in(["ann"], availability, saturday, True, True)
	assert present == []
	assert skipped == [av.Skipped("ann", av.OFF_HOURS, datetime.datetime(2026, 12, 14, 9, 0))]
	assert skipped[0].describe("Ann") == "Ann (outside working hours, back 2026-12-14 09:00)"
	# A user with no working hours is always at work.
	assert av.who_is_in(["bob"], {"bob": {"calendar": None}}, saturday, True, True) == (["bob"], [])


def test_round_robin_keeps_the_fair_share_among_those_who_are_in():
	roster = ["ann", "bob", "cat"]
	availability = {"bob": {"away": [away(MONDAY_10, MONDAY_10 + datetime.timedelta(days=5))]}}
	last, counts = None, {}
	for _lead in range(10):
		plan = av.plan_assignment(roster, availability, MONDAY_10, skip_away=True)
		last = av.next_in_turn(last, plan.choices, roster)
		counts[last] = counts.get(last, 0) + 1
	assert counts == {"ann": 5, "cat": 5}
	# Bob back: the turn after Ann's is his again.
	assert av.next_in_turn("ann", roster, roster) == "bob"


def test_least_loaded_picks_among_those_in():
	assert av.least_loaded(["ann", "cat"], {"ann": 3, "bob": 0, "cat": 2}) == "cat"
	assert av.least_loaded(["ann", "cat"], {}) == "ann"


def test_fallback_user_when_everyone_is_away_even_if_away_themselves():
	everyone_away = {user: {"away": [away(MONDAY_10, MONDAY_10 + datetime.timedelta(hours=1))]} for user in "abz"}
	plan = av.plan_assignment(["a", "b"], everyone_away, MONDAY_10, skip_away=True, fallback_user="z")
	assert plan.choices == ["z"] and plan.fallback == av.FALLBACK_USER
	assert [entry.user for entry in plan.skipped] == ["a", "b"]


def test_fallback_role_members_who_are_in_else_nobody():
	availability = {user: {"away": [away(MONDAY_10, MONDAY_10 + datetime.timedelta(hours=1))]} for user in "abr"}
	plan = av.plan_assignment(
		["a", "b"], availability, MONDAY_10, skip_away=True, fallback_role_members=["r", "s"]
	)
	assert plan.choices == ["s"] and plan.fallback == av.FALLBACK_ROLE
	nobody = av.plan_assignment(["a", "b"], availability, MONDAY_10, skip_away=True, fallback_role_members=["r"])
	assert nobody.choices == [] and nobody.fallback is None and len(nobody.skipped) == 2


def test_no_fallback_used_while_someone_is_in():
	plan = av.plan_assignment(["a"], {}, MONDAY_10, skip_away=True, fallback_user="z")
	assert plan.choices == ["a"] and plan.fallback is None
