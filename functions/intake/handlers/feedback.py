"""SES bounces, complaints and deliveries (EventBridge, from the configuration set every email is sent with) →
suppressed addresses: nothing more is mailed to an address that bounced for good or complained; and an agent's email
reply `failed` (it bounced) or `delivered` (`intake.suppression`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake import runtime
from intake.handlers import imported
from intake.model import DeliveryState
from intake.notify.mailer import ses_message_id
from intake.observability import count, logger, metrics, traced
from intake.records import SuppressionReason
from intake.suppression import parse_feedback, record_delivery, record_feedback

runtime.settings()  # cold start: a bad INTAKE_* variable fails here, named

_METRIC = {
    SuppressionReason.BOUNCE: "MailBounced",
    SuppressionReason.COMPLAINT: "MailComplained",
    None: "MailBouncedTransiently",
}


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    feedback = parse_feedback(event["detail"])
    if feedback is None:  # the rule passes bounces, complaints and deliveries only; anything else is noted and left
        logger.info("not a bounce, complaint or delivery", extra={"detail_type": event.get("detail-type")})
        return {"suppressed": 0, "reply": None}
    logger.append_keys(ses_message_id=feedback.ses_message_id)
    store = runtime.store()
    suppressed = record_feedback(store, feedback)
    reply = record_delivery(store, feedback, ses_message_id(feedback.ses_message_id, runtime.region()))
    if feedback.delivery != DeliveryState.DELIVERED:
        count(_METRIC[feedback.reason])
        metrics.add_metric(name="AddressSuppressed", unit=MetricUnit.Count, value=suppressed)
    return {"suppressed": suppressed, "reply": reply}


imported()
