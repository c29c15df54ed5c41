"""The queue port: what Intake does with a queue, as SQS does it; `SqsQueue` is its AWS adapter.

`intake.local.queue.SqliteQueue` is the local one. Both keep SQS's contract: at-least-once delivery, a visibility
timeout after which an undeleted message comes back with its receive count one higher, dead letters after the
queue's receive limit, and for FIFO queues order within a message group, one group's messages held back while
one of them is in flight, and deduplication ids remembered for 5 minutes. `DeadLetters` is what operators do with
a queue's dead-letter queue: read what is there, and put it back on the queue (`intake failures`).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from intake.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SQS_BATCH = 10  # SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch: at most 10 entries
# A message's body, and a SendMessageBatch's bodies together: SQS's default limit (a queue may allow up to 1 MiB;
# ours keep the default, and the inbox fits every message within it)
QUEUE_MESSAGE_BYTES = 256 * 1024
SQS_MAX_WAIT_S = 20  # ReceiveMessage's longest long poll
# Reading a dead-letter queue receives its messages: they are held this long at most (released at once when read),
# and at most this many are read in one go (the API function has 10 s).
DEAD_LETTER_HOLD_S = 30
DEAD_LETTERS_READ = 500
_VISIBLE_AND_IN_FLIGHT = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")  # a queue's depth


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


@dataclass(frozen=True)
class DeadLetter:
    """A message its consumers failed `max_receive_count` times, as its dead-letter queue keeps it."""

    message_id: str
    body: str
    receive_count: int
    group: str | None
    sent_at_ms: int
    dedupe: str | None
    reason: str  # "max_receive_count"
    dead_at_ms: int | None  # when it was moved there (SQS does not say)


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


class DeadLetters(Protocol):
    """A queue's dead letters, read without consuming them and put back on the queue on demand."""

    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters, oldest first within a FIFO group; reading them leaves them where they are."""
        ...

    def redrive(self, message_ids: Sequence[str] | None = None) -> int:
        """Send dead letters (all, or these) back to the queue as new messages, in order; how many moved."""
        ...

    def dead_letter_count(self) -> int:
        """Messages in the dead-letter queue."""
        ...


class SqsQueue:
    """The port on Amazon SQS: one queue URL, batches of 10; with its dead-letter queue's URL, `DeadLetters` too."""

    def __init__(self, sqs_client: SQSClient, queue_url: str, dead_letter_url: str | None = None) -> None:
        self._sqs, self.url, self.dead_letter_url = sqs_client, queue_url, dead_letter_url

    def send(self, messages: Sequence[Outgoing]) -> None:
        for chunk in _batches(messages):
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
        return self._count(self.url, *_VISIBLE_AND_IN_FLIGHT)

    # ------------------------------------------------------------------ dead letters

    def dead_letters(self) -> list[DeadLetter]:
        """Received from the dead-letter queue, then made visible again. A FIFO dead-letter queue hands out at most
        10 messages of one group while they are held: a group's later ones show once these are replayed."""
        held = self._hold_dead_letters()
        self._release_dead_letters([receipt for _, receipt in held])
        return [letter for letter, _ in held]

    def redrive(self, message_ids: Sequence[str] | None = None) -> int:
        """Sent to the queue, then deleted from the dead-letter queue, 10 at a time in order: a crash in between
        sends one again, which the table's dedupe records drop. Each send has a new deduplication id, so that a
        replay is never mistaken for its original's retry within SQS's 5 minutes (and dropped)."""
        wanted = None if message_ids is None else set(message_ids)
        held = self._hold_dead_letters(wanted)
        moving = [(letter, receipt) for letter, receipt in held if wanted is None or letter.message_id in wanted]
        moved = {receipt for _, receipt in moving}
        try:
            for start in range(0, len(moving), SQS_BATCH):
                chunk = moving[start : start + SQS_BATCH]
                self.send([_replayed(letter) for letter, _ in chunk])
                response = self._sqs.delete_message_batch(
                    QueueUrl=self._dead_letter_url(),
                    Entries=[{"Id": str(n), "ReceiptHandle": receipt} for n, (_, receipt) in enumerate(chunk)],
                )
                _log_failures("dead letter not deleted; it is listed again", response.get("Failed", []))
        finally:
            self._release_dead_letters([receipt for _, receipt in held if receipt not in moved])
        if moving:
            logger.info("dead letters redriven", extra={"queue": self.url.rsplit("/", 1)[-1], "count": len(moving)})
        return len(moving)

    def dead_letter_count(self) -> int:
        return self._count(self._dead_letter_url(), *_VISIBLE_AND_IN_FLIGHT)

    def _count(self, url: str, *names: Any) -> int:
        """The sum of these approximate counts of the queue at `url`."""
        attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))["Attributes"]
        return sum(int(attributes.get(name, "0")) for name in names)

    def _dead_letter_url(self) -> str:
        if self.dead_letter_url is None:
            raise ValueError(f"no dead-letter queue given for {self.url}")
        return self.dead_letter_url

    def _hold_dead_letters(self, wanted: set[str] | None = None) -> list[tuple[DeadLetter, str]]:
        """Receive every visible dead letter (up to DEAD_LETTERS_READ; or until the `wanted` ones are held), each held
        for DEAD_LETTER_HOLD_S. Long polls of 1 s: a short poll asks only some of SQS's servers and can come back
        empty while messages wait. The queue's count of visible messages comes first and ends the reading once that
        many are held: a long poll that finds nothing waits out its second, and every listing of /failures would
        wait one per queue (four) for nothing."""
        url = self._dead_letter_url()
        visible = self._count(url, "ApproximateNumberOfMessages")
        held: dict[str, tuple[DeadLetter, str]] = {}
        while visible and len(held) < DEAD_LETTERS_READ:
            response = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=SQS_BATCH,
                VisibilityTimeout=DEAD_LETTER_HOLD_S,
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                attributes: dict[str, str] = {str(k): v for k, v in message.get("Attributes", {}).items()}
                letter = DeadLetter(
                    message_id=message["MessageId"],
                    body=message["Body"],
                    receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
                    group=attributes.get("MessageGroupId"),
                    sent_at_ms=int(attributes.get("SentTimestamp", "0")),
                    dedupe=attributes.get("MessageDeduplicationId"),
                    reason="max_receive_count",
                    dead_at_ms=None,
                )
                held[letter.message_id] = (letter, message["ReceiptHandle"])
            if len(held) >= visible or (wanted is not None and wanted <= held.keys()):
                break
        return list(held.values())

    def _release_dead_letters(self, receipts: Sequence[str]) -> None:
        for start in range(0, len(receipts), SQS_BATCH):
            chunk = receipts[start : start + SQS_BATCH]
            response = self._sqs.change_message_visibility_batch(
                QueueUrl=self._dead_letter_url(),
                Entries=[{"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": 0} for n, r in enumerate(chunk)],
            )
            _log_failures("dead letter not released; it is visible again after the hold", response.get("Failed", []))


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


