"""Twilio: phone calls and voicemails (Programmable Voice), SMS/MMS and WhatsApp (Programmable Messaging).

verify → params → map. The receiver verifies the signature over the URL Twilio requested, archives the
raw request, answers with TwiML (`answer_call`, `after_recording`, `EMPTY_TWIML`) and enqueues what
`call_event` or `message` maps. Nothing here calls Twilio: it gives up on a webhook after 15 s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, parse_qsl, quote
from xml.etree import ElementTree as ET

from pydantic import Field, StringConstraints, model_validator

from intake import identity
from intake.channels import contract, jsonbody, meta, signatures
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
    OutboundReply,
    ReplyUndeliverableError,
    ReplyWay,
    SendContext,
    SendFailedError,
    Sent,
    TemplatelessWindowClosedError,
    post,
    required_secret,
)
from intake.config import Name, Policy, Strict, default_model
from intake.errors import (
    FieldInvalidError,
    PayloadTooLargeError,
    SignatureInvalidError,
    UnsupportedMediaTypeError,
    WebhookSignatureInvalidError,
    built_or_field_error,
)
from intake.model import (
    Attachment,
    CallEvent,
    CallEventKind,
    Channel,
    DeliveryState,
    DeliveryStatus,
    InboundMessage,
    Recording,
    Sender,
    Transcript,
    WebhookRequest,
    safe_filename,
)
from intake.observability import logger
from intake.resources import ARCHIVE

PROVIDER = "twilio"
TOKEN_SECRET = "TWILIO_AUTH_TOKEN"  # noqa: S105 - the secret's name: INTAKE_TWILIO_AUTH_TOKEN locally
SIGNATURE_HEADER = "x-twilio-signature"
VOICE_PATH = "/webhooks/twilio/voice"
STATUS_PATH = f"{VOICE_PATH}/status"
RECORDING_PATH = f"{VOICE_PATH}/recording"
TRANSCRIPTION_PATH = f"{VOICE_PATH}/transcription"
MESSAGING_PATH = "/webhooks/twilio/messaging"

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MEDIA_TYPES = [FORM, JSON]
DEDUPE_WINDOW_S = 8 * 86400


# ------------------------------------------------------------------------- its intake.yaml section


class Greeting(Strict):
    """What a caller hears before the beep, read by Twilio's <Say>."""

    open: str = "Thank you for calling. Please leave a message after the tone and we will call you back."
    closed: str = "We are closed right now. Please leave a message after the tone and we will call you back."
    language: str = "en-US"
    voice: str = "Polly.Joanna"


class TwilioNumber(Strict):
    """One of our Twilio numbers: which team its calls and messages go to, and what callers hear."""

    team: Name
    greeting: Greeting | None = None


class Twilio(Strict):
    """Phone calls, voicemails, SMS/MMS and WhatsApp through Twilio. Numbers in E.164."""

    numbers: dict[Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")], TwilioNumber] = Field(
        default_factory=dict
    )
    default_team: Name | None = Field(default=None, description="for numbers not listed")
    greeting: Greeting = default_model(Greeting)
    max_recording_s: int = Field(default=120, ge=5, le=3600)
    transcribe: bool = True

    @model_validator(mode="after")
    def _transcribable(self) -> Twilio:
        if self.transcribe and self.max_recording_s > 120:
            raise ValueError("twilio.max_recording_s: Twilio transcribes recordings of at most 120 s")
        return self


# Outbound message states a status callback reports; an inbound message arrives as `received`
MESSAGE_STATUSES = frozenset(
    {
        "queued",
        "accepted",
        "scheduled",
        "sending",
        "sent",
        "delivered",
        "read",
        "failed",
        "undelivered",
        "canceled",
        "partially_delivered",
    }
)
# A caller who withholds their number: as words, or as the numbers that spell them on a keypad
WITHHELD_CALLER_IDS = frozenset(
    {
        "",
        "anonymous",
        "restricted",
        "unknown",
        "unavailable",
        "private",
        "blocked",
        "+266696687",  # ANONYMOUS
        "+7378742833",  # RESTRICTED
        "+8656696",  # UNKNOWN
        "+86282452253",  # UNAVAILABLE
    }
)

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_MAX_NAME = 200
_MAX_CALLED = 64


# ------------------------------------------------------------------------------ verify and parse


def signed_urls(public_base_url: str, request: WebhookRequest) -> list[str]:
    """The URL Twilio requested (our public base URL + path + query, as received) and its variant
    with or without the scheme's default port, since Twilio may have signed either."""
    url = public_base_url.rstrip("/") + request.path + (f"?{request.query}" if request.query else "")
    return signatures.twilio_url_variants(url)


