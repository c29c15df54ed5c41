"""A digest's figures: what came in, what is waiting, what breached, how fast, how customers felt.

`read` gathers a window's data from the store (the `by_day` index one local day at a time, the satisfaction
items per local day, and the team's backlog: its counters and the head of its queue, `Store.backlog`); `compute`
is pure and turns it into `Figures`.

Definitions (the window's tickets are those *created* on its local days):
- breaches: window tickets flagged breached (any SLA target); near-breaches: window tickets flagged warned (an SLA
  warning was sent for them), not breached.
- first response: created_at → first_responded_at; resolution: created_at → resolved_at; only window tickets
  that have one (the others are counted as still `open`). Median (the mean of the two middle values for an
  even count) and p90 (nearest rank), in elapsed time; `within_target` counts the tickets that met their
  SLA policy's target, measured as the policy measures it (business hours or around the clock).
- backlog: the team's queue now (`open_by_due`: its open and pending tickets); overdue: those whose next SLA
  deadline has passed; the oldest: breached first, then the longest waiting since the customer's last message.
  It has no previous value, so no change.
- satisfaction: scores answered on the window's days; response rate = answers / surveys sent on those days.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from intake.channels import registry
from intake.config import Policy, SlaTargetName
from intake.digest.window import Period, Window
from intake.model import Priority, Ticket, reference_for
from intake.records import OpenQueue, ScoreReceived
from intake.sla.calendar import BusinessCalendar, calendar_for

OLDEST_SHOWN = 5
LISTED = 10  # breached, near-breached tickets and low scores listed by reference (all are counted)
LOW_SCORE = 2
PRIORITIES = (Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW)


class DigestStore(Protocol):
    """What a digest reads from the store."""

    def day_tickets(self, team: str, day: date) -> list[Ticket]: ...

    def backlog(self, team: str, now: datetime, listed: int) -> OpenQueue: ...

    def surveys_sent(self, team: str, day: date) -> int: ...

    def scores_received(self, team: str, day: date) -> list[ScoreReceived]: ...


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class TicketLink(Frozen):
    ticket_id: str
    reference: str
    url: str
    subject: str | None = None


class Times(Frozen):
    """First-response or resolution times of the window's tickets, in seconds."""

    measured: int = Field(description="window tickets that have this time")
    open: int = Field(description="window tickets still without it")
    median_s: int | None
    p90_s: int | None
    within_target: int = Field(description="measured tickets that met their SLA policy's target")
    with_target: int = Field(description="measured tickets whose policy sets this target")
    targets: list[str] = Field(
        description="the targets of the window tickets' policies, most common first: `8h business hours (default)`"
    )

    @property
    def within_pct(self) -> int | None:
        return None if not self.with_target else round(100 * self.within_target / self.with_target)


class LowScore(Frozen):
    ticket: TicketLink
    score: int
    answered_at: datetime
    comment: str | None


class Satisfaction(Frozen):
    surveys_sent: int
    responses: int
    average: float | None = Field(description="mean score, 1 to 5, two decimals")
    response_rate: float | None = Field(
        description="answers received in the window / surveys sent in it (None: none sent); a flow ratio: answers "
        "to an earlier window's surveys count here, so it can exceed 1"
    )
    low_scores: int
    low: list[LowScore] = Field(description=f"the first {LISTED} scores of {LOW_SCORE} or less")


class WindowFigures(Frozen):
    start: date
    end: date
    new_tickets: int
    by_channel: dict[str, int]
    by_priority: dict[str, int]
    breaches: int
    near_breaches: int
    breached: list[TicketLink]
    near_breached: list[TicketLink]
    first_response: Times
    resolution: Times
    satisfaction: Satisfaction


class Waiting(Frozen):
    ticket: TicketLink
    channel: str
    priority: str
    last_inbound_at: datetime
    waiting_s: int
    next_due_at: datetime | None
    breached: bool


class Backlog(Frozen):
    open: int
    breached: int
    overdue: int = Field(description="open tickets whose next SLA deadline has passed")
    oldest: list[Waiting] = Field(description="breached first, then those waiting longest")


