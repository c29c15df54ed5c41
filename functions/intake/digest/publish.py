"""Publishing a team's digest: compute, render, archive to S3, announce on EventBridge, mail the team — once.

A rerun of the same team x period x window (a retried schedule, `POST /digests/...` twice) archives again,
harmlessly (same keys, same content but for the time it was written), and neither sends nor announces again:
the window's token is claimed (`Store.claim_token`) before the `DigestPublished` event and the email. If either
fails, the claim is released before the error propagates, so a retry does both; the event may then be seen
twice (consumers dedupe on `digest_id`), the email is sent once.

An empty window (no new ticket, no survey answered) publishes nothing unless the team set `send_empty`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

from intake.archive import Archive
from intake.bus import EventBus
from intake.config import Policy, Team
from intake.digest.figures import DigestStore, Figures, compute, read
from intake.digest.view import render_digest
from intake.digest.window import Window, window
from intake.notify.mailer import Mailer, compose
from intake.observability import logger
from intake.resources import DIGESTS_PREFIX

CLAIM_SCOPE = "digest"
CLAIM_KEEP = timedelta(days=400)  # a rerun of a window sends once, even a year later
EVENT_TYPE = "DigestPublished"
FREE_TEXT = ("subject", "comment")  # customers' words stay out of the event: its consumers are not known here


class TeamUnknownError(KeyError):
    def __init__(self, team: str, known: Sequence[str]) -> None:
        self.team, self.known = team, tuple(known)
        super().__init__(f"unknown team {team!r}; known: {', '.join(known)}")


class PublishStore(DigestStore, Protocol):
    def claim_token(self, provider: str, token: str, at: datetime, keep: timedelta = ...) -> bool: ...

    def release_token(self, provider: str, token: str) -> None: ...


@dataclass(frozen=True)
class Outlets:
    """Where a published digest goes besides the mail: the archive, and the event bus (None: no bus)."""

    archive: Archive
    bus: EventBus | None


@dataclass(frozen=True)
class Digest:
    """A rendered digest: its window, figures, subject, text and HTML."""

    window: Window
    figures: Figures
    subject: str
    text: str
    html: str

    def preview(self) -> dict[str, Any]:
        return {
            "figures": self.figures.model_dump(mode="json"),
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
        }


@dataclass(frozen=True)
class Published:
    digest: Digest
    sent: bool
    reason: str  # sent | empty | duplicate | no_recipients
    archive: tuple[str, ...] = ()
    recipients: int = 0
    message_ids: tuple[str, ...] = ()

    def answer(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "reason": self.reason,
            "digest_id": self.digest.figures.digest_id,
            "archive": list(self.archive),
            "recipients": self.recipients,
            "message_ids": list(self.message_ids),
            "figures": self.digest.figures.model_dump(mode="json"),
        }


def team_of(policy: Policy, team_id: str) -> Team:
    team = policy.teams.get(team_id)
    if team is None:
        raise TeamUnknownError(team_id, list(policy.teams))
    return team


def prepare(
    store: DigestStore, policy: Policy, team_id: str, period: str, at: date | None, *, base_url: str, now: datetime
) -> Digest:
    """Compute and render the digest of `team_id` for `period` (the window containing `at`, else the last
    complete one before `now`), without sending anything."""
    team = team_of(policy, team_id)
    span = window(team, period, at, now)
    current, previous, backlog = read(store, team_id, span, now)
    if backlog.uncounted:
        logger.info(
            "backlog read from the whole queue: counters incomplete",
            extra={"team": team_id, "uncounted": backlog.uncounted},
        )
    figures = compute(team_id, span, current, previous, backlog, policy=policy, base_url=base_url, now=now)
    subject, text, html = render_digest(figures, span)
    return Digest(span, figures, subject, text, html)


def recipients(team: Team) -> list[str]:
    """The team's digest recipients; default: its `notify` list, else its address."""
    found = team.digests.recipients or team.notify or ([team.email] if team.email else [])
    return list(dict.fromkeys(address.lower() for address in found))


def archive_keys(figures: Figures) -> dict[str, str]:
    return window_keys(figures.team, figures.period, figures.start)


def window_keys(team_id: str, period: str, start: date) -> dict[str, str]:
    """Where a team's digest of the window starting `start` is archived: `digests/<team>/<period>/<start>.*`."""
    base = f"{DIGESTS_PREFIX}{team_id}/{period}/{start.isoformat()}"
    return {"html": f"{base}.html", "txt": f"{base}.txt", "json": f"{base}.json"}


