"""Web forms over real HTTP: every sample becomes its ticket; what is rejected stores nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import pytest

from intake.local import samples
from intake.policy import load_policy
from intake.secrets import Secrets

from .client import CONFIG, SAMPLES, SECRETS, Response, Server, contact_body, form_headers
from .expected import EXPECTED

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def delivered(server: Server) -> dict[str, Response]:
    """Every sample, signed where its form wants it, posted once over HTTP (as `intake demo` does)."""
    policy, secrets = load_policy(CONFIG), Secrets(environ=SECRETS)
    answers = {}
    for path in SAMPLES:
        prepared = samples.prepare(samples.load(path), policy, secrets)
        answers[path.name] = server.post(prepared.path, prepared.body, prepared.headers)
    return answers


@pytest.fixture(scope="module")
def sample_tickets(server: Server, delivered: dict[str, Response]) -> dict[str, dict[str, Any]]:
    """sample file → its ticket's detail, once every sample that makes a ticket has made it."""
    receipts = {name: delivered[name].json()["receipt"] for name, expected in EXPECTED.items() if expected}
    found = server.wait_for_receipts(list(receipts.values()))
    return {name: found[receipt] for name, receipt in receipts.items()}


def _problem(answer: Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.media_type == PROBLEM
    problem: dict[str, Any] = answer.json()
    assert problem["type"] == f"urn:intake:problem:{kind}"
    assert problem["status"] == status
    assert problem["title"] and problem["detail"] and problem["instance"]
    return problem


# ------------------------------------------------------------------ samples


@pytest.mark.parametrize("sample", [p.name for p in SAMPLES])
def test_every_sample_is_accepted_with_a_receipt(delivered: dict[str, Response], sample: str) -> None:
    answer = delivered[sample]
    assert answer.status == 202, answer.body
    assert answer.media_type == "application/json"
    assert len(answer.json()["receipt"]) == 26  # a ULID


def test_every_sample_has_its_expected_outcome() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in SAMPLES), "describe the new sample's ticket in EXPECTED"
    for path in SAMPLES:
        assert (EXPECTED[path.name] is not None) == json.loads(path.read_text()).get("expect_ticket", True)


@pytest.mark.parametrize("sample", [name for name, expected in EXPECTED.items() if expected])
def test_sample_ticket_is_listed_with_its_subject_channel_and_priority(
    server: Server, sample_tickets: dict[str, dict[str, Any]], sample: str
) -> None:
    expected = EXPECTED[sample]
    assert expected is not None
    listed = {t["id"]: t for t in server.tickets()}
    ticket = listed[sample_tickets[sample]["id"]]
    assert ticket["subject"] == expected["subject"]
    assert ticket["channel"] == "form"
    assert ticket["priority"] == expected["priority"]
    assert ticket["team"] == "support"
    assert ticket["status"] == "open"
    assert ticket["message_count"] == 1
    assert ticket["reference"] == ticket["id"][-8:]


@pytest.mark.parametrize("sample", [name for name, expected in EXPECTED.items() if expected])
def test_sample_ticket_shows_its_contact_message_and_history(
    server: Server, sample_tickets: dict[str, dict[str, Any]], sample: str, delivered: dict[str, Response]
) -> None:
    expected = EXPECTED[sample]
    assert expected is not None
    detail = server.detail(sample_tickets[sample]["id"])
    contact = detail["contact"]
    assert contact["id"] == detail["contact_id"]
    assert (contact["name"], contact["emails"], contact["phones"]) == (
        expected["name"],
        expected["emails"],
        expected["phones"],
    )
    [message] = detail["messages"]
    assert message["direction"] == "inbound"
    assert message["channel"] == "form"
    assert message["provider"] == "forms"
    assert message["receipt_id"] == delivered[sample].json()["receipt"]
    assert message["text"] == expected["text"]
    assert message["metadata"]["fields"] == expected["fields"]
    assert message["raw_archive_key"].startswith("raw/") and message["raw_archive_key"].endswith(message["receipt_id"])
    assert [a["filename"] for a in message["attachments"]] == expected["attachments"]
    assert next(e["kind"] for e in detail["events"]) == "created"


