"""A team's open hours as its policy file writes them, parsed and checked: weekly intervals ("09:00-12:30"), extra
open and closed dates, a public holidays region.

This sits below both the policy (`intake.config`, which checks a team's calendar while the file is validated) and
business time (`intake.sla.calendar`, which turns these hours into instants): config checks a calendar with the
same code that builds it, without importing `intake.sla`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from types import ModuleType
from typing import Literal

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Hours = tuple[tuple[int, int], ...]  # (start, end) in minutes after local midnight, end <= 1440


class CalendarInvalidError(ValueError):
    """The calendar cannot be used: unknown zone or holiday region, an interval that ends before it
    starts, a date both open and closed. `where` names the offending part."""

    def __init__(self, where: str, reason: str) -> None:
        self.where, self.reason = where, reason
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class OpenHours:
    """A calendar's parts, checked: seven days of hours (Monday first), the hours of its extra open dates, those
    dates, its closed dates, and its public holidays' (country, subdivision), if any."""

    weekly: tuple[Hours, ...]
    open_hours: Hours
    open_dates: frozenset[date]
    closed_dates: frozenset[date]
    holidays: tuple[str, str | None] | None


def open_hours(
    hours: Mapping[Weekday, Sequence[str]],
    *,
    open_dates_hours: Sequence[str],
    open_dates: Iterable[date],
    closed_dates: Iterable[date],
    holidays: tuple[str, str | None] | None,
) -> OpenHours:
    """A calendar's parts from its policy file's fields; CalendarInvalidError names the first that cannot be used."""
    weekly = tuple(parse_hours(hours.get(day, []), f"hours.{day}") for day in WEEKDAYS)
    opened, closed = frozenset(open_dates), frozenset(closed_dates)
    both = sorted(opened & closed)
    if both:
        listed = ", ".join(day.isoformat() for day in both)
        raise CalendarInvalidError("open_dates", f"{listed} also in closed_dates; keep each date in one list")
    if holidays is not None:
        check_region(*holidays)
    return OpenHours(weekly, parse_hours(open_dates_hours, "open_dates_hours"), opened, closed, holidays)


def parse_hours(intervals: Sequence[str], where: str) -> Hours:
    """Intervals such as "09:00-12:30" as sorted (start, end) minutes; "24:00" is the end of the day."""
    parsed = []
    for text in intervals:
        first, _, last = text.partition("-")
        begin, end = _minutes(first), _minutes(last)
        if not 0 <= begin < end <= 24 * 60:
            raise CalendarInvalidError(where, f"{text!r} must start before it ends, within 00:00-24:00")
        parsed.append((begin, end))
    return tuple(sorted(parsed))


def _minutes(hhmm: str) -> int:
    hours, _, minutes = hhmm.partition(":")
    return int(hours) * 60 + int(minutes)


@lru_cache(maxsize=64)
def check_region(country: str, subdivision: str | None) -> None:
    """Raise CalendarInvalidError for a country or subdivision `holidays` does not know (checked once each: building
    the table costs milliseconds, and every new ticket's clocks ask)."""
    import holidays  # only where a calendar names public holidays

    if subdivision is None and _listed(holidays, country):
        return
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as error:
        raise CalendarInvalidError("holidays", str(error)) from None


def _listed(package: ModuleType, country: str) -> bool:
    """A country `holidays` names in its registry: `country_holidays(country)` would succeed, but building it imports
    every country's module (a tenth of a second of every function's cold start, where the policy is loaded and no
    holiday is asked for). A subdivision is checked the long way. tests/unit/test_business_time.py holds the two
    equal."""
    from holidays.registry import EntityLoader

    return isinstance(getattr(package, country, None), EntityLoader)