class Change(Frozen):
    """Current window minus previous window (None where either side has no value)."""

    new_tickets: int
    by_channel: dict[str, int]
    by_priority: dict[str, int]
    breaches: int
    near_breaches: int
    first_response_median_s: int | None
    first_response_p90_s: int | None
    resolution_median_s: int | None
    resolution_p90_s: int | None
    satisfaction_average: float | None
    response_rate: float | None


class Figures(Frozen):
    team: str
    team_name: str
    timezone: str
    period: Period
    start: date
    end: date
    generated_at: datetime
    current: WindowFigures
    previous: WindowFigures
    change: Change
    backlog: Backlog

    @property
    def empty(self) -> bool:
        """Nothing happened in the window: no new ticket, no survey answer."""
        return self.current.new_tickets == 0 and self.current.satisfaction.responses == 0

    @property
    def digest_id(self) -> str:
        return f"{self.team}#{self.period}#{self.start.isoformat()}"


@dataclass(frozen=True)
class WindowData:
    """What the store holds about one window's days."""

    start: date
    end: date
    tickets: tuple[Ticket, ...]
    warned: frozenset[str]
    surveys_sent: int
    scores: tuple[ScoreReceived, ...]


def read(store: DigestStore, team: str, window: Window, now: datetime) -> tuple[WindowData, WindowData, OpenQueue]:
    """The window's data, the previous window's, and the team's open queue at `now`."""
    current = _read_days(store, team, window.start, window.days)
    previous = _read_days(store, team, window.previous_start, window.previous_days)
    return current, previous, store.backlog(team, now, OLDEST_SHOWN)


def _read_days(store: DigestStore, team: str, start: date, days: Sequence[date]) -> WindowData:
    tickets = tuple(ticket for day in days for ticket in store.day_tickets(team, day))
    warned = frozenset(t.id for t in tickets if t.warned and not t.breached)
    sent = sum(store.surveys_sent(team, day) for day in days)
    scores = tuple(score for day in days for score in store.scores_received(team, day))
    return WindowData(start, days[-1], tickets, warned, sent, scores)


def compute(
    team_id: str,
    window: Window,
    current: WindowData,
    previous: WindowData,
    backlog: OpenQueue,
    *,
    policy: Policy,
    base_url: str,
    now: datetime,
) -> Figures:
    team = policy.teams[team_id]
    calendar = calendar_for(team)
    link = _linker(policy, base_url)
    this = _window_figures(current, team_id, policy, calendar, link)
    before = _window_figures(previous, team_id, policy, calendar, link)
    return Figures(
        team=team_id,
        team_name=team.name,
        timezone=team.timezone,
        period=window.period,
        start=window.start,
        end=window.end,
        generated_at=now,
        current=this,
        previous=before,
        change=_change(this, before),
        backlog=_backlog(backlog, link, now),
    )


class _Linker(Protocol):
    def __call__(self, ticket_id: str, subject: str | None = None) -> TicketLink: ...


def _linker(policy: Policy, base_url: str) -> _Linker:
    from intake.notify.notifier import ticket_url

    def link(ticket_id: str, subject: str | None = None) -> TicketLink:
        url = ticket_url(policy, base_url, ticket_id)
        return TicketLink(ticket_id=ticket_id, reference=reference_for(ticket_id), url=url, subject=subject)

    return link


def _window_figures(
    data: WindowData, team_id: str, policy: Policy, calendar: BusinessCalendar, link: _Linker
) -> WindowFigures:
    tickets = sorted(data.tickets, key=lambda t: (t.created_at, t.id))
    channels = Counter(t.channel for t in tickets)
    priorities = Counter(t.priority.value for t in tickets)
    breached = [t for t in tickets if t.breached]
    near = [t for t in tickets if t.id in data.warned and not t.breached]
    return WindowFigures(
        start=data.start,
        end=data.end,
        new_tickets=len(tickets),
        by_channel={kind: channels[kind] for kind in registry.kinds() if channels[kind]},
        by_priority={p.value: priorities[p.value] for p in PRIORITIES if priorities[p.value]},
        breaches=len(breached),
        near_breaches=len(near),
        breached=[link(t.id, t.subject) for t in breached[:LISTED]],
        near_breached=[link(t.id, t.subject) for t in near[:LISTED]],
        first_response=_times(tickets, "first_response", team_id, policy, calendar),
        resolution=_times(tickets, "resolution", team_id, policy, calendar),
        satisfaction=_satisfaction(data, link),
    )


