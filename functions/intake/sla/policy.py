"""Which SLA policy and priority a ticket gets, and the timer plan (deadline, warnings, escalations)
of each of its targets. Pure: instants come in as arguments, nothing reads a clock or the environment.

A target's deadline is `within` of business time after the start (`BusinessCalendar.add`), or of
plain elapsed time for `time: calendar`. A timer resumed after a pause counts only what was left
(`remaining`), and its warnings keep their meaning relative to the full target: "80%" warns when
20 % of the target is left, "15m" when 15 minutes are left; a warning whose moment passed during
the first run is not planned again. Escalation level 1 is `after[0]` past the deadline, level N
`after[N]` past level N-1, counted in the target's own kind of time (an `after` of 0m is the same
instant, never "the next opening").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from intake import identity
from intake.config import (
    Calendar,
    Policy,
    PriorityRules,
    Sla,
    SlaMatch,
    SlaPolicy,
    SlaTargetName,
    SlaWarning,
    Team,
    TimeKind,
    format_duration,
)
from intake.hours import WEEKDAYS
from intake.model import Channel, Priority, SlaTarget, SlaTimer, Status, Ticket, TimerState
from intake.sla.calendar import BusinessCalendar, calendar_for
from intake.store import keys

_ZERO = timedelta(0)
_SECOND = timedelta(seconds=1)
_STAMP = "%Y-%m-%dT%H:%M:%SZ"
_SHOWN_INTERVALS = 6


# ---------------------------------------------------------------------------------- matching


def policy_for(sla: Sla, team: str, channel: str, priority: Priority) -> SlaPolicy:
    """The first policy whose `match` fits the ticket; the last one (no `match`) when none does."""
    for policy in sla.policies:
        if matches(policy.match, team, channel, priority):
            return policy
    return sla.policies[-1]  # validated to have no match, so never reached


def matches(match: SlaMatch | None, team: str, channel: str, priority: Priority) -> bool:
    """Whether a ticket of this team, channel and priority fits `match` (None, or a list left out: any)."""
    if match is None:
        return True
    return (
        (match.teams is None or team in match.teams)
        and (match.channels is None or channel in match.channels)
        and (match.priorities is None or priority in match.priorities)
    )


def priority_for(
    rules: PriorityRules,
    channel: str,
    subject: str | None,
    text: str,
    identities: Iterable[tuple[str, str]],
    given: Priority,
) -> Priority:
    """A new ticket's priority: the first rule that fits decides; none fits → `given` (the message's own).

    `form_field` fits a form message whose own priority is not `normal`, and keeps it; `vip` fits when one
    of the sender's (kind, value) identities is a VIP contact; `channels` when the message came on one of
    them; `keywords` when one of them appears as whole words, in any case, in the subject or the text."""
    vips = {found[1] for found in map(identity.contact, rules.vip_contacts) if found is not None}
    sender = {found[1] for found in (identity.contact(value, kind) for kind, value in identities) if found}
    for rule in rules.rules:
        if rule.form_field:
            if channel == Channel.FORM and given is not Priority.NORMAL:
                return given
        elif rule.priority is None:  # pragma: no cover - validated: only form_field rules have none
            continue
        elif (
            (rule.vip and not sender.isdisjoint(vips))
            or (rule.channels is not None and channel in rule.channels)
            or (rule.keywords is not None and _mentions(rule.keywords, f"{subject or ''}\n{text}"))
        ):
            return rule.priority
    return given


def _mentions(keywords: Sequence[str], text: str) -> bool:
    for keyword in keywords:
        words = r"\s+".join(re.escape(word) for word in keyword.split())
        if re.search(rf"(?<!\w){words}(?!\w)", text, flags=re.IGNORECASE):
            return True
    return False


# ---------------------------------------------------------------------------------- timers


def execution_name(ticket_id: str, target: str, generation: int) -> str:
    """`<ticket_id>-<target>-<generation>`: one execution per timer run, so a retry cannot start two."""
    return f"{ticket_id}-{target}-{generation}"


@dataclass(frozen=True)
class TimerPlan:
    """One target's timer: what the Step Functions execution waits for, and what the timer item records.

    `within` is the policy's full target; `counted` what this run counts from `started_at` (less than
    `within` when resumed after a pause). Instants are UTC."""

    target: SlaTargetName
    generation: int
    policy: str
    time: TimeKind
    started_at: datetime
    due_at: datetime
    within: timedelta
    counted: timedelta
    warnings: tuple[tuple[str, datetime], ...] = ()
    escalations: tuple[tuple[int, datetime, tuple[str, ...]], ...] = ()

    def execution_name(self, ticket_id: str) -> str:
        return execution_name(ticket_id, self.target, self.generation)

    def timer(self, ticket_id: str, now: datetime, consumed_s: int = 0) -> SlaTimer:
        """The timer item this plan starts (running), with the execution's input as of `now`."""
        return SlaTimer(
            target=SlaTarget(self.target),
            generation=self.generation,
            state=TimerState.RUNNING,
            policy=self.policy,
            time=self.time,
            started_at=self.started_at,
            due_at=self.due_at,
            target_s=int(self.within.total_seconds()),
            consumed_s=consumed_s,
            execution=self.execution_input(ticket_id, now),
        )

    def execution_input(self, ticket_id: str, now: datetime | None = None) -> dict[str, Any]:
        """The state machine's input (the SLA contract: `intake.sla`'s docstring). Warnings before `now` are left out.

        Timestamps have second precision, rounded up, so that no Wait ends before the instant it stands for."""
        warnings = [(label, at) for label, at in self.warnings if now is None or at >= now]
        return {
            "ticket_id": ticket_id,
            "target": self.target,
            "generation": self.generation,
            "generation_text": str(self.generation),
            "pk": keys.ticket_pk(ticket_id),
            "sk": keys.timer_sk(self.target),
            "due_at": stamp(self.due_at),
            "warnings": [{"at": stamp(at), "label": label} for label, at in warnings],
            "escalations": [{"level": level, "at": stamp(at)} for level, at, _ in self.escalations],
        }

    def remaining_at(self, calendar: BusinessCalendar, now: datetime) -> timedelta:
        """The time this timer has left at `now`, to store when it is paused."""
        return remaining_at(self.due_at, self.time, calendar, now)


