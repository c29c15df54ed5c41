"""Email: a raw message in the archive becomes a message on the right ticket.

Threading: the Message-IDs it replies to (In-Reply-To, References), then a `[#<reference>]` token in
the subject, else a new conversation. Auto-replies, bounces and list mail join a thread they belong
to but never open a ticket. Every Message-ID seen is recorded against its ticket.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email import policy as email_policy
from email.parser import BytesHeaderParser
from urllib.parse import unquote_plus

from intake.channels import email_mime
from intake.config import Policy
from intake.inbox import attachment_of
from intake.ingest import IdFactory, IngestResult, ingest
from intake.model import Attachment, Channel, EmailArrived, InboundMessage, Sender, Ticket
from intake.store import Store

REFERENCE_TOKEN = re.compile(r"\[#([0-9A-HJKMNP-TV-Z]{8})\]", re.IGNORECASE)


class EmailUnroutableError(Exception):
    """No team takes mail for any of its recipients and the policy names no default team."""


@dataclass(frozen=True)
class EmailStores:
    """What the email path reads and writes besides the table: the archive."""

    read: Callable[[str], bytes]
    put_attachment: Callable[[Attachment, bytes], None]


def ingest_email(
    store: Store, stores: EmailStores, arrived: EmailArrived, policy: Policy, new_id: IdFactory
) -> IngestResult | None:
    """None: an auto-reply, bounce or list mail that belongs to no thread (archived, nothing else)."""
    settings = policy.email
    limit = settings.max_attachment_bytes if settings else 10 * 1024 * 1024
    raw = stores.read(arrived.raw_archive_key)
    parsed = email_mime.parse(raw, max_attachment_bytes=limit)
    verdicts = {**ses_verdicts(raw), **arrived.verdicts}
    existing = thread_of(store, parsed)
    if parsed.auto is not None and (existing is None or not existing.status.is_open):
        return None
    message_id = parsed.message_id or "sha256-" + hashlib.sha256(arrived.raw_archive_key.encode()).hexdigest()
    attachments = _store_parts(stores, arrived, parsed.attachments)
    message = InboundMessage(
        channel=Channel.EMAIL,
        provider="email",  # one Message-ID is one message, whichever service delivered it
        provider_message_id=message_id[:200],
        receipt_id=arrived.receipt_id,
        received_at=arrived.received_at,
        team=existing.team if existing else team_for(policy, parsed, arrived),
        sender=Sender(name=parsed.from_name, email=parsed.from_address),
        subject=parsed.subject or None,
        text=(parsed.text or parsed.full_text)[:100_000],
        attachments=attachments,
        raw_archive_key=arrived.raw_archive_key,
        thread_key=existing.thread_key if existing else f"email#{message_id}",
        metadata={
            "message_id": parsed.message_id,
            "in_reply_to": list(parsed.in_reply_to),
            "references": list(parsed.references),
            "to": list(parsed.to),
            "cc": list(parsed.cc),
            "full_text": parsed.full_text[:100_000] if parsed.full_text != parsed.text else None,
            "auto": parsed.auto,
            "dropped": [{"filename": name, "reason": why} for name, why in parsed.dropped],
            "verdicts": verdicts,
            "transport": arrived.provider,
        },
    )
    result = ingest(store, message, new_id)
    store.record_message_ids([i for i in (parsed.message_id,) if i], result.ticket_id)
    return result


_VERDICT_HEADERS = {"x-ses-spam-verdict": "spam", "x-ses-virus-verdict": "virus"}
_AUTH_RESULT = re.compile(r"\b(spf|dkim|dmarc)=(\w+)", re.IGNORECASE)


def ses_verdicts(raw: bytes) -> dict[str, str]:
    """What SES receiving wrote into the message's headers: spam and virus scans, SPF, DKIM, DMARC."""
    headers = BytesHeaderParser(policy=email_policy.compat32).parsebytes(raw)
    found = {name: str(headers[header]).strip().upper() for header, name in _VERDICT_HEADERS.items() if headers[header]}
    for results in headers.get_all("Authentication-Results") or []:
        if "amazonses.com" in str(results):
            found |= {method.lower(): verdict.upper() for method, verdict in _AUTH_RESULT.findall(str(results))}
    return found


def thread_of(store: Store, parsed: email_mime.ParsedEmail) -> Ticket | None:
    """The ticket this email continues: by the Message-IDs it answers, else by a reference token."""
    for message_id in (*parsed.in_reply_to, *reversed(parsed.references)):
        ticket_id = store.message_ticket(message_id)
        if ticket_id is not None:
            return store.ticket(ticket_id)
    for reference in REFERENCE_TOKEN.findall(parsed.subject):
        ticket = store.ticket_by_reference(reference.upper())
        if ticket is not None:
            return ticket
    return None


def team_for(policy: Policy, parsed: email_mime.ParsedEmail, arrived: EmailArrived) -> str:
    settings = policy.email
    addresses = settings.addresses if settings else {}
    by_team_address = {team.email.lower(): name for name, team in policy.teams.items() if team.email}
    for recipient in (*arrived.recipients, *parsed.to, *parsed.cc):
        team = addresses.get(recipient.lower()) or by_team_address.get(recipient.lower())
        if team is not None:
            return team
    if settings is not None and settings.default_team is not None:
        return settings.default_team
    raise EmailUnroutableError(arrived.receipt_id)


def _store_parts(
    stores: EmailStores, arrived: EmailArrived, parts: tuple[email_mime.EmailPart, ...]
) -> tuple[Attachment, ...]:
    stored = []
    for n, part in enumerate(parts, start=1):
        name = part.filename or f"part-{n}"
        attachment = attachment_of(
            arrived.receipt_id,
            arrived.received_at,
            n,
            name,
            part.content_type,
            part.content,
            content_id=part.content_id,
        )
        stores.put_attachment(attachment, part.content)
        stored.append(attachment)
    return tuple(stored)


def arrivals(notification: str, new_id: IdFactory) -> list[EmailArrived]:
    """The messages an S3 event notification announces (SES receiving wrote them); S3's test event: none."""
    document = json.loads(notification)
    found = []
    for record in document.get("Records", []) if isinstance(document, dict) else []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        key = unquote_plus(record["s3"]["object"]["key"])
        when = datetime.fromisoformat(str(record["eventTime"]).replace("Z", "+00:00"))
        found.append(EmailArrived(provider="ses", receipt_id=new_id(), received_at=when, raw_archive_key=key))
    return found
