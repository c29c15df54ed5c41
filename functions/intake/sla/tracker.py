"""What happens to a ticket's SLA clocks when something happens to the ticket.

A new ticket starts its first-response and resolution clocks; a customer message while the team owes
a reply starts next-response (and un-pauses a pending ticket): the ingest core writes those with the
message (`intake.sla.policy`), and the tracker starts their executions. Agents respond, set pending (the
clocks pause), resolve (they stop), reopen (resolution resumes with the time it had left), assign, or
change the priority (running clocks restart under the new policy with the time already used counted).

Each clock is one timer item (`TICKET#id`/`SLA#target`) and one Step Functions execution per generation.
Ending a generation is a conditional write on (generation, state), the same condition the state
machine's breach carries, so a response that races the deadline is either in time or a breach, never
both and never neither. Stopping the execution afterwards only saves it the wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from intake.config import Policy, SlaPolicy
from intake.errors import TransitionInvalidError
from intake.ingest import IngestResult, Outcome
from intake.model import (
    AgentAction,
    EventKind,
    SlaTarget,
    SlaTimer,
    Status,
    Ticket,
    TicketDetail,
    TimerState,
)
from intake.observability import logger
from intake.satisfaction import Surveys
from intake.sla.calendar import BusinessCalendar, calendar_for
from intake.sla.policy import execution_name, next_deadline, plan_timer, policy_for, remaining_at
from intake.sla.timers import TimerControl, TimersUnavailableError
from intake.store import Store, WriteConflictError
from intake.store.keys import iso

_LIVE = (TimerState.RUNNING, TimerState.PAUSED)


# which statuses each action applies to, and the status it leaves
_TRANSITIONS: dict[str, tuple[tuple[Status, ...], Status | None]] = {
    "responded": ((Status.OPEN, Status.PENDING), None),
    "pending": ((Status.OPEN,), Status.PENDING),
    "resolved": ((Status.OPEN, Status.PENDING), Status.RESOLVED),
    "reopened": ((Status.RESOLVED,), Status.OPEN),
    "assigned": ((Status.OPEN, Status.PENDING), None),
    "priority_changed": ((Status.OPEN, Status.PENDING), None),
}
_EVENTS = {
    "responded": EventKind.RESPONDED,
    "pending": EventKind.PENDING,
    "resolved": EventKind.RESOLVED,
    "reopened": EventKind.REOPENED,
    "assigned": EventKind.ASSIGNED,
    "priority_changed": EventKind.PRIORITY_CHANGED,
}


@dataclass(frozen=True)
class Tracker:
    store: Store
    timers: TimerControl
    policy: Policy
    surveys: Surveys | None = None  # satisfaction surveys after a resolution; None: none are sent

    # ------------------------------------------------------------ the customer side

    def after_ingest(self, result: IngestResult, at: datetime) -> None:
        """What a message the ingest core just handled means for the clocks. What it does to them (a new ticket's
        clocks; a customer's reply resuming paused ones or starting next-response) was written with it
        (`result.clocked`): their executions start, nothing is read. Otherwise (a redelivery, after a crash perhaps
        between that write and the starts; a message written without a policy, such as a voicemail's transcript),
        the clocks of an open ticket are made sure to exist and run."""
        if result.outcome == Outcome.ANNOTATED:
            return
        if result.clocked:
            for timer in result.timers:
                self.timers.start(_name(result.ticket_id, timer), timer.execution)
            return
        ticket = self.store.ticket(result.ticket_id)
        if ticket.status.is_open:
            self.opened(ticket, at)

    def opened(self, ticket: Ticket, at: datetime) -> None:
        """A new ticket: first response and resolution start at its creation. Safe to call again (a retried
        worker): a missing clock is started, and every running clock's execution (next-response's too) is
        made sure to exist — starting it again by its name is a no-op when it runs."""
        existing = {t.target: t for t in self.store.timers(ticket.id)}
        for target in (SlaTarget.FIRST_RESPONSE, SlaTarget.RESOLUTION):
            if target not in existing:
                self._start(ticket, target, ticket.created_at, at, generation=1)
        for timer in existing.values():
            if timer.state == TimerState.RUNNING:
                self.timers.start(_name(ticket.id, timer), timer.execution)
        self._reschedule(ticket)

    # -------------------------------------------------------------- the agent side

    def act(self, ticket_id: str, action: AgentAction, at: datetime) -> TicketDetail:
        ticket = self.store.ticket(ticket_id)
        allowed, after = _TRANSITIONS[action.type]
        if ticket.status not in allowed:
            raise TransitionInvalidError(ticket_id, action.type, ticket.status.value)
        sets: dict[str, Any] = {}
        removes: list[str] = []
        if after is not None:
            sets["status"] = after.value
        if action.type == "resolved":
            sets["resolved_at"] = iso(at)
        if action.type == "reopened":
            removes.append("resolved_at")
        if action.type == "responded" and ticket.first_responded_at is None:
            sets["first_responded_at"] = iso(at)
        if action.type == "assigned":
            sets["assignee"] = action.assignee
        if action.type == "priority_changed":
            sets["priority"] = action.priority.value if action.priority else ticket.priority.value
        detail = {k: v for k, v in action.model_dump(mode="json").items() if v is not None and k != "type"}
        if action.type == "priority_changed":
            detail["from"] = ticket.priority.value
        try:
            self.store.change_ticket(ticket, at, _EVENTS[action.type], detail, sets=sets, removes=removes)
        except WriteConflictError:
            current = self.store.ticket(ticket_id)  # changed meanwhile: judge again against what it is now
            raise TransitionInvalidError(ticket_id, action.type, current.status.value) from None
        changed = self.store.ticket(ticket_id)
        timers = {t.target: t for t in self.store.timers(ticket_id)}
        if action.type == "responded":
            for target in (SlaTarget.FIRST_RESPONSE, SlaTarget.NEXT_RESPONSE):
                if (timer := timers.get(target)) is not None and timer.state in _LIVE:
                    self._answer(changed, timer, TimerState.MET, at)
                elif timer is not None and timer.state == TimerState.BREACHED:
                    self._end(changed, timer, TimerState.STOPPED, at)  # answered late: no further escalation
        elif action.type == "pending":
            for timer in timers.values():
                if timer.state == TimerState.RUNNING:
                    self._end(changed, timer, TimerState.PAUSED, at)
        elif action.type == "resolved":
            for timer in timers.values():
                if timer.state in _LIVE:
                    met = timer.target == SlaTarget.RESOLUTION
                    self._answer(changed, timer, TimerState.MET if met else TimerState.STOPPED, at)
                elif timer.state == TimerState.BREACHED:
                    self._end(changed, timer, TimerState.STOPPED, at)  # its escalations stop
            if self.surveys is not None:
                self.surveys.after_resolution(changed, at)
        elif action.type == "reopened":
            self._resume_resolution(changed, at)
        elif action.type == "priority_changed":
            self._replan(changed, timers.values(), at)
        self._reschedule(changed)
        return self.store.ticket_detail(ticket_id)

    def explain(self, ticket_id: str) -> str:
        """The policy, calendar and arithmetic behind each of the ticket's deadlines, in the team's time zone."""
        from intake.sla.policy import explain

        ticket = self.store.ticket(ticket_id)
        named = {p.name: p for p in self.policy.sla.policies}
        timers = self.store.timers(ticket_id)
        policy = named.get(timers[0].policy) if timers else None
        policy = policy or self.sla_policy(ticket)
        calendar = self.calendar(ticket)
        plans = []
        for timer in timers:
            spec = policy.target(timer.target.value)
            if spec is None:
                continue
            left = max(timedelta(0), spec.within - timedelta(seconds=timer.consumed_s))
            plan = plan_timer(policy, timer.target.value, calendar, timer.started_at, timer.generation, remaining=left)
            if plan is not None:
                plans.append(plan)
        header = [
            f"#{ticket.reference} · {ticket.status.value} · {ticket.priority.value} · {ticket.channel}",
            *(f"  {t.target.value}: {t.state.value}, generation {t.generation}" for t in timers),
            "",
        ]
        team = self.policy.teams[ticket.team]
        body = explain(
            policy, plans, calendar, team, team_id=ticket.team, channel=ticket.channel, priority=ticket.priority
        )
        return "\n".join(header) + body

    # ------------------------------------------------------------------ the clocks

    def sla_policy(self, ticket: Ticket) -> SlaPolicy:
        return policy_for(self.policy.sla, ticket.team, ticket.channel, ticket.priority)

    def calendar(self, ticket: Ticket) -> BusinessCalendar:
        return calendar_for(self.policy.teams[ticket.team])

    def _start(
        self,
        ticket: Ticket,
        target: SlaTarget,
        start: datetime,
        at: datetime,
        *,
        generation: int,
        replaces: SlaTimer | None = None,
        remaining: timedelta | None = None,
        consumed_s: int = 0,
        policy: SlaPolicy | None = None,
    ) -> SlaTimer | None:
        policy = policy or self.sla_policy(ticket)
        plan = plan_timer(policy, target.value, self.calendar(ticket), start, generation, remaining=remaining)
        if plan is None:
            return None
        timer = plan.timer(ticket.id, at, consumed_s)
        try:
            self.store.put_timer(ticket.id, timer, None if replaces is None else replaces.generation)
        except WriteConflictError:
            return None  # another worker started this generation (or a later one) first
        self.timers.start(plan.execution_name(ticket.id), timer.execution)
        detail = {"target": target.value, "generation": generation, "due_at": timer.due_at.isoformat()}
        self.store.record_event(ticket.id, EventKind.TIMER_STARTED, at, detail)
        return timer

    def _end(self, ticket: Ticket, timer: SlaTimer, state: TimerState, at: datetime) -> bool:
        """End (or pause) the clock; False when the state machine got there first (a breach)."""
        consumed = timer.consumed_s
        if timer.state == TimerState.RUNNING:
            left = remaining_at(timer.due_at, timer.time, self.calendar(ticket), at)
            consumed = timer.target_s - int(left.total_seconds())
        if not self.store.end_timer(ticket.id, timer, state.value, at, consumed_s=consumed):
            return False
        if timer.state in (TimerState.RUNNING, TimerState.BREACHED):  # waiting for a deadline or an escalation
            self._stop(_name(ticket.id, timer), f"{state.value} at {at.isoformat()}")
        kind = {TimerState.PAUSED: EventKind.TIMER_PAUSED, TimerState.MET: EventKind.TIMER_MET}
        detail = {"target": timer.target.value, "generation": timer.generation, "used_s": consumed}
        self.store.record_event(ticket.id, kind.get(state, EventKind.TIMER_STOPPED), at, detail)
        return True

    def _answer(self, ticket: Ticket, timer: SlaTimer, state: TimerState, at: datetime) -> None:
        """End a live clock as `state`. When the state machine's breach won the race between our read and our
        write, the breach stands (it was sent) but the clock stops there, so its escalations end too."""
        if self._end(ticket, timer, state, at):
            return
        now = next((t for t in self.store.timers(ticket.id) if t.target == timer.target), None)
        if now is not None and now.generation == timer.generation and now.state == TimerState.BREACHED:
            self._end(ticket, now, TimerState.STOPPED, at)

    def _stop(self, name: str, cause: str) -> None:
        """Only saves the execution its wait: the timer item already says it is over, and the machine re-reads it
        before every notice. So a failure here is logged, not raised (the change is made)."""
        try:
            self.timers.stop(name, cause)
        except TimersUnavailableError:
            logger.warning("SLA execution not stopped; it will find its timer settled", extra={"execution": name})
        except Exception:  # the change is committed: failing the request now would only mislead its caller
            logger.exception("SLA execution not stopped; it will find its timer settled", extra={"execution": name})

    def _resume_resolution(self, ticket: Ticket, at: datetime) -> None:
        timer = next((t for t in self.store.timers(ticket.id) if t.target == SlaTarget.RESOLUTION), None)
        if timer is not None and timer.state in (TimerState.MET, TimerState.PAUSED):
            self._restart(ticket, timer, at, policy=None)

    def _replan(self, ticket: Ticket, timers: Any, at: datetime) -> None:
        """Running clocks restart under the policy the new priority selects, with the time used so far counted."""
        policy = self.sla_policy(ticket)
        for timer in list(timers):
            if timer.state != TimerState.RUNNING:
                continue
            left = remaining_at(timer.due_at, timer.time, self.calendar(ticket), at)
            used = timer.target_s - int(left.total_seconds())
            if self._restart(ticket, timer, at, policy=policy, consumed_s=used):
                self._stop(_name(ticket.id, timer), f"priority changed at {at.isoformat()}")

    def _restart(
        self, ticket: Ticket, timer: SlaTimer, at: datetime, *, policy: SlaPolicy | None, consumed_s: int | None = None
    ) -> bool:
        used = timer.consumed_s if consumed_s is None else consumed_s
        chosen = policy or self.sla_policy(ticket)
        spec = chosen.target(timer.target.value)
        if spec is None:
            return False
        left = max(timedelta(0), spec.within - timedelta(seconds=used))
        started = self._start(
            ticket,
            timer.target,
            at,
            at,
            generation=timer.generation + 1,
            replaces=timer,
            remaining=left,
            consumed_s=used,
            policy=chosen,
        )
        return started is not None

    def _reschedule(self, ticket: Ticket) -> None:
        """The ticket's place in its team's queue: its earliest deadline among running and breached clocks (a
        breached one has passed: it comes first), else after every deadline (paused, met or no SLA)."""
        self.store.schedule(ticket, next_deadline(self.store.timers(ticket.id)))


def _name(ticket_id: str, timer: SlaTimer) -> str:
    return execution_name(ticket_id, timer.target.value, timer.generation)
