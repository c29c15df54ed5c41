"""SES receiving's consumer: S3 "object created" events for new messages → the same email path."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake import runtime
from intake.emails import arrivals, ingest_email
from intake.failures import FailureRecorder, RecordingProcessor
from intake.handlers import imported
from intake.ids import new_id
from intake.observability import count, logger, metrics, traced
from intake.resources import EMAIL_QUEUE

runtime.settings()  # cold start: a bad INTAKE_* variable fails here, named

processor = RecordingProcessor(FailureRecorder(EMAIL_QUEUE, runtime.store, runtime.utc_now))


def record_handler(record: SQSRecord) -> None:
    stores = runtime.email_stores()
    for arrived in arrivals(record.body, new_id):
        logger.append_keys(receipt_id=arrived.receipt_id)
        result = ingest_email(runtime.store(), stores, arrived, runtime.policy(), new_id)
        if result is not None:
            runtime.tracker().after_ingest(result, runtime.utc_now())
        count("EmailReceived" if result is not None else "EmailHeldOrAutoRecorded")
        logger.info("email ingested", extra={"ticket_id": result.ticket_id if result else None})


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


imported()