def verify(request: WebhookRequest, token: str | None, public_base_url: str) -> None:
    """Raise `SignatureInvalidError` unless `X-Twilio-Signature` proves Twilio sent this request.

    A form body is signed over URL + params; a JSON body over the URL alone, whose `bodySHA256`
    query parameter must be the body's hash. A body that cannot be read cannot be verified either.
    """
    if not token:
        raise SignatureInvalidError("no Twilio auth token is configured")
    signature = request.header(SIGNATURE_HEADER)
    if not signature:
        raise SignatureInvalidError("X-Twilio-Signature is required")
    urls = signed_urls(public_base_url, request)
    if "bodySHA256" in parse_qs(request.query, keep_blank_values=True):
        signatures.verify_twilio_body(token, urls, request.body, signature)
        return
    if request.media_type != FORM:
        raise SignatureInvalidError(f"a {request.media_type or 'body without a type'} is signed only with bodySHA256")
    try:
        pairs = params(request)
    except FieldInvalidError:
        raise SignatureInvalidError("the body is not UTF-8 form parameters, so its signature cannot match") from None
    signatures.verify_twilio(token, urls, pairs, signature)


def params(request: WebhookRequest) -> list[tuple[str, str]]:
    """The request's parameters in order, repeated names kept: a form body, or a JSON object's members
    (strings as they are, other values as JSON text, nulls left out)."""
    media_type = request.media_type
    if media_type == FORM:
        try:
            return parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise FieldInvalidError("(body)", "is not UTF-8") from None
    if media_type == JSON:
        data = jsonbody.document(request.body)
        return [(str(k), _json_text(v)) for k, v in data.items() if v is not None]
    raise UnsupportedMediaTypeError("content type", media_type, MEDIA_TYPES)


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# ------------------------------------------------------------------------------------------ TwiML


def _twiml(*verbs: ET.Element) -> str:
    response = ET.Element("Response")
    response.extend(verbs)
    return _XML_DECLARATION + ET.tostring(response, encoding="unicode")


def _say(text: str, greeting: Greeting) -> ET.Element:
    say = ET.Element("Say", {"language": greeting.language, "voice": greeting.voice})
    say.text = text
    return say


EMPTY_TWIML = _twiml()

# What callers hear when the recording ends, in the greeting's language (English otherwise)
_GOODBYE = {
    "en": "We did not hear a message. Goodbye.",
    "fr": "Nous n'avons pas entendu de message. Au revoir.",
    "de": "Wir haben keine Nachricht gehört. Auf Wiederhören.",
    "es": "No hemos oído ningún mensaje. Adiós.",
    "it": "Non abbiamo sentito alcun messaggio. Arrivederci.",
    "nl": "We hebben geen bericht gehoord. Tot ziens.",
    "pt": "Não ouvimos nenhuma mensagem. Adeus.",
}
_THANKS = {
    "en": "Thank you, we have your message. Goodbye.",
    "fr": "Merci, nous avons bien reçu votre message. Au revoir.",
    "de": "Danke, wir haben Ihre Nachricht erhalten. Auf Wiederhören.",
    "es": "Gracias, hemos recibido su mensaje. Adiós.",
    "it": "Grazie, abbiamo ricevuto il suo messaggio. Arrivederci.",
    "nl": "Bedankt, we hebben uw bericht ontvangen. Tot ziens.",
    "pt": "Obrigado, recebemos a sua mensagem. Adeus.",
}


def _in_language(texts: dict[str, str], language: str) -> str:
    return texts.get(language.split("-", 1)[0].lower(), texts["en"])


def greeting_for(form: Mapping[str, str], policy: Policy) -> Greeting:
    """The called number's greeting, else the policy's Twilio greeting."""
    twilio = section(policy) or Twilio()
    number = twilio.numbers.get(_bare(form.get("To", "")))
    return number.greeting if number is not None and number.greeting is not None else twilio.greeting


def answer_call(form: Mapping[str, str], policy: Policy, now: datetime, public_base_url: str, is_open: bool) -> str:
    """TwiML for an incoming call: the greeting (open or closed), then a voicemail with transcription.

    Twilio requests `<Record action>` when a message was recorded; when the recording is empty it
    goes on with the verbs after `<Record>` instead, so those say goodbye and hang up. The caller
    decides `is_open` from the team's calendar; `now` is there for greetings that come to depend on it.
    """
    twilio = section(policy) or Twilio()
    greeting = greeting_for(form, policy)
    base = public_base_url.rstrip("/")
    record = {
        "action": base + RECORDING_PATH,
        "method": "POST",
        "maxLength": str(twilio.max_recording_s),
        "playBeep": "true",
        "recordingStatusCallback": base + RECORDING_PATH,
        "recordingStatusCallbackMethod": "POST",
        "recordingStatusCallbackEvent": "completed",
        "transcribe": "true" if twilio.transcribe else "false",
    }
    if twilio.transcribe:
        record["transcribeCallback"] = base + TRANSCRIPTION_PATH
    return _twiml(
        _say(greeting.open if is_open else greeting.closed, greeting),
        ET.Element("Record", record),
        _say(_in_language(_GOODBYE, greeting.language), greeting),
        ET.Element("Hangup"),
    )


