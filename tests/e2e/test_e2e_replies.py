"""End to end: agents answer where the customer wrote, through a real `intake serve` and fake providers.

One `intake serve` for the module, its Twilio and Graph API roots pointed at `tests.fake_providers` (a real HTTP
server that checks auth and request shape as the providers document them). Each test writes in as a customer on
one channel (a signed Twilio webhook, a signed WhatsApp webhook, an email handed over as SES would, a signed form),
replies over `POST /tickets/{id}/replies`, and checks what reached the provider, the reply's state as the
provider's signed status reports move it, the first-response clock, and that the customer's next message threads
onto the same ticket.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.fake_providers import ACCESS_TOKEN, ACCOUNT_SID, AUTH_TOKEN, FakeProviders, Received

from .client import CONTACT_SECRET, Response, Server, form_headers, run, wait_until

OUR_NUMBER = "+33186950000"  # intake.yaml's Twilio number
WHATSAPP_NUMBER_ID = "106540352242922"  # intake.yaml's WhatsApp Cloud number
APP_SECRET = "e2e-whatsapp-secret"  # client.SECRETS' INTAKE_WHATSAPP_APP_SECRET
WAIT_S = 20.0


@pytest.fixture(scope="module")
def providers() -> Iterator[FakeProviders]:
    fake = FakeProviders().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def intake(
    launch: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory, providers: FakeProviders
) -> Iterator[Server]:
    # a reply that failed for now is tried again 2 s later, not after the sender queue's 120 s
    settings = {**providers.environment(), "INTAKE_VISIBILITY_TIMEOUT_S": "2"}
    server = launch(tmp_path_factory.mktemp("replies"), settings=settings)
    yield server
    server.stop()


# ------------------------------------------------------------------------------------------------ SMS


def test_sms_reply_reaches_twilio_from_the_number_written_to_and_its_status_callback_marks_it_delivered(
    intake: Server, providers: FakeProviders
) -> None:
    customer = _mobile()
    first = _twilio_message(intake, customer, "Where is my order?")
    ticket = _ticket_of(intake, first)
    assert _clock(intake, ticket["id"], "first_response") == "running"
    picture = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes

    answer = _reply(intake, ticket["id"], "It ships today.", attachments=[("label.png", "image/png", picture)])

    assert answer.status == 202, answer.body
    assert answer.json()["state"] == "queued"
    assert answer.headers["location"] == f"/tickets/{ticket['id']}"
    sent = _one_sent(providers, "twilio", lambda r: r.value("To") == customer)
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert sent.value("From") == OUR_NUMBER
    assert sent.value("Body") == "It ships today."
    assert sent.value("StatusCallback") == intake.url + "/webhooks/twilio/messaging"
    assert sent.fetched == [picture]  # the MediaUrl served the agent's file to the provider
    reply = _state(intake, ticket["id"], answer.json()["reply_id"], "sent")
    assert reply["provider_message_id"] == sent.answer["sid"]
    assert _met(intake, ticket["id"])

    _twilio_status(intake, sent, "delivered")

    _state(intake, ticket["id"], answer.json()["reply_id"], "delivered")
    again = _twilio_message(intake, customer, "Thanks!")
    assert _ticket_of(intake, again)["id"] == ticket["id"]


def test_a_reply_twilio_reports_undelivered_shows_failed_with_the_reason(
    intake: Server, providers: FakeProviders
) -> None:
    customer = _mobile()
    ticket = _ticket_of(intake, _twilio_message(intake, customer, "Hello?"))
    answer = _reply(intake, ticket["id"], "We are on it.")
    sent = _one_sent(providers, "twilio", lambda r: r.value("To") == customer)
    _state(intake, ticket["id"], answer.json()["reply_id"], "sent")

    _twilio_status(intake, sent, "undelivered", ErrorCode="30005")

    failed = _state(intake, ticket["id"], answer.json()["reply_id"], "failed")
    assert "30005" in failed["error"]


def test_the_same_idempotency_key_twice_sends_one_reply_and_answers_the_same(
    intake: Server, providers: FakeProviders
) -> None:
    customer = _mobile()
    ticket = _ticket_of(intake, _twilio_message(intake, customer, "Anyone there?"))
    key = uuid.uuid4().hex

    first = _reply(intake, ticket["id"], "Yes, we are.", key=key)
    second = _reply(intake, ticket["id"], "Yes, we are.", key=key)
    other = _reply(intake, ticket["id"], "Something else", key=key)

    assert first.status == second.status == 202
    assert second.json()["reply_id"] == first.json()["reply_id"]
    assert other.status == 422 and other.json()["type"] == "urn:intake:problem:idempotency-key-reused"
    _state(intake, ticket["id"], first.json()["reply_id"], "sent")
    time.sleep(1)  # a second send would have been made by now
    assert len([r for r in providers.received("twilio") if r.value("To") == customer]) == 1
    outbound = [m for m in intake.detail(ticket["id"])["messages"] if m["direction"] == "outbound"]
    assert len(outbound) == 1


def test_a_provider_failing_once_then_taking_the_reply_sends_it_once(intake: Server, providers: FakeProviders) -> None:
    customer = _mobile()
    ticket = _ticket_of(intake, _twilio_message(intake, customer, "Is it fixed?"))
    providers.fail(1, 500)

    answer = _reply(intake, ticket["id"], "Fixed now.")

    reply = _state(intake, ticket["id"], answer.json()["reply_id"], "sent")
    tries = [r for r in providers.received("twilio") if r.value("To") == customer]
    assert [t.status for t in tries] == [500, 201]
    assert reply["provider_message_id"] == tries[1].answer["sid"]
    assert reply.get("error") is None


def test_a_reply_twilio_refuses_for_good_fails_with_its_error_and_stops_no_clock(
    intake: Server, providers: FakeProviders
) -> None:
    customer = _mobile()
    ticket = _ticket_of(intake, _twilio_message(intake, customer, "Please answer"))
    providers.refuse(21610, "Attempt to send to unsubscribed recipient")

    answer = _reply(intake, ticket["id"], "Here we are.")

    failed = _state(intake, ticket["id"], answer.json()["reply_id"], "failed")
    assert "21610" in failed["error"] and "unsubscribed" in failed["error"]
    assert _clock(intake, ticket["id"], "first_response") == "running"


# ------------------------------------------------------------------------------------------- WhatsApp


def test_whatsapp_reply_inside_the_window_is_free_text_and_its_statuses_move_it_to_read(
    intake: Server, providers: FakeProviders
) -> None:
    wa_id = _mobile().lstrip("+")
    first = _whatsapp_message(intake, wa_id, "Bonjour, my parcel?", at=datetime.now(UTC))
    ticket = _ticket_of(intake, first)

    answer = _reply(intake, ticket["id"], "It left the depot.")

    assert answer.status == 202, answer.body
    sent = _one_sent(providers, "whatsapp", lambda r: r.document.get("to") == wa_id)
    assert sent.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert sent.path == f"/v21.0/{WHATSAPP_NUMBER_ID}/messages"
    assert sent.document == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": wa_id,
        "type": "text",
        "text": {"preview_url": False, "body": "It left the depot."},
    }
    wamid = sent.answer["messages"][0]["id"]
    reply_id = answer.json()["reply_id"]
    _state(intake, ticket["id"], reply_id, "sent")
    assert _met(intake, ticket["id"])

    _whatsapp_status(intake, wamid, wa_id, "delivered")
    _state(intake, ticket["id"], reply_id, "delivered")
    _whatsapp_status(intake, wamid, wa_id, "read")
    _state(intake, ticket["id"], reply_id, "read")

    again = _whatsapp_message(intake, wa_id, "Merci!", at=datetime.now(UTC))
    assert _ticket_of(intake, again)["id"] == ticket["id"]


def test_whatsapp_reply_after_the_window_needs_an_approved_template(intake: Server, providers: FakeProviders) -> None:
    wa_id = _mobile().lstrip("+")
    ticket = _ticket_of(intake, _whatsapp_message(intake, wa_id, "Hello?", at=datetime.now(UTC) - timedelta(hours=25)))

    refused = _reply(intake, ticket["id"], "Sorry for the wait.")
    templated = _reply(intake, ticket["id"], "Sorry for the wait.", template="support_followup")

    assert refused.status == 409
    problem = refused.json()
    assert problem["type"] == "urn:intake:problem:window-closed"
    assert problem["templates"] == ["support_followup"]
    assert templated.status == 202, templated.body
    sent = _one_sent(providers, "whatsapp", lambda r: r.document.get("to") == wa_id)
    assert sent.document["type"] == "template"
    template = sent.document["template"]
    assert template["name"] == "support_followup"
    assert template["language"] == {"code": "en_US"}
    parameters = [p["text"] for p in template["components"][0]["parameters"]]
    assert parameters == ["Wendy Test", ticket["reference"], "Sorry for the wait."]
    _state(intake, ticket["id"], templated.json()["reply_id"], "sent")


# ---------------------------------------------------------------------------------------------- email


def test_email_reply_threads_under_the_customers_mail_and_their_answer_joins_the_ticket(intake: Server) -> None:
    mark = uuid.uuid4().hex[:10]
    customer = f"erin.{mark}@customer.example"
    first_id = f"{mark}@customer.example"
    _email(intake, customer, f"Broken widget {mark}", "It broke after a day.", message_id=first_id)
    ticket = wait_until(lambda: _by_subject(intake, f"Broken widget {mark}"), WAIT_S, "the email's ticket")

    answer = _reply(
        intake, ticket["id"], "Sorry! A new one is on its way.", attachments=[("rma.txt", "text/plain", b"RMA 42")]
    )

    assert answer.status == 202, answer.body
    reply = _state(intake, ticket["id"], answer.json()["reply_id"], "sent")
    mail = _outbox_mail(intake, customer)
    assert mail["From"] == "Customer Support <support@example.com>"
    assert mail["Subject"] == f"Re: Broken widget {mark} [#{ticket['reference']}]"
    assert mail["In-Reply-To"] == f"<{first_id}>"
    assert f"<{first_id}>" in mail["References"]
    assert mail["Message-ID"].strip("<>") == reply["provider_message_id"]
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    content = text.get_content()
    assert content.startswith("Sorry! A new one is on its way.")
    assert "> It broke after a day." in content
    attached = [part for part in mail.iter_attachments() if part.get_filename() == "rma.txt"]
    assert attached and attached[0].get_content() == "RMA 42"
    assert _met(intake, ticket["id"])

    _email(
        intake,
        customer,
        f"Re: Broken widget {mark}",  # no reference token: it threads by the Message-ID it answers
        "Got it, thanks.",
        message_id=f"{mark}.2@customer.example",
        in_reply_to=mail["Message-ID"],
    )

    joined = wait_until(lambda: _with_messages(intake, ticket["id"], 3), WAIT_S, "the customer's answer")
    assert joined["messages"][-1]["text"].startswith("Got it, thanks.")


# ----------------------------------------------------------------------------------------- voicemail


def test_a_voicemail_is_answered_by_sms_to_a_mobile_caller_and_refused_for_a_landline(
    intake: Server, providers: FakeProviders
) -> None:
    mobile, landline = _mobile(), "+3314" + str(uuid.uuid4().int)[:7]
    mobile_ticket = _ticket_of(intake, _voicemail(intake, mobile))
    landline_ticket = _ticket_of(intake, _voicemail(intake, landline))

    answered = _reply(intake, mobile_ticket["id"], "We got your message: call us at 10.")
    refused = _reply(intake, landline_ticket["id"], "We got your message.")

    assert answered.status == 202, answered.body
    sent = _one_sent(providers, "twilio", lambda r: r.value("To") == mobile)
    assert sent.value("From") == OUR_NUMBER
    assert sent.value("Body") == "We got your message: call us at 10."
    assert refused.status == 409
    assert refused.json()["type"] == "urn:intake:problem:reply-undeliverable"
    assert "call them back" in refused.json()["detail"]


# --------------------------------------------------------------------------------------------- forms


def test_a_form_is_answered_by_email_from_the_cli_and_one_without_an_email_is_refused(
    intake: Server, tmp_path: Path, env: dict[str, str]
) -> None:
    mark = uuid.uuid4().hex[:10]
    address = f"fay.{mark}@customer.example"
    with_email = _form(
        intake, {"name": "Fay", "email": address, "subject": f"Invoice {mark}", "message": "Wrong total"}
    )
    phone_only = _form(intake, {"name": "Gus", "phone": _mobile(), "subject": f"Call {mark}", "message": "Call me"})
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 corrected")
    env = {**env, "INTAKE_URL": intake.url}

    done = run(
        [*_cli(), "tickets", "reply", with_email["reference"], "--text", "Corrected.", "--attach", str(invoice)], env
    )
    refused = run([*_cli(), "tickets", "reply", phone_only["reference"], "--text", "Hello"], env)

    assert done.returncode == 0, done.stderr
    assert "queued: email to " + address in done.stdout
    mail = wait_until(lambda: _outbox_mail(intake, address, wait=False), WAIT_S, "the form's answer")
    assert mail["Subject"] == f"Re: Invoice {mark} [#{with_email['reference']}]"
    assert [p.get_filename() for p in mail.iter_attachments()] == ["invoice.pdf"]
    assert refused.returncode == 1
    assert "no email address" in refused.stderr
    shown = run([*_cli(), "tickets", "show", with_email["reference"]], env)
    assert f"→ {address} · sent" in shown.stdout


# ------------------------------------------------------------------------------------------- helpers


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "intake.cli"]


def _mobile() -> str:
    return "+336" + str(uuid.uuid4().int)[:8]


def _reply(
    server: Server,
    ticket_id: str,
    text: str,
    *,
    key: str | None = None,
    template: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
) -> Response:
    body: dict[str, Any] = {"text": text, "by": "ana"}
    if template:
        body["template"] = template
    if attachments:
        body["attachments"] = [
            {"filename": name, "content_type": kind, "content_base64": base64.b64encode(content).decode()}
            for name, kind, content in attachments
        ]
    headers = {"content-type": "application/json", "idempotency-key": key or uuid.uuid4().hex}
    return server.post(f"/tickets/{ticket_id}/replies", json.dumps(body).encode(), headers)


def _ticket_of(server: Server, provider_message_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for ticket in server.tickets():
            detail = server.detail(ticket["id"])
            if any(m["provider_message_id"] == provider_message_id for m in detail["messages"]):
                return detail
        return None

    ticket: dict[str, Any] = wait_until(found, WAIT_S, f"the ticket of {provider_message_id}")
    return ticket


def _by_subject(server: Server, subject: str) -> dict[str, Any] | None:
    return next((server.detail(t["id"]) for t in server.tickets() if t["subject"] == subject), None)


def _with_messages(server: Server, ticket_id: str, count: int) -> dict[str, Any] | None:
    detail = server.detail(ticket_id)
    return detail if len(detail["messages"]) >= count else None


def _state(server: Server, ticket_id: str, reply_id: str, state: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        reply = next(m for m in server.detail(ticket_id)["messages"] if m["receipt_id"] == reply_id)
        return reply if reply["state"] == state else None

    message: dict[str, Any] = wait_until(reached, WAIT_S, f"reply {reply_id} {state}")
    return message


def _clock(server: Server, ticket_id: str, target: str) -> str | None:
    timers = {t["target"]: t["state"] for t in server.detail(ticket_id)["sla"]}
    return timers.get(target)


def _met(server: Server, ticket_id: str) -> bool:
    """The first-response clock stops once the reply is sent (right after it shows `sent`)."""
    met: bool = wait_until(lambda: _clock(server, ticket_id, "first_response") == "met", WAIT_S, "first response met")
    return met


def _one_sent(providers: FakeProviders, provider: str, matches: Callable[[Received], bool]) -> Received:
    found = wait_until(
        lambda: [r for r in providers.received(provider) if matches(r) and r.status < 300], WAIT_S, "the send"
    )
    assert len(found) == 1, found
    sent: Received = found[0]
    return sent


def _twilio_signed(server: Server, path: str, params: dict[str, str]) -> Response:
    """Signed as Twilio signs: base64(HMAC-SHA1(auth token, URL + each parameter's name and value, sorted))."""
    url = server.url + path
    data = url + "".join(k + v for k, v in sorted(params.items()))
    signature = base64.b64encode(hmac.new(AUTH_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
    answer = server.post(path, urlencode(params).encode(), headers)
    assert answer.status == 200, answer.body
    return answer


def _twilio_message(server: Server, customer: str, body: str) -> str:
    sid = "SM" + uuid.uuid4().hex
    params = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": customer, "To": OUR_NUMBER, "Body": body}
    _twilio_signed(server, "/webhooks/twilio/messaging", {**params, "NumMedia": "0", "SmsStatus": "received"})
    return sid


def _twilio_status(server: Server, sent: Received, status: str, **more: str) -> None:
    params = {
        "MessageSid": sent.answer["sid"],
        "SmsSid": sent.answer["sid"],
        "AccountSid": ACCOUNT_SID,
        "From": sent.value("From") or "",
        "To": sent.value("To") or "",
        "MessageStatus": status,
        "SmsStatus": status,
        **more,
    }
    _twilio_signed(server, "/webhooks/twilio/messaging", params)


def _voicemail(server: Server, caller: str) -> str:
    call = "CA" + uuid.uuid4().hex
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call,
        "CallStatus": "in-progress",
        "From": caller,
        "To": OUR_NUMBER,
        "Direction": "inbound",
        "RecordingDuration": "12",
        "RecordingSid": "RE" + uuid.uuid4().hex,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE{uuid.uuid4().hex}",
    }
    _twilio_signed(server, "/webhooks/twilio/voice/recording", params)
    return call


def _meta_signed(server: Server, document: dict[str, Any]) -> None:
    body = json.dumps(document).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "x-hub-signature-256": signature}
    answer = server.post("/webhooks/whatsapp", body, headers)
    assert answer.status == 200, answer.body


def _whatsapp_change(value: dict[str, Any]) -> dict[str, Any]:
    metadata = {"display_phone_number": "33186950001", "phone_number_id": WHATSAPP_NUMBER_ID}
    change = {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": metadata, **value}}
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [change]}]}