def test_multipart_attachment_is_listed_with_its_size_and_hash(
    sample_tickets: dict[str, dict[str, Any]],
) -> None:
    spec = json.loads((SAMPLES[0].parent / "website-multipart.json").read_text())["multipart"]["files"][0]
    content = base64.b64decode(spec["base64"])
    [attachment] = sample_tickets["website-multipart.json"]["messages"][0]["attachments"]
    assert attachment["content_type"] == "image/png"
    assert attachment["size"] == len(content)
    assert attachment["sha256"] == hashlib.sha256(content).hexdigest()
    assert attachment["s3_key"].startswith("attachments/") and attachment["s3_key"].endswith("invoice.png")


def test_filled_honeypot_is_accepted_but_makes_no_ticket(
    server: Server, delivered: dict[str, Response], sample_tickets: dict[str, dict[str, Any]]
) -> None:
    # Given the samples posted after the honeypot one have all become tickets
    receipt = delivered["website-honeypot.json"].json()["receipt"]
    # Then no ticket holds the honeypot's message
    assert receipt not in server.by_receipt()


# ----------------------------------------------------------------- rejected


def _rejections(server: Server, marker: str) -> dict[str, Response]:
    """One request per way of being rejected, each with a subject naming it (so a leak is visible)."""

    def body(case: str) -> bytes:
        return contact_body(f"{marker} {case}")

    forged = body("forged")
    stale = body("stale")
    plain = b"name=Erin&subject=" + marker.encode() + b"+plain"
    return {
        "forged": server.post("/webhooks/forms/contact", forged, form_headers(forged, secret="not-the-secret")),
        "tampered": server.post(
            "/webhooks/forms/contact", body("tampered"), form_headers(body("the body that was signed"))
        ),
        "unsigned": server.post("/webhooks/forms/contact", body("unsigned"), {"content-type": "application/json"}),
        "stale": server.post("/webhooks/forms/contact", stale, form_headers(stale, timestamp=int(time.time()) - 3600)),
        "unknown-form": server.post("/webhooks/forms/no-such-form", body("unknown"), form_headers(body("unknown"))),
        "text-plain": server.post("/webhooks/forms/contact", plain, form_headers(plain, media_type="text/plain")),
        "too-large": server.post(
            "/webhooks/forms/contact",
            big := contact_body(f"{marker} too-large", message="x" * (1024 * 1024 + 1)),
            form_headers(big),
        ),
        "foreign-origin": server.post(
            "/webhooks/forms/website",
            b"full_name=Erin&email=erin%40example.com&topic=" + marker.encode() + b"+origin&message=hi",
            {"content-type": "application/x-www-form-urlencoded", "origin": "https://evil.example"},
        ),
    }


REJECTED = {
    "forged": (401, "signature-invalid"),
    "tampered": (401, "signature-invalid"),
    "unsigned": (401, "signature-invalid"),
    "stale": (401, "signature-invalid"),
    "unknown-form": (404, "form-not-found"),
    "text-plain": (415, "unsupported-media-type"),
    "too-large": (413, "payload-too-large"),
    "foreign-origin": (403, "origin-forbidden"),
}


@pytest.fixture(scope="module")
def rejected(server: Server) -> tuple[str, dict[str, Response]]:
    marker = f"rejected-{uuid.uuid4().hex[:8]}"
    return marker, _rejections(server, marker)


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_rejected_request_answers_its_problem(rejected: tuple[str, dict[str, Response]], case: str) -> None:
    status, kind = REJECTED[case]
    _problem(rejected[1][case], status, kind)


def test_forged_signature_is_401_signature_invalid(rejected: tuple[str, dict[str, Response]]) -> None:
    problem = _problem(rejected[1]["forged"], 401, "signature-invalid")
    assert "receipt" not in problem


