import datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from crm_automation.engine.business_hours import WEEKDAYS, Calendar, compile_calendar
from crm_automation.engine.errors import RuleError

HOUR = datetime.timedelta(hours=1)
MINUTE = datetime.timedelta(minutes=1)
ZERO = datetime.timedelta(0)
WORKING_DAYS = WEEKDAYS[:5]


def at(day, hour, minute=0, second=0):
	"""Moments in the week of Monday 2 March 2026 and the week after (day 0 = Monday 2 March)."""
	return datetime.datetime(2026, 3, 2, hour, minute, second) + datetime.timedelta(days=day)


MON, TUE, WED, THU, FRI, SAT, SUN, NEXT_MON, NEXT_TUE = range(9)
NEXT_MONDAY_DATE = "2026-03-09"


def working_hours(*intervals, days=WORKING_DAYS, holidays=()):
	hours = [{"weekday": day, "start": start, "end": end} for day in days for start, end in intervals]
	return compile_calendar({"mode": "Working Hours", "hours": hours, "holidays": list(holidays)})


OFFICE = working_hours(("09:00", "17:00"))
LUNCH_BREAK = working_hours(("09:00", "12:00"), ("13:00", "17:00"))
ALWAYS_OPEN = compile_calendar({"mode": "24x7"})


def problems_of(spec):
	with pytest.raises(RuleError) as caught:
		compile_calendar(spec)
	return [str(problem) for problem in caught.value.problems]


def test_the_example_dates_fall_on_the_weekdays_the_tests_assume():
	assert at(MON, 0).strftime("%A") == "Monday"
	assert at(FRI, 0).strftime("%A") == "Friday"
	assert at(NEXT_MON, 0).date().isoformat() == NEXT_MONDAY_DATE


