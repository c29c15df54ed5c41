"""Email: a raw message in the archive becomes a message on the right ticket.

Threading: the Message-IDs it replies to (In-Reply-To, References), then a `[#<reference>]` token in
the subject, else a new conversation. Auto-replies, bounces, list mail and our own mail echoing back
join a thread they belong to but never open a ticket. Every Message-ID seen or sent is recorded
against its ticket. Mail that SES judged spam or a virus, or that fails a DMARC `reject` policy, is
quarantined: archived and listed, a ticket only once released. A new ticket gets an acknowledgment.

Whatever the mail service accepted becomes a ticket, a message on one, a recorded auto-reply or a quarantined
email; nothing in a message fails the worker. The sender is kept as written (`metadata["from"]`) and makes a
contact identity only when it names one mailbox in the world (`identity.email`). Mail no team takes is
quarantined as `unroutable`.
Every field has a bound, so that no item outgrows DynamoDB's 400 KB: the message's text keeps its first
`TEXT_BYTES` on the item, the whole readable text goes to the archive (`metadata["full_text_key"]`), and the
lists (recipients, references, dropped parts) keep what fits their share.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from email import policy as email_policy
from email.parser import BytesHeaderParser
from email.utils import formataddr
from typing import Any
from urllib.parse import unquote_plus

from intake import identity
from intake.channels import email_mime
from intake.config import Policy
from intake.errors import EmailUnroutableError, FieldInvalidError, QuarantineNotFoundError, QuarantineReleasedError
from intake.inbox import attachment_of
from intake.ingest import IdFactory, IngestResult, Outcome, ingest
from intake.limits import TEXT_BYTES, clipped, stored_size
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
from intake.records import TicketState
from intake.store import Store, WriteConflictError

REFERENCE_TOKEN = re.compile(r"\[#([0-9A-HJKMNP-TV-Z]{8})\]", re.IGNORECASE)

# An email's shares of its item (`intake.limits`): the text keeps its first TEXT_BYTES, the whole readable text
# goes to the archive; the metadata (as the store writes it, JSON) by field, at most 146 KiB together; at most
# MAX_PARTS attachments, each described in under 1.2 KiB (names and Content-IDs within 255 bytes).
_FULL_TEXT_JSON = 64 * 1024
_ADDRESSES_JSON = 16 * 1024  # To, and Cc
_REFERENCES_JSON = 16 * 1024
_SMALL_JSON = 4 * 1024  # From as written, In-Reply-To
_DROPPED_JSON = 16 * 1024
_MAX_SUBJECT = 998  # characters: the model's bound (RFC 5322's line)
_MAX_NAME = 200
_MAX_ID_BYTES = 500  # a Message-ID as a key (MSGID#, THREAD#email#); longer ones are keyed by their hash
_MAX_LOOKUPS = 50  # Message-IDs and reference tokens looked up to find a thread
_MAX_ADDRESS_BYTES = 254  # RFC 5321's limit for a path


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
    team: str | None = None,
) -> IngestResult | None:
    """None: auto mail that belongs to no thread (archived, nothing else), or a quarantined email. `team` takes a
    new ticket when no team takes mail for its recipients (an agent's choice, when releasing it)."""
    settings = policy.section("email")
    limit = settings.max_attachment_bytes if settings else 10 * 1024 * 1024
    raw = stores.read(arrived.raw_archive_key)
    parsed = email_mime.parse(raw, max_attachment_bytes=limit)
    verdicts = {name: value[:64] for name, value in {**ses_verdicts(raw), **arrived.verdicts}.items()}
    verdict = sort_email(Sorting(parsed, arrived, verdicts, release=release, team=team), store, policy)
    if isinstance(verdict, Quarantined):
        _quarantine(store, arrived, parsed, verdict.reasons)
        return None
    if isinstance(verdict, Dropped):
        logger.info("email dropped", extra={"receipt_id": arrived.receipt_id, "reason": verdict.reason})
        return None
    auto, existing, team = verdict.auto, verdict.thread, verdict.team
    if team is None:  # being released, and no team takes it: the agent names one
        raise EmailUnroutableError(arrived.receipt_id)
    message_id = parsed.message_id or "sha256-" + hashlib.sha256(arrived.raw_archive_key.encode()).hexdigest()
    total = settings.max_message_bytes if settings else 25 * 1024 * 1024
    kept, over = _within(parsed.attachments, total)
    attachments = _store_parts(stores, arrived, kept)
    dropped = [*parsed.dropped, *((p.filename or "part", f"message over {total} bytes") for p in over)]
    text = clipped(parsed.text or parsed.full_text, TEXT_BYTES)
    full_text = _head(parsed.full_text, _FULL_TEXT_JSON) if parsed.full_text != parsed.text else None
    cut = len(text) < len(parsed.text or parsed.full_text) or (full_text is not None and full_text != parsed.full_text)
    message = InboundMessage(
        channel=Channel.EMAIL,
        provider="email",  # one Message-ID is one message, whichever service delivered it
        provider_message_id=provider_id(parsed.message_id, arrived.raw_archive_key),
        receipt_id=arrived.receipt_id,
        received_at=arrived.received_at,
        team=team,
        sender=Sender(name=_name(parsed.from_name), email=identity.email(parsed.from_address, worldwide=True)),
        subject=parsed.subject[:_MAX_SUBJECT] or None,
        text=text,
        attachments=attachments,
        raw_archive_key=arrived.raw_archive_key,
        thread_key=existing.ticket.thread_key if existing else f"email#{message_key(message_id)}",
        metadata={
            "message_id": _head(parsed.message_id or "", 1024) or None,
            "from": _head(parsed.from_header, _SMALL_JSON) or None,
            "in_reply_to": _fitting(parsed.in_reply_to, _SMALL_JSON),
            "references": _fitting(parsed.references[::-1], _REFERENCES_JSON)[::-1],  # the latest ones
            "to": _fitting(parsed.to, _ADDRESSES_JSON),
            "cc": _fitting(parsed.cc, _ADDRESSES_JSON),
            "full_text": full_text,
            "full_text_key": _archive_text(stores, arrived, parsed.full_text) if cut else None,
            "auto": auto,
            "dropped": _listed([{"filename": name, "reason": why} for name, why in dropped]),
            "verdicts": verdicts,
            "transport": arrived.provider,
        },
    )
    recorded = [message_key(parsed.message_id)] if parsed.message_id else []  # replies to it thread here
    result = ingest(store, message, new_id, policy, message_ids=recorded, known=existing)
    if auto is None and stores.mailer is not None and stores.clock is not None:  # auto mail opens no ticket
        opened = _opened_by(store, result, message)
        if opened is not None:
            acknowledge(store, stores.mailer, policy, opened, parsed, stores.clock())
    return result


# ------------------------------------------------------------------------------------------ filters
# What an inbound email is, decided by a list of small filters run in order (as Zammad's postmaster filters):
# each takes the email with what the filters before it found, and either passes it on (marked, perhaps) or
# stops it with a verdict. Only `follow_up` reads the store: one read, whatever the list holds.


@dataclass(frozen=True)
class Sorting:
    """An email on its way through the filters, with what they found so far."""

    parsed: email_mime.ParsedEmail
    arrived: EmailArrived
    verdicts: dict[str, str]  # SES's and the transport's: spam, virus, spf, dkim, dmarc, dmarc_policy
    release: bool = False  # an agent lets it out of quarantine
    auto: str | None = None  # automatic mail, and which kind (an auto-reply, a bounce, list mail, our own)
    thread: TicketState | None = None  # the ticket it follows up
    team: str | None = None  # the team that takes it (given: the agent's choice when no team takes its recipients)


@dataclass(frozen=True)
class Quarantined:
    """Held back, archived and listed, a ticket only once an agent releases it."""

    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Dropped:
    """Archived, nothing else."""

    reason: str


EmailFilter = Callable[[Sorting, Store, Policy], Sorting | Quarantined | Dropped]


def held_by_verdicts(mail: Sorting, store: Store, policy: Policy) -> Sorting | Quarantined | Dropped:
    """Spam, a virus or a DMARC `reject` failure (`quarantine_reasons`) is quarantined, unless being released."""
    reasons = quarantine_reasons(mail.verdicts)
    return Quarantined(reasons) if reasons and not mail.release else mail


def automatic(mail: Sorting, store: Store, policy: Policy) -> Sorting | Quarantined | Dropped:
    """An auto-reply, a bounce or list mail, as its headers say (`email_mime`), is marked as such."""
    return replace(mail, auto=mail.parsed.auto) if mail.parsed.auto else mail


def our_own(mail: Sorting, store: Store, policy: Policy) -> Sorting | Quarantined | Dropped:
    """Mail from one of our own addresses is our own mail echoing back: marked automatic, so it starts no loop."""
    if mail.auto is None and identity.email(mail.parsed.from_address) in our_addresses(policy):
        return replace(mail, auto="own")
    return mail


def follow_up(mail: Sorting, store: Store, policy: Policy) -> Sorting | Quarantined | Dropped:
    """The ticket it continues (`thread_of`), if any."""
    return replace(mail, thread=thread_of(store, mail.parsed))


def automatic_outside_thread(mail: Sorting, store: Store, policy: Policy) -> Sorting | Quarantined | Dropped:
    """Automatic mail joins an open thread it belongs to, and never opens a ticket (nor reopens one)."""
    if mail.auto is not None and (mail.thread is None or not mail.thread.ticket.status.is_open):
        return Dropped(f"{mail.auto} mail outside an open thread")
    return mail


def routed(mail: Sorting, store: Store, policy: Policy) -> Sorting | Quarantined | Dropped:
    """The team that takes it: its thread's, else its recipients' (`team_for`), else the one given. Mail no team
    takes is quarantined as `unroutable`; being released, it is left without a team, for the agent to name one."""
    team = mail.thread.ticket.team if mail.thread else team_for(policy, mail.parsed, mail.arrived) or mail.team
    if team is None and not mail.release:
        return Quarantined(("unroutable",))
    return replace(mail, team=team)


FILTERS: tuple[EmailFilter, ...] = (held_by_verdicts, automatic, our_own, follow_up, automatic_outside_thread, routed)


def sort_email(
    mail: Sorting, store: Store, policy: Policy, filters: tuple[EmailFilter, ...] = FILTERS
) -> Sorting | Quarantined | Dropped:
    """The filters' verdict on an email: the first that stops it decides, else it passes with their marks."""
    for email_filter in filters:
        found = email_filter(mail, store, policy)
        if not isinstance(found, Sorting):
            return found
        mail = found
    return mail


def _opened_by(store: Store, result: IngestResult, message: InboundMessage) -> Ticket | None:
    """The ticket this email opened, if it did: the one just created, or (delivered again, perhaps before its
    acknowledgment went out) the one it created before. Acknowledging it is a claim, once per ticket."""
    if result.outcome == Outcome.CREATED:
        return result.ticket
    if result.outcome == Outcome.DUPLICATE:
        ticket = store.ticket(result.ticket_id)
        return ticket if ticket.created_at == message.received_at else None
    return None


def provider_id(message_id: str | None, raw_archive_key: str) -> str:
    """What an email is known by once received (`SEEN#email#<it>`): its Message-ID, else the hash of its archive
    key (each receipt its own)."""
    return (message_id or "sha256-" + hashlib.sha256(raw_archive_key.encode()).hexdigest())[:200]


def release(
    store: Store,
    stores: EmailStores,
    quarantine_id: str,
    policy: Policy,
    new_id: IdFactory,
    at: datetime,
    team: str | None = None,
) -> tuple[QuarantinedEmail, IngestResult | None]:
    """Let a quarantined email through: it becomes a ticket (or joins its thread) as if it had just passed.
    `team`: the team that takes it if no team takes mail for its recipients (EmailUnroutableError without)."""
    if team is not None and team not in policy.teams:
        raise FieldInvalidError("team", f"unknown team; known: {', '.join(policy.teams)}")
    held = store.quarantined(quarantine_id)
    if held is None:
        raise QuarantineNotFoundError(quarantine_id)
    if held.status == QuarantineStatus.RELEASED:
        raise QuarantineReleasedError(quarantine_id)
    result = ingest_email(store, stores, held.arrived, policy, new_id, release=True, team=team)  # by Message-ID
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
    routed = email_section.addresses if (email_section := policy.section("email")) else {}
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
    sender = identity.email(parsed.from_address, worldwide=True)
    if sender is not None and not sender.isascii():
        sender = None  # SES sends to no internationalized address (SMTPUTF8)
    if not team.acknowledgment.enabled or team.email is None or sender is None or sender in our_addresses(policy):
        return False
    if not store.claim_acknowledgment(ticket.id, sender, at, team.acknowledgment.max_per_sender_per_hour):
        return False  # a redelivered email (acknowledged already), or a sender over the hour's acknowledgments
    calendar = calendar_for(team)
    _, text, html = render(
        "acknowledgment",
        {
            "team_name": team.name,
            "customer_name": parsed.from_name,
            "reference": ticket.reference,
            "subject": parsed.subject[:_MAX_SUBJECT] or None,
            "next_open": None if calendar.is_open(at) else calendar.next_open(at),
            "timezone": team.timezone,
        },
    )
    # the subject as the ticket keeps it: a header of hundreds of kilobytes takes a minute to encode and fold
    subject = _reply_subject(parsed.subject[:_MAX_SUBJECT], ticket.reference)
    thread = [f"<{i}>" for i in (*parsed.references[-20:], *((parsed.message_id,) if parsed.message_id else ()))]
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
    bare = [i.strip("<>") for i in sent]  # as the parser gives them
    store.record_sent_mail(ticket.id, bare, EventKind.ACKNOWLEDGED, at, {"message_id": sent[0]})
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


def thread_of(store: Store, parsed: email_mime.ParsedEmail) -> TicketState | None:
    """The ticket this email continues, with its clocks: by the Message-IDs it answers (the latest first), else by a
    reference token in its subject. Every candidate is looked up in one read."""
    answered = [message_key(i) for i in dict.fromkeys((*parsed.in_reply_to, *reversed(parsed.references)))]
    answered = answered[:_MAX_LOOKUPS]
    tokens = [token.upper() for token in REFERENCE_TOKEN.findall(parsed.subject)][:_MAX_LOOKUPS]
    if not answered and not tokens:
        return None
    links = store.thread_links(answered, tokens)
    found = [links.by_message_id.get(i) for i in answered] + [links.by_reference.get(t) for t in tokens]
    ticket_id = next((ticket_id for ticket_id in found if ticket_id is not None), None)
    return None if ticket_id is None else store.ticket_state(ticket_id)


def team_for(policy: Policy, parsed: email_mime.ParsedEmail, arrived: EmailArrived) -> str | None:
    """The team of the first recipient a team takes mail for, else the policy's default team (None: neither)."""
    settings = policy.section("email")
    addresses = settings.addresses if settings else {}
    by_team_address = {team.email.lower(): name for name, team in policy.teams.items() if team.email}
    for recipient in (*arrived.recipients, *parsed.to, *parsed.cc):
        team = addresses.get(recipient.lower()) or by_team_address.get(recipient.lower())
        if team is not None:
            return team
    return settings.default_team if settings is not None else None


def message_key(message_id: str) -> str:
    """A Message-ID as the table keys it: as it is, or its hash when it is too long for a key."""
    if len(message_id.encode("utf-8", "surrogatepass")) <= _MAX_ID_BYTES:
        return message_id
    return "sha256-" + hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()


def _quarantine(store: Store, arrived: EmailArrived, parsed: email_mime.ParsedEmail, reasons: tuple[str, ...]) -> None:
    sender = parsed.from_address[:_MAX_ADDRESS_BYTES] if parsed.from_address else None
    subject = parsed.subject[:_MAX_SUBJECT]
    store.quarantine(
        QuarantinedEmail(id=arrived.receipt_id, arrived=arrived, reasons=reasons, sender=sender, subject=subject)
    )


def _name(name: str | None) -> str | None:
    shown = (name or "")[:_MAX_NAME].strip()
    return shown or None


def _head(text: str, budget: int) -> str:
    """The longest head of `text` that takes at most `budget` bytes in the metadata."""
    if stored_size(text) <= budget:
        return text
    low, high = 0, min(len(text), budget)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if stored_size(text[:middle]) <= budget else (low, middle - 1)
    return text[:low]


def _fitting(values: Any, budget: int) -> list[Any]:
    """The first of `values` that take at most `budget` bytes in the metadata together."""
    kept: list[Any] = []
    used = 0
    for value in values:
        used += stored_size(value) + 2
        if used > budget:
            break
        kept.append(value)
    return kept


def _listed(dropped: list[dict[str, str]]) -> list[dict[str, str]]:
    """The dropped parts that fit their share, and how many more there were."""
    kept = _fitting(dropped, _DROPPED_JSON - 200)
    if len(kept) < len(dropped):
        kept.append({"filename": f"{len(dropped) - len(kept)} more", "reason": "not listed: too many"})
    return kept


def _archive_text(stores: EmailStores, arrived: EmailArrived, text: str) -> str | None:
    """The whole readable text in the archive, next to the message's attachments (number 0); its key."""
    content = text.encode("utf-8", "replace")
    attachment = attachment_of(
        arrived.receipt_id, arrived.received_at, 0, "full-text.txt", "text/plain; charset=utf-8", content
    )
    stores.put_attachment(attachment, content)
    return attachment.s3_key


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