def test_rejected_requests_make_no_ticket(server: Server, rejected: tuple[str, dict[str, Response]]) -> None:
    marker, _ = rejected
    # Given a valid post sent after every rejected one has become a ticket
    sentinel = contact_body(f"{marker} sentinel")
    answer = server.post("/webhooks/forms/contact", sentinel, form_headers(sentinel))
    assert answer.status == 202, answer.body
    server.wait_for_receipts([answer.json()["receipt"]])
    # Then, of the marked subjects, only the sentinel's is a ticket
    subjects = [t["subject"] for t in server.tickets() if marker in (t["subject"] or "")]
    assert subjects == [f"{marker} sentinel"]


def test_unknown_route_is_404_problem(server: Server) -> None:
    _problem(server.get("/no/such/route"), 404, "route-not-found")


# --------------------------------------------------------------- duplicates


def test_double_posted_signed_form_makes_one_ticket(server: Server) -> None:
    subject = f"double click {uuid.uuid4().hex[:8]}"
    body = contact_body(subject)
    headers = form_headers(body)
    # When the same signed request arrives twice, then once more signed a second earlier
    answers = [
        server.post("/webhooks/forms/contact", body, headers),
        server.post("/webhooks/forms/contact", body, headers),
        server.post(
            "/webhooks/forms/contact",
            body,
            form_headers(body, timestamp=int(headers["x-intake-timestamp"]) - 1),
        ),
    ]
    assert [a.status for a in answers] == [202, 202, 202]
    assert len({a.json()["receipt"] for a in answers}) == 3  # each delivery gets its own receipt
    # and a different post after them has become a ticket
    after = contact_body(f"{subject} (later)")
    sentinel = server.post("/webhooks/forms/contact", after, form_headers(after))
    server.wait_for_receipts([sentinel.json()["receipt"]])
    # Then there is one ticket with one message
    tickets = [t for t in server.tickets() if t["subject"] == subject]
    assert len(tickets) == 1
    assert tickets[0]["message_count"] == 1
    assert len(server.detail(tickets[0]["id"])["messages"]) == 1


def test_same_form_content_from_another_sender_is_another_ticket(server: Server) -> None:
    subject = f"not a duplicate {uuid.uuid4().hex[:8]}"
    first, second = contact_body(subject), contact_body(subject, email="someone.else@example.com")
    receipts = [
        server.post("/webhooks/forms/contact", body, form_headers(body)).json()["receipt"] for body in (first, second)
    ]
    found = server.wait_for_receipts(receipts)
    assert found[receipts[0]]["id"] != found[receipts[1]]["id"]


def test_retried_typeform_delivery_makes_one_ticket(
    server: Server, delivered: dict[str, Response], sample_tickets: dict[str, dict[str, Any]]
) -> None:
    # Given the Typeform sample has made its ticket, when Typeform delivers the same event again
    policy, secrets = load_policy(CONFIG), Secrets(environ=SECRETS)
    prepared = samples.prepare(samples.load(SAMPLES[0].parent / "feedback-typeform.json"), policy, secrets)
    again = server.post(prepared.path, prepared.body, prepared.headers)
    assert again.status == 202, again.body
    after = contact_body(f"after the typeform retry {uuid.uuid4().hex[:8]}")
    sentinel = server.post("/webhooks/forms/contact", after, form_headers(after))
    server.wait_for_receipts([sentinel.json()["receipt"]])
    # Then it is still the one ticket, with one message
    original = sample_tickets["feedback-typeform.json"]["messages"][0]["provider_message_id"]
    holding = {
        detail["id"]
        for detail in server.by_receipt().values()
        if any(m["provider_message_id"] == original for m in detail["messages"])
    }
    assert holding == {sample_tickets["feedback-typeform.json"]["id"]}
    assert server.detail(next(iter(holding)))["message_count"] == 1
