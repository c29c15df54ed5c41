"""Meta's Messenger Platform as Messenger and Instagram Direct both speak it: the `messaging[]` webhook, the Send API.

`intake.channels.messenger` (`object: "page"`, page-scoped ids) and `intake.channels.instagram` (`object:
"instagram"`, Instagram-scoped ids) differ in names, ids and a few events (story replies and mentions, deleted
messages); each hands a `Platform` to the functions here, and declares its `CHANNEL` with `channel`.

parse: every event of `entry[].messaging[]` (and of `entry[].standby[]`, what Meta sends an app that does not
control the conversation at the time: the customer wrote all the same) becomes one item, in order:
- a customer's message or postback → `InboundMessage` (id: its `mid`, so a redelivery makes no second message;
  thread: one per person and page or account),
- a reaction → `Reaction` (annotates the message reacted to, never a ticket),
- a delivery or read receipt naming our messages' `mid`s → `DeliveryStatus` for each (never a ticket),
- anything else → `Skipped`, with why: an echo of our own message, a receipt that names no message (only a
  watermark), an event of a kind we do not read, one that cannot be mapped, or one for a page or account the policy
  routes to no team. The receiver archives the request as received, so nothing skipped is lost, and counts them.

Attachments stay at Meta: their CDN `url` is recorded on the message, not downloaded (Meta's terms forbid storing
Instagram's media; Messenger's links expire after a while). The URL is never logged.

send: the Send API, `POST {graph}/{page id, or me}/messages` with the page's token as bearer, one message per
text part and per attachment (by a link Meta fetches).
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import parse_qsl, quote, urlsplit

from pydantic import Field, ValidationError

from intake.channels import contract, jsonbody, meta
from intake.channels.contract import (
    Answer,
    Made,
    ReceiveContext,
    ReplayContext,
    ReplyContext,
    Route,
    Sample,
    SignContext,
    WorkerContext,
)
from intake.channels.sending import (
    MessagingWindowClosedError,
    OutboundReply,
    ReplyUndeliverableError,
    ReplyWay,
    SendContext,
    SendFailedError,
    Sent,
    post,
    required_secret,
)
from intake.config import Name, Policy, Strict
from intake.errors import FieldInvalidError
from intake.inbox import raw_key
from intake.model import (
    Attachment,
    DeliveryState,
    DeliveryStatus,
    InboundMessage,
    Reaction,
    ScopedUser,
    Sender,
    WebhookRequest,
    safe_filename,
)
from intake.observability import logger
from intake.secrets import Secrets

DEDUPE_WINDOW_S = 8 * 86400  # Meta retries for up to 7 days
GENERIC_TYPE = "application/octet-stream"
HUMAN_AGENT = "HUMAN_AGENT"
_MAX_TEXT = 100_000
_MAX_EMOJI = 32
_MAX_NAME = 200
_UNIX = re.compile(r"[0-9]{1,15}")
# Graph API error codes another try may get past: unknown and temporary errors, rate limits
_TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613})
# An attachment type → the content type when its link names no file, and the text an agent reads without one
_KINDS = {
    "image": ("image/jpeg", "[image]"),
    "video": ("video/mp4", "[video]"),
    "audio": ("audio/mpeg", "[audio]"),
    "file": (GENERIC_TYPE, "[file]"),
    "story_mention": (GENERIC_TYPE, "[mentioned you in their story]"),
    "share": (GENERIC_TYPE, "[shared a post]"),
    "ig_reel": ("video/mp4", "[shared a reel]"),
    "reel": ("video/mp4", "[shared a reel]"),
    "ig_post": (GENERIC_TYPE, "[shared a post]"),
    "sticker": ("image/png", "[sticker]"),
    "animated_image": ("image/gif", "[GIF]"),
}


class Account(Strict):
    """One of our Facebook Pages or Instagram professional accounts, by the id webhooks name, and its team."""

    team: Name
    name: str | None = Field(default=None, max_length=200, description="how agents know it (a Page, an @handle)")


class MessagingSection(Strict):
    """What the `messenger:` and `instagram:` sections share: the team for an account not listed, and how far
    Intake may go (names from the Graph API, replies after 24 hours)."""

    default_team: Name | None = Field(default=None, description="for accounts not listed")
    fetch_names: bool = Field(default=False, description="ask the Graph API for a new customer's name")
    human_agent_tag: bool = Field(
        default=False,
        description="allow replies between 24 hours and 7 days after the customer's last message, with Meta's "
        "HUMAN_AGENT tag (the app needs Meta's Human Agent permission)",
    )

    LISTED: ClassVar[str]  # the field that lists the accounts, as each section names them: `pages`, `accounts`

    def listed(self) -> dict[str, Account]:
        accounts: dict[str, Account] = getattr(self, self.LISTED)
        return accounts

    def team_of(self, account_id: str) -> str | None:
        account = self.listed().get(account_id)
        return account.team if account is not None else self.default_team

    def named_teams(self) -> list[tuple[str, str]]:
        """Where the section names a team (`Channel.teams`): each account's, and the default."""
        accounts = ((f"{self.LISTED}.{n}.team", account.team) for n, account in self.listed().items())
        return contract.named_teams(accounts, self.default_team)


