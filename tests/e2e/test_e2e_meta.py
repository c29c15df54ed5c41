"""End to end: Messenger and Instagram Direct through a real `intake serve` and a fake Graph API.

One `intake serve` for the module, its Graph API root pointed at `tests.fake_providers` (which checks the Send API's
auth and shape). A customer's signed webhook makes a ticket; an agent's reply reaches the Send API from the Page (or
Instagram account) written to; Meta's delivery and read receipts move the reply's state; a redelivered webhook makes
no second message; a forged one stores nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.fake_providers import FakeProviders, Received

from .client import Response, Server, wait_until

PAGE = "104520935521234"  # intake.yaml's Messenger Page (support)
IG_ACCOUNT = "17841405822304914"  # intake.yaml's Instagram account (support)
SECRETS = {
    "INTAKE_MESSENGER_APP_SECRET": "e2e-messenger-secret",
    "INTAKE_MESSENGER_VERIFY_TOKEN": "e2e-messenger-verify",
    "INTAKE_INSTAGRAM_APP_SECRET": "e2e-instagram-secret",
}
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
    settings = {**providers.environment(), **SECRETS, "INTAKE_VISIBILITY_TIMEOUT_S": "2"}
    server = launch(tmp_path_factory.mktemp("meta"), settings=settings)
    yield server
    server.stop()


def test_a_messenger_message_makes_a_ticket_its_reply_reaches_the_send_api_and_a_delivery_marks_it_delivered(
    intake: Server, providers: FakeProviders
) -> None:
    psid = _user_id()
    mid = _messenger_message(intake, psid, "Ma commande n'est pas arrivée")
    ticket = _ticket_of(intake, mid)
    assert (ticket["channel"], ticket["team"], ticket["thread_key"]) == (
        "messenger",
        "support",
        f"messenger#{PAGE}:{psid}",
    )

    answer = _reply(intake, ticket["id"], "Elle part aujourd'hui.")

    assert answer.status == 202, answer.body
    sent = _one_sent(providers, "messenger", lambda r: r.document["recipient"]["id"] == psid)
    assert sent.path == f"/v21.0/{PAGE}/messages"
    assert sent.document == {
        "recipient": {"id": psid},
        "messaging_type": "RESPONSE",
        "message": {"text": "Elle part aujourd'hui."},
    }
    reply = _state(intake, ticket["id"], answer.json()["reply_id"], "sent")
    assert reply["provider_message_id"] == sent.answer["message_id"]
    # the sent reply is the team's first response: its clock stops
    assert wait_until(lambda: _first_response(intake, ticket["id"]) == "met", 20, "first response met")

    _post(intake, "messenger", {"delivery": {"mids": [sent.answer["message_id"]], "watermark": _now_ms()}}, psid)

    _state(intake, ticket["id"], answer.json()["reply_id"], "delivered")
    # Messenger's read receipt names no message, only a watermark: every reply sent by then was read
    _post(intake, "messenger", {"read": {"watermark": _now_ms()}}, psid)
    _state(intake, ticket["id"], answer.json()["reply_id"], "read")
    again = _messenger_message(intake, psid, "Merci !")
    assert _ticket_of(intake, again)["id"] == ticket["id"]


def test_a_redelivered_messenger_webhook_makes_no_second_message(intake: Server) -> None:
    psid = _user_id()
    event = {"message": {"mid": "m_" + uuid.uuid4().hex, "text": "Allô ?"}}

    _post(intake, "messenger", event, psid)
    ticket = _ticket_of(intake, event["message"]["mid"])
    _post(intake, "messenger", event, psid)
    later = _messenger_message(intake, psid, "Toujours là ?")

    detail = wait_until(lambda: _with_messages(intake, ticket["id"], 2), WAIT_S, "the later message")
    assert [m["provider_message_id"] for m in detail["messages"]] == [event["message"]["mid"], later]


def test_meta_subscribes_with_our_verify_token_and_a_forged_post_is_refused(intake: Server) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": SECRETS["INTAKE_MESSENGER_VERIFY_TOKEN"],
        "hub.challenge": "77",
    }

    subscribed = intake.get("/webhooks/messenger?" + urlencode(query))
    refused = intake.get("/webhooks/messenger?" + urlencode(query | {"hub.verify_token": "guess"}))
    forged = intake.post(
        "/webhooks/messenger",
        json.dumps(_webhook("messenger", {"message": {"mid": "m_forged", "text": "x"}}, _user_id())).encode(),
        {"content-type": "application/json", "x-hub-signature-256": "sha256=" + "0" * 64},
    )

    assert (subscribed.status, subscribed.body) == (200, b"77")
    assert refused.status == 403
    assert forged.status == 403 and forged.json()["type"] == "urn:intake:problem:webhook-signature-invalid"


def test_an_instagram_message_is_answered_from_the_account_and_its_read_receipt_marks_the_reply_read(
    intake: Server, providers: FakeProviders
) -> None:
    igsid = _user_id()
    mid = "aWdf" + uuid.uuid4().hex
    _post(intake, "instagram", {"message": {"mid": mid, "text": "Vous livrez en Belgique ?"}}, igsid)
    ticket = _ticket_of(intake, mid)
    assert ticket["channel"] == "instagram"

    answer = _reply(intake, ticket["id"], "Oui !")

    sent = _one_sent(providers, "instagram", lambda r: r.document["recipient"]["id"] == igsid)
    assert sent.path == "/v21.0/me/messages"
    assert sent.headers["authorization"] == f"Bearer {providers.instagram_token}"
    _state(intake, ticket["id"], answer.json()["reply_id"], "sent")
    _post(intake, "instagram", {"read": {"mid": sent.answer["message_id"]}}, igsid)
    _state(intake, ticket["id"], answer.json()["reply_id"], "read")


def test_after_24_hours_a_messenger_reply_goes_tagged_human_agent_and_after_7_days_it_is_refused_409(
    intake: Server, providers: FakeProviders
) -> None:
    psid, late = _user_id(), _user_id()
    two_days = {"timestamp": _now_ms() - 2 * 86_400_000, "message": {"mid": "m_" + uuid.uuid4().hex, "text": "?"}}
    eight_days = {"timestamp": _now_ms() - 8 * 86_400_000, "message": {"mid": "m_" + uuid.uuid4().hex, "text": "?"}}
    _post(intake, "messenger", two_days, psid)
    _post(intake, "messenger", eight_days, late)
    tagged = _ticket_of(intake, two_days["message"]["mid"])
    closed = _ticket_of(intake, eight_days["message"]["mid"])

    accepted = _reply(intake, tagged["id"], "Désolés pour l'attente.")
    refused = _reply(intake, closed["id"], "Trop tard ?")

    assert accepted.status == 202, accepted.body
    sent = _one_sent(providers, "messenger", lambda r: r.document["recipient"]["id"] == psid)
    assert (sent.document["messaging_type"], sent.document["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    assert refused.status == 409 and refused.json()["type"] == "urn:intake:problem:window-closed", refused.body
    assert not [r for r in providers.received("messenger") if r.document["recipient"]["id"] == late]


# ---------------------------------------------------------------------------------------------- helpers


def _user_id() -> str:
    return str(uuid.uuid4().int)[:16]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _webhook(provider: str, event: dict[str, Any], user: str) -> dict[str, Any]:
    account = PAGE if provider == "messenger" else IG_ACCOUNT
    messaging = {"sender": {"id": user}, "recipient": {"id": account}, "timestamp": _now_ms(), **event}
    return {
        "object": "page" if provider == "messenger" else "instagram",
        "entry": [{"id": account, "messaging": [messaging]}],
    }


def _post(server: Server, provider: str, event: dict[str, Any], user: str) -> None:
    body = json.dumps(_webhook(provider, event, user)).encode()
    secret = SECRETS[f"INTAKE_{provider.upper()}_APP_SECRET"]
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    answer = server.post(
        f"/webhooks/{provider}", body, {"content-type": "application/json", "x-hub-signature-256": signature}
    )
    assert answer.status == 200, answer.body


def _messenger_message(server: Server, psid: str, text: str) -> str:
    mid = "m_" + uuid.uuid4().hex
    _post(server, "messenger", {"message": {"mid": mid, "text": text}}, psid)
    return mid


def _reply(server: Server, ticket_id: str, text: str) -> Response:
    body = json.dumps({"text": text, "by": "ana"}).encode()
    headers = {"content-type": "application/json", "idempotency-key": uuid.uuid4().hex}
    return server.post(f"/tickets/{ticket_id}/replies", body, headers)


def _ticket_of(server: Server, provider_message_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for ticket in server.tickets():
            detail = server.detail(ticket["id"])
            if any(m["provider_message_id"] == provider_message_id for m in detail["messages"]):
                return detail
        return None

    ticket: dict[str, Any] = wait_until(found, WAIT_S, f"the ticket of {provider_message_id}")
    return ticket


def _with_messages(server: Server, ticket_id: str, count: int) -> dict[str, Any] | None:
    detail = server.detail(ticket_id)
    return detail if len(detail["messages"]) >= count else None


def _first_response(server: Server, ticket_id: str) -> str | None:
    return next((t["state"] for t in server.detail(ticket_id)["sla"] if t["target"] == "first_response"), None)


def _state(server: Server, ticket_id: str, reply_id: str, state: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        reply = next(m for m in server.detail(ticket_id)["messages"] if m["receipt_id"] == reply_id)
        return reply if reply["state"] == state else None

    message: dict[str, Any] = wait_until(reached, WAIT_S, f"reply {reply_id} {state}")
    return message


def _one_sent(providers: FakeProviders, provider: str, matches: Callable[[Received], bool]) -> Received:
    found = wait_until(
        lambda: [r for r in providers.received(provider) if matches(r) and r.status < 300], WAIT_S, "the send"
    )
    assert len(found) == 1, found
    sent: Received = found[0]
    return sent
