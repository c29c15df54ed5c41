"""Inbound queue consumer: each message becomes a ticket or joins one; failures stay on the queue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake import runtime
from intake.calls import fold_call_event
from intake.failures import FailureRecorder, RecordingFifoProcessor
from intake.handlers import imported
from intake.ids import new_id
from intake.inbox import decode_message
from intake.ingest import Outcome, annotate, ingest_prepared
from intake.model import CallEvent, DeliveryStatus, EmailArrived, Reaction
from intake.observability import count, logger, metrics, traced
from intake.resources import INBOUND_QUEUE

runtime.settings()  # cold start: a bad INTAKE_* variable fails here, named

# A failed message fails only its own conversation's later messages (FIFO order), never others; each failed
# message's error is recorded for `intake failures`.
processor = RecordingFifoProcessor(
    FailureRecorder(INBOUND_QUEUE, runtime.store, runtime.utc_now), skip_group_on_error=True
)
_METRIC = {
    Outcome.CREATED: "TicketCreated",
    Outcome.APPENDED: "MessageAppended",
    Outcome.REOPENED: "TicketReopened",
    Outcome.DUPLICATE: "DuplicateDropped",
    Outcome.ANNOTATED: "ReactionRecorded",
}


def record_handler(record: SQSRecord) -> None:
    try:
        item = decode_message(record.body)
        logger.append_keys(receipt_id=item.receipt_id)
        if isinstance(item, CallEvent):
            result = fold_call_event(runtime.store(), runtime.prepare_call(item), new_id, runtime.policy())
        elif isinstance(item, Reaction):
            result = annotate(runtime.store(), item)
        elif isinstance(item, DeliveryStatus):
            from intake.replies import apply_status  # replies' path only: it imports the channels' sending code

            moved = apply_status(runtime.store(), item)
            count("DeliveryStatusApplied" if moved else "DeliveryStatusIgnored")
            logger.remove_keys(["receipt_id"])
            return
        elif isinstance(item, EmailArrived):
            from intake.emails import ingest_email  # the email path's MIME parsing: SendGrid and Mailgun mail only

            result = ingest_email(runtime.store(), runtime.email_stores(), item, runtime.policy(), new_id)
        else:
            result = ingest_prepared(runtime.store(), item, new_id, runtime.prepare, runtime.policy())
        if result is not None:
            runtime.tracker().after_ingest(result, runtime.utc_now())
    except Exception:
        logger.exception("message not ingested; it stays on the queue", extra={"sqs_message_id": record.message_id})
        raise
    if result is None:
        logger.info("recorded; no message to put it on (yet)", extra={"kind": item.type})
    else:
        count(_METRIC[result.outcome])
        logger.info("message ingested", extra={"ticket_id": result.ticket_id, "outcome": result.outcome.value})
    logger.remove_keys(["receipt_id"])


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


imported()