class Routing(Protocol):
    """What a channel's policy section tells the parser: the team of one of our pages or accounts."""

    def team_of(self, account_id: str) -> str | None: ...


@dataclass(frozen=True)
class Platform:
    """One channel on the Messenger Platform: its names, and how its ids read."""

    provider: str  # messenger | instagram: the provider, and the kind of conversation (a message's `channel`)
    label: str  # Messenger | Instagram: words errors and texts
    object: str  # the webhook's `object`: page | instagram
    user_kind: str  # psid | igsid: the sender's identity kind
    accounts: str  # the policy's map of our pages or accounts, to name it in reasons (messenger.pages)
    max_text_bytes: int  # the Send API's limit on one message's text (UTF-8)
    sends_from: str  # the Send API's path before /messages: `{account}` (the page or account id), or `me`
    app_secret: str  # the secrets' names: each channel has its own (one Meta app may serve one, or both)
    verify_token: str
    section_type: type[Any]  # its intake.yaml section's model (messenger.Messenger, instagram.Instagram)


@dataclass(frozen=True)
class Skipped:
    """An event that makes nothing, and why (ids and kinds only: never a text, a name or a person's id)."""

    kind: Literal["echo", "receipt", "deleted", "unknown", "invalid", "unrouted"]
    reason: str


Parsed = InboundMessage | Reaction | DeliveryStatus | Skipped


# ------------------------------------------------------------------------------------------------ parse


def parse(
    platform: Platform,
    body: bytes,
    *,
    policy: Routing,
    receipt_id: str,
    received_at: datetime,
    raw_archive_key: str,
) -> list[Parsed]:
    """Every event of a webhook request, in order. A body that is not this platform's webhook raises
    `FieldInvalidError("(body)", …)` (Meta is answered 400; the request is archived anyway); an event that cannot
    be mapped is `Skipped`, never an error, so the others of its batch go through."""
    document = _document(platform, body)
    context = _Context(platform, policy, receipt_id, received_at, raw_archive_key)
    found: list[Parsed] = []
    for entry in jsonbody.members(document, "entry"):
        entry_time = _time(entry.get("time"), received_at)
        for event in [*jsonbody.members(entry, "messaging"), *jsonbody.members(entry, "standby")]:
            try:
                found.extend(context.event(event, entry_time))
            except _SkipError as skip:
                found.append(Skipped(skip.kind, skip.reason))
            except ValidationError as error:  # a value our models refuse (an id too long…): named, not shown
                where = ".".join(str(part) for part in error.errors()[0]["loc"])
                found.append(Skipped("invalid", f"a value is out of range ({where})"))
    return found


def _document(platform: Platform, body: bytes) -> dict[str, Any]:
    try:
        data = jsonbody.loads(body)
    except (ValueError, RecursionError) as error:
        reason = "is nested too deeply" if isinstance(error, RecursionError) else f"is not valid JSON: {error}"
        raise FieldInvalidError("(body)", reason) from None
    if not isinstance(data, dict):
        raise FieldInvalidError("(body)", "must be a JSON object")
    if data.get("object") != platform.object:
        raise FieldInvalidError("(body)", f"is not a {platform.label} webhook (object must be {platform.object!r})")
    return data


class _SkipError(Exception):
    def __init__(self, kind: Literal["echo", "receipt", "deleted", "unknown", "invalid", "unrouted"], reason: str):
        super().__init__(reason)
        self.kind, self.reason = kind, reason


