"""Business time: when a team is open, and which real instant a business duration ends at.

A team's calendar is weekly wall-clock hours in its IANA time zone, minus public holidays (the
`holidays` package, for a country and subdivision) and extra closed dates, plus extra open dates.
Everything here is pure: no clock, no environment; instants in, timezone-aware UTC instants out.

How wall-clock hours become instants. A wall-clock time stands for the *first instant at which the
team's clock reads that time or later*:
- a time skipped by a spring-forward (02:30 in New York on the second Sunday of March) means the
  instant the clock jumps past it (03:00 EDT), so an interval starting in the gap starts there and
  an interval ending in it ends there;
- a time repeated by a fall-back (01:30 in New York on the first Sunday of November) means its
  first occurrence (`fold=0`), so an interval spanning the repeated hour lasts an hour longer, as it
  really does, and "00:00-24:00" on that day is 25 hours long.
The rule is monotone, so a day's intervals never overlap the next day's, and splitting an interval
in two ("09:00-18:00" as "09:00-13:00" + "13:00-18:00") never changes the open time.

Which hours a local day has: an open date has `open_dates_hours`, even on a weekend or a public
holiday; otherwise a closed date or a public holiday is closed all day; otherwise the weekday's hours.
A date cannot be both open and closed (`CalendarInvalidError`).

Durations:
- `add(t, d)` for d > 0 is the earliest instant by which `d` of open time has elapsed since `t`: it
  always ends open time (the microsecond before it is open), never inside closed time.
- `add(t, 0)` is `next_open(t)`: `t` itself when open, else the next opening. A deadline of no
  business time from a closed instant falls when the team is next there, not in the night.
  Hence `add(add(t, a), b) == add(t, a + b)` for all a >= 0 and b > 0; with b == 0 the left side is
  `next_open(add(t, a))`, which differs only when `add(t, a)` is exactly a closing time.
- `between(s, e)` is the open time in [s, e), so `between(t, add(t, d)) == d`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intake import config
from intake.hours import CalendarInvalidError, Hours

HORIZON_DAYS = 400
"""A calendar with no open time in this many consecutive days is taken to never open."""

Span = tuple[datetime, datetime]

_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)
_ZERO = timedelta(0)
_CACHED_DAYS = 4096


class CalendarNeverOpensError(Exception):
    """No open time in `HORIZON_DAYS` consecutive days from `since`: no deadline can be computed."""

    def __init__(self, since: datetime) -> None:
        self.since = since
        super().__init__(f"the calendar has no open time in the {HORIZON_DAYS} days after {since.isoformat()}")


class BusinessCalendar:
    """A team's open hours as real instants. Build with `from_policy` or `calendar_for`.

    Every method takes timezone-aware datetimes (any zone; naive ones raise `ValueError`) and returns
    UTC ones. Per-day intervals are computed once and cached on the instance."""

    __slots__ = ("_closed", "_days", "_holidays", "_open_dates", "_open_hours", "_weekly", "_zone", "timezone")

    def __init__(
        self,
        timezone: str,
        weekly: tuple[Hours, ...] | None,
        *,
        open_hours: Hours = (),
        open_dates: frozenset[date] = frozenset(),
        closed_dates: frozenset[date] = frozenset(),
        holidays: tuple[str, str | None] | None = None,
    ) -> None:
        """Prefer `from_policy`. `weekly` is seven days of hours, Monday first; None means always open."""
        self.timezone = timezone
        self._zone = _zone(timezone)
        self._weekly = weekly
        self._open_hours = open_hours
        self._open_dates = open_dates
        self._closed = closed_dates
        self._holidays = holidays
        self._days: dict[date, tuple[Span, ...]] = {}

    @classmethod
    def from_policy(cls, timezone: str, calendar: config.Calendar | None) -> BusinessCalendar:
        """The calendar of a policy file's team; `calendar=None` is always open (24/7)."""
        if calendar is None:
            return cls(timezone, None)
        parts = calendar.open_hours()
        return cls(
            timezone,
            parts.weekly,
            open_hours=parts.open_hours,
            open_dates=parts.open_dates,
            closed_dates=parts.closed_dates,
            holidays=parts.holidays,
        )

    @property
    def always_open(self) -> bool:
        return self._weekly is None

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.timezone!r}{', always open' if self.always_open else ''})"

    # ------------------------------------------------------------------ queries

    def is_open(self, at: datetime) -> bool:
        """Whether the team is open at the instant `at`."""
        at = _utc(at, "at")
        if self.always_open:
            return True
        local = self._local_date(at)
        return any(start <= at < end for day in (local - _DAY, local, local + _DAY) for start, end in self._on(day))

    def next_open(self, at: datetime) -> datetime:
        """`at` (in UTC) when open, else the start of the next open interval.

        Raises `CalendarNeverOpensError` when there is none within `HORIZON_DAYS`."""
        at = _utc(at, "at")
        if self.always_open:
            return at
        return next(self._forward(at))[0]

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant by which `duration` of business time has elapsed since `start` (see the module
        docstring for duration 0). Raises `CalendarNeverOpensError` when the calendar runs dry."""
        start = _utc(start, "start")
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        if self.always_open:
            return start + duration
        remaining = duration
        for begin, end in self._forward(start):
            if remaining <= end - begin:
                return begin + remaining
            remaining -= end - begin
        raise AssertionError("_forward never ends")  # pragma: no cover

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in [start, end); zero when end <= start."""
        return sum((stop - begin for begin, stop in self.intervals(start, end)), _ZERO)

    def intervals(self, start: datetime, end: datetime) -> Iterator[Span]:
        """The open intervals overlapping [start, end), clipped to it, in order, in UTC. Intervals
        that touch (a day's "20:00-24:00" and the next day's "00:00-06:00") come out as one."""
        start, end = _utc(start, "start"), _utc(end, "end")
        if self.always_open:
            return iter([(start, end)] if start < end else [])
        return self._clipped(start, end)

    # ------------------------------------------------------------------ walking

    def _clipped(self, start: datetime, end: datetime) -> Iterator[Span]:
        if start >= end:
            return
        day, last = self._local_date(start) - _DAY, self._local_date(end) + _DAY
        pending: Span | None = None
        while day <= last:
            for begin, stop in self._on(day):
                begin, stop = max(begin, start), min(stop, end)
                if begin >= stop:
                    continue
                if pending is not None and begin <= pending[1]:
                    pending = (pending[0], max(pending[1], stop))
                    continue
                if pending is not None:
                    yield pending
                pending = (begin, stop)
            day += _DAY
        if pending is not None:
            yield pending

    def _forward(self, at: datetime) -> Iterator[Span]:
        """Open intervals after `at`, the first clipped to start no earlier than it; endless, day by day.
        Intervals may touch (no look-ahead, so that a 24/7 week still yields)."""
        day = self._local_date(at) - _DAY
        reached = at
        idle = 0
        while True:
            spans = self._on(day)
            for begin, end in spans:
                if end > reached:
                    yield max(begin, reached), end
                    reached = end
            idle = 0 if spans else idle + 1
            if idle > HORIZON_DAYS:
                raise CalendarNeverOpensError(at)
            day += _DAY

    # ------------------------------------------------------------------ one local day

    def _on(self, day: date) -> tuple[Span, ...]:
        """The day's open intervals as sorted, disjoint UTC spans (cached)."""
        spans = self._days.get(day)
        if spans is None:
            merged: list[Span] = []
            for first, last in self._hours_on(day):
                begin, end = self._instant(day, first), self._instant(day, last)
                if begin >= end:  # wholly inside a spring-forward gap
                    continue
                if merged and begin <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], end))
                else:
                    merged.append((begin, end))
            if len(self._days) >= _CACHED_DAYS:
                self._days.clear()
            spans = self._days[day] = tuple(merged)
        return spans

    def _hours_on(self, day: date) -> Hours:
        assert self._weekly is not None
        if day in self._open_dates:
            return self._open_hours
        if day in self._closed:
            return ()
        if self._holidays is not None and day in _public_holidays(*self._holidays, day.year):
            return ()
        return self._weekly[day.weekday()]

    def _instant(self, day: date, minute: int) -> datetime:
        """The first instant at which the local clock reads `minute` after midnight of `day`, or later."""
        wall = datetime.combine(day, time()) + timedelta(minutes=minute)
        first = wall.replace(tzinfo=self._zone).astimezone(UTC)  # fold=0: a repeated time's first occurrence
        if first.astimezone(self._zone).replace(tzinfo=None) == wall:
            return first
        # Skipped by a spring-forward. fold=0 read it with the offset from before the jump (an instant
        # after the jump), fold=1 with the one after (an instant before it): the jump lies between, and
        # zone transitions fall on whole seconds.
        low = wall.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        below, above = 0, int((first - low) // _SECOND)  # wall(low + below) < wall <= wall(low + above)
        while above - below > 1:
            middle = (below + above) // 2
            if (low + middle * _SECOND).astimezone(self._zone).replace(tzinfo=None) >= wall:
                above = middle
            else:
                below = middle
        return low + above * _SECOND

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self._zone).date()


def calendar_for(team: config.Team) -> BusinessCalendar:
    """The business calendar of a policy file's team (always open when it has none)."""
    return BusinessCalendar.from_policy(team.timezone, team.calendar)


# ---------------------------------------------------------------------- helpers


def _utc(at: datetime, name: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarInvalidError("timezone", f"unknown IANA time zone {timezone!r}") from None


@lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))
