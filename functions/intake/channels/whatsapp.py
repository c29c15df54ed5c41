"""WhatsApp Cloud API (Meta): the subscription handshake, signed webhooks, and what they carry.

handshake → verify → parse. The receiver answers Meta's `GET` with `handshake`, checks each `POST` with
`verify` over the bytes as received, archives them, and enqueues what `parse` maps: customers' messages
(`InboundMessage`), their reactions (`Reaction`, never a ticket) and the statuses of messages we sent
(`StatusUpdate`, never a ticket). Media stay at Meta (`media_status="pending"`, the media id) until the worker
downloads them with the Graph API token; nothing here calls Meta.

Meta batches up to 1,000 updates in one request and retries it for up to 7 days, so a mapping depends on the
request alone: every time comes from the payload's own `timestamp`, never from when it arrived.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import Field

from intake import identity
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
from intake.channels.meta import WhatsAppTemplate
from intake.channels.sending import (
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
from intake.errors import FieldInvalidError, built_or_field_error
from intake.model import (
    Attachment,
    Channel,
    DeliveryState,
    DeliveryStatus,
    InboundMessage,
    Reaction,
    Sender,
    WebhookRequest,
)

PROVIDER = "whatsapp"
PATH = "/webhooks/whatsapp"
# The secrets' names: INTAKE_<name> locally, keys of the secrets JSON in AWS
APP_SECRET = "WHATSAPP_APP_SECRET"  # noqa: S105 - signs every POST
VERIFY_TOKEN = "WHATSAPP_VERIFY_TOKEN"  # noqa: S105 - the subscription handshake
ACCESS_TOKEN = "WHATSAPP_ACCESS_TOKEN"  # noqa: S105 - media downloads (the worker) and replies (the sender)
OBJECT = "whatsapp_business_account"
FIELD = "messages"
DEDUPE_WINDOW_S = 8 * 86400  # Meta retries for up to 7 days


# ------------------------------------------------------------------------- its intake.yaml section


class WhatsAppNumber(Strict):
    """One WhatsApp Business phone number (by its Graph API `phone_number_id`) and the team it serves."""

    team: Name
    display_phone_number: str | None = None


class WhatsApp(Strict):
    """The WhatsApp Cloud API. Secrets: INTAKE_WHATSAPP_APP_SECRET (signatures), INTAKE_WHATSAPP_VERIFY_TOKEN
    (the subscription handshake), INTAKE_WHATSAPP_ACCESS_TOKEN (media downloads, replies); Secrets Manager in AWS."""

    phone_numbers: dict[str, WhatsAppNumber] = Field(default_factory=dict)
    default_team: Name | None = None
    graph_api_url: str = "https://graph.facebook.com/v21.0"
    media_attempts: int = Field(default=4, ge=1, le=10)
    templates: dict[Name, WhatsAppTemplate] = Field(
        default_factory=dict, description="approved templates a reply may use, outside the 24-hour window too"
    )


MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
GENERIC_TYPE = "application/octet-stream"
# What WhatsApp accepts as media, with the extension people expect (mimetypes says .oga, .jpe or nothing)
_EXTENSIONS = {
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/mp4": ".m4a",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "video/3gpp": ".3gp",
    "video/mp4": ".mp4",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    GENERIC_TYPE: ".bin",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
}
_PLACEHOLDERS = {
    "image": "[image]",
    "audio": "[audio]",
    "voice": "[voice message]",
    "video": "[video]",
    "document": "[document]",
    "sticker": "[sticker]",
}

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_MAX_NAME = 200
_MAX_FILENAME = 255
_MAX_EMOJI = 32
_MAX_TEXT = 100_000


# ------------------------------------------------------------------------------------ handshake, verify


def handshake(query: Mapping[str, str], verify_token: str | None) -> str:
    """The `hub.challenge` for Meta's subscription request carrying our verify token (`intake.channels.meta`)."""
    return meta.handshake(query, verify_token, "WhatsApp")


def verify(request: WebhookRequest, app_secret: str | None) -> None:
    """Raise `SignatureInvalidError` unless `X-Hub-Signature-256` signs `request.body` (`intake.channels.meta`)."""
    meta.verify(request, app_secret, "WhatsApp")


# ------------------------------------------------------------------------------------------------ parse


