"""Emails from Jinja2 templates: `render(kind, context)` → (subject, text, html).

Each kind has three templates in `templates/`: `<kind>.subject.txt`, `<kind>.txt` and `<kind>.html`
(HTML autoescaped, inline CSS only, no scripts). An HTML template fills in a layout: `_team_email.html` (SLA
notices, through `_sla.html`, and digests) or `_customer_email.html` (acknowledgment, survey), both in the
document `_email.html`. Every context key below must be given, `None` where it says so: templates use
`StrictUndefined`, so a missing key fails at render time, not in an inbox.

SLA notices, kinds `warning`, `breach`, `escalation`:
    team_name: str                  the team's display name
    timezone: str                   IANA zone the deadline is shown in (the team's)
    reference: str                  the ticket's short reference
    ticket_url: str                 link to the ticket
    subject: str | None             the ticket's subject
    customer_name: str | None       None: "a customer"
    channel: str                    a `Channel` value (email, phone, ...)
    priority: str                   a `Priority` value
    target: str                     first_response | next_response | resolution
    due_at: datetime                the deadline (timezone-aware)
    now: datetime                   when the notice is written (timezone-aware)
    waiting_since: datetime         since when the customer has been waiting for this target
    last_message: str | None        the customer's latest message (whole; the templates cut it)
    last_message_at: datetime | None
    label: str | None               warnings: which one ("50%", "15m")
    level: int | None               escalations: the level (1 at breach, then 2, 3, ...)

Acknowledgment (the automatic reply to a new email ticket), kind `acknowledgment`:
    team_name: str
    customer_name: str | None       None: a greeting without a name
    reference: str                  quoted as `[#REF]`, which threads the customer's reply
    subject: str | None             their email's subject
    next_open: datetime | None      None when the team is open now; else when it opens next
    timezone: str                   IANA zone `next_open` is shown in (the team's)

Satisfaction survey (after a resolution), kind `survey`:
    team_name: str
    customer_name: str | None
    reference: str
    subject: str | None             the ticket's subject
    links: list[tuple[int, str]]    (score, signed URL) for 1 to 5
    expires_at: datetime            when the links stop working
    timezone: str                   IANA zone `expires_at` is shown in (the team's)

Pages (not emails), `render_page(name, context)`: `csat_thanks.html` and `csat_comment.html`, see
`intake.satisfaction.page`.

A team's digest, kind `digest`: every figure already formatted, by `intake.digest.view.context` (the one
place figures become text, so the HTML and the text part show the same strings).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from intake.text import excerpt

TEMPLATES = Path(__file__).resolve().parent / "templates"
KINDS = ("warning", "breach", "escalation", "acknowledgment", "digest", "survey")

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TARGETS = {"first_response": "first response", "next_response": "next response", "resolution": "resolution"}
_WAITING_FOR = {
    "first_response": "a first response",
    "next_response": "a reply to their latest message",
    "resolution": "a resolution",
}


class UnknownTemplateError(ValueError):
    """`render` was asked for a kind that has no templates."""


def render(kind: str, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """The email of `kind` for `context` (see the module's docstring): one-line subject, text, HTML."""
    if kind not in KINDS:
        raise UnknownTemplateError(kind)
    env = environment()
    subject = env.get_template(f"{kind}.subject.txt").render(context)
    text = env.get_template(f"{kind}.txt").render(context)
    html = env.get_template(f"{kind}.html").render(context)
    return " ".join(subject.split()), text, html


@cache
def environment() -> Environment:
    env = templates(TEMPLATES, keep_trailing_newline=True)
    env.filters["target_phrase"] = target_phrase
    return env


def templates(folder: Path, *, escape_strings: bool = False, keep_trailing_newline: bool = False) -> Environment:
    """Jinja2 on `folder`, as Intake's emails and pages use it: `.html` autoescaped (and templates made from
    strings, with `escape_strings`), a missing variable an error, and the filters that show times and names."""
    env = Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=escape_strings),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=keep_trailing_newline,
    )
    env.filters |= {
        "duration": duration,
        "local_time": local_time,
        "excerpt": excerpt,
        "target_name": target_name,
        "channel_name": channel_name,
    }
    return env


def duration(value: timedelta) -> str:
    """How long, for a person: `3 h 20 min`, `45 min`, `2 d 4 h`, `under a minute` (sign ignored, rounded down)."""
    minutes = int(abs(value.total_seconds()) // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h")] if days else [(hours, "h"), (minutes, "min")]
    shown = [f"{n} {unit}" for n, unit in parts if n]
    return " ".join(shown) or "under a minute"


def local_time(moment: datetime, timezone: str) -> str:
    """`Tue 1 Dec 2026, 14:00 CET`: the instant on the team's wall clock, in English whatever the locale."""
    local = moment.astimezone(ZoneInfo(timezone))
    zone = local.tzname() or ""
    if zone[:1] in "+-":  # zones without a common abbreviation ("-03"): say it is an offset
        zone = f"UTC{zone}"
    weekday, month = _WEEKDAYS[local.weekday()], _MONTHS[local.month - 1]
    return f"{weekday} {local.day} {month} {local.year}, {local:%H:%M} {zone}".rstrip()


def target_name(target: str) -> str:
    return _TARGETS.get(target, target.replace("_", " "))


def target_phrase(target: str) -> str:
    """What the customer is waiting for, to follow "waiting for": `a first response`."""
    return _WAITING_FOR.get(target, target_name(target))


def channel_name(channel: str) -> str:
    """How people name a kind of conversation (`SMS`, `web form`), as its channel says (`Channel.kinds`)."""
    from intake.channels import registry

    return registry.kinds().get(channel, channel)


def render_page(name: str, context: Mapping[str, Any]) -> str:
    """A web page from `templates/<name>` (`csat_*.html`: HTML, autoescaped, inline CSS, no scripts)."""
    if not (name.startswith("csat_") and name.endswith(".html")):
        raise UnknownTemplateError(name)
    return environment().get_template(name).render(context)