def stamp(at: datetime) -> str:
    """`2026-12-01T10:00:00Z`: UTC, whole seconds, rounded up."""
    return _whole_second(at.astimezone(UTC)).strftime(_STAMP)


def _whole_second(at: datetime) -> datetime:
    """Rounded up to the second, as every instant is shown: a deadline is never shown before it is."""
    return at.replace(microsecond=0) + _SECOND if at.microsecond else at


def opening_timers(policy: Policy, ticket: Ticket) -> list[SlaTimer]:
    """A new ticket's clocks, first response and resolution from its creation (a target its SLA policy does not set
    has none): written with the ticket, in its transaction, and started right after it."""
    sla = policy_for(policy.sla, ticket.team, ticket.channel, ticket.priority)
    calendar = calendar_for(policy.teams[ticket.team])
    opening: tuple[SlaTargetName, ...] = ("first_response", "resolution")
    plans = (plan_timer(sla, target, calendar, ticket.created_at, 1) for target in opening)
    return [plan.timer(ticket.id, ticket.created_at) for plan in plans if plan is not None]


_LIVE = (TimerState.RUNNING, TimerState.PAUSED)
_RESUMABLE = (TimerState.MET, TimerState.PAUSED)  # a resolution clock that resumes when its ticket reopens


def customer_message_timers(policy: Policy, ticket: Ticket, timers: Iterable[SlaTimer], at: datetime) -> list[SlaTimer]:
    """What a customer's message at `at` does to the clocks of `ticket` (as read before it): on a pending ticket the
    paused clocks resume, on a resolved one (the message reopens it) resolution resumes, each with the time it had
    left; then, once the team has answered, next-response starts unless it runs. The new generations, each to be
    written in place of the one before it, with the message. No clock starts before the moment it stopped, nor
    next-response before the team's answer (a message handled after an agent acted on the ticket)."""
    sla = policy_for(policy.sla, ticket.team, ticket.channel, ticket.priority)
    calendar = calendar_for(policy.teams[ticket.team])
    current = {timer.target: timer for timer in timers}
    started: list[SlaTimer] = []
    if ticket.status == Status.PENDING:
        resumed = [t for t in current.values() if t.state == TimerState.PAUSED]
    elif ticket.status == Status.RESOLVED:
        resumed = [t for t in current.values() if t.target == SlaTarget.RESOLUTION and t.state in _RESUMABLE]
    else:
        resumed = []
    for timer in resumed:
        spec = sla.target(timer.target.value)
        if spec is None:
            continue
        left = max(_ZERO, spec.within - timedelta(seconds=timer.consumed_s))
        start = max(at, timer.ended_at or at)
        plan = plan_timer(sla, timer.target.value, calendar, start, timer.generation + 1, remaining=left)
        if plan is not None:
            started.append(plan.timer(ticket.id, start, timer.consumed_s))
    current |= {timer.target: timer for timer in started}
    following = current.get(SlaTarget.NEXT_RESPONSE)
    if ticket.first_responded_at is not None and (following is None or following.state not in _LIVE):
        start = max(at, ticket.first_responded_at, (following.ended_at if following else None) or at)
        generation = 1 if following is None else following.generation + 1
        plan = plan_timer(sla, "next_response", calendar, start, generation)
        if plan is not None:
            started.append(plan.timer(ticket.id, start))
    return started


