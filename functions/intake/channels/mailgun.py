"""Mailgun routes: an email forwarded by a route's `forward("https://…/webhooks/email/mailgun")` action.

fields → verify → raw_mime. Mailgun signs every POST with `signature` = hex HMAC-SHA256(webhook signing
key, timestamp + token); the receiver refuses a timestamp more than 15 minutes from its clock and a
token it has seen before (`verify` returns it to be claimed once), then hands the raw MIME to the same
email path as Amazon SES.

- A route whose URL ends in `mime` gets `body-mime`: the message as received, used byte for byte.
- Otherwise Mailgun posts the message parsed (transcoded to UTF-8): `message-headers` (JSON list of
  [name, value]), `body-plain`, `body-html`, `attachment-count` and file parts `attachment-1…N`,
  `content-id-map` (JSON: cid → field). The message is rebuilt from those with the stdlib `email`
  package. Urlencoded without attachments, multipart/form-data with them.

Mailgun retries anything but 200 and 406 for 8 hours: what can never be accepted (no sender at all)
raises `PermanentlyUnacceptableError`, which the receiver answers with 406 so that it stops.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from email.message import Message
from email.parser import BytesParser
from typing import Any
from urllib.parse import unquote_to_bytes, urlencode

from intake.channels import contract, formdata, jsonbody, posted_mime, signatures
from intake.channels.contract import Answer, Made, ReceiveContext, ReplayContext, Route, Sample, SignContext
from intake.errors import (
    FieldInvalidError,
    PayloadTooLargeError,
    PermanentlyUnacceptableError,
    SignatureInvalidError,
    UnsupportedMediaTypeError,
    WebhookSignatureInvalidError,
)
from intake.mail_policy import DEFAULT
from intake.model import WebhookRequest

PROVIDER = "mailgun"
PATH = "/webhooks/email/mailgun"
SIGNING_KEY = "MAILGUN_SIGNING_KEY"  # the secret's name: INTAKE_MAILGUN_SIGNING_KEY locally
TOLERANCE_S = 15 * 60
FORM = "application/x-www-form-urlencoded"
FORM_DATA = "multipart/form-data"
MEDIA_TYPES = [FORM, FORM_DATA]

_LAYOUT = posted_mime.Layout(
    # `recipient` (the envelope's) is the To of last resort: a message sent to us Bcc names none
    fallback_headers=(("From", "from"), ("To", "To"), ("Subject", "subject"), ("To", "recipient")),
    text="body-plain",
    html="body-html",
    attachment_prefix="attachment-",
    attachment_count="attachment-count",
    content_ids="content-id-map",
)
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def verify(fields: Mapping[str, str], key: str | None, now: float) -> str:
    """Raise `SignatureInvalidError` unless Mailgun signed `timestamp` + `token` within 15 minutes of `now`.
    Returns the token, which the caller accepts once (a replayed request repeats it)."""
    if not key:
        raise SignatureInvalidError("no Mailgun signing key is configured")
    token = fields.get("token", "").strip()
    signatures.verify_mailgun(key, fields.get("timestamp"), token, fields.get("signature"), now, TOLERANCE_S)
    return token


def fields(request: WebhookRequest) -> dict[str, str]:
    """The posted text fields (files left out); of a repeated name, the first value."""
    found: dict[str, str] = {}
    for part in _parts(request):
        if part.filename is None:
            found.setdefault(part.name, formdata.text(part.content, part.charset))
    return found


def raw_mime(request: WebhookRequest) -> bytes:
    """The email Mailgun posted, as MIME bytes: `body-mime` as received, else rebuilt from the parsed fields."""
    parts = _parts(request)
    body_mime = formdata.first(parts, "body-mime")
    if body_mime is not None and body_mime.content.strip():
        headers = BytesParser(policy=DEFAULT).parsebytes(body_mime.content, headersonly=True)
        if not _has_sender(headers, parts):
            raise PermanentlyUnacceptableError("the message has no sender: no From header, no sender field")
        return body_mime.content
    return _rebuilt(parts)


# ------------------------------------------------------------------------------------ parsed mode


def _rebuilt(parts: list[formdata.Part]) -> bytes:
    posted = formdata.first(parts, "message-headers")
    headers = _message_headers(formdata.text(posted.content, posted.charset) if posted is not None else None)
    message = posted_mime.rebuilt(parts, _LAYOUT, ((name, _FOLD.sub("", value)) for name, value in headers))
    if not _has_sender(message, parts):
        raise PermanentlyUnacceptableError("the message has no sender: no From header, no from or sender field")
    return message.as_bytes()


def _message_headers(raw: str | None) -> list[tuple[str, str]]:
    """`message-headers`: a JSON list of [name, value]; what is not such a pair is left out."""
    try:
        listed = jsonbody.loads(raw) if raw else []
    except (ValueError, RecursionError):  # JSONDecodeError, too long an int
        return []
    if not isinstance(listed, list):
        return []
    return [
        (pair[0], pair[1])
        for pair in listed
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], str)
    ]


def _has_sender(headers: Message, parts: list[formdata.Part]) -> bool:
    if str(headers.get("From") or "").strip():
        return True
    return any(part.content.strip() for part in parts if part.name in ("from", "sender") and part.filename is None)


# ----------------------------------------------------------------- urlencoded and multipart bodies


def _parts(request: WebhookRequest) -> list[formdata.Part]:
    if request.media_type == FORM:
        return _urlencoded(request.body)
    if request.media_type == FORM_DATA:
        return formdata.parts(request)
    raise UnsupportedMediaTypeError("content type", request.media_type, MEDIA_TYPES)


def _urlencoded(body: bytes) -> list[formdata.Part]:
    """Name/value pairs with the values' bytes as sent: `body-mime` may hold 8-bit text of any charset."""
    parts = []
    for pair in body.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        decoded = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", errors="replace")
        parts.append(formdata.Part(decoded, None, "text/plain", None, unquote_to_bytes(value.replace(b"+", b" "))))
    return parts