def _whatsapp_message(server: Server, wa_id: str, text: str, *, at: datetime) -> str:
    wamid = "wamid." + base64.b64encode(uuid.uuid4().bytes).decode()
    message = {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(int(at.timestamp())),
        "type": "text",
        "text": {"body": text},
    }
    contacts = [{"profile": {"name": "Wendy Test"}, "wa_id": wa_id}]
    _meta_signed(server, _whatsapp_change({"contacts": contacts, "messages": [message]}))
    return wamid


def _whatsapp_status(server: Server, wamid: str, wa_id: str, status: str) -> None:
    report = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": wa_id}
    _meta_signed(server, _whatsapp_change({"statuses": [report]}))


def _email(
    server: Server, sender: str, subject: str, text: str, *, message_id: str, in_reply_to: str | None = None
) -> None:
    mail = EmailMessage()
    mail["From"] = f"Erin Test <{sender}>"
    mail["To"] = "support@example.com"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(text)
    answer = server.post("/_local/email?to=support@example.com", mail.as_bytes(), {"content-type": "message/rfc822"})
    assert answer.status == 202, answer.body


def _outbox_mail(server: Server, to: str, *, wait: bool = True) -> EmailMessage | None:
    def found() -> EmailMessage | None:
        for path in sorted((server.data_dir / "outbox").glob("*.eml")):
            mail = BytesParser(policy=email_policy.default).parsebytes(path.read_bytes())
            if to in str(mail["To"]) and mail["Auto-Submitted"] is None:  # not the acknowledgment
                assert isinstance(mail, EmailMessage)
                return mail
        return None

    if not wait:
        return found()
    mail: EmailMessage = wait_until(found, WAIT_S, f"mail to {to}")
    return mail


def _form(server: Server, fields: dict[str, str]) -> dict[str, Any]:
    body = json.dumps(fields).encode()
    answer = server.post("/webhooks/forms/contact", body, form_headers(body, secret=CONTACT_SECRET))
    assert answer.status == 202, answer.body
    receipt = answer.json()["receipt"]
    return server.wait_for_receipts([receipt], timeout=WAIT_S)[receipt]
