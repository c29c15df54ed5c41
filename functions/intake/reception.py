"""What the receiver does with a provider's request before it answers: check, store, enqueue.

What a request becomes once checked (`form_message`, `twilio_item`, `arrived_email`) is computed
apart from the checks and the storing, so that `intake.reconciliation` can compute it again from the archive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from enum import StrEnum

from intake.channels import forms, mailgun, sendgrid, twilio, whatsapp
from intake.config import Policy, PublicAuth
from intake.errors import FormNotFoundError, PayloadTooLargeError, SignatureInvalidError, WebhookSignatureInvalidError
from intake.inbox import Inbox, attachment_of, raw_key
from intake.model import Attachment, CallEvent, CallEventKind, EmailArrived, InboundMessage, WebhookRequest
from intake.secrets import Secrets
from intake.sla.calendar import calendar_for
from intake.store import Store


@dataclass(frozen=True)
class Receipt:
    receipt_id: str
    queued: bool  # False: accepted and dropped (a filled honeypot)


def receive_form(
    form_id: str,
    request: WebhookRequest,
    *,
    policy: Policy,
    secrets: Secrets,
    inbox: Inbox,
    received_at: datetime,
    receipt_id: str,
    max_body_bytes: int,
) -> Receipt:
    """Verify and validate first, so a rejected request stores nothing; then archive, then enqueue."""
    form = policy.forms.get(form_id)
    if form is None:
        raise FormNotFoundError(form_id)
    limit = min(form.max_bytes, max_body_bytes)
    _within(request, limit)
    secret = None if isinstance(form.auth, PublicAuth) else secrets.get(forms.secret_name(form_id))
    forms.verify(form, request, secret, now=received_at.timestamp())
    accepted = form_message(form_id, request, policy=policy, receipt_id=receipt_id, received_at=received_at)
    if accepted is None:
        return Receipt(receipt_id, queued=False)
    message, files = accepted
    inbox.archive_request(message.raw_archive_key, receipt_id, received_at, request)
    for attachment, content in files:
        inbox.store_attachment(attachment, content)
    inbox.enqueue(message)
    return Receipt(receipt_id, queued=True)


def form_message(
    form_id: str, request: WebhookRequest, *, policy: Policy, receipt_id: str, received_at: datetime
) -> tuple[InboundMessage, list[tuple[Attachment, bytes]]] | None:
    """A verified form post as the message it makes, with its files; None for spam (a filled honeypot)."""
    form = policy.forms.get(form_id)
    if form is None:
        raise FormNotFoundError(form_id)
    submission = forms.parse(form, request)
    if forms.is_spam(form, submission):
        return None
    attachments = tuple(
        attachment_of(receipt_id, received_at, n, upload.filename, upload.content_type, upload.content)
        for n, upload in enumerate(submission.files, start=1)
    )
    message = forms.to_inbound(
        form_id,
        form,
        submission,
        default_region=policy.teams[form.team].default_region,
        receipt_id=receipt_id,
        received_at=received_at,
        raw_archive_key=raw_key(forms.PROVIDER, receipt_id, received_at),
        attachments=attachments,
    )
    return message, [(a, upload.content) for a, upload in zip(attachments, submission.files, strict=True)]


class TwilioRoute(StrEnum):
    VOICE = "voice"
    VOICE_STATUS = "voice/status"
    VOICE_RECORDING = "voice/recording"
    VOICE_TRANSCRIPTION = "voice/transcription"
    MESSAGING = "messaging"


_CALL_EVENT = {
    TwilioRoute.VOICE: CallEventKind.STARTED,
    TwilioRoute.VOICE_STATUS: CallEventKind.STATUS,
    TwilioRoute.VOICE_RECORDING: CallEventKind.RECORDING,
    TwilioRoute.VOICE_TRANSCRIPTION: CallEventKind.TRANSCRIPTION,
}


@dataclass(frozen=True)
class TwilioAnswer:
    receipt_id: str
    twiml: str
    queued: bool  # False: a delivery status (archived, and queued for its reply's state when it moves it)


def receive_twilio(
    route: TwilioRoute,
    request: WebhookRequest,
    *,
    policy: Policy,
    secrets: Secrets,
    inbox: Inbox,
    received_at: datetime,
    receipt_id: str,
    public_base_url: str,
    max_body_bytes: int,
) -> TwilioAnswer:
    """Twilio's voice and messaging webhooks: verify, map, archive, enqueue, answer TwiML. No call to Twilio:
    it gives up after 15 s, so everything that needs its API happens in the worker."""
    _within(request, max_body_bytes)
    _provider_signed(lambda: twilio.verify(request, secrets.get(twilio.TOKEN_SECRET), public_base_url))
    form = dict(twilio.params(request))
    item = twilio_item(route, form, policy=policy, receipt_id=receipt_id, received_at=received_at)
    answer = twilio.EMPTY_TWIML
    if route == TwilioRoute.VOICE and isinstance(item, CallEvent):
        answer = twilio.answer_call(form, policy, received_at, public_base_url, _is_open(policy, item, received_at))
    elif route == TwilioRoute.VOICE_RECORDING:
        answer = twilio.after_recording(form, policy)
    archive_key = raw_key(twilio.PROVIDER, receipt_id, received_at)
    inbox.archive_request(archive_key, receipt_id, received_at, request)
    if isinstance(item, twilio.MessageStatus):  # a report on a reply we sent: its state moves in the worker
        report = twilio.delivery_status(
            item, receipt_id=receipt_id, received_at=received_at, raw_archive_key=archive_key
        )
        if report is not None:
            inbox.enqueue(report)
        return TwilioAnswer(receipt_id, answer, queued=False)
    inbox.enqueue(item)
    return TwilioAnswer(receipt_id, answer, queued=True)


def twilio_item(
    route: TwilioRoute, form: dict[str, str], *, policy: Policy, receipt_id: str, received_at: datetime
) -> InboundMessage | CallEvent | twilio.MessageStatus:
    """A verified Twilio callback's parameters as what it makes: a message, a call event, or a delivery status."""
    archive_key = raw_key(twilio.PROVIDER, receipt_id, received_at)
    if route == TwilioRoute.MESSAGING:
        return twilio.message(
            form, policy=policy, receipt_id=receipt_id, received_at=received_at, raw_archive_key=archive_key
        )
    return twilio.call_event(
        _CALL_EVENT[route],
        form,
        policy=policy,
        receipt_id=receipt_id,
        received_at=received_at,
        raw_archive_key=archive_key,
    )


