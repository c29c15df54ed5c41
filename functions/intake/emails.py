"""Email: a raw message in the archive becomes a message on the right ticket.

Threading: the Message-IDs it replies to (In-Reply-To, References), then a `[#<reference>]` token in
the subject, else a new conversation. Auto-replies, bounces, list mail and our own mail echoing back
join a thread they belong to but never open a ticket. Every Message-ID seen or sent is recorded
against its ticket. Mail that SES judged spam or a virus, or that fails a DMARC `reject` policy, is
quarantined: archived and listed, a ticket only once released. A new ticket gets an acknowledgment.
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
from email.utils import formataddr
from urllib.parse import unquote_plus

from intake.channels import email_mime
from intake.config import Policy
from intake.errors import QuarantineNotFoundError, QuarantineReleasedError
from intake.inbox import attachment_of
from intake.ingest import IdFactory, IngestResult, Outcome, ingest
from intake.model import (
    Attachment,
    Channel,
    EmailArrived,
    EventKind,
    InboundMessage,
    QuarantinedEmail,
    QuarantineStatus,
    Sender,
    Ticket,
)
from intake.notify.mailer import Mailer, MailRejectedError, compose
from intake.observability import logger
from intake.store import Store, WriteConflictError

REFERENCE_TOKEN = re.compile(r"\[#([0-9A-HJKMNP-TV-Z]{8})\]", re.IGNORECASE)


class EmailUnroutableError(Exception):
    """No team takes mail for any of its recipients and the policy names no default team."""


@dataclass(frozen=True)
class EmailStores:
    """What the email path reads and writes besides the table: the archive, the mail it sends, the time."""

    read: Callable[[str], bytes]
    put_attachment: Callable[[Attachment, bytes], None]
    mailer: Mailer | None = None  # None: no acknowledgments (a process that sends no mail)
    clock: Callable[[], datetime] | None = None


def ingest_email(
    store: Store,
    stores: EmailStores,
    arrived: EmailArrived,
    policy: Policy,
    new_id: IdFactory,
    *,
    release: bool = False,
) -> IngestResult | None:
    """None: auto mail that belongs to no thread (archived, nothing else), or a quarantined email."""
    settings = policy.email
    limit = settings.max_attachment_bytes if settings else 10 * 1024 * 1024
    raw = stores.read(arrived.raw_archive_key)
    parsed = email_mime.parse(raw, max_attachment_bytes=limit)
    verdicts = {**ses_verdicts(raw), **arrived.verdicts}
    reasons = quarantine_reasons(verdicts)
    if reasons and not release:
        held = QuarantinedEmail(
            id=arrived.receipt_id, arrived=arrived, reasons=reasons, sender=parsed.from_address, subject=parsed.subject
        )
        store.quarantine(held)
        return None
    auto = parsed.auto or ("own" if (parsed.from_address or "").lower() in our_addresses(policy) else None)
    existing = thread_of(store, parsed)
    if auto is not None and (existing is None or not existing.status.is_open):
        return None
    message_id = parsed.message_id or "sha256-" + hashlib.sha256(arrived.raw_archive_key.encode()).hexdigest()
    total = settings.max_message_bytes if settings else 25 * 1024 * 1024
    kept, over = _within(parsed.attachments, total)
    attachments = _store_parts(stores, arrived, kept)
    dropped = [*parsed.dropped, *((p.filename or "part", f"message over {total} bytes") for p in over)]
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
            "auto": auto,
            "dropped": [{"filename": name, "reason": why} for name, why in dropped],
            "verdicts": verdicts,
            "transport": arrived.provider,
        },
    )
    result = ingest(store, message, new_id, policy)
    store.record_message_ids([i for i in (parsed.message_id,) if i], result.ticket_id)
    opened = result.outcome in (Outcome.CREATED, Outcome.DUPLICATE)  # a duplicate: a retry of the same email
    if opened and auto is None and stores.mailer is not None and stores.clock is not None:
        ticket = store.ticket(result.ticket_id)
        if ticket.created_at == message.received_at:  # this email opened the ticket (once per ticket: a claim)
            acknowledge(store, stores.mailer, policy, ticket, parsed, stores.clock())
    return result


def release(
    store: Store, stores: EmailStores, quarantine_id: str, policy: Policy, new_id: IdFactory, at: datetime
) -> tuple[QuarantinedEmail, IngestResult | None]:
    """Let a quarantined email through: it becomes a ticket (or joins its thread) as if it had just passed."""
    held = store.quarantined(quarantine_id)
    if held is None:
        raise QuarantineNotFoundError(quarantine_id)
    if held.status == QuarantineStatus.RELEASED:
        raise QuarantineReleasedError(quarantine_id)
    result = ingest_email(store, stores, held.arrived, policy, new_id, release=True)  # idempotent: by Message-ID
    released = held.model_copy(
        update={
            "status": QuarantineStatus.RELEASED,
            "released_at": at,
            "ticket_id": result.ticket_id if result else None,
        }
    )
    try:
        store.release(released)
    except WriteConflictError:
        raise QuarantineReleasedError(quarantine_id) from None
    return released, result


def quarantine_reasons(verdicts: dict[str, str]) -> tuple[str, ...]:
    """Why SES's verdicts hold an email back: a spam or virus FAIL, or a DMARC fail under a `reject` policy."""
    reasons = [kind for kind in ("spam", "virus") if verdicts.get(kind) == "FAIL"]
    if verdicts.get("dmarc") == "FAIL" and verdicts.get("dmarc_policy") == "REJECT":
        reasons.append("dmarc-reject")
    return tuple(reasons)


