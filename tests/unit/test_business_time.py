"""Business time: open hours in a team's zone, across DST, holidays and closed dates, checked by
examples and by properties against an independent minute-by-minute reference."""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake.config import Calendar, Holidays, Policy, Team
from intake.hours import CalendarInvalidError, Weekday
from intake.sla import BusinessCalendar, CalendarNeverOpensError, calendar_for
from tests.depth import examples

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"
LORD_HOWE = "Australia/Lord_Howe"
ZONES = [PARIS, NEW_YORK, LORD_HOWE, "Asia/Kolkata", "UTC"]
WEEKDAYS: list[Weekday] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SPLIT_SHIFT = ["09:00-12:30", "13:30-18:00"]
MINUTE = timedelta(minutes=1)
MICROSECOND = timedelta(microseconds=1)


def at(zone: str, text: str) -> datetime:
    """A wall-clock time in `zone` (first occurrence when repeated)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def business(zone: str, **calendar: object) -> BusinessCalendar:
    return BusinessCalendar.from_policy(zone, Calendar.model_validate(calendar))


def paris_office(**extra: object) -> BusinessCalendar:
    """Mon-Fri 09:00-12:30 and 13:30-18:00 in Paris, French public holidays."""
    hours = {day: SPLIT_SHIFT for day in WEEKDAYS[:5]}
    return business(PARIS, hours=hours, holidays={"country": "FR"}, **extra)


def sundays(zone: str, *intervals: str) -> BusinessCalendar:
    return business(zone, hours={"sun": list(intervals)})


# ---------------------------------------------------------------------------------------- examples


def test_friday_evening_deadline_rolls_over_the_weekend_and_the_lunch_break() -> None:
    # Given the Paris split shift and a message on Friday evening, after closing
    office = paris_office()
    friday_evening = at(PARIS, "2026-03-06 19:30")
    # When 4 business hours are added, Then Monday's morning (3h30) and half an hour after lunch are used
    assert office.add(friday_evening, timedelta(hours=4)) == at(PARIS, "2026-03-09 14:00")
    # And a deadline that uses the morning up exactly falls at its closing, not after lunch
    assert office.add(friday_evening, timedelta(hours=3, minutes=30)) == at(PARIS, "2026-03-09 12:30")
    assert office.next_open(friday_evening) == at(PARIS, "2026-03-09 09:00")
    assert office.between(friday_evening, at(PARIS, "2026-03-09 14:00")) == timedelta(hours=4)
    assert office.is_open(at(PARIS, "2026-03-09 12:59")) is False


def test_deadline_started_friday_afternoon_keeps_the_hour_before_closing() -> None:
    office = paris_office()
    assert office.add(at(PARIS, "2026-03-06 17:00"), timedelta(hours=5)) == at(PARIS, "2026-03-09 14:00")


@pytest.mark.parametrize(
    ("start", "holiday", "due"),
    [
        pytest.param("2026-12-24 17:00", "2026-12-25", "2026-12-28 10:00", id="christmas"),
        pytest.param("2026-12-31 17:00", "2027-01-01", "2027-01-04 10:00", id="new-year"),
    ],
)
def test_french_public_holiday_is_skipped(start: str, holiday: str, due: str) -> None:
    # Given a Thursday afternoon before a Friday public holiday, When 2 business hours are added,
    # Then Thursday's last hour is used, the holiday and the weekend skipped, Monday's first hour used
    office = paris_office()
    assert office.add(at(PARIS, start), timedelta(hours=2)) == at(PARIS, due)
    assert not office.is_open(at(PARIS, f"{holiday} 10:00"))


def test_closed_date_is_skipped() -> None:
    office = paris_office(closed_dates=[date(2026, 3, 10)])
    assert office.add(at(PARIS, "2026-03-09 17:00"), timedelta(hours=2)) == at(PARIS, "2026-03-11 10:00")
    assert not office.is_open(at(PARIS, "2026-03-10 10:00"))


def test_open_date_opens_a_sunday_with_its_own_hours() -> None:
    office = paris_office(open_dates=[date(2026, 3, 8)], open_dates_hours=["10:00-16:00"])
    assert office.add(at(PARIS, "2026-03-06 17:30"), timedelta(hours=1)) == at(PARIS, "2026-03-08 10:30")
    assert office.between(at(PARIS, "2026-03-08 00:00"), at(PARIS, "2026-03-09 00:00")) == timedelta(hours=6)


def test_open_date_wins_over_a_public_holiday() -> None:
    office = paris_office(open_dates=[date(2026, 12, 25)])
    assert office.is_open(at(PARIS, "2026-12-25 10:00"))
    assert not office.is_open(at(PARIS, "2026-12-25 08:59"))
    assert not office.is_open(at(PARIS, "2026-12-25 17:00"))  # open_dates_hours default to 09:00-17:00


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        pytest.param(NEW_YORK, "2026-03-08", 23, id="new-york-spring-forward"),
        pytest.param(NEW_YORK, "2026-11-01", 25, id="new-york-fall-back"),
        pytest.param(PARIS, "2026-03-29", 23, id="paris-spring-forward"),
        pytest.param(PARIS, "2026-10-25", 25, id="paris-fall-back"),
        pytest.param(LORD_HOWE, "2026-10-04", 23.5, id="lord-howe-spring-forward"),
        pytest.param(LORD_HOWE, "2026-04-05", 24.5, id="lord-howe-fall-back"),
    ],
)
def test_a_whole_day_is_as_long_as_it_really_is(zone: str, day: str, hours: float) -> None:
    calendar = sundays(zone, "00:00-24:00")
    start = at(zone, f"{day} 00:00")
    end = at(zone, day + " 00:00") + timedelta(days=1)  # wall-clock arithmetic: next midnight
    assert calendar.between(start - timedelta(days=1), end + timedelta(days=1)) == timedelta(hours=hours)
    assert list(calendar.intervals(start, end + timedelta(days=1))) == [(start.astimezone(UTC), end.astimezone(UTC))]


def test_new_york_interval_starting_in_the_spring_forward_gap_starts_when_the_clock_jumps() -> None:
    # Given Sunday 02:30-04:00 and a day whose clocks jump from 02:00 EST to 03:00 EDT
    calendar = sundays(NEW_YORK, "02:30-04:00")
    # Then it opens at 03:00 EDT (07:00 UTC), the first instant after the gap, for one real hour
    assert list(calendar.intervals(utc("2026-03-07 00:00"), utc("2026-03-10 00:00"))) == [
        (utc("2026-03-08 07:00"), utc("2026-03-08 08:00"))
    ]
    assert not calendar.is_open(utc("2026-03-08 06:59:59"))
    assert calendar.next_open(utc("2026-03-08 06:00")) == utc("2026-03-08 07:00")


def test_paris_interval_across_the_spring_forward_gap_is_an_hour_shorter() -> None:
    calendar = sundays(PARIS, "01:00-04:00", "02:15-02:45")  # the second lies wholly in the gap
    assert list(calendar.intervals(utc("2026-03-28 00:00"), utc("2026-03-30 00:00"))) == [
        (utc("2026-03-29 00:00"), utc("2026-03-29 02:00"))  # 01:00 CET to 04:00 CEST
    ]


def test_new_york_interval_across_the_fall_back_includes_the_repeated_hour() -> None:
    calendar = sundays(NEW_YORK, "01:00-03:00")  # 01:00 EDT (05:00 UTC) to 03:00 EST (08:00 UTC)
    assert calendar.add(at(NEW_YORK, "2026-11-01 00:00"), timedelta(hours=3)) == utc("2026-11-01 08:00")
    assert calendar.between(utc("2026-11-01 00:00"), utc("2026-11-02 00:00")) == timedelta(hours=3)


def test_repeated_wall_time_means_its_first_occurrence() -> None:
    # Given 01:00-01:30 on the day New York repeats 01:00-02:00, Then only the first half hour is open
    calendar = sundays(NEW_YORK, "01:00-01:30")
    assert list(calendar.intervals(utc("2026-11-01 00:00"), utc("2026-11-02 00:00"))) == [
        (utc("2026-11-01 05:00"), utc("2026-11-01 05:30"))
    ]
    second_0110 = datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=ZoneInfo(NEW_YORK))
    assert not calendar.is_open(second_0110)


def test_paris_fall_back_adds_an_hour_to_a_shift_spanning_it() -> None:
    calendar = sundays(PARIS, "01:00-04:00")  # 01:00 CEST (23:00 UTC) to 04:00 CET (03:00 UTC)
    assert calendar.between(utc("2026-10-24 00:00"), utc("2026-10-26 00:00")) == timedelta(hours=4)
    assert calendar.next_open(utc("2026-10-24 12:00")) == utc("2026-10-24 23:00")


def test_touching_intervals_of_two_days_come_out_as_one() -> None:
    calendar = business("Asia/Kolkata", hours={"mon": ["20:00-24:00"], "tue": ["00:00-02:00", "02:00-03:00"]})
    start, end = at("Asia/Kolkata", "2026-03-09 00:00"), at("Asia/Kolkata", "2026-03-11 00:00")
    assert list(calendar.intervals(start, end)) == [
        (at("Asia/Kolkata", "2026-03-09 20:00").astimezone(UTC), at("Asia/Kolkata", "2026-03-10 03:00").astimezone(UTC))
    ]


def test_zero_duration_is_the_start_when_open_and_the_next_opening_when_closed() -> None:
    office = paris_office()
    open_instant = at(PARIS, "2026-03-09 10:00")
    assert office.add(open_instant, timedelta(0)) == open_instant
    assert office.add(at(PARIS, "2026-03-09 12:30"), timedelta(0)) == at(PARIS, "2026-03-09 13:30")


def test_results_are_utc_whatever_the_input_zone() -> None:
    office = paris_office()
    due = office.add(at(NEW_YORK, "2026-03-09 03:00"), timedelta(hours=1))  # 08:00 Paris: opens 09:00
    assert due.tzinfo is UTC
    assert due == at(PARIS, "2026-03-09 10:00")
    assert office.next_open(at(PARIS, "2026-03-09 10:00")).tzinfo is UTC


def test_always_open_team_is_plain_arithmetic() -> None:
    calendar = BusinessCalendar.from_policy(NEW_YORK, None)
    start = at(NEW_YORK, "2026-03-08 01:00")
    assert calendar.always_open
    assert calendar.add(start, timedelta(hours=5)) == start.astimezone(UTC) + timedelta(hours=5)
    assert calendar.between(start, start.astimezone(UTC) + timedelta(days=2)) == timedelta(days=2)
    assert calendar.between(start, start.astimezone(UTC) - timedelta(days=2)) == timedelta(0)


def test_team_calendar_comes_from_the_policy_file(policy: Policy) -> None:
    # Given the shipped team `support` (Paris, closes 17:00 on Fridays), When 1 hour is added at 16:30 Friday,
    # Then half an hour is left for Monday morning
    calendar = calendar_for(policy.teams["support"])
    assert calendar.timezone == PARIS
    assert calendar.add(at(PARIS, "2026-03-06 16:30"), timedelta(hours=1)) == at(PARIS, "2026-03-09 09:30")
    assert calendar_for(Team(name="Night desk")).always_open


def test_calendar_without_open_time_raises_instead_of_looping() -> None:
    closed = business(PARIS, hours={"mon": []})
    start = at(PARIS, "2026-03-09 10:00")
    with pytest.raises(CalendarNeverOpensError):
        closed.add(start, timedelta(hours=1))
    with pytest.raises(CalendarNeverOpensError):
        closed.next_open(start)
    assert not closed.is_open(start)
    assert closed.between(start, start + timedelta(days=30)) == timedelta(0)


def test_open_date_beyond_the_horizon_counts_as_never_open() -> None:
    near = business(PARIS, hours={"mon": []}, open_dates=[date(2026, 9, 1)])
    far = business(PARIS, hours={"mon": []}, open_dates=[date(2028, 9, 1)])
    start = at(PARIS, "2026-03-09 10:00")
    assert near.next_open(start) == at(PARIS, "2026-09-01 09:00")
    with pytest.raises(CalendarNeverOpensError):
        far.next_open(start)


def test_naive_datetimes_and_negative_durations_are_refused() -> None:
    office = paris_office()
    naive = datetime(2026, 3, 9, 10, 0)
    aware = at(PARIS, "2026-03-09 10:00")
    for call in (
        lambda: office.is_open(naive),
        lambda: office.next_open(naive),
        lambda: office.add(naive, timedelta(hours=1)),
        lambda: office.between(naive, aware),
        lambda: office.intervals(aware, naive),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()
    with pytest.raises(ValueError, match="negative"):
        office.add(aware, timedelta(seconds=-1))


@pytest.mark.parametrize(
    ("zone", "calendar", "where"),
    [
        pytest.param(PARIS, {"hours": {"mon": ["18:00-09:00"]}}, "hours.mon", id="backwards-interval"),
        pytest.param(PARIS, {"hours": {"mon": ["09:00-24:30"]}}, "hours.mon", id="past-midnight"),
        pytest.param(
            PARIS, {"hours": {"mon": []}, "open_dates_hours": ["10:00-10:00"]}, "open_dates_hours", id="empty"
        ),
        pytest.param(PARIS, {"hours": {"mon": []}, "holidays": {"country": "XX"}}, "holidays", id="unknown-country"),
        pytest.param(
            PARIS, {"hours": {"mon": []}, "holidays": {"country": "FR", "subdivision": "ZZ"}}, "holidays", id="subdiv"
        ),
        pytest.param(
            PARIS,
            {"hours": {"mon": []}, "open_dates": ["2026-05-01"], "closed_dates": ["2026-05-01"]},
            "open_dates",
            id="open-and-closed",
        ),
        pytest.param("Mars/Olympus_Mons", {"hours": {"mon": []}}, "timezone", id="unknown-zone"),
    ],
)
def test_unusable_calendar_is_refused_with_its_path(zone: str, calendar: dict[str, object], where: str) -> None:
    with pytest.raises(CalendarInvalidError) as raised:
        BusinessCalendar.from_policy(zone, Calendar.model_validate(calendar))
    assert raised.value.where == where


def test_a_country_is_known_without_building_its_holidays_exactly_when_holidays_builds_it() -> None:
    # Given every two-letter code (a policy's `holidays.country`), When the policy's check asks the registry only
    # (`hours._listed`, what a cold start does for a calendar without a subdivision), Then it accepts exactly the
    # codes `holidays.country_holidays` builds a table for
    from itertools import product
    from string import ascii_uppercase

    from intake import hours

    codes = ["".join(pair) for pair in product(ascii_uppercase, repeat=2)]
    built = set()
    for code in codes:
        try:
            holidays.country_holidays(code)
        except NotImplementedError:
            continue
        built.add(code)

    assert {code for code in codes if hours._listed(holidays, code)} == built
    assert "FR" in built


def test_long_durations_walk_whole_intervals_not_minutes() -> None:
    # Given the Paris office (40 business hours a week), When 200 hours are added from a Monday's opening,
    # Then five whole weeks are used, and 10 000 hours (five years) take well under a second
    office = paris_office()
    monday = at(PARIS, "2026-03-02 09:00")
    assert office.add(monday, timedelta(hours=200)) == at(PARIS, "2026-04-03 18:00")
    started = clock.perf_counter()
    due = paris_office().add(monday, timedelta(hours=10_000))
    assert clock.perf_counter() - started < 1.0
    assert paris_office().between(monday, due) == timedelta(hours=10_000)


# ---------------------------------------------------------------------------------------- properties

# The instants at which each zone changes its clocks in 2026 (all on a local Sunday), and other days
CHANGES = {
    PARIS: [utc("2026-03-29 01:00"), utc("2026-10-25 01:00")],
    NEW_YORK: [utc("2026-03-08 07:00"), utc("2026-11-01 06:00")],
    LORD_HOWE: [utc("2026-10-03 15:30"), utc("2026-04-04 15:00")],
}
OTHER_DAYS = [utc("2026-12-24 12:00"), utc("2026-12-31 12:00"), utc("2026-06-15 12:00")]  # French holidays, June
BASES = [instant for changes in CHANGES.values() for instant in changes] + OTHER_DAYS
HOLIDAY_REGIONS = [None, Holidays(country="FR"), Holidays(country="US", subdivision="NY")]
HOLIDAY_REGIONS += [Holidays(country="AU", subdivision="NSW"), Holidays(country="IN")]
WINDOW_MINUTES = 9 * 24 * 60


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def day_hours(draw: st.DrawFn) -> list[str]:
    """1 to 3 disjoint intervals on a 15-minute grid, "24:00" allowed; half the bounds between 01:00 and
    03:00, where the clocks of the zones under test skip or repeat time."""
    count = draw(st.integers(1, 3))
    bound = st.one_of(st.integers(0, 96), st.integers(4, 12))
    bounds = sorted(draw(st.lists(bound, min_size=2 * count, max_size=2 * count, unique=True)))
    return [f"{hhmm(15 * a)}-{hhmm(15 * b)}" for a, b in zip(bounds[::2], bounds[1::2], strict=True)]


@dataclass(frozen=True)
class Scenario:
    zone: str
    calendar: Calendar
    start: datetime  # minute-aligned, UTC, within a few days of a DST change

    @property
    def business(self) -> BusinessCalendar:
        return BusinessCalendar.from_policy(self.zone, self.calendar)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    zone = draw(st.sampled_from(ZONES))
    # mostly a few days before one of the zone's clock changes, so that the window and offsets cross it
    start = draw(st.sampled_from(CHANGES.get(zone, BASES))) + draw(st.integers(-5 * 1440, 1440)) * MINUTE
    near = st.integers(-3, 12).map(lambda days: start.date() + timedelta(days=days))
    days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
    if draw(st.booleans()) and "sun" not in days:  # clocks change on Sundays
        days.append("sun")
    closed = draw(st.lists(near, max_size=3, unique=True))
    opened = [day for day in draw(st.lists(near, max_size=2, unique=True)) if day not in closed]
    calendar = Calendar(
        hours={day: draw(day_hours()) for day in days},
        holidays=draw(st.sampled_from(HOLIDAY_REGIONS)),
        closed_dates=closed,
        open_dates=opened,
        open_dates_hours=draw(day_hours()),
    )
    return Scenario(zone, calendar, start)


durations = st.integers(0, 60 * 3600 * 10**6).map(lambda us: timedelta(microseconds=us))
offsets = st.integers(0, 3 * 24 * 3600 * 10**6).map(lambda us: timedelta(microseconds=us))
near_changes = st.builds(
    lambda base, us: base + timedelta(microseconds=us),
    st.sampled_from(BASES),
    st.integers(-2 * 86400 * 10**6, 86400 * 10**6),
)


class Reference:
    """Open time minute by minute, from the policy alone: a minute is open when the highest reading of
    the team's clock so far (so a repeated hour keeps reading its last wall time, and a skipped one is
    never read) falls in that local day's hours."""

    def __init__(self, scenario: Scenario) -> None:
        self.start = scenario.start
        zone, calendar = ZoneInfo(scenario.zone), scenario.calendar
        region = calendar.holidays
        public: set[date] = set()
        if region is not None:
            public = set(holidays.country_holidays(region.country, subdiv=region.subdivision, years=[2025, 2026, 2027]))

        def hours_on(day: date) -> list[tuple[int, int]]:
            if day in calendar.open_dates:
                texts = calendar.open_dates_hours
            elif day in calendar.closed_dates or day in public:
                texts = []
            else:
                texts = calendar.hours.get(WEEKDAYS[day.weekday()], [])
            spans = [text.split("-") for text in texts]
            return [(int(a[:2]) * 60 + int(a[3:]), int(b[:2]) * 60 + int(b[3:])) for a, b in spans]

        self.open: list[bool] = []
        highest: datetime | None = None
        by_day: dict[date, list[tuple[int, int]]] = {}
        for minute in range(-1440, WINDOW_MINUTES):
            wall = (self.start + minute * MINUTE).astimezone(zone).replace(tzinfo=None)
            highest = wall if highest is None or wall > highest else highest
            if minute >= 0:
                spans = by_day.get(highest.date())
                if spans is None:
                    spans = by_day[highest.date()] = hours_on(highest.date())
                of_day = highest.hour * 60 + highest.minute
                self.open.append(any(a <= of_day < b for a, b in spans))

    def instant(self, minute: int) -> datetime:
        return self.start + minute * MINUTE

    def runs(self) -> list[tuple[datetime, datetime]]:
        found, first = [], None
        for minute, is_open in enumerate([*self.open, False]):
            if is_open and first is None:
                first = minute
            elif not is_open and first is not None:
                found.append((self.instant(first), self.instant(minute)))
                first = None
        return found

    def add(self, start: int, minutes: int) -> int | None:
        """The minute index of the deadline, or None when it lies beyond the window."""
        for minute in range(start, WINDOW_MINUTES):
            if self.open[minute]:
                if minutes == 0:
                    return minute
                minutes -= 1
                if minutes == 0:
                    return minute + 1
        return None