def _is_open(policy: Policy, event: CallEvent, at: datetime) -> bool:
    team = policy.teams.get(event.team or "")
    return team is None or calendar_for(team).is_open(at)


@dataclass(frozen=True)
class WhatsAppReceipt:
    receipt_id: str
    queued: int  # messages and reactions enqueued
    statuses: int  # delivery statuses: each moves the state of the reply it reports on (queued for the worker)


def answer_whatsapp_handshake(query: dict[str, str], *, secrets: Secrets) -> str:
    """Meta's subscription check: the challenge back when the verify token matches, else 403."""
    return whatsapp.handshake(query, secrets.get(whatsapp.VERIFY_TOKEN))


def receive_whatsapp(
    request: WebhookRequest,
    *,
    policy: Policy,
    secrets: Secrets,
    inbox: Inbox,
    received_at: datetime,
    receipt_id: str,
    max_body_bytes: int,
) -> WhatsAppReceipt:
    """Meta's batched webhook: signature over the raw bytes first; then the request is archived as received,
    even when its JSON turns out malformed (a 400 for Meta, and the bytes kept for inspection)."""
    _within(request, max_body_bytes)
    _provider_signed(lambda: whatsapp.verify(request, secrets.get(whatsapp.APP_SECRET)))
    archive_key = raw_key(whatsapp.PROVIDER, receipt_id, received_at)
    inbox.archive_request(archive_key, receipt_id, received_at, request)
    items = whatsapp.parse(
        request.body, policy=policy, receipt_id=receipt_id, received_at=received_at, raw_archive_key=archive_key
    )
    queued = [item for item in items if not isinstance(item, whatsapp.StatusUpdate)]
    reports = [
        whatsapp.delivery_status(item, receipt_id=receipt_id, received_at=received_at, raw_archive_key=archive_key)
        for item in items
        if isinstance(item, whatsapp.StatusUpdate)
    ]
    inbox.enqueue_many([*queued, *(report for report in reports if report is not None)])
    return WhatsAppReceipt(receipt_id, queued=len(queued), statuses=len(items) - len(queued))