def publish(
    store: PublishStore,
    mailer: Mailer,
    outlets: Outlets,
    policy: Policy,
    team_id: str,
    period: str,
    at: date | None,
    *,
    base_url: str,
    now: datetime,
) -> Published:
    """Compute, render, and (unless the window is empty and the team did not ask for empty digests) archive,
    announce and send the digest; once per team x period x window."""
    digest = prepare(store, policy, team_id, period, at, base_url=base_url, now=now)
    figures = digest.figures
    team = policy.teams[team_id]
    ids = {"team": team_id, "period": figures.period, "start": figures.start.isoformat()}
    if figures.empty and not team.digests.send_empty:
        logger.info("digest not published: empty window", extra=ids)
        return Published(digest, sent=False, reason="empty")
    keys = _archive(outlets, digest)
    # A window not over yet (a preview published by hand, the demo's) is sent each time it is asked for, under
    # its own id: it must not take the claim the scheduled digest of that window makes once it is over.
    ended = _ends_at(figures, team.timezone) <= now
    digest_id = figures.digest_id if ended else f"{figures.digest_id}#partial@{now.isoformat()}"
    if ended and not store.claim_token(CLAIM_SCOPE, digest_id, now, keep=CLAIM_KEEP):
        logger.info("digest already published", extra=ids)
        return Published(digest, sent=False, reason="duplicate", archive=keys)
    to = recipients(team)
    try:
        _announce(outlets, figures, keys, digest_id)
        sent: tuple[str, ...] = ()
        if to:
            sent = mailer.send(_message(policy, digest, to, now))
    except BaseException:
        if ended:
            store.release_token(CLAIM_SCOPE, digest_id)  # so that a retry publishes it
        raise
    logger.info(
        "digest published",
        extra={**ids, "recipients": len(to), "new_tickets": figures.current.new_tickets, "open": figures.backlog.open},
    )
    if not to:
        return Published(digest, sent=False, reason="no_recipients", archive=keys)
    return Published(digest, sent=True, reason="sent", archive=keys, recipients=len(to), message_ids=sent)


def event_detail(figures: Figures, keys: Sequence[str], digest_id: str | None = None) -> dict[str, Any]:
    """The `DigestPublished` event's detail: the figures as JSON (without customers' free text), its id (a
    window not over yet has an id of its own, with `partial` true) and where it was archived."""
    data = _without(figures.model_dump(mode="json"), FREE_TEXT)
    chosen = digest_id or figures.digest_id
    return {"digest_id": chosen, "partial": chosen != figures.digest_id, "archive": list(keys), **data}


def _ends_at(figures: Figures, timezone: str) -> datetime:
    """The first instant after the window's last local day."""
    from datetime import time
    from zoneinfo import ZoneInfo

    return datetime.combine(figures.end + timedelta(days=1), time(0), ZoneInfo(timezone))


def _archive(outlets: Outlets, digest: Digest) -> tuple[str, ...]:
    keys = archive_keys(digest.figures)
    bodies = {
        "html": (digest.html.encode(), "text/html; charset=utf-8"),
        "txt": (digest.text.encode(), "text/plain; charset=utf-8"),
        "json": (
            json.dumps(digest.figures.model_dump(mode="json"), indent=2, ensure_ascii=False).encode(),
            "application/json",
        ),
    }
    for kind, key in keys.items():
        body, content_type = bodies[kind]
        outlets.archive.put(key, body, content_type)
    return tuple(keys.values())


def _announce(outlets: Outlets, figures: Figures, keys: Sequence[str], digest_id: str) -> None:
    if outlets.bus is not None:
        outlets.bus.publish(EVENT_TYPE, event_detail(figures, keys, digest_id))


def _message(policy: Policy, digest: Digest, to: Sequence[str], now: datetime) -> EmailMessage:
    figures = digest.figures
    return compose(
        sender=policy.notifications.sender,
        to=to,
        subject=digest.subject,
        text=digest.text,
        html=digest.html,
        at=now,
        headers={
            "Auto-Submitted": "auto-generated",  # RFC 3834: no auto-reply to it, no ticket from it
            "X-Auto-Response-Suppress": "All",
            "X-Intake-Digest": f"{figures.team}; period={figures.period}; start={figures.start.isoformat()}",
        },
    )


def _without(value: Any, names: Sequence[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, names) for k, v in value.items() if k not in names}
    if isinstance(value, list):
        return [_without(v, names) for v in value]
    return value
