"""The read API and the local API Gateway stand-in, over real HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from .client import Response, Server, contact_body, form_headers, http

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def made(server: Server) -> list[str]:
    """Three tickets made one after the other (so the list has something to page through)."""
    receipts = []
    for n in range(3):
        body = contact_body(f"paging {uuid.uuid4().hex[:8]} {n}")
        answer = server.post("/webhooks/forms/contact", body, form_headers(body))
        assert answer.status == 202, answer.body
        receipts.append(answer.json()["receipt"])
    found = server.wait_for_receipts(receipts)
    return [found[r]["id"] for r in receipts]


def _page(server: Server, **query: str) -> Response:
    return server.get("/tickets?" + urlencode(query))


def test_healthz_answers_200_ok(server: Server) -> None:
    answer = server.get("/healthz")
    assert (answer.status, answer.json()) == (200, {"status": "ok"})


def test_ticket_list_is_newest_first(server: Server, made: list[str]) -> None:
    listed = [t["id"] for t in server.tickets()]
    assert [i for i in listed if i in made] == list(reversed(made))
    created = [t["created_at"] for t in server.tickets()]
    assert created == sorted(created, reverse=True)


def test_ticket_list_pages_follow_the_cursor_to_the_same_list(server: Server, made: list[str]) -> None:
    everything = server.tickets()
    paged, cursor = [], None
    while True:
        answer = _page(server, limit="2", **({"cursor": cursor} if cursor else {}))
        assert answer.status == 200, answer.body
        page = answer.json()
        assert len(page["items"]) <= 2
        paged += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    assert paged == everything


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ({"channel": "form"}, True),
        ({"team": "support"}, True),
        ({"status": "open"}, True),
        ({"status": "resolved"}, False),
    ],
)
def test_ticket_list_filters(server: Server, made: list[str], query: dict[str, str], found: bool) -> None:
    listed = {t["id"] for t in server.tickets(**query)}
    assert set(made) <= listed if found else not set(made) & listed


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ({"team": "nope"}, "field-invalid"),
        ({"status": "nope"}, "field-invalid"),
        ({"channel": "nope"}, "field-invalid"),
        ({"limit": "0"}, "field-invalid"),
        ({"limit": "101"}, "field-invalid"),
        ({"cursor": "not-ours"}, "cursor-invalid"),
    ],
)
def test_ticket_list_bad_query_is_400_problem(server: Server, query: dict[str, str], kind: str) -> None:
    answer = _page(server, **query)
    assert answer.status == 400, answer.body
    assert answer.media_type == PROBLEM
    assert answer.json()["type"] == f"urn:intake:problem:{kind}"


def test_unknown_ticket_is_404_problem(server: Server) -> None:
    answer = server.get("/tickets/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert answer.status == 404
    assert answer.media_type == PROBLEM
    assert answer.json()["type"] == "urn:intake:problem:ticket-not-found"


# ------------------------------------------------------- the gateway stand-in


def test_body_over_the_gateway_limit_is_answered_413(server: Server) -> None:
    # API Gateway's own payload limit is 10 MiB; the client must be able to read the answer
    body = b"x" * (10 * 1024 * 1024 + 1)
    answer = http(
        "POST", server.url + "/webhooks/forms/contact", body, {"content-type": "application/json"}, timeout=30
    )
    assert answer.status == 413
    assert answer.media_type == PROBLEM


def test_chunked_post_is_received_like_any_other(server: Server) -> None:
    # A client that streams its body (Transfer-Encoding: chunked), as API Gateway accepts
    subject = f"chunked {uuid.uuid4().hex[:8]}"
    body = contact_body(subject)

    def chunks() -> Iterator[bytes]:
        yield body[:10]
        yield body[10:]

    answer = http("POST", server.url + "/webhooks/forms/contact", chunks(), form_headers(body))  # type: ignore[arg-type]
    assert answer.status == 202, answer.body
    receipt = answer.json()["receipt"]
    assert server.wait_for_receipts([receipt])[receipt]["subject"] == subject


@pytest.mark.parametrize(
    "body",
    [b"not json", b"\xff\xfe{", b"[" * 10_000, b'{"type": "responded", "by": "\xc3"}'],
    ids=["not-json", "not-utf8", "nested-10000", "bad-utf8-in-a-string"],
)
@pytest.mark.parametrize("route", ["events", "digest"])
def test_a_malformed_body_is_a_400_naming_the_body_and_changes_nothing(
    server: Server, made: list[str], route: str, body: bytes
) -> None:
    path = f"/tickets/{made[0]}/events" if route == "events" else "/digests/support/daily"
    before = server.get(f"/tickets/{made[0]}").json()

    answer = server.post(path, body, {"content-type": "application/json"})

    assert answer.status == 400, answer.body
    assert answer.headers["content-type"] == PROBLEM
    assert (answer.json()["type"], answer.json()["field"]) == ("urn:intake:problem:field-invalid", "(body)")
    assert server.get(f"/tickets/{made[0]}").json() == before


def test_a_digest_body_that_is_json_but_not_an_object_is_a_400(server: Server) -> None:
    answer = server.post("/digests/support/daily", b"[1, 2]", {"content-type": "application/json"})
    assert (answer.status, answer.json()["field"]) == (400, "(body)")


def test_another_website_cannot_act_through_a_browser_on_the_open_loopback_api(server: Server, made: list[str]) -> None:
    # Given a ticket, and an agent's browser showing another site's page while `intake serve` runs without a token
    before = server.get(f"/tickets/{made[1]}").json()
    action = json.dumps({"type": "resolved", "by": "attacker"}).encode()

    # When that page posts a form to the API (text/plain needs no CORS preflight), or reaches it through a DNS name
    # it rebound to 127.0.0.1
    posted = server.post(
        f"/tickets/{made[1]}/events", action, {"content-type": "text/plain", "origin": "https://evil.example"}
    )
    rebound = http("GET", server.url + "/tickets", headers={"host": "evil.example:8080"})
    released = server.post("/failures/x/replay", b"", {"origin": "null"})

    # Then each is refused as a problem, and nothing changed; the CLI's and curl's requests (no Origin) still work
    for answer in (posted, rebound, released):
        assert answer.status == 403 and answer.json()["type"] == "urn:intake:problem:cross-site-request", answer.body
    assert server.get(f"/tickets/{made[1]}").json() == before
    same_site = server.post(f"/tickets/{made[1]}/events", b"[", {"origin": server.url})
    assert same_site.status == 400  # past the check: its body is what is wrong
