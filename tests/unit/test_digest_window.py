"""A digest's window: the team's local days, whatever UTC says, across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.config import Team
from intake.digest import PeriodInvalidError, window
from intake.digest.window import local_midnight

PARIS = Team(name="Support", timezone="Europe/Paris")
NEW_YORK = Team(name="Support US", timezone="America/New_York")
AUCKLAND = Team(name="Support NZ", timezone="Pacific/Auckland")
SANTIAGO = Team(name="Soporte", timezone="America/Santiago")  # DST changes at midnight


def local(team: Team, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(team.timezone))


def test_a_ticket_at_23_59_local_belongs_to_its_local_day_though_utc_says_the_next() -> None:
    # 23:59 in New York on 1 Dec is 04:59 UTC on 2 Dec
    span = window(NEW_YORK, "daily", date(2026, 12, 1), datetime(2026, 12, 5, tzinfo=UTC))
    late = local(NEW_YORK, "2026-12-01T23:59:00")

    assert late.astimezone(UTC).date() == date(2026, 12, 2)
    assert span.contains(late)
    assert not span.contains(late + timedelta(minutes=1))
    assert span.starts_at == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert span.ends_at == datetime(2026, 12, 2, 5, tzinfo=UTC)


def test_a_ticket_just_after_local_midnight_is_not_in_the_previous_day_though_utc_says_so() -> None:
    # 00:30 in Auckland on 2 Dec is 11:30 UTC on 1 Dec
    span = window(AUCKLAND, "daily", date(2026, 12, 1), datetime(2026, 12, 5, tzinfo=UTC))
    early = local(AUCKLAND, "2026-12-02T00:30:00")

    assert early.astimezone(UTC).date() == date(2026, 12, 1)
    assert not span.contains(early)


def test_daily_is_the_last_complete_local_day() -> None:
    # 00:10 on 2 Dec in Paris is still 1 Dec in UTC: the last complete local day is 1 Dec, not 30 Nov
    now = local(PARIS, "2026-12-02T00:10:00")
    span = window(PARIS, "daily", None, now)

    assert (span.start, span.end) == (date(2026, 12, 1), date(2026, 12, 1))
    assert (span.previous_start, span.previous_end) == (date(2026, 11, 30), date(2026, 11, 30))
    assert span.days == (date(2026, 12, 1),)


def test_weekly_is_the_last_complete_monday_to_sunday_week() -> None:
    now = local(PARIS, "2026-12-02T08:30:00")  # a Wednesday
    span = window(PARIS, "weekly", None, now)

    assert (span.start, span.end) == (date(2026, 11, 23), date(2026, 11, 29))
    assert (span.previous_start, span.previous_end) == (date(2026, 11, 16), date(2026, 11, 22))
    assert len(span.days) == 7 and span.days[0].weekday() == 0


def test_weekly_on_monday_morning_is_the_week_that_just_ended() -> None:
    span = window(PARIS, "weekly", None, local(PARIS, "2026-11-30T00:00:01"))
    assert (span.start, span.end) == (date(2026, 11, 23), date(2026, 11, 29))


def test_a_given_date_picks_the_week_that_contains_it() -> None:
    span = window(PARIS, "weekly", date(2026, 12, 3), datetime(2026, 11, 1, tzinfo=UTC))
    assert (span.start, span.end) == (date(2026, 11, 30), date(2026, 12, 6))
    assert span.label == "Mon 30 Nov \u2013 Sun 6 Dec 2026"


def test_the_week_clocks_go_back_is_169_hours_and_the_week_they_go_forward_167() -> None:
    autumn = window(PARIS, "weekly", date(2026, 10, 25), datetime(2026, 12, 1, tzinfo=UTC))
    spring = window(PARIS, "weekly", date(2026, 3, 29), datetime(2026, 12, 1, tzinfo=UTC))

    assert autumn.ends_at - autumn.starts_at == timedelta(hours=169)
    assert spring.ends_at - spring.starts_at == timedelta(hours=167)
    assert autumn.starts_at == datetime(2026, 10, 18, 22, tzinfo=UTC)  # Monday 00:00 CEST
    assert autumn.ends_at == datetime(2026, 10, 25, 23, tzinfo=UTC)  # the next Monday 00:00 CET
    # the hour that happens twice (02:00-03:00 on Sunday) is in the window both times
    assert autumn.contains(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    assert autumn.contains(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))


def test_a_day_whose_midnight_does_not_exist_starts_at_the_change() -> None:
    # Chile moves from 00:00 to 01:00 on the first Sunday of September
    start = local_midnight(date(2026, 9, 6), SANTIAGO.timezone)
    assert start.astimezone(ZoneInfo(SANTIAGO.timezone)).isoformat() == "2026-09-06T01:00:00-03:00"
    span = window(SANTIAGO, "daily", date(2026, 9, 6), datetime(2026, 12, 1, tzinfo=UTC))
    assert span.ends_at - span.starts_at == timedelta(hours=23)


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(PeriodInvalidError):
        window(PARIS, "monthly", None, datetime(2026, 12, 1, tzinfo=UTC))


ZONES = st.sampled_from(
    ["Europe/Paris", "America/New_York", "Pacific/Auckland", "America/Santiago", "Asia/Kolkata", "Australia/Lord_Howe"]
)
INSTANTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))


@given(zone=ZONES, moment=INSTANTS, period=st.sampled_from(["daily", "weekly"]))
def test_an_instant_is_in_the_window_of_its_local_date_exactly_when_it_is_between_its_bounds(
    zone: str, moment: datetime, period: str
) -> None:
    team = Team(name="t", timezone=zone)
    day = moment.astimezone(ZoneInfo(zone)).date()
    span = window(team, period, day, moment)

    assert span.contains(moment)
    assert span.starts_at <= moment < span.ends_at
    assert span.previous_end + timedelta(days=1) == span.start
    assert len(span.previous_days) == len(span.days) == (1 if period == "daily" else 7)


@given(zone=ZONES, now=INSTANTS, period=st.sampled_from(["daily", "weekly"]))
def test_the_default_window_is_complete_and_the_latest_one_before_now(zone: str, now: datetime, period: str) -> None:
    team = Team(name="t", timezone=zone)
    span = window(team, period, None, now)

    assert span.ends_at <= now  # complete
    following = window(team, period, span.end + timedelta(days=1), now)
    assert following.ends_at > now  # the next one is not complete yet