class TestDeadline:
	def test_runs_across_the_night(self):
		assert OFFICE.deadline(at(MON, 16), 2 * HOUR) == at(TUE, 10)

	def test_runs_across_the_weekend(self):
		assert OFFICE.deadline(at(FRI, 16), 2 * HOUR) == at(NEXT_MON, 10)

	def test_skips_a_holiday(self):
		calendar = working_hours(("09:00", "17:00"), holidays=[NEXT_MONDAY_DATE])
		assert calendar.deadline(at(FRI, 16), 2 * HOUR) == at(NEXT_TUE, 10)

	def test_stops_the_clock_over_lunch(self):
		assert LUNCH_BREAK.deadline(at(MON, 11), 2 * HOUR) == at(MON, 14)
		assert LUNCH_BREAK.deadline(at(MON, 12, 30), HOUR) == at(MON, 14)

	def test_start_before_opening_counts_from_opening(self):
		assert OFFICE.deadline(at(TUE, 7), 2 * HOUR) == at(TUE, 11)

	def test_start_after_closing_counts_from_next_opening(self):
		assert OFFICE.deadline(at(TUE, 19), 2 * HOUR) == at(WED, 11)

	def test_start_on_a_weekend_counts_from_monday(self):
		assert OFFICE.deadline(at(SAT, 12), 2 * HOUR) == at(NEXT_MON, 11)

	def test_zero_duration_is_the_first_working_moment(self):
		assert OFFICE.deadline(at(TUE, 11, 15), ZERO) == at(TUE, 11, 15)
		assert OFFICE.deadline(at(TUE, 7), ZERO) == at(TUE, 9)
		assert OFFICE.deadline(at(SAT, 12), ZERO) == at(NEXT_MON, 9)
		assert OFFICE.deadline(at(TUE, 17), ZERO) == at(WED, 9), "17:00 is already closed"
		assert LUNCH_BREAK.deadline(at(MON, 12), ZERO) == at(MON, 13)

	def test_used_up_exactly_at_closing_is_due_at_closing_not_next_opening(self):
		assert OFFICE.deadline(at(MON, 9), 8 * HOUR) == at(MON, 17)
		assert OFFICE.deadline(at(FRI, 16), HOUR) == at(FRI, 17)
		assert LUNCH_BREAK.deadline(at(MON, 9), 3 * HOUR) == at(MON, 12)
		assert LUNCH_BREAK.deadline(at(MON, 9), 3 * HOUR + MINUTE) == at(MON, 13, 1)

	def test_keeps_microseconds_exact(self):
		start = at(MON, 16, 59, 59) + datetime.timedelta(microseconds=999_999)
		due = OFFICE.deadline(start, datetime.timedelta(microseconds=2))
		assert due == at(TUE, 9) + datetime.timedelta(microseconds=1)

	def test_long_durations_skip_whole_weeks_exactly(self):
		# 2000 h of a 40 h week is exactly 50 weeks: Friday 17:00 of the fiftieth week.
		assert OFFICE.deadline(at(MON, 9), 2000 * HOUR) == at(FRI, 17) + datetime.timedelta(weeks=49)
		with_holidays = working_hours(("09:00", "17:00"), holidays=[NEXT_MONDAY_DATE, "2026-12-25"])
		due = with_holidays.deadline(at(MON, 9), 2000 * HOUR)
		assert due == at(FRI, 17) + datetime.timedelta(weeks=49, days=4), "two working days later: Tuesday"
		assert with_holidays.elapsed(at(MON, 9), due) == 2000 * HOUR

	def test_a_working_interval_may_end_at_midnight(self):
		night_shift = compile_calendar(
			{
				"mode": "Working Hours",
				"hours": [
					{"weekday": "Monday", "start": "22:00", "end": "24:00"},
					{"weekday": "Tuesday", "start": "00:00", "end": "02:00"},
				],
			}
		)
		assert night_shift.deadline(at(MON, 23), 2 * HOUR) == at(TUE, 1)
		assert night_shift.deadline(at(MON, 22), 2 * HOUR) == at(TUE, 0)
		assert night_shift.elapsed(at(MON, 22), at(TUE, 2)) == 4 * HOUR
		assert night_shift.deadline(at(TUE, 2), HOUR) == at(NEXT_MON, 23)

	def test_rejects_bad_arguments(self):
		with pytest.raises(ValueError, match="must not be negative"):
			OFFICE.deadline(at(MON, 9), -MINUTE)
		with pytest.raises(TypeError, match=r"datetime\.timedelta"):
			OFFICE.deadline(at(MON, 9), 60)
		with pytest.raises(TypeError, match=r"start must be a datetime\.datetime"):
			OFFICE.deadline(at(MON, 9).date(), HOUR)
		with pytest.raises(ValueError, match="naive local time"):
			OFFICE.deadline(at(MON, 9).replace(tzinfo=datetime.timezone.utc), HOUR)

	def test_gives_up_when_holidays_cover_every_working_day_for_ten_years(self):
		mondays = [at(MON, 0).date() + datetime.timedelta(weeks=week) for week in range(600)]
		calendar = working_hours(("09:00", "17:00"), days=["Monday"], holidays=mondays)
		message = "no working time within 10 years after 2026-03-02: the holidays cover every working day"
		with pytest.raises(ValueError, match=message):
			calendar.deadline(at(MON, 8), HOUR)
		with pytest.raises(ValueError, match="no working time within 10 years"):
			calendar.next_working_moment(at(MON, 8))

	def test_long_holiday_stretches_shorter_than_the_limit_are_crossed(self):
		mondays = [at(MON, 0).date() + datetime.timedelta(weeks=week) for week in range(500)]
		calendar = working_hours(("09:00", "17:00"), days=["Monday"], holidays=mondays)
		first_free_monday = at(MON, 9) + datetime.timedelta(weeks=500)
		assert calendar.deadline(at(MON, 8), HOUR) == first_free_monday + HOUR
		hundredth_free_monday_closing = first_free_monday + datetime.timedelta(weeks=99, hours=8)
		assert calendar.deadline(at(MON, 8), 800 * HOUR) == hundredth_free_monday_closing