def next_deadline(timers: Iterable[SlaTimer]) -> datetime | None:
    """What orders a ticket in its team's queue: the earliest deadline of its running and breached clocks (a breached
    one has passed: it comes first); None when it has neither (it goes after every deadline)."""
    return min((t.due_at for t in timers if t.state in (TimerState.RUNNING, TimerState.BREACHED)), default=None)


def plan_timer(
    policy: SlaPolicy,
    target: SlaTargetName,
    calendar: BusinessCalendar,
    start: datetime,
    generation: int,
    *,
    remaining: timedelta | None = None,
) -> TimerPlan | None:
    """The deadline, warnings and escalations of `target` started (or resumed, with `remaining`) at `start`;
    None when the policy sets no such target."""
    spec = policy.target(target)
    if spec is None:
        return None
    if generation < 1:
        raise ValueError(f"generation starts at 1, got {generation}")
    counted = spec.within if remaining is None else remaining
    if counted < _ZERO:
        raise ValueError(f"remaining must not be negative, got {counted}")
    advance = _advance(spec.time, calendar)
    start = start.astimezone(UTC)
    due = advance(start, counted)
    warnings = []
    for warning in policy.warnings:
        left = _left_at(warning, spec.within)
        if left < counted:  # a warning due at or before the start is not planned
            warnings.append((advance(start, counted - left), left, warning.label))
    warnings.sort(key=lambda item: (item[0], -item[1]))
    escalations = []
    previous = due
    for level, step in enumerate(policy.escalation, start=1):
        previous = previous if step.after == _ZERO else advance(previous, step.after)
        escalations.append((level, previous, tuple(step.to)))
    return TimerPlan(
        target=target,
        generation=generation,
        policy=policy.name,
        time=spec.time,
        started_at=start,
        due_at=due,
        within=spec.within,
        counted=counted,
        warnings=tuple((label, at) for at, _, label in warnings),
        escalations=tuple(escalations),
    )


def remaining_at(due_at: datetime, time: TimeKind, calendar: BusinessCalendar, now: datetime) -> timedelta:
    """Business (or calendar) time left from `now` until `due_at`; zero once it has passed."""
    if time == "business":
        return calendar.between(now, due_at)
    return max(due_at.astimezone(UTC) - now.astimezone(UTC), _ZERO)


