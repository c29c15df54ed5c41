"""Reconciliation: requests the archive holds that never became a message are queued again.

The receiver archives a request, then queues what it makes, and answers 2xx only when both are done. A message can
still go missing between the archive and a ticket: a crash after the archive whose provider does not retry (a site's
backend), a queued message that expired unread, a dead letter that was never replayed in its 14 days. `reconcile`
reads the raw archive (`raw/<date>/<provider>/<receipt>`) since a given time, makes each request again into what the
receiver made of it (its channel's `replay`, without the checks: what is archived passed them) and queues what is not
yet a message. "Not yet a message" is asked of the table's dedupe records (`SEEN#<provider>#<id>`), and those same
records make a wrong answer harmless: ingest drops a re-queued message that is already on a ticket. They are kept
8 days, so the window reaches back 7 days at most. Items are queued as the receiver queues them: within 5 minutes of
a send that did reach the queue, its deduplication drops them, and that first one is on its way. Reactions are not
queued again (an old one would undo a newer one); delivery statuses and honeypot spam never were messages.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ulid import ULID

from intake.channels import email_mime, registry
from intake.channels.contract import ReplayContext
from intake.config import Policy
from intake.emails import provider_id
from intake.inbox import Inbox, QueuedItem
from intake.model import Attachment, CallEvent, EmailArrived, InboundMessage, WebhookRequest
from intake.observability import logger
from intake.reception import arrived_email
from intake.resources import ARCHIVE
from intake.store import Store

MAX_WINDOW = timedelta(days=7)  # the dedupe records (SEEN#...) live 8 days: older messages could double


class WindowTooLongError(Exception):
    def __init__(self, since: datetime) -> None:
        super().__init__(
            f"{since.isoformat()} is more than {MAX_WINDOW.days} days ago: the dedupe records that keep a message "
            "queued again from doubling are kept 8 days"
        )


@dataclass(frozen=True)
class Reconciled:
    found: int  # archived requests received in the window
    requeued: int  # messages, call events and emails queued again: not (or not yet) a ticket's
    unreadable: tuple[str, ...]  # archive keys of requests that cannot be made into messages again


@dataclass(frozen=True)
class _Archived:
    """One archived request as the receiver made it: when, the items it queued, the files it stored."""

    received_at: datetime
    items: list[QueuedItem]
    files: list[tuple[Attachment, bytes]] = field(default_factory=list)
    mime: bytes | None = None  # an email's


def reconcile(inbox: Inbox, store: Store, policy: Policy, *, since: datetime, now: datetime) -> Reconciled:
    """Queue again what the requests archived from `since` to `now` make and the table does not know."""
    if now - since > MAX_WINDOW:
        raise WindowTooLongError(since)
    found, requeued, unreadable = 0, 0, []
    for key in _requests(inbox, since, now):
        try:
            archived = _read(inbox, policy, key)
        except Exception:  # its form left the policy, its body never parsed (a 400 then): kept in the archive
            logger.warning("archived request cannot be read again", extra={"key": key})
            unreadable.append(key)
            continue
        if not since <= archived.received_at <= now:
            continue
        found += 1
        lost = [item for item in archived.items if not _known(store, item, archived.mime)]
        if lost:
            for attachment, content in archived.files:
                inbox.store_attachment(attachment, content)
            inbox.enqueue_many(lost)
            requeued += len(lost)
            logger.info("archived request queued again", extra={"key": key, "items": len(lost)})
    return Reconciled(found, requeued, tuple(unreadable))


def _requests(inbox: Inbox, since: datetime, now: datetime) -> list[str]:
    """The archive keys of the requests received on the days from `since` to `now` (UTC), each request once: a
    SendGrid or Mailgun request's envelope, not the `.eml` beside it. SES's own layout (`raw/ses/<id>`) is not
    listed: S3 tells the email queue of each message it writes."""
    keys: list[str] = []
    day = since.date()
    while day <= now.date():
        keys += inbox.archive.keys(f"{ARCHIVE.raw_prefix}{day:%Y/%m/%d}/")
        day += timedelta(days=1)
    envelopes = set(keys)
    return [k for k in keys if k.count("/") == 5 and not (k.endswith(".eml") and k.removesuffix(".eml") in envelopes)]


def _read(inbox: Inbox, policy: Policy, key: str) -> _Archived:
    provider, name = key.split("/")[-2:]
    if name.endswith(".eml"):  # SES receiving or SMTP on `intake serve`: the MIME alone, its receipt a ULID
        receipt_id = name.removesuffix(".eml")
        mime, received_at = inbox.read(key), ULID.from_str(receipt_id).datetime
        return _Archived(
            received_at, [arrived_email(provider, mime, receipt_id=receipt_id, received_at=received_at)], mime=mime
        )
    envelope = json.loads(inbox.read(key))
    receipt_id, received_at = envelope["receipt_id"], datetime.fromisoformat(envelope["received_at"])
    request = WebhookRequest(
        method=envelope["method"],
        path=envelope["path"],
        query=envelope["query"],
        headers=envelope["headers"],
        body=base64.b64decode(envelope["body_base64"]),
    )
    try:
        channel = registry.channel(provider)
    except LookupError:
        raise ValueError(f"no receiver for provider {provider!r}") from None
    context = ReplayContext(policy, inbox, receipt_id, received_at, key)
    made = channel.replay(request, context)
    posted = inbox.read(key + ".eml") if any(isinstance(item, EmailArrived) for item in made.items) else None
    return _Archived(received_at, made.items, made.files, mime=posted)


def _known(store: Store, item: QueuedItem, mime: bytes | None) -> bool:
    """Whether the table has it already: a message or a call event by its provider's id; an email by its
    Message-ID (else its archive key's hash, as `intake.emails` records it) or its quarantine."""
    if isinstance(item, InboundMessage):
        return store.seen(item.provider, item.provider_message_id) is not None
    if isinstance(item, CallEvent):
        return store.seen(item.provider, item.event_id) is not None
    if isinstance(item, EmailArrived):
        if store.quarantined(item.receipt_id) is not None:
            return True
        return store.seen("email", _email_id(mime or b"", item.raw_archive_key)) is not None
    return True  # a reaction: never queued again


def _email_id(mime: bytes, key: str) -> str:
    return provider_id(email_mime.parse(mime).message_id, key)
