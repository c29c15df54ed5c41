"""Storage first: archive the raw request, store uploaded files, enqueue the normalized message.

The receiver does only this before it answers, so a later failure never loses what a customer sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ConfigDict, TypeAdapter

from intake.limits import fitted
from intake.model import (
    Attachment,
    CallEvent,
    DeliveryStatus,
    EmailArrived,
    InboundMessage,
    Queued,
    Reaction,
    WebhookRequest,
    safe_filename,
)
from intake.queues import QUEUE_MESSAGE_BYTES, Outgoing
from intake.resources import ARCHIVE

if TYPE_CHECKING:
    from intake.archive import Archive
    from intake.queues import Queue

QueuedItem = InboundMessage | CallEvent | Reaction | EmailArrived | DeliveryStatus  # what adapters hand to the queue

# Never archived: credentials a provider sends us (basic auth) would outlive their rotation.
_UNARCHIVED_HEADERS = {"authorization", "cookie"}
ENVELOPE_VERSION = 1


def raw_key(provider: str, receipt_id: str, received_at: datetime) -> str:
    return f"{ARCHIVE.raw_prefix}{received_at:%Y/%m/%d}/{provider}/{receipt_id}"


def attachment_key(receipt_id: str, received_at: datetime, n: int, filename: str) -> str:
    return f"{ARCHIVE.attachments_prefix}{received_at:%Y/%m/%d}/{receipt_id}/{n}-{safe_filename(filename)}"


def attachment_of(
    receipt_id: str,
    received_at: datetime,
    n: int,
    filename: str,
    content_type: str,
    content: bytes,
    content_id: str | None = None,
) -> Attachment:
    """The n-th file a message brought, described and keyed in the archive (`store_attachment` writes it)."""
    return Attachment(
        filename=filename[:255],
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        s3_key=attachment_key(receipt_id, received_at, n, filename),
        content_id=content_id,
    )


class Inbox:
    """The archive and the inbound queue, behind their ports (S3 and SQS in AWS, files and SQLite locally)."""

    def __init__(self, archive: Archive, queue: Queue) -> None:
        self.archive, self.queue = archive, queue

    def archive_request(self, key: str, receipt_id: str, received_at: datetime, request: WebhookRequest) -> None:
        envelope = {
            "version": ENVELOPE_VERSION,
            "receipt_id": receipt_id,
            "received_at": received_at.isoformat(),
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": {k: v for k, v in request.headers.items() if k not in _UNARCHIVED_HEADERS},
            "body_base64": base64.b64encode(request.body).decode(),
        }
        self.archive.put(key, json.dumps(envelope).encode(), "application/json")

    def archive_email(self, key: str, raw: bytes) -> None:
        """The message as received, MIME bytes, where SES's receipt rule would have put it."""
        self.archive.put(key, raw, "message/rfc822")

    def read(self, key: str) -> bytes:
        return self.archive.get(key)

    def store_attachment(self, attachment: Attachment, content: bytes) -> None:
        if attachment.s3_key is None:
            raise ValueError("an attachment to store needs its s3_key")
        self.archive.put(attachment.s3_key, content, attachment.content_type)

    def enqueue_many(self, items: Sequence[QueuedItem]) -> None:
        """All or QueueRefusedError: the request fails, the provider retries, and deduplication keeps what was
        already queued from doubling."""
        self.queue.send([_addressing(item) for item in items])

    def enqueue(self, item: QueuedItem) -> None:
        self.queue.send([_addressing(item)])


def _addressing(item: QueuedItem) -> Outgoing:
    """FIFO, deduplicated on the provider's id (5 minutes, on the queue's side); grouped by conversation,
    and a call's callbacks by call, so that they are folded one after the other in order."""
    if isinstance(item, CallEvent):
        group, dedupe = item.call_sid, item.event_id
    elif isinstance(item, Reaction):
        group, dedupe = item.reacted_to, item.event_id
    elif isinstance(item, DeliveryStatus):  # one sent message's reports in order; each state of it once
        group, dedupe = item.provider_message_id, f"{item.provider_message_id}#{item.state.value}"
    elif isinstance(item, EmailArrived):  # one thread's mail in order; a message that fails holds up only its thread
        group, dedupe = item.conversation or item.receipt_id, item.receipt_id
    else:
        group, dedupe = item.thread_key, item.provider_message_id
    return Outgoing(body=_queued_body(item), group=_group(group), dedupe=_group(f"{item.provider}#{dedupe}"))


def _queued_body(item: QueuedItem) -> str:
    """The item as JSON within QUEUE_MESSAGE_BYTES: a message too big for the queue (a 4 MB form, a long
    WhatsApp caption) is fitted with smaller shares, as `limits.fitted` says; the request it came in is archived
    whole. Every other item is a few kilobytes."""
    body, scale = item.model_dump_json(), 1.0
    while isinstance(item, InboundMessage) and len(body.encode()) > QUEUE_MESSAGE_BYTES and scale > 1 / 1024:
        scale /= 2
        body = fitted(item, scale).model_dump_json()
    return body


_SQS_ID = re.compile(r"[!-~]{0,128}")  # ASCII letters, digits and punctuation: what SQS allows in these ids


def _group(value: str) -> str:
    """SQS ids allow 128 characters of a limited set: long or unusual keys are hashed."""
    if _SQS_ID.fullmatch(value):
        return value
    return hashlib.sha256(value.encode()).hexdigest()


# built on the first decode (the queue consumers'), not in every process that imports the inbox
_QUEUED: TypeAdapter[QueuedItem] = TypeAdapter(Queued, config=ConfigDict(defer_build=True))


def decode_message(body: str) -> QueuedItem:
    return _QUEUED.validate_json(body)
