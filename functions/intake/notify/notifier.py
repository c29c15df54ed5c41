"""SLA notifications: a message from the SLA timer (warning, breach, escalation) → one email to the right people.

Sends once. The contract's dedupe key is claimed (`Store.claim_token`) before the email goes out, so a
redelivered message, or the same notice sent twice by the state machine, finds it claimed and sends
nothing. If sending fails, the claim is released (`Store.release_token`) before the error propagates, so the
queue's retry sends it; the message is never dropped, at worst it ends in the dead-letter queue.

Stale notices are skipped: the ticket was resolved or closed meanwhile, or its timer moved on (another
generation, a response that met it). The state machine checks this before it enqueues; checking again here
covers a message that waited in the queue or was redriven from the dead-letter queue days later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from intake.config import Notifications, Policy, SlaPolicy, Team
from intake.model import (
    Direction,
    EventKind,
    SlaTarget,
    SlaTimer,
    TicketDetail,
    TicketId,
    TimerState,
    UtcDatetime,
)
from intake.notify.mailer import Mailer, compose
from intake.observability import logger
from intake.satisfaction import Delivered, SurveyDelivery, SurveyNotice, deliver_survey, survey_notice

CLAIM_SCOPE = "notify"


class Notification(BaseModel):
    """What the SLA state machine puts on the notifications queue (the SLA contract: `intake.sla`'s docstring).
    Unknown fields are ignored: the machine may add some."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    kind: Literal["warning", "breach", "escalation"]
    ticket_id: TicketId
    target: SlaTarget
    generation: int = Field(ge=1)
    due_at: UtcDatetime
    label: str | None = Field(default=None, max_length=32, description="warnings: which one (50%, 15m)")
    level: int | None = Field(default=None, ge=1, description="escalations: 1 at breach, then 2, 3, ...")

    @model_validator(mode="after")
    def _level_for_escalations(self) -> Notification:
        if self.kind == "escalation" and self.level is None:
            raise ValueError("an escalation needs its level")
        return self

    @property
    def dedupe_key(self) -> str:
        """`<ticket_id>#<target>#<generation>#<kind>#<label or level or "">`: one email per key, ever."""
        detail = self.label if self.kind == "warning" else self.level if self.kind == "escalation" else None
        return f"{self.ticket_id}#{self.target.value}#{self.generation}#{self.kind}#{detail or ''}"


class NotifyStore(Protocol):
    """What the notifier needs of the store."""

    def ticket_detail(self, ticket_id: str) -> TicketDetail: ...

    def claim_token(self, provider: str, token: str, at: datetime) -> bool: ...

    def release_token(self, provider: str, token: str) -> None: ...

    def mark_breached(self, ticket_id: str) -> None: ...

    def record_event(self, ticket_id: str, kind: EventKind, at: datetime, detail: dict[str, Any]) -> None: ...


class Outcome(StrEnum):
    SENT = "sent"
    DUPLICATE = "duplicate"  # claimed before: sent already (or being sent)
    NO_RECIPIENTS = "no_recipients"  # nobody to tell: skipped, not an error
    STALE = "stale"  # the ticket or its timer moved on
    REQUESTED = "requested"  # surveys: a contact without email, handed to another channel (SurveyRequested)
    SUPPRESSED = "suppressed"  # surveys: the contact's address bounced for good or complained (intake.suppression)


@dataclass(frozen=True)
class Notified:
    outcome: Outcome
    notification: Notification | SurveyNotice
    recipients: int = 0
    message_ids: tuple[str, ...] = ()


_EVENTS = {"warning": EventKind.WARNED, "breach": EventKind.BREACHED, "escalation": EventKind.ESCALATED}
_STATE_EXPECTED = {"warning": TimerState.RUNNING, "breach": TimerState.BREACHED, "escalation": TimerState.BREACHED}


def parse(body: str | bytes | Mapping[str, Any] | Notification) -> Notification:
    """The queue message's body (JSON text or already decoded) as a `Notification`; ValidationError if not one."""
    if isinstance(body, Notification):
        return body
    if isinstance(body, str | bytes):
        return Notification.model_validate_json(body)
    return Notification.model_validate(dict(body))


def notify(
    body: str | bytes | Mapping[str, Any] | Notification,
    *,
    store: NotifyStore,
    mailer: Mailer,
    policy: Policy,
    base_url: str,
    now: datetime,
    surveys: SurveyDelivery | None = None,
) -> Notified:
    """Tell the right people about one SLA warning, breach or escalation, once; or send a ticket's satisfaction
    survey (kind `survey`, see `intake.satisfaction`), which needs `surveys`."""
    survey = survey_notice(body)
    if survey is not None:
        return _survey(survey, surveys, mailer=mailer, policy=policy, base_url=base_url, now=now)
    note = parse(body)
    ids = {"ticket_id": note.ticket_id, "kind": note.kind, "target": note.target.value, **_which(note)}
    detail = store.ticket_detail(note.ticket_id)
    timer = next((t for t in detail.sla if t.target == note.target), None)
    why_stale = stale(note, detail, timer)
    if why_stale is not None:
        logger.info("notification skipped: stale", extra={**ids, "reason": why_stale})
        return Notified(Outcome.STALE, note)
    if note.kind == "breach":
        store.mark_breached(note.ticket_id)  # idempotent: a flag on the ticket, for lists and digests
    team = policy.teams.get(detail.team)
    to = recipients(note, detail, timer, policy, team)
    if not to:
        logger.info("notification skipped: no recipients", extra=ids)
        return Notified(Outcome.NO_RECIPIENTS, note)
    if not store.claim_token(CLAIM_SCOPE, note.dedupe_key, now):
        logger.info("notification already sent", extra=ids)
        return Notified(Outcome.DUPLICATE, note)
    try:
        subject, text, html = _render(note, detail, policy, team, base_url, now)
        message = compose(
            sender=policy.notifications.sender,
            to=to,
            subject=subject,
            text=text,
            html=html,
            at=now,
            headers={
                "Auto-Submitted": "auto-generated",  # RFC 3834: no auto-reply to it, no ticket from it
                "X-Auto-Response-Suppress": "All",
                "X-Intake-Ticket": note.ticket_id,
                "X-Intake-Notice": f"{note.kind}; target={note.target.value}; generation={note.generation}"
                + (f"; level={note.level}" if note.level is not None else "")
                + (f"; label={note.label}" if note.label is not None else ""),
            },
        )
        sent = mailer.send(message)
    except BaseException:
        store.release_token(CLAIM_SCOPE, note.dedupe_key)  # so that the queue's retry sends it
        raise
    event = {"target": note.target.value, **_which(note), "recipients": len(to)}
    store.record_event(note.ticket_id, _EVENTS[note.kind], now, event)
    logger.info("notification sent", extra={**ids, "recipients": len(to)})
    return Notified(Outcome.SENT, note, len(to), sent)


_DELIVERED = {
    Delivered.EMAILED: Outcome.SENT,
    Delivered.REQUESTED: Outcome.REQUESTED,
    Delivered.DUPLICATE: Outcome.DUPLICATE,
    Delivered.STALE: Outcome.STALE,
    Delivered.UNREACHABLE: Outcome.NO_RECIPIENTS,
    Delivered.SUPPRESSED: Outcome.SUPPRESSED,
}


def _survey(
    notice: SurveyNotice,
    surveys: SurveyDelivery | None,
    *,
    mailer: Mailer,
    policy: Policy,
    base_url: str,
    now: datetime,
) -> Notified:
    if surveys is None:
        raise ValueError("a survey message reached a notifier built without survey delivery")
    delivered = deliver_survey(notice, delivery=surveys, mailer=mailer, policy=policy, base_url=base_url, now=now)
    return Notified(_DELIVERED[delivered], notice, 1 if delivered is Delivered.EMAILED else 0)


def _which(note: Notification) -> dict[str, Any]:
    """The notice's generation and its label (warnings) or level (escalations), for logs and events."""
    which: dict[str, Any] = {"generation": note.generation}
    if note.kind == "warning" and note.label is not None:
        which["label"] = note.label
    if note.kind == "escalation":
        which["level"] = note.level
    return which


def stale(note: Notification, detail: TicketDetail, timer: SlaTimer | None) -> str | None:
    """Why the notice no longer applies, or None when it does. A missing timer item is not a reason: the
    state machine read it before sending."""
    if not detail.status.is_open:
        return f"ticket {detail.status.value}"
    if timer is None:
        return None
    if timer.generation != note.generation:
        return "superseded"
    if timer.state != _STATE_EXPECTED[note.kind]:
        return f"timer {timer.state.value}"
    return None


def recipients(
    note: Notification, detail: TicketDetail, timer: SlaTimer | None, policy: Policy, team: Team | None
) -> list[str]:
    """Warnings and breaches: the team's `notify` list (default: its address). Escalation level N: level N's
    `to` in the ticket's SLA policy (the one named on its timer; else the one that matches it now)."""
    if note.kind == "escalation":
        assert note.level is not None
        levels = sla_policy(detail, timer, policy).escalation
        found = levels[note.level - 1].to if note.level <= len(levels) else []
    elif team is None:
        found = []
    else:
        found = team.notify or ([team.email] if team.email else [])
    return list(dict.fromkeys(address.lower() for address in found))


def sla_policy(detail: TicketDetail, timer: SlaTimer | None, policy: Policy) -> SlaPolicy:
    from intake.sla.policy import policy_for

    named = {p.name: p for p in policy.sla.policies}
    if timer is not None and timer.policy in named:
        return named[timer.policy]
    return policy_for(policy.sla, detail.team, detail.channel, detail.priority)


def ticket_url(policy: Policy, base_url: str, ticket_id: str) -> str:
    """`notifications.ticket_url` with `{base_url}` and `{ticket_id}` filled in (other braces left as they are).
    Unset, a person is sent to the console's page where there is a console: in AWS only with the OIDC sign-in of
    `api.jwt.console` (`intake serve` always has one: its policy comes with `Notifications.CONSOLE_TICKET_URL` set,
    `intake.runtime.policy`); elsewhere (AWS with IAM, or JWTs for tools only) only tools read tickets, as JSON."""
    template = policy.notifications.ticket_url
    if template is None:
        signs_in = policy.api.jwt is not None and policy.api.jwt.console is not None
        template = Notifications.CONSOLE_TICKET_URL if signs_in else Notifications.JSON_TICKET_URL
    return template.replace("{base_url}", base_url.rstrip("/")).replace("{ticket_id}", ticket_id)


def waiting_since(note: Notification, detail: TicketDetail) -> datetime:
    """Since when the customer has waited for this target: resolution, since the ticket opened; a response,
    since their first message after our latest response (the ticket's opening when we never responded)."""
    if note.target is SlaTarget.RESOLUTION:
        return detail.created_at
    responses = [e.at for e in detail.events if e.kind is EventKind.RESPONDED]
    responses += [m.received_at for m in detail.messages if m.direction is Direction.OUTBOUND]
    if not responses:
        return detail.created_at
    answered = max(responses)
    after = [m.received_at for m in detail.messages if m.direction is Direction.INBOUND and m.received_at > answered]
    return min(after, default=detail.last_inbound_at)


def _render(
    note: Notification,
    detail: TicketDetail,
    policy: Policy,
    team: Team | None,
    base_url: str,
    now: datetime,
) -> tuple[str, str, str]:
    from intake.notify.render import render  # Jinja2 only where mail is written

    inbound = [m for m in detail.messages if m.direction is Direction.INBOUND and m.text.strip()]
    last = max(inbound, key=lambda m: m.received_at, default=None)
    context = {
        "team_name": team.name if team else detail.team,
        "timezone": team.timezone if team else "UTC",
        "reference": detail.reference,
        "ticket_url": ticket_url(policy, base_url, detail.id),
        "subject": detail.subject,
        "customer_name": detail.contact.name if detail.contact else None,
        "channel": detail.channel,
        "priority": detail.priority.value,
        "target": note.target.value,
        "due_at": note.due_at,
        "now": now,
        "waiting_since": waiting_since(note, detail),
        "last_message": last.text if last else None,
        "last_message_at": last.received_at if last else None,
        "label": note.label,
        "level": note.level,
    }
    return render(note.kind, context)


def notification_body(notification: Notification) -> str:
    """The queue message for `notification`, as the state machine writes it (for tests and `intake replay`)."""
    return json.dumps(notification.model_dump(mode="json", exclude_none=True))
