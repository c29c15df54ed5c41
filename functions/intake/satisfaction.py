"""Customer satisfaction: one question (1 to 5) after a ticket is resolved, answered by clicking a signed link.

Three moments, one module:

- **Scheduling** (`Surveys.after_resolution`, called by the SLA tracker when an agent resolves a ticket): when the
  team opted in, the survey is due `delay` after the resolution, moved forward out of the team's quiet hours (its
  wall clock). A contact is asked at most once per `once_per` (a conditional item `SURVEY#<contact_id>` that
  expires); the deliver-later state machine (`notify/deliver_later.asl.json`) waits until then and puts
  `{"kind": "survey", "ticket_id": ...}` on the notifications queue. Its execution is named
  `survey-<ticket_id>-<resolved at, epoch s>`, so a retry cannot schedule two, and a ticket reopened and resolved
  again is scheduled again (delivery sends once per ticket, to a ticket still resolved).
- **Delivery** (`deliver_survey`, dispatched by the notifier): once per ticket (a claim), an email from the team's
  address with one link per score, `<public_base_url>/csat/<token>`; a contact without an email address gets a
  `SurveyRequested` event on Intake's EventBridge bus instead, for an outbound channel integration. Either way a
  `SURVEYDAY#<team>#<local date>` item (what digests count as sent) and a `survey_sent` ticket event.
- **Answer** (`answer`, `GET /csat/{token}`; `add_comment`, `POST`): the token is verified (forged: 403, expired:
  410), the first score per ticket is recorded (`CSAT#<ticket id>`/`CSAT`, apart from the ticket's own items, and
  `CSATDAY#<team>#<local date>`) and kept: a later click on another score changes nothing and the page says which
  score we have. The receiver reads a ticket's team and reference only (`Store.ticket_reference`).

Tokens: `base64url(ticket_id:score:expiry) . base64url(HMAC-SHA256(secret, "csat1." + payload)[:16])`. The
secret is `CSAT_SECRET` (Secrets Manager in AWS, `INTAKE_CSAT_SECRET` locally).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from intake.bus import EventBus
from intake.config import Policy, Satisfaction, Team
from intake.errors import SurveyLinkExpiredError, SurveyLinkInvalidError, SurveySecretMissingError
from intake.model import Contact, EventKind, Status, Ticket, TicketDetail, TicketId, TicketReference
from intake.notify.mailer import RecipientSuppressedError
from intake.observability import logger
from intake.records import CsatAnswer

if TYPE_CHECKING:
    from intake.notify.mailer import Mailer
    from intake.sla.timers import TimerControl

SECRET_NAME = "CSAT_SECRET"  # noqa: S105 - the secret's name: INTAKE_CSAT_SECRET locally
SCORES = (1, 2, 3, 4, 5)
MAX_COMMENT_CHARS = 2000
CLAIM_SCOPE = "survey"  # the notifier's one-send-per-ticket claim: TOKEN#survey#<ticket_id>
EXECUTION_PREFIX = "survey-"
SURVEY_REQUESTED = "SurveyRequested"
DEFINITION_PATH = Path(__file__).resolve().parent / "notify" / "deliver_later.asl.json"
SUBSTITUTIONS = ("NotificationsQueueUrl",)

_TOKEN_VERSION = b"csat1."
_SIGNATURE_BYTES = 16  # HMAC-SHA256 cut to 128 bits: short links, still unforgeable
_MAX_TOKEN_CHARS = 256
_PAYLOAD = re.compile(r"^([0-9A-HJKMNP-TV-Z]{26}):([1-5]):([0-9]{1,12})$")


# ---------------------------------------------------------------- tokens


@dataclass(frozen=True)
class SurveyToken:
    """What a survey link says: this ticket, this score, valid until then."""

    ticket_id: str
    score: int
    expires_at: datetime


def sign_token(ticket_id: str, score: int, expires_at: datetime, secret: str) -> str:
    """The token of one link; `expires_at` is kept to the second."""
    if score not in SCORES:
        raise ValueError(f"a score is 1 to 5, not {score!r}")
    if not secret:
        raise ValueError("the survey secret is empty")
    payload = _b64(f"{ticket_id}:{score}:{int(expires_at.timestamp())}".encode())
    return f"{payload}.{_b64(_signature(payload, secret))}"


def read_token(token: str, secret: str, now: datetime) -> SurveyToken:
    """The link's ticket and score; `SurveyLinkInvalidError` when it is not one we signed, `SurveyLinkExpiredError`
    when it is ours but too old (checked in that order: an expired forgery is a forgery)."""
    if not secret:
        raise ValueError("the survey secret is empty")
    payload, dot, signature = token.partition(".")
    if not dot or len(token) > _MAX_TOKEN_CHARS or not payload or not signature:
        raise SurveyLinkInvalidError()
    given, decoded = _unb64(signature), _unb64(payload)  # neither base64 (a link's other text): forged, not signed
    if given is None or decoded is None or not hmac.compare_digest(given, _signature(payload, secret)):
        raise SurveyLinkInvalidError()
    match = _PAYLOAD.match(decoded.decode("ascii", "replace"))
    if match is None:  # signed by us, yet not a payload we write: treat as forged
        raise SurveyLinkInvalidError()
    ticket_id, score, expiry = match.group(1), int(match.group(2)), int(match.group(3))
    expires_at = datetime.fromtimestamp(expiry, now.tzinfo)
    if now >= expires_at:
        raise SurveyLinkExpiredError(expires_at)
    return SurveyToken(ticket_id, score, expires_at)


def survey_links(base_url: str, ticket_id: str, expires_at: datetime, secret: str) -> list[tuple[int, str]]:
    """One `<base_url>/csat/<token>` per score, 1 to 5."""
    root = base_url.rstrip("/")
    return [(score, f"{root}/csat/{sign_token(ticket_id, score, expires_at, secret)}") for score in SCORES]


def _signature(payload: str, secret: str) -> bytes:
    mac = hmac.new(secret.encode("utf-8"), _TOKEN_VERSION + payload.encode("ascii"), hashlib.sha256)
    return mac.digest()[:_SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes | None:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


# ---------------------------------------------------------------- when to ask


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def quiet_intervals(quiet_hours: Sequence[str]) -> list[tuple[int, int]]:
    """`"20:00-24:00"` → (1200, 1440) in minutes of the day; an interval that ends before it starts
    (`"22:00-07:00"`) runs over midnight; an empty one (`"08:00-08:00"`) is ignored."""
    intervals = []
    for interval in quiet_hours:
        start, _, end = interval.partition("-")
        first, last = _minutes(start), _minutes(end)
        if first != last:
            intervals.append((first, last))
    return intervals


def _local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """That wall-clock minute of `day` (1440 is the next day's midnight); a time skipped by a DST change is read
    with the offset before it, i.e. as the first instant after the gap."""
    if minute >= 1440:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)


def quiet_until(moment: datetime, quiet_hours: Sequence[str], timezone: str) -> datetime | None:
    """When the quiet interval `moment` falls in ends (an aware instant), or None when it is not quiet."""
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    minute = local.hour * 60 + local.minute
    for first, last in quiet_intervals(quiet_hours):
        if first < last and first <= minute < last:
            end = _local(local.date(), last, zone)
        elif first > last and minute >= first:
            end = _local(local.date() + timedelta(days=1), last, zone)
        elif first > last and minute < last:
            end = _local(local.date(), last, zone)
        else:
            continue
        if end > moment:  # a DST fold can put the wall-clock end behind us: then it is over
            return end
    return None


def send_at(resolved_at: datetime, survey: Satisfaction, timezone: str) -> datetime:
    """`resolved_at + delay`, moved forward to the end of the quiet hours it falls in (the team's wall clock;
    back-to-back intervals such as 20:00-24:00 and 00:00-08:00 are crossed in one go). Quiet hours that cover
    the whole day are ignored: the survey goes at `resolved_at + delay`."""
    planned = resolved_at + survey.delay
    moment = planned
    for _ in range(2 * len(survey.quiet_hours) + 2):
        later = quiet_until(moment, survey.quiet_hours, timezone)
        if later is None:
            return moment
        moment = later
    return planned  # never out of the quiet hours: they cover the day


# ---------------------------------------------------------------- scheduling


class SurveyPlanStore(Protocol):
    def claim_survey(self, contact_id: str, ticket_id: str, at: datetime, until: datetime) -> bool: ...

    def release_survey(self, contact_id: str, ticket_id: str) -> None: ...


class Scheduled(StrEnum):
    SCHEDULED = "scheduled"
    DISABLED = "disabled"  # the team did not opt in
    RECENTLY_ASKED = "recently_asked"  # the contact was asked within `once_per`
    NO_MACHINE = "no_machine"  # this process has no deliver-later state machine
    UNAVAILABLE = "unavailable"  # Step Functions or the table refused or throttled: not scheduled (logged)


def survey_message(ticket_id: str) -> dict[str, Any]:
    """What the deliver-later machine puts on the notifications queue."""
    return {"kind": "survey", "ticket_id": ticket_id}


def execution_name(ticket_id: str, resolved_at: datetime) -> str:
    return f"{EXECUTION_PREFIX}{ticket_id}-{int(resolved_at.timestamp())}"


@dataclass(frozen=True)
class Surveys:
    """Plans each resolved ticket's survey; `later` is the deliver-later machine (None: a process without one)."""

    store: SurveyPlanStore
    later: TimerControl | None
    policy: Policy

    def after_resolution(self, ticket: Ticket, at: datetime) -> Scheduled:
        """Schedule the survey of a ticket just resolved at `at`. Never raises for Step Functions being away: the
        resolution stands, the survey is skipped and logged."""
        from intake.sla.policy import stamp
        from intake.sla.timers import TimersUnavailableError
        from intake.store import StoreUnavailableError

        team = self.policy.teams.get(ticket.team)
        ids = {"ticket_id": ticket.id}
        if team is None or not team.satisfaction.enabled:
            return Scheduled.DISABLED
        if self.later is None:
            logger.warning("survey not scheduled: no deliver-later state machine", extra=ids)
            return Scheduled.NO_MACHINE
        survey = team.satisfaction
        try:
            claimed = self.store.claim_survey(ticket.contact_id, ticket.id, at, at + survey.once_per)
        except StoreUnavailableError:
            logger.warning("survey not scheduled: table unavailable", extra=ids)
            return Scheduled.UNAVAILABLE
        if not claimed:
            logger.info("survey not scheduled: contact asked recently", extra=ids)
            return Scheduled.RECENTLY_ASKED
        due = send_at(at, survey, team.timezone)
        execution = {"at": stamp(due), "body": survey_message(ticket.id)}  # rounded up: never early
        try:
            self.later.start(execution_name(ticket.id, at), execution)
        except TimersUnavailableError:
            self.store.release_survey(ticket.contact_id, ticket.id)
            logger.warning("survey not scheduled: step functions unavailable", extra=ids)
            return Scheduled.UNAVAILABLE
        logger.info("survey scheduled", extra={**ids, "send_at": stamp(due)})
        return Scheduled.SCHEDULED


def _stamp(moment: datetime) -> str:
    """The `Z`-suffixed UTC form Step Functions' `TimestampPath` (and moto) want."""
    from datetime import UTC

    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deliver_later_definition(queue_url: str) -> str:
    """The deliver-later ASL with `${NotificationsQueueUrl}` filled in, as CDK's `definitionSubstitutions` does."""
    text = DEFINITION_PATH.read_text(encoding="utf-8")
    text = text.replace("${NotificationsQueueUrl}", json.dumps(queue_url)[1:-1])
    left = re.findall(r"\$\{[A-Za-z0-9_]+\}", text)
    if left:
        raise ValueError(f"unsubstituted variables in {DEFINITION_PATH.name}: {', '.join(sorted(set(left)))}")
    return text


# ---------------------------------------------------------------- delivery


class SurveyNotice(BaseModel):
    """The notifications queue message that says: send this ticket's survey now."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    kind: Literal["survey"]
    ticket_id: TicketId


def survey_notice(body: str | bytes | Mapping[str, Any] | object) -> SurveyNotice | None:
    """The message as a `SurveyNotice` when its kind is "survey"; None for any other message."""
    if isinstance(body, SurveyNotice):
        return body
    data: Any = body
    if isinstance(body, str | bytes):
        try:
            data = json.loads(body)
        except ValueError:
            return None
    if not isinstance(data, Mapping) or data.get("kind") != "survey":
        return None
    return SurveyNotice.model_validate(dict(data))


class SurveyStore(Protocol):
    """What delivering and answering surveys needs of the store."""

    def ticket_reference(self, ticket_id: str) -> TicketReference: ...

    def ticket_detail(self, ticket_id: str) -> TicketDetail: ...

    def claim_token(self, provider: str, token: str, at: datetime) -> bool: ...

    def release_token(self, provider: str, token: str) -> None: ...

    def record_message_ids(self, message_ids: Sequence[str], ticket_id: str) -> None: ...

    def record_survey_sent(self, ticket: Ticket, day: date, at: datetime, detail: dict[str, Any]) -> None: ...

    def record_csat(self, ticket: TicketReference, score: int, day: date, at: datetime) -> tuple[CsatAnswer, bool]: ...

    def csat(self, ticket_id: str) -> CsatAnswer | None: ...

    def comment_csat(self, ticket_id: str, comment: str, at: datetime) -> CsatAnswer | None: ...


class Delivered(StrEnum):
    EMAILED = "emailed"
    REQUESTED = "requested"  # SurveyRequested on the bus, for another channel
    DUPLICATE = "duplicate"  # this ticket's survey went out before
    STALE = "stale"  # the ticket was reopened, or the team no longer asks
    UNREACHABLE = "unreachable"  # no email address and no event bus
    SUPPRESSED = "suppressed"  # the address bounced for good or complained: never mailed again


@dataclass(frozen=True)
class SurveyDelivery:
    """What sending a survey needs besides the notifier's mailer: the table, the link secret, the bus."""

    store: SurveyStore
    secret: str | None
    events: EventBus | None


def deliver_survey(
    notice: SurveyNotice,
    *,
    delivery: SurveyDelivery,
    mailer: Mailer,
    policy: Policy,
    base_url: str,
    now: datetime,
) -> Delivered:
    """Send one ticket's survey, once: by email when the contact has an address, else as `SurveyRequested`."""
    store = delivery.store
    ids = {"ticket_id": notice.ticket_id}
    detail = store.ticket_detail(notice.ticket_id)
    team = policy.teams.get(detail.team)
    if detail.status is not Status.RESOLVED and detail.status is not Status.CLOSED:
        logger.info("survey skipped: ticket reopened", extra=ids)
        return Delivered.STALE
    if team is None or not team.satisfaction.enabled:
        logger.info("survey skipped: team does not ask", extra=ids)
        return Delivered.STALE
    email = _email_of(detail.contact)
    if email is None and delivery.events is None:
        logger.info("survey skipped: no email address and no event bus", extra=ids)
        return Delivered.UNREACHABLE
    if not delivery.secret:
        raise SurveySecretMissingError()
    # The ticket's history is what lasts (the claim below expires after days): a ticket reopened and resolved
    # again weeks later, whose SURVEY#<contact> claim is its own, is not asked a second time.
    already = any(event.kind is EventKind.SURVEY_SENT for event in detail.events)
    if already or not store.claim_token(CLAIM_SCOPE, notice.ticket_id, now):
        logger.info("survey already sent", extra=ids)
        return Delivered.DUPLICATE
    expires_at = now + team.satisfaction.link_valid_for
    links = survey_links(base_url, detail.id, expires_at, delivery.secret)
    try:
        if email is not None:
            sent = _email(detail, team, email, links, expires_at, mailer, policy, now)
            store.record_message_ids(sent, detail.id)  # a reply to the survey threads to the ticket
            outcome = Delivered.EMAILED
        else:
            assert delivery.events is not None
            delivery.events.publish(SURVEY_REQUESTED, _requested(detail, links, expires_at))
            outcome = Delivered.REQUESTED
    except RecipientSuppressedError:  # the claim stays: this survey is done, unsent
        logger.info("survey not sent: address suppressed", extra=ids)
        return Delivered.SUPPRESSED
    except BaseException:
        store.release_token(CLAIM_SCOPE, notice.ticket_id)  # so that the queue's retry sends it
        raise
    day = now.astimezone(ZoneInfo(team.timezone)).date()
    via = "email" if outcome is Delivered.EMAILED else "event"
    store.record_survey_sent(detail, day, now, {"via": via, "expires_at": _stamp(expires_at)})
    logger.info("survey sent", extra={**ids, "via": via})
    return outcome


def _email_of(contact: Contact | None) -> str | None:
    return contact.emails[0] if contact is not None and contact.emails else None


def _email(
    detail: TicketDetail,
    team: Team,
    to: str,
    links: list[tuple[int, str]],
    expires_at: datetime,
    mailer: Mailer,
    policy: Policy,
    now: datetime,
) -> tuple[str, ...]:
    from intake.notify.mailer import compose
    from intake.notify.render import render

    context = {
        "team_name": team.name,
        "customer_name": detail.contact.name if detail.contact else None,
        "reference": detail.reference,
        "subject": detail.subject,
        "links": links,
        "expires_at": expires_at,
        "timezone": team.timezone,
    }
    subject, text, html = render("survey", context)
    message = compose(
        sender=team.email or policy.notifications.sender,
        to=[to],
        subject=subject,
        text=text,
        html=html,
        at=now,
        headers={
            "Auto-Submitted": "auto-generated",  # RFC 3834: no auto-reply to it
            "X-Auto-Response-Suppress": "All",
            "X-Intake-Ticket": detail.id,
            "X-Intake-Notice": "survey",
        },
    )
    return mailer.send(message)


def _requested(detail: TicketDetail, links: list[tuple[int, str]], expires_at: datetime) -> dict[str, Any]:
    """The `SurveyRequested` detail: ids, not personal data (the integration reads `GET /contacts/{id}`)."""
    return {
        "ticket_id": detail.id,
        "reference": detail.reference,
        "contact_id": detail.contact_id,
        "channel": detail.channel,
        "team": detail.team,
        "links": {str(score): url for score, url in links},
        "expires_at": _stamp(expires_at),
    }


# ---------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answered:
    """What the thank-you page shows: the answer we keep, and whether this click changed it."""

    answer: CsatAnswer
    clicked: int  # the score of the link that was followed
    first: bool  # this click recorded the answer
    team_name: str
    reference: str


@dataclass(frozen=True)
class Asked:
    """What the question page shows: the score of the link that was followed, and the answer kept if any."""

    clicked: int
    kept: CsatAnswer | None
    team_name: str
    reference: str


def ask(token: str, *, store: SurveyStore, policy: Policy, secret: str | None, now: datetime) -> Asked:
    """A survey link followed (`GET`): the question with the link's score chosen, recording nothing. Mail security
    scanners follow every link in a message; only the page's one-click form (`POST`) answers."""
    link, ticket, team = _linked(token, store, policy, secret, now)
    return Asked(link.score, store.csat(ticket.id), team.name if team else ticket.team, ticket.reference)


def _linked(
    token: str, store: SurveyStore, policy: Policy, secret: str | None, now: datetime
) -> tuple[SurveyToken, TicketReference, Team | None]:
    """The link's token verified, and the ticket it names as far as the page needs it (its team and reference:
    the receiver reads nothing else of a ticket)."""
    if not secret:
        raise SurveySecretMissingError()
    link = read_token(token, secret, now)
    ticket = store.ticket_reference(link.ticket_id)
    return link, ticket, policy.teams.get(ticket.team)


def answer(token: str, *, store: SurveyStore, policy: Policy, secret: str | None, now: datetime) -> Answered:
    """Record the score a survey link carries, once per ticket: the first answer stands (a second answer, with the
    same score or another, changes nothing and the page says which score we kept)."""
    link, ticket, team = _linked(token, store, policy, secret, now)
    timezone = team.timezone if team is not None else "UTC"
    existing = store.csat(ticket.id)
    first = False
    if existing is None:  # a race with another click is settled by the store's conditional write
        existing, first = store.record_csat(ticket, link.score, now.astimezone(ZoneInfo(timezone)).date(), now)
    if first:
        logger.info("survey answered", extra={"ticket_id": ticket.id, "score": link.score})
    else:
        logger.info("survey answered again", extra={"ticket_id": ticket.id, "kept": existing.score})
    return Answered(existing, link.score, first, team.name if team else ticket.team, ticket.reference)


def add_comment(
    token: str, comment: str, *, store: SurveyStore, policy: Policy, secret: str | None, now: datetime
) -> Answered:
    """The question page's form posted: the link's score is recorded (once per ticket, the first stands), then the
    comment if there is one (the latest replaces an earlier one)."""
    from intake.errors import FieldInvalidError

    text = comment.strip()
    if len(text) > MAX_COMMENT_CHARS:
        raise FieldInvalidError("comment", f"at most {MAX_COMMENT_CHARS} characters")
    answered = answer(token, store=store, policy=policy, secret=secret, now=now)
    if not text:
        return answered
    changed = store.comment_csat(answered.answer.ticket_id, text, now)
    logger.info("survey comment kept", extra={"ticket_id": answered.answer.ticket_id, "chars": len(text)})
    return Answered(
        changed or answered.answer, answered.clicked, answered.first, answered.team_name, answered.reference
    )


def comment_form(body: bytes, content_type: str | None) -> str:
    """The `comment` field of the page's form (application/x-www-form-urlencoded, UTF-8)."""
    from urllib.parse import parse_qs

    from intake.errors import FieldInvalidError, UnsupportedMediaTypeError

    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaTypeError("content type", media_type, ["application/x-www-form-urlencoded"])
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise FieldInvalidError("comment", "not UTF-8 form data") from None
    values = fields.get("comment", [""])
    return values[0]


def question_page(asked: Asked) -> str:
    """The page a survey link opens (HTML, inline CSS, no scripts): the score chosen and one button that sends it,
    with an optional comment; or, once answered, the answer kept and the comment form."""
    from intake.notify.render import render_page

    kept = asked.kept
    context = {
        "team_name": asked.team_name,
        "reference": asked.reference,
        "clicked": asked.clicked,
        "score": kept.score if kept else asked.clicked,
        "answered": kept is not None,
        "comment": kept.comment if kept else None,
        "max_comment_chars": MAX_COMMENT_CHARS,
    }
    return render_page("csat_question.html", context)


def page(answered: Answered, *, commented: bool = False) -> str:
    """The thank-you page (HTML, inline CSS, no scripts): the score we kept and, until a comment was sent, the
    comment form (it posts to the page's own URL)."""
    from intake.notify.render import render_page

    context = {
        "team_name": answered.team_name,
        "reference": answered.reference,
        "score": answered.answer.score,
        "clicked": answered.clicked,
        "first": answered.first,
        "comment": answered.answer.comment,
        "commented": commented,
        "max_comment_chars": MAX_COMMENT_CHARS,
    }
    return render_page("csat_comment.html" if commented else "csat_thanks.html", context)