class TestElapsed:
	def test_inverts_each_deadline_example(self):
		holiday_monday = working_hours(("09:00", "17:00"), holidays=[NEXT_MONDAY_DATE])
		assert OFFICE.elapsed(at(MON, 16), at(TUE, 10)) == 2 * HOUR
		assert OFFICE.elapsed(at(FRI, 16), at(NEXT_MON, 10)) == 2 * HOUR
		assert holiday_monday.elapsed(at(FRI, 16), at(NEXT_TUE, 10)) == 2 * HOUR
		assert LUNCH_BREAK.elapsed(at(MON, 11), at(MON, 14)) == 2 * HOUR
		assert OFFICE.elapsed(at(TUE, 7), at(TUE, 11)) == 2 * HOUR
		assert OFFICE.elapsed(at(TUE, 19), at(WED, 11)) == 2 * HOUR
		assert OFFICE.elapsed(at(SAT, 12), at(NEXT_MON, 11)) == 2 * HOUR
		assert OFFICE.elapsed(at(MON, 9), at(MON, 17)) == 8 * HOUR

	def test_is_zero_outside_working_time_and_when_end_is_not_after_start(self):
		assert OFFICE.elapsed(at(SAT, 1), at(SUN, 23)) == ZERO
		assert OFFICE.elapsed(at(MON, 17), at(TUE, 9)) == ZERO
		assert LUNCH_BREAK.elapsed(at(MON, 12), at(MON, 13)) == ZERO
		assert OFFICE.elapsed(at(TUE, 12), at(TUE, 12)) == ZERO
		assert OFFICE.elapsed(at(TUE, 12), at(MON, 12)) == ZERO

	def test_spans_many_weeks(self):
		assert OFFICE.elapsed(at(MON, 0), at(MON, 0) + datetime.timedelta(weeks=52)) == 52 * 40 * HOUR


class TestWorkingMoments:
	def test_intervals_are_half_open(self):
		assert OFFICE.is_working(at(MON, 9))
		assert OFFICE.is_working(at(MON, 16, 59, 59) + datetime.timedelta(microseconds=999_999))
		assert not OFFICE.is_working(at(MON, 17))
		assert not OFFICE.is_working(at(MON, 8, 59, 59))
		assert not OFFICE.is_working(at(SAT, 12))
		assert not LUNCH_BREAK.is_working(at(MON, 12, 30))

	def test_holidays_are_whole_days_off(self):
		calendar = working_hours(("09:00", "17:00"), holidays=[NEXT_MONDAY_DATE])
		assert not calendar.is_working(at(NEXT_MON, 12))
		assert calendar.next_working_moment(at(NEXT_MON, 12)) == at(NEXT_TUE, 9)

	def test_next_working_moment(self):
		assert OFFICE.next_working_moment(at(MON, 10, 30)) == at(MON, 10, 30)
		assert OFFICE.next_working_moment(at(MON, 17)) == at(TUE, 9)
		assert OFFICE.next_working_moment(at(FRI, 18)) == at(NEXT_MON, 9)
		assert LUNCH_BREAK.next_working_moment(at(MON, 12)) == at(MON, 13)


class TestAlwaysOpen:
	def test_the_clock_always_runs(self):
		assert ALWAYS_OPEN.deadline(at(FRI, 16), 2 * HOUR) == at(FRI, 18)
		assert ALWAYS_OPEN.deadline(at(SAT, 3), ZERO) == at(SAT, 3)
		assert ALWAYS_OPEN.elapsed(at(FRI, 16), at(NEXT_TUE, 9, 30)) == datetime.timedelta(days=3, hours=17.5)
		assert ALWAYS_OPEN.elapsed(at(FRI, 16), at(FRI, 15)) == ZERO
		assert ALWAYS_OPEN.is_working(at(SUN, 3))
		assert ALWAYS_OPEN.next_working_moment(at(SUN, 3)) == at(SUN, 3)
		assert ALWAYS_OPEN.working_time_per_week is None

	def test_ignores_hours_and_holidays(self):
		calendar = compile_calendar(
			{
				"mode": "24x7",
				"hours": [{"weekday": "Monday", "start": "09:00", "end": "17:00"}],
				"holidays": [NEXT_MONDAY_DATE],
			}
		)
		assert calendar.deadline(at(SUN, 23), 2 * HOUR) == at(NEXT_MON, 1)
		assert calendar.is_working(at(NEXT_MON, 1))


class TestIssueScenario:
	"""An Issue created Friday 16:00 with a 2 business-hour response target; Mon–Fri 09:00–17:00 and
	Monday is a holiday."""

	calendar = working_hours(("09:00", "17:00"), holidays=[NEXT_MONDAY_DATE])
	created = at(FRI, 16)

	def test_response_is_due_tuesday_at_ten(self):
		assert self.calendar.deadline(self.created, 2 * HOUR) == at(NEXT_TUE, 10)

	def test_four_business_hours_are_due_tuesday_at_noon(self):
		assert self.calendar.deadline(self.created, 4 * HOUR) == at(NEXT_TUE, 12)

	def test_the_weekend_and_the_holiday_do_not_count(self):
		assert self.calendar.elapsed(self.created, at(NEXT_TUE, 9, 30)) == 1.5 * HOUR


