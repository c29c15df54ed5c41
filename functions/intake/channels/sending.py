"""What every channel's `send` shares: the reply it is handed, what it needs to send it, what it answers, how it
fails, and one HTTP call to a provider's API (the standard library's client: nothing heavy to import).

A channel's `send(reply, ctx) -> Sent` takes an `OutboundReply` (who, from which of our addresses, what, in which
conversation) and a `SendContext` (secrets, API base URLs, the mailer, the archive), and either answers `Sent` with
the provider's id for the message, or raises `SendFailedError`: `retryable` when another try may succeed (a
timeout, a 5xx, a 429), not when it cannot (a refused number, a bad token). The provider's own words are kept in
the error's text, never a secret.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from intake.model import Attachment

if TYPE_CHECKING:
    from intake.notify.mailer import Mailer

USER_AGENT = "intake-sender/1"
TIMEOUT_S = 6.0  # Twilio and Meta answer a send in well under a second; a delivery's three tries fit in 21.5 s
# Statuses another try may get past: a timeout at the provider, too many requests, its own failures
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class SendFailedError(Exception):
    """The provider did not take the message. `retryable`: another try may succeed."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class ReplyUndeliverableError(Exception):
    """The ticket's conversation cannot be answered where it came from (no address, a channel without sending)."""


class WindowClosedError(Exception):
    """WhatsApp: 24 hours have passed since the customer's last message, and the reply is no approved template."""

    def __init__(self, closed_at: datetime, templates: list[str], why: str = "") -> None:
        self.closed_at, self.templates = closed_at, templates
        self.problem_extra = {"window_closed_at": closed_at.isoformat(), "templates": templates}
        known = ", ".join(templates) if templates else "none (intake.yaml whatsapp.templates)"
        super().__init__(
            f"WhatsApp's 24-hour window closed at {closed_at.isoformat()}: only an approved template can be sent "
            f"({why or 'name one in `template`'}); templates: {known}"
        )


class TemplatelessWindowClosedError(WindowClosedError):
    """WhatsApp through Twilio: 24 hours have passed since the customer's last message, and Intake sends no template
    through Twilio (its Content API): nothing can go out on WhatsApp until the customer writes again."""

    def __init__(self, closed_at: datetime) -> None:
        self.closed_at, self.templates = closed_at, []
        self.problem_extra = {"window_closed_at": closed_at.isoformat(), "templates": []}
        Exception.__init__(
            self,
            f"WhatsApp's 24-hour window closed at {closed_at.isoformat()}: only an approved template can be sent, and "
            "Intake sends none through Twilio; answer on another channel, or once the customer writes again",
        )


class MessagingWindowClosedError(WindowClosedError):
    """Messenger, Instagram: 24 hours have passed since the customer's last message (7 days with `HUMAN_AGENT`)."""

    def __init__(self, channel: str, closed_at: datetime, human_agent: bool) -> None:
        self.closed_at, self.templates = closed_at, []
        self.problem_extra = {"window_closed_at": closed_at.isoformat(), "templates": []}
        rule = (
            "7 days with the HUMAN_AGENT tag have passed"
            if human_agent
            else f"24 hours have passed (intake.yaml `{channel}.human_agent_tag: true` allows 7 days to a person)"
        )
        Exception.__init__(
            self,
            f"{channel}'s reply window closed at {closed_at.isoformat()}: {rule} since the customer's last message",
        )


@dataclass(frozen=True)
class QuotedMessage:
    """A message of the thread, as an email reply quotes it below the answer."""

    at: datetime
    author: str
    text: str


