"""InboundMessage → contact → thread → ticket: the channel-agnostic core.

Every step is one read (`Store.lookup`: the dedupe record, the sender's identities, the thread and its ticket's
clocks) followed by one conditional transaction that writes everything the message changes, its SLA clocks
included, so running the same message again, after a crash anywhere or concurrently, ends in the same state: one
ticket, one message, each clock generation once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from intake import identity
from intake.channels import registry
from intake.limits import fitted
from intake.model import (
    InboundMessage,
    Priority,
    Reaction,
    Sender,
    SlaTimer,
    Status,
    Ticket,
    reference_for,
)
from intake.records import ClockPlan, ContactPlan, TicketState
from intake.store import Store, WriteConflictError
from intake.text import snippet

if TYPE_CHECKING:
    from intake.config import Policy

IdFactory = Callable[[], str]
ATTEMPTS = 5


class IngestContentionError(Exception):
    """Lost the race for the same thread or contact too many times; the queue will retry."""


class Outcome(StrEnum):
    CREATED = "created"
    APPENDED = "appended"
    REOPENED = "reopened"  # a resolved ticket the customer wrote to again within its reopen window
    DUPLICATE = "duplicate"
    ANNOTATED = "annotated"


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    ticket_id: str
    timers: tuple[SlaTimer, ...] = ()  # the clock generations written with the message, for the tracker to start
    clocked: bool = False  # what the message does to the clocks was written with it (a policy was given)
    ticket: Ticket | None = None  # CREATED: the ticket as written


def ingest(
    store: Store,
    message: InboundMessage,
    new_id: IdFactory,
    policy: Policy | None = None,
    *,
    message_ids: Sequence[str] = (),
    known: TicketState | None = None,
) -> IngestResult:
    """`policy` (when given) sets a new ticket's priority (its priority rules), its clocks and what the message does
    to an existing ticket's (`intake.sla.policy`), and how long after resolution a customer message reopens a ticket
    (the team's `reopen_within`; later, a new ticket linked to it). A message past what one item holds is cut to fit
    (`intake.limits`), never refused. `message_ids` (email) are recorded against the ticket with the message, those
    not recorded yet; `known` is the thread's ticket as the caller just read it (not read again)."""
    message = fitted(message)
    for attempt in range(ATTEMPTS):
        earlier = identity.earlier_forms(message.sender.identities())
        found = store.lookup(message, message_ids, known if attempt == 0 else None, earlier)
        if found.seen is not None and found.seen.dedupe_until > message.received_at:
            return IngestResult(Outcome.DUPLICATE, found.seen.ticket_id)
        contact = plan_contact(store, message.sender, found.owners, new_id)
        unrecorded = tuple(i for i in message_ids if i not in found.message_tickets)
        current = found.thread
        try:
            if current is not None and current.ticket.status.is_open:
                # (the ticket as read is the version the append is conditioned on: a concurrent write retries)
                clocks = _clocks(current, message, policy)
                store.append_message(
                    current.ticket,
                    message,
                    contact,
                    clocks=clocks,
                    message_ids=unrecorded,
                    reply_window=registry.reply_window(current.ticket.channel),
                )
                return _result(Outcome.APPENDED, current.ticket.id, clocks)
            if current is not None and _reopens(current.ticket, message, policy):
                clocks = _clocks(current, message, policy)
                store.append_message(
                    current.ticket,
                    message,
                    contact,
                    reopen=True,
                    clocks=clocks,
                    message_ids=unrecorded,
                    reply_window=registry.reply_window(current.ticket.channel),
                )
                return _result(Outcome.REOPENED, current.ticket.id, clocks)
            previous = None if current is None else current.ticket
            ticket = _new_ticket(message, contact.contact_id, new_id(), _priority(message, policy), previous)
            timers = _opening_timers(ticket, policy)
            replaces = None if previous is None else previous.id
            store.create_ticket(ticket, message, contact, replaces, _day(ticket, policy), timers, unrecorded)
            return IngestResult(Outcome.CREATED, ticket.id, tuple(timers), clocked=policy is not None, ticket=ticket)
        except WriteConflictError:
            continue  # someone else wrote first: read again and decide again
    raise IngestContentionError(message.receipt_id)


def _clocks(current: TicketState, message: InboundMessage, policy: Policy | None) -> ClockPlan | None:
    """What the message does to the clocks of the ticket it joins (None without a policy: nothing)."""
    if policy is None:
        return None
    from intake.sla.policy import customer_message_timers, next_deadline

    started = customer_message_timers(policy, current.ticket, current.timers, message.received_at)
    after = {t.target: t for t in current.timers} | {t.target: t for t in started}
    return ClockPlan(tuple(started), next_deadline(after.values()))


def _result(outcome: Outcome, ticket_id: str, clocks: ClockPlan | None) -> IngestResult:
    if clocks is None:
        return IngestResult(outcome, ticket_id)
    return IngestResult(outcome, ticket_id, clocks.started, clocked=True)


DEFAULT_REOPEN_WINDOW = timedelta(days=7)


def _reopens(ticket: Ticket, message: InboundMessage, policy: Policy | None) -> bool:
    if ticket.status != Status.RESOLVED or ticket.resolved_at is None:
        return False
    team = policy.teams.get(ticket.team) if policy is not None else None
    window = team.reopen_within if team is not None else DEFAULT_REOPEN_WINDOW
    return message.received_at - ticket.resolved_at <= window


def _day(ticket: Ticket, policy: Policy | None) -> date | None:
    """The team's local date of the ticket's creation: which day's digest it belongs to."""
    team = policy.teams.get(ticket.team) if policy is not None else None
    return None if team is None else ticket.created_at.astimezone(ZoneInfo(team.timezone)).date()


def _opening_timers(ticket: Ticket, policy: Policy | None) -> list[SlaTimer]:
    if policy is None:
        return []
    from intake.sla.policy import opening_timers

    return opening_timers(policy, ticket)


def _priority(message: InboundMessage, policy: Policy | None) -> Priority:
    if policy is None:
        return message.priority
    from intake.sla.policy import priority_for

    identities = message.sender.identities()
    return priority_for(policy.priority, message.channel, message.subject, message.text, identities, message.priority)


PrepareStep = Callable[[InboundMessage, Callable[[], bool]], InboundMessage]  # (message, is it new?) -> message


def ingest_prepared(
    store: Store, message: InboundMessage, new_id: IdFactory, prepare: PrepareStep, policy: Policy | None = None
) -> IngestResult:
    """The channel's worker step first (media the provider only referenced, the sender's name: `Channel.prepare`),
    so the message is complete when agents see it; it asks whether the message is new before any call, so a message
    already ingested is not prepared again."""
    message = prepare(message, lambda: _duplicate_of(store, message) is None)
    return ingest(store, message, new_id, policy)


def annotate(store: Store, reaction: Reaction) -> IngestResult | None:
    """A reaction marks the message it reacts to; one to a message we do not have is dropped (None)."""
    target = store.seen(reaction.provider, reaction.reacted_to)
    if target is None or target.message_sk is None:
        return None
    store.react(target.ticket_id, target.message_sk, reaction.emoji)
    return IngestResult(Outcome.ANNOTATED, target.ticket_id)


def _duplicate_of(store: Store, message: InboundMessage) -> str | None:
    seen = store.seen(message.provider, message.provider_message_id)
    if seen is None or seen.dedupe_until <= message.received_at:
        return None
    return seen.ticket_id


def plan_contact(
    store: Store, sender: Sender, known: dict[tuple[str, str], str | None], new_id: IdFactory
) -> ContactPlan:
    """The contact the sender's identities point to (`known`: identity → its contact, None when unknown); identities
    not yet known are added to it. When they point to two contacts, those are one customer: the oldest survives and
    absorbs the others."""
    owners = sorted({contact_id for contact_id in known.values() if contact_id})
    unknown = tuple(pair for pair, contact_id in known.items() if contact_id is None)
    if not owners:
        return ContactPlan(new_id(), is_new=True, name=sender.name, new_identities=unknown)
    survivor, *others = owners  # ULIDs sort by creation: the oldest contact survives
    absorbed = tuple(contact for other in others if (contact := store.contact(other)) is not None)
    return ContactPlan(survivor, is_new=False, name=sender.name, new_identities=unknown, absorbed=absorbed)


def _window_closes(kind: str, last_inbound_at: datetime) -> datetime | None:
    window = registry.reply_window(kind)
    return last_inbound_at + window if window is not None else None


def _new_ticket(
    message: InboundMessage, contact_id: str, ticket_id: str, priority: Priority, previous: Ticket | None
) -> Ticket:
    return Ticket(
        id=ticket_id,
        reference=reference_for(ticket_id),
        channel=message.channel,
        team=message.team,
        priority=priority,
        status=Status.OPEN,
        contact_id=contact_id,
        subject=message.subject,
        customer=message.sender.name or message.sender.email or message.sender.phone,
        snippet=snippet(message.text),
        thread_key=message.thread_key,
        created_at=message.received_at,
        updated_at=message.received_at,
        last_inbound_at=message.received_at,
        message_count=1,
        reply_window_closes_at=_window_closes(message.channel, message.received_at),
        previous_ticket_id=previous.id if previous is not None else None,
    )