class TestCompile:
	def test_builds_a_calendar_from_a_spec(self):
		assert isinstance(OFFICE, Calendar)
		assert OFFICE.mode == "Working Hours"
		assert OFFICE.working_time_per_week == 40 * HOUR
		assert ALWAYS_OPEN.mode == "24x7"
		assert repr(LUNCH_BREAK) == "Calendar(Working Hours, 35 h a week, 0 holidays)"

	def test_accepts_frappe_time_values_and_loose_spelling(self):
		calendar = compile_calendar(
			{
				"mode": "working hours",
				"hours": [
					{"weekday": "monday", "start": "9:00:00", "end": datetime.time(12, 0)},
					{"weekday": "Monday", "start": datetime.timedelta(hours=13), "end": "17:00:00"},
					{"weekday": "Tuesday", "start": "00:00", "end": "24:00"},
				],
				"holidays": [datetime.date(2026, 12, 25), "2026-12-26"],
			}
		)
		assert calendar.working_time_per_week == 31 * HOUR
		assert not calendar.is_working(datetime.datetime(2026, 12, 26, 10))

	def test_touching_intervals_do_not_overlap(self):
		calendar = working_hours(("09:00", "12:00"), ("12:00", "17:00"), days=["Monday"])
		assert calendar.deadline(at(MON, 11), 2 * HOUR) == at(MON, 13)

	def test_unknown_and_missing_modes(self):
		assert problems_of({"mode": "Weekly"}) == [
			'calendar.mode: "Weekly" is not a calendar mode (expected "24x7" or "Working Hours")',
			"calendar: a working-hours calendar needs at least one working interval",
		]
		assert problems_of({"hours": [{"weekday": "Monday", "start": "09:00", "end": "17:00"}]}) == [
			'calendar.mode: mode is missing (expected "24x7" or "Working Hours")'
		]
		assert problems_of("24x7") == ["calendar: a calendar must be a mapping, got str"]

	def test_not_a_weekday(self):
		spec = {
			"mode": "Working Hours",
			"hours": [
				{"weekday": "Monday", "start": "09:00", "end": "17:00"},
				{"weekday": "Funday", "start": "09:00", "end": "17:00"},
			],
		}
		assert problems_of(spec) == ['calendar.hours[1]: "Funday" is not a weekday']

	def test_start_not_before_end(self):
		spec = {
			"mode": "Working Hours",
			"hours": [
				{"weekday": "Monday", "start": "17:00", "end": "09:00"},
				{"weekday": "Tuesday", "start": "09:00:30", "end": "09:00:30"},
			],
		}
		assert problems_of(spec) == [
			"calendar.hours[0]: start 17:00 is not before end 09:00",
			"calendar.hours[1]: start 09:00:30 is not before end 09:00:30",
		]

	def test_overlapping_intervals(self):
		spec = {
			"mode": "Working Hours",
			"hours": [
				{"weekday": "Monday", "start": "09:00", "end": "12:00"},
				{"weekday": "Tuesday", "start": "09:00", "end": "17:00"},
				{"weekday": "Monday", "start": "13:00", "end": "17:00"},
				{"weekday": "Monday", "start": "16:00", "end": "18:00"},
				{"weekday": "Monday", "start": "17:30", "end": "19:00"},
			],
		}
		assert problems_of(spec) == [
			"calendar.hours[3]: overlaps calendar.hours[2] on Monday",
			"calendar.hours[4]: overlaps calendar.hours[3] on Monday",
		]

	def test_needs_a_working_interval(self):
		message = "calendar: a working-hours calendar needs at least one working interval"
		assert problems_of({"mode": "Working Hours"}) == [message]
		assert problems_of({"mode": "Working Hours", "hours": []}) == [message]

	def test_bad_times_and_holidays(self):
		spec = {
			"mode": "Working Hours",
			"hours": [
				{"weekday": "Monday", "start": "9am", "end": "25:00"},
				{"weekday": "Monday", "end": "24:01"},
			],
			"holidays": ["2026-13-01", "2026-12-25", 20261225, "25/12/2026"],
		}
		assert problems_of(spec) == [
			'calendar.hours[0].start: "9am" is not a time of day (expected HH:MM or HH:MM:SS)',
			'calendar.hours[0].end: "25:00" is not a time of day (expected HH:MM or HH:MM:SS)',
			"calendar.hours[1].start: start time is missing",
			'calendar.hours[1].end: "24:01" is not a time of day (expected HH:MM or HH:MM:SS)',
			'calendar.holidays[0]: "2026-13-01" is not a date',
			"calendar.holidays[2]: 20261225 is not a date",
			'calendar.holidays[3]: "25/12/2026" is not a date',
		]

	def test_wrong_shapes(self):
		assert problems_of({"mode": "Working Hours", "hours": "Mon-Fri", "holidays": "2026-12-25"}) == [
			"calendar.hours: must be a list of {weekday, start, end} entries",
			"calendar.holidays: must be a list of dates",
		]
		odd_rows = ["Monday 09-17", {"start": "09:00", "end": "10:00"}]
		assert problems_of({"mode": "Working Hours", "hours": odd_rows}) == [
			"calendar.hours[0]: an entry needs weekday, start and end",
			"calendar.hours[1]: weekday is missing",
		]

	def test_lists_every_problem_at_once(self):
		spec = {
			"mode": "Working Hours",
			"hours": [
				{"weekday": "Monday", "start": "17:00", "end": "09:00"},
				{"weekday": "Funday", "start": "09:00", "end": "17:00"},
				{"weekday": "Monday", "start": "09:00", "end": "12:00"},
				{"weekday": "Monday", "start": "11:00", "end": "13:00"},
				{"weekday": "Tuesday", "start": "09:00", "end": "25:00"},
			],
			"holidays": ["2026-13-01"],
		}
		with pytest.raises(RuleError) as caught:
			compile_calendar(spec)
		assert [str(problem) for problem in caught.value.problems] == [
			"calendar.hours[0]: start 17:00 is not before end 09:00",
			'calendar.hours[1]: "Funday" is not a weekday',
			"calendar.hours[3]: overlaps calendar.hours[2] on Monday",
			'calendar.hours[4].end: "25:00" is not a time of day (expected HH:MM or HH:MM:SS)',
			'calendar.holidays[0]: "2026-13-01" is not a date',
		]
		funday = caught.value.problems[1]
		assert (funday.path, funday.field, funday.value) == ("calendar.hours[1]", "weekday", "Funday")
		bad_end = caught.value.problems[3]
		assert (bad_end.path, bad_end.field, bad_end.value) == ("calendar.hours[4].end", "end", "25:00")