@dataclass(frozen=True)
class StatusUpdate:
    """What happened to a message we sent (sent, delivered, read, failed…): never a ticket."""

    wamid: str
    status: str
    recipient: str | None
    at: datetime
    errors: list[dict[str, Any]]


Parsed = InboundMessage | Reaction | StatusUpdate


def parse(
    body: bytes,
    *,
    policy: Policy,
    receipt_id: str,
    received_at: datetime,
    raw_archive_key: str,
) -> list[Parsed]:
    """Every update of a webhook request, entry by entry and change by change, in the order given.

    Only `messages` changes are read (other fields carry nothing for a ticket). Unknown members never cause a
    refusal (the raw request is archived as received), and a message of an unknown type is kept, its whole
    object in `metadata`. `received_at` is used only for an update without a readable `timestamp`.
    A body that is not Meta's JSON raises `FieldInvalidError("(body)", …)`; an update that cannot be mapped
    (no id, no sender) raises `FieldInvalidError` naming Meta's field.
    """
    document = _document(body)
    found: list[Parsed] = []
    for entry in _updates(document, "entry"):
        for change in _updates(entry, "changes"):
            if change.get("field", FIELD) != FIELD:
                continue
            value = jsonbody.member(change, "value")
            mapper = _Change(value, policy, receipt_id, received_at, raw_archive_key)
            found.extend(mapper.message(message) for message in _updates(value, "messages"))
            found.extend(mapper.status(status) for status in _updates(value, "statuses"))
    return found


def _document(body: bytes) -> dict[str, Any]:
    data = jsonbody.document(body)
    if data.get("object") != OBJECT:
        raise FieldInvalidError("(body)", f"is not a WhatsApp webhook (object must be {OBJECT!r})")
    return data


