"""Webhook receiver: verify, archive, enqueue, answer — in milliseconds, before any real work."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake import runtime
from intake.handlers import problems
from intake.ids import new_id
from intake.observability import count, logger, metrics, traced
from intake.reception import (
    TwilioRoute,
    answer_whatsapp_handshake,
    receive_form,
    receive_mailgun,
    receive_sendgrid,
    receive_twilio,
    receive_whatsapp,
)

app = APIGatewayHttpResolver()
problems.register(app)
runtime.settings()  # cold start: a bad INTAKE_* variable fails here, named


def _receipt(**keys: str) -> str:
    """A new receipt id: the request's correlation id, in every log line from here on."""
    receipt_id = new_id()
    logger.set_correlation_id(receipt_id)
    logger.append_keys(receipt_id=receipt_id, **keys)
    return receipt_id


@app.post("/webhooks/forms/<form_id>")
def form_webhook(form_id: str) -> Response[str]:
    receipt_id = _receipt(form_id=form_id)
    receipt = receive_form(
        form_id,
        problems.webhook_request(app.current_event),
        policy=runtime.policy(),
        secrets=runtime.secrets(),
        inbox=runtime.inbox(),
        received_at=datetime.now(UTC),
        receipt_id=receipt_id,
        max_body_bytes=runtime.settings().max_body_bytes,
    )
    count("FormReceived" if receipt.queued else "SpamDropped")
    logger.info("form received", extra={"queued": receipt.queued})
    return Response(202, "application/json", json.dumps({"receipt": receipt.receipt_id}))


def _twilio(route: TwilioRoute) -> Response[str]:
    receipt_id = _receipt(twilio_route=route.value)
    settings = runtime.settings()
    answer = receive_twilio(
        route,
        problems.webhook_request(app.current_event),
        policy=runtime.policy(),
        secrets=runtime.secrets(),
        inbox=runtime.inbox(),
        received_at=datetime.now(UTC),
        receipt_id=receipt_id,
        public_base_url=settings.public_base_url,
        max_body_bytes=settings.max_body_bytes,
    )
    count("TwilioReceived" if answer.queued else "DeliveryStatusRecorded")
    logger.info("twilio webhook received", extra={"queued": answer.queued})
    return Response(200, "text/xml", answer.twiml)


@app.post("/webhooks/twilio/voice")
def twilio_voice() -> Response[str]:
    return _twilio(TwilioRoute.VOICE)


@app.post("/webhooks/twilio/voice/status")
def twilio_voice_status() -> Response[str]:
    return _twilio(TwilioRoute.VOICE_STATUS)


@app.post("/webhooks/twilio/voice/recording")
def twilio_voice_recording() -> Response[str]:
    return _twilio(TwilioRoute.VOICE_RECORDING)


@app.post("/webhooks/twilio/voice/transcription")
def twilio_voice_transcription() -> Response[str]:
    return _twilio(TwilioRoute.VOICE_TRANSCRIPTION)


@app.post("/webhooks/twilio/messaging")
def twilio_messaging() -> Response[str]:
    return _twilio(TwilioRoute.MESSAGING)


@app.get("/webhooks/whatsapp")
def whatsapp_handshake() -> Response[str]:
    query = app.current_event.query_string_parameters or {}
    challenge = answer_whatsapp_handshake(query, secrets=runtime.secrets())
    logger.info("whatsapp subscription verified")
    return Response(200, "text/plain", challenge)


@app.post("/webhooks/whatsapp")
def whatsapp_webhook() -> Response[str]:
    receipt_id = _receipt()
    receipt = receive_whatsapp(
        problems.webhook_request(app.current_event),
        policy=runtime.policy(),
        secrets=runtime.secrets(),
        inbox=runtime.inbox(),
        received_at=datetime.now(UTC),
        receipt_id=receipt_id,
        max_body_bytes=runtime.settings().max_body_bytes,
    )
    metrics.add_metric(name="WhatsAppQueued", unit=MetricUnit.Count, value=receipt.queued)
    metrics.add_metric(name="DeliveryStatusRecorded", unit=MetricUnit.Count, value=receipt.statuses)
    logger.info("whatsapp webhook received", extra={"queued": receipt.queued, "statuses": receipt.statuses})
    return Response(200, "application/json", json.dumps({"receipt": receipt_id, "queued": receipt.queued}))


@app.post("/webhooks/email/sendgrid")
def sendgrid_inbound() -> Response[str]:
    receipt_id = _receipt(provider="sendgrid")
    receive_sendgrid(
        problems.webhook_request(app.current_event),
        secrets=runtime.secrets(),
        inbox=runtime.inbox(),
        received_at=datetime.now(UTC),
        receipt_id=receipt_id,
        max_body_bytes=runtime.settings().max_body_bytes,
    )
    count("EmailReceived")
    logger.info("email received")
    return Response(200, "application/json", json.dumps({"receipt": receipt_id}))


@app.post("/webhooks/email/mailgun")
def mailgun_inbound() -> Response[str]:
    receipt_id = _receipt(provider="mailgun")
    receive_mailgun(
        problems.webhook_request(app.current_event),
        store=runtime.store(),
        secrets=runtime.secrets(),
        inbox=runtime.inbox(),
        received_at=datetime.now(UTC),
        receipt_id=receipt_id,
        max_body_bytes=runtime.settings().max_body_bytes,
    )
    count("EmailReceived")
    logger.info("email received")
    return Response(200, "application/json", json.dumps({"receipt": receipt_id}))


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