def after_recording(form: Mapping[str, str] | None = None, policy: Policy | None = None) -> str:
    """TwiML answered to `<Record action>`: thanks and hang up, in the called number's greeting's
    language and voice when the request and the policy are given (the default greeting's otherwise)."""
    greeting = greeting_for(form, policy) if form is not None and policy is not None else Greeting()
    return _twiml(_say(_in_language(_THANKS, greeting.language), greeting), ET.Element("Hangup"))


# ------------------------------------------------------------------------------------------ calls

_CALL_METADATA = (
    "AccountSid",
    "ApiVersion",
    "Direction",
    "ForwardedFrom",
    "ParentCallSid",
    "StirVerstat",
    "FromCountry",
    "FromState",
    "FromCity",
    "ToCountry",
    "CallbackSource",
    "SequenceNumber",
    "Timestamp",
    "Digits",
    "RecordingStatus",
    "RecordingSource",
    "RecordingChannels",
    "RecordingStartTime",
    "TranscriptionUrl",
    "ErrorCode",
)
_RECORDING_SID = re.compile(r"/Recordings/(RE[0-9a-fA-F]{32})(?:\.\w+)?/?$")


def call_event(
    kind: CallEventKind,
    form: Mapping[str, str],
    *,
    policy: Policy,
    receipt_id: str,
    received_at: datetime,
    raw_archive_key: str,
) -> CallEvent:
    """One voice callback as a `CallEvent`; `event_id` is unique per distinct callback, so a retried
    callback repeats it and a different one (another status, the recording's action and its status
    callback) does not."""
    call_sid = _required(form, "CallSid")
    recording: Recording | None = None
    transcript: Transcript | None = None
    if kind is CallEventKind.STARTED:
        event_id = f"{call_sid}#started"
    elif kind is CallEventKind.RECORDING:
        recording = _recording(form, required=True)
        assert recording is not None
        event_id = f"{recording.sid}#{_value(form, 'RecordingStatus') or 'action'}"
    elif kind is CallEventKind.TRANSCRIPTION:
        sid = _required(form, "TranscriptionSid")
        text = _value(form, "TranscriptionText")
        status = _value(form, "TranscriptionStatus") or ("completed" if text else "failed")
        transcript = built_or_field_error(lambda: Transcript(sid=sid, status=status, text=text), _TRANSCRIPT_PARAMS)
        recording = _recording(form, required=False)
        event_id = sid
    else:
        event_id = f"{call_sid}#status#{_required(form, 'CallStatus')}"
        recording = _recording(form, required=False)
    raw_from = form.get("From", "").strip()
    caller = _caller(raw_from)
    metadata = _picked(form, _CALL_METADATA)
    if caller is None and raw_from.lower() not in WITHHELD_CALLER_IDS:
        metadata["From"] = raw_from  # a SIP or client identity, kept for the agent
    called = _value(form, "To")
    return built_or_field_error(
        lambda: CallEvent(
            kind=kind,
            provider=PROVIDER,
            call_sid=call_sid,
            event_id=event_id,
            receipt_id=receipt_id,
            received_at=received_at,
            raw_archive_key=raw_archive_key,
            team=_call_team(policy, called),
            caller=caller,
            caller_name=_clipped(_value(form, "CallerName"), _MAX_NAME),
            called=_clipped(called, _MAX_CALLED),
            recording=recording,
            transcript=transcript,
            call_status=_value(form, "CallStatus"),
            duration_s=_seconds(form, "CallDuration"),
            metadata=metadata,
        ),
        _CALL_PARAMS,
    )


def _recording(form: Mapping[str, str], *, required: bool) -> Recording | None:
    url = _value(form, "RecordingUrl")
    if url is None:
        if required:
            raise FieldInvalidError("RecordingUrl", "is required")
        return None
    sid = _value(form, "RecordingSid")
    if sid is None:  # the <Record> action may leave it out; the recording's URL ends with it
        found = _RECORDING_SID.search(url)
        if found is None:
            raise FieldInvalidError("RecordingSid", "is required when RecordingUrl does not end with it")
        sid = found.group(1)
    duration = _seconds(form, "RecordingDuration")
    return built_or_field_error(lambda: Recording(sid=sid, url=url, duration_s=duration), _RECORDING_PARAMS)


def _call_team(policy: Policy, called: str | None) -> str | None:
    if called is None:
        return None  # the recording status callback does not say which number was called
    twilio = section(policy) or Twilio()
    number = twilio.numbers.get(_bare(called))
    return number.team if number is not None else twilio.default_team


def _caller(raw: str) -> str | None:
    """A caller's number in E.164, or None when withheld or not a phone number (SIP, client)."""
    if raw.lower() in WITHHELD_CALLER_IDS:
        return None
    return identity.phone(_bare(raw))  # E.164 as Twilio gives it: possible, not checked against ranges


# --------------------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class MessageStatus:
    """A status callback about a message we sent: never a ticket, at most an update of that message."""

    message_sid: str
    status: str
    error_code: str | None


