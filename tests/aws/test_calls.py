"""A call's callbacks, folded on moto: one message per call, whatever the order and the repeats."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ulid import ULID

from intake.calls import MISSED_SUBJECT, fold_call_event
from intake.ingest import ingest
from intake.model import CallEvent, CallEventKind, Channel, InboundMessage, Recording, Sender, Transcript
from intake.store import Store
from tests.aws.conftest import Stack, at
from tests.moto_stack import create_table

T0 = at("2026-11-21T22:14:00+00:00")
CALLER = "+33612345678"


def new_id() -> str:
    return str(ULID())


def event(kind: CallEventKind, call: str = "CA1", n: int = 0, **fields: Any) -> CallEvent:
    values: dict[str, Any] = {
        "kind": kind,
        "provider": "twilio",
        "call_sid": call,
        "event_id": f"{call}#{kind.value}#{n}",
        "receipt_id": new_id(),
        "received_at": T0 + timedelta(seconds=n),
        "raw_archive_key": f"raw/2026/11/21/twilio/{n}",
    }
    with_caller = {"team": "support", "caller": CALLER, "called": "+33186950000"}
    if kind == CallEventKind.STARTED:
        values |= with_caller | {"caller_name": "DURAND C"}
    elif kind == CallEventKind.RECORDING:
        values |= {
            "recording": Recording(
                sid="RE1", url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", duration_s=42
            )
        }
    elif kind == CallEventKind.TRANSCRIPTION:
        values |= with_caller | {
            "transcript": Transcript(sid="TR1", status="completed", text="Hello, my order 1042 is late.")
        }
    elif kind == CallEventKind.STATUS:
        values |= with_caller | {"call_status": "completed", "duration_s": 61}
    return CallEvent(**(values | fields))


VOICEMAIL = [
    event(CallEventKind.STARTED, n=0),
    event(CallEventKind.RECORDING, n=1),
    event(CallEventKind.STATUS, n=2),
    event(CallEventKind.TRANSCRIPTION, n=3),
]


def ticket_views(store: Store, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tickets with their messages, without what differs from run to run (ids, receipts)."""
    views = []
    for item in items:
        if item["PK"]["S"].startswith("TICKET#") and item["SK"]["S"] == "META":
            detail = store.ticket_detail(item["PK"]["S"].removeprefix("TICKET#"))
            views.append(
                {
                    "subject": detail.subject,
                    "channel": detail.channel,
                    "messages": [(m.text, m.attachments, m.metadata) for m in detail.messages],
                    "contact": (detail.contact.name, detail.contact.phones) if detail.contact else None,
                }
            )
    return views


def test_voicemail_whose_transcript_arrives_first_makes_one_ticket_with_the_transcript(stack: Stack) -> None:
    # Given the transcript before the recording, the recording twice (action and status callback)
    for callback in (VOICEMAIL[0], VOICEMAIL[3], VOICEMAIL[1], VOICEMAIL[1], VOICEMAIL[2]):
        fold_call_event(stack.store, callback, new_id)

    [view] = ticket_views(stack.store, stack.items())
    assert view["channel"] == Channel.PHONE
    assert view["subject"] == "Voicemail from DURAND C"
    [(text, attachments, metadata)] = view["messages"]
    assert text == "Hello, my order 1042 is late."
    assert attachments[0].url.endswith("/Recordings/RE1.mp3") and attachments[0].content_type == "audio/mpeg"
    assert metadata["voice"]["recording_duration_s"] == 42 and metadata["voice"]["call_sid"] == "CA1"
    assert view["contact"] == ("DURAND C", (CALLER,))


