"""An email that a provider posts to our webhook (SendGrid, Mailgun): the channel both declare (`channel`), and,
when it comes as form fields (their parsed modes), the message rebuilt as one RFC 5322 message with the stdlib
`email` package (UTF-8 throughout).

Both providers post the same pieces under their own names: the original headers, the text and HTML
bodies, numbered file parts, a declared attachment count and a JSON map of inline images' Content-IDs;
SendGrid adds the bodies' charsets and a description of each attachment. `Layout` names them, one per
provider; `rebuilt` is the one way they become a message. How the original headers were posted (a
header block, a JSON list of pairs) differs too much to be a name: the adapter reads them and hands
them over as (name, value) pairs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from intake.channels import formdata, jsonbody
from intake.channels.contract import Answer, Channel, Made, ReceiveContext, ReplayContext, Route, Sample, SignContext
from intake.mail_policy import DEFAULT
from intake.model import WebhookRequest

# Headers that describe the original body's structure, which the rebuilt message replaces
_STRUCTURAL = frozenset(
    {"content-type", "content-transfer-encoding", "content-disposition", "content-id", "content-length", "mime-version"}
)
# Attachments noted missing at most: more than a message either provider takes (30 MB) holds; a larger count is no count
_MAX_ATTACHMENTS = 1000


@dataclass(frozen=True)
class Layout:
    """Where one provider posts the pieces of a parsed email."""

    fallback_headers: tuple[tuple[str, str], ...]  # (header, field): taken from the field when the headers lack it
    text: str
    html: str
    attachment_prefix: str  # file parts are `<prefix><n>`, n from 1
    attachment_count: str
    content_ids: str  # JSON object: Content-ID → file part's name
    charsets: str | None = None  # JSON object: field → the charset its text is in
    attachment_info: str | None = None  # JSON object: file part's name → {filename, type, content-id}


def rebuilt(parts: list[formdata.Part], layout: Layout, headers: Iterable[tuple[str, str]]) -> EmailMessage:
    """The message the fields describe: the original headers but the structural ones, then the posted fields
    for headers they lack, the bodies (text, HTML or both as alternatives), the files in their posted order,
    and an `X-Intake-Missing-Attachment` header for each declared attachment that did not arrive."""
    charsets = json_object(parts, layout.charsets)
    info = json_object(parts, layout.attachment_info)
    content_ids = {str(field): str(cid) for cid, field in json_object(parts, layout.content_ids).items()}

    def text(name: str) -> str | None:
        part = formdata.first(parts, name)
        return None if part is None else formdata.text(part.content, charsets.get(name), part.charset)

    message = EmailMessage(policy=DEFAULT)
    for name, value in headers:
        if name.lower() not in _STRUCTURAL:
            formdata.set_header(message, name, value)
    for name, field in layout.fallback_headers:
        posted = text(field)
        if name not in message and posted and posted.strip():
            formdata.set_header(message, name, posted.strip())

    body, html = text(layout.text), text(layout.html)
    if body is not None or html is None:
        message.set_content(body or "", charset="utf-8")
        if html is not None:
            message.add_alternative(html, subtype="html", charset="utf-8")
    else:
        message.set_content(html, subtype="html", charset="utf-8")

    numbered = re.compile(re.escape(layout.attachment_prefix) + r"(\d+)")
    files = sorted(
        (p for p in parts if p.filename is not None),
        key=lambda part: (int(found.group(1)) if (found := numbered.fullmatch(part.name)) else 1 << 30, part.name),
    )
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
    _note_missing(message, layout, text(layout.attachment_count), {p.name for p in files}, info)
    return message


def json_object(parts: list[formdata.Part], name: str | None) -> dict[str, Any]:
    """A JSON object field; absent or unreadable is taken as empty."""
    part = formdata.first(parts, name) if name is not None else None
    if part is None:
        return {}
    try:
        value = jsonbody.loads(formdata.text(part.content, part.charset))
    except (ValueError, RecursionError):  # JSONDecodeError, too long an int
        return {}
    return value if isinstance(value, dict) else {}


def _note_missing(
    message: EmailMessage, layout: Layout, count: str | None, posted: set[str], info: dict[str, Any]
) -> None:
    """A declared attachment that did not arrive is named, never silently lost: declared by the count or,
    where the provider describes its attachments, by a description."""
    try:
        declared = int(count.strip()) if count else 0
    except ValueError:
        declared = 0
    numbered = {f"{layout.attachment_prefix}{n}" for n in range(1, min(declared, _MAX_ATTACHMENTS) + 1)}
    for name in sorted((numbered | set(info)) - posted, key=lambda n: (len(n), n))[:_MAX_ATTACHMENTS]:
        described = info.get(name)
        filename = described.get("filename") if isinstance(described, dict) else None
        formdata.set_header(message, "X-Intake-Missing-Attachment", f"{name} ({filename})" if filename else name)


# ------------------------------------------------------------------------------------------- the channel


def channel(
    provider: str,
    *,
    title: str,
    route: Route,
    secrets: list[str],
    setup_output: str,
    receive: Callable[[Route, WebhookRequest, ReceiveContext], Answer],
    operation: Callable[[Route], dict[str, Any]],
    sign: Callable[[Sample, SignContext], Sample],
    replay: Callable[[WebhookRequest, ReplayContext], Made],
) -> Channel:
    """An email provider's webhook as a channel: its one route feeds the `email:` section (whose model
    `intake.channels.email` declares) with conversations of the email kind, the receiver checks it with `secrets`,
    its samples are the email ones, and an operator points the provider at it instead of SES receiving."""
    return Channel(
        name=provider,
        title=title,
        section="email",
        section_type=None,  # the email channel's (intake.channels.email)
        kinds={"email": "email"},
        routes=(route,),
        receive=receive,
        operation=operation,
        sign=sign,
        replay=replay,
        webhook_secrets=lambda email: list(secrets),
        setup=lambda email: [
            (setup_output, route.path, f"Inbound email through {provider}, if you use it instead of SES receiving")
        ],
        samples="email",
    )