# Property tests: random calendars at minute resolution, random moments at second resolution.

FIRST_DAY = datetime.date(2026, 3, 2)
HOLIDAY_RANGE_END = datetime.date(2026, 5, 31)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


class ModelCalendar:
	"""The random calendar as plain minutes, kept beside the compiled one so a test can compute the
	expected working time the slow, obvious way."""

	def __init__(self, intervals_by_weekday, holidays):
		self.intervals_by_weekday = intervals_by_weekday
		self.holidays = holidays
		hours = [
			{"weekday": WEEKDAYS[weekday], "start": _clock(start), "end": _clock(end)}
			for weekday, intervals in intervals_by_weekday.items()
			for start, end in intervals
		]
		spec = {"mode": "Working Hours", "hours": hours, "holidays": [day.isoformat() for day in holidays]}
		self.compiled = compile_calendar(spec)

	def __repr__(self):
		return f"ModelCalendar({self.intervals_by_weekday!r}, {sorted(self.holidays)!r})"

	def elapsed_day_by_day(self, start, end):
		worked = ZERO
		day = start.date()
		while day <= end.date():
			if day not in self.holidays:
				midnight = datetime.datetime.combine(day, datetime.time())
				for first_minute, stop_minute in self.intervals_by_weekday.get(day.weekday(), ()):
					overlap_start = max(start, midnight + first_minute * MINUTE)
					overlap_end = min(end, midnight + stop_minute * MINUTE)
					worked += max(ZERO, overlap_end - overlap_start)
			day += datetime.timedelta(days=1)
		return worked