def _replayed(letter: DeadLetter) -> Outgoing:
    """A dead letter sent again: same body and group, a deduplication id of its own (FIFO)."""
    dedupe = None if letter.group is None else f"replay-{uuid.uuid4().hex}"
    return Outgoing(body=letter.body, group=letter.group, dedupe=dedupe)


def _entry(entry_id: str, message: Outgoing) -> dict[str, str]:
    entry = {"Id": entry_id, "MessageBody": message.body}
    if message.group is not None:
        entry["MessageGroupId"] = message.group
    if message.dedupe is not None:
        entry["MessageDeduplicationId"] = message.dedupe
    return entry


def _batches(messages: Sequence[Outgoing]) -> list[list[Outgoing]]:
    """In order, batches of at most SQS_BATCH messages whose bodies add up to at most QUEUE_MESSAGE_BYTES."""
    batches: list[list[Outgoing]] = []
    size = 0
    for message in messages:
        length = len(message.body.encode())
        if not batches or len(batches[-1]) == SQS_BATCH or size + length > QUEUE_MESSAGE_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(message)
        size += length
    return batches


def _log_failures(message: str, failures: Sequence[Any]) -> None:
    """Entries SQS did not take: a stale receipt (the message was redelivered) is one; the message comes back."""
    if failures:
        logger.warning(message, extra={"codes": sorted({f["Code"] for f in failures}), "count": len(failures)})
