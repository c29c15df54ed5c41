"""Sender queue consumer: each agent's reply goes out on its channel; a transient failure stays on the queue."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake import runtime
from intake.channels.sending import TIMEOUT_S
from intake.failures import FailureRecorder, RecordingFifoProcessor
from intake.handlers import imported
from intake.model import Message
from intake.observability import count, logger, metrics, traced
from intake.replies import BACKOFF_S, SEND_ATTEMPTS, ReplyRetryError, count_as_response, deliver, job_of
from intake.resources import SENDER_QUEUE

runtime.settings()  # cold start: a bad INTAKE_* variable fails here, named

# One ticket's replies go out in order: a reply being retried holds back only the later ones of its ticket
processor = RecordingFifoProcessor(
    FailureRecorder(SENDER_QUEUE, runtime.store, runtime.utc_now), skip_group_on_error=True
)
_METRIC = {"sent": "ReplySent", "failed": "ReplyFailed", "done": "DuplicateDropped", "missing": "ReplyMissing"}
# A reply is tried only while a whole delivery (its tries and their backoff) still fits in the invocation: one
# cut short by the timeout would fail its whole batch, and the replies already sent in it would go out twice.
DELIVERY_WORST_S = SEND_ATTEMPTS * TIMEOUT_S + BACKOFF_S * (2 ** (SEND_ATTEMPTS - 1) - 1) + 2  # 21.5 s
_deadline = [float("inf")]  # monotonic time the current invocation must end by


def _respond(message: Message, at: datetime) -> None:
    count_as_response(runtime.tracker(), message, at)


def record_handler(record: SQSRecord) -> None:
    job = job_of(record.body)
    logger.append_keys(ticket_id=job.ticket_id, reply_id=job.reply_id)
    last_try = int(record.attributes.approximate_receive_count) >= SENDER_QUEUE.max_receive_count
    if time.monotonic() + DELIVERY_WORST_S > _deadline[0]:
        count("ReplyDeferred")
        raise ReplyRetryError("left for the next invocation: this one would end before it could be sent")
    try:
        outcome = deliver(
            runtime.store(), job, runtime.send_context(), _respond, clock=runtime.utc_now, last_try=last_try
        )
    except ReplyRetryError:
        count("ReplyRetried")
        logger.warning("reply not sent yet; the queue will try again", extra={"sqs_message_id": record.message_id})
        raise
    except Exception:
        logger.exception("reply not sent; it stays on the queue", extra={"sqs_message_id": record.message_id})
        raise
    count(_METRIC[outcome])
    logger.info("reply delivered", extra={"outcome": outcome})
    logger.remove_keys(["ticket_id", "reply_id"])


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    _deadline[0] = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


imported()
