"""What a channel is: the one shape every provider's module fills in, and all the rest of Intake reads.

A channel module ends with `CHANNEL = Channel(...)` (or with the `Channel` a module shared by a family of channels
declares for it: `meta_messaging.channel`, `posted_mime.channel`): its name, the `intake.yaml` section that switches
it on (and that section's model), the secrets the receiver checks its requests with, its webhook routes (method,
path, why API Gateway lets them through without SigV4), `receive` (verify, archive, queue, answer), how its OpenAPI
operations read, how a sample request is signed as the provider would sign it, what the worker does to its messages
(`prepare`), where an agent's reply goes (`address`) and how it goes out (`send`). `intake.channels.registry` lists
the channels; the receiver's routes, the API Gateway routes, the secrets, the policy file's schema, the OpenAPI
document and the samples are all built by walking it, so adding a channel is its module and one registry line
(README, "Adding a channel").

`receive` never touches the store: what it may need of it (a provider's one-time token, Mailgun's) comes as
`ReceiveContext.claim_token`. It raises the errors of `intake.errors` (a problem+json each) and stores nothing
before its request is verified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from intake.errors import PayloadTooLargeError, SignatureInvalidError, WebhookSignatureInvalidError
from intake.model import Attachment, CallEvent, InboundMessage, Message, TicketDetail, WebhookRequest

if TYPE_CHECKING:
    from intake.channels.sending import OutboundReply, ReplyWay, SendContext, Sent
    from intake.config import Policy
    from intake.inbox import Inbox, QueuedItem
    from intake.secrets import Secrets


@dataclass(frozen=True)
class Route:
    """One webhook route. `path` is in API Gateway's syntax (`/webhooks/forms/{form_id}`)."""

    method: Literal["GET", "POST"]
    path: str
    operation: str  # the OpenAPI operationId, and the name the route is known by in tests and docs
    open_because: str  # why it is open at API Gateway: the check the receiver makes instead of SigV4
    public: bool = False  # browsers call it (the public throttling group), not a provider

    @property
    def key(self) -> str:
        """`POST /webhooks/whatsapp`: how API Gateway and its access logs name the route."""
        return f"{self.method} {self.path}"

    @property
    def resolver_path(self) -> str:
        """The path as Powertools' resolver writes parameters: `/webhooks/forms/<form_id>`."""
        return self.path.replace("{", "<").replace("}", ">")


@dataclass(frozen=True)
class ReceiveContext:
    """What the receiver hands a channel with each request."""

    policy: Policy
    secrets: Secrets
    inbox: Inbox
    received_at: datetime
    receipt_id: str
    public_base_url: str  # what providers that sign URLs (Twilio) signed
    max_body_bytes: int
    params: Mapping[str, str]  # the route's path parameters
    claim_token: Callable[[str, str], bool]  # (provider, token) -> True the first time it is seen


