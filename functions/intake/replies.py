"""Agents' replies: answered where the customer wrote, sent after the answer, tracked until read.

accept → queue → deliver → status reports:
- `accept` (`POST /tickets/{id}/replies`): the reply goes to the conversation of the customer's latest message, as that
  message's channel answers it (`Channel.address`: their email thread, the Twilio number or WhatsApp number they wrote
  to, a voicemail by SMS to the caller, a form by email, Messenger and Instagram from the page or account written to;
  with the provider's reply window and an address to answer at checked), recorded on the ticket as an outbound message
  in state `queued`, with its `Idempotency-Key` in the same write, and queued for the sender. Nothing is sent yet: the
  answer is 202. The same key again answers the same reply, and queues it again while it is still queued (its first
  queueing may have been lost between the write and the queue).
- `deliver` (the sender function): the channel's `send` (`intake.channels.<channel>.send`) calls the provider;
  transient failures are tried again here with backoff, then by the queue (its redelivery, up to its receive
  limit); a permanent one, or the last try's, is recorded on the message as `failed`, with the provider's words.
  A reply the provider took is `sent`, and counts as the team's response for the SLA clocks (the `responded`
  action), once. A reply that failed counts as nothing.
- `apply_status` (the ingest worker): the provider's reports (`DeliveryStatus`) move the message forward, never
  back: queued → sent → delivered → read, or failed with the reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr
from typing import Any, Literal

from pydantic import Field, model_validator

from intake.channels import registry
from intake.channels.contract import ReplyContext
from intake.channels.sending import (
    OutboundReply,
    QuotedMessage,
    ReplyUndeliverableError,
    ReplyWay,
    SendContext,
    SendFailedError,
    Sent,
    Template,
)
from intake.config import Policy
from intake.errors import FieldInvalidError, IdempotencyKeyReusedError, PayloadTooLargeError
from intake.inbox import attachment_of
from intake.model import (
    Attachment,
    Channel,
    DeliveryState,
    DeliveryStatus,
    Direction,
    Frozen,
    Message,
    TicketDetail,
)
from intake.observability import logger
from intake.queues import Outgoing, Queue
from intake.store import Store, keys

MAX_ATTACHMENT_BYTES = 3 * 1024 * 1024  # all of a reply's files together, decoded (the API takes 4 MiB of JSON)
MAX_QUOTED = 5  # messages quoted below an email reply, the latest first
SEND_ATTEMPTS = 3  # tries in one delivery, `BACKOFF_S * 2**n` apart; then the queue's redelivery
BACKOFF_S = 0.5
HELD_REPORT = timedelta(days=1)  # how long a report that came before its send is kept for it (then, not ours)


# ------------------------------------------------------------------------------------------ the request


class ReplyAttachment(Frozen):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(pattern=r"^[a-z]+/[A-Za-z0-9.+_-]+$", max_length=127)
    content_base64: str = Field(description="the file's bytes, base64")


class ReplyRequest(Frozen):
    """An agent's reply (`POST /tickets/{id}/replies`): text, files, or an approved WhatsApp template."""

    text: str = Field(default="", max_length=10_000)
    by: str = Field(min_length=1, max_length=200, description="who wrote it (an agent's id or email)")
    attachments: list[ReplyAttachment] = Field(default_factory=list, max_length=5)
    template: str | None = Field(
        default=None,
        max_length=63,
        description="WhatsApp (the Cloud API; not through Twilio): the approved template (intake.yaml "
        "`whatsapp.templates`) to send the text with; the only way to answer once 24 hours have passed since the "
        "customer's last message",
    )

    @model_validator(mode="after")
    def _something(self) -> ReplyRequest:
        if not self.text.strip() and not self.attachments:
            raise ValueError("text: a reply needs a text or an attachment")
        return self


class ReplyRetryError(Exception):
    """A try failed in a way another may not: the queue delivers the reply again later."""