def _left_at(warning: SlaWarning, within: timedelta) -> timedelta:
    """How much of the target is left when `warning` is due."""
    if warning.before is not None:
        return warning.before
    assert warning.percent is not None
    return within * (100 - warning.percent) / 100


def _advance(time: TimeKind, calendar: BusinessCalendar) -> Callable[[datetime, timedelta], datetime]:
    if time == "business":
        return calendar.add
    return lambda at, duration: at.astimezone(UTC) + duration


# ---------------------------------------------------------------------------------- explain


def explain(
    policy: SlaPolicy,
    plans: Iterable[TimerPlan],
    calendar: BusinessCalendar,
    team: Team,
    *,
    team_id: str | None = None,
    channel: str | None = None,
    priority: Priority | None = None,
) -> str:
    """Why a ticket has its deadlines, for people: the policy and why it matched, the team's calendar,
    and for each plan the arithmetic from start to deadline, warnings and escalations. Every instant is
    shown in the team's time zone (`team.timezone`)."""
    zone = ZoneInfo(team.timezone)
    lines = [_why(policy, team_id, channel, priority)]
    lines += _calendar_lines(team, zone)
    for plan in plans:
        lines.append("")
        lines += _plan_lines(plan, policy, calendar, team, zone)
    return "\n".join(lines) + "\n"


def _why(policy: SlaPolicy, team_id: str | None, channel: str | None, priority: Priority | None) -> str:
    facts = [f"{name} {value}" for name, value in (("team", team_id), ("channel", channel), ("priority", priority))]
    ticket = ", ".join(fact for fact in facts if not fact.endswith(" None"))
    about = f" for {ticket}" if ticket else ""
    if policy.match is None:
        return f"SLA policy {policy.name!r}{about}: the default, no other policy matched."
    conditions = [
        f"{name} {', '.join(str(value) for value in values)}"
        for name, values in (
            ("teams", policy.match.teams),
            ("channels", policy.match.channels),
            ("priorities", policy.match.priorities),
        )
        if values is not None
    ]
    return f"SLA policy {policy.name!r}{about}: the first that matched (its match: {'; '.join(conditions) or 'any'})."


def _calendar_lines(team: Team, zone: ZoneInfo) -> list[str]:
    where = f"Time zone {team.timezone}"
    if team.calendar is None:
        return [f"Calendar of {team.name}: always open (no calendar). {where}."]
    calendar = team.calendar
    lines = [f"Calendar of {team.name}: {_weekly(calendar)}. {where}."]
    if calendar.holidays is not None:
        region = calendar.holidays.country + (
            f"-{calendar.holidays.subdivision}" if calendar.holidays.subdivision else ""
        )
        lines.append(f"  Closed on public holidays of {region}.")
    if calendar.closed_dates:
        lines.append(f"  Closed dates: {', '.join(day.isoformat() for day in sorted(calendar.closed_dates))}.")
    if calendar.open_dates:
        listed = ", ".join(day.isoformat() for day in sorted(calendar.open_dates))
        lines.append(f"  Open dates: {listed} ({', '.join(calendar.open_dates_hours)}).")
    return lines


def _weekly(calendar: Calendar) -> str:
    """`mon-thu 09:00-12:30, 13:30-18:00; fri 09:00-12:30, 13:30-17:00; sat-sun closed`."""
    groups: list[tuple[list[str], str]] = []
    for day in WEEKDAYS:
        hours = ", ".join(calendar.hours.get(day, [])) or "closed"
        if groups and groups[-1][1] == hours:
            groups[-1][0].append(day)
        else:
            groups.append(([day], hours))
    return "; ".join(
        f"{days[0]}-{days[-1]} {hours}" if len(days) > 1 else f"{days[0]} {hours}" for days, hours in groups
    )