# ------------------------------------------------------------------------------------------- the channel


def receive(route: Route, request: WebhookRequest, ctx: ReceiveContext) -> Answer:
    """HMAC over timestamp + token, within 15 minutes, each token accepted once; then archived and queued."""
    from intake.reception import posted_email

    contract.within(request, ctx.max_body_bytes)
    posted = fields(request)
    token = ""

    def verified() -> None:
        nonlocal token
        token = verify(posted, ctx.secrets.get(SIGNING_KEY), ctx.received_at.timestamp())

    contract.provider_signed(verified)
    if not ctx.claim_token(PROVIDER, token):
        raise WebhookSignatureInvalidError("this Mailgun token was already used: a replayed request")
    return posted_email(PROVIDER, request, raw_mime(request), ctx)


def replay(request: WebhookRequest, ctx: ReplayContext) -> Made:
    from intake.reception import replayed_email

    return replayed_email(PROVIDER, request, raw_mime, ctx)


def sign(sample: Sample, ctx: SignContext) -> Sample:
    """The `timestamp`, `token` and `signature` fields Mailgun adds to what it posts (urlencoded or multipart)."""
    key = contract.needs_secret(ctx.secrets, SIGNING_KEY, "Mailgun")
    timestamp, token = str(int(ctx.now)), uuid.uuid4().hex
    signed = {"timestamp": timestamp, "token": token, "signature": signatures.mailgun_signature(key, timestamp, token)}
    content_type = sample.headers.get("content-type", "")
    if content_type.startswith(FORM_DATA):
        boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
        added = b"".join(
            b"--" + boundary + f'\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in signed.items()
        )
        return Sample(sample.path, sample.headers, added + sample.body)
    separator = b"&" if sample.body else b""
    return Sample(sample.path, sample.headers, sample.body + separator + urlencode(signed).encode())


def operation(route: Route) -> dict[str, Any]:
    from intake import openapi_parts as api

    return api.webhook(
        route.operation,
        "An email from a Mailgun route (forward, `body-mime` or parsed fields)",
        "The body's `timestamp`, `token` and `signature` (hex HMAC-SHA256 with the MAILGUN_SIGNING_KEY secret over "
        "timestamp + token) are checked: within 15 minutes, each token once. A message that can never be accepted "
        "(no sender) is answered 406, which tells Mailgun not to retry.",
        {
            "200": api.json_response("Archived and queued.", api.REF + "Receipt"),
            **api.problems(
                FieldInvalidError,
                WebhookSignatureInvalidError,
                PermanentlyUnacceptableError,
                PayloadTooLargeError,
                UnsupportedMediaTypeError,
            ),
        },
        requestBody=api.provider_payload(
            "Mailgun's route fields (provider payload).", "application/x-www-form-urlencoded", "multipart/form-data"
        ),
    )


CHANNEL = posted_mime.channel(
    PROVIDER,
    title="Mailgun routes",
    route=Route(
        "POST",
        PATH,
        "receiveMailgunEmail",
        "Mailgun cannot sign SigV4; the receiver checks its HMAC signature (timestamp within 15 minutes, each "
        "token once) and stores nothing when it fails.",
    ),
    secrets=[SIGNING_KEY],
    setup_output="MailgunRouteUrl",
    receive=receive,
    operation=operation,
    sign=sign,
    replay=replay,
)