@dataclass(frozen=True)
class _Context:
    platform: Platform
    policy: Routing
    receipt_id: str
    received_at: datetime
    raw_archive_key: str

    def event(self, event: dict[str, Any], entry_time: datetime) -> list[Parsed]:
        at = _time(event.get("timestamp"), entry_time)
        sender, recipient = _id(event, "sender"), _id(event, "recipient")
        message = event.get("message")
        if isinstance(message, dict) and message.get("is_echo") is True:
            raise _SkipError("echo", "an echo of a message our page or account sent")
        if isinstance(event.get("delivery"), dict):
            return [*self._receipts(event["delivery"], DeliveryState.DELIVERED, at)]
        if isinstance(event.get("read"), dict):
            read = event["read"]
            return [*(self._watermark(read, sender, recipient, at) or self._receipts(read, DeliveryState.READ, at))]
        if sender is None or recipient is None:
            raise _SkipError("invalid", "sender.id and recipient.id are required")
        user = ScopedUser(kind=self.platform.user_kind, account=recipient, id=sender)
        if isinstance(message, dict):
            return [self._message(message, user, at)]
        if isinstance(event.get("postback"), dict):
            return [self._postback(event["postback"], user, at)]
        if isinstance(event.get("reaction"), dict):
            return [self._reaction(event["reaction"], user, at)]
        known = sorted(k for k in event if k not in ("sender", "recipient", "timestamp"))
        raise _SkipError("unknown", "an event we do not read: " + (", ".join(known[:5]) or "(empty)"))

    # ------------------------------------------------------------------ messages

    def _message(self, message: dict[str, Any], user: ScopedUser, at: datetime) -> InboundMessage:
        mid = jsonbody.text(message.get("mid"))
        if mid is None:
            raise _SkipError("invalid", "message.mid is required")
        if message.get("is_deleted") is True:
            raise _SkipError("deleted", "the customer deleted a message (unsent)")
        metadata: dict[str, Any] = {"type": "message"}
        parts: list[str] = []
        text = jsonbody.text(message.get("text"))
        if text is not None:
            parts.append(text)
        quick = message.get("quick_reply")
        if isinstance(quick, dict):
            metadata["type"] = "quick_reply"
            metadata["quick_reply"] = {"payload": quick.get("payload")}
        if message.get("is_unsupported") is True:
            metadata["type"] = "unsupported"
            parts.append(f"[unsupported message: {self.platform.label} does not share its content]")
        attachments: list[Attachment] = []
        for n, attachment in enumerate(jsonbody.members(message, "attachments"), start=1):
            shown, found, kind = _attachment(attachment, n)
            metadata.setdefault("attachments", []).append(kind)
            attachments.extend(found)
            if shown is not None and (text is None or not found):
                parts.append(shown)
        reply_to = message.get("reply_to")
        if isinstance(reply_to, dict):
            replied = jsonbody.text(reply_to.get("mid"))
            if replied is not None:
                metadata["reply_to"] = replied
            story = reply_to.get("story")
            if isinstance(story, dict):
                metadata["type"] = "story_reply"
                metadata["story_id"] = jsonbody.text(story.get("id"))
                link = jsonbody.text(story.get("url"))
                if link is not None:
                    attachments.append(_linked("story", link, GENERIC_TYPE, "the story this message replies to"))
                if text is None:
                    parts.append("[replied to your story]")
        if message.get("referral") is not None:
            metadata["referral"] = message["referral"]
        return self._inbound(mid, user, at, "\n".join(parts) or "[empty message]", tuple(attachments), metadata)

    def _postback(self, postback: dict[str, Any], user: ScopedUser, at: datetime) -> InboundMessage:
        """A button the customer tapped (a persistent menu item, a template's button, an icebreaker): its title is
        what they said; its payload is kept for automations."""
        title = jsonbody.text(postback.get("title"))
        payload = postback.get("payload")
        mid = jsonbody.text(postback.get("mid"))
        if mid is None:  # an old postback: no id of its own
            mid = _derived_id("postback", user.account, user.id, at.isoformat(), payload)
        metadata: dict[str, Any] = {"type": "postback", "postback": {"title": title, "payload": payload}}
        if postback.get("referral") is not None:
            metadata["referral"] = postback["referral"]
        return self._inbound(mid, user, at, title or "[button tapped]", (), metadata)

    def _inbound(
        self,
        mid: str,
        user: ScopedUser,
        at: datetime,
        text: str,
        attachments: tuple[Attachment, ...],
        metadata: dict[str, Any],
    ) -> InboundMessage:
        team = self.policy.team_of(user.account)
        if team is None:
            reason = f"{self.platform.label} account {user.account} is not in {self.platform.accounts}, "
            raise _SkipError("unrouted", reason + "and no default_team is set")
        metadata |= {"account_id": user.account, "user_id": user.id}
        return InboundMessage(
            channel=self.platform.provider,
            provider=self.platform.provider,
            provider_message_id=mid,
            receipt_id=self.receipt_id,
            received_at=at,
            team=team,
            sender=Sender(user=user),
            text=text[:_MAX_TEXT],
            attachments=attachments,
            raw_archive_key=self.raw_archive_key,
            thread_key=f"{self.platform.provider}#{user.account}:{user.id}",
            dedupe_window_s=DEDUPE_WINDOW_S,
            metadata=metadata,
        )

    # ------------------------------------------------------------------ reactions and receipts

    def _reaction(self, reaction: dict[str, Any], user: ScopedUser, at: datetime) -> Reaction:
        reacted_to = jsonbody.text(reaction.get("mid"))
        if reacted_to is None:
            raise _SkipError("invalid", "reaction.mid is required")
        action = jsonbody.text(reaction.get("action")) or "react"
        emoji = jsonbody.text(reaction.get("emoji")) if action == "react" else None
        if action == "react" and emoji is None:  # Instagram names some reactions only by their word ("love")
            emoji = jsonbody.text(reaction.get("reaction"))
        return Reaction(
            provider=self.platform.provider,
            event_id=_derived_id("reaction", user.account, user.id, at.isoformat(), reacted_to, action),
            receipt_id=self.receipt_id,
            received_at=at,
            raw_archive_key=self.raw_archive_key,
            reacted_to=reacted_to,
            emoji=emoji[:_MAX_EMOJI] if emoji else None,  # None: the customer removed their reaction
            sender=Sender(user=user),
        )

    def _watermark(
        self, read: dict[str, Any], sender: str | None, recipient: str | None, at: datetime
    ) -> list[DeliveryStatus] | None:
        """Messenger's read receipt: no message named, only `watermark` (every message sent by then was read), as a
        report on the conversation (`DeliveryStatus.up_to`); None when the receipt names its messages."""
        watermark = jsonbody.text(read.get("watermark"))
        if read.get("mid") or read.get("mids") or watermark is None or sender is None or recipient is None:
            return None
        up_to = _time(watermark, at)
        return [
            DeliveryStatus(
                provider=self.platform.provider,
                provider_message_id=f"watermark:{recipient}:{sender}:{watermark}",
                state=DeliveryState.READ,
                at=at,
                receipt_id=self.receipt_id,
                received_at=self.received_at,
                raw_archive_key=self.raw_archive_key,
                thread_key=f"{self.platform.provider}#{recipient}:{sender}",
                up_to=up_to,
            )
        ]

    def _receipts(self, receipt: dict[str, Any], state: DeliveryState, at: datetime) -> list[DeliveryStatus]:
        """A `delivery` (`mids[]`) or a `read` (Instagram's `mid`): what reached the customer, by our messages' ids.
        One that gives only a `watermark` (Messenger's reads, older clients' deliveries) names no message."""
        named = receipt.get("mids")
        mids = [m for m in named if isinstance(m, str) and m] if isinstance(named, list) else []
        single = jsonbody.text(receipt.get("mid"))
        if single is not None:
            mids.append(single)
        if not mids:
            raise _SkipError("receipt", f"a {state.value} receipt that names no message (only a watermark)")
        return [
            DeliveryStatus(
                provider=self.platform.provider,
                provider_message_id=mid,
                state=state,
                at=at,
                receipt_id=self.receipt_id,
                received_at=self.received_at,
                raw_archive_key=self.raw_archive_key,
            )
            for mid in mids
        ]


