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

import json
import re
from email.message import EmailMessage
from email.parser import Parser
from typing import Any

from intake.channels import contract, formdata, jsonbody, signatures
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

# Headers that describe the original body's structure, which the rebuilt message replaces
_STRUCTURAL = frozenset(
    {"content-type", "content-transfer-encoding", "content-disposition", "content-id", "content-length", "mime-version"}
)
_ATTACHMENT_FIELD = re.compile(r"attachment(\d+)")
# Attachments noted missing at most: more than a message SendGrid takes (30 MB) holds; a larger count is no count
_MAX_ATTACHMENTS = 1000


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
    charsets = _json_object(parts, "charsets")
    info = _json_object(parts, "attachment-info")
    content_ids = {str(field): str(cid) for cid, field in _json_object(parts, "content-ids").items()}

    def text(name: str) -> str | None:
        part = formdata.first(parts, name)
        return None if part is None else formdata.text(part.content, charsets.get(name), part.charset)

    message = EmailMessage(policy=DEFAULT)
    original = Parser(policy=DEFAULT).parsestr(
        formdata.text(headers.content, charsets.get("headers"), headers.charset).strip() + "\n\n", headersonly=True
    )
    for name, value in original.items():
        if name.lower() not in _STRUCTURAL:
            formdata.set_header(message, name, value)
    for name, field in (("From", "from"), ("To", "to"), ("Cc", "cc"), ("Subject", "subject")):
        posted = text(field)
        if name not in message and posted and posted.strip():
            formdata.set_header(message, name, posted.strip())

    body, html = text("text"), text("html")
    if body is not None or html is None:
        message.set_content(body or "", charset="utf-8")
        if html is not None:
            message.add_alternative(html, subtype="html", charset="utf-8")
    else:
        message.set_content(html, subtype="html", charset="utf-8")

    files = sorted((p for p in parts if p.filename is not None), key=_attachment_order)
    for part in files:
        described = info.get(part.name)
        details: dict[str, Any] = described if isinstance(described, dict) else {}
        filename = str(details.get("filename") or details.get("name") or part.filename or part.name)
        maintype, subtype = formdata.media_type(str(details.get("type") or part.content_type))
        cid = details.get("content-id") or content_ids.get(part.name)
        message.add_attachment(
            part.content,
            maintype=maintype,
            subtype=subtype,
            filename=filename,
            disposition="inline" if cid else "attachment",
            cid=f"<{str(cid).strip('<>')}>" if cid else None,
        )
    _note_missing(message, parts, {p.name for p in files}, info)
    return message.as_bytes()


def _note_missing(message: EmailMessage, parts: list[formdata.Part], posted: set[str], info: dict[str, Any]) -> None:
    """A declared attachment that did not arrive is named in `X-Intake-Missing-Attachment`, never silently lost."""
    count = formdata.first(parts, "attachments")
    try:
        declared = int(count.content.strip()) if count is not None else 0
    except ValueError:
        declared = 0
    expected = {f"attachment{n}" for n in range(1, min(declared, _MAX_ATTACHMENTS) + 1)} | set(info)
    for name in sorted(expected - posted, key=lambda n: (len(n), n))[:_MAX_ATTACHMENTS]:
        described = info.get(name)
        filename = described.get("filename") if isinstance(described, dict) else None
        formdata.set_header(message, "X-Intake-Missing-Attachment", f"{name} ({filename})" if filename else name)


def _attachment_order(part: formdata.Part) -> tuple[int, str]:
    numbered = _ATTACHMENT_FIELD.fullmatch(part.name)
    return (int(numbered.group(1)) if numbered else 1 << 30, part.name)


def _json_object(parts: list[formdata.Part], name: str) -> dict[str, Any]:
    """A JSON object field (`charsets`, `attachment-info`, `content-ids`); unreadable is taken as empty."""
    part = formdata.first(parts, name)
    if part is None:
        return {}
    try:
        value = jsonbody.loads(formdata.text(part.content, part.charset))
    except (ValueError, RecursionError):  # JSONDecodeError, too long an int
        return {}
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------------------- multipart/form-data


# ------------------------------------------------------------------------------------------- the channel


def receive(route: Route, request: WebhookRequest, ctx: ReceiveContext) -> Answer:
    """Basic auth first; the request is archived as posted (parsed mode's spam score, SPF and DKIM fields are not
    all in the rebuilt MIME), then the MIME beside it, then queued."""
    from intake.inbox import raw_key
    from intake.reception import receive_email

    contract.within(request, ctx.max_body_bytes)
    contract.provider_signed(lambda: verify(request, ctx.secrets.get(USER), ctx.secrets.get(PASSWORD)))
    raw = raw_mime(request)
    ctx.inbox.archive_request(
        raw_key(PROVIDER, ctx.receipt_id, ctx.received_at), ctx.receipt_id, ctx.received_at, request
    )
    receive_email(PROVIDER, raw, inbox=ctx.inbox, received_at=ctx.received_at, receipt_id=ctx.receipt_id)
    return Answer(200, "application/json", json.dumps({"receipt": ctx.receipt_id}), {"EmailReceived": 1})


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


CHANNEL = contract.Channel(
    name=PROVIDER,
    title="SendGrid Inbound Parse",
    section="email",
    section_type=None,  # the email channel's (intake.channels.email)
    kinds={"email": "email"},
    routes=(
        Route(
            "POST",
            PATH,
            "receiveSendGridEmail",
            "SendGrid Inbound Parse cannot sign SigV4; the receiver checks HTTP basic auth against the "
            "SENDGRID_INBOUND_USER/PASSWORD secrets and stores nothing when it fails.",
        ),
    ),
    receive=receive,
    operation=operation,
    sign=sign,
    replay=replay,
    webhook_secrets=lambda email: [USER, PASSWORD],
    setup=lambda email: [
        ("SendGridInboundUrl", PATH, "Inbound email through sendgrid, if you use it instead of SES receiving")
    ],
    samples="email",
)
