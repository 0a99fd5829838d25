"""Schedule triggers (engine/schedules.py): moments, month ends, working-day calendars, catch-up."""

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_automation.engine.errors import RuleError
from crm_automation.engine.schedules import compile_schedule, describe_schedule, due_moment

OFFICE = {
	"mode": "Working Hours",
	"hours": [
		{"weekday": d, "start": "09:00", "end": "17:00"}
		for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
	],
	"holidays": ["2026-12-25"],
}


def dt(text):
	return datetime.datetime.fromisoformat(text)


def schedule(calendar=None, **fields):
	rule = {f"schedule_{key}": value for key, value in fields.items()}
	if calendar is not None:
		rule["schedule_calendar"] = "Office"
	return compile_schedule(rule, calendar)


def problems_of(rule, calendar=None):
	with pytest.raises(RuleError) as caught:
		compile_schedule(rule, calendar)
	return {problem.path: problem.message for problem in caught.value.problems}


MONDAY_9 = dict(frequency="Weekly", weekday="Monday", time="09:00")


def test_weekly_next_moment_is_the_coming_monday_at_nine():
	weekly = schedule(**MONDAY_9)
	assert weekly.next_moment(dt("2026-12-02 10:00")) == dt("2026-12-07 09:00")  # Wednesday → Monday
	assert weekly.next_moment(dt("2026-12-07 08:59")) == dt("2026-12-07 09:00")
	# strictly after: the moment itself is not its own next
	assert weekly.next_moment(dt("2026-12-07 09:00")) == dt("2026-12-14 09:00")


def test_every_n_minutes_and_hours_are_counted_from_midnight():
	quarter = schedule(frequency="Every N Minutes", interval=15)
	assert quarter.next_moment(dt("2026-12-07 10:07")) == dt("2026-12-07 10:15")
	assert list(quarter.moments_between(dt("2026-12-07 10:00"), dt("2026-12-07 10:45"))) == [
		dt("2026-12-07 10:15"),
		dt("2026-12-07 10:30"),
		dt("2026-12-07 10:45"),
	]
	two_hours = schedule(frequency="Every N Hours", interval=2)
	assert two_hours.next_moment(dt("2026-12-07 23:30")) == dt("2026-12-08 00:00")
	assert two_hours.latest_moment(dt("2026-12-07 00:00"), dt("2026-12-07 05:59")) == dt("2026-12-07 04:00")


def test_day_31_is_the_last_day_of_shorter_months():
	monthly = schedule(frequency="Monthly", day_of_month=31, time="18:00")
	moments = list(monthly.moments_between(dt("2027-01-01 00:00"), dt("2027-05-01 00:00")))
	assert moments == [
		dt("2027-01-31 18:00"),
		dt("2027-02-28 18:00"),
		dt("2027-03-31 18:00"),
		dt("2027-04-30 18:00"),
	]
	leap = list(monthly.moments_between(dt("2028-02-01 00:00"), dt("2028-03-01 00:00")))
	assert leap == [dt("2028-02-29 18:00")]


def test_working_days_calendar_skips_weekends_and_holidays():
	daily = schedule(OFFICE, frequency="Daily", time="08:00")
	moments = list(daily.moments_between(dt("2026-12-24 00:00"), dt("2026-12-29 00:00")))
	# Thursday 24th; Friday 25th is a holiday; Saturday and Sunday are not working days.
	assert moments == [dt("2026-12-24 08:00"), dt("2026-12-28 08:00")]
	# 08:00 is before the office opens: a schedule reads the policy's days, not its hours.
	hourly = schedule(OFFICE, frequency="Every N Hours", interval=6)
	assert hourly.next_moment(dt("2026-12-24 18:30")) == dt("2026-12-28 00:00")
	assert hourly.latest_moment(dt("2026-12-20 00:00"), dt("2026-12-27 23:00")) == dt("2026-12-24 18:00")


def test_a_24x7_policy_still_takes_its_holidays_off():
	daily = schedule({"mode": "24x7", "holidays": ["2026-12-25"]}, frequency="Daily", time="09:00")
	assert daily.next_moment(dt("2026-12-24 10:00")) == dt("2026-12-26 09:00")