def _attachment(attachment: dict[str, Any], n: int) -> tuple[str | None, list[Attachment], str]:
    """One of `message.attachments`: the text an agent reads for it, the attachment as recorded (its link), its type."""
    kind = jsonbody.text(attachment.get("type")) or "unknown"
    payload = jsonbody.member(attachment, "payload")
    link = jsonbody.text(payload.get("url"))
    if kind == "location":
        coordinates = jsonbody.member(payload, "coordinates")
        lat, long = coordinates.get("lat"), coordinates.get("long")
        if isinstance(lat, int | float) and isinstance(long, int | float):
            return f"Shared location: {lat}, {long}", [], kind
        return "[shared location]", [], kind
    if kind == "fallback":  # a link shared from elsewhere: its title and URL are what the customer sent
        title = jsonbody.text(attachment.get("title")) or jsonbody.text(payload.get("title"))
        shown = " ".join(part for part in ("Shared link:", title, link) if part)
        return shown, [], kind
    if kind == "template":
        return "[template]", [], kind
    content_type, placeholder = _KINDS.get(kind, (GENERIC_TYPE, f"[attachment: {kind}]"))
    if link is None:
        return placeholder, [], kind
    name = _filename(link, kind, n, content_type)
    title = jsonbody.text(payload.get("title"))
    if kind == "file":
        placeholder = f"[file: {name}]"
    guessed = mimetypes.guess_type(name)[0]
    return placeholder, [_linked(name, link, guessed or content_type, title)], kind