class _Change:
    """One `changes[].value`: its business number, its contacts, and how its updates map."""

    def __init__(
        self, value: dict[str, Any], policy: Policy, receipt_id: str, received_at: datetime, raw_archive_key: str
    ) -> None:
        self.value = value
        self.policy = policy
        self.receipt_id = receipt_id
        self.received_at = received_at
        self.raw_archive_key = raw_archive_key
        self.metadata = jsonbody.member(value, "metadata")
        self.names = _profile_names(value)

    # ------------------------------------------------------------------ messages

    def message(self, message: dict[str, Any]) -> InboundMessage | Reaction:
        wamid = jsonbody.text(message.get("id"))
        if wamid is None:
            raise FieldInvalidError("messages.id", "is required")
        kind = jsonbody.text(message.get("type")) or "unknown"
        phone, user_id = self._sender_ids(message)
        sender = built_or_field_error(lambda: Sender(name=self._name(message), phone=phone), {"phone": "messages.from"})
        at = _timestamp(message.get("timestamp"), self.received_at)
        if kind == "reaction":
            return self._reaction(message, wamid, sender, at)
        text, attachments, extra = _content(kind, message)
        metadata = self._metadata(message, kind, user_id)
        metadata.update(extra)
        thread = phone if phone is not None else f"user:{user_id}"
        team = self._team()
        return built_or_field_error(
            lambda: InboundMessage(
                channel=Channel.WHATSAPP,
                provider=PROVIDER,
                provider_message_id=wamid,
                receipt_id=self.receipt_id,
                received_at=at,
                team=team,
                sender=sender,
                subject=None,
                text=text[:_MAX_TEXT],
                attachments=attachments,
                raw_archive_key=self.raw_archive_key,
                thread_key=f"{Channel.WHATSAPP.value}#{thread}",
                dedupe_window_s=DEDUPE_WINDOW_S,
                metadata=metadata,
            ),
            _MESSAGE_FIELDS,
        )

    def _reaction(self, message: dict[str, Any], wamid: str, sender: Sender, at: datetime) -> Reaction:
        reaction = jsonbody.member(message, "reaction")
        reacted_to = jsonbody.text(reaction.get("message_id"))
        if reacted_to is None:
            raise FieldInvalidError("reaction.message_id", "is required")
        emoji = jsonbody.text(reaction.get("emoji"))
        return built_or_field_error(
            lambda: Reaction(
                provider=PROVIDER,
                event_id=wamid,
                receipt_id=self.receipt_id,
                received_at=at,
                raw_archive_key=self.raw_archive_key,
                reacted_to=reacted_to,
                emoji=emoji[:_MAX_EMOJI] if emoji else None,  # empty: the customer removed their reaction
                sender=sender,
            ),
            {"event_id": "messages.id", "reacted_to": "reaction.message_id", "emoji": "reaction.emoji"},
        )

    def _sender_ids(self, message: dict[str, Any]) -> tuple[str | None, str | None]:
        """The sender's number in E.164 and their business-scoped user id (BSUID): at least one of them.

        Meta adds `from_user_id` to every message and may leave out `from` for a user who chose a username.
        """
        raw = message.get("from")
        phone = identity.phone(jsonbody.text(raw), bare_digits=True)  # a wa_id: digits, country code first
        user_id = jsonbody.text(message.get("from_user_id"))
        if phone is None and user_id is None:
            reason = "is required" if raw is None else "is not a phone number, and from_user_id is not given"
            raise FieldInvalidError("messages.from", reason)
        return phone, user_id

    def _name(self, message: dict[str, Any]) -> str | None:
        for key in (jsonbody.text(message.get("from")), jsonbody.text(message.get("from_user_id"))):
            if key is not None and key in self.names:
                return self.names[key][:_MAX_NAME]
        return None

    def _metadata(self, message: dict[str, Any], kind: str, user_id: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"type": kind}
        wa_id = jsonbody.text(message.get("from"))
        if wa_id is not None:
            metadata["wa_id"] = wa_id
        if user_id is not None:
            metadata["user_id"] = user_id
        for ours, theirs in (("phone_number_id", "phone_number_id"), ("display_phone_number", "display_phone_number")):
            if self.metadata.get(theirs) is not None:
                metadata[ours] = self.metadata[theirs]
        for key in ("context", "referral", "identity", "group_id", "errors"):
            if message.get(key) is not None:
                metadata[key] = message[key]
        return metadata

    def _team(self) -> str:
        """The team of the business number the message was sent to, else the default WhatsApp team."""
        whatsapp = section(self.policy)
        number_id = self.metadata.get("phone_number_id")
        if whatsapp is not None:
            number = whatsapp.phone_numbers.get(number_id) if isinstance(number_id, str) else None
            if number is not None:
                return number.team
            if whatsapp.default_team is not None:
                return whatsapp.default_team
        reason = "is not one of the policy's WhatsApp numbers, and whatsapp.default_team is not set"
        raise FieldInvalidError("metadata.phone_number_id", reason)

    # ------------------------------------------------------------------ statuses

    def status(self, status: dict[str, Any]) -> StatusUpdate:
        wamid = jsonbody.text(status.get("id"))
        if wamid is None:
            raise FieldInvalidError("statuses.id", "is required")
        state = jsonbody.text(status.get("status"))
        if state is None:
            raise FieldInvalidError("statuses.status", "is required")
        errors = status.get("errors")
        return StatusUpdate(
            wamid=wamid,
            status=state.lower(),
            recipient=jsonbody.text(status.get("recipient_id")),
            at=_timestamp(status.get("timestamp"), self.received_at),
            errors=[error for error in errors if isinstance(error, dict)] if isinstance(errors, list) else [],
        )


# Our field → Meta's, so that a value the model refuses is reported under the name Meta uses
_MESSAGE_FIELDS = {
    "provider_message_id": "messages.id",
    "phone": "messages.from",
    "name": "contacts.profile.name",
    "thread_key": "messages.from",
    "team": "metadata.phone_number_id",
}


def _profile_names(value: dict[str, Any]) -> dict[str, str]:
    """`contacts[]` profile names by wa_id and by BSUID (`user_id`)."""
    names: dict[str, str] = {}
    for contact in jsonbody.members(value, "contacts"):
        name = jsonbody.text(jsonbody.member(contact, "profile").get("name"))
        if name is None:
            continue
        for key in ("wa_id", "user_id"):
            found = jsonbody.text(contact.get(key))
            if found is not None:
                names.setdefault(found, name)
    return names


# -------------------------------------------------------------------------------------- message content