@settings(max_examples=examples(60), deadline=None)
@given(scenarios(), st.data())
def test_agrees_with_a_minute_by_minute_reference(scenario: Scenario, data: st.DataObject) -> None:
    reference, calendar = Reference(scenario), scenario.business
    window_end = reference.instant(WINDOW_MINUTES)
    # the whole open set of the window
    assert list(calendar.intervals(scenario.start, window_end)) == reference.runs()
    for _ in range(5):
        start = data.draw(st.integers(0, WINDOW_MINUTES - 1))
        minutes = data.draw(st.integers(0, 3000))
        assert calendar.is_open(reference.instant(start)) is reference.open[start]
        due = calendar.add(reference.instant(start), minutes * MINUTE)
        expected = reference.add(start, minutes)
        if expected is None:
            assert due > window_end or (minutes == 0 and due >= window_end)
        else:
            assert due == reference.instant(expected)
        end = data.draw(st.integers(start, WINDOW_MINUTES))
        counted = sum(reference.open[start:end])
        assert calendar.between(reference.instant(start), reference.instant(end)) == counted * MINUTE


@settings(max_examples=examples(80), deadline=None)
@given(scenarios(), offsets, durations, durations)
def test_adding_in_two_steps_is_adding_the_sum(
    scenario: Scenario, offset: timedelta, a: timedelta, b: timedelta
) -> None:
    calendar, start = scenario.business, scenario.start + offset
    first = calendar.add(start, a)
    if b > timedelta(0):
        assert calendar.add(first, b) == calendar.add(start, a + b)
    # with b == 0 the second step only moves a deadline that fell at a closing time to the next opening
    assert calendar.add(first, timedelta(0)) == calendar.next_open(first)


