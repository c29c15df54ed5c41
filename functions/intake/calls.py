"""Phone calls: a call's callbacks, in any order and any number of times, make one message.

Each callback is folded into the call's state (idempotent field sets); the state then decides the
call's message: a voicemail (recording, then its transcript) or a missed call. The message is keyed
by the call, so the same message is created once and rewritten as more arrives, never doubled.
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.config import Policy
from intake.ingest import IdFactory, IngestResult, Outcome, ingest
from intake.limits import fitted
from intake.model import Attachment, CallEvent, Channel, InboundMessage, Sender
from intake.records import CallState
from intake.store import Store

# A call that ended in one of these without a recording is a missed call, to be called back
ENDED = frozenset({"completed", "no-answer", "busy", "failed", "canceled"})
MISSED_SUBJECT = "Missed call: please call back"


@dataclass(frozen=True)
class CallContent:
    subject: str
    text: str
    attachments: tuple[Attachment, ...]


def call_content(state: CallState) -> CallContent | None:
    """What the call's message says now; None while there is nothing to act on yet."""
    who = state.caller_name or state.caller or "an unknown caller"
    if state.recording_sid and state.recording_url:
        length = f"{state.recording_duration_s} s" if state.recording_duration_s is not None else "length unknown"
        if state.transcript_text:
            text = state.transcript_text
        elif state.transcript_status == "failed":
            text = f"Voicemail from {who} ({length}); the transcription failed: listen to the recording."
        else:
            text = f"Voicemail from {who} ({length}); the transcript will follow."
        recording = Attachment(  # at Twilio, and in our archive once the worker downloaded it
            filename=f"{state.recording_sid}.mp3",
            content_type="audio/mpeg",
            url=state.recording_url + ".mp3",
            s3_key=state.recording_key,
            size=state.recording_size,
        )
        return CallContent(f"Voicemail from {who}", text, (recording,))
    if state.statuses & ENDED:
        return CallContent(MISSED_SUBJECT, f"Missed call from {who}, no message left: please call back.", ())
    return None


def fold_call_event(
    store: Store, event: CallEvent, new_id: IdFactory, policy: Policy | None = None
) -> IngestResult | None:
    """Fold one callback; returns the ticket the call's message is on, or None if there is none yet."""
    known = store.seen(event.provider, event.event_id)
    if known is not None:
        return IngestResult(Outcome.DUPLICATE, known.ticket_id)
    state = store.merge_call(event)
    content = call_content(state)
    if content is None or state.team is None:
        return None  # nothing to act on yet, or not yet known whose it is (a later callback will say)
    message = fitted(_message(event, state, content))  # the update below bypasses ingest, which fits it too
    existing = store.seen(event.provider, event.call_sid)
    if existing is None:
        result = ingest(store, message, new_id, policy)
    else:
        store.update_message(existing.ticket_id, message)
        store.retitle_ticket(existing.ticket_id, state.started_at, content.subject)
        if state.caller_name:
            store.name_contact(store.ticket(existing.ticket_id).contact_id, state.caller_name)
        result = IngestResult(Outcome.APPENDED, existing.ticket_id)
    store.mark_seen(event.provider, event.event_id, result.ticket_id, event.received_at)
    return result


def _message(event: CallEvent, state: CallState, content: CallContent) -> InboundMessage:
    """The call as one inbound message, keyed by the call and dated by its first callback."""
    voice = {
        "call_sid": state.call_sid,
        "called": state.called,
        "recording_sid": state.recording_sid,
        "recording_duration_s": state.recording_duration_s,
        "transcript_status": state.transcript_status,
        "call_statuses": sorted(state.statuses),
        "call_duration_s": state.duration_s,
    }
    return InboundMessage(
        channel=Channel.PHONE,
        provider=event.provider,
        provider_message_id=state.call_sid,
        receipt_id=event.receipt_id,
        received_at=state.started_at,
        team=state.team,
        sender=Sender(name=state.caller_name, phone=state.caller),
        subject=content.subject,
        text=content.text,
        attachments=content.attachments,
        raw_archive_key=event.raw_archive_key,
        thread_key=f"{Channel.PHONE.value}#{state.caller or 'call#' + state.call_sid}",
        metadata={"voice": {k: v for k, v in voice.items() if v is not None}},
    )