def our_addresses(policy: Policy) -> frozenset[str]:
    """Every address Intake receives or sends mail as: mail from one of them is our own, echoing back."""
    routed = policy.email.addresses if policy.email else {}
    teams = [team.email for team in policy.teams.values() if team.email]
    return frozenset(a.lower() for a in (*routed, *teams, policy.notifications.sender))


def acknowledge(
    store: Store, mailer: Mailer, policy: Policy, ticket: Ticket, parsed: email_mime.ParsedEmail, at: datetime
) -> bool:
    """Tell the customer we have their message: once per ticket, from the team's address, at most N an hour
    per sender, threaded under their message and marked as an automatic reply (so it starts no loop)."""
    from intake.notify.render import render  # Jinja2 only where mail is written
    from intake.sla.calendar import calendar_for

    team = policy.teams[ticket.team]
    sender = parsed.from_address
    if (
        not team.acknowledgment.enabled
        or team.email is None
        or sender is None
        or sender.lower() in our_addresses(policy)
    ):
        return False
    if not store.claim_token("ack", ticket.id, at):
        return False  # a redelivered email: acknowledged already
    if not store.allow_acknowledgment(sender.lower(), at, team.acknowledgment.max_per_sender_per_hour):
        return False
    calendar = calendar_for(team)
    _, text, html = render(
        "acknowledgment",
        {
            "team_name": team.name,
            "customer_name": parsed.from_name,
            "reference": ticket.reference,
            "subject": parsed.subject or None,
            "next_open": None if calendar.is_open(at) else calendar.next_open(at),
            "timezone": team.timezone,
        },
    )
    subject = _reply_subject(parsed.subject, ticket.reference)
    thread = [f"<{i}>" for i in (*parsed.references, *((parsed.message_id,) if parsed.message_id else ()))]
    headers = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
    if parsed.message_id:
        headers |= {"In-Reply-To": f"<{parsed.message_id}>", "References": " ".join(thread)}
    message = compose(
        sender=formataddr((team.name, team.email)),
        to=[sender],
        subject=subject,
        text=text,
        html=html,
        at=at,
        headers=headers,
    )
    try:
        sent = mailer.send(message)
    except MailRejectedError as error:
        logger.warning("acknowledgment refused by the mail service", extra={"ticket_id": ticket.id, "code": str(error)})
        return False
    except BaseException:
        store.release_token("ack", ticket.id)  # the queue's retry of this email acknowledges it
        raise
    store.record_message_ids([i.strip("<>") for i in sent], ticket.id)  # as the parser gives them: bare
    store.record_event(ticket.id, EventKind.ACKNOWLEDGED, at, {"message_id": sent[0]})
    return True


_VERDICT_HEADERS = {"x-ses-spam-verdict": "spam", "x-ses-virus-verdict": "virus"}
_AUTH_RESULT = re.compile(r"\b(spf|dkim|dmarc)=(\w+)", re.IGNORECASE)
_DMARC_POLICY = re.compile(r"\bdmarc=\w+\s*\(p=(\w+)", re.IGNORECASE)


def ses_verdicts(raw: bytes) -> dict[str, str]:
    """What SES receiving wrote into the message's headers: spam and virus scans, SPF, DKIM, DMARC."""
    headers = BytesHeaderParser(policy=email_policy.compat32).parsebytes(raw)
    found = {name: str(headers[header]).strip().upper() for header, name in _VERDICT_HEADERS.items() if headers[header]}
    for results in headers.get_all("Authentication-Results") or []:
        if "amazonses.com" in str(results):
            found |= {method.lower(): verdict.upper() for method, verdict in _AUTH_RESULT.findall(str(results))}
            if dmarc_policy := _DMARC_POLICY.search(str(results)):
                found["dmarc_policy"] = dmarc_policy.group(1).upper()
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


def _reply_subject(subject: str, reference: str) -> str:
    """`Re: <their subject> [#<ref>]`, without a second `Re:` or a second copy of the token."""
    if not subject:
        return f"Request received [#{reference}]"
    replied = subject if re.match(r"(?i)^\s*(re|aw|sv|antw)\s*:", subject) else f"Re: {subject}"
    return replied if f"[#{reference}]" in replied else f"{replied} [#{reference}]"


def _within(
    parts: tuple[email_mime.EmailPart, ...], limit: int
) -> tuple[tuple[email_mime.EmailPart, ...], tuple[email_mime.EmailPart, ...]]:
    """The parts that fit in `limit` bytes together, in order, and those that do not."""
    kept: list[email_mime.EmailPart] = []
    over: list[email_mime.EmailPart] = []
    total = 0
    for part in parts:
        fits = total + len(part.content) <= limit
        total += len(part.content) if fits else 0
        (kept if fits else over).append(part)
    return tuple(kept), tuple(over)


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
