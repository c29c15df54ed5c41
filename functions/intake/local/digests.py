"""The digest schedule on one machine: what EventBridge Scheduler does in AWS (one schedule per team x period, at
the team's local time), as one thread of `intake serve`'s worker process.

At each instant it calls the digest function's own handler with the event Scheduler sends (`{team, period}`).
The last instant fired is kept per schedule in `timers.db`, so a restart runs a schedule it missed while down
once (publishing is once per window anyway: the digest claims its window); the very first start fires nothing
until the next instant.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from intake.config import Policy
from intake.local.gateway import LocalContext
from intake.local.workers import INVOCATION
from intake.observability import logger

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCHEMA = "CREATE TABLE IF NOT EXISTS digest_runs (team TEXT, period TEXT, fired_at REAL, PRIMARY KEY (team, period))"


@dataclass(frozen=True)
class Schedule:
    team: str
    period: str  # daily | weekly
    at: time  # local time
    timezone: str
    weekday: int | None = None  # weekly: 0 = Monday

    def latest(self, now: datetime) -> datetime:
        """The last instant at or before `now` this schedule fires at."""
        zone = ZoneInfo(self.timezone)
        day = now.astimezone(zone).date()
        for back in range(8):
            candidate = self._instant(day - timedelta(days=back), zone)
            if candidate <= now and (self.weekday is None or candidate.astimezone(zone).weekday() == self.weekday):
                return candidate
        raise AssertionError("a schedule fires at least weekly")  # pragma: no cover

    def following(self, now: datetime) -> datetime:
        """The first instant after `now`."""
        zone = ZoneInfo(self.timezone)
        day = now.astimezone(zone).date()
        for ahead in range(9):
            candidate = self._instant(day + timedelta(days=ahead), zone)
            if candidate > now and (self.weekday is None or candidate.astimezone(zone).weekday() == self.weekday):
                return candidate
        raise AssertionError("a schedule fires at least weekly")  # pragma: no cover

    def _instant(self, day: date, zone: ZoneInfo) -> datetime:
        return datetime.combine(day, self.at, zone).astimezone(UTC)


def schedules(policy: Policy) -> list[Schedule]:
    """Each team's enabled digests, as the stack makes Scheduler schedules of them (`infra/constructs/digests.py`)."""
    found = []
    for team_id, team in sorted(policy.teams.items()):
        daily, weekly = team.digests.daily, team.digests.weekly
        if daily is not None:
            found.append(Schedule(team_id, "daily", time.fromisoformat(daily.at), team.timezone))
        if weekly is not None:
            day = _WEEKDAYS.index(weekly.day)
            found.append(Schedule(team_id, "weekly", time.fromisoformat(weekly.at), team.timezone, day))
    return found


class DigestClock(threading.Thread):
    def __init__(
        self,
        path: Path,
        policy: Policy,
        handler: Callable[[dict[str, Any], Any], Any],
        stop: threading.Event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(name="digest-schedule", daemon=True)
        self._path, self._schedules, self._handler = path, schedules(policy), handler
        self._stopping, self._clock = stop, clock
        with sqlite3.connect(path, timeout=30) as db:
            db.execute(_SCHEMA)

    def run(self) -> None:
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        while not self._stopping.is_set():
            now = self._clock()
            try:
                upcoming = [self.run_due(db, schedule, now) for schedule in self._schedules]
            except sqlite3.Error:  # timers.db busy or full: the next round tries again
                logger.exception("digest schedule unavailable")
                upcoming = [now + timedelta(minutes=1)]
            wait = min((at - self._clock()).total_seconds() for at in upcoming) if upcoming else 3600.0
            self._stopping.wait(min(max(wait, 0.0), 60.0))  # at least every minute: the clock may jump

    def run_due(self, db: sqlite3.Connection, schedule: Schedule, now: datetime) -> datetime:
        """Fire `schedule` if an instant of it passed since it last fired; returns its next instant."""
        row = db.execute(
            "SELECT fired_at FROM digest_runs WHERE team = ? AND period = ?", (schedule.team, schedule.period)
        ).fetchone()
        latest = schedule.latest(now)
        if row is None:  # first start: from now on
            self._record(db, schedule, now)
        elif latest.timestamp() > row[0]:
            try:
                with INVOCATION:
                    self._handler(
                        {"team": schedule.team, "period": schedule.period},
                        LocalContext("digest", uuid.uuid4().hex),
                    )
            except Exception:  # as Scheduler's retry would: the next round tries again
                logger.exception("digest failed; retried", extra={"team": schedule.team, "period": schedule.period})
                return now + timedelta(minutes=1)
            self._record(db, schedule, now)
        return schedule.following(now)

    @staticmethod
    def _record(db: sqlite3.Connection, schedule: Schedule, at: datetime) -> None:
        db.execute(
            "INSERT INTO digest_runs (team, period, fired_at) VALUES (?, ?, ?)"
            " ON CONFLICT (team, period) DO UPDATE SET fired_at = excluded.fired_at",
            (schedule.team, schedule.period, at.timestamp()),
        )