# ------------------------------------------------------------------------------------------- routing


def address(detail: TicketDetail, policy: Policy, request: ReplyRequest, now: datetime) -> ReplyWay:
    """Where the reply goes: the conversation of the customer's latest message on the ticket, as its channel answers
    it (`Channel.address`, which also applies the provider's reply window)."""
    inbound = [m for m in detail.messages if m.direction == Direction.INBOUND]
    if not inbound:
        raise ReplyUndeliverableError("the ticket has no message from the customer to answer")
    latest = inbound[-1]
    try:
        answers = registry.channel(latest.provider).address
    except LookupError:
        answers = None
    if answers is None:
        raise ReplyUndeliverableError(f"replies on {latest.provider} {latest.channel} are not supported yet")
    ctx = ReplyContext(
        detail=detail,
        latest=latest,
        policy=policy,
        text=request.text,
        by=request.by,
        template=request.template,
        attachments=bool(request.attachments),
        now=now,
    )
    way = answers(ctx)
    if request.template is not None and way.template is None:
        raise FieldInvalidError("template", "only WhatsApp replies are sent as templates")
    return way


# --------------------------------------------------------------------------------------------- accept


@dataclass(frozen=True)
class Accepted:
    message: Message
    sk: str
    created: bool  # False: the Idempotency-Key's earlier reply, answered again

    def answer(self) -> dict[str, Any]:
        state = self.message.state or DeliveryState.QUEUED
        found = ReplyAccepted(
            ticket_id=self.message.ticket_id, reply_id=self.message.receipt_id, state=state, message=self.message
        )
        return found.model_dump(mode="json")


class ReplyAccepted(Frozen):
    """The answer to `POST /tickets/{id}/replies` (202): the reply as recorded; `GET /tickets/{id}` shows its state
    as it moves (queued, sent, delivered, read, or failed with the provider's error)."""

    ticket_id: str
    reply_id: str
    state: DeliveryState
    message: Message


class ReplyJob(Frozen):
    """What the sender queue carries: which reply to send."""

    ticket_id: str
    message_sk: str
    reply_id: str


def accept(
    store: Store,
    queue: Queue,
    put_file: Callable[[Attachment, bytes], None],
    policy: Policy,
    ticket_id: str,
    request: ReplyRequest,
    key: str | None,
    *,
    new_id: Callable[[], str],
    now: datetime,
) -> Accepted:
    """Record the reply on its ticket (queued) and queue it for the sender; see the module's docstring."""
    fingerprint = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
    if key is not None and (known := _known(store, queue, ticket_id, key, fingerprint)) is not None:
        return known
    detail = store.ticket_detail(ticket_id)
    way = address(detail, policy, request, now)
    files = _decoded(request)
    reply_id = new_id()
    attachments = tuple(
        attachment_of(reply_id, now, n, upload.filename, upload.content_type, content)
        for n, (upload, content) in enumerate(files, start=1)
    )
    for attachment, (_, content) in zip(attachments, files, strict=True):
        put_file(attachment, content)
    metadata: dict[str, Any] = {"to": way.to, "from": way.sender, **way.thread}
    if way.sender_name:
        metadata["from_name"] = way.sender_name
    if (template := way.template) is not None:
        metadata["template"] = {"name": template.name, "language": template.language, "parameters": template.parameters}
    if way.tag is not None:
        metadata["tag"] = way.tag
    message = Message(
        ticket_id=detail.id,
        provider=way.provider,
        provider_message_id=reply_id,
        receipt_id=reply_id,
        direction=Direction.OUTBOUND,
        received_at=now,
        channel=way.channel,
        subject=way.subject,
        text=request.text,
        attachments=attachments,
        metadata=metadata,
        state=DeliveryState.QUEUED,
        state_at=now,
        by=request.by,
    )
    sk = keys.reply_sk(now, reply_id)
    if not store.put_reply(message, sk, key, fingerprint, now):
        assert key is not None  # only a key can be taken already
        raced = _known(store, queue, detail.id, key, fingerprint)
        if raced is not None:
            return raced
    _enqueue(queue, detail.id, sk, reply_id)
    logger.info("reply queued", extra={"ticket_id": detail.id, "reply_id": reply_id, "provider": way.provider})
    return Accepted(message, sk, created=True)