_MESSAGE_METADATA = (
    "AccountSid",
    "ApiVersion",
    "MessagingServiceSid",
    "To",
    "NumSegments",
    "NumMedia",
    "FromCountry",
    "FromState",
    "FromCity",
    "ToCountry",
    "WaId",
    "MessageType",
    "ButtonText",
    "ButtonPayload",
    "Forwarded",
    "FrequentlyForwarded",
    "OriginalRepliedMessageSid",
    "OriginalRepliedMessageSender",
    "ReferralSourceType",
    "ReferralSourceUrl",
    "ReferralHeadline",
    "ReferralBody",
    "ReferralCtwaClid",
)
_MEDIA_URL = re.compile(r"^MediaUrl(\d+)$")
_CHANNEL_PREFIX = re.compile(r"^([a-z]+):(.*)$")


def message(
    form: Mapping[str, str],
    *,
    policy: Policy,
    receipt_id: str,
    received_at: datetime,
    raw_archive_key: str,
) -> InboundMessage | MessageStatus:
    """An incoming SMS, MMS or WhatsApp message as an `InboundMessage`; a status callback (any status
    but `received`) as a `MessageStatus`, which never makes a ticket."""
    status = (_value(form, "MessageStatus") or _value(form, "SmsStatus") or "received").lower()
    if status != "received":
        message_sid = _message_sid(form)
        return MessageStatus(message_sid=message_sid, status=status, error_code=_value(form, "ErrorCode"))
    message_sid = _message_sid(form)
    raw_from = _required(form, "From")
    prefixed = _CHANNEL_PREFIX.match(raw_from)
    prefix = prefixed.group(1) if prefixed else None
    channel = Channel.WHATSAPP if prefix == "whatsapp" else Channel.SMS
    phone = identity.phone(_bare(raw_from))
    if phone is None:
        raise FieldInvalidError("From", "is not a phone number")
    metadata = _picked(form, _MESSAGE_METADATA)
    if prefix is not None and prefix != "whatsapp":
        metadata["ChannelPrefix"] = prefix  # e.g. RCS, kept with the SMS conversation of that number
    text = "\n\n".join(part for part in (_value(form, "Body"), _location(form)) if part)
    team = _message_team(policy, form.get("To", ""))
    return built_or_field_error(
        lambda: InboundMessage(
            channel=channel,
            provider=PROVIDER,
            provider_message_id=message_sid,
            receipt_id=receipt_id,
            received_at=received_at,
            team=team,
            sender=Sender(name=_clipped(_value(form, "ProfileName"), _MAX_NAME), phone=phone),
            subject=None,
            text=text,
            attachments=_attachments(form),
            raw_archive_key=raw_archive_key,
            thread_key=f"{channel.value}#{phone}",
            dedupe_window_s=DEDUPE_WINDOW_S,
            metadata=metadata,
        ),
        _MESSAGE_PARAMS,
    )


def _message_sid(form: Mapping[str, str]) -> str:
    sid = _value(form, "MessageSid") or _value(form, "SmsSid") or _value(form, "SmsMessageSid")
    if sid is None:
        raise FieldInvalidError("MessageSid", "is required")
    return sid


def _message_team(policy: Policy, to: str) -> str:
    twilio = section(policy) or Twilio()
    number = twilio.numbers.get(_bare(to))
    if number is not None:
        return number.team
    if twilio.default_team is not None:
        return twilio.default_team
    raise FieldInvalidError("To", "is not one of the policy's Twilio numbers, and twilio.default_team is not set")


def _attachments(form: Mapping[str, str]) -> tuple[Attachment, ...]:
    indexes = sorted(int(m.group(1)) for m in map(_MEDIA_URL.match, form) if m is not None)
    found = []
    for index in indexes:
        url = _value(form, f"MediaUrl{index}")
        if url is None:
            continue
        content_type = (_value(form, f"MediaContentType{index}") or "application/octet-stream").lower()
        found.append(Attachment(filename=_media_filename(url, content_type, index), content_type=content_type, url=url))
    return tuple(found)


def _media_filename(url: str, content_type: str, index: int) -> str:
    """`<MediaSid>.<ext>`: Twilio's media URLs end with the media's SID and carry no file name."""
    stem = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if not stem.startswith("ME"):
        stem = f"media-{index}"
    extension = mimetypes.guess_extension(content_type.split(";", 1)[0].strip()) or ""
    return safe_filename(stem + extension)


def _location(form: Mapping[str, str]) -> str | None:
    """A shared location as text an agent can read and open: name, address, coordinates, a map link."""
    latitude, longitude = _value(form, "Latitude"), _value(form, "Longitude")
    if latitude is None or longitude is None:
        return None
    place = ", ".join(part for part in (_value(form, "Label"), _value(form, "Address")) if part)
    lines = [f"Shared location: {place}" if place else "Shared location"]
    lat, lon = _coordinate(latitude, 90), _coordinate(longitude, 180)
    if lat is None or lon is None:
        lines.append(f"Coordinates: {latitude}, {longitude}")
    else:
        lines.append(f"Coordinates: {lat}, {lon}")
        lines.append(f"Map: https://www.google.com/maps/search/?api=1&query={lat},{lon}")
    return "\n".join(lines)