@settings(max_examples=examples(80), deadline=None)
@given(scenarios(), offsets, durations, durations)
def test_a_longer_duration_never_ends_earlier(
    scenario: Scenario, offset: timedelta, a: timedelta, b: timedelta
) -> None:
    calendar, start = scenario.business, scenario.start + offset
    shorter, longer = sorted([a, b])
    assert calendar.add(start, shorter) <= calendar.add(start, longer)
    assert calendar.add(start, shorter) >= start


@settings(max_examples=examples(80), deadline=None)
@given(scenarios(), offsets, durations)
def test_business_time_up_to_a_deadline_is_its_duration(scenario: Scenario, offset: timedelta, d: timedelta) -> None:
    calendar, start = scenario.business, scenario.start + offset
    due = calendar.add(start, d)
    assert calendar.between(start, due) == d
    assert sum((end - begin for begin, end in calendar.intervals(start, due)), timedelta(0)) == d


@settings(max_examples=examples(80), deadline=None)
@given(scenarios(), offsets, durations)
def test_deadlines_never_fall_inside_closed_time(scenario: Scenario, offset: timedelta, d: timedelta) -> None:
    calendar, start = scenario.business, scenario.start + offset
    due = calendar.add(start, d)
    if d > timedelta(0):
        assert calendar.is_open(due - MICROSECOND)
    else:
        assert due == calendar.next_open(start)
        assert calendar.is_open(due)
        assert calendar.between(start, due) == timedelta(0)