def test_catch_up_after_three_days_runs_once_for_the_latest_missed_moment():
	daily = schedule(frequency="Daily", time="09:00")
	# Next was Monday 09:00; the scheduler comes back on Thursday 10:00.
	moment, next_moment = due_moment(daily, dt("2026-12-07 09:00"), dt("2026-12-10 10:00"))
	assert moment == dt("2026-12-10 09:00")
	assert next_moment == dt("2026-12-11 09:00")
	# Found again a minute later: nothing is due.
	assert due_moment(daily, next_moment, dt("2026-12-10 10:01")) == (None, dt("2026-12-11 09:00"))


def test_catch_up_of_a_weekly_schedule_when_no_moment_fell_in_the_gap():
	weekly = schedule(**MONDAY_9)
	assert due_moment(weekly, dt("2026-12-14 09:00"), dt("2026-12-10 10:00")) == (
		None,
		dt("2026-12-14 09:00"),
	)
	assert due_moment(weekly, None, dt("2026-12-10 10:00")) == (None, dt("2026-12-14 09:00"))
	assert due_moment(weekly, dt("2026-12-14 09:00"), dt("2026-12-14 09:00"))[0] == dt("2026-12-14 09:00")


def test_a_calendar_without_working_days_has_no_next_moment():
	every_day_off = {
		"mode": "Working Hours",
		"hours": [{"weekday": "Sunday", "start": "09:00", "end": "10:00"}],
	}
	weekly = schedule(every_day_off, frequency="Weekly", weekday="Monday", time="09:00")
	assert weekly.next_moment(dt("2026-12-07 10:00")) is None


def test_bad_input_names_each_field_and_value():
	problems = problems_of({"schedule_frequency": "Hourly"})
	assert "Hourly" in problems["schedule_frequency"]
	problems = problems_of({"schedule_frequency": "Every N Minutes", "schedule_interval": 0})
	assert "0" in problems["schedule_interval"]
	problems = problems_of({"schedule_frequency": "Weekly", "schedule_time": "9"})
	assert "weekday" in problems["schedule_weekday"]
	assert '"9"' in problems["schedule_time"]
	problems = problems_of(
		{"schedule_frequency": "Monthly", "schedule_day_of_month": 32, "schedule_time": "25:00"}
	)
	assert "32" in problems["schedule_day_of_month"]
	assert "25:00" in problems["schedule_time"]
	problems = problems_of(
		{"schedule_frequency": "Daily", "schedule_time": "09:00", "schedule_calendar": "Gone"}
	)
	assert "Gone" in problems["schedule_calendar"]


def test_described_in_words():
	assert describe_schedule(schedule(OFFICE, **MONDAY_9)) == "Every Monday at 09:00 (working days of Office)"
	assert (
		describe_schedule({"schedule_frequency": "Every N Minutes", "schedule_interval": 5})
		== "Every 5 minutes"
	)
	assert describe_schedule(
		{"schedule_frequency": "Monthly", "schedule_day_of_month": 31, "schedule_time": "18:00:00"}
	) == ("Monthly on day 31 at 18:00")


@settings(max_examples=150, deadline=None)
@given(
	frequency=st.sampled_from(["Every N Minutes", "Every N Hours", "Daily", "Weekly", "Monthly"]),
	interval=st.integers(1, 200),
	day=st.integers(1, 31),
	start=st.datetimes(datetime.datetime(2026, 1, 1), datetime.datetime(2028, 12, 31)),
	span_hours=st.integers(0, 24 * 40),
	with_calendar=st.booleans(),
)
def test_latest_moment_is_the_last_of_moments_between(
	frequency, interval, day, start, span_hours, with_calendar
):
	compiled = schedule(
		OFFICE if with_calendar else None,
		frequency=frequency,
		interval=interval,
		weekday="Friday",
		day_of_month=day,
		time="07:30",
	)
	until = start + datetime.timedelta(hours=span_hours)
	moments = list(compiled.moments_between(start, until))
	assert all(start < m <= until for m in moments)
	assert moments == sorted(set(moments))
	assert compiled.latest_moment(start, until) == (moments[-1] if moments else None)