def _content(kind: str, message: dict[str, Any]) -> tuple[str, tuple[Attachment, ...], dict[str, Any]]:
    """The text an agent reads, the attachments, and what metadata this type adds."""
    typed = message.get(kind)
    body = typed if isinstance(typed, dict) else {}
    if kind == "text":
        return jsonbody.text(body.get("body")) or "", (), {}
    if kind in MEDIA_TYPES:
        return _media(kind, body)
    if kind == "location":
        return _location(body), (), {"location": body}
    if kind == "contacts":
        shared = [contact for contact in typed if isinstance(contact, dict)] if isinstance(typed, list) else []
        return _contacts(shared), (), {"contacts": typed}
    if kind == "interactive":
        return _interactive(body)
    if kind == "button":
        text = jsonbody.text(body.get("text")) or "[button]"
        return text, (), {"button": {"text": body.get("text"), "payload": body.get("payload")}}
    if kind == "order":
        return _order(body), (), {"order": body}
    if kind == "system":
        return _system(body)
    return _unsupported(kind, typed, message)


def _media(kind: str, media: dict[str, Any]) -> tuple[str, tuple[Attachment, ...], dict[str, Any]]:
    extra: dict[str, Any] = {}
    caption = jsonbody.text(media.get("caption"))
    voice = kind == "audio" and media.get("voice") is True
    placeholder = _PLACEHOLDERS["voice" if voice else kind]
    if voice:
        extra["voice"] = True
    if kind == "sticker" and isinstance(media.get("animated"), bool):
        extra["animated"] = media["animated"]
    media_id = jsonbody.text(media.get("id"))
    if media_id is None:  # nothing to download: the agent still sees what was sent
        extra[kind] = media
        return caption or placeholder, (), extra
    content_type = (jsonbody.text(media.get("mime_type")) or GENERIC_TYPE).lower()
    filename = jsonbody.text(media.get("filename")) if kind == "document" else None
    if kind == "document" and filename is not None:
        placeholder = f"[document: {filename}]"
    sha256 = _sha256_hex(media.get("sha256"))
    if sha256 is None and media.get("sha256") is not None:
        extra["media_sha256"] = media["sha256"]  # kept as sent; the download is then not checked
    attachment = built_or_field_error(
        lambda: Attachment(
            filename=(filename or _media_filename(media_id, content_type))[:_MAX_FILENAME],
            content_type=content_type,
            sha256=sha256,
            media_id=media_id,
            caption=caption,
            media_status="pending",
        ),
        {"filename": f"{kind}.filename", "content_type": f"{kind}.mime_type", "media_id": f"{kind}.id"},
    )
    return caption or placeholder, (attachment,), extra


def _media_filename(media_id: str, content_type: str) -> str:
    bare = content_type.split(";", 1)[0].strip()
    extension = _EXTENSIONS.get(bare) or mimetypes.guess_extension(bare) or ""
    return f"{media_id}{extension}"


def _sha256_hex(raw: Any) -> str | None:
    """A media's sha256 as lowercase hex. Meta's webhooks send it base64-encoded (44 characters ending in
    `=`), the Graph API's media endpoint as hex: both are read; anything else is None."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if _HEX_SHA256.fullmatch(text):
        return text.lower()
    standard = text.replace("-", "+").replace("_", "/")
    try:
        digest = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) == 32 else None


def _location(location: dict[str, Any]) -> str:
    """A shared location as text an agent can read and open: name, address, coordinates, a map link."""
    place = ", ".join(
        part for part in (jsonbody.text(location.get("name")), jsonbody.text(location.get("address"))) if part
    )
    lines = [f"Shared location: {place}" if place else "Shared location"]
    latitude, longitude = _coordinate(location.get("latitude"), 90), _coordinate(location.get("longitude"), 180)
    if latitude is not None and longitude is not None:
        lines.append(f"Coordinates: {latitude}, {longitude}")
        lines.append(f"Map: https://www.google.com/maps/search/?api=1&query={latitude},{longitude}")
    link = jsonbody.text(location.get("url"))
    if link is not None:
        lines.append(f"Link: {link}")
    return "\n".join(lines)


def _coordinate(raw: Any, limit: float) -> str | None:
    """Degrees as Meta gave them (a JSON number), when they are a latitude or longitude at all."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value) or abs(value) > limit:
        return None
    return raw.strip() if isinstance(raw, str) else str(raw)


