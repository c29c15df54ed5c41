"""SES bounces and complaints (EventBridge, from the configuration set every email is sent with) → suppressed
addresses: nothing more is mailed to an address that bounced for good or complained (`intake.suppression`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake import runtime
from intake.handlers import imported
from intake.observability import count, logger, metrics, traced
from intake.records import SuppressionReason
from intake.suppression import parse_feedback, record_feedback

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
    if feedback is None:  # the rule passes bounces and complaints only; anything else is noted and left
        logger.info("not a bounce or complaint", extra={"detail_type": event.get("detail-type")})
        return {"suppressed": 0}
    logger.append_keys(ses_message_id=feedback.ses_message_id)
    suppressed = record_feedback(runtime.store(), feedback)
    count(_METRIC[feedback.reason])
    metrics.add_metric(name="AddressSuppressed", unit=MetricUnit.Count, value=suppressed)
    return {"suppressed": suppressed}


imported()
