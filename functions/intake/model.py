"""The domain's vocabulary: what a ticket, a message, a contact and an inbound message are.

Our own models are frozen and forbid unknown fields; what providers send is kept in `metadata`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

_ULID = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"  # 128 bits: the first character is at most 7
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

TicketId = Annotated[str, StringConstraints(pattern=_ULID)]
ContactId = Annotated[str, StringConstraints(pattern=_ULID)]
ReceiptId = Annotated[str, StringConstraints(pattern=_ULID)]
E164Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, to_lower=True)]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a time zone")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class Frozen(BaseModel):
    # hide_input_in_errors: a validation error's text (logged with its traceback) names fields, never the customer's
    # data (addresses, numbers, bodies) that failed
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, hide_input_in_errors=True)


class Channel(StrEnum):
    """The kinds of conversation the built-in channels make. A plug-in channel names its own kinds
    (`intake.channels.contract.Channel.kinds`): a message's `channel` is any `ChannelName`."""

    FORM = "form"
    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"
    WHATSAPP = "whatsapp"


# A kind of conversation (`Channel`'s, or a plug-in channel's own): which kinds exist is the registry's to say
ChannelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Status(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self in (Status.OPEN, Status.PENDING)


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class DeliveryState(StrEnum):
    """An outbound message's state, as its provider reports it; it only moves forward (`DELIVERY_RANK`)."""

    QUEUED = "queued"  # recorded and queued for the sender; not yet accepted by the provider
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"  # for good: `error` says why


# How far along each state is: a status update applies only when it moves the message forward (providers'
# callbacks arrive out of order and more than once). A failure after delivery (an undelivered report) still shows.
DELIVERY_RANK = {
    DeliveryState.QUEUED: 0,
    DeliveryState.SENT: 10,
    DeliveryState.DELIVERED: 20,
    DeliveryState.FAILED: 25,
    DeliveryState.READ: 30,
}


class EventKind(StrEnum):
    CREATED = "created"
    CUSTOMER_REPLIED = "customer_replied"
    RESPONDED = "responded"
    PENDING = "pending"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    PRIORITY_CHANGED = "priority_changed"
    WARNED = "warned"
    BREACHED = "breached"
    ESCALATED = "escalated"
    TIMER_STARTED = "timer_started"
    TIMER_PAUSED = "timer_paused"
    TIMER_MET = "timer_met"
    TIMER_STOPPED = "timer_stopped"
    SURVEY_SENT = "survey_sent"
    SURVEY_ANSWERED = "survey_answered"


class SlaTarget(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class TimerState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # waiting on the customer: the clock stops
    MET = "met"
    BREACHED = "breached"
    STOPPED = "stopped"  # no longer owed (the ticket was resolved before a response was due)


class ScopedUser(Frozen):
    """A person as one of our accounts on a platform knows them, when it gives no phone or email: Messenger's
    page-scoped id (`psid`), Instagram's (`igsid`). The same person has another id on each of our pages or accounts,
    so the account is part of the identity."""

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    account: str = Field(min_length=1, max_length=64, description="our page or account the id is scoped to")
    id: str = Field(min_length=1, max_length=128)


class Sender(Frozen):
    """Who wrote, as the provider told us; normalized before it reaches the ingest core."""

    name: str | None = Field(default=None, max_length=200)
    email: Email | None = None
    phone: E164Phone | None = None
    user: ScopedUser | None = None

    def identities(self) -> list[tuple[str, str]]:
        """(kind, value) pairs that identify this sender, most specific first."""
        found = [("phone", self.phone), ("email", self.email)]
        if self.user is not None:
            found.append((self.user.kind, f"{self.user.account}:{self.user.id}"))
        return [(kind, value) for kind, value in found if value]


class Attachment(Frozen):
    """A file that came with a message: in our archive (`s3_key`) and/or at the provider (`url`)."""

    filename: str = Field(max_length=255)
    content_type: str
    size: int | None = Field(default=None, ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    s3_key: str | None = None
    url: str | None = None
    media_id: str | None = Field(default=None, description="the provider's media id, to download it with its API")
    caption: str | None = None
    content_id: str | None = Field(default=None, description="email: an inline image's Content-ID")
    media_status: Literal["pending", "stored", "unavailable"] | None = None


class InboundMessage(Frozen):
    """One customer message as a channel adapter hands it to the ingest core."""

    type: Literal["message"] = "message"
    channel: ChannelName
    provider: str = Field(pattern=r"^[a-z0-9_-]+$")
    provider_message_id: str = Field(min_length=1, max_length=200)
    receipt_id: ReceiptId
    received_at: UtcDatetime
    team: str
    sender: Sender
    subject: str | None = Field(default=None, max_length=998)
    text: str = Field(max_length=100_000)
    priority: Priority = Priority.NORMAL
    attachments: tuple[Attachment, ...] = ()
    raw_archive_key: str
    thread_key: str = Field(min_length=1, max_length=512)
    dedupe_window_s: int = Field(default=8 * 86400, gt=0)
    metadata: dict[str, Any] = Field(default_factory=dict)


class CallEventKind(StrEnum):
    STARTED = "started"  # the call reached us: who called which number
    RECORDING = "recording"  # a voicemail was recorded
    TRANSCRIPTION = "transcription"  # its transcript is ready (or failed)
    STATUS = "status"  # the call ended: completed, busy, no-answer, failed, canceled


class Recording(Frozen):
    sid: str = Field(min_length=1, max_length=64)
    url: str
    duration_s: int | None = Field(default=None, ge=0)
    s3_key: str | None = Field(default=None, description="our archived copy, once the worker downloaded it")
    size: int | None = Field(default=None, ge=0)


class Transcript(Frozen):
    sid: str = Field(min_length=1, max_length=64)
    status: str  # completed | failed
    text: str | None = Field(default=None, max_length=100_000)


class CallEvent(Frozen):
    """One provider callback about a phone call. The worker folds a call's events, in any order and
    any number of times, into one message: a voicemail (recording, then transcript) or a missed call."""

    type: Literal["call_event"] = "call_event"
    kind: CallEventKind
    provider: str = Field(pattern=r"^[a-z0-9_-]+$")
    call_sid: str = Field(min_length=1, max_length=64)
    event_id: str = Field(min_length=1, max_length=200, description="dedupe key of this callback")
    receipt_id: ReceiptId
    received_at: UtcDatetime
    raw_archive_key: str
    team: str | None = None
    caller: E164Phone | None = None
    caller_name: str | None = Field(default=None, max_length=200)
    called: str | None = Field(default=None, max_length=64)
    recording: Recording | None = None
    transcript: Transcript | None = None
    call_status: str | None = None
    duration_s: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Reaction(Frozen):
    """A customer's reaction to a message: it annotates that message and opens no ticket."""

    type: Literal["reaction"] = "reaction"
    provider: str = Field(pattern=r"^[a-z0-9_-]+$")
    event_id: str = Field(min_length=1, max_length=200)
    receipt_id: ReceiptId
    received_at: UtcDatetime
    raw_archive_key: str
    reacted_to: str = Field(min_length=1, max_length=200, description="the provider message id reacted to")
    emoji: str | None = Field(default=None, max_length=32, description="None: the reaction was removed")
    sender: Sender


class EmailArrived(Frozen):
    """A raw email (MIME) stored in the archive, to be parsed and threaded by the worker."""

    type: Literal["email"] = "email"
    provider: str = Field(pattern=r"^[a-z0-9_-]+$")  # ses | sendgrid | mailgun | smtp
    receipt_id: ReceiptId
    received_at: UtcDatetime
    raw_archive_key: str
    recipients: tuple[str, ...] = ()  # the envelope's, when known (SES, SMTP)
    verdicts: dict[str, str] = Field(default_factory=dict)  # SES: spam, virus, spf, dkim, dmarc → PASS/FAIL/...
    conversation: str | None = Field(
        default=None, description="the thread's first Message-ID as its headers name it: the queue's FIFO group"
    )


class QuarantineStatus(StrEnum):
    HELD = "held"
    RELEASED = "released"


class QuarantinedEmail(Frozen):
    """An email held back by its verdicts (spam, virus, DMARC reject): archived, not a ticket, until released."""

    id: ReceiptId
    arrived: EmailArrived
    reasons: tuple[str, ...] = Field(min_length=1)
    sender: str | None = None
    subject: str | None = None
    status: QuarantineStatus = QuarantineStatus.HELD
    released_at: UtcDatetime | None = None
    ticket_id: TicketId | None = None


class DeliveryStatus(Frozen):
    """A provider's report on a message we sent (Twilio's status callback, a WhatsApp `statuses` entry): it moves
    that outbound message's state forward, and opens nothing."""

    type: Literal["delivery_status"] = "delivery_status"
    provider: str = Field(pattern=r"^[a-z0-9_-]+$")
    provider_message_id: str = Field(min_length=1, max_length=200)
    state: DeliveryState
    at: UtcDatetime
    error: str | None = Field(default=None, max_length=1000, description="why it failed, as the provider says")
    receipt_id: ReceiptId
    received_at: UtcDatetime
    raw_archive_key: str
    # A report that names no message, only "everything sent by then" (Messenger's read watermark): the conversation
    # and the time; `provider_message_id` then names the watermark, not a message
    thread_key: str | None = Field(default=None, max_length=512)
    up_to: UtcDatetime | None = None


# What the inbound queue carries: one discriminated union of everything adapters produce
Queued = Annotated[InboundMessage | CallEvent | Reaction | EmailArrived | DeliveryStatus, Field(discriminator="type")]


class Contact(Frozen):
    id: ContactId
    name: str | None = None
    phones: tuple[E164Phone, ...] = ()
    emails: tuple[Email, ...] = ()
    created_at: UtcDatetime
    merged: tuple[ContactId, ...] = Field(default=(), description="contacts found to be this one, merged into it")
    merged_into: ContactId | None = Field(default=None, description="set on a contact that was merged into another")


class Message(Frozen):
    ticket_id: TicketId
    provider: str
    provider_message_id: str
    receipt_id: ReceiptId
    direction: Direction
    received_at: UtcDatetime
    channel: ChannelName
    subject: str | None = None
    text: str
    attachments: tuple[Attachment, ...] = ()
    raw_archive_key: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    reaction: str | None = Field(default=None, description="the customer's reaction to this message (an emoji)")
    state: DeliveryState | None = Field(default=None, description="outbound: queued, sent, delivered, read or failed")
    state_at: UtcDatetime | None = Field(default=None, description="outbound: when it reached its state")
    error: str | None = Field(default=None, description="outbound: why it failed (for good), or the last retried error")
    by: str | None = Field(default=None, description="outbound: the agent who wrote it")


class TicketEvent(Frozen):
    ticket_id: TicketId
    kind: EventKind
    at: UtcDatetime
    detail: dict[str, Any] = Field(default_factory=dict)


class SlaTimer(Frozen):
    """One SLA target of a ticket: the item the SLA state machine reads and, at breach, updates."""

    target: SlaTarget
    generation: int = Field(ge=1, description="+1 each time the clock restarts (resume, priority change)")
    state: TimerState
    policy: str
    time: Literal["business", "calendar"]
    started_at: UtcDatetime = Field(description="when this generation's clock started")
    due_at: UtcDatetime
    target_s: int = Field(ge=0, description="the whole target, in seconds of business or calendar time")
    consumed_s: int = Field(default=0, ge=0, description="time used by earlier generations")
    breached_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = None
    execution: dict[str, Any] = Field(default_factory=dict, description="the state machine input of this generation")


class Ticket(Frozen):
    id: TicketId
    reference: str
    channel: ChannelName
    team: str
    priority: Priority
    status: Status
    contact_id: ContactId
    subject: str | None = None
    customer: str | None = Field(default=None, description="who wrote first: their name, else their address or number")
    snippet: str | None = Field(default=None, description="the first line of the first message, for lists")
    thread_key: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    last_inbound_at: UtcDatetime
    message_count: int = Field(ge=1)
    reply_window_closes_at: UtcDatetime | None = Field(
        default=None,
        description="WhatsApp, Messenger, Instagram: when free replies end (the customer's last message + 24 h); "
        "then only a WhatsApp template, or Meta's HUMAN_AGENT tag where the policy allows it",
    )
    assignee: str | None = None
    next_due_at: UtcDatetime | None = Field(
        default=None, description="the earliest deadline of a running or breached SLA clock (breached: past)"
    )
    breached: bool = Field(default=False, description="an SLA target of this ticket was breached")
    warned: bool = Field(default=False, description="an SLA warning was sent for this ticket (a near-breach)")
    resolved_at: UtcDatetime | None = None
    first_responded_at: UtcDatetime | None = Field(default=None, description="the team's first response")
    previous_ticket_id: TicketId | None = Field(
        default=None, description="the resolved ticket this conversation continues (replied to after its window)"
    )


class TicketReference(Frozen):
    """A ticket as a survey link knows it: its id, its team and the reference customers see, nothing more."""

    id: TicketId
    team: str
    reference: str


class ContactDetail(Frozen):
    """A customer across channels: every identity and every ticket, newest first."""

    contact: Contact
    tickets: list[Ticket]


class TicketDetail(Ticket):
    """A ticket as the read API shows it: with its contact, its whole thread and its history."""

    contact: Contact | None
    messages: list[Message]
    events: list[TicketEvent]
    sla: list[SlaTimer] = Field(default_factory=list, description="each SLA target: due time, state, generation")


class TicketPage(Frozen):
    items: list[Ticket]
    next: str | None


REFERENCE_LENGTH = 8


def reference_for(ticket_id: str) -> str:
    """The short, human-friendly reference customers see (`[#7Q2M4K9D]`)."""
    return ticket_id[-REFERENCE_LENGTH:]


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    cleaned = _SAFE_NAME.sub("_", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip("._")
    return cleaned[:120] or "file"


@dataclass(frozen=True)
class WebhookRequest:
    """An HTTP request as a provider sent it: what adapters verify and parse, and what is archived."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    source_ip: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


ActionType = Literal["responded", "pending", "resolved", "reopened", "assigned", "priority_changed"]


class AgentAction(Frozen):
    """What an agent did to a ticket (`POST /tickets/{id}/events`)."""

    type: ActionType
    by: str = Field(min_length=1, max_length=200, description="who did it (an agent's id or email)")
    note: str | None = Field(default=None, max_length=10_000)
    assignee: str | None = Field(default=None, min_length=1, max_length=200, description="for `assigned`")
    priority: Priority | None = Field(default=None, description="for `priority_changed`")

    @model_validator(mode="after")
    def _complete(self) -> AgentAction:
        if self.type == "assigned" and self.assignee is None:
            raise ValueError("assignee: required for an `assigned` event")
        if self.type == "priority_changed" and self.priority is None:
            raise ValueError("priority: required for a `priority_changed` event")
        return self
