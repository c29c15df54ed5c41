"""Meta's WhatsApp webhooks through the real receiver and worker on moto."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from intake.channels import signatures
from tests.aws.conftest import Stack

APP_SECRET = "test-whatsapp-app-secret"
VERIFY_TOKEN = "test-whatsapp-verify-token"
PHONE_NUMBER_ID = "106540352242922"
T0 = 1_763_800_000  # 2025-11-22T08:26:40Z


@pytest.fixture(autouse=True)
def whatsapp_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_WHATSAPP_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("INTAKE_WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN)


def value(
    wa_id: str, *messages: dict[str, Any], name: str = "Ana", statuses: list[Any] | None = None
) -> dict[str, Any]:
    change: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "33186950001", "phone_number_id": PHONE_NUMBER_ID},
    }
    if messages:
        change["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
        change["messages"] = list(messages)
    if statuses:
        change["statuses"] = statuses
    return change


def text(wa_id: str, wamid: str, body: str, at: int = T0) -> dict[str, Any]:
    return {"from": wa_id, "id": wamid, "timestamp": str(at), "type": "text", "text": {"body": body}}


def payload(*entries: list[dict[str, Any]]) -> bytes:
    document = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "102290129340398", "changes": [{"field": "messages", "value": v} for v in changes]}
            for changes in entries
        ],
    }
    return json.dumps(document).encode()


def deliver(stack: Stack, body: bytes, signature: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"content-type": "application/json"}
    headers["x-hub-signature-256"] = signature or signatures.meta_signature(APP_SECRET, body)
    return stack.post("/webhooks/whatsapp", body, headers)


def conversations(stack: Stack) -> dict[str, list[str]]:
    """Customer phone → the texts of their WhatsApp ticket, in order."""
    found = {}
    for summary in stack.get("/tickets")[1]["items"]:
        ticket = stack.get(f"/tickets/{summary['id']}")[1]
        found[ticket["contact"]["phones"][0]] = [m["text"] for m in ticket["messages"]]
    return found


def test_the_subscription_handshake_answers_the_challenge_only_with_our_token(stack: Stack) -> None:
    from intake.handlers import receiver
    from intake.local.gateway import LocalContext, api_event

    def handshake(token: str) -> tuple[int, str]:
        query = f"hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        event = api_event("GET", f"/webhooks/whatsapp?{query}", {}, b"", "173.252.0.1")
        result = receiver.handler(event, LocalContext("receiver", "r"))
        return result["statusCode"], result["body"]

    assert handshake(VERIFY_TOKEN) == (200, "1158201444")
    assert handshake("guess")[0] == 403


def test_a_batch_of_three_changes_makes_the_right_tickets(stack: Stack) -> None:
    body = payload(
        [value("33612345678", text("33612345678", "wamid.A1", "Bonjour, ma commande ?"))],
        [
            value("33698765432", text("33698765432", "wamid.B1", "Hi, my card was charged twice", T0 + 5), name="Bo"),
            value("33612345678", text("33612345678", "wamid.A2", "C'est la 1042", T0 + 9)),
        ],
    )
    status, answer = deliver(stack, body)
    stack.work()

    assert status == 200 and answer["queued"] == 3
    assert conversations(stack) == {
        "+33612345678": ["Bonjour, ma commande ?", "C'est la 1042"],
        "+33698765432": ["Hi, my card was charged twice"],
    }
    [bo] = [t for t in stack.get("/tickets")[1]["items"] if t["message_count"] == 1]
    assert bo["channel"] == "whatsapp" and bo["reply_window_closes_at"] == "2025-11-23T08:26:45Z"


def test_five_redeliveries_double_nothing(stack: Stack) -> None:
    body = payload([value("33612345678", text("33612345678", "wamid.A1", "Bonjour"))])
    for _ in range(5):
        assert deliver(stack, body)[0] == 200
    stack.work()

    assert conversations(stack) == {"+33612345678": ["Bonjour"]}


def test_a_status_before_its_message_makes_no_ticket_and_no_error(stack: Stack) -> None:
    status_only = value("33612345678", statuses=[{"id": "wamid.OUT1", "status": "delivered", "timestamp": str(T0)}])
    status, answer = deliver(stack, payload([status_only]))
    stack.work()

    assert status == 200 and answer["queued"] == 0
    assert stack.tickets() == [] and len([k for k in stack.objects() if k.startswith("raw/")]) == 1


def test_a_reaction_marks_the_message_it_reacts_to(stack: Stack) -> None:
    deliver(stack, payload([value("33612345678", text("33612345678", "wamid.A1", "Thanks!"))]))
    stack.work()
    reaction = {
        "from": "33612345678",
        "id": "wamid.R1",
        "timestamp": str(T0 + 60),
        "type": "reaction",
        "reaction": {"message_id": "wamid.A1", "emoji": "👍"},
    }
    deliver(stack, payload([value("33612345678", reaction)]))
    stack.work()

    [summary] = stack.get("/tickets")[1]["items"]
    [message] = stack.get(f"/tickets/{summary['id']}")[1]["messages"]
    assert message["reaction"] == "👍"


def test_malformed_json_with_a_valid_signature_is_400_and_still_archived(stack: Stack) -> None:
    status, problem = deliver(stack, b'{"object": "whatsapp_business_account", "entry": [')
    assert status == 400 and problem["type"] == "urn:intake:problem:field-invalid"
    assert len([k for k in stack.objects() if k.startswith("raw/")]) == 1
    assert stack.queued() == 0


def test_a_forged_signature_is_403_and_stores_nothing(stack: Stack) -> None:
    body = payload([value("33612345678", text("33612345678", "wamid.A1", "Bonjour"))])
    status, problem = deliver(stack, body, signature="sha256=" + "0" * 64)
    assert (status, problem["type"]) == (403, "urn:intake:problem:webhook-signature-invalid")
    assert stack.objects() == [] and stack.queued() == 0 and stack.items() == []


def test_a_body_signed_as_received_is_checked_over_its_bytes_not_a_reserialization(stack: Stack) -> None:
    # Meta escapes non-ASCII as \\uXXXX: the signature covers those bytes, not a re-encoding of them
    document = json.loads(payload([value("33612345678", text("33612345678", "wamid.A1", "Ça marche, merci 🙏"))]))
    escaped = json.dumps(document, ensure_ascii=True).encode()
    assert deliver(stack, escaped)[0] == 200
    stack.work()
    assert conversations(stack) == {"+33612345678": ["Ça marche, merci 🙏"]}


def test_whatsapp_and_twilio_sms_from_the_same_number_are_one_customer(stack: Stack) -> None:
    deliver(stack, payload([value("33671234589", text("33671234589", "wamid.C1", "Hello from WhatsApp"))]))
    sms = stack.prepare("08-sms-conversation-1.json")  # from +33671234589
    stack.post_raw(sms.path, sms.body, sms.headers)
    stack.work()

    contacts = {t["contact_id"] for t in stack.get("/tickets")[1]["items"]}
    assert len(contacts) == 1
    detail = stack.get(f"/contacts/{contacts.pop()}")[1]
    assert sorted(t["channel"] for t in detail["tickets"]) == ["sms", "whatsapp"]


def test_an_image_is_downloaded_into_the_archive_before_its_ticket_is_written(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from intake import runtime
    from tests.aws.conftest import ROOT
    from tests.aws.graph_api import TOKEN, serving

    image = b"\x89PNG\r\n\x1a\n" + b"x" * 500
    with serving() as graph:
        graph.add("1479537139650973", image)
        policy = ROOT.joinpath("intake.yaml").read_text()
        policy = policy.replace(
            "  default_team: support\n  phone_numbers:",
            f"  graph_api_url: {graph.base_url}\n  default_team: support\n  phone_numbers:",
        )
        (tmp_path / "intake.yaml").write_text(policy)
        monkeypatch.setenv("INTAKE_CONFIG", str(tmp_path / "intake.yaml"))
        monkeypatch.setenv("INTAKE_WHATSAPP_ACCESS_TOKEN", TOKEN)
        runtime.reset()
        photo = {
            "from": "33612345678",
            "id": "wamid.IMG1",
            "timestamp": str(T0),
            "type": "image",
            "image": {
                "id": "1479537139650973",
                "mime_type": "image/png",
                "sha256": hashlib.sha256(image).hexdigest(),
                "caption": "The broken vase",
            },
        }
        deliver(stack, payload([value("33612345678", photo)]))
        stack.work()

    [summary] = stack.get("/tickets")[1]["items"]
    [message] = stack.get(f"/tickets/{summary['id']}")[1]["messages"]
    [attachment] = message["attachments"]
    assert message["text"] == "The broken vase"
    assert attachment["media_status"] == "stored" and attachment["size"] == len(image)
    stored = stack.s3.get_object(Bucket=stack.resources.bucket, Key=attachment["s3_key"])["Body"].read()
    assert stored == image
