"""Webhook receiver: verify, archive, enqueue, answer — in milliseconds, before any real work."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake import runtime
from intake.channels import registry
from intake.channels.contract import Channel, ReceiveContext, Route
from intake.handlers import imported, problems
from intake.ids import new_id
from intake.observability import count, logger, metrics, traced

app = APIGatewayHttpResolver()
problems.register(app)
runtime.settings()  # cold start: a bad INTAKE_* variable fails here, named


def _receiver(channel: Channel, route: Route) -> Callable[..., Response[str]]:
    """The view of one channel route: a receipt id (the correlation id of every log line from here on), the
    channel's `receive`, its counts and one log line of ids."""

    def receive(**params: str) -> Response[str]:
        receipt_id = new_id()
        logger.set_correlation_id(receipt_id)
        logger.append_keys(receipt_id=receipt_id, provider=channel.name, route=route.operation)
        settings = runtime.settings()
        context = ReceiveContext(
            policy=runtime.policy(),
            secrets=runtime.secrets(),
            inbox=runtime.inbox(),
            received_at=datetime.now(UTC),
            receipt_id=receipt_id,
            public_base_url=settings.public_base_url,
            max_body_bytes=settings.max_body_bytes,
            params=params,
            claim_token=lambda provider, token: runtime.store().claim_token(provider, token, context.received_at),
        )
        answer = channel.receive(route, problems.webhook_request(app.current_event), context)
        for name, value in answer.counts.items():
            count(name, value)
        logger.info(f"{channel.name} webhook received", extra=dict(answer.log))
        return Response(answer.status, answer.content_type, answer.body)

    return receive


for _channel, _route in registry.routes():
    app.route(_route.resolver_path, method=_route.method)(_receiver(_channel, _route))


# Satisfaction survey links (public; the token is the authorization): a small HTML page, never cached or framed


@app.get("/csat/<token>")
def csat_question(token: str) -> Response[str]:
    """The link in the survey email: the question with its score chosen; nothing is recorded (scanners follow it)."""
    from intake import satisfaction  # the survey pages' path only

    asked = satisfaction.ask(
        token, store=runtime.store(), policy=runtime.policy(), secret=runtime.csat_secret(), now=datetime.now(UTC)
    )
    count("SurveyOpened")
    return Response(200, "text/html; charset=utf-8", satisfaction.question_page(asked), headers=problems.PAGE_HEADERS)


@app.post("/csat/<token>")
def csat_answer(token: str) -> Response[str]:
    """The question page's form: the score is recorded (the first stands), and the comment if there is one."""
    from intake import satisfaction  # the survey pages' path only

    event = app.current_event
    comment = satisfaction.comment_form(problems.webhook_request(event).body, (event.headers or {}).get("content-type"))
    answered = satisfaction.add_comment(
        token,
        comment,
        store=runtime.store(),
        policy=runtime.policy(),
        secret=runtime.csat_secret(),
        now=datetime.now(UTC),
    )
    count("SurveyAnswered" if answered.first else "SurveyAnsweredAgain")
    if answered.answer.comment and comment.strip():
        count("SurveyCommented")
    page = satisfaction.page(answered, commented=bool(comment.strip()))
    return Response(200, "text/html; charset=utf-8", page, headers=problems.PAGE_HEADERS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


imported()