def _known(store: Store, queue: Queue, ticket_id: str, key: str, fingerprint: str) -> Accepted | None:
    found = store.reply_key(ticket_id, key)
    if found is None:
        return None
    sk, earlier = found
    if earlier != fingerprint:
        raise IdempotencyKeyReusedError(key)
    record = store.outbound(ticket_id, sk)
    if record is None:
        return None
    if record.message.state == DeliveryState.QUEUED:  # its queueing may have been lost: the sender sends it once
        _enqueue(queue, ticket_id, sk, record.message.receipt_id)
    return Accepted(record.message, sk, created=False)


def _enqueue(queue: Queue, ticket_id: str, sk: str, reply_id: str) -> None:
    job = ReplyJob(ticket_id=ticket_id, message_sk=sk, reply_id=reply_id)
    queue.send([Outgoing(body=job.model_dump_json(), group=ticket_id, dedupe=reply_id)])


def _decoded(request: ReplyRequest) -> list[tuple[ReplyAttachment, bytes]]:
    files, total = [], 0
    for n, upload in enumerate(request.attachments):
        try:
            content = base64.b64decode(upload.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise FieldInvalidError(f"attachments.{n}.content_base64", "is not base64") from None
        total += len(content)
        files.append((upload, content))
    if total > MAX_ATTACHMENT_BYTES:
        raise PayloadTooLargeError("the reply's attachments", total, MAX_ATTACHMENT_BYTES)
    return files


# -------------------------------------------------------------------------------------------- deliver

Outcome = Literal["sent", "failed", "done", "missing"]


def deliver(
    store: Store,
    job: ReplyJob,
    ctx: SendContext,
    respond: Callable[[Message, datetime], None],
    *,
    clock: Callable[[], datetime],
    last_try: bool,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = SEND_ATTEMPTS,
) -> Outcome:
    """Send one queued reply through its channel, record what became of it, count it as the team's response once.
    Safe to run again for the same job: a reply leaves `queued` once, and is counted once."""
    record = store.outbound(job.ticket_id, job.message_sk)
    if record is None:
        logger.warning("reply to send not found", extra={"ticket_id": job.ticket_id, "reply_id": job.reply_id})
        return "missing"
    outcome: Outcome = "done"
    if record.message.state == DeliveryState.QUEUED:
        detail = store.ticket_detail(job.ticket_id)
        reply = outbound_reply(record.message, detail)
        send = registry.channel(record.message.provider).send
        if send is None:  # `route` answers only on channels that send: a reply queued before a channel lost it
            store.reply_failed(job.ticket_id, job.message_sk, f"{record.message.provider} sends no replies", clock())
            return "failed"
        try:
            sent: Sent = _tried(lambda: send(reply, ctx), attempts, sleep)
        except SendFailedError as error:
            if error.retryable and not last_try:
                store.reply_retrying(job.ticket_id, job.message_sk, error.reason)
                raise ReplyRetryError(error.reason) from None
            store.reply_failed(job.ticket_id, job.message_sk, error.reason, clock())
            logger.warning("reply failed", extra={"ticket_id": job.ticket_id, "reply_id": job.reply_id})
            return "failed"
        ids = (sent.provider_message_id, *sent.other_ids)
        message_ids = ids if sent.provider == "email" else ()
        store.reply_sent(job.ticket_id, job.message_sk, sent.provider, ids, message_ids, clock())
        for provider_id in ids:  # what the provider reported before the send was recorded
            if (held := store.held_report(sent.provider, provider_id)) is not None:
                store.advance_delivery(sent.provider, provider_id, *held)
        outcome = "sent"
        record = store.outbound(job.ticket_id, job.message_sk) or record
    state = record.message.state
    if state in (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.READ) and not record.counted:
        respond(record.message, record.message.state_at or clock())
        store.reply_counted(job.ticket_id, job.message_sk)
    return outcome


def _tried(send: Callable[[], Sent], attempts: int, sleep: Callable[[float], None]) -> Sent:
    for attempt in range(attempts):
        try:
            return send()
        except SendFailedError as error:
            if not error.retryable or attempt == attempts - 1:
                raise
            sleep(BACKOFF_S * 2**attempt)
    raise AssertionError("unreachable")


def outbound_reply(message: Message, detail: TicketDetail) -> OutboundReply:
    """The recorded reply as its channel sends it (an email quotes the thread before it)."""
    meta = message.metadata
    raw_template = meta.get("template")
    template = None
    if isinstance(raw_template, dict):
        template = Template(raw_template["name"], raw_template["language"], tuple(raw_template.get("parameters", ())))
    quoted: tuple[QuotedMessage, ...] = ()
    if message.channel == Channel.EMAIL:
        earlier = [
            m
            for m in detail.messages
            if m.received_at <= message.received_at
            and m.receipt_id != message.receipt_id
            and m.state not in (DeliveryState.QUEUED, DeliveryState.FAILED)
        ]
        quoted = tuple(QuotedMessage(m.received_at, _author(m, detail), m.text) for m in reversed(earlier))[:MAX_QUOTED]
    return OutboundReply(
        reply_id=message.receipt_id,
        ticket_id=message.ticket_id,
        reference=detail.reference,
        channel=message.channel,
        to=str(meta["to"]),
        sender=str(meta["from"]),
        text=message.text,
        sender_name=meta.get("from_name"),
        subject=message.subject,
        attachments=message.attachments,
        in_reply_to=meta.get("in_reply_to"),
        references=tuple(meta.get("references") or ()),
        quoted=quoted,
        template=template,
        tag=meta.get("tag"),
    )


def _author(message: Message, detail: TicketDetail) -> str:
    if message.direction == Direction.OUTBOUND:
        name = message.metadata.get("from_name")
        return formataddr((str(name), str(message.metadata.get("from")))) if name else str(message.metadata["from"])
    name = detail.contact.name if detail.contact else None
    return name or "you"


def count_as_response(tracker: Any, message: Message, at: datetime) -> None:
    """A sent reply is the team's response: the first- and next-response clocks stop as `responded` stops them. A
    ticket resolved meanwhile owes no response: nothing changes then."""
    from intake.errors import TransitionInvalidError
    from intake.model import AgentAction

    action = AgentAction(type="responded", by=message.by or "intake", note=f"reply {message.receipt_id} sent")
    try:
        tracker.act(message.ticket_id, action, at)
    except TransitionInvalidError:
        logger.info("reply sent on a ticket that owes no response", extra={"ticket_id": message.ticket_id})


# ------------------------------------------------------------------------------------ status reports


def apply_status(store: Store, status: DeliveryStatus) -> str | None:
    """A provider's report on a message we sent: the ticket whose reply it moved forward, else None. A report can
    come before the sender recorded what it sent (Twilio calls back as soon as it answers the send): one that names
    no message of ours yet is held (`HELD_REPORT`) for the sender to apply when it records the send. A report on
    "everything sent by then" (Messenger's read watermark) moves the conversation's replies."""
    if status.thread_key is not None and status.up_to is not None:
        return store.read_up_to(status.thread_key, status.up_to, status.at)
    return store.advance_delivery(
        status.provider,
        status.provider_message_id,
        status.state,
        status.at,
        status.error,
        hold_until=status.received_at + HELD_REPORT,
    )


def job_of(body: str) -> ReplyJob:
    return ReplyJob.model_validate(json.loads(body))
