"""The Twilio adapter: TwiML answers, voice callbacks → `CallEvent`, messages → `InboundMessage` or status."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from intake.channels import twilio
from intake.channels.contract import WorkerContext
from intake.channels.sending import SendContext
from intake.config import Policy
from intake.errors import FieldInvalidError, UnsupportedMediaTypeError
from intake.local import samples
from intake.model import Attachment, CallEvent, CallEventKind, Channel, InboundMessage, Recording, WebhookRequest
from intake.policy import parse_policy
from intake.secrets import Secrets

from .builders import RECEIPT_ID, RECEIVED_AT

BASE_URL = "https://intake.example.com"
OUR_NUMBER = "+33186950000"  # intake.yaml: team support, French greeting
SALES_NUMBER = "+442071838750"  # the test policy below: team sales, no greeting of its own
ACCOUNT = "AC" + "a" * 32
CALL = "CA" + "b" * 32
RECORDING = "RE" + "c" * 32
RECORDING_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"
TRANSCRIPTION = "TR" + "d" * 32
MESSAGE = "SM" + "e" * 32
CALLER = "+33645218709"
NOW = datetime(2026, 11, 23, 19, 2, tzinfo=UTC)
SAMPLES = sorted((Path(__file__).resolve().parents[2] / "events" / "twilio").glob("*.json"))


@pytest.fixture(scope="module")
def sales_policy(policy: Policy) -> Policy:
    """Two teams, two numbers (one without a greeting), no default team, no transcription."""
    return parse_policy(
        {
            "teams": {"support": {"name": "Support"}, "sales": {"name": "Sales"}},
            "twilio": {
                "numbers": {
                    OUR_NUMBER: policy.model_dump()["twilio"]["numbers"][OUR_NUMBER],
                    SALES_NUMBER: {"team": "sales"},
                },
                "greeting": {
                    "open": 'Sales & "billing" <UK>',
                    "closed": "Closed",
                    "language": "en-GB",
                    "voice": "Polly.Amy",
                },
                "max_recording_s": 60,
                "transcribe": False,
            },
        }
    )


def call_event(kind: CallEventKind, form: Mapping[str, str], policy: Policy) -> CallEvent:
    return twilio.call_event(
        kind, form, policy=policy, receipt_id=RECEIPT_ID, received_at=RECEIVED_AT, raw_archive_key="raw/twilio/1"
    )


def message(form: Mapping[str, str], policy: Policy) -> InboundMessage | twilio.MessageStatus:
    return twilio.message(
        form, policy=policy, receipt_id=RECEIPT_ID, received_at=RECEIVED_AT, raw_archive_key="raw/m/1"
    )


def inbound(form: Mapping[str, str], policy: Policy) -> InboundMessage:
    mapped = message(form, policy)
    assert isinstance(mapped, InboundMessage)
    return mapped


def voice_form(**extra: str) -> dict[str, str]:
    form = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": CALL,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": CALLER,
        "FromCountry": "FR",
        "To": OUR_NUMBER,
        "ToCountry": "FR",
    }
    return form | extra


def sms_form(**extra: str) -> dict[str, str]:
    form = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "MessageSid": MESSAGE,
        "SmsSid": MESSAGE,
        "SmsStatus": "received",
        "From": "+33671234589",
        "To": OUR_NUMBER,
        "Body": "Ma commande n'est pas arrivée.",
        "NumMedia": "0",
        "NumSegments": "1",
        "FromCountry": "FR",
    }
    return form | extra


def parsed(twiml: str) -> ET.Element:
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(twiml.split("\n", 1)[1])


def answer(form: Mapping[str, str], policy: Policy, *, is_open: bool) -> ET.Element:
    return parsed(twilio.answer_call(form, policy, NOW, BASE_URL + "/", is_open))


# ------------------------------------------------------------------------------------------ TwiML


def test_incoming_call_hears_the_numbers_greeting_then_records_a_transcribed_voicemail(policy: Policy) -> None:
    # Given a call to our French number while the team is open
    # When it is answered
    response = answer(voice_form(), policy, is_open=True)
    # Then the greeting is said in the number's language and voice, then the caller is recorded
    # with transcription, and every callback points at our routes
    assert response.tag == "Response"
    say, record, goodbye, hangup = list(response)
    assert (say.tag, say.get("language"), say.get("voice")) == ("Say", "fr-FR", "Polly.Lea")
    assert say.text == policy.twilio.numbers[OUR_NUMBER].greeting.open  # type: ignore[union-attr]
    assert record.tag == "Record"
    assert record.attrib == {
        "action": f"{BASE_URL}/webhooks/twilio/voice/recording",
        "method": "POST",
        "maxLength": "120",
        "playBeep": "true",
        "recordingStatusCallback": f"{BASE_URL}/webhooks/twilio/voice/recording",
        "recordingStatusCallbackMethod": "POST",
        "recordingStatusCallbackEvent": "completed",
        "transcribe": "true",
        "transcribeCallback": f"{BASE_URL}/webhooks/twilio/voice/transcription",
    }
    # and a caller who leaves nothing hears goodbye in the same voice before the call ends
    assert (goodbye.tag, goodbye.get("language"), goodbye.get("voice")) == ("Say", "fr-FR", "Polly.Lea")
    assert goodbye.text and "Au revoir" in goodbye.text
    assert hangup.tag == "Hangup"


def test_caller_hears_the_closed_greeting_when_the_team_is_closed(policy: Policy) -> None:
    response = answer(voice_form(), policy, is_open=False)
    assert response[0].text == policy.twilio.numbers[OUR_NUMBER].greeting.closed  # type: ignore[union-attr]


def test_number_without_a_greeting_uses_the_policys_greeting_escaped_as_xml(sales_policy: Policy) -> None:
    # Given a number with no greeting of its own, and a policy greeting with XML's special characters
    response = answer(voice_form(To=SALES_NUMBER), sales_policy, is_open=True)
    # Then the policy's greeting is said, intact, in its language and voice
    assert (response[0].text, response[0].get("language"), response[0].get("voice")) == (
        'Sales & "billing" <UK>',
        "en-GB",
        "Polly.Amy",
    )


def test_without_transcription_the_recording_has_no_transcribe_callback(sales_policy: Policy) -> None:
    record = answer(voice_form(To=SALES_NUMBER), sales_policy, is_open=True).find("Record")
    assert record is not None
    assert (record.get("transcribe"), record.get("transcribeCallback"), record.get("maxLength")) == (
        "false",
        None,
        "60",
    )


def test_after_recording_thanks_the_caller_and_hangs_up(policy: Policy) -> None:
    # Given the <Record> action request of a call to our French number
    response = parsed(twilio.after_recording(voice_form(), policy))
    # Then the caller is thanked in the number's language and voice, and the call ends
    assert [verb.tag for verb in response] == ["Say", "Hangup"]
    assert response[0].get("language") == "fr-FR"
    assert response[0].text and "Merci" in response[0].text
    # and without the request, in the default greeting's voice
    assert parsed(twilio.after_recording())[0].get("language") == "en-US"


def test_callbacks_and_messages_are_answered_with_an_empty_response() -> None:
    response = parsed(twilio.EMPTY_TWIML)
    assert (response.tag, list(response), response.text) == ("Response", [], None)


# ------------------------------------------------------------------------------------------ calls


def test_incoming_call_webhook_is_a_started_event(policy: Policy) -> None:
    # Given the incoming-call webhook, with a caller name from a CNAM lookup
    event = call_event(CallEventKind.STARTED, voice_form(From="+33 6 45 21 87 09", CallerName="LEFEBVRE MARC"), policy)
    # Then it names the call, the caller in E.164, the number called and its team
    assert (event.kind, event.provider, event.call_sid, event.event_id) == (
        CallEventKind.STARTED,
        "twilio",
        CALL,
        f"{CALL}#started",
    )
    assert (event.caller, event.caller_name, event.called, event.team) == (
        CALLER,
        "LEFEBVRE MARC",
        OUR_NUMBER,
        "support",
    )
    assert (event.call_status, event.recording, event.transcript) == ("ringing", None, None)
    assert (event.receipt_id, event.received_at, event.raw_archive_key) == (RECEIPT_ID, RECEIVED_AT, "raw/twilio/1")
    assert event.metadata == {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
        "FromCountry": "FR",
        "ToCountry": "FR",
    }


def test_record_action_is_a_recording_event_with_the_caller(policy: Policy) -> None:
    # Given the <Record action> request: the call's parameters and the recording
    form = voice_form(
        CallStatus="in-progress", RecordingUrl=RECORDING_URL, RecordingSid=RECORDING, RecordingDuration="23"
    )
    event = call_event(CallEventKind.RECORDING, form | {"Digits": "hangup"}, policy)
    # Then the recording is on the event, with who called and which team
    assert event.recording is not None
    assert (event.recording.sid, event.recording.url, event.recording.duration_s) == (RECORDING, RECORDING_URL, 23)
    assert (event.event_id, event.caller, event.team) == (f"{RECORDING}#action", CALLER, "support")
    assert event.metadata["Digits"] == "hangup"


def test_recording_status_callback_is_a_recording_event_without_caller_or_team(policy: Policy) -> None:
    # Given the recordingStatusCallback, which carries no From/To
    form = {
        "AccountSid": ACCOUNT,
        "CallSid": CALL,
        "RecordingSid": RECORDING,
        "RecordingUrl": RECORDING_URL,
        "RecordingStatus": "completed",
        "RecordingDuration": "23",
        "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
    }
    event = call_event(CallEventKind.RECORDING, form, policy)
    # Then the event names the recording, and leaves caller and team to the call's other events
    assert event.recording is not None and event.recording.sid == RECORDING
    assert event.event_id == f"{RECORDING}#completed"
    assert (event.caller, event.called, event.team) == (None, None, None)
    assert event.metadata["RecordingStatus"] == "completed"
    assert event.metadata["RecordingSource"] == "RecordVerb"


def test_record_action_without_a_recording_sid_takes_it_from_the_recording_url(policy: Policy) -> None:
    # Given an action request that leaves RecordingSid out (older API versions)
    action = call_event(CallEventKind.RECORDING, voice_form(RecordingUrl=RECORDING_URL + ".wav"), policy)
    status = call_event(
        CallEventKind.RECORDING,
        {"CallSid": CALL, "RecordingSid": RECORDING, "RecordingUrl": RECORDING_URL, "RecordingStatus": "completed"},
        policy,
    )
    # Then both callbacks name the same recording, and are two distinct events
    assert action.recording is not None and status.recording is not None
    assert action.recording.sid == status.recording.sid == RECORDING
    assert action.event_id != status.event_id


def test_transcription_callback_is_a_transcription_event_naming_its_recording(policy: Policy) -> None:
    # Given the transcribeCallback
    form = voice_form(
        CallStatus="completed",
        TranscriptionSid=TRANSCRIPTION,
        TranscriptionStatus="completed",
        TranscriptionText="Bonjour, c'est Marc, commande 2291.",
        TranscriptionUrl=f"{RECORDING_URL}/Transcriptions/{TRANSCRIPTION}",
        RecordingSid=RECORDING,
        RecordingUrl=RECORDING_URL,
    )
    event = call_event(CallEventKind.TRANSCRIPTION, form, policy)
    # Then it carries the transcript and the recording it belongs to (it may arrive before the recording)
    assert event.transcript is not None
    assert (event.transcript.sid, event.transcript.status, event.transcript.text) == (
        TRANSCRIPTION,
        "completed",
        "Bonjour, c'est Marc, commande 2291.",
    )
    assert event.recording is not None and (event.recording.sid, event.recording.duration_s) == (RECORDING, None)
    assert (event.event_id, event.caller, event.team) == (TRANSCRIPTION, CALLER, "support")


def test_failed_transcription_has_no_text(policy: Policy) -> None:
    form = voice_form(TranscriptionSid=TRANSCRIPTION, TranscriptionStatus="failed", TranscriptionText="")
    event = call_event(CallEventKind.TRANSCRIPTION, form, policy)
    assert event.transcript is not None and (event.transcript.status, event.transcript.text) == ("failed", None)


def test_call_status_callback_is_a_status_event_with_the_duration(policy: Policy) -> None:
    # Given the status callback of a call that ended after 41 s
    form = voice_form(
        CallStatus="completed", CallDuration="41", CallbackSource="call-progress-events", SequenceNumber="0"
    )
    event = call_event(CallEventKind.STATUS, form, policy)
    # Then the event says how the call ended and how long it lasted
    assert (event.call_status, event.duration_s, event.event_id) == ("completed", 41, f"{CALL}#status#completed")
    assert (event.caller, event.team, event.recording) == (CALLER, "support", None)
    assert event.metadata["CallbackSource"] == "call-progress-events"


def test_each_distinct_callback_has_its_own_event_id_and_a_retry_repeats_it(policy: Policy) -> None:
    # Given every kind of callback for one call, each sent twice (Twilio retries)
    forms = [
        (CallEventKind.STARTED, voice_form()),
        (CallEventKind.RECORDING, voice_form(RecordingUrl=RECORDING_URL, RecordingSid=RECORDING)),
        (CallEventKind.RECORDING, {"CallSid": CALL, "RecordingSid": RECORDING, "RecordingUrl": RECORDING_URL,
                                   "RecordingStatus": "completed"}),
        (CallEventKind.TRANSCRIPTION, voice_form(TranscriptionSid=TRANSCRIPTION, TranscriptionText="x")),
        (CallEventKind.STATUS, voice_form(CallStatus="in-progress")),
        (CallEventKind.STATUS, voice_form(CallStatus="completed", CallDuration="41")),
    ]  # fmt: skip
    first = [call_event(kind, form, policy).event_id for kind, form in forms]
    again = [call_event(kind, form, policy).event_id for kind, form in forms]
    # Then the ids are all different, and a retry gives the same ones
    assert len(set(first)) == len(forms)
    assert first == again


@pytest.mark.parametrize(
    ("kind", "form", "missing"),
    [
        (CallEventKind.STARTED, voice_form(CallSid=""), "CallSid"),
        (CallEventKind.RECORDING, {"RecordingUrl": RECORDING_URL}, "CallSid"),
        (CallEventKind.RECORDING, voice_form(RecordingSid=RECORDING), "RecordingUrl"),
        (CallEventKind.RECORDING, voice_form(RecordingUrl="https://example.com/audio"), "RecordingSid"),
        (CallEventKind.TRANSCRIPTION, voice_form(TranscriptionText="hello"), "TranscriptionSid"),
        (CallEventKind.STATUS, {k: v for k, v in voice_form().items() if k != "CallStatus"}, "CallStatus"),
    ],
    ids=["started-CallSid", "recording-CallSid", "recording-RecordingUrl", "recording-RecordingSid",
         "transcription-TranscriptionSid", "status-CallStatus"],
)  # fmt: skip
def test_missing_required_parameter_is_named(
    kind: CallEventKind, form: dict[str, str], missing: str, policy: Policy
) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        call_event(kind, form, policy)
    assert raised.value.field == missing


def test_duration_that_is_not_a_number_is_named(policy: Policy) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        call_event(CallEventKind.STATUS, voice_form(CallStatus="completed", CallDuration="forty"), policy)
    assert raised.value.field == "CallDuration"


@pytest.mark.parametrize("withheld", ["anonymous", "Restricted", "", "+266696687", "unknown"])
def test_withheld_caller_id_is_no_caller(withheld: str, policy: Policy) -> None:
    event = call_event(CallEventKind.STATUS, voice_form(From=withheld, CallStatus="completed"), policy)
    assert event.caller is None
    assert "From" not in event.metadata


def test_caller_that_is_not_a_phone_number_is_kept_for_the_agent(policy: Policy) -> None:
    event = call_event(CallEventKind.STARTED, voice_form(From="sip:marc@pbx.example.com"), policy)
    assert (event.caller, event.metadata["From"]) == (None, "sip:marc@pbx.example.com")


def test_call_to_an_unlisted_number_goes_to_the_default_team(policy: Policy, sales_policy: Policy) -> None:
    assert call_event(CallEventKind.STARTED, voice_form(To="+15005550006"), policy).team == "support"
    assert call_event(CallEventKind.STARTED, voice_form(To=SALES_NUMBER), sales_policy).team == "sales"
    assert call_event(CallEventKind.STARTED, voice_form(To="+15005550006"), sales_policy).team is None


def test_unknown_parameters_are_ignored_and_never_the_token(policy: Policy) -> None:
    event = call_event(CallEventKind.STARTED, voice_form(SomethingNew="1", AuthToken="secret"), policy)
    assert "SomethingNew" not in event.metadata
    assert "secret" not in event.model_dump_json()


# --------------------------------------------------------------------------------------- messages


def test_sms_is_an_inbound_sms_message_on_the_contacts_thread(policy: Policy) -> None:
    # Given an SMS to our number
    mapped = inbound(sms_form(NumSegments="2"), policy)
    # Then it is an SMS from the sender's E.164 number, for the number's team, threaded per contact
    assert (mapped.channel, mapped.provider, mapped.provider_message_id) == (Channel.SMS, "twilio", MESSAGE)
    assert (mapped.sender.phone, mapped.sender.name, mapped.sender.email) == ("+33671234589", None, None)
    assert (mapped.team, mapped.subject, mapped.text) == ("support", None, "Ma commande n'est pas arrivée.")
    assert mapped.thread_key == "sms#+33671234589"
    assert (mapped.dedupe_window_s, mapped.attachments) == (8 * 86400, ())
    assert (mapped.receipt_id, mapped.received_at, mapped.raw_archive_key) == (RECEIPT_ID, RECEIVED_AT, "raw/m/1")
    assert mapped.metadata["NumSegments"] == "2"
    assert mapped.metadata["To"] == OUR_NUMBER


def test_whatsapp_message_is_on_the_whatsapp_channel_with_the_same_phone_identity(policy: Policy) -> None:
    # Given a WhatsApp message through Twilio, from a contact who also texts us
    form = sms_form(From="whatsapp:+33671234589", To=f"whatsapp:{OUR_NUMBER}", ProfileName="Inès", WaId="33671234589")
    mapped = inbound(form, policy)
    sms = inbound(sms_form(), policy)
    # Then it is WhatsApp, the phone is the same E.164 as their SMS, and the conversations are separate
    assert (mapped.channel, mapped.sender.phone, mapped.sender.name) == (Channel.WHATSAPP, sms.sender.phone, "Inès")
    assert mapped.thread_key == "whatsapp#+33671234589" != sms.thread_key
    assert (mapped.team, mapped.metadata["WaId"]) == ("support", "33671234589")


def test_mms_media_become_attachments_at_the_provider(policy: Policy) -> None:
    # Given an MMS with two media (listed out of order)
    media = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/"
    form = sms_form(
        NumMedia="2",
        MediaUrl1=media + "ME" + "2" * 32,
        MediaContentType1="application/pdf",
        MediaUrl0=media + "ME" + "1" * 32,
        MediaContentType0="image/jpeg",
    )
    mapped = inbound(form, policy)
    # Then each is an attachment, in order, named after its media SID, with its type and its URL
    assert [(a.filename, a.content_type, a.url) for a in mapped.attachments] == [
        ("ME" + "1" * 32 + ".jpg", "image/jpeg", media + "ME" + "1" * 32),
        ("ME" + "2" * 32 + ".pdf", "application/pdf", media + "ME" + "2" * 32),
    ]
    assert all(a.s3_key is None for a in mapped.attachments)


def test_media_without_a_body_is_still_a_message(policy: Policy) -> None:
    mapped = inbound(sms_form(Body="", NumMedia="1", MediaUrl0="https://media.example/x"), policy)
    assert (mapped.text, mapped.attachments[0].filename, mapped.attachments[0].content_type) == (
        "",
        "media-0.bin",
        "application/octet-stream",
    )


def test_location_becomes_a_readable_text_with_coordinates_and_a_map_link(policy: Policy) -> None:
    # Given a WhatsApp location with a name and an address
    form = sms_form(
        From="whatsapp:+33612098765",
        Body="",
        MessageType="location",
        Latitude="48.8462",
        Longitude="2.3372",
        Address="58 Rue de Vaugirard, 75006 Paris",
        Label="Relais Vaugirard",
    )
    mapped = inbound(form, policy)
    # Then an agent reads where it is and can open it on a map
    assert mapped.text == (
        "Shared location: Relais Vaugirard, 58 Rue de Vaugirard, 75006 Paris\n"
        "Coordinates: 48.8462, 2.3372\n"
        "Map: https://www.google.com/maps/search/?api=1&query=48.8462,2.3372"
    )
    assert mapped.metadata["MessageType"] == "location"


def test_location_follows_the_body_and_bad_coordinates_are_kept_as_sent(policy: Policy) -> None:
    mapped = inbound(sms_form(Body="Je suis ici", Latitude="north", Longitude="2.3"), policy)
    assert mapped.text == "Je suis ici\n\nShared location\nCoordinates: north, 2.3"


@pytest.mark.parametrize("status", ["queued", "sent", "delivered", "read", "failed", "undelivered", "canceled"])
def test_status_callback_is_a_message_status_never_a_message(status: str, policy: Policy) -> None:
    # Given a status callback about a message we sent (from our number to the customer)
    form = {"MessageSid": MESSAGE, "MessageStatus": status, "SmsSid": MESSAGE, "SmsStatus": status,
            "From": OUR_NUMBER, "To": "+33671234589", "AccountSid": ACCOUNT}  # fmt: skip
    if status in ("failed", "undelivered"):
        form["ErrorCode"] = "30003"
    mapped = message(form, policy)
    # Then it is that message's status, with the error code when it failed
    assert mapped == twilio.MessageStatus(MESSAGE, status, "30003" if status in ("failed", "undelivered") else None)


def test_whatsapp_status_callback_with_only_sms_status_is_a_status(policy: Policy) -> None:
    form = {"SmsSid": MESSAGE, "SmsStatus": "read", "From": f"whatsapp:{OUR_NUMBER}", "To": "whatsapp:+33612098765"}
    assert message(form, policy) == twilio.MessageStatus(MESSAGE, "read", None)


def test_message_to_an_unlisted_number_goes_to_the_default_team(policy: Policy, sales_policy: Policy) -> None:
    assert inbound(sms_form(To="+15005550006"), policy).team == "support"
    assert inbound(sms_form(To=f"whatsapp:{SALES_NUMBER}", From="whatsapp:+33612098765"), sales_policy).team == "sales"
    with pytest.raises(FieldInvalidError) as raised:
        message(sms_form(To="+15005550006"), sales_policy)
    assert raised.value.field == "To"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"MessageSid": "", "SmsSid": ""}, "MessageSid"),
        ({"From": ""}, "From"),
        ({"From": "messenger:1234567890"}, "From"),
        ({"From": "+33"}, "From"),
    ],
    ids=["no-MessageSid", "no-From", "not-a-phone", "too-short"],
)
def test_message_missing_or_bad_parameter_is_named(form: dict[str, str], field: str, policy: Policy) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        message(sms_form(**form), policy)
    assert raised.value.field == field


def test_message_sid_may_come_as_sms_sid_only(policy: Policy) -> None:
    form = {k: v for k, v in sms_form().items() if k != "MessageSid"}
    assert inbound(form, policy).provider_message_id == MESSAGE


# ----------------------------------------------------------------------------------------- params

FORM = "application/x-www-form-urlencoded"


def request(body: bytes, content_type: str) -> WebhookRequest:
    return WebhookRequest("POST", twilio.MESSAGING_PATH, "", {"content-type": content_type}, body)


def test_form_params_keep_order_and_repeated_names() -> None:
    body = b"Body=caf%C3%A9+%E2%98%95&To=%2B33186950000&Tag=b&Tag=a&Empty="
    assert twilio.params(request(body, f"{FORM}; charset=UTF-8")) == [
        ("Body", "café ☕"),
        ("To", "+33186950000"),
        ("Tag", "b"),
        ("Tag", "a"),
        ("Empty", ""),
    ]


@pytest.mark.parametrize("body", [b"Body=\xff", b"Body=%FF%FE"], ids=["raw-bytes", "percent-encoded"])
def test_form_that_is_not_utf8_is_refused(body: bytes) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        twilio.params(request(body, FORM))
    assert raised.value.field == "(body)"


def test_json_params_are_its_members_as_text() -> None:
    body = b'{"CallSid": "CA1", "Duration": 12, "Flags": [1, "x"], "Gone": null}'
    assert twilio.params(request(body, "application/json")) == [
        ("CallSid", "CA1"),
        ("Duration", "12"),
        ("Flags", '[1, "x"]'),
    ]


@pytest.mark.parametrize("body", [b"[1, 2]", b"{not json", b"\xff"], ids=["array", "malformed", "not-utf8"])
def test_json_that_is_not_an_object_is_refused(body: bytes) -> None:
    with pytest.raises(FieldInvalidError):
        twilio.params(request(body, "application/json"))


def test_other_media_types_are_unsupported() -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        twilio.params(request(b"<xml/>", "text/xml"))


# ---------------------------------------------------------------------------------------- samples

KINDS = {
    twilio.VOICE_PATH: CallEventKind.STARTED,
    twilio.RECORDING_PATH: CallEventKind.RECORDING,
    twilio.TRANSCRIPTION_PATH: CallEventKind.TRANSCRIPTION,
    twilio.STATUS_PATH: CallEventKind.STATUS,
}


def mapped_sample(path: Path, policy: Policy) -> Any:
    sample = samples.load(path)
    form = sample["form"]
    if sample["path"] == twilio.MESSAGING_PATH:
        return message(form, policy)
    return call_event(KINDS[sample["path"]], form, policy)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_maps_cleanly(path: Path, policy: Policy) -> None:
    mapped = mapped_sample(path, policy)
    assert isinstance(mapped, CallEvent | InboundMessage | twilio.MessageStatus)


def test_samples_tell_one_voicemail_one_missed_call_and_three_conversations(policy: Policy) -> None:
    # Given every sample, mapped
    mapped = [mapped_sample(path, policy) for path in SAMPLES]
    calls = {e.call_sid for e in mapped if isinstance(e, CallEvent)}
    threads = [m.thread_key for m in mapped if isinstance(m, InboundMessage)]
    # Then there are two calls (one with a recording and its transcript), three conversations
    # (three SMS, one MMS, two WhatsApp messages), and one status callback
    assert len(calls) == 2
    assert sum(1 for e in mapped if isinstance(e, CallEvent) and e.transcript is not None) == 1
    assert sorted(threads.count(key) for key in set(threads)) == [1, 2, 3]
    assert sum(1 for m in mapped if isinstance(m, twilio.MessageStatus)) == 1


# ------------------------------------------------------------------------------------- voicemail recordings


def _recording_event(kind: CallEventKind = CallEventKind.RECORDING) -> CallEvent:
    return CallEvent(
        kind=kind,
        provider="twilio",
        call_sid="CA1",
        event_id=f"{kind.value}:RE1",
        receipt_id=RECEIPT_ID,
        received_at=RECEIVED_AT,
        raw_archive_key="raw/x",
        recording=Recording(sid="RE1", url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"),
    )


def _worker(secrets: dict[str, str], put: list[tuple[Attachment, bytes]]) -> WorkerContext:
    api = SendContext(secret=Secrets(environ=secrets).get, public_base_url="", twilio_api_url="http://127.0.0.1:9")
    teams = parse_policy({"teams": {"support": {"name": "Support"}}})
    return WorkerContext(teams, api, lambda a, content: put.append((a, content)), lambda: True)


def test_a_recording_is_left_at_twilio_without_credentials_and_nothing_is_called(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stored: list[tuple[Attachment, bytes]] = []
    event = _recording_event()

    assert twilio.prepare_call(event, _worker({}, stored)) == event
    assert stored == []
    [warned] = [r for r in caplog.records if r.getMessage().startswith("voicemail recording not archived")]
    assert getattr(warned, "why", "") == "no TWILIO_ACCOUNT_SID is configured"


def test_only_the_recordings_own_callbacks_fetch_it_not_the_transcripts() -> None:
    stored: list[tuple[Attachment, bytes]] = []
    transcribed = _recording_event(CallEventKind.TRANSCRIPTION)
    credentials = {"INTAKE_TWILIO_ACCOUNT_SID": "AC1", "INTAKE_TWILIO_AUTH_TOKEN": "t"}

    assert twilio.prepare_call(transcribed, _worker(credentials, stored)) == transcribed
    assert stored == []