def _linked(name: str, link: str, content_type: str, caption: str | None) -> Attachment:
    return Attachment(filename=name[:255], content_type=content_type, url=link, caption=caption)


def _filename(link: str, kind: str, n: int, content_type: str) -> str:
    """The file's name as its link's last path segment gives it (Messenger's file links do), else `<type>-<n>`."""
    last = urlsplit(link).path.rsplit("/", 1)[-1]
    if "." in last.strip("."):
        return safe_filename(last)
    extension = mimetypes.guess_extension(content_type) if content_type != GENERIC_TYPE else None
    return f"{kind}-{n}{extension or ''}"


# ------------------------------------------------------------------------------------ the channel contract


def handshake(platform: Platform, query: Mapping[str, str], secrets: Secrets) -> str:
    """The `hub.challenge` for Meta's subscription request carrying the channel's verify token."""
    return meta.handshake(query, secrets.get(platform.verify_token), platform.label)


def verify(platform: Platform, request: WebhookRequest, secrets: Secrets) -> None:
    """Raise `SignatureInvalidError` unless `X-Hub-Signature-256` signs the body with the channel's app secret."""
    meta.verify(request, secrets.get(platform.app_secret), platform.label)


def receive(platform: Platform, route: Route, request: WebhookRequest, ctx: ReceiveContext) -> Answer:
    """The `GET` handshake; or a webhook: size and signature first (nothing is stored when they fail), then the
    request is archived as received (even when it turns out malformed: a 400, and the bytes kept), then what it
    makes is queued. Skipped events are counted and logged by kind and reason (ids only). Without its intake.yaml
    section, a channel routes no page or account: each message is skipped as unrouted, its request archived."""
    if route.method == "GET":
        challenge = handshake(platform, dict(parse_qsl(request.query, keep_blank_values=True)), ctx.secrets)
        return Answer(200, "text/plain", challenge, log={"handshake": True})
    contract.within(request, ctx.max_body_bytes)
    contract.provider_signed(lambda: verify(platform, request, ctx.secrets))
    archive_key = raw_key(platform.provider, ctx.receipt_id, ctx.received_at)
    ctx.inbox.archive_request(archive_key, ctx.receipt_id, ctx.received_at, request)
    items = _parsed(platform, ctx.policy, request.body, ctx.receipt_id, ctx.received_at, archive_key)
    queued = [item for item in items if not isinstance(item, Skipped)]
    ctx.inbox.enqueue_many(queued)
    messages = sum(isinstance(item, InboundMessage | Reaction) for item in queued)
    skipped = [item for item in items if isinstance(item, Skipped)]
    counts = {
        f"{platform.label}Queued": messages,
        "DeliveryStatusRecorded": len(queued) - messages,
        f"{platform.label}Skipped": len(skipped),
    }
    log: dict[str, Any] = {"queued": messages, "statuses": len(queued) - messages}
    if skipped:
        log["skipped"] = [f"{item.kind}: {item.reason}" for item in skipped[:20]]
    body = json.dumps({"receipt": ctx.receipt_id, "queued": messages})
    return Answer(200, "application/json", body, counts, log)


def replay(platform: Platform, request: WebhookRequest, ctx: ReplayContext) -> Made:
    """An archived request's messages, made again (`intake.reconciliation`)."""
    items = _parsed(platform, ctx.policy, request.body, ctx.receipt_id, ctx.received_at, ctx.archive_key)
    return Made([item for item in items if isinstance(item, InboundMessage)])


def _parsed(
    platform: Platform, policy: Policy, body: bytes, receipt_id: str, received_at: datetime, archive_key: str
) -> list[Parsed]:
    """`parse` routed by the channel's intake.yaml section; without one, by an empty section (each message unrouted)."""
    section = policy.section(platform.provider) or platform.section_type()
    return parse(
        platform, body, policy=section, receipt_id=receipt_id, received_at=received_at, raw_archive_key=archive_key
    )