def _times(
    tickets: Sequence[Ticket], target: SlaTargetName, team_id: str, policy: Policy, calendar: BusinessCalendar
) -> Times:
    from intake.config import format_duration
    from intake.sla.policy import policy_for

    elapsed: list[timedelta] = []
    within = with_target = 0
    targets: Counter[str] = Counter()
    for ticket in tickets:
        sla = policy_for(policy.sla, team_id, ticket.channel, ticket.priority)
        spec = sla.target(target)
        if spec is not None:
            hours = "business hours" if spec.time == "business" else "around the clock"
            targets[f"{format_duration(spec.within)} {hours} ({sla.name})"] += 1
        done = ticket.first_responded_at if target == "first_response" else ticket.resolved_at
        if done is None:
            continue
        took = max(done - ticket.created_at, timedelta(0))
        elapsed.append(took)
        if spec is None:
            continue
        with_target += 1
        counted = took if spec.time == "calendar" else calendar.between(ticket.created_at, done)
        within += counted <= spec.within
    seconds = sorted(int(e.total_seconds()) for e in elapsed)
    return Times(
        measured=len(seconds),
        open=len(tickets) - len(seconds),
        median_s=round(statistics.median(seconds)) if seconds else None,
        p90_s=seconds[math.ceil(0.9 * len(seconds)) - 1] if seconds else None,
        within_target=within,
        with_target=with_target,
        targets=[name for name, _ in targets.most_common()],
    )


def _satisfaction(data: WindowData, link: _Linker) -> Satisfaction:
    scores = sorted(data.scores, key=lambda s: (s.answered_at, s.ticket_id))
    low = [s for s in scores if s.score <= LOW_SCORE]
    return Satisfaction(
        surveys_sent=data.surveys_sent,
        responses=len(scores),
        average=round(sum(s.score for s in scores) / len(scores), 2) if scores else None,
        response_rate=round(len(scores) / data.surveys_sent, 4) if data.surveys_sent else None,
        low_scores=len(low),
        low=[
            LowScore(ticket=link(s.ticket_id), score=s.score, answered_at=s.answered_at, comment=s.comment)
            for s in low[:LISTED]
        ],
    )


def _backlog(queue: OpenQueue, link: _Linker, now: datetime) -> Backlog:
    return Backlog(
        open=queue.open,
        breached=queue.breached,
        overdue=queue.overdue,
        oldest=[
            Waiting(
                ticket=link(t.id, t.subject),
                channel=t.channel,
                priority=t.priority.value,
                last_inbound_at=t.last_inbound_at,
                waiting_s=max(int((now - t.last_inbound_at).total_seconds()), 0),
                next_due_at=t.next_due_at,
                breached=t.breached,
            )
            for t in queue.longest_waiting[:OLDEST_SHOWN]
        ],
    )


def _change(this: WindowFigures, before: WindowFigures) -> Change:
    def minus(a: int | None, b: int | None) -> int | None:
        return None if a is None or b is None else a - b

    def fminus(a: float | None, b: float | None, digits: int) -> float | None:
        return None if a is None or b is None else round(a - b, digits)

    def counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        return {k: a.get(k, 0) - b.get(k, 0) for k in [*a, *(k for k in b if k not in a)]}

    return Change(
        new_tickets=this.new_tickets - before.new_tickets,
        by_channel=counts(this.by_channel, before.by_channel),
        by_priority=counts(this.by_priority, before.by_priority),
        breaches=this.breaches - before.breaches,
        near_breaches=this.near_breaches - before.near_breaches,
        first_response_median_s=minus(this.first_response.median_s, before.first_response.median_s),
        first_response_p90_s=minus(this.first_response.p90_s, before.first_response.p90_s),
        resolution_median_s=minus(this.resolution.median_s, before.resolution.median_s),
        resolution_p90_s=minus(this.resolution.p90_s, before.resolution.p90_s),
        satisfaction_average=fminus(this.satisfaction.average, before.satisfaction.average, 2),
        response_rate=fminus(this.satisfaction.response_rate, before.satisfaction.response_rate, 4),
    )
