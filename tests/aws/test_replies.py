"""Agents' replies on the AWS path: the API function queues them on the sender FIFO queue (SQS), the sender function
sends them through the provider (a fake of Twilio's and Meta's APIs over real HTTP), and the receiver and ingest
functions move their state with the providers' status reports (an email reply's: SES's bounces and deliveries, through
the feedback function), all on moto's DynamoDB, S3, SQS and SES."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from intake import runtime
from intake.local.gateway import LocalContext, api_event
from intake.local.workers import poll_once
from intake.queues import SqsQueue
from tests.aws.conftest import SECRETS, Stack
from tests.aws.test_least_privilege import Recorder, _outside, recorder
from tests.aws.test_mail_feedback import logged, report, sample
from tests.aws.test_satisfaction import email_ticket
from tests.fake_providers import FakeProviders

OUR_NUMBER = "+33186950000"
APP_SECRET = "test-whatsapp-secret"
__all__ = ["recorder"]  # the fixture recording each function's requests (test_least_privilege)


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    fake = FakeProviders(auth_token=SECRETS["INTAKE_TWILIO_AUTH_TOKEN"]).start()
    for name, value in fake.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INTAKE_WHATSAPP_APP_SECRET", APP_SECRET)
    runtime.reset()  # the stack's functions read their settings already (a handler's import reads them)
    yield fake
    fake.stop()


def test_a_reply_is_queued_on_sqs_then_sent_through_twilio_and_meets_the_first_response(
    stack: Stack, providers: FakeProviders
) -> None:
    customer, ticket_id = _sms_ticket(stack)

    status, answer = _reply(stack, ticket_id, "Your parcel left today.", key="k-1")

    assert status == 202, answer
    assert answer["state"] == "queued"
    assert stack.queued("sender") == 1
    assert providers.received("twilio") == []  # nothing is sent before the answer
    assert _send(stack) == 1
    [sent] = providers.received("twilio")
    assert (sent.value("To"), sent.value("From"), sent.value("Body")) == (
        customer,
        OUR_NUMBER,
        "Your parcel left today.",
    )
    reply = _message(stack, ticket_id, answer["reply_id"])
    assert reply["state"] == "sent" and reply["provider_message_id"] == sent.answer["sid"]
    assert _timer(stack, ticket_id, "first_response") == "met"
    assert stack.queued("sender") == 0


def test_the_same_idempotency_key_answers_the_same_reply_and_queues_nothing_more_once_sent(
    stack: Stack, providers: FakeProviders
) -> None:
    _, ticket_id = _sms_ticket(stack)
    _, first = _reply(stack, ticket_id, "Hello", key="same")
    _send(stack)

    status, again = _reply(stack, ticket_id, "Hello", key="same")

    assert status == 202
    assert again["reply_id"] == first["reply_id"] and again["state"] == "sent"
    assert stack.queued("sender") == 0
    assert len(providers.received("twilio")) == 1


def test_twilio_status_callbacks_move_the_reply_forward_never_back(stack: Stack, providers: FakeProviders) -> None:
    customer, ticket_id = _sms_ticket(stack)
    _, answer = _reply(stack, ticket_id, "On its way", key="k-2")
    _send(stack)
    sid = providers.received("twilio")[0].answer["sid"]

    _twilio_status(stack, sid, customer, "delivered")
    stack.work()
    delivered = _message(stack, ticket_id, answer["reply_id"])
    _twilio_status(stack, sid, customer, "sent")  # late, out of order
    stack.work()

    assert delivered["state"] == "delivered"
    assert _message(stack, ticket_id, answer["reply_id"])["state"] == "delivered"
    assert len(stack.tickets()) == 1  # a status opens nothing


def test_a_status_about_a_message_intake_did_not_send_changes_nothing(stack: Stack, providers: FakeProviders) -> None:
    _twilio_status(stack, "SM" + uuid.uuid4().hex, "+33671234589", "delivered")

    assert stack.work() == 1
    assert stack.tickets() == []


def test_a_status_that_comes_before_the_send_is_recorded_moves_the_reply_once_it_is(
    stack: Stack, providers: FakeProviders
) -> None:
    # Given a reply whose send Twilio will answer with a known SID
    customer, ticket_id = _sms_ticket(stack)
    _, answer = _reply(stack, ticket_id, "It ships today.", key="k-early")
    sid = "SM" + uuid.uuid4().hex
    providers.next_sids.append(sid)
    # When Twilio's delivered callback for it is worked before the sender has recorded the send
    _twilio_status(stack, sid, customer, "delivered")
    stack.work()
    assert _message(stack, ticket_id, answer["reply_id"])["state"] == "queued"
    _send(stack)

    # Then the held report moves the reply on as soon as the send is recorded
    assert _message(stack, ticket_id, answer["reply_id"])["state"] == "delivered"
    assert stack.queued() == 0


def test_a_refused_reply_fails_with_twilios_error_and_counts_as_no_response(
    stack: Stack, providers: FakeProviders
) -> None:
    _, ticket_id = _sms_ticket(stack)
    _, answer = _reply(stack, ticket_id, "Hi", key="k-3")
    providers.refuse(21610, "Attempt to send to unsubscribed recipient")

    _send(stack)

    reply = _message(stack, ticket_id, answer["reply_id"])
    assert reply["state"] == "failed"
    assert reply["error"] == "Twilio error 21610: Attempt to send to unsubscribed recipient (HTTP 400)"
    assert _timer(stack, ticket_id, "first_response") == "running"
    assert stack.queued("sender") == 0


def test_a_provider_down_leaves_the_reply_queued_with_its_error_for_the_queue_to_retry(
    stack: Stack, providers: FakeProviders
) -> None:
    _, ticket_id = _sms_ticket(stack)
    _, answer = _reply(stack, ticket_id, "Hi", key="k-4")
    providers.fail(3, 503)  # every try of this delivery

    assert _send(stack) == 0

    reply = _message(stack, ticket_id, answer["reply_id"])
    assert reply["state"] == "queued"
    assert "HTTP 503" in reply["error"]
    assert stack.queued("sender") == 1  # in flight: SQS hands it out again after the visibility timeout
    assert [r.status for r in providers.received("twilio")] == [503, 503, 503]


def test_whatsapp_statuses_on_the_webhook_move_the_cloud_api_reply_to_read(
    stack: Stack, providers: FakeProviders
) -> None:
    wa_id = "33612345678"
    _whatsapp(stack, {"contacts": [{"profile": {"name": "Wendy"}, "wa_id": wa_id}], "messages": [_wa_text(wa_id)]})
    stack.work()
    ticket_id = stack.tickets()[0]["PK"]["S"].removeprefix("TICKET#")
    _, answer = _reply(stack, ticket_id, "Bonjour!", key="k-5")
    _send(stack)
    [sent] = providers.received("whatsapp")
    wamid = sent.answer["messages"][0]["id"]

    for state in ("delivered", "read"):
        _whatsapp(stack, {"statuses": [{"id": wamid, "status": state, "timestamp": str(int(time.time()))}]})
    stack.work()

    assert sent.document["to"] == wa_id and sent.document["text"]["body"] == "Bonjour!"
    assert _message(stack, ticket_id, answer["reply_id"])["state"] == "read"


def test_the_senders_requests_are_within_its_grants(stack: Stack, providers: FakeProviders, recorder: Recorder) -> None:
    from infra.constructs.replies import SENDER_ITEMS

    # Given two replies on an SMS ticket, the first of which Twilio refuses for good
    _, ticket_id = _sms_ticket(stack)
    _reply(stack, ticket_id, "First", key="lp-1")
    _reply(stack, ticket_id, "Second", key="lp-2")
    providers.refuse(21211, "The 'To' number is not a valid phone number.")

    # When the sender sends them
    with recorder.running("Sender"):
        while _send(stack):
            pass

    # Then each table request is one of its grants: the reply and its ticket, its route, the response; no index
    requests = recorder.items["Sender"]
    assert {(r.action, r.partition_key.split("#")[0]) for r in requests} >= {
        ("dynamodb:GetItem", "TICKET"),
        ("dynamodb:Query", "TICKET"),
        ("dynamodb:UpdateItem", "TICKET"),
        ("dynamodb:PutItem", "OUT"),
    }
    assert _outside(requests, SENDER_ITEMS) == []


# ------------------------------------------------------------------------------------------- helpers


def test_an_email_reply_that_bounces_fails_with_the_servers_words_and_one_that_arrives_is_delivered(
    stack: Stack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two emailed tickets, each answered by an agent, the replies sent through SES (moto's)
    tickets = [email_ticket(stack, subject, f"{n}@mail.example.org") for n, subject in enumerate(("Refund", "Invoice"))]
    monkeypatch.delenv("INTAKE_OUTBOX")
    runtime.reset()
    runtime.client("ses").verify_email_identity(EmailAddress="support@example.com")
    replies = {}
    for ticket_id in tickets:
        status, answer = _reply(stack, ticket_id, "It is on its way.", key=f"reply-{ticket_id}")
        assert status == 202, answer
        replies[ticket_id] = answer["reply_id"]
    assert _send(stack) == 2
    bounced, arrived = tickets
    assert {_message(stack, t, replies[t])["state"] for t in tickets} == {"sent"}

    # When SES reports that the first bounced (her mailbox is gone) and that the second arrived
    bounce, delivery = sample("bounce-permanent"), sample("delivery")
    bounce["detail"]["mail"]["messageId"] = _ses_id(stack, bounced)
    delivery["detail"]["mail"]["messageId"] = _ses_id(stack, arrived)
    caplog.clear()
    assert report(bounce) == {"suppressed": 1, "reply": bounced}
    assert report(delivery) == {"suppressed": 0, "reply": arrived}

    # Then the first reply failed, saying why as SES does, and the second is delivered
    failed = _message(stack, bounced, replies[bounced])
    assert (failed["state"], failed["error"]) == (
        "failed",
        "bounced (Permanent, General): smtp; 550 5.1.1 user unknown",
    )
    assert _message(stack, arrived, replies[arrived])["state"] == "delivered"
    assert "email reply state reported by SES" in logged(caplog) and "ana.silva" not in logged(caplog).lower()
    # And a report again, or one that comes after the state moved past it, changes nothing
    assert report(bounce)["reply"] is None and report(delivery)["reply"] is None
    delivery["detail"]["mail"]["messageId"] = _ses_id(stack, bounced)
    assert report(delivery)["reply"] is None
    assert _message(stack, bounced, replies[bounced])["state"] == "failed"


def _ses_id(stack: Stack, ticket_id: str) -> str:
    """The id SES answered when the ticket's reply was sent (its Message-ID `<id>@email.amazonses.com`)."""
    [route] = [
        item["PK"]["S"]
        for item in stack.items()
        if item["PK"]["S"].startswith("OUT#email#")
        and item["PK"]["S"].endswith("@email.amazonses.com")
        and item.get("ticket_id", {}).get("S") == ticket_id
    ]
    return route.removeprefix("OUT#email#").removesuffix("@email.amazonses.com")


