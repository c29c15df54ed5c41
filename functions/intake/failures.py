"""Messages that failed: why (recorded at each failed try), which are dead-lettered, and putting them back.

Each failed try of a queue's message is recorded in the table (`Store.record_failure`, by the batch processors
below): the error's type and a short message without customer data, how many tries failed, the first and the last.
The message itself stays on its queue and, after the queue's receive limit, in its dead-letter queue, which is what
`dead_lettered` lists (with what was recorded) and `replay` sends back to the queue. A replay is safe to repeat: the
table's dedupe records (`SEEN#...`) drop what already became a message, the notifier's claims what was already sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    ExceptionInfo,
    FailureResponse,
    SqsFifoPartialProcessor,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intake.errors import FailureNotFoundError
from intake.inbox import QueuedItem, decode_message
from intake.model import CallEvent, Channel, ChannelName, DeliveryStatus, EmailArrived, InboundMessage, UtcDatetime
from intake.observability import count_failed_record, logger
from intake.queues import DeadLetter, DeadLetters
from intake.resources import INBOUND_QUEUE, NOTIFICATIONS_QUEUE, QueueSpec
from intake.store import FailureRecord, Store

MESSAGE_CHARS = 300
_ADDRESS = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+")
_NUMBER = re.compile(r"\+?\d[\d ().-]{5,}\d")


def describe(error: BaseException) -> tuple[str, str]:
    """The error's type and a short message fit for logs and operators: a validation error says which fields are
    wrong and how (never their values); any other message has its email addresses and phone numbers masked."""
    if isinstance(error, ValidationError):
        wrong = [
            f"{'.'.join(str(part) for part in e['loc']) or '(value)'} {e['type']}"
            for e in error.errors(include_url=False, include_context=False, include_input=False)
        ]
        message = f"{error.error_count()} invalid: {', '.join(wrong)}"
    else:
        message = _NUMBER.sub("<number>", _ADDRESS.sub("<address>", str(error)))
    return type(error).__name__, message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"


@dataclass(frozen=True)
class FailureRecorder:
    """Records the failed messages of one queue, and counts each (`RecordFailed`, alarmed: the batch handler itself
    succeeds). Recording that fails is logged, never raised: the message stays on its queue whether or not its error
    was written down."""

    queue: QueueSpec
    store: Callable[[], Store]
    clock: Callable[[], datetime]

    def __call__(self, record: SQSRecord, exception: ExceptionInfo) -> None:
        count_failed_record(self.queue.name)
        error = exception[1]
        kind, message = describe(error) if error is not None else ("Unknown", "")
        keep = timedelta(seconds=self.queue.retention_s)  # as long as its dead letter can be there
        try:
            self.store().record_failure(self.queue.name, record.message_id, kind, message, self.clock(), keep)
        except Exception:  # the edge of the failure path: the message's own failure is what matters
            logger.exception("failure not recorded", extra={"sqs_message_id": record.message_id})


class RecordingProcessor(BatchProcessor):
    """Powertools' SQS batch processor that records each failed message (`FailureRecorder`) as it reports it."""

    def __init__(self, recorder: FailureRecorder) -> None:
        self.recorder = recorder
        super().__init__(EventType.SQS)

    def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse:
        self.recorder(record, exception)
        return super().failure_handler(record, exception)


class RecordingFifoProcessor(SqsFifoPartialProcessor):
    """The FIFO one: the messages it fails unprocessed behind a failed one of their group are recorded too
    (`SQSFifoMessageGroupCircuitBreakerError`), as they reach the dead-letter queue with it."""

    def __init__(self, recorder: FailureRecorder, skip_group_on_error: bool = False) -> None:
        self.recorder = recorder
        super().__init__(skip_group_on_error=skip_group_on_error)

    def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse:
        self.recorder(record, exception)
        return super().failure_handler(record, exception)