def _coordinate(raw: str, limit: float) -> str | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return raw.strip() if math.isfinite(value) and abs(value) <= limit else None


# ---------------------------------------------------------------------------------------- helpers


def _value(form: Mapping[str, str], name: str) -> str | None:
    found = form.get(name, "").strip()
    return found or None


def _required(form: Mapping[str, str], name: str) -> str:
    found = _value(form, name)
    if found is None:
        raise FieldInvalidError(name, "is required")
    return found


def _seconds(form: Mapping[str, str], name: str) -> int | None:
    raw = _value(form, name)
    if raw is None:
        return None
    try:
        seconds = int(raw)
    except ValueError:
        raise FieldInvalidError(name, "is not a whole number of seconds") from None
    return seconds if seconds >= 0 else None  # Twilio sends -1 when it has no duration


def _bare(address: str) -> str:
    """`whatsapp:+33…` → `+33…`: the address without its channel prefix."""
    found = _CHANNEL_PREFIX.match(address.strip())
    return found.group(2).strip() if found else address.strip()


def _clipped(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


def _picked(form: Mapping[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: form[name] for name in names if form.get(name, "").strip()}


# Our field → Twilio's parameter, so a value the model refuses is reported under Twilio's name
_RECORDING_PARAMS = {"sid": "RecordingSid", "url": "RecordingUrl", "duration_s": "RecordingDuration"}
_TRANSCRIPT_PARAMS = {"sid": "TranscriptionSid", "status": "TranscriptionStatus", "text": "TranscriptionText"}
_CALL_PARAMS = {
    "call_sid": "CallSid",
    "event_id": "CallSid",
    "caller": "From",
    "caller_name": "CallerName",
    "called": "To",
    "call_status": "CallStatus",
    "duration_s": "CallDuration",
}
_MESSAGE_PARAMS = {
    "provider_message_id": "MessageSid",
    "name": "ProfileName",
    "phone": "From",
    "text": "Body",
    "thread_key": "From",
}


# ------------------------------------------------------------------------------------ replies and their statuses

ACCOUNT_SID_SECRET = "TWILIO_ACCOUNT_SID"  # noqa: S105 - the secret's name: INTAKE_TWILIO_ACCOUNT_SID locally
# An API key (its SID and secret) authenticates the sender in place of the auth token, which stays the receiver's
# alone (it signs the webhooks); without one (locally, in tests) the account SID and auth token do.
API_KEY_SID_SECRET = "TWILIO_API_KEY_SID"  # noqa: S105 - a secret's name
API_KEY_SECRET = "TWILIO_API_KEY_SECRET"  # noqa: S105 - a secret's name
API_VERSION = "2010-04-01"
# Twilio's MessageStatus → ours; the others (queued, accepted, scheduled, sending) say nothing new
_DELIVERY_STATES = {
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "failed": DeliveryState.FAILED,
    "undelivered": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,
}


def address(ctx: ReplyContext) -> ReplyWay:
    """An SMS or WhatsApp message is answered from the number it was sent to (WhatsApp: within its 24-hour window;
    Twilio sends no templates); a voicemail by SMS to the caller, when their number is a mobile one."""
    latest = ctx.latest
    kind, _, number = ctx.detail.thread_key.partition("#")
    if latest.channel == Channel.PHONE:
        called = (latest.metadata.get("voice") or {}).get("called")
        if not number.startswith("+") or not called:
            raise ReplyUndeliverableError("the caller withheld their number: a voicemail can only be called back")
        if not identity.is_mobile(number):
            raise ReplyUndeliverableError(
                "the caller's number cannot receive text messages (not a mobile number): call them back"
            )
        return ReplyWay(PROVIDER, Channel.SMS, number, _bare(str(called)))
    if kind not in ("sms", "whatsapp") or not number.startswith("+"):
        raise ReplyUndeliverableError("the message names no number to answer")
    ours = latest.metadata.get("To")
    if not ours:
        raise ReplyUndeliverableError("the message does not say which of our numbers it was sent to")
    if kind == "whatsapp":
        _within_whatsapp_window(ctx)
        return ReplyWay(PROVIDER, Channel.WHATSAPP, number, _bare(str(ours)))
    return ReplyWay(PROVIDER, Channel.SMS, number, _bare(str(ours)))


def _within_whatsapp_window(ctx: ReplyContext) -> None:
    """WhatsApp's rule, through Twilio: free text and media for 24 hours after the customer's last message. Intake
    sends no template through Twilio (only through the Cloud API, `whatsapp.templates`): a template is refused, and
    after 24 hours nothing can go out (409)."""
    if ctx.template is not None:
        raise FieldInvalidError("template", "Intake sends no WhatsApp template through Twilio: leave it out")
    closes = ctx.detail.last_inbound_at + meta.WHATSAPP_REPLY_WINDOW
    if ctx.now >= closes:
        raise TemplatelessWindowClosedError(closes)


def send(reply: OutboundReply, ctx: SendContext) -> Sent:
    """An SMS/MMS, or a WhatsApp message, through the Messages API: `POST /2010-04-01/Accounts/{sid}/Messages.json`
    with basic auth (an API key's SID and secret, else the account SID and auth token), `To` and `From`
    (`whatsapp:`-prefixed on WhatsApp; From = the number the customer wrote to), `Body`, a `MediaUrl` per attachment,
    and `StatusCallback` = our messaging webhook, which Twilio signs as it signs every webhook. The answer's `sid` is
    what the status callbacks name."""
    account, credentials = _credentials(ctx)
    prefix = "whatsapp:" if reply.channel == Channel.WHATSAPP.value else ""
    form = [("To", prefix + reply.to), ("From", prefix + reply.sender)]
    if reply.text.strip():
        form.append(("Body", reply.text))
    for attachment in reply.attachments:
        url = ctx.media_url(attachment) if ctx.media_url is not None else None
        if url is None:
            raise SendFailedError(f"no link Twilio could fetch {attachment.filename} from", retryable=False)
        form.append(("MediaUrl", url))
    form.append(("StatusCallback", ctx.public_base_url.rstrip("/") + MESSAGING_PATH))
    url = f"{ctx.twilio_api_url.rstrip('/')}/{API_VERSION}/Accounts/{account}/Messages.json"
    answer = post(url, form=form, basic=credentials, timeout_s=ctx.timeout_s, describe=_twilio_error)
    document = answer.body if isinstance(answer.body, dict) else {}
    sid = document.get("sid")
    if not isinstance(sid, str) or not sid:
        raise SendFailedError(f"Twilio answered HTTP {answer.status} without a message sid", retryable=True)
    if document.get("status") in ("failed", "undelivered"):
        raise SendFailedError(_twilio_error(answer.status, document), retryable=False)
    return Sent(PROVIDER, sid, detail={"status": document.get("status")})


def _credentials(ctx: SendContext) -> tuple[str, tuple[str, str]]:
    """The account SID, and the basic credentials the REST API is called with: an API key's SID and secret, else the
    account SID and auth token; `SendFailedError` (for good) when there are none."""
    account = required_secret(ctx, ACCOUNT_SID_SECRET)
    key_sid, key_secret = ctx.secret(API_KEY_SID_SECRET), ctx.secret(API_KEY_SECRET)
    return account, (key_sid, key_secret) if key_sid and key_secret else (account, required_secret(ctx, TOKEN_SECRET))


# A voicemail Twilio records is at most an hour (`<Record maxLength>`): ~30 MB as MP3. Larger is not a recording.
MAX_RECORDING_BYTES = 64 * 1024 * 1024


def prepare_call(event: CallEvent, ctx: WorkerContext) -> CallEvent:
    """A voicemail's recording, which Twilio keeps behind the account's credentials (and deletes when the account's
    retention says): downloaded into our archive (`attachments/...`), so that agents play it from the console and
    it stays as long as the ticket. The media URL is built from the account and the recording's SID, never taken
    from the callback, so the credentials go to Twilio's API alone. Without credentials, or when the download fails,
    the message keeps Twilio's link (a warning names the call and the recording, never a number)."""
    recording = event.recording
    if event.kind != CallEventKind.RECORDING or recording is None or recording.s3_key is not None:
        return event  # a transcript's callback names the recording too: the recording's own callbacks fetch it
    if not ctx.is_new():
        return event
    from intake.media import MediaUnavailableError, download  # the worker's path only

    ids = {"call_sid": event.call_sid, "recording_sid": recording.sid}
    try:
        account, (user, password) = _credentials(ctx.api)
        path = f"{API_VERSION}/Accounts/{quote(account, safe='')}/Recordings/{quote(recording.sid, safe='')}.mp3"
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        url, limit = f"{ctx.api.twilio_api_url.rstrip('/')}/{path}", MAX_RECORDING_BYTES
        content, _ = download(url, basic, what="recording", timeout_s=ctx.api.timeout_s, max_bytes=limit)
    except (SendFailedError, MediaUnavailableError) as error:
        logger.warning("voicemail recording not archived: agents have Twilio's link", extra=ids | {"why": error.reason})
        return event
    # one key per recording: its two callbacks (the <Record> action and the status callback) write the same object
    archived = Attachment(
        filename=f"{recording.sid}.mp3",
        content_type="audio/mpeg",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        s3_key=f"{ARCHIVE.attachments_prefix}calls/{safe_filename(event.call_sid)}/{safe_filename(recording.sid)}.mp3",
    )
    ctx.put(archived, content)
    logger.info("voicemail recording archived", extra={**ids, "bytes": len(content)})
    kept = recording.model_copy(update={"s3_key": archived.s3_key, "size": len(content)})
    return event.model_copy(update={"recording": kept})


def _twilio_error(status: int, body: Any) -> str:
    """Twilio's error document (`code`, `message`, `more_info`) as one line."""
    if isinstance(body, dict) and (body.get("code") or body.get("error_code")):
        code = body.get("code") or body.get("error_code")
        text = body.get("message") or body.get("error_message") or ""
        return f"Twilio error {code}: {text} (HTTP {status})".replace(" : ", " ").strip()
    return f"Twilio answered HTTP {status}"


def delivery_status(
    status: MessageStatus, *, receipt_id: str, received_at: datetime, raw_archive_key: str
) -> DeliveryStatus | None:
    """A status callback as the report that moves our reply forward; None for the states that say nothing new."""
    state = _DELIVERY_STATES.get(status.status)
    if state is None:
        return None
    error = None
    if state is DeliveryState.FAILED:
        error = f"Twilio {status.status}" + (f": error {status.error_code}" if status.error_code else "")
    return DeliveryStatus(
        provider=PROVIDER,
        provider_message_id=status.message_sid,
        state=state,
        at=received_at,
        error=error,
        receipt_id=receipt_id,
        received_at=received_at,
        raw_archive_key=raw_archive_key,
    )


# ------------------------------------------------------------------------------------------- the channel


def section(policy: Policy) -> Twilio | None:
    twilio: Twilio | None = policy.section("twilio")
    return twilio


_CALL_EVENT = {
    VOICE_PATH: CallEventKind.STARTED,
    STATUS_PATH: CallEventKind.STATUS,
    RECORDING_PATH: CallEventKind.RECORDING,
    TRANSCRIPTION_PATH: CallEventKind.TRANSCRIPTION,
}


def receive(route: Route, request: WebhookRequest, ctx: ReceiveContext) -> Answer:
    """Twilio's voice and messaging webhooks: verify, map, archive, enqueue, answer TwiML. No call to Twilio:
    it gives up after 15 s, so everything that needs its API happens in the worker."""
    from intake.inbox import raw_key

    contract.within(request, ctx.max_body_bytes)
    contract.provider_signed(lambda: verify(request, ctx.secrets.get(TOKEN_SECRET), ctx.public_base_url))
    form = dict(params(request))
    item = twilio_item(route.path, form, policy=ctx.policy, receipt_id=ctx.receipt_id, received_at=ctx.received_at)
    answer = EMPTY_TWIML
    if route.path == VOICE_PATH and isinstance(item, CallEvent):
        answer = answer_call(form, ctx.policy, ctx.received_at, ctx.public_base_url, _is_open(ctx, item))
    elif route.path == RECORDING_PATH:
        answer = after_recording(form, ctx.policy)
    archive_key = raw_key(PROVIDER, ctx.receipt_id, ctx.received_at)
    ctx.inbox.archive_request(archive_key, ctx.receipt_id, ctx.received_at, request)
    log = {"twilio_route": route.path.removeprefix("/webhooks/twilio/")}
    if isinstance(item, MessageStatus):  # a report on a reply we sent: its state moves in the worker
        report = delivery_status(
            item, receipt_id=ctx.receipt_id, received_at=ctx.received_at, raw_archive_key=archive_key
        )
        if report is not None:
            ctx.inbox.enqueue(report)
        return Answer(200, "text/xml", answer, {"DeliveryStatusRecorded": 1}, {**log, "queued": False})
    ctx.inbox.enqueue(item)
    return Answer(200, "text/xml", answer, {"TwilioReceived": 1}, {**log, "queued": True})


def twilio_item(
    path: str, form: dict[str, str], *, policy: Policy, receipt_id: str, received_at: datetime
) -> InboundMessage | CallEvent | MessageStatus:
    """A verified Twilio callback's parameters as what it makes: a message, a call event, or a delivery status."""
    from intake.inbox import raw_key

    archive_key = raw_key(PROVIDER, receipt_id, received_at)
    if path == MESSAGING_PATH:
        return message(form, policy=policy, receipt_id=receipt_id, received_at=received_at, raw_archive_key=archive_key)
    return call_event(
        _CALL_EVENT[path],
        form,
        policy=policy,
        receipt_id=receipt_id,
        received_at=received_at,
        raw_archive_key=archive_key,
    )


def _is_open(ctx: ReceiveContext, event: CallEvent) -> bool:
    from intake.sla.calendar import calendar_for

    team = ctx.policy.teams.get(event.team or "")
    return team is None or calendar_for(team).is_open(ctx.received_at)


def replay(request: WebhookRequest, ctx: ReplayContext) -> Made:
    item = twilio_item(
        request.path, dict(params(request)), policy=ctx.policy, receipt_id=ctx.receipt_id, received_at=ctx.received_at
    )
    return Made([] if isinstance(item, MessageStatus) else [item])


def sign(sample: Sample, ctx: SignContext) -> Sample:
    """As Twilio signs: the URL + form parameters, or (a JSON body) the URL with `bodySHA256` alone."""
    token = contract.needs_secret(ctx.secrets, TOKEN_SECRET, "Twilio")
    path, headers = sample.path, dict(sample.headers)
    if headers.get("content-type", "").startswith(JSON):
        path += ("&" if "?" in path else "?") + "bodySHA256=" + signatures.twilio_body_hash(sample.body)
        pairs: list[tuple[str, str]] = []
    else:
        pairs = parse_qsl(sample.body.decode(), keep_blank_values=True)
    headers[SIGNATURE_HEADER] = signatures.twilio_signature(token, ctx.public_base_url.rstrip("/") + path, pairs)
    return Sample(path, headers, sample.body)


_ROUTES = {
    VOICE_PATH: ("twilioVoice", "A call to one of the policy's numbers: answered with TwiML (greeting, voicemail)"),
    STATUS_PATH: ("twilioVoiceStatus", "A call's status callback (ringing, answered, completed, missed)"),
    RECORDING_PATH: ("twilioVoiceRecording", "A voicemail's recording is ready: answered with TwiML"),
    TRANSCRIPTION_PATH: ("twilioVoiceTranscription", "A voicemail's transcription is ready"),
    MESSAGING_PATH: ("twilioMessaging", "An SMS (or a delivery status of one)"),
}


def operation(route: Route) -> dict[str, Any]:
    from intake import openapi_parts as api

    return api.webhook(
        route.operation,
        _ROUTES[route.path][1],
        "Twilio's webhook: X-Twilio-Signature (HMAC-SHA1 with the TWILIO_AUTH_TOKEN secret over the public URL and "
        "the parameters; for a JSON body, over the URL whose `bodySHA256` is the body's hash) is checked first; the "
        "request is then archived and queued, and answered with TwiML without calling Twilio.",
        {
            "200": {
                "description": "Archived and queued (a delivery status is recorded only); TwiML for Twilio.",
                "content": {"text/xml": {"schema": {"type": "string", "contentMediaType": "text/xml"}}},
            },
            **api.problems(
                FieldInvalidError, WebhookSignatureInvalidError, PayloadTooLargeError, UnsupportedMediaTypeError
            ),
        },
        parameters=[
            api.parameter(
                "X-Twilio-Signature",
                "header",
                {"type": "string"},
                "base64 HMAC-SHA1(TWILIO_AUTH_TOKEN, URL + sorted parameters)",
                required=True,
            ),
            api.parameter("bodySHA256", "query", {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "JSON bodies only"),
        ],
        requestBody=api.provider_payload(
            "Twilio's webhook parameters (provider payload).", "application/x-www-form-urlencoded", "application/json"
        ),
    )


def _teams(twilio: Twilio) -> list[tuple[str, str]]:
    numbers = ((f"numbers.{n}.team", number.team) for n, number in twilio.numbers.items())
    return contract.named_teams(numbers, twilio.default_team)


_OPEN = (
    "Twilio cannot sign SigV4. The receiver checks X-Twilio-Signature (HMAC-SHA1 with the account's auth "
    "token over the URL and parameters) and stores nothing when it fails."
)

CHANNEL = contract.Channel(
    name=PROVIDER,
    title="Twilio (calls, voicemail, SMS/MMS, WhatsApp)",
    section="twilio",
    section_type=Twilio,
    kinds={Channel.PHONE: "phone", Channel.SMS: "SMS", Channel.WHATSAPP: "WhatsApp"},
    routes=tuple(Route("POST", path, operation_id, _OPEN) for path, (operation_id, _) in _ROUTES.items()),
    receive=receive,
    operation=operation,
    sign=sign,
    replay=replay,
    webhook_secrets=lambda twilio: [TOKEN_SECRET],
    teams=_teams,
    setup=lambda twilio: [
        ("TwilioVoiceUrl", VOICE_PATH, "Each Twilio number's voice 'A call comes in' webhook (HTTP POST)"),
        (
            "TwilioMessagingUrl",
            MESSAGING_PATH,
            "Each Twilio number's (and WhatsApp sender's) 'A message comes in' webhook (HTTP POST)",
        ),
        (
            "TwilioStatusCallbackUrl",
            STATUS_PATH,
            "A number's voice 'Call status changes' URL (missed calls come from it)",
        ),
    ],
    samples="twilio",
    api_secrets=(ACCOUNT_SID_SECRET, API_KEY_SID_SECRET, API_KEY_SECRET),  # never the auth token: the receiver's
    api_readers=("sender", "ingest"),  # replies; voicemail recordings
    api_secret_id="TwilioSending",  # noqa: S106 - the secret's construct id
    prepare_call=prepare_call,
    address=address,
    send=send,
    reply_windows={Channel.WHATSAPP: meta.WHATSAPP_REPLY_WINDOW},
)