def _within(request: WebhookRequest, limit: int) -> None:
    if len(request.body) > limit:
        raise PayloadTooLargeError("the request body", len(request.body), limit)


def _provider_signed(verify: Callable[[], None]) -> None:
    """A provider's webhook with a bad signature is refused as forged (403), not as unauthenticated."""
    try:
        verify()
    except SignatureInvalidError as error:
        raise WebhookSignatureInvalidError(str(error)) from None


_HEAD_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(r"<([^<>\s]{1,250})>")
_HEAD_BYTES = 256 * 1024


def conversation(raw: bytes) -> str | None:
    """The Message-ID that started the thread, from the headers alone: the first of References (which replies
    keep), else In-Reply-To, else the message's own. None when it names none. Nothing here can fail on data."""
    end = _HEAD_END.search(raw, 0, _HEAD_BYTES)
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[: end.start() if end else _HEAD_BYTES])
    for name in ("References", "In-Reply-To", "Message-ID"):
        if match := _MESSAGE_ID.search(str(headers.get(name, ""))):
            return match.group(1)
    return None


def receive_email(
    provider: str,
    raw: bytes,
    *,
    inbox: Inbox,
    received_at: datetime,
    receipt_id: str,
    recipients: tuple[str, ...] = (),
    verdicts: dict[str, str] | None = None,
) -> EmailArrived:
    """Store the MIME where SES's receipt rule would (`raw/<date>/<provider>/<receipt>.eml`), then queue it."""
    arrived = arrived_email(
        provider, raw, receipt_id=receipt_id, received_at=received_at, recipients=recipients, verdicts=verdicts
    )
    inbox.archive_email(arrived.raw_archive_key, raw)
    inbox.enqueue(arrived)
    return arrived


def arrived_email(
    provider: str,
    raw: bytes,
    *,
    receipt_id: str,
    received_at: datetime,
    recipients: tuple[str, ...] = (),
    verdicts: dict[str, str] | None = None,
) -> EmailArrived:
    """What queues an email archived as `raw/<date>/<provider>/<receipt>.eml`."""
    return EmailArrived(
        provider=provider,
        receipt_id=receipt_id,
        received_at=received_at,
        raw_archive_key=raw_key(provider, receipt_id, received_at) + ".eml",
        recipients=recipients,
        verdicts=verdicts or {},
        conversation=conversation(raw),
    )


def receive_sendgrid(
    request: WebhookRequest,
    *,
    secrets: Secrets,
    inbox: Inbox,
    received_at: datetime,
    receipt_id: str,
    max_body_bytes: int,
) -> EmailArrived:
    """SendGrid Inbound Parse (raw or parsed mode), behind HTTP basic auth."""
    _within(request, max_body_bytes)
    _provider_signed(lambda: sendgrid.verify(request, secrets.get(sendgrid.USER), secrets.get(sendgrid.PASSWORD)))
    raw = sendgrid.raw_mime(request)
    # the request as posted too: parsed mode's fields (spam score, SPF, DKIM) are not all in the rebuilt MIME
    inbox.archive_request(raw_key(sendgrid.PROVIDER, receipt_id, received_at), receipt_id, received_at, request)
    return receive_email(sendgrid.PROVIDER, raw, inbox=inbox, received_at=received_at, receipt_id=receipt_id)


def receive_mailgun(
    request: WebhookRequest,
    *,
    store: Store,
    secrets: Secrets,
    inbox: Inbox,
    received_at: datetime,
    receipt_id: str,
    max_body_bytes: int,
) -> EmailArrived:
    """Mailgun routes: HMAC over timestamp + token, within 15 minutes, each token accepted once."""
    _within(request, max_body_bytes)
    fields = mailgun.fields(request)
    token = ""

    def verify() -> None:
        nonlocal token
        token = mailgun.verify(fields, secrets.get(mailgun.SIGNING_KEY), received_at.timestamp())

    _provider_signed(verify)
    if not store.claim_token(mailgun.PROVIDER, token, received_at):
        raise WebhookSignatureInvalidError("this Mailgun token was already used: a replayed request")
    raw = mailgun.raw_mime(request)
    inbox.archive_request(raw_key(mailgun.PROVIDER, receipt_id, received_at), receipt_id, received_at, request)
    return receive_email(mailgun.PROVIDER, raw, inbox=inbox, received_at=received_at, receipt_id=receipt_id)