def _plan_lines(
    plan: TimerPlan, policy: SlaPolicy, calendar: BusinessCalendar, team: Team, zone: ZoneInfo
) -> list[str]:
    kind = "business time" if plan.time == "business" else "calendar time"
    resumed = plan.counted != plan.within
    counted = format_duration(plan.counted)
    how = f"{counted} left of {format_duration(plan.within)}" if resumed else format_duration(plan.within)
    verb = "resumed" if resumed else "started"
    lines = [
        f"{plan.target} (generation {plan.generation}): within {how} of {kind}, {verb} {_show(plan.started_at, zone)}."
    ]
    if plan.time == "calendar":
        lines.append(f"  {_show(plan.started_at, zone)} + {counted} = {_show(plan.due_at, zone)}.")
    else:
        spans = list(calendar.intervals(plan.started_at, plan.due_at))
        for begin, end in spans[:_SHOWN_INTERVALS]:
            lines.append(f"  open {_show(begin, zone)} to {_clock(end, begin, zone)}: {format_duration(end - begin)}")
        if len(spans) > _SHOWN_INTERVALS:
            rest = sum((end - begin for begin, end in spans[_SHOWN_INTERVALS:]), _ZERO)
            lines.append(f"  ... and {len(spans) - _SHOWN_INTERVALS} more open intervals: {format_duration(rest)}")
        lines.append(f"  = {counted} of open time, so due {_show(plan.due_at, zone)}.")
        skipped = _closed_days(team, plan.started_at, plan.due_at, zone)
        if skipped:
            lines.append(f"  Closed in between: {'; '.join(skipped)}.")
    lines.append(f"  Due {_show(plan.due_at, zone)} ({stamp(plan.due_at)}).")
    left = {warning.label: _left_at(warning, plan.within) for warning in policy.warnings}
    for label, at in plan.warnings:
        lines.append(f"  Warning {label} ({format_duration(left[label])} left): {_show(at, zone)}.")
    planned = {label for label, _ in plan.warnings}
    passed = [label for label in left if label not in planned]
    if passed:
        lines.append(f"  Not planned, already past at the start: warning {', '.join(passed)}.")
    for level, at, to in plan.escalations:
        lines.append(f"  Escalation level {level}: {_show(at, zone)}, to {', '.join(to)}.")
    return lines


def _closed_days(team: Team, start: datetime, end: datetime, zone: ZoneInfo) -> list[str]:
    """Closed dates and public holidays on the team's local days from `start` to `end`, named."""
    if team.calendar is None:
        return []
    calendar = team.calendar
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    names: dict[date, str] = {}
    if calendar.holidays is not None:
        import holidays

        years = list(range(first.year, last.year + 1))
        # named in English, as the rest of the explanation is, whatever the process's locale (Lambda's and a shell's
        # differ: holidays reads LANG and the country's own language otherwise)
        found = holidays.country_holidays(
            calendar.holidays.country, subdiv=calendar.holidays.subdivision, years=years, language="en_US"
        )
        names.update({day: f"{day.isoformat()} ({name})" for day, name in found.items() if first <= day <= last})
    for day in calendar.closed_dates:
        if first <= day <= last:
            names[day] = f"{day.isoformat()} (closed date)"
    return [names[day] for day in sorted(names) if day not in calendar.open_dates]


def _show(at: datetime, zone: ZoneInfo) -> str:
    local = _whole_second(at.astimezone(zone))
    clock = "%H:%M:%S" if local.second else "%H:%M"
    return local.strftime(f"%a %Y-%m-%d {clock} %Z")


def _clock(end: datetime, begin: datetime, zone: ZoneInfo) -> str:
    """The end of an interval: only its time when on the same local day as its start."""
    local, opened = _whole_second(end.astimezone(zone)), begin.astimezone(zone)
    if local.date() != opened.date():
        return _show(end, zone)
    return local.strftime("%H:%M:%S %Z" if local.second else "%H:%M %Z")
