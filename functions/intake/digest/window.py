"""Which local days a digest covers: the last complete day or Monday-based week in the team's time zone.

Pure: the clock is an argument. A window is a run of the team's local dates; a ticket belongs to the
local date it was created on (what `by_day` indexes), so a ticket at 23:59 local is in that day's digest
whatever the UTC date, and a week with a DST change has 167 or 169 hours but still seven local days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from intake.config import Team

Period = Literal["daily", "weekly"]
PERIODS: tuple[Period, ...] = get_args(Period)
_DAYS: dict[Period, int] = {"daily": 1, "weekly": 7}
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class PeriodInvalidError(ValueError):
    def __init__(self, period: str) -> None:
        self.period = period
        super().__init__(f"unknown digest period {period!r}; one of {', '.join(PERIODS)}")


@dataclass(frozen=True)
class Window:
    """Local dates `start` to `end` (both included) in `timezone`, and the window of the same length before."""

    period: Period
    timezone: str
    start: date
    end: date
    previous_start: date
    previous_end: date

    @property
    def days(self) -> tuple[date, ...]:
        return _dates(self.start, self.end)

    @property
    def previous_days(self) -> tuple[date, ...]:
        return _dates(self.previous_start, self.previous_end)

    @property
    def starts_at(self) -> datetime:
        """The first instant of `start` on the team's wall clock, in UTC."""
        return local_midnight(self.start, self.timezone)

    @property
    def ends_at(self) -> datetime:
        """The first instant after `end` (the next local midnight), in UTC: the window is [starts_at, ends_at)."""
        return local_midnight(self.end + timedelta(days=1), self.timezone)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(ZoneInfo(self.timezone)).date()

    def contains(self, moment: datetime) -> bool:
        return self.start <= self.local_date(moment) <= self.end

    @property
    def key(self) -> str:
        """`<period>/<start>`: names the window in claims and archive keys."""
        return f"{self.period}/{self.start.isoformat()}"

    @property
    def label(self) -> str:
        """`Tue 1 Dec 2026`, or `Mon 30 Nov to Sun 6 Dec 2026` (an en dash between) for a week."""
        if self.start == self.end:
            return _day_label(self.start)
        first = _day_label(self.start, year=self.start.year != self.end.year)
        return f"{first} \u2013 {_day_label(self.end)}"


def window(team: Team, period: str, at: date | None, now: datetime) -> Window:
    """The last complete local day (`daily`) or Monday-to-Sunday week (`weekly`) before `now` in the team's
    time zone; with `at`, the day or week that contains that local date (complete or not)."""
    if period not in PERIODS:
        raise PeriodInvalidError(period)
    kind: Period = "daily" if period == "daily" else "weekly"
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    today = now.astimezone(ZoneInfo(team.timezone)).date()
    length = _DAYS[kind]
    if kind == "daily":
        start = at if at is not None else today - timedelta(days=1)
    else:
        anchor = at if at is not None else today - timedelta(days=7)
        start = anchor - timedelta(days=anchor.weekday())
    end = start + timedelta(days=length - 1)
    previous_start = start - timedelta(days=length)
    return Window(kind, team.timezone, start, end, previous_start, start - timedelta(days=1))


def local_midnight(day: date, timezone: str) -> datetime:
    """The first instant of local date `day`, in UTC. Where midnight does not exist (a DST change at 00:00),
    the day starts at the change: zoneinfo reads the skipped wall time with the offset before it."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _dates(first: date, last: date) -> tuple[date, ...]:
    return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))


def _day_label(day: date, *, year: bool = True) -> str:
    text = f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if year else text