def sign(platform: Platform, sample: Sample, ctx: SignContext) -> Sample:
    """`X-Hub-Signature-256` as Meta makes it: over the exact bytes sent, with the channel's app secret."""
    return meta.sign(sample, ctx, platform.app_secret, platform.label)


def operation(platform: Platform, route: Route) -> dict[str, Any]:
    if route.method == "GET":
        return meta.handshake_operation(route, platform.verify_token)
    receipt = {
        "type": "object",
        "required": ["receipt", "queued"],
        "properties": {"receipt": {"type": "string"}, "queued": {"type": "integer", "minimum": 0}},
    }
    return meta.webhook_operation(
        route,
        f"{platform.label} messages, postbacks, reactions and receipts",
        f"X-Hub-Signature-256 (HMAC-SHA256 with the {platform.app_secret} secret over the raw body) is checked "
        "first; the request is then archived as received and its messages, reactions and delivery statuses queued; "
        "echoes of our own messages, receipts naming no message and events of unknown pages are skipped.",
        {
            "description": "Archived; messages and reactions queued.",
            "content": {"application/json": {"schema": receipt}},
        },
    )


# -------------------------------------------------------------------------------------- reply address


def address(platform: Platform, ctx: ReplyContext) -> ReplyWay:
    """The customer's page-scoped id answered from the page or account they wrote to, as their latest message
    recorded them, within Meta's window (`reply_window`: a `RESPONSE`, then `HUMAN_AGENT` where the channel's
    section allows it); else `MessagingWindowClosedError` (409)."""
    name = platform.provider
    user, account = ctx.latest.metadata.get("user_id"), ctx.latest.metadata.get("account_id")
    if not isinstance(user, str) or not user or not isinstance(account, str) or not account:
        raise ReplyUndeliverableError(f"the {name} message names no user or account to answer with")
    section = ctx.policy.section(name)
    human_agent = section is not None and bool(section.human_agent_tag)
    window = reply_window(ctx.detail.last_inbound_at, ctx.now, human_agent=human_agent)
    if not window.open:
        raise MessagingWindowClosedError(name, window.closes_at, human_agent)
    return ReplyWay(name, name, user, account, tag=window.tag)


STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class ReplyWindow:
    """Whether a reply may go out now, and how: `tag` None is a plain `RESPONSE`; `HUMAN_AGENT` after 24 hours."""

    open: bool
    tag: str | None
    closes_at: datetime  # when the window that applies closes (or closed)


def reply_window(last_inbound_at: datetime, now: datetime, *, human_agent: bool) -> ReplyWindow:
    """Meta's rule for Messenger and Instagram: free replies for 24 hours after the customer's last message; then,
    when the policy allows it, up to 7 days with the `HUMAN_AGENT` tag (a person answering); then nothing."""
    standard = last_inbound_at + STANDARD_WINDOW
    if now < standard:
        return ReplyWindow(True, None, standard)
    if not human_agent:
        return ReplyWindow(False, None, standard)
    tagged = last_inbound_at + HUMAN_AGENT_WINDOW
    return ReplyWindow(now < tagged, HUMAN_AGENT, tagged)


# ------------------------------------------------------------------------------------------------ names


def named(
    message: InboundMessage,
    fetch: Callable[[str], Mapping[str, Any]],
    fields: str,
    name_of: Callable[[Mapping[str, Any]], str | None],
) -> InboundMessage:
    """The message with its sender's name from the Graph API (`fetch("{user id}?fields=…")`, the caller's client
    with its token), when it has none. A failed call or no name leaves it as it was: a name never holds a message
    back, and the worker runs this, never the receiver (which answers Meta at once)."""
    user = message.sender.user
    if message.sender.name is not None or user is None:
        return message
    try:
        profile = fetch(f"{quote(user.id, safe='')}?fields={fields}")
    except NameUnavailableError as error:
        logger.info("name not fetched", extra={"receipt_id": message.receipt_id, "reason": error.reason})
        return message
    name = name_of(profile)
    if name is None:
        return message
    sender = message.sender.model_copy(update={"name": name[:_MAX_NAME]})
    return message.model_copy(update={"sender": sender})