def _contacts(shared: list[dict[str, Any]]) -> str:
    """Shared contact cards as lines: the name, then each phone and email."""
    cards = []
    for contact in shared:
        name = jsonbody.member(contact, "name")
        full = jsonbody.text(name.get("formatted_name")) or " ".join(
            part for part in (jsonbody.text(name.get("first_name")), jsonbody.text(name.get("last_name"))) if part
        )
        lines = [f"Shared contact: {full or '(no name)'}"]
        company = jsonbody.text(jsonbody.member(contact, "org").get("company"))
        if company is not None:
            lines.append(f"Company: {company}")
        for phone in jsonbody.members(contact, "phones"):
            number = jsonbody.text(phone.get("phone")) or jsonbody.text(phone.get("wa_id"))
            if number is not None:
                label = jsonbody.text(phone.get("type"))
                lines.append(f"Phone: {number}" + (f" ({label})" if label else ""))
        for email in jsonbody.members(contact, "emails"):
            address = jsonbody.text(email.get("email"))
            if address is not None:
                label = jsonbody.text(email.get("type"))
                lines.append(f"Email: {address}" + (f" ({label})" if label else ""))
        cards.append("\n".join(lines))
    return "\n\n".join(cards) or "[shared contacts]"


def _interactive(interactive: dict[str, Any]) -> tuple[str, tuple[Attachment, ...], dict[str, Any]]:
    """A reply to one of our interactive messages: the title the customer tapped; its id for automations."""
    kind = jsonbody.text(interactive.get("type")) or "unknown"
    reply = jsonbody.member(interactive, kind)
    if kind in ("button_reply", "list_reply"):
        title = jsonbody.text(reply.get("title"))
        description = jsonbody.text(reply.get("description"))
        text = "\n".join(part for part in (title, description) if part) or f"[{kind.replace('_', ' ')}]"
        picked = {"type": kind, "id": reply.get("id"), "title": reply.get("title")}
        if description is not None:
            picked["description"] = description
        return text, (), {"interactive": picked}
    if kind == "nfm_reply":  # a WhatsApp Flow the customer completed
        return jsonbody.text(reply.get("body")) or "[form reply]", (), {"interactive": interactive}
    return f"[interactive reply: {kind}]", (), {"interactive": interactive}


def _order(order: dict[str, Any]) -> str:
    """An order from our catalog: each item, its quantity and unit price, the total, and the customer's note."""
    catalog = jsonbody.text(order.get("catalog_id"))
    lines = [f"Order from catalog {catalog}:" if catalog else "Order:"]
    totals: dict[str, Decimal] = {}
    for item in jsonbody.members(order, "product_items"):
        product = jsonbody.text(item.get("product_retailer_id")) or "(unknown product)"
        quantity, price = _number(item.get("quantity")), _number(item.get("item_price"))
        currency = jsonbody.text(item.get("currency")) or ""
        line = f"- {product} x {_shown(item.get('quantity'))}"
        if item.get("item_price") is not None:
            line += f" @ {_shown(item.get('item_price'))} {currency}".rstrip()
        lines.append(line)
        if quantity is not None and price is not None:
            totals[currency] = totals.get(currency, Decimal(0)) + quantity * price
    if totals:
        lines.append("Total: " + ", ".join(f"{amount:f} {currency}".rstrip() for currency, amount in totals.items()))
    note = jsonbody.text(order.get("text"))
    if note is not None:
        lines.append(note)
    return "\n".join(lines)


