"""Storage first: archive the raw request, store uploaded files, enqueue the normalized message.

The receiver does only this before it answers, so a later failure never loses what a customer sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import TypeAdapter

from intake.model import (
    Attachment,
    CallEvent,
    EmailArrived,
    InboundMessage,
    Queued,
    Reaction,
    WebhookRequest,
    safe_filename,
)
from intake.resources import ARCHIVE

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

QueuedItem = InboundMessage | CallEvent | Reaction | EmailArrived  # what adapters hand to the queue

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
    def __init__(self, s3: S3Client, bucket: str, sqs: SQSClient, queue_url: str) -> None:
        self._s3, self._bucket = s3, bucket
        self._sqs, self._queue_url = sqs, queue_url

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
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(envelope).encode(),
            ContentType="application/json",
        )

    def archive_email(self, key: str, raw: bytes) -> None:
        """The message as received, MIME bytes, where SES's receipt rule would have put it."""
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=raw, ContentType="message/rfc822")

    def read(self, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body

    def store_attachment(self, attachment: Attachment, content: bytes) -> None:
        if attachment.s3_key is None:
            raise ValueError("an attachment to store needs its s3_key")
        self._s3.put_object(
            Bucket=self._bucket, Key=attachment.s3_key, Body=content, ContentType=attachment.content_type
        )

    def enqueue_many(self, items: Sequence[QueuedItem]) -> None:
        """Ten at a time (SendMessageBatch); any entry SQS refuses fails the whole call, so the provider
        retries and deduplication keeps what was already queued from doubling."""
        for start in range(0, len(items), 10):
            chunk = items[start : start + 10]
            entries = [{"Id": str(n), **_addressing(item)} for n, item in enumerate(chunk)]
            response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)  # type: ignore[arg-type]
            if response.get("Failed"):
                codes = ", ".join(sorted({failure["Code"] for failure in response["Failed"]}))
                raise QueueRefusedError(f"{len(response['Failed'])} of {len(chunk)} messages refused: {codes}")

    def enqueue(self, item: QueuedItem) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, **_addressing(item))  # type: ignore[arg-type]


class QueueRefusedError(Exception):
    """SQS refused some of a batch: the request fails, the provider retries."""


def _addressing(item: QueuedItem) -> dict[str, str]:
    """FIFO, deduplicated on the provider's id (5 minutes, on SQS's side); grouped by conversation,
    and a call's callbacks by call, so that they are folded one after the other in order."""
    if isinstance(item, CallEvent):
        group, dedupe = item.call_sid, item.event_id
    elif isinstance(item, Reaction):
        group, dedupe = item.reacted_to, item.event_id
    elif isinstance(item, EmailArrived):
        group, dedupe = "email", item.receipt_id  # threads are found by the worker: one at a time
    else:
        group, dedupe = item.thread_key, item.provider_message_id
    return {
        "MessageBody": item.model_dump_json(),
        "MessageGroupId": _group(group),
        "MessageDeduplicationId": _group(f"{item.provider}#{dedupe}"),
    }


def _group(value: str) -> str:
    """SQS ids allow 128 characters of a limited set: long or unusual keys are hashed."""
    if len(value) <= 128 and all(
        (c.isascii() and c.isalnum()) or c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" for c in value
    ):
        return value
    return hashlib.sha256(value.encode()).hexdigest()


_QUEUED: TypeAdapter[QueuedItem] = TypeAdapter(Queued)


def decode_message(body: str) -> QueuedItem:
    return _QUEUED.validate_json(body)