@dataclass(frozen=True)
class Template:
    """A WhatsApp message template approved by Meta, with its body parameters filled in."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboundReply:
    """One reply as a channel sends it: everything about the conversation already resolved by `intake.replies`."""

    reply_id: str
    ticket_id: str
    reference: str
    channel: str  # email, sms, whatsapp, messenger, instagram
    to: str  # an email address, an E.164 number, a WhatsApp id, a PSID or IGSID
    sender: str  # ours: the team's email, the Twilio number or WhatsApp phone_number_id written to, a page or IG id
    text: str
    sender_name: str | None = None
    subject: str | None = None
    attachments: tuple[Attachment, ...] = ()
    in_reply_to: str | None = None  # email: the Message-ID answered
    references: tuple[str, ...] = ()  # email: the thread's Message-IDs, oldest first
    quoted: tuple[QuotedMessage, ...] = ()  # email: the thread below the answer, newest first
    template: Template | None = None  # WhatsApp outside its 24-hour window
    tag: str | None = None  # Messenger, Instagram: the message tag outside their 24-hour window (HUMAN_AGENT)


@dataclass(frozen=True)
class ReplyWay:
    """Where a reply goes, as the channel of the customer's latest message answers it (`Channel.address`): which
    channel module sends it (`provider`), on which kind of conversation, to whom, from which of our addresses, and
    how the provider's rules let it go now (a WhatsApp template, a Meta message tag)."""

    provider: str
    channel: str
    to: str
    sender: str
    sender_name: str | None = None
    subject: str | None = None
    thread: dict[str, Any] = field(default_factory=dict)  # email: in_reply_to, references
    template: Template | None = None
    tag: str | None = None


class SecretLookup(Protocol):
    """A secret's value by name (`intake.secrets.Secrets.get`); with `account`, that account's own first."""

    def __call__(self, name: str, account: str | None = None, /) -> str | None: ...


@dataclass(frozen=True)
class SendContext:
    """What sending needs from the process: secrets by name, each provider's API root, the mailer, the archive, and
    where providers report back (`public_base_url`)."""

    secret: SecretLookup
    public_base_url: str
    twilio_api_url: str = "https://api.twilio.com"
    graph_api_url: str = "https://graph.facebook.com/v21.0"
    mailer: Mailer | None = None
    read: Callable[[str], bytes] | None = None  # an attachment's bytes, by its archive key
    media_url: Callable[[Attachment], str | None] | None = None  # a link the provider may fetch an attachment from
    timeout_s: float = TIMEOUT_S
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True)
class Sent:
    """What the provider answered: its id for the message (status reports name it), the other ids it goes by (more
    WhatsApp messages for the attachments; an email's Message-IDs), and its first state."""

    provider: str
    provider_message_id: str
    other_ids: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the JSON document, or None


def post(
    url: str,
    *,
    form: Sequence[tuple[str, str]] | None = None,
    document: Mapping[str, Any] | None = None,
    basic: tuple[str, str] | None = None,
    bearer: str | None = None,
    timeout_s: float = TIMEOUT_S,
    describe: Callable[[int, Any], str] = lambda status, body: f"HTTP {status}",
) -> Answer:
    """POST a form (repeated names kept) or a JSON document to a provider's API, with basic or bearer auth; its JSON
    answer when 2xx, else `SendFailedError` (`describe` words the provider's error body)."""
    import urllib.error
    import urllib.request
    from http.client import HTTPException

    if not url.startswith(("https://", "http://")):
        raise SendFailedError(f"the API URL {url!r} is not http(s)", retryable=False)
    if form is not None:
        body, media_type = urlencode(list(form)).encode(), "application/x-www-form-urlencoded"
    else:
        body, media_type = json.dumps(document or {}).encode(), "application/json"
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url, data=body, method="POST", headers={"Content-Type": media_type, "Accept": "application/json"}
    )
    request.add_header("User-Agent", USER_AGENT)
    if basic is not None:
        pair = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        request.add_unredirected_header("Authorization", f"Basic {pair}")
    if bearer is not None:
        request.add_unredirected_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return Answer(response.status, _json(response.read()))
    except urllib.error.HTTPError as error:
        status, answer = error.code, _json(error.read())
        error.close()
        raise SendFailedError(describe(status, answer), retryable=status in RETRYABLE_STATUSES) from None
    except TimeoutError:
        raise SendFailedError(f"no answer within {timeout_s} s", retryable=True) from None
    except urllib.error.URLError as error:
        reason = "timed out" if isinstance(error.reason, TimeoutError) else type(error.reason).__name__
        raise SendFailedError(f"unreachable: {reason}", retryable=True) from None
    except (OSError, HTTPException) as error:
        raise SendFailedError(f"connection failed: {type(error).__name__}", retryable=True) from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def required_secret(ctx: SendContext, name: str, account: str | None = None) -> str:
    """`name`'s value (with `account`: that account's own, else `name`'s), or a failure for good: none is set."""
    value = ctx.secret(name, account)
    if not value:
        which = name if account is None else f"{name}_{account} or {name}"
        raise SendFailedError(f"no {which} is configured", retryable=False)
    return value