class NameUnavailableError(Exception):
    """The Graph API gave no profile (an error, a timeout, a user who does not share it): the reason, no data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ------------------------------------------------------------------------------------------------- send

# A file's media type → the Send API's attachment type (anything else goes as a file)
_SENT_KINDS = (("image/", "image"), ("video/", "video"), ("audio/", "audio"))


def send(platform: Platform, reply: OutboundReply, ctx: SendContext, token_name: str) -> Sent:
    """The Send API: `POST {graph}/{platform.sends_from}/messages`, bearer the token of the Page or account written
    to (`<token_name>_<its id>`, else `token_name`'s value, which serves every Page without one of its own), to
    `recipient.id` = `reply.to`. Inside the 24-hour window
    (`reply.tag` None) as a `RESPONSE`; after it, as a `MESSAGE_TAG` with the tag `intake.replies` chose
    (`HUMAN_AGENT`, up to 7 days). The text goes in as many messages as Meta's length
    limit needs, then each attachment by a link Meta fetches. The first message's id is the reply's; the others'
    are kept so that their receipts find it. A part that fails after the first went out is reported in the detail,
    not retried (the first would be sent twice)."""
    token = required_secret(ctx, token_name, account=reply.sender)  # the Page's own token, where it has one
    sender = platform.sends_from.format(account=quote(reply.sender, safe=""))
    url = f"{ctx.graph_api_url.rstrip('/')}/{sender}/messages"
    kind: dict[str, Any] = {"messaging_type": "RESPONSE"}
    if reply.tag is not None:
        kind = {"messaging_type": "MESSAGE_TAG", "tag": reply.tag}
    messages: list[dict[str, Any]] = [{"text": part} for part in text_parts(reply.text, platform.max_text_bytes)]
    for attachment in reply.attachments:
        link = ctx.media_url(attachment) if ctx.media_url is not None else None
        if link is None:
            raise SendFailedError(f"no link {platform.label} could fetch {attachment.filename} from", retryable=False)
        payload = {"type": _sent_kind(attachment.content_type), "payload": {"url": link, "is_reusable": False}}
        messages.append({"attachment": payload})
    ids: list[str] = []
    unsent: list[str] = []
    for message in messages:
        document = {"recipient": {"id": reply.to}, **kind, "message": message}
        try:
            sent = _post(platform, url, document, token, ctx.timeout_s)
        except SendFailedError as error:
            if not ids:
                raise
            unsent.append(error.reason)
            continue
        ids.append(sent)
    return Sent(platform.provider, ids[0], tuple(ids[1:]), detail={"unsent": unsent} if unsent else {})


def _post(platform: Platform, url: str, document: dict[str, Any], token: str, timeout_s: float) -> str:
    """One Send API call: the message's id, or `SendFailedError` with Meta's words; retryable when the HTTP status
    or Meta's error code says another try may pass (Meta answers rate limits and temporary faults with a 400)."""
    codes: list[Any] = []

    def describe(status: int, body: Any) -> str:
        error = jsonbody.member(body, "error") if isinstance(body, dict) else {}
        codes.append(error.get("code"))
        if not error:
            return f"the Graph API answered HTTP {status}"
        subcode = f"/{error['error_subcode']}" if error.get("error_subcode") is not None else ""
        words = jsonbody.text(error.get("message")) or "no message"
        return f"{platform.label} error {error.get('code', '?')}{subcode}: {words} (HTTP {status})"

    try:
        answer = post(url, document=document, bearer=token, timeout_s=timeout_s, describe=describe)
    except SendFailedError as error:
        if not error.retryable and codes and codes[-1] in _TRANSIENT_CODES:
            raise SendFailedError(error.reason, retryable=True) from None
        raise
    mid = jsonbody.text(answer.body.get("message_id")) if isinstance(answer.body, dict) else None
    if mid is None:
        raise SendFailedError(f"the Graph API answered HTTP {answer.status} without a message id", retryable=True)
    return mid


def text_parts(text: str, max_bytes: int) -> list[str]:
    """The text cut into parts of at most `max_bytes` of UTF-8, at the last line break or space before the limit
    (within a word only when it has none); an empty text is no part."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if len(rest.encode()) <= max_bytes:
            parts.append(rest)
            break
        cut = len(rest.encode()[:max_bytes].decode(errors="ignore"))
        space = max(rest.rfind("\n", 0, cut), rest.rfind(" ", 0, cut))
        end = space if space > 0 else cut
        parts.append(rest[:end].rstrip())
        rest = rest[end:].lstrip()
    return parts


def _sent_kind(content_type: str) -> str:
    bare = content_type.split(";", 1)[0].strip().lower()
    return next((kind for prefix, kind in _SENT_KINDS if bare.startswith(prefix)), "file")


# ---------------------------------------------------------------------------------------------- helpers


def _id(event: dict[str, Any], key: str) -> str | None:
    party = event.get(key)
    return jsonbody.text(party.get("id")) if isinstance(party, dict) else None


def _time(raw: Any, fallback: datetime) -> datetime:
    """Meta's `timestamp` and `time`: unix milliseconds (seconds, when the value is too small to be milliseconds);
    the fallback when it is missing or unreadable, so a redelivery maps the same."""
    text = jsonbody.text(raw)
    if text is None or not _UNIX.fullmatch(text):
        return fallback
    value = int(text)
    try:
        return datetime.fromtimestamp(value / 1000 if value >= 10**11 else value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return fallback


def _derived_id(kind: str, *parts: Any) -> str:
    """A stable id for an event Meta gives none (a reaction, an old postback): the same event redelivered has the
    same one, so it is recorded once."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:40]
    return f"{kind}:{digest}"


def prepared(
    section: str,
    token_name: str,
    named_by: Callable[[InboundMessage, Callable[[str], Mapping[str, Any]]], InboundMessage],
    message: InboundMessage,
    ctx: WorkerContext,
) -> InboundMessage:
    """The worker step of Messenger and Instagram (`Channel.prepare`): a new customer's name from the Graph API, when
    the channel's section asks for names (`fetch_names`) and the token is given; else the message as it is."""
    settings = ctx.policy.section(section)
    if settings is None or not settings.fetch_names or message.sender.name is not None or message.sender.user is None:
        return message
    token = ctx.api.secret(token_name, message.sender.user.account)  # the Page's own token, where it has one
    if token is None or not ctx.is_new():
        return message
    return named_by(message, partial(_profile, ctx.api.graph_api_url, token, ctx.api.timeout_s))


def _profile(graph_api_url: str, token: str, timeout_s: float, path: str) -> Mapping[str, Any]:
    """`GET {graph}/{path}` with the token: the JSON object, or `NameUnavailableError` with the reason (no data)."""
    request = urllib.request.Request(  # noqa: S310 - the configured Graph API root (https)
        f"{graph_api_url.rstrip('/')}/{path}", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - as above
            profile = json.loads(response.read(64 * 1024))
    except urllib.error.HTTPError as error:
        raise NameUnavailableError(f"the Graph API answered HTTP {error.code}") from None
    except (OSError, ValueError) as error:
        raise NameUnavailableError(type(error).__name__) from None
    if not isinstance(profile, dict):
        raise NameUnavailableError("the Graph API answered no object")
    return profile


# ------------------------------------------------------------------------------------------- the channel


def channel(
    platform: Platform,
    *,
    title: str,
    path: str,
    access_token: str,
    named: Callable[[InboundMessage, Callable[[str], Mapping[str, Any]]], InboundMessage],
    send: Callable[[OutboundReply, SendContext], Sent],
) -> contract.Channel:
    """A Messenger Platform channel as Messenger and Instagram both declare it: the handshake and the webhook at
    `path`, its intake.yaml section and samples named after its provider, its app secret and verify token checked by
    the receiver, its `access_token` in a secret of its own (`<label>Token`) read by the sender (`send`) and by ingest
    (`named`: a new customer's name, when the section's `fetch_names` asks for it), and Meta's 24-hour reply window."""
    provider, label = platform.provider, platform.label
    return contract.Channel(
        name=provider,
        title=title,
        section=provider,
        section_type=platform.section_type,
        kinds={provider: label},
        routes=meta.routes(label, path),
        receive=partial(receive, platform),
        operation=partial(operation, platform),
        sign=partial(sign, platform),
        replay=partial(replay, platform),
        webhook_secrets=lambda section: [platform.app_secret, platform.verify_token],
        teams=lambda section: section.named_teams(),
        setup=lambda section: [
            (
                f"{label}WebhookUrl",
                path,
                f"The Meta app's {label} webhook callback URL (verify token: {platform.verify_token})",
            )
        ],
        samples=provider,
        api_secrets=(access_token,),
        api_readers=("sender", "ingest"),  # replies; names (`fetch_names`)
        prepare=partial(prepared, provider, access_token, named),
        api_secret_id=f"{label}Token",
        address=partial(address, platform),
        send=send,
        reply_windows={provider: STANDARD_WINDOW},
    )
