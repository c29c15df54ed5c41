"""What a customer's message does to the SLA clocks of the ticket it joins (`customer_message_timers`), by example on
the shipped policy (an email ticket: `default`, first and next response 8 business hours, resolution 5 calendar days,
team `support` in Paris)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from intake.config import Policy
from intake.model import Channel, Priority, SlaTarget, SlaTimer, Status, Ticket, TimerState
from intake.sla.policy import customer_message_timers, next_deadline

TICKET_ID = "01JD0000000000000000000000"


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Paris"))


OPENED = paris("2026-03-09 10:00")  # a Monday


def ticket(status: Status = Status.OPEN, **changes: Any) -> Ticket:
    return Ticket(
        id=TICKET_ID,
        reference="00000000",
        channel=Channel.EMAIL,
        team="support",
        priority=Priority.NORMAL,
        status=status,
        contact_id="01JD0000000000000000000001",
        thread_key="email#a1@mail.example.org",
        created_at=OPENED,
        updated_at=OPENED,
        last_inbound_at=OPENED,
        message_count=1,
        **changes,
    )


def clock(target: SlaTarget, state: TimerState, generation: int = 1, **changes: Any) -> SlaTimer:
    fields: dict[str, Any] = {
        "target": target,
        "generation": generation,
        "state": state,
        "policy": "default",
        "time": "calendar" if target == SlaTarget.RESOLUTION else "business",
        "started_at": OPENED,
        "due_at": OPENED + timedelta(days=5) if target == SlaTarget.RESOLUTION else paris("2026-03-09 18:30"),
        "target_s": 5 * 86400 if target == SlaTarget.RESOLUTION else 8 * 3600,
    }
    return SlaTimer(**{**fields, **changes})


def test_a_message_on_an_unanswered_open_ticket_changes_no_clock(policy: Policy) -> None:
    running = [clock(SlaTarget.FIRST_RESPONSE, TimerState.RUNNING), clock(SlaTarget.RESOLUTION, TimerState.RUNNING)]

    assert customer_message_timers(policy, ticket(), running, paris("2026-03-09 11:00")) == []


def test_once_the_team_answered_next_response_starts_at_the_message_unless_it_runs(policy: Policy) -> None:
    answered = ticket(first_responded_at=paris("2026-03-09 10:30"))
    clocks = [clock(SlaTarget.FIRST_RESPONSE, TimerState.MET), clock(SlaTarget.RESOLUTION, TimerState.RUNNING)]
    wrote = paris("2026-03-09 17:00")

    [following] = customer_message_timers(policy, answered, clocks, wrote)
    running = clock(SlaTarget.NEXT_RESPONSE, TimerState.RUNNING, started_at=wrote)

    assert (following.target, following.generation, following.state) == (SlaTarget.NEXT_RESPONSE, 1, TimerState.RUNNING)
    assert following.started_at == wrote and following.due_at == paris("2026-03-10 17:00")  # 1 h Monday, 7 h Tuesday
    assert following.execution["generation"] == 1 and following.execution["sk"] == "SLA#next_response"
    assert customer_message_timers(policy, answered, [*clocks, running], wrote) == []
    met = running.model_copy(update={"state": TimerState.MET, "ended_at": paris("2026-03-10 09:00")})
    [again] = customer_message_timers(policy, answered, [*clocks, met], paris("2026-03-10 10:00"))
    assert (again.generation, again.started_at) == (2, paris("2026-03-10 10:00"))


def test_a_message_on_a_pending_ticket_resumes_its_paused_clocks_with_the_time_they_had_left(policy: Policy) -> None:
    paused_at = paris("2026-03-09 11:00")
    paused = [
        clock(SlaTarget.FIRST_RESPONSE, TimerState.PAUSED, ended_at=paused_at, consumed_s=3600),
        clock(SlaTarget.RESOLUTION, TimerState.PAUSED, ended_at=paused_at, consumed_s=3600),
    ]
    wrote = paris("2026-03-11 09:00")  # two days later: those did not count

    resumed = {t.target: t for t in customer_message_timers(policy, ticket(Status.PENDING), paused, wrote)}

    assert {(t.generation, t.state, t.started_at, t.consumed_s) for t in resumed.values()} == {
        (2, TimerState.RUNNING, wrote, 3600)
    }
    assert resumed[SlaTarget.FIRST_RESPONSE].due_at == paris("2026-03-11 17:00")  # 7 business hours, lunch left out
    assert resumed[SlaTarget.RESOLUTION].due_at == wrote + timedelta(days=5, hours=-1)
    assert next_deadline([*paused, *resumed.values()]) == paris("2026-03-11 17:00")


def test_a_message_reopening_a_resolved_ticket_resumes_resolution_and_starts_next_response(policy: Policy) -> None:
    resolved_at = paris("2026-03-09 12:00")
    resolved = ticket(Status.RESOLVED, first_responded_at=paris("2026-03-09 11:00"), resolved_at=resolved_at)
    clocks = [
        clock(SlaTarget.FIRST_RESPONSE, TimerState.MET, ended_at=paris("2026-03-09 11:00"), consumed_s=3600),
        clock(SlaTarget.RESOLUTION, TimerState.MET, ended_at=resolved_at, consumed_s=7200),
    ]
    wrote = paris("2026-03-10 09:00")

    started = {t.target: t for t in customer_message_timers(policy, resolved, clocks, wrote)}

    assert set(started) == {SlaTarget.RESOLUTION, SlaTarget.NEXT_RESPONSE}  # first response was answered: it stays
    assert (started[SlaTarget.RESOLUTION].generation, started[SlaTarget.RESOLUTION].consumed_s) == (2, 7200)
    assert started[SlaTarget.RESOLUTION].due_at == wrote + timedelta(days=5, hours=-2)
    assert started[SlaTarget.NEXT_RESPONSE].generation == 1


def test_no_clock_starts_before_the_moment_it_stopped_nor_before_the_teams_answer(policy: Policy) -> None:
    # Given a message written at 10:15 but handled after an agent answered at 10:30 and set the ticket pending at 10:45
    answered, paused_at = paris("2026-03-09 10:30"), paris("2026-03-09 10:45")
    pending = ticket(Status.PENDING, first_responded_at=answered)
    paused = [clock(SlaTarget.RESOLUTION, TimerState.PAUSED, ended_at=paused_at, consumed_s=2700)]

    started = {t.target: t for t in customer_message_timers(policy, pending, paused, paris("2026-03-09 10:15"))}

    assert started[SlaTarget.RESOLUTION].started_at == paused_at
    assert started[SlaTarget.NEXT_RESPONSE].started_at == answered