def _clock(minutes):
	return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def calendars(draw):
	working_weekdays = draw(st.sets(st.integers(0, 6), min_size=1))
	intervals_by_weekday = {}
	for weekday in sorted(working_weekdays):
		boundary_count = draw(st.sampled_from((2, 4)))
		minutes_of_day = st.integers(0, 24 * 60)
		boundaries = sorted(
			draw(st.lists(minutes_of_day, min_size=boundary_count, max_size=boundary_count, unique=True))
		)
		intervals_by_weekday[weekday] = list(zip(boundaries[::2], boundaries[1::2], strict=True))
	holidays = draw(st.sets(st.dates(min_value=FIRST_DAY, max_value=HOLIDAY_RANGE_END), max_size=15))
	return ModelCalendar(intervals_by_weekday, holidays)


moments = st.integers(0, 28 * 24 * 3600).map(lambda seconds: at(MON, 0) + datetime.timedelta(seconds=seconds))
durations = st.integers(0, 200 * 3600).map(lambda seconds: datetime.timedelta(seconds=seconds))


class TestProperties:
	@PROPERTY_SETTINGS
	@given(calendars(), moments, durations, durations)
	def test_deadline_grows_with_the_duration(self, model, start, duration, other_duration):
		shorter, longer = sorted((duration, other_duration))
		assert model.compiled.deadline(start, shorter) <= model.compiled.deadline(start, longer)

	@PROPERTY_SETTINGS
	@given(calendars(), moments, moments, durations)
	def test_deadline_grows_with_the_start(self, model, start, other_start, duration):
		earlier, later = sorted((start, other_start))
		assert model.compiled.deadline(earlier, duration) <= model.compiled.deadline(later, duration)

	@PROPERTY_SETTINGS
	@given(calendars(), moments, moments, moments)
	def test_elapsed_grows_with_the_end(self, model, start, end, other_end):
		earlier, later = sorted((end, other_end))
		assert model.compiled.elapsed(start, earlier) <= model.compiled.elapsed(start, later)

	@PROPERTY_SETTINGS
	@given(calendars(), moments, durations)
	def test_elapsed_inverts_deadline_exactly(self, model, start, duration):
		assert model.compiled.elapsed(start, model.compiled.deadline(start, duration)) == duration

	@PROPERTY_SETTINGS
	@given(calendars(), moments, durations)
	def test_deadline_is_the_earliest_moment_the_duration_is_used_up(self, model, start, duration):
		assume(duration > ZERO)
		due = model.compiled.deadline(start, duration)
		assert model.compiled.elapsed(start, due - datetime.timedelta(microseconds=1)) < duration

	@PROPERTY_SETTINGS
	@given(calendars(), moments, moments)
	def test_deadline_of_elapsed_comes_no_later_than_the_end(self, model, start, end):
		worked = model.compiled.elapsed(start, end)
		due = model.compiled.deadline(start, worked)
		assert model.compiled.elapsed(start, due) == worked
		if worked:
			assert due <= end
		else:
			# A zero duration means the next working moment, which may lie after ``end``.
			assert due == model.compiled.next_working_moment(start)

	@PROPERTY_SETTINGS
	@given(calendars(), moments, moments, moments)
	def test_elapsed_adds_up_over_consecutive_spans(self, model, first, second, third):
		a, b, c = sorted((first, second, third))
		assert model.compiled.elapsed(a, c) == model.compiled.elapsed(a, b) + model.compiled.elapsed(b, c)

	@PROPERTY_SETTINGS
	@given(calendars(), moments, moments)
	def test_elapsed_matches_a_day_by_day_count(self, model, first, second):
		start, end = sorted((first, second))
		assert model.compiled.elapsed(start, end) == model.elapsed_day_by_day(start, end)

	@PROPERTY_SETTINGS
	@given(calendars(), moments)
	def test_next_working_moment_is_working_and_nothing_before_it_is(self, model, moment):
		following = model.compiled.next_working_moment(moment)
		assert following >= moment
		assert model.compiled.is_working(following)
		assert model.compiled.elapsed(moment, following) == ZERO
		assert model.compiled.deadline(moment, ZERO) == following