def test_voicemail_before_its_transcript_says_the_transcript_will_follow_then_shows_it(stack: Stack) -> None:
    for callback in VOICEMAIL[:3]:
        fold_call_event(stack.store, callback, new_id)
    [before] = ticket_views(stack.store, stack.items())
    assert before["messages"][0][0] == "Voicemail from DURAND C (42 s); the transcript will follow."

    fold_call_event(stack.store, VOICEMAIL[3], new_id)
    [after] = ticket_views(stack.store, stack.items())
    assert after["messages"][0][0] == "Hello, my order 1042 is late." and len(after["messages"]) == 1


def test_call_that_ends_without_a_recording_is_a_missed_call_ticket(stack: Stack) -> None:
    fold_call_event(stack.store, event(CallEventKind.STARTED, n=0), new_id)
    assert stack.tickets() == []  # ringing: nothing to act on yet
    fold_call_event(stack.store, event(CallEventKind.STATUS, n=1, call_status="no-answer"), new_id)

    [view] = ticket_views(stack.store, stack.items())
    assert view["subject"] == MISSED_SUBJECT
    assert view["messages"][0][0] == "Missed call from DURAND C, no message left: please call back."


def test_missed_call_from_a_caller_with_an_open_phone_ticket_joins_that_ticket(stack: Stack) -> None:
    for callback in VOICEMAIL:
        fold_call_event(stack.store, callback, new_id)
    fold_call_event(stack.store, event(CallEventKind.STARTED, call="CA2", n=10), new_id)
    fold_call_event(stack.store, event(CallEventKind.STATUS, call="CA2", n=11, call_status="busy"), new_id)

    [view] = ticket_views(stack.store, stack.items())
    assert [text for text, _, _ in view["messages"]][1].startswith("Missed call from DURAND C")


def test_status_before_the_recording_turns_the_missed_call_into_the_voicemail(stack: Stack) -> None:
    # The recording status callback may come after the call's completed status
    for callback in (VOICEMAIL[0], VOICEMAIL[2], VOICEMAIL[1], VOICEMAIL[3]):
        fold_call_event(stack.store, callback, new_id)

    [view] = ticket_views(stack.store, stack.items())
    assert view["subject"] == "Voicemail from DURAND C"
    assert [text for text, _, _ in view["messages"]] == ["Hello, my order 1042 is late."]


def test_an_sms_from_the_caller_opens_its_own_conversation(stack: Stack) -> None:
    for callback in VOICEMAIL:
        fold_call_event(stack.store, callback, new_id)
    sms = InboundMessage(
        channel=Channel.SMS,
        provider="twilio",
        provider_message_id="SM1",
        receipt_id=new_id(),
        received_at=T0 + timedelta(minutes=5),
        team="support",
        sender=Sender(phone=CALLER),
        text="Did you get my voicemail?",
        raw_archive_key="raw/x",
        thread_key=f"sms#{CALLER}",
    )
    ingest(stack.store, sms, new_id)

    views = ticket_views(stack.store, stack.items())
    assert sorted(v["channel"] for v in views) == [Channel.PHONE, Channel.SMS]
    assert len({v["contact"] for v in views}) == 1  # one customer across channels


orders = st.lists(st.sampled_from(range(len(VOICEMAIL))), min_size=len(VOICEMAIL), max_size=10).filter(
    lambda picks: set(picks) == set(range(len(VOICEMAIL)))
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders)
def test_any_order_and_any_repeats_of_a_calls_callbacks_give_the_same_ticket(stack: Stack, picks: list[int]) -> None:
    reference = create_table(f"ref{new_id().lower()}")
    shuffled = create_table(f"mix{new_id().lower()}")
    for callback in VOICEMAIL:
        fold_call_event(Store(stack.dynamodb, reference), callback, new_id)
    for pick in picks:
        fold_call_event(Store(stack.dynamodb, shuffled), VOICEMAIL[pick], new_id)

    def view(table: str) -> str:
        store = Store(stack.dynamodb, table)
        return json.dumps(
            ticket_views(store, stack.dynamodb.scan(TableName=table)["Items"]), default=str, sort_keys=True
        )

    assert view(shuffled) == view(reference)