def _number(raw: Any) -> Decimal | None:
    """A JSON number as an exact decimal, within what a price or a quantity can be."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() and -12 <= value.adjusted() <= 15 else None


def _shown(raw: Any) -> str:
    if raw is None:
        return "?"
    return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)


def _system(system: dict[str, Any]) -> tuple[str, tuple[Attachment, ...], dict[str, Any]]:
    """A notice from WhatsApp about the customer (a new number, a new user id): readable, and the new ids kept."""
    kind = jsonbody.text(system.get("type")) or "system"
    extra: dict[str, Any] = {"system": system}
    new_wa_id = system.get("wa_id") or system.get("new_wa_id")  # new_wa_id: before Graph API v12
    if new_wa_id is not None:
        extra["new_wa_id"] = str(new_wa_id) if isinstance(new_wa_id, int | str) else new_wa_id
    text = jsonbody.text(system.get("body"))
    if text is None:
        text = f"[system: {kind.replace('_', ' ')}]"
        if isinstance(new_wa_id, int | str):
            text = f"[system: {kind.replace('_', ' ')}, new number +{new_wa_id}]"
    return text, (), extra


def _unsupported(kind: str, typed: Any, message: dict[str, Any]) -> tuple[str, tuple[Attachment, ...], dict[str, Any]]:
    """A type Cloud API does not support (`unsupported`, with its errors) or that we do not know yet: the
    agent sees that something was sent and what; the whole object is kept."""
    details = []
    if kind == "unsupported":
        inner = jsonbody.text(typed.get("type")) if isinstance(typed, dict) else None
        if inner is not None:
            details.append(inner.replace("_", " "))
    else:
        details.append(kind)
    for error in jsonbody.members(message, "errors"):
        reason = jsonbody.text(jsonbody.member(error, "error_data").get("details")) or jsonbody.text(error.get("title"))
        if reason is not None and reason not in details:
            details.append(reason)
    text = "[unsupported message: " + " — ".join(details) + "]" if details else "[unsupported message]"
    return text, (), {kind: typed} if typed is not None else {}


# ---------------------------------------------------------------------------------------------- helpers


def _updates(parent: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """`entry`, `changes`, `messages` or `statuses`: absent is none; anything but a list of objects is refused,
    since an update in it would be lost."""
    found = parent.get(key)
    if found is None:
        return []
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise FieldInvalidError(key, "must be a list of objects")
    return found


def _timestamp(raw: Any, fallback: datetime) -> datetime:
    """Meta's `timestamp` (unix seconds, as a string) in UTC; the fallback when it is missing or unreadable."""
    text = jsonbody.text(raw)
    if text is None or not _UNIX_SECONDS.fullmatch(text):
        return fallback
    try:
        return datetime.fromtimestamp(int(text), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return fallback


# ------------------------------------------------------------------------------------ replies and their statuses

_DELIVERY_STATES = {
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "failed": DeliveryState.FAILED,
}
# A file's media type → the Cloud API's message type (anything else goes as a document)
_SENT_MEDIA = {"image/jpeg": "image", "image/png": "image", "audio/": "audio", "video/": "video"}


def address(ctx: ReplyContext) -> ReplyWay:
    """The customer's WhatsApp id answered from our number they wrote to (its `phone_number_id`): free within 24
    hours of their last message, then only an approved template of `whatsapp.templates`."""
    to, number_id = ctx.latest.metadata.get("wa_id"), ctx.latest.metadata.get("phone_number_id")
    if not to or not number_id:
        raise ReplyUndeliverableError("the WhatsApp message names no wa_id or phone_number_id to answer with")
    section = ctx.policy.section(PROVIDER)
    template = meta.whatsapp_template(ctx, section.templates if section is not None else {})
    return ReplyWay(PROVIDER, Channel.WHATSAPP, str(to), str(number_id), template=template)


def send(reply: OutboundReply, ctx: SendContext) -> Sent:
    """`POST {graph}/{phone_number_id}/messages` with the access token as bearer: the text (or, outside the 24-hour
    window, the approved template with its body parameters), then each attachment as a media message by link. The
    first message's `wamid` is the reply's; the others' are kept too, so that their statuses find it. An attachment
    that fails after the text went out is reported in the detail, not retried (the text would be sent twice)."""
    token = required_secret(ctx, ACCESS_TOKEN)
    url = f"{ctx.graph_api_url.rstrip('/')}/{reply.sender}/messages"
    bodies: list[dict[str, Any]] = []
    if reply.template is not None:
        parameters = [{"type": "text", "text": value or "-"} for value in reply.template.parameters]
        template: dict[str, Any] = {"name": reply.template.name, "language": {"code": reply.template.language}}
        if parameters:
            template["components"] = [{"type": "body", "parameters": parameters}]
        bodies.append({"type": "template", "template": template})
    elif reply.text.strip():
        bodies.append({"type": "text", "text": {"preview_url": False, "body": reply.text}})
    for attachment in () if reply.template is not None else reply.attachments:
        link = ctx.media_url(attachment) if ctx.media_url is not None else None
        if link is None:
            raise SendFailedError(f"no link WhatsApp could fetch {attachment.filename} from", retryable=False)
        kind = _media_kind(attachment.content_type)
        media: dict[str, Any] = {"link": link}
        if kind == "document":
            media["filename"] = attachment.filename
        bodies.append({"type": kind, kind: media})
    ids: list[str] = []
    unsent: list[str] = []
    for body in bodies:
        document = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": reply.to, **body}
        try:
            answer = post(url, document=document, bearer=token, timeout_s=ctx.timeout_s, describe=_graph_error)
        except SendFailedError as error:
            if not ids:
                raise
            unsent.append(error.reason)
            continue
        sent = answer.body.get("messages") if isinstance(answer.body, dict) else None
        wamid = sent[0].get("id") if isinstance(sent, list) and sent and isinstance(sent[0], dict) else None
        if not isinstance(wamid, str) or not wamid:
            if not ids:
                reason = f"the Graph API answered HTTP {answer.status} without a message id"
                raise SendFailedError(reason, retryable=True)
            unsent.append("no message id")
            continue
        ids.append(wamid)
    return Sent(PROVIDER, ids[0], tuple(ids[1:]), detail={"unsent": unsent} if unsent else {})


def _media_kind(content_type: str) -> str:
    bare = content_type.split(";", 1)[0].strip().lower()
    for prefix, kind in _SENT_MEDIA.items():
        if bare == prefix or (prefix.endswith("/") and bare.startswith(prefix)):
            return kind
    return "document"


def _graph_error(status: int, body: Any) -> str:
    """The Graph API's `error` object (`message`, `code`, `error_subcode`, `error_data.details`) as one line."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"the Graph API answered HTTP {status}"
    details = jsonbody.text(jsonbody.member(error, "error_data").get("details"))
    words = "; ".join(part for part in (jsonbody.text(error.get("message")), details) if part)
    return f"WhatsApp error {error.get('code', '?')}: {words} (HTTP {status})"


def delivery_status(
    update: StatusUpdate, *, receipt_id: str, received_at: datetime, raw_archive_key: str
) -> DeliveryStatus | None:
    """A `statuses` entry as the report that moves our reply forward; None for the ones that say nothing of its
    delivery (deleted, warning)."""
    state = _DELIVERY_STATES.get(update.status)
    if state is None:
        return None
    error = None
    if state is DeliveryState.FAILED:
        first = update.errors[0] if update.errors else {}
        details = jsonbody.text(jsonbody.member(first, "error_data").get("details"))
        words = "; ".join(part for part in (jsonbody.text(first.get("title")), details) if part)
        error = f"WhatsApp error {first.get('code', '?')}: {words}" if first else "WhatsApp failed"
    return DeliveryStatus(
        provider=PROVIDER,
        provider_message_id=update.wamid,
        state=state,
        at=update.at,
        error=error,
        receipt_id=receipt_id,
        received_at=received_at,
        raw_archive_key=raw_archive_key,
    )


# ------------------------------------------------------------------------------------------- the channel


def section(policy: Policy) -> WhatsApp | None:
    whatsapp: WhatsApp | None = policy.section("whatsapp")
    return whatsapp


def receive(route: Route, request: WebhookRequest, ctx: ReceiveContext) -> Answer:
    """The GET handshake; or Meta's batched webhook: signature over the raw bytes first, then the request is
    archived as received, even when its JSON turns out malformed (a 400 for Meta, and the bytes kept)."""
    from urllib.parse import parse_qsl

    from intake.inbox import raw_key

    if route.method == "GET":
        query = dict(parse_qsl(request.query, keep_blank_values=True))
        return Answer(200, "text/plain", handshake(query, ctx.secrets.get(VERIFY_TOKEN)), log={"handshake": True})
    contract.within(request, ctx.max_body_bytes)
    contract.provider_signed(lambda: verify(request, ctx.secrets.get(APP_SECRET)))
    archive_key = raw_key(PROVIDER, ctx.receipt_id, ctx.received_at)
    ctx.inbox.archive_request(archive_key, ctx.receipt_id, ctx.received_at, request)
    items = parse(
        request.body,
        policy=ctx.policy,
        receipt_id=ctx.receipt_id,
        received_at=ctx.received_at,
        raw_archive_key=archive_key,
    )
    queued = [item for item in items if not isinstance(item, StatusUpdate)]
    reports = [
        delivery_status(item, receipt_id=ctx.receipt_id, received_at=ctx.received_at, raw_archive_key=archive_key)
        for item in items
        if isinstance(item, StatusUpdate)
    ]
    ctx.inbox.enqueue_many([*queued, *(report for report in reports if report is not None)])
    counts = {"WhatsAppQueued": len(queued), "DeliveryStatusRecorded": len(items) - len(queued)}
    body = json.dumps({"receipt": ctx.receipt_id, "queued": len(queued)})
    return Answer(200, "application/json", body, counts, {"queued": len(queued), "statuses": len(reports)})


def replay(request: WebhookRequest, ctx: ReplayContext) -> Made:
    parsed = parse(
        request.body,
        policy=ctx.policy,
        receipt_id=ctx.receipt_id,
        received_at=ctx.received_at,
        raw_archive_key=ctx.archive_key,
    )
    return Made([item for item in parsed if isinstance(item, InboundMessage)])


def sign(sample: Sample, ctx: SignContext) -> Sample:
    """`X-Hub-Signature-256` as Meta makes it: over the exact bytes sent, with the app secret."""
    return meta.sign(sample, ctx, APP_SECRET, "WhatsApp")


def operation(route: Route) -> dict[str, Any]:
    from intake import openapi_parts as api

    if route.method == "GET":
        return meta.handshake_operation(route, VERIFY_TOKEN, "the token set in Meta's app")
    return meta.webhook_operation(
        route,
        "WhatsApp Cloud API messages, reactions and delivery statuses",
        "X-Hub-Signature-256 (HMAC-SHA256 with the WHATSAPP_APP_SECRET secret over the raw body) is checked first; "
        "the request is then archived as received (even when its JSON turns out malformed) and its messages and "
        "reactions queued.",
        api.json_response("Archived; messages and reactions queued.", api.REF + "WhatsAppReceipt"),
    )


def prepare(message: InboundMessage, ctx: WorkerContext) -> InboundMessage:
    """The media a customer sent, which Meta only references: downloaded into the archive with the access token
    (`intake.media`); left pending without the token or the section, or when the message is not new."""
    from intake.media import fetch_media, graph_fetcher

    whatsapp, token = section(ctx.policy), ctx.api.secret(ACCESS_TOKEN)
    pending = any(a.media_status == "pending" for a in message.attachments)
    if whatsapp is None or token is None or not pending or not ctx.is_new():
        return message
    fetch = graph_fetcher(whatsapp.graph_api_url, token, timeout_s=2.5)  # the worst case fits the 30 s function
    return fetch_media(message, fetch=fetch, put=ctx.put, attempts=whatsapp.media_attempts)


def _teams(whatsapp: WhatsApp) -> list[tuple[str, str]]:
    numbers = ((f"phone_numbers.{n}.team", number.team) for n, number in whatsapp.phone_numbers.items())
    return contract.named_teams(numbers, whatsapp.default_team)


CHANNEL = contract.Channel(
    name=PROVIDER,
    title="WhatsApp Cloud API",
    section="whatsapp",
    section_type=WhatsApp,
    kinds={Channel.WHATSAPP: "WhatsApp"},
    routes=meta.routes("WhatsApp", PATH),
    receive=receive,
    operation=operation,
    sign=sign,
    replay=replay,
    webhook_secrets=lambda whatsapp: [APP_SECRET, VERIFY_TOKEN],
    teams=_teams,
    setup=lambda whatsapp: [
        (
            "WhatsAppWebhookUrl",
            PATH,
            "The Meta app's WhatsApp webhook callback URL (verify token: WHATSAPP_VERIFY_TOKEN)",
        )
    ],
    samples="whatsapp",
    api_secrets=(ACCESS_TOKEN,),
    api_readers=("sender", "ingest"),  # replies; media downloads
    prepare=prepare,
    api_secret_id="WhatsAppToken",  # noqa: S106 - the secret's construct id
    address=address,
    send=send,
    reply_windows={Channel.WHATSAPP: meta.WHATSAPP_REPLY_WINDOW},
)
