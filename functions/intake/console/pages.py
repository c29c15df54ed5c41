"""The console's pages, rendered on the server: Jinja2 templates (`templates/`, autoescaped), our CSS and JS and
htmx (`static/`), and the small views they show (a queue row, a timeline entry, a clock, an attachment). Pure: no
request, no store, no clock of its own; `intake.handlers.console` reads, calls these and answers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment

from intake.console import CONSOLE_PREFIX, STATIC_PREFIX
from intake.model import (
    Attachment,
    Contact,
    Direction,
    EventKind,
    Message,
    SlaTimer,
    Ticket,
    TicketEvent,
    TimerState,
)
from intake.notify.render import duration, target_name, templates
from intake.text import excerpt

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_TYPES = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "htmx.min.js": "text/javascript; charset=utf-8",
}
SOON = timedelta(hours=1)  # the queue colours a deadline this close (the ticket page uses the policy's warnings)

# What a browser may show in place: pictures and sound. Anything else (SVG, HTML, PDF, ...) is downloaded.
INLINE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "audio/webm",
        "audio/mp4",
        "audio/aac",
    }
)
# The queue's status filter: the queue (open and pending, most urgent first) or a list of one status (newest first)
STATUS_CHOICES = ("", "open", "pending", "resolved", "closed")
_CLOCK_EVENTS = {
    EventKind.TIMER_STARTED,
    EventKind.TIMER_PAUSED,
    EventKind.TIMER_MET,
    EventKind.TIMER_STOPPED,
}  # `tracker.explain` tells the clocks; the timeline tells what people and the customer did


# ------------------------------------------------------------------------------------------------ rendering


@cache
def environment() -> Environment:
    env = templates(TEMPLATES, escape_strings=True)
    env.filters["iso"] = lambda moment: moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    env.globals |= {"static": static_url}
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(context)


def static_url(name: str) -> str:
    """The file's URL with its content's hash: it is served with a year's cache, and a new version is a new URL."""
    return f"{STATIC_PREFIX}{name}?v={_fingerprint(name)}"


@cache
def _fingerprint(name: str) -> str:
    return hashlib.sha256(static_file(name)).hexdigest()[:12]


def static_file(name: str) -> bytes:
    """One of STATIC_TYPES' files; KeyError for any other name."""
    if name not in STATIC_TYPES:
        raise KeyError(name)
    return (STATIC / name).read_bytes()


# --------------------------------------------------------------------------------------------------- the queue


def countdown(due: datetime | None, now: datetime, soon_at: datetime | None = None) -> tuple[str, str]:
    """`in 2 h 10 min` / `overdue 5 min` / `no deadline`, and its state: ok, soon (from `soon_at`, by default an
    hour before), overdue or none. console.js does the same every few seconds from `data-due` and `data-soon`."""
    if due is None:
        return "no deadline", "none"
    left = due - now
    if left <= timedelta(0):
        return f"overdue {duration(left)}", "overdue"
    return f"in {duration(left)}", "soon" if now >= (soon_at or due - SOON) else "ok"


@dataclass(frozen=True)
class QueueRow:
    ticket: Ticket
    contact: str
    snippet: str
    due_text: str
    due_state: str
    soon_at: datetime | None


def queue_rows(
    tickets: Iterable[Ticket], contacts: Mapping[str, Contact | None], first_lines: Mapping[str, str], now: datetime
) -> list[QueueRow]:
    rows = []
    for ticket in tickets:
        text, state = countdown(ticket.next_due_at, now)
        if ticket.breached and ticket.status.is_open:
            state = "overdue"
        who = ticket.customer or contact_label(contacts.get(ticket.contact_id))
        snippet = ticket.subject or ticket.snippet or first_lines.get(ticket.id, "")
        soon_at = ticket.next_due_at - SOON if ticket.next_due_at else None
        rows.append(QueueRow(ticket, who, snippet, text, state, soon_at))
    return rows


def contact_label(contact: Contact | None) -> str:
    if contact is None:
        return "unknown"
    return contact.name or next(iter(contact.emails), None) or next(iter(contact.phones), None) or "unknown"


