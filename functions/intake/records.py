"""Plain records of the domain that the ticket store hands its callers, or takes from them, besides the models of
`intake.model`: a ticket read with its clocks, what a message does to them, a contact's plan, a digest's figures, a
survey's answer, why an address is suppressed. They sit below the store and the features alike, so that the store
imports no feature module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from intake.model import Contact, Message, SlaTimer, Ticket


@dataclass(frozen=True)
class Seen:
    ticket_id: str
    dedupe_until: datetime
    message_sk: str | None = None  # the message it became, when it became one


@dataclass(frozen=True)
class CallState:
    """Everything known so far about one call, folded from its callbacks."""

    call_sid: str
    started_at: datetime
    team: str | None
    caller: str | None
    caller_name: str | None
    called: str | None
    recording_sid: str | None
    recording_url: str | None
    recording_duration_s: int | None
    transcript_text: str | None
    transcript_status: str | None
    statuses: frozenset[str]
    duration_s: int | None
    recording_key: str | None = None  # the recording's archived copy (`attachments/...`), once downloaded
    recording_size: int | None = None


@dataclass(frozen=True)
class ContactPlan:
    """How the sender's contact is written with the ticket: new, extended with identities, or as is."""

    contact_id: str
    is_new: bool
    name: str | None
    new_identities: tuple[tuple[str, str], ...]
    absorbed: tuple[Contact, ...] = ()  # other contacts found to be this one: merged into it


@dataclass(frozen=True)
class ClockPlan:
    """What a message does to its ticket's SLA clocks, written with it: the generations it starts (the first of a
    target, or each in place of the one before it) and the ticket's place in its team's queue afterwards (its
    earliest running or breached deadline; None: after every deadline)."""

    started: tuple[SlaTimer, ...]
    next_due_at: datetime | None


@dataclass(frozen=True)
class TicketState:
    """A ticket with its SLA clocks, read together."""

    ticket: Ticket
    timers: tuple[SlaTimer, ...]


@dataclass(frozen=True)
class Lookup:
    """What the ingest core decides a message on: its dedupe record, the contact each of the sender's identities
    belongs to (None: unknown), the ticket its thread points to with that ticket's clocks, and the tickets its
    email Message-IDs are recorded against (those that are)."""

    seen: Seen | None
    owners: dict[tuple[str, str], str | None]
    thread: TicketState | None
    message_tickets: dict[str, str]


@dataclass(frozen=True)
class ThreadLinks:
    """The tickets an email's Message-IDs (`MSGID#`) and reference tokens (`REF#`) are recorded against."""

    by_message_id: dict[str, str]
    by_reference: dict[str, str]


@dataclass(frozen=True)
class FailureRecord:
    """A queue message's failed tries: its latest error, how many failed, the first and the last."""

    queue: str
    message_id: str
    error_type: str
    error_message: str
    attempts: int
    first_try: datetime
    last_try: datetime


@dataclass(frozen=True)
class OutboundRecord:
    """A reply as recorded on its ticket: the message, its sort key, and whether it counted as the response yet."""

    message: Message
    sk: str
    counted: bool


@dataclass(frozen=True)
class OpenQueue:
    """A team's open queue as a digest shows it."""

    open: int
    breached: int
    overdue: int  # next SLA deadline at or before the digest's `now`
    longest_waiting: tuple[Ticket, ...]  # breached first, then by the oldest last customer message
    uncounted: int = 0  # queued tickets its counters do not hold yet: the whole queue was read


@dataclass(frozen=True)
class ScoreReceived:
    """A customer's answer to a satisfaction survey, as a digest reads it."""

    ticket_id: str
    score: int
    answered_at: datetime
    comment: str | None


@dataclass(frozen=True)
class CsatAnswer:
    """A ticket's recorded answer to its satisfaction survey: the first score given, and the latest comment."""

    ticket_id: str
    team: str
    score: int
    answered_at: datetime
    comment: str | None = None


class SuppressionReason(StrEnum):
    """Why mail to an address stopped (`intake.suppression`)."""

    BOUNCE = "bounce"  # SES: bounceType Permanent
    COMPLAINT = "complaint"
