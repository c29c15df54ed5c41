"""SendGrid Inbound Parse: an email as a multipart/form-data POST, behind HTTP basic auth.

verify → raw_mime. The receiver checks the credentials SendGrid sends (configured in the Parse
setting's URL, `https://user:password@host/webhooks/email/sendgrid`), then hands the raw MIME to the
same email path as Amazon SES: archived as `.eml`, parsed, ticketed.

- Raw mode ("POST the raw, full MIME message"): the `email` field is the message, byte for byte.
- Parsed mode: SendGrid sends the original header block (`headers`), the bodies (`text`, `html`) in
  their original charsets named by `charsets` (JSON), and the attachments as file parts `attachment1…N`
  described by `attachment-info` (JSON) and, for inline images, `content-ids` (JSON: cid → field).
  The message is rebuilt from those with the stdlib `email` package (UTF-8 throughout).

Nothing here refuses a message for what it says: SendGrid drops a message after 3 days of failed
posts, so a field we cannot read falls back to what we can (the part's own charset, UTF-8, Windows-1252)
rather than losing the mail.
"""

from __future__ import annotations

from email.parser import Parser
from typing import Any

from intake.channels import contract, formdata, posted_mime, signatures
from intake.channels.contract import Answer, Made, ReceiveContext, ReplayContext, Route, Sample, SignContext
from intake.errors import (
    FieldInvalidError,
    PayloadTooLargeError,
    SignatureInvalidError,
    UnsupportedMediaTypeError,
    WebhookSignatureInvalidError,
)
from intake.mail_policy import DEFAULT
from intake.model import WebhookRequest

PROVIDER = "sendgrid"
PATH = "/webhooks/email/sendgrid"
USER = "SENDGRID_INBOUND_USER"  # the secrets' names: INTAKE_<name> locally
PASSWORD = "SENDGRID_INBOUND_PASSWORD"  # noqa: S105 - a name, not a password
FORM_DATA = "multipart/form-data"

_LAYOUT = posted_mime.Layout(
    fallback_headers=(("From", "from"), ("To", "to"), ("Cc", "cc"), ("Subject", "subject")),
    text="text",
    html="html",
    attachment_prefix="attachment",
    attachment_count="attachments",
    content_ids="content-ids",
    charsets="charsets",
    attachment_info="attachment-info",
)


def verify(request: WebhookRequest, user: str | None, password: str | None) -> None:
    """Raise `SignatureInvalidError` unless `Authorization` carries the configured basic-auth credentials."""
    if not user or not password:
        raise SignatureInvalidError("no SendGrid Inbound Parse credentials are configured")
    header = request.header("authorization")
    if not header:
        raise SignatureInvalidError("Authorization (basic auth) is required")
    if not signatures.basic_auth_matches(header, user, password):
        raise SignatureInvalidError("Authorization does not carry the configured credentials")


def raw_mime(request: WebhookRequest) -> bytes:
    """The email SendGrid posted, as MIME bytes: the `email` field in raw mode, rebuilt in parsed mode."""
    if request.media_type != FORM_DATA:
        raise UnsupportedMediaTypeError("content type", request.media_type, [FORM_DATA])
    parts = formdata.parts(request)
    email = formdata.first(parts, "email")
    if email is not None and email.content.strip():
        return email.content
    headers = formdata.first(parts, "headers")
    if headers is None or not headers.content.strip():
        raise FieldInvalidError(
            "email", "is required: neither `email` (raw mode) nor `headers` (parsed mode) was posted"
        )
    return _rebuilt(parts, headers)


# ------------------------------------------------------------------------------------ parsed mode


def _rebuilt(parts: list[formdata.Part], headers: formdata.Part) -> bytes:
    charsets = posted_mime.json_object(parts, _LAYOUT.charsets)
    block = formdata.text(headers.content, charsets.get("headers"), headers.charset).strip() + "\n\n"
    original = Parser(policy=DEFAULT).parsestr(block, headersonly=True)
    return posted_mime.rebuilt(parts, _LAYOUT, original.items()).as_bytes()


# ---------------------------------------------------------------------------- multipart/form-data


# ------------------------------------------------------------------------------------------- the channel


def receive(route: Route, request: WebhookRequest, ctx: ReceiveContext) -> Answer:
    """Basic auth first; then archived (the request and its MIME) and queued."""
    from intake.reception import posted_email

    contract.within(request, ctx.max_body_bytes)
    contract.provider_signed(lambda: verify(request, ctx.secrets.get(USER), ctx.secrets.get(PASSWORD)))
    return posted_email(PROVIDER, request, raw_mime(request), ctx)


def replay(request: WebhookRequest, ctx: ReplayContext) -> Made:
    from intake.reception import replayed_email

    return replayed_email(PROVIDER, request, raw_mime, ctx)


def sign(sample: Sample, ctx: SignContext) -> Sample:
    """The basic auth SendGrid sends when its Parse URL carries `user:password@`."""
    user = contract.needs_secret(ctx.secrets, USER, "SendGrid")
    password = contract.needs_secret(ctx.secrets, PASSWORD, "SendGrid")
    return Sample(sample.path, {**sample.headers, "authorization": signatures.basic_auth(user, password)}, sample.body)


def operation(route: Route) -> dict[str, Any]:
    from intake import openapi_parts as api

    return api.webhook(
        route.operation,
        "An email from SendGrid Inbound Parse (raw or parsed mode)",
        "HTTP basic auth; the MIME (as posted, or rebuilt in parsed mode) is archived and queued.",
        {
            "200": api.json_response("Archived and queued.", api.REF + "Receipt"),
            **api.problems(
                FieldInvalidError, WebhookSignatureInvalidError, PayloadTooLargeError, UnsupportedMediaTypeError
            ),
        },
        security=[{"sendgridBasic": []}],
        requestBody=api.provider_payload("SendGrid Inbound Parse's fields (provider payload).", "multipart/form-data"),
    )


CHANNEL = posted_mime.channel(
    PROVIDER,
    title="SendGrid Inbound Parse",
    route=Route(
        "POST",
        PATH,
        "receiveSendGridEmail",
        "SendGrid Inbound Parse cannot sign SigV4; the receiver checks HTTP basic auth against the "
        "SENDGRID_INBOUND_USER/PASSWORD secrets and stores nothing when it fails.",
    ),
    secrets=[USER, PASSWORD],
    setup_output="SendGridInboundUrl",
    receive=receive,
    operation=operation,
    sign=sign,
    replay=replay,
)
