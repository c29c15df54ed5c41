"""Notifications queue consumer: each SLA warning, breach or escalation becomes one email; failures stay queued."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake import runtime
from intake.failures import FailureRecorder, RecordingProcessor
from intake.handlers import imported
from intake.notify.notifier import Outcome, notify
from intake.observability import count, logger, metrics, traced
from intake.resources import NOTIFICATIONS_QUEUE

runtime.settings()  # cold start: a bad INTAKE_* variable fails here, named

processor = RecordingProcessor(FailureRecorder(NOTIFICATIONS_QUEUE, runtime.store, runtime.utc_now))
_METRIC = {
    "warning": "SlaWarningSent",
    "breach": "SlaBreachSent",
    "escalation": "SlaEscalationSent",
    "survey": "SurveySent",
}


def record_handler(record: SQSRecord) -> None:
    try:
        result = notify(
            record.body,
            store=runtime.store(),
            mailer=runtime.mailer(),
            policy=runtime.policy(),
            base_url=runtime.settings().public_base_url,
            now=datetime.now(UTC),
            surveys=runtime.survey_delivery(),
        )
    except Exception:
        logger.exception("notification not sent; it stays on the queue", extra={"sqs_message_id": record.message_id})
        raise
    if result.outcome is Outcome.SENT:
        count(_METRIC[result.notification.kind])
    elif result.outcome is Outcome.DUPLICATE:
        count("DuplicateDropped")
    elif result.outcome is Outcome.NO_RECIPIENTS:
        count("NotificationUnaddressed")
    elif result.outcome is Outcome.REQUESTED:
        count("SurveyRequested")
    elif result.outcome is Outcome.SUPPRESSED:
        count("SurveySuppressed")


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


imported()
