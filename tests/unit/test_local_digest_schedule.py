"""The local digest schedule fires each team's digest at its local time, once, and catches up after a restart."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from intake.local.digests import DigestClock, Schedule, schedules
from intake.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
PARIS = "Europe/Paris"


def test_the_policys_digests_become_one_schedule_per_team_and_period() -> None:
    found = {(s.team, s.period): s for s in schedules(load_policy(ROOT / "intake.yaml"))}
    assert found[("support", "daily")].at == time(8, 30)
    assert (found[("support", "weekly")].at, found[("support", "weekly")].weekday) == (time(9, 0), 0)


def test_a_daily_digest_fires_at_local_time_across_the_dst_change() -> None:
    daily = Schedule("support", "daily", time(8, 30), PARIS)
    before = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Paris moves to summer time on the 29th
    first = daily.following(before)
    second = daily.following(first)
    assert first == datetime(2026, 3, 29, 6, 30, tzinfo=UTC)  # 08:30 CEST
    assert second.astimezone(ZoneInfo(PARIS)).hour == 8 and second - first == timedelta(days=1)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)))
def test_a_weekly_schedule_fires_on_its_day_at_its_local_time(now: datetime) -> None:
    weekly = Schedule("support", "weekly", time(9, 0), PARIS, weekday=0)
    latest, following = weekly.latest(now), weekly.following(now)
    assert latest <= now < following
    for instant in (latest, following):
        local = instant.astimezone(ZoneInfo(PARIS))
        assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert following - latest <= timedelta(days=7, hours=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_each_instant_fires_once_and_one_missed_while_down_fires_after_the_restart(tmp_path: Path) -> None:
    policy = load_policy(ROOT / "intake.yaml")
    calls: list[dict[str, Any]] = []
    clock = Clock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))  # a Tuesday, after 08:30 in Paris
    path = tmp_path / "timers.db"

    def run_once(digests: DigestClock) -> None:
        with sqlite3.connect(path, isolation_level=None) as db:
            for schedule in digests._schedules:
                digests.run_due(db, schedule, clock.now)

    digests = DigestClock(path, policy, lambda event, context: calls.append(event), threading.Event(), clock)
    # Given a first start: nothing is sent for instants before it
    run_once(digests)
    assert calls == []
    # When the next morning's instant passes: the daily digest, once
    clock.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    run_once(digests)
    run_once(digests)
    assert calls == [{"team": "support", "period": "daily"}]
    # And after a restart that missed Monday's weekly and that day's daily: each once
    clock.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    restarted = DigestClock(path, policy, lambda event, context: calls.append(event), threading.Event(), clock)
    run_once(restarted)
    run_once(restarted)
    assert calls[1:] == [{"team": "support", "period": "daily"}, {"team": "support", "period": "weekly"}]