class Failure(BaseModel):
    """A dead-lettered message as operators see it: what it is about and why it failed, never its content."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: str = Field(description="the queue message's id: what `POST /failures/{id}/replay` takes")
    queue: str = Field(description="the queue it failed on, where a replay sends it: inbound, email, notifications")
    channel: ChannelName | None = Field(default=None, description="inbound: the customer's channel")
    receipt_id: str | None = Field(default=None, description="inbound: the receipt of the request it came in")
    ticket_id: str | None = Field(default=None, description="notifications: the ticket it is about")
    error_type: str | None = Field(description="the exception's type; null: no failure was recorded (a timeout)")
    error_message: str | None = Field(description="short, without the message's content")
    attempts: int = Field(ge=0, description="failed tries recorded (else the queue's receive count)")
    first_try: UtcDatetime | None
    last_try: UtcDatetime | None
    queued_at: UtcDatetime = Field(description="when it was sent to its queue")
    dead_at: UtcDatetime | None = Field(default=None, description="when it was dead-lettered, where the queue says")


class FailureList(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    items: list[Failure]
    dead_letters: dict[str, int] = Field(description="each queue's dead letters as the queue counts them")


def dead_lettered(queues: Mapping[str, DeadLetters], store: Store) -> FailureList:
    """Every queue's dead letters, oldest first, with the failures recorded for them."""
    items: list[Failure] = []
    for name, queue in queues.items():
        letters = queue.dead_letters()
        records = store.failure_records(name) if letters else {}
        items += [_failure(name, letter, records.get(letter.message_id)) for letter in letters]
    counts = {name: queue.dead_letter_count() for name, queue in queues.items()}
    return FailureList(items=sorted(items, key=lambda f: (f.queued_at, f.id)), dead_letters=counts)


def replay(queues: Mapping[str, DeadLetters], failure_id: str) -> str:
    """Send the dead letter `failure_id` back to its queue; returns the queue's name."""
    for name, queue in queues.items():
        if queue.redrive([failure_id]):
            logger.info("dead letter replayed", extra={"queue": name, "sqs_message_id": failure_id})
            return name
    raise FailureNotFoundError(failure_id)


def _failure(queue: str, letter: DeadLetter, record: FailureRecord | None) -> Failure:
    return Failure(
        id=letter.message_id,
        queue=queue,
        **_about(queue, letter.body),
        error_type=record.error_type if record else None,
        error_message=record.error_message if record else None,
        attempts=record.attempts if record else letter.receive_count,
        first_try=record.first_try if record else None,
        last_try=record.last_try if record else None,
        queued_at=_instant(letter.sent_at_ms),
        dead_at=None if letter.dead_at_ms is None else _instant(letter.dead_at_ms),
    )


def _about(queue: str, body: str) -> dict[str, Any]:
    """What a message is about, from its ids: channel and receipt (inbound), ticket (notifications). A body that is
    not what its queue carries says nothing."""
    try:
        if queue == NOTIFICATIONS_QUEUE.name:
            document = json.loads(body)
            ticket_id = document.get("ticket_id") if isinstance(document, dict) else None
            return {"ticket_id": ticket_id if isinstance(ticket_id, str) else None}
        if queue != INBOUND_QUEUE.name:
            return {}
        item = decode_message(body)
    except ValueError:  # not JSON, or not one of ours (pydantic's ValidationError is a ValueError)
        return {}
    return {"channel": _channel(item), "receipt_id": item.receipt_id}


def _channel(item: QueuedItem) -> str:
    if isinstance(item, InboundMessage):
        return item.channel
    if isinstance(item, CallEvent):
        return Channel.PHONE
    if isinstance(item, EmailArrived):
        return Channel.EMAIL
    if isinstance(item, DeliveryStatus) and item.provider == "twilio":
        return Channel.SMS
    return Channel.WHATSAPP  # reactions and the other delivery statuses come from WhatsApp


def _instant(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)