@settings(max_examples=examples(60), deadline=None)
@given(scenarios(), offsets, offsets, offsets)
def test_business_time_adds_up_over_consecutive_ranges(
    scenario: Scenario, first: timedelta, second: timedelta, third: timedelta
) -> None:
    calendar = scenario.business
    a, b, c = sorted(scenario.start + offset for offset in (first, second, third))
    assert calendar.between(a, c) == calendar.between(a, b) + calendar.between(b, c)
    assert calendar.between(c, a) == timedelta(0)


@settings(max_examples=examples(60), deadline=None)
@given(st.sampled_from(ZONES), near_changes, durations, st.booleans())
def test_always_open_calendar_is_plain_timedelta_arithmetic(
    zone: str, instant: datetime, d: timedelta, configured: bool
) -> None:
    # Given no calendar, or one open 00:00-24:00 every day (its days 23, 23.5, 24, 24.5 or 25 hours long)
    full_week = Calendar(hours={day: ["00:00-24:00"] for day in WEEKDAYS})
    calendar = BusinessCalendar.from_policy(zone, full_week if configured else None)
    start = instant.astimezone(ZoneInfo(zone))  # given in the team's zone; the arithmetic below is in UTC
    assert calendar.add(start, d) == instant + d
    assert calendar.between(start, instant + d) == d
    assert calendar.is_open(start)
    assert calendar.next_open(start) == instant
    assert list(calendar.intervals(start, instant + d)) == ([(instant, instant + d)] if d else [])
