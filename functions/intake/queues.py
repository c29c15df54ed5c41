"""The queue port: what Intake does with a queue, as SQS does it; `SqsQueue` is its AWS adapter.

`intake.local.queue.SqliteQueue` is the local one. Both keep SQS's contract: at-least-once delivery, a visibility
timeout after which an undeleted message comes back with its receive count one higher, dead letters after the
queue's receive limit, and for FIFO queues order within a message group, one group's messages held back while
one of them is in flight, and deduplication ids remembered for 5 minutes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from intake.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SQS_BATCH = 10  # SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch: at most 10 entries
SQS_MAX_WAIT_S = 20  # ReceiveMessage's longest long poll


class QueueRefusedError(Exception):
    """The queue refused some of a batch: the request fails, the provider retries."""


@dataclass(frozen=True)
class Outgoing:
    body: str
    group: str | None = None  # FIFO message group id (FIFO queues only)
    dedupe: str | None = None  # FIFO deduplication id: a second send with it within 5 minutes is accepted and dropped


@dataclass(frozen=True)
class Received:
    message_id: str
    receipt: str  # handle for delete/release; a stale receipt (visibility expired, redelivered) deletes nothing
    body: str
    receive_count: int  # 1 on first delivery
    group: str | None
    sent_at_ms: int
    dedupe: str | None


class Queue(Protocol):
    def send(self, messages: Sequence[Outgoing]) -> None:
        """All accepted, or QueueRefusedError (some may have been accepted: at-least-once)."""
        ...

    def receive(self, max_messages: int = 10, wait_s: float = 0) -> list[Received]:
        """Up to `max_messages` visible messages, now invisible for the visibility timeout; waits up to `wait_s`
        for the first."""
        ...

    def delete(self, receipts: Sequence[str]) -> None:
        """Done with these messages; a stale receipt deletes nothing."""
        ...

    def release(self, receipts: Sequence[str]) -> None:
        """Visible again now (ChangeMessageVisibility 0)."""
        ...

    def depth(self) -> int:
        """Messages on the queue: visible and in flight."""
        ...


class SqsQueue:
    """The port on Amazon SQS: one queue URL, batches of 10."""

    def __init__(self, sqs_client: SQSClient, queue_url: str) -> None:
        self._sqs, self.url = sqs_client, queue_url

    def send(self, messages: Sequence[Outgoing]) -> None:
        for start in range(0, len(messages), SQS_BATCH):
            chunk = messages[start : start + SQS_BATCH]
            entries: list[Any] = [_entry(str(n), message) for n, message in enumerate(chunk)]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "Unknown")
                raise QueueRefusedError(f"{len(chunk)} of {len(chunk)} messages refused: {code}") from error
            if response.get("Failed"):
                codes = ", ".join(sorted({failure["Code"] for failure in response["Failed"]}))
                raise QueueRefusedError(f"{len(response['Failed'])} of {len(chunk)} messages refused: {codes}")

    def receive(self, max_messages: int = 10, wait_s: float = 0) -> list[Received]:
        response = self._sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(max_messages, SQS_BATCH)),
            WaitTimeSeconds=min(SQS_MAX_WAIT_S, math.ceil(wait_s)),
            MessageSystemAttributeNames=["All"],
        )
        received = []
        for message in response.get("Messages", []):
            attributes: dict[str, str] = {str(k): v for k, v in message.get("Attributes", {}).items()}
            received.append(
                Received(
                    message_id=message["MessageId"],
                    receipt=message["ReceiptHandle"],
                    body=message["Body"],
                    receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
                    group=attributes.get("MessageGroupId"),
                    sent_at_ms=int(attributes.get("SentTimestamp", "0")),
                    dedupe=attributes.get("MessageDeduplicationId"),
                )
            )
        return received

    def delete(self, receipts: Sequence[str]) -> None:
        for start in range(0, len(receipts), SQS_BATCH):
            chunk = receipts[start : start + SQS_BATCH]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.url, Entries=[{"Id": str(n), "ReceiptHandle": r} for n, r in enumerate(chunk)]
            )
            _log_failures("queue message not deleted; it comes back", response.get("Failed", []))

    def release(self, receipts: Sequence[str]) -> None:
        for start in range(0, len(receipts), SQS_BATCH):
            chunk = receipts[start : start + SQS_BATCH]
            response = self._sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": 0} for n, r in enumerate(chunk)],
            )
            _log_failures("queue message not released; it comes back after its timeout", response.get("Failed", []))

    def depth(self) -> int:
        names: list[Any] = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, "0")) for name in names)


def sqs_record(received: Received, queue_arn: str, region: str) -> dict[str, Any]:
    """The record Lambda's SQS event source puts in the event for this message (Powertools'
    `SqsFifoPartialProcessor` groups by `attributes.MessageGroupId`)."""
    attributes = {
        "ApproximateReceiveCount": str(received.receive_count),
        "SentTimestamp": str(received.sent_at_ms),
    }
    if received.group is not None:
        attributes["MessageGroupId"] = received.group
    if received.dedupe is not None:
        attributes["MessageDeduplicationId"] = received.dedupe
    return {
        "messageId": received.message_id,
        "receiptHandle": received.receipt,
        "body": received.body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(received.body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _entry(entry_id: str, message: Outgoing) -> dict[str, str]:
    entry = {"Id": entry_id, "MessageBody": message.body}
    if message.group is not None:
        entry["MessageGroupId"] = message.group
    if message.dedupe is not None:
        entry["MessageDeduplicationId"] = message.dedupe
    return entry


def _log_failures(message: str, failures: Sequence[Any]) -> None:
    """Entries SQS did not take: a stale receipt (the message was redelivered) is one; the message comes back."""
    if failures:
        logger.warning(message, extra={"codes": sorted({f["Code"] for f in failures}), "count": len(failures)})
