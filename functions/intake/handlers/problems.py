"""RFC 9457 problem+json for every error a route can raise, mapped by type, never by message."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from intake.channels.sending import ReplyUndeliverableError, WindowClosedError
from intake.config import ConfigError
from intake.errors import (
    ContactNotFoundError,
    CursorInvalidError,
    EmailUnroutableError,
    FailureNotFoundError,
    FieldInvalidError,
    FormNotFoundError,
    IdempotencyKeyReusedError,
    OriginForbiddenError,
    PayloadTooLargeError,
    PermanentlyUnacceptableError,
    QuarantineNotFoundError,
    QuarantineReleasedError,
    SignatureInvalidError,
    StoreUnavailableError,
    SurveyLinkExpiredError,
    SurveyLinkInvalidError,
    SurveySecretMissingError,
    TicketNotFoundError,
    TransitionInvalidError,
    UnsupportedMediaTypeError,
    WebhookSignatureInvalidError,
)
from intake.model import WebhookRequest
from intake.observability import count, logger

TYPE_BASE = "urn:intake:problem:"
CONTENT_TYPE = "application/problem+json"

# error class → (status, stable type, title)
PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {
    FieldInvalidError: (400, "field-invalid", "A field is missing or invalid"),
    CursorInvalidError: (400, "cursor-invalid", "The cursor is not one we handed out"),
    SignatureInvalidError: (401, "signature-invalid", "The request's signature is missing or invalid"),
    OriginForbiddenError: (403, "origin-forbidden", "This origin may not post to this form"),
    WebhookSignatureInvalidError: (403, "webhook-signature-invalid", "The webhook's signature is missing or invalid"),
    FormNotFoundError: (404, "form-not-found", "No such form"),
    TicketNotFoundError: (404, "ticket-not-found", "No such ticket"),
    ContactNotFoundError: (404, "contact-not-found", "No such contact"),
    QuarantineNotFoundError: (404, "quarantine-not-found", "No such quarantined email"),
    FailureNotFoundError: (404, "failure-not-found", "No such dead-lettered message"),
    QuarantineReleasedError: (409, "quarantine-released", "This email was released already"),
    EmailUnroutableError: (409, "team-required", "No team takes mail for its recipients: name one (team)"),
    TransitionInvalidError: (409, "transition-invalid", "The ticket's status does not allow this"),
    WindowClosedError: (
        409,
        "window-closed",
        "The channel's reply window has closed: only a template (WhatsApp) or a tagged message can be sent",
    ),
    ReplyUndeliverableError: (409, "reply-undeliverable", "This conversation cannot be answered where it came from"),
    IdempotencyKeyReusedError: (422, "idempotency-key-reused", "This Idempotency-Key was used for another reply"),
    PermanentlyUnacceptableError: (406, "message-unacceptable", "This message will never be accepted"),
    SurveyLinkInvalidError: (403, "survey-link-invalid", "This survey link is not valid"),
    SurveyLinkExpiredError: (410, "survey-link-expired", "This survey link has expired"),
    PayloadTooLargeError: (413, "payload-too-large", "The request is too large"),
    UnsupportedMediaTypeError: (415, "unsupported-media-type", "The content type is not accepted"),
    StoreUnavailableError: (503, "unavailable", "Try again shortly"),
    ConfigError: (500, "misconfigured", "The service is misconfigured"),
    SurveySecretMissingError: (500, "misconfigured", "The service is misconfigured"),
}


def problem(status: int, kind: str, title: str, detail: str, instance: str, **extra: Any) -> Response[str]:
    body = {
        "type": TYPE_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    return Response(status_code=status, content_type=CONTENT_TYPE, body=json.dumps({**body, **extra}))


def register(app: APIGatewayHttpResolver) -> None:
    """Map every known error to its problem, anything else to a logged 500."""

    def instance() -> str:
        return str(logger.get_correlation_id() or app.current_event.request_context.request_id)

    def known(error: Exception) -> Response[str]:
        status, kind, title = next(v for t, v in PROBLEMS.items() if isinstance(error, t))
        extra = {"field": error.field} if isinstance(error, FieldInvalidError) else getattr(error, "problem_extra", {})
        forged = isinstance(error, SignatureInvalidError | WebhookSignatureInvalidError)
        count("SignatureRejected" if forged else "RequestRejected")
        logger.info("request rejected", extra={"problem": kind, "status": status})
        if _browser(app.current_event):  # a customer who clicked a link reads a page, not JSON
            return _page(status, kind, title)
        return problem(status, kind, title, str(error), instance(), **extra)

    for error_type in PROBLEMS:
        app.exception_handler(error_type)(known)

    @app.not_found
    def not_found(_: Exception) -> Response[str]:
        return problem(404, "route-not-found", "No such route", app.current_event.raw_path, instance())

    def unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return problem(500, "internal", "Something went wrong on our side", "retry later", instance())

    app.exception_handler(Exception)(unexpected)


# A page a customer's browser shows: never cached, nothing loaded or framed, no referrer (the link is a token)
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

_PAGES = {
    "survey-link-invalid": "This link does not work. Please use the link from your email as it is.",
    "survey-link-expired": "This survey has closed. Thank you all the same: you can still reply to our email.",
}


def _browser(event: APIGatewayProxyEventV2) -> bool:
    """A person's browser on a page route (the survey links), which asks for HTML."""
    accept = (event.headers or {}).get("accept", "")
    return event.raw_path.startswith("/csat/") and "text/html" in accept


def _page(status: int, kind: str, title: str) -> Response[str]:
    text = html.escape(_PAGES.get(kind, "Something is wrong with this request."))
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body style="font-family: Arial, sans-serif; max-width: 32rem; margin: 3rem auto; color: #222;">'
        f'<h1 style="font-size: 1.4rem;">{html.escape(title)}</h1><p>{text}</p>'
        f'<p style="color: #888; font-size: .8rem;">{TYPE_BASE}{kind}</p></body></html>'
    )
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=body, headers=PAGE_HEADERS)


def webhook_request(event: APIGatewayProxyEventV2) -> WebhookRequest:
    raw = event.body or ""
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8")
    return WebhookRequest(
        method=event.request_context.http.method,
        path=event.raw_path,
        query=event.raw_query_string,
        headers={k.lower(): v for k, v in (event.headers or {}).items()},
        body=body,
        source_ip=event.request_context.http.source_ip,
    )