def first_line(messages: Sequence[Message]) -> str:
    first = next((m for m in messages if m.direction == Direction.INBOUND), None)
    lines = excerpt(first.text if first else "", lines=1, line_chars=120, chars=120)
    return lines[0] if lines else ""


def query_string(**values: str | None) -> str:
    return urlencode({k: v for k, v in values.items() if v})


# -------------------------------------------------------------------------------------------------- a ticket


@dataclass(frozen=True)
class Entry:
    """One line of a ticket's timeline: a message (in or out) or something that happened to the ticket."""

    at: datetime
    message: Message | None = None
    message_index: int | None = None
    event: TicketEvent | None = None


def timeline(messages: Sequence[Message], events: Sequence[TicketEvent]) -> list[Entry]:
    """Messages and events by time (a message before an event of the same instant: the event follows from it)."""
    entries = [Entry(m.received_at, message=m, message_index=n) for n, m in enumerate(messages)]
    entries += [Entry(e.at, event=e) for e in events if e.kind not in _CLOCK_EVENTS]
    return sorted(entries, key=lambda e: (e.at, e.event is not None))


def event_facts(event: TicketEvent) -> list[tuple[str, str]]:
    """What an event's detail says, as (label, value) pairs, the note excepted (shown as text)."""
    labels = {
        "by": "by",
        "assignee": "to",
        "from": "from",
        "priority": "to",
        "target": "clock",
        "level": "level",
        "to": "told",
        "score": "score",
    }
    facts = []
    for key, label in labels.items():
        value = event.detail.get(key)
        if value is None or value == "" or (key == "to" and not isinstance(value, str | list)):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        facts.append((label, target_name(str(value)) if key == "target" else str(value)))
    return facts


@dataclass(frozen=True)
class Clock:
    timer: SlaTimer
    soon_at: datetime | None  # a running clock's first planned warning (else an hour before it is due)
    due_text: str
    due_state: str


def clocks(timers: Sequence[SlaTimer], now: datetime) -> list[Clock]:
    """Each clock with its countdown: soon once its first planned warning has passed, overdue once breached."""
    shown = []
    for timer in timers:
        if timer.state != TimerState.RUNNING:
            state = "overdue" if timer.state == TimerState.BREACHED else "none"
            shown.append(Clock(timer, None, timer.state.value, state))
            continue
        planned = timer.execution.get("warnings")
        soon_at = (_first_warning(planned) if isinstance(planned, list) else None) or timer.due_at - SOON
        text, state = countdown(timer.due_at, now, soon_at)
        shown.append(Clock(timer, soon_at, text, state))
    return shown


def _first_warning(planned: list[Any]) -> datetime | None:
    instants = []
    for warning in planned:
        raw = warning.get("at") if isinstance(warning, dict) else None
        if isinstance(raw, str):
            try:
                instants.append(datetime.fromisoformat(raw.replace("Z", "+00:00")))
            except ValueError:
                continue
    return min(instants) if instants else None


@dataclass(frozen=True)
class Shown:
    """How an attachment is offered: in place (`image`, `audio`), as a download from our archive (`file`), as a
    link to the provider (`link`, http(s) only), or not at all (`none`: neither archived nor linkable)."""

    kind: str
    href: str | None


def attachment_view(ticket_id: str, message_index: int, index: int, attachment: Attachment) -> Shown:
    if attachment.s3_key:
        href = f"{CONSOLE_PREFIX}tickets/{ticket_id}/files/{message_index}/{index}"
        media = media_type(attachment.content_type)
        if media in INLINE_TYPES:
            return Shown("image" if media.startswith("image/") else "audio", href)
        return Shown("file", href)
    if attachment.url and urlsplit(attachment.url).scheme in ("http", "https"):
        return Shown("link", attachment.url)
    return Shown("none", None)


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def download_headers(attachment: Attachment) -> dict[str, str]:
    """A safe answer for an archived file: pictures and sound shown as what they are, anything else a download of
    opaque bytes; never sniffed, never able to run script (sandboxed), named with a safe filename."""
    from intake.model import safe_filename

    media = media_type(attachment.content_type)
    inline = media in INLINE_TYPES
    name = safe_filename(attachment.filename)
    return {
        "Content-Type": media if inline else "application/octet-stream",
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{name}"',
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=300",
    }
