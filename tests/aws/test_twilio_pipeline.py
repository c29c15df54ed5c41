"""Twilio's webhooks through the real receiver and worker on moto: calls, voicemails, texts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest

from intake import runtime
from tests.aws.conftest import SECRETS, Stack
from tests.fake_providers import FakeProviders

VOICEMAIL = [
    "01-voice-incoming-call.json",
    "02-voice-record-action.json",
    "03-voice-call-completed.json",
    "04-voice-recording-completed.json",
    "05-voice-transcription.json",
]
MISSED = ["06-missed-call-incoming.json", "07-missed-call-completed.json"]
SMS = ["08-sms-conversation-1.json", "09-sms-conversation-2.json", "10-sms-conversation-3.json"]


def post_all(stack: Stack, names: list[str]) -> list[tuple[int, str]]:
    answers = []
    for name in names:
        prepared = stack.prepare(name)
        status, body, _ = stack.post_raw(prepared.path, prepared.body, prepared.headers)
        answers.append((status, body))
    return answers


def details(stack: Stack) -> list[dict[str, Any]]:
    return [stack.get(f"/tickets/{t['id']}")[1] for t in stack.get("/tickets")[1]["items"]]


def test_incoming_call_is_answered_with_twiml_naming_our_callbacks(stack: Stack) -> None:
    [(status, twiml)] = post_all(stack, VOICEMAIL[:1])

    assert status == 200
    root = ET.fromstring(twiml)  # well-formed XML
    assert root.tag == "Response"
    say = root.find("Say")
    assert say is not None and say.get("language") == "fr-FR" and say.get("voice") == "Polly.Lea"
    record = root.find("Record")
    assert record is not None
    assert record.get("maxLength") == "120" and record.get("transcribe") == "true"
    base = "http://127.0.0.1:8080/webhooks/twilio/voice"
    assert record.get("recordingStatusCallback") == f"{base}/recording"
    assert record.get("transcribeCallback") == f"{base}/transcription"
    assert stack.queued() == 1 and stack.tickets() == []  # the call started; nothing to act on yet


def test_voicemail_whose_transcript_arrives_first_makes_one_ticket_with_it(stack: Stack) -> None:
    order = [VOICEMAIL[0], VOICEMAIL[4], VOICEMAIL[3], VOICEMAIL[1], VOICEMAIL[2], VOICEMAIL[3]]
    assert {status for status, _ in post_all(stack, order)} == {200}
    stack.work()

    [ticket] = details(stack)
    assert ticket["channel"] == "phone"
    [message] = ticket["messages"]
    assert message["text"].startswith("Hello, this is Marc Lefebvre, order 2291.")
    [recording] = message["attachments"]
    assert recording["url"].endswith("/Recordings/REe094802002cb944171d9202ba6c40ea5.mp3")
    assert ticket["contact"]["phones"] == ["+33645218709"]


RECORDING_SID = "REe094802002cb944171d9202ba6c40ea5"  # the voicemail samples'


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    """Twilio's API (a fake over real HTTP) with the worker's credentials: the account SID and the auth token the
    samples are signed with (no API key: the auth token is the fallback)."""
    fake = FakeProviders(auth_token=SECRETS["INTAKE_TWILIO_AUTH_TOKEN"]).start()
    monkeypatch.setenv("INTAKE_TWILIO_API_URL", fake.url)
    monkeypatch.setenv("INTAKE_TWILIO_ACCOUNT_SID", fake.account_sid)
    runtime.reset()
    yield fake
    fake.stop()


def test_a_voicemails_recording_is_archived_once_and_played_from_our_copy(
    stack: Stack, twilio: FakeProviders, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Twilio keeps the recording behind the account's credentials
    twilio.recordings[RECORDING_SID] = b"ID3\x04fake-mp3-of-the-voicemail"

    # When the call's callbacks come in (the recording twice: the <Record> action and its status callback)
    assert {status for status, _ in post_all(stack, VOICEMAIL)} == {200}
    stack.work()

    # Then the message's recording is our archived copy (and still Twilio's link), downloaded with the credentials
    [ticket] = details(stack)
    [recording] = ticket["messages"][0]["attachments"]
    key = f"attachments/calls/CAf94716808d2af694b50a4ba78fde0926/{RECORDING_SID}.mp3"
    assert (recording["s3_key"], recording["size"]) == (key, 29)
    assert recording["url"].endswith(f"/Recordings/{RECORDING_SID}.mp3")
    stored = stack.s3.get_object(Bucket=stack.resources.bucket, Key=key)
    assert stored["Body"].read() == twilio.recordings[RECORDING_SID] and stored["ContentType"] == "audio/mpeg"
    fetched = twilio.received("recording")
    assert fetched and {r.status for r in fetched} == {200} and len(fetched) <= 2  # one per recording callback
    assert "voicemail recording archived" in caplog.text and "+336" not in caplog.text


def test_a_recording_twilio_will_not_give_leaves_its_link_and_still_makes_the_ticket(
    stack: Stack, twilio: FakeProviders, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Twilio answers 404 for the recording (deleted by the account's retention, say)
    assert {status for status, _ in post_all(stack, VOICEMAIL)} == {200}
    stack.work()

    [ticket] = details(stack)
    [recording] = ticket["messages"][0]["attachments"]
    assert recording["s3_key"] is None and recording["url"].endswith(f"/Recordings/{RECORDING_SID}.mp3")
    warned = [r for r in caplog.records if r.getMessage().startswith("voicemail recording not archived")]
    assert warned and {getattr(r, "why", None) for r in warned} == {"recording: HTTP 404"}


def test_call_without_a_recording_is_a_missed_call_ticket(stack: Stack) -> None:
    post_all(stack, MISSED)
    stack.work()

    [ticket] = details(stack)
    assert ticket["subject"].startswith("Missed call")
    assert "please call back" in ticket["messages"][0]["text"]


def test_an_sms_conversation_of_three_messages_is_one_ticket(stack: Stack) -> None:
    post_all(stack, SMS)
    stack.work()

    [ticket] = details(stack)
    assert ticket["channel"] == "sms" and ticket["message_count"] == 3
    assert len(ticket["messages"]) == 3


def test_the_same_message_sid_delivered_five_times_is_one_message(stack: Stack) -> None:
    post_all(stack, SMS[:1] * 5)
    stack.work()

    [ticket] = details(stack)
    assert len(ticket["messages"]) == 1


@pytest.mark.parametrize("name", ["14-message-status-delivered.json"])
def test_a_delivery_status_callback_is_archived_and_makes_no_ticket(stack: Stack, name: str) -> None:
    [(status, _)] = post_all(stack, [name])
    stack.work()

    assert status == 200
    assert [k for k in stack.objects() if k.startswith("raw/")]
    # no ticket: at most the report itself, held a day for a send not recorded yet (replies.HELD_REPORT)
    assert {(i["PK"]["S"].split("#")[0], i["SK"]["S"]) for i in stack.items()} <= {("OUT", "HELD")}


def test_whatsapp_through_twilio_is_its_own_channel_with_the_profile_name(stack: Stack) -> None:
    post_all(stack, ["12-whatsapp-text.json", "13-whatsapp-location.json"])
    stack.work()

    [ticket] = details(stack)
    assert ticket["channel"] == "whatsapp" and len(ticket["messages"]) == 2
    assert ticket["contact"]["name"]


def test_forged_twilio_signature_is_403_and_stores_nothing(stack: Stack) -> None:
    prepared = stack.prepare(SMS[0])
    headers = {**prepared.headers, "x-twilio-signature": "bm90IGEgc2lnbmF0dXJl"}

    status, body = stack.post(prepared.path, prepared.body, headers)
    stack.work()

    assert (status, body["type"]) == (403, "urn:intake:problem:webhook-signature-invalid")
    assert stack.objects() == [] and stack.queued() == 0 and stack.items() == []


def test_a_signature_made_for_another_url_is_refused(stack: Stack) -> None:
    prepared = stack.prepare(SMS[0])
    status, _ = stack.post("/webhooks/twilio/voice/status", prepared.body, prepared.headers)
    assert status == 403 and stack.objects() == []


def test_missing_required_parameters_are_a_400_naming_them(stack: Stack) -> None:
    from intake.channels import signatures

    body = b"From=%2B33645218709&To=%2B33186950000"
    url = "http://127.0.0.1:8080/webhooks/twilio/voice/status"
    params = [("From", "+33645218709"), ("To", "+33186950000")]
    signature = signatures.twilio_signature("test-twilio-auth-token", url, params)
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}

    status, problem = stack.post("/webhooks/twilio/voice/status", body, headers)

    assert status == 400 and problem["field"] == "CallSid"
    assert stack.objects() == [] and stack.queued() == 0


@pytest.mark.parametrize(
    ("moment", "greeting"),
    [
        ("2026-11-24T10:00:00+01:00", "open"),
        ("2026-11-28T10:00:00+01:00", "closed"),
        ("2026-12-25T10:00:00+01:00", "closed"),
    ],
    ids=["tuesday-morning", "saturday", "christmas"],
)
def test_the_team_calendar_decides_which_greeting_a_caller_hears(stack: Stack, moment: str, greeting: str) -> None:
    from intake import runtime
    from intake.channels import twilio
    from intake.channels.contract import ReceiveContext
    from intake.model import WebhookRequest
    from tests.aws.conftest import at

    prepared = stack.prepare(VOICEMAIL[0])
    request = WebhookRequest("POST", prepared.path, "", prepared.headers, prepared.body)
    policy = runtime.policy()
    context = ReceiveContext(
        policy=policy,
        secrets=runtime.secrets(),
        inbox=runtime.inbox(),
        received_at=at(moment),
        receipt_id="01KAAAAAAAAAAAAAAAAAAAAAAA",
        public_base_url="http://127.0.0.1:8080",
        max_body_bytes=1_000_000,
        params={},
        claim_token=lambda provider, token: True,
    )
    voice = next(route for route in twilio.CHANNEL.routes if route.path == twilio.VOICE_PATH)
    answer = twilio.receive(voice, request, context)

    say = ET.fromstring(answer.body).find("Say")
    assert policy.twilio is not None
    expected = policy.twilio.numbers["+33186950000"].greeting
    assert say is not None and expected is not None and say.text == getattr(expected, greeting)