def _sms_ticket(stack: Stack) -> tuple[str, str]:
    prepared = stack.prepare("08-sms-conversation-1.json")
    status, _, _ = stack.post_raw(prepared.path, prepared.body, prepared.headers)  # TwiML
    assert status == 200
    stack.work()
    [ticket] = stack.tickets()
    return "+33671234589", ticket["PK"]["S"].removeprefix("TICKET#")


def _reply(stack: Stack, ticket_id: str, text: str, *, key: str) -> tuple[int, dict[str, Any]]:
    from intake.handlers import api

    body = json.dumps({"text": text, "by": "ana"}).encode()
    headers = {"content-type": "application/json", "idempotency-key": key}
    event = api_event("POST", f"/tickets/{ticket_id}/replies", headers, body, "127.0.0.1")
    result = api.handler(event, LocalContext("api", "req-reply"))
    return result["statusCode"], json.loads(result["body"])


def _send(stack: Stack) -> int:
    """One poll of the sender queue by the sender function; how many replies it finished with."""
    from intake.handlers import sender

    url = stack.resources.queue_urls["sender"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return poll_once(SqsQueue(stack.sqs, url), arn, "sender", sender.handler, wait_s=0)


def _message(stack: Stack, ticket_id: str, reply_id: str) -> dict[str, Any]:
    status, detail = stack.get(f"/tickets/{ticket_id}")
    assert status == 200
    found: dict[str, Any] = next(m for m in detail["messages"] if m["receipt_id"] == reply_id)
    return found


def _timer(stack: Stack, ticket_id: str, target: str) -> str:
    status, detail = stack.get(f"/tickets/{ticket_id}")
    assert status == 200
    return str(next(t["state"] for t in detail["sla"] if t["target"] == target))


def _twilio_status(stack: Stack, sid: str, customer: str, state: str) -> None:
    params = {"MessageSid": sid, "MessageStatus": state, "From": OUR_NUMBER, "To": customer}
    url = "http://127.0.0.1:8080/webhooks/twilio/messaging"  # the public base URL Twilio signed
    data = url + "".join(k + v for k, v in sorted(params.items()))
    digest = hmac.new(SECRETS["INTAKE_TWILIO_AUTH_TOKEN"].encode(), data.encode(), hashlib.sha1).digest()
    signature = base64.b64encode(digest).decode()
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
    status, _, _ = stack.post_raw("/webhooks/twilio/messaging", urlencode(params).encode(), headers)
    assert status == 200


def _wa_text(wa_id: str) -> dict[str, Any]:
    wamid = "wamid." + uuid.uuid4().hex
    return {"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), "type": "text", "text": {"body": "Allo"}}


def _whatsapp(stack: Stack, value: dict[str, Any]) -> None:
    metadata = {"display_phone_number": "33186950001", "phone_number_id": "106540352242922"}
    change = {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": metadata, **value}}
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "x-hub-signature-256": signature}
    status, _ = stack.post("/webhooks/whatsapp", body, headers)
    assert status == 200