@dataclass(frozen=True)
class Answer:
    """The HTTP answer, and what the receiver counts and logs about the request (ids and counts, never content)."""

    status: int
    content_type: str
    body: str
    counts: Mapping[str, int] = field(default_factory=dict)  # metric name -> value
    log: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """A sample request as `intake.local.samples` prepared it, before the provider's signature is added."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True)
class SignContext:
    policy: Policy
    secrets: Secrets
    now: float  # unix seconds: what a timestamped signature is made at
    public_base_url: str  # where the sample is sent (Twilio signs the URL)


@dataclass(frozen=True)
class ReplayContext:
    """What `intake.reconciliation` hands a channel to make an archived request again into what it queued."""

    policy: Policy
    inbox: Inbox
    receipt_id: str
    received_at: datetime
    archive_key: str  # the request's envelope in the archive (`raw/<date>/<provider>/<receipt>`)


@dataclass(frozen=True)
class Made:
    """What a verified request makes: the items it queues, the files it stores (a form's uploads)."""

    items: list[QueuedItem] = field(default_factory=list)
    files: list[tuple[Attachment, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class WorkerContext:
    """What the ingest worker hands a channel's `prepare`: the policy, the providers' API roots and secrets (this
    function's: `Channel.api_readers`), where an attachment's bytes go, and whether the message is new (a read:
    ask it only when there is work to do, so a redelivered message costs nothing)."""

    policy: Policy
    api: SendContext
    put: Callable[[Attachment, bytes], None]
    is_new: Callable[[], bool]


@dataclass(frozen=True)
class ReplyContext:
    """What `intake.replies` hands the channel of the customer's latest message (`Channel.address`): the ticket, that
    message (the conversation answered), the policy, the agent's request (its text, author, template name, whether it
    carries files) and now, for the provider's reply window."""

    detail: TicketDetail
    latest: Message
    policy: Policy
    text: str
    by: str
    template: str | None
    attachments: bool
    now: datetime


@dataclass(frozen=True)
class Channel:
    name: str  # the provider's name: the archive's folder (`raw/<date>/<name>/`) and the registry's key
    title: str  # how people name it: "Facebook Messenger"
    section: str  # the `intake.yaml` key that configures it (several channels may share one: email)
    section_type: Any  # that section's type, or None when another channel of the same section declares it
    kinds: Mapping[str, str]  # the kinds of conversation it makes (`InboundMessage.channel`), and how people name them
    routes: tuple[Route, ...]
    receive: Callable[[Route, WebhookRequest, ReceiveContext], Answer]
    operation: Callable[[Route], dict[str, Any]]  # the route's OpenAPI operation object
    sign: Callable[[Sample, SignContext], Sample]  # a sample request with the provider's signature added
    replay: Callable[[WebhookRequest, ReplayContext], Made]  # an archived request's items, made again
    webhook_secrets: Callable[[Any], list[str]]  # its section -> the keys the receiver checks requests with
    teams: Callable[[Any], list[tuple[str, str]]] = lambda section: []  # its section -> (path, team) it names
    # its section -> where an operator points the provider: (the stack output's name, the path, what to do with it)
    setup: Callable[[Any], list[tuple[str, str, str]]] = lambda section: []
    samples: str = ""  # its folder under `events/` (empty: none of its own)
    # What its provider's API is called with (replies, media downloads, profile names): in AWS a secret of the
    # channel's own (`api_secret_id`, its construct id: `WhatsAppToken`), read only by the functions named in
    # `api_readers` ("sender", "ingest")
    api_secrets: tuple[str, ...] = ()
    api_readers: tuple[str, ...] = ("sender",)
    api_secret_id: str = ""
    # What the worker does to one of its messages before it becomes a ticket (download the media the provider only
    # referenced, fetch the sender's name): never in the receiver, which answers at once. None: nothing.
    prepare: Callable[[InboundMessage, WorkerContext], InboundMessage] | None = None
    # The same for a phone call's callback (a voicemail's recording archived), before it is folded into its call
    prepare_call: Callable[[CallEvent, WorkerContext], CallEvent] | None = None
    # Where an agent's reply to one of its conversations goes and whether it may go now (its window, its templates
    # or tags); raises `sending.ReplyUndeliverableError` or `WindowClosedError`. None: its conversations take no reply
    address: Callable[[ReplyContext], ReplyWay] | None = None
    # How a reply goes out on it (`intake.replies`: the sender worker); None: it sends none itself (a form's reply
    # goes by email)
    send: Callable[[OutboundReply, SendContext], Sent] | None = None
    # Per kind of conversation it makes: how long after the customer's last message a reply may be written freely
    # (Meta's 24 hours); the ticket shows when that closes (`Ticket.reply_window_closes_at`). None: no such limit
    reply_windows: Mapping[str, timedelta] = field(default_factory=dict)


def named_teams(named: Iterable[tuple[str, str]], default_team: str | None) -> list[tuple[str, str]]:
    """`Channel.teams` of a section that routes each of its entries to a team and the rest to its `default_team`:
    the (path, team) of each entry, then the default's when it is set."""
    return [*named, *([("default_team", default_team)] if default_team else [])]


def within(request: WebhookRequest, limit: int) -> None:
    if len(request.body) > limit:
        raise PayloadTooLargeError("the request body", len(request.body), limit)


def provider_signed(verify: Callable[[], None]) -> None:
    """A provider's webhook with a bad signature is refused as forged (403), not as unauthenticated."""
    try:
        verify()
    except SignatureInvalidError as error:
        raise WebhookSignatureInvalidError(str(error)) from None


def needs_secret(secrets: Secrets, name: str, what: str) -> str:
    """A secret a sample is signed with: a clear message naming the variable when it is not set."""
    value = secrets.get(name)
    if value is None:
        raise LookupError(f"set INTAKE_{name} to sign {what} samples")
    return value


def no_webhook(*args: object) -> Any:
    """What a channel without routes has for `receive`, `operation`, `sign` and `replay`: never called."""
    raise LookupError("this channel takes no webhook")
