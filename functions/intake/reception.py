"""An email's arrival, whichever way it came (SES, SMTP, SendGrid, Mailgun): archived as `.eml`, then queued.

What it queues (`arrived_email`) is computed apart from the storing, so that `intake.reconciliation` can compute it
again from the archive. Each webhook channel's own reception is its module's `receive` (`intake.channels.contract`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from intake.archive import ArchiveKeyError
from intake.channels.contract import Answer, Made, ReceiveContext, ReplayContext
from intake.inbox import Inbox, raw_key
from intake.model import EmailArrived, WebhookRequest

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(r"<([^<>\s]{1,250})>")
_HEAD_BYTES = 256 * 1024


def conversation(raw: bytes) -> str | None:
    """The Message-ID that started the thread, from the headers alone: the first of References (which replies
    keep), else In-Reply-To, else the message's own. None when it names none. Nothing here can fail on data."""
    end = _HEAD_END.search(raw, 0, _HEAD_BYTES)
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[: end.start() if end else _HEAD_BYTES])
    for name in ("References", "In-Reply-To", "Message-ID"):
        if match := _MESSAGE_ID.search(str(headers.get(name, ""))):
            return match.group(1)
    return None


def receive_email(
    provider: str,
    raw: bytes,
    *,
    inbox: Inbox,
    received_at: datetime,
    receipt_id: str,
    recipients: tuple[str, ...] = (),
    verdicts: dict[str, str] | None = None,
) -> EmailArrived:
    """Store the MIME where SES's receipt rule would (`raw/<date>/<provider>/<receipt>.eml`), then queue it."""
    arrived = arrived_email(
        provider, raw, receipt_id=receipt_id, received_at=received_at, recipients=recipients, verdicts=verdicts
    )
    inbox.archive_email(arrived.raw_archive_key, raw)
    inbox.enqueue(arrived)
    return arrived


def arrived_email(
    provider: str,
    raw: bytes,
    *,
    receipt_id: str,
    received_at: datetime,
    recipients: tuple[str, ...] = (),
    verdicts: dict[str, str] | None = None,
) -> EmailArrived:
    """What queues an email archived as `raw/<date>/<provider>/<receipt>.eml`."""
    return EmailArrived(
        provider=provider,
        receipt_id=receipt_id,
        received_at=received_at,
        raw_archive_key=raw_key(provider, receipt_id, received_at) + ".eml",
        recipients=recipients,
        verdicts=verdicts or {},
        conversation=conversation(raw),
    )


def posted_email(provider: str, request: WebhookRequest, raw: bytes, ctx: ReceiveContext) -> Answer:
    """An email a provider posted (SendGrid, Mailgun), once verified: the request archived as posted (parsed mode's
    spam score, SPF and DKIM fields are not all in the rebuilt MIME), then the MIME beside it, then queued."""
    ctx.inbox.archive_request(
        raw_key(provider, ctx.receipt_id, ctx.received_at), ctx.receipt_id, ctx.received_at, request
    )
    receive_email(provider, raw, inbox=ctx.inbox, received_at=ctx.received_at, receipt_id=ctx.receipt_id)
    return Answer(200, "application/json", json.dumps({"receipt": ctx.receipt_id}), {"EmailReceived": 1})


def replayed_email(
    provider: str, request: WebhookRequest, rebuild: Callable[[WebhookRequest], bytes], ctx: ReplayContext
) -> Made:
    """An email posted by a provider (SendGrid, Mailgun), made again from the archive: the MIME beside its request,
    or rebuilt from the request when the receiver stopped between the two."""
    try:
        mime = ctx.inbox.read(ctx.archive_key + ".eml")
    except ArchiveKeyError:
        mime = rebuild(request)
        ctx.inbox.archive_email(ctx.archive_key + ".eml", mime)
    return Made([arrived_email(provider, mime, receipt_id=ctx.receipt_id, received_at=ctx.received_at)])
