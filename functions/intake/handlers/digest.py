"""EventBridge Scheduler target: `{"team": ..., "period": "daily"|"weekly"}` (optional `"date"`, a local
YYYY-MM-DD) → the team's digest of that window, published once (see `intake.digest.publish`)."""

from __future__ import annotations

import datetime
from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from intake import runtime
from intake.digest.publish import publish
from intake.handlers import imported
from intake.observability import count, logger, metrics, traced

runtime.settings()  # cold start: a bad INTAKE_* variable fails here, named


class DigestRequest(BaseModel):
    """What each schedule sends; unknown fields (Scheduler's own, if any) are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    team: str
    period: Literal["daily", "weekly"]
    date: datetime.date | None = None  # a local date in the window; none: the last complete window


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = DigestRequest.model_validate(event)
    logger.append_keys(team=request.team, period=request.period)
    result = publish(
        runtime.store(),
        runtime.mailer(),
        runtime.outlets(),
        runtime.policy(),
        request.team,
        request.period,
        request.date,
        base_url=runtime.settings().public_base_url,
        now=runtime.utc_now(),
    )
    if result.sent:
        count("DigestSent")
    figures = result.digest.figures
    logger.info(
        "digest done",
        extra={"reason": result.reason, "start": figures.start.isoformat(), "new_tickets": figures.current.new_tickets},
    )
    return {
        "sent": result.sent,
        "reason": result.reason,
        "digest_id": figures.digest_id,
        "archive": list(result.archive),
    }


imported()
