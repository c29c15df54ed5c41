"""What every Meta webhook shares (WhatsApp, Messenger, Instagram): the subscription handshake and the signature,
the two routes and how their OpenAPI operations read; and WhatsApp's reply window, whichever provider carries the
conversation (Meta's Cloud API, Twilio).

Meta subscribes a webhook with a `GET` carrying `hub.mode=subscribe`, our verify token and a challenge to echo, and
signs every `POST` with `X-Hub-Signature-256`, an HMAC-SHA256 of the raw body under the app's secret
(`intake.channels.signatures.verify_meta` does the constant-time comparison). Each channel keeps its own secrets
(one app may serve several channels, or not): the channel's name only words the errors.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from intake.channels import contract, signatures
from intake.channels.contract import ReplyContext, Route, Sample, SignContext
from intake.channels.sending import Template, WindowClosedError
from intake.config import Strict
from intake.errors import FieldInvalidError, PayloadTooLargeError, SignatureInvalidError, WebhookSignatureInvalidError
from intake.model import WebhookRequest

SIGNATURE_HEADER = "x-hub-signature-256"
WHATSAPP_REPLY_WINDOW = timedelta(hours=24)  # free replies after the customer's last message; then templates


# ------------------------------------------------------- WhatsApp's templates (`whatsapp.templates` entries)


TemplateParameter = Literal["text", "reference", "customer_name", "team_name", "agent"]


def _text_only() -> list[TemplateParameter]:
    return ["text"]


class WhatsAppTemplate(Strict):
    """A message template Meta approved, by its name: the only message WhatsApp lets us send once 24 hours have passed
    since the customer's last message. Its body's parameters, in order, are filled from the reply: the agent's text,
    the ticket's reference, the customer's name, the team's name, the agent."""

    language: str = Field(default="en_US", pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")
    parameters: list[TemplateParameter] = Field(default_factory=_text_only)


def handshake(query: Mapping[str, str], verify_token: str | None, channel: str) -> str:
    """The `hub.challenge` to answer Meta's subscription request, when it carries our verify token.

    Anything else (another mode, a wrong or missing token, no token configured, no challenge) raises
    `WebhookSignatureInvalidError`, which the receiver answers with 403.
    """
    if not verify_token:
        raise WebhookSignatureInvalidError(f"no {channel} verify token is configured")
    if query.get("hub.mode") != "subscribe":
        raise WebhookSignatureInvalidError("hub.mode must be subscribe")
    sent = query.get("hub.verify_token") or ""
    if not hmac.compare_digest(sent.encode(), verify_token.encode()):
        raise WebhookSignatureInvalidError("hub.verify_token does not match")
    challenge = query.get("hub.challenge")
    if not challenge:
        raise WebhookSignatureInvalidError("hub.challenge is required")
    return challenge


def verify(request: WebhookRequest, app_secret: str | None, channel: str) -> None:
    """Raise `SignatureInvalidError` unless `X-Hub-Signature-256` signs `request.body`, byte for byte."""
    if not app_secret:
        raise SignatureInvalidError(f"no {channel} app secret is configured")
    signatures.verify_meta(app_secret, request.header(SIGNATURE_HEADER), request.body)


def sign(sample: Sample, ctx: SignContext, app_secret: str, channel: str) -> Sample:
    """A sample request with `X-Hub-Signature-256` as Meta makes it: over the exact bytes sent, with the app secret
    named `app_secret`."""
    secret = contract.needs_secret(ctx.secrets, app_secret, channel)
    signature = signatures.meta_signature(secret, sample.body)
    return Sample(sample.path, {**sample.headers, SIGNATURE_HEADER: signature}, sample.body)


def routes(channel: str, path: str) -> tuple[Route, Route]:
    """A Meta channel's two routes at `path`: the subscription `GET` and the signed webhook `POST`."""
    return (
        Route(
            "GET",
            path,
            f"verify{channel}Subscription",
            "Meta's subscription handshake cannot sign SigV4; the receiver answers the challenge only when "
            "hub.verify_token matches the configured secret, and stores nothing.",
        ),
        Route(
            "POST",
            path,
            f"receive{channel}",
            "Meta cannot sign SigV4. The receiver checks X-Hub-Signature-256 (HMAC-SHA256 with the app secret over "
            "the raw body) and stores nothing when it fails.",
        ),
    )


def handshake_operation(route: Route, verify_token: str, described: str = "set in Meta's app") -> dict[str, Any]:
    """The OpenAPI operation of the subscription `GET`: the challenge, when `hub.verify_token` matches the
    `verify_token` secret (`described`: what the parameter's description says it is)."""
    from intake import openapi_parts as api

    return api.webhook(
        route.operation,
        "Meta's subscription handshake",
        f"Answers `hub.challenge` when `hub.verify_token` matches the {verify_token} secret.",
        {
            "200": {"description": "The challenge.", "content": {"text/plain": {"schema": {"type": "string"}}}},
            **api.problems(WebhookSignatureInvalidError),
        },
        parameters=[
            api.parameter("hub.mode", "query", {"const": "subscribe"}, "always `subscribe`", required=True),
            api.parameter("hub.verify_token", "query", {"type": "string"}, described, required=True),
            api.parameter("hub.challenge", "query", {"type": "string"}, "echoed back", required=True),
        ],
    )


def webhook_operation(route: Route, summary: str, description: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI operation of the signed webhook `POST`: Meta's notification under `X-Hub-Signature-256`, `answer`
    (the 200 response) or a problem."""
    from intake import openapi_parts as api

    return api.webhook(
        route.operation,
        summary,
        description,
        {"200": answer, **api.problems(FieldInvalidError, WebhookSignatureInvalidError, PayloadTooLargeError)},
        parameters=[
            api.parameter(
                "X-Hub-Signature-256",
                "header",
                {"type": "string", "pattern": "^sha256=[0-9a-fA-F]{64}$"},
                "`sha256=` + hex HMAC-SHA256(app secret, raw body)",
                required=True,
            )
        ],
        requestBody=api.provider_payload("Meta's webhook notification (provider payload).", "application/json"),
    )


def whatsapp_template(ctx: ReplyContext, templates: Mapping[str, WhatsAppTemplate]) -> Template | None:
    """WhatsApp's rule: free text and media for 24 hours after the customer's last message, then only an approved
    template (`templates`, the policy's, with its parameters filled in); else `WindowClosedError` (409)."""
    closes = ctx.detail.last_inbound_at + WHATSAPP_REPLY_WINDOW
    if ctx.template is None:
        if ctx.now < closes:
            return None
        raise WindowClosedError(closes, sorted(templates))
    chosen = templates.get(ctx.template)
    if chosen is None:
        known = ", ".join(sorted(templates)) or "none"
        raise FieldInvalidError("template", f"not one of intake.yaml's whatsapp.templates (known: {known})")
    if ctx.attachments and ctx.now >= closes:
        raise WindowClosedError(closes, sorted(templates), "a template carries no attachments")
    detail = ctx.detail
    values = {
        "text": ctx.text,
        "reference": detail.reference,
        "customer_name": (detail.contact.name if detail.contact else None) or "",
        "team_name": ctx.policy.teams[detail.team].name,
        "agent": ctx.by,
    }
    return Template(ctx.template, chosen.language, tuple(values[p] for p in chosen.parameters))
