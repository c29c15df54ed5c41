"""Facebook Messenger: the handshake, the signature, webhook events → messages, reactions, receipts and skipped
events, the reply window, and replies through the Send API (a fake Graph API over real HTTP)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from intake import replies
from intake.channels import messenger, meta_messaging, signatures
from intake.channels.meta_messaging import HUMAN_AGENT, Skipped, reply_window, text_parts
from intake.channels.sending import (
    OutboundReply,
    ReplyUndeliverableError,
    ReplyWay,
    SendContext,
    SendFailedError,
    WindowClosedError,
)
from intake.config import Policy
from intake.errors import FieldInvalidError, SignatureInvalidError, WebhookSignatureInvalidError
from intake.ingest import Outcome, ingest
from intake.local import samples
from intake.local.table import SqliteTable
from intake.model import (
    Attachment,
    DeliveryState,
    DeliveryStatus,
    Direction,
    InboundMessage,
    Message,
    Priority,
    Reaction,
    ScopedUser,
    Status,
    TicketDetail,
    WebhookRequest,
)
from intake.secrets import Secrets
from intake.store import Store
from tests.fake_providers import FakeProviders

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "messenger"
PAGE = "104520935521234"
OTHER_PAGE = "100200300400500"
PSID = "7459123456789012"
RECEIPT = "01JDQ8Z1W3C9G7T2M4K6P8R0SX"
TICKET = "01JDQ8Z1W3C9G7T2M4K6P8R0SY"
RECEIVED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
AT_MS = 1795510920000  # 2026-11-24 09:02 UTC
APP_SECRET = "messenger-app-secret"
SECTION = messenger.Messenger.model_validate({"pages": {PAGE: {"team": "support", "name": "La Boutique"}}})


def parse(body: dict[str, Any] | bytes, section: messenger.Messenger = SECTION) -> list[Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return meta_messaging.parse(
        messenger.PLATFORM, raw, policy=section, receipt_id=RECEIPT, received_at=RECEIVED, raw_archive_key="raw/k"
    )


def webhook(*events: dict[str, Any], page: str = PAGE) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": page, "time": AT_MS + 500, "messaging": list(events)}]}


def event(page: str = PAGE, psid: str = PSID, at: int = AT_MS, **kind: Any) -> dict[str, Any]:
    return {"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": at, **kind}


def text(mid: str = "m_1", body: str = "Bonjour", **more: Any) -> dict[str, Any]:
    return event(message={"mid": mid, "text": body, **more})


def only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def sample(name: str) -> bytes:
    found = samples.load(SAMPLES / f"{name}.json")
    return json.dumps(found["json"], ensure_ascii=bool(found.get("json_ascii"))).encode()


# ------------------------------------------------------------------------------------- handshake, signature

SUBSCRIBE = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}


def test_subscription_with_our_verify_token_is_answered_with_the_challenge() -> None:
    secrets = Secrets(environ={"INTAKE_MESSENGER_VERIFY_TOKEN": "verify-me"})
    assert meta_messaging.handshake(messenger.PLATFORM, SUBSCRIBE, secrets) == "1158201444"


@pytest.mark.parametrize(
    ("query", "environ"),
    [
        ({**SUBSCRIBE, "hub.verify_token": "guess"}, {"INTAKE_MESSENGER_VERIFY_TOKEN": "verify-me"}),
        ({**SUBSCRIBE, "hub.mode": "unsubscribe"}, {"INTAKE_MESSENGER_VERIFY_TOKEN": "verify-me"}),
        (SUBSCRIBE, {"INTAKE_WHATSAPP_VERIFY_TOKEN": "verify-me"}),  # another channel's token is not ours
    ],
    ids=["wrong-token", "wrong-mode", "none-set"],
)
def test_subscription_is_refused_unless_mode_and_our_token_match(
    query: dict[str, str], environ: dict[str, str]
) -> None:
    with pytest.raises(WebhookSignatureInvalidError):
        meta_messaging.handshake(messenger.PLATFORM, query, Secrets(environ=environ))


def signed(body: bytes, secret: str = APP_SECRET, **headers: str) -> WebhookRequest:
    header = {"x-hub-signature-256": signatures.meta_signature(secret, body)}
    return WebhookRequest(method="POST", path=messenger.PATH, query="", headers=header | headers, body=body)


def test_a_post_signed_with_our_app_secret_verifies_and_a_forged_or_unsigned_one_does_not() -> None:
    secrets = Secrets(environ={"INTAKE_MESSENGER_APP_SECRET": APP_SECRET})
    body = sample("01-text")

    meta_messaging.verify(messenger.PLATFORM, signed(body), secrets)
    with pytest.raises(SignatureInvalidError):
        meta_messaging.verify(messenger.PLATFORM, signed(body, secret="another app's secret"), secrets)
    with pytest.raises(SignatureInvalidError):
        tampered = signed(body)
        meta_messaging.verify(
            messenger.PLATFORM, WebhookRequest("POST", messenger.PATH, "", tampered.headers, body + b" "), secrets
        )
    with pytest.raises(SignatureInvalidError):
        meta_messaging.verify(messenger.PLATFORM, WebhookRequest("POST", messenger.PATH, "", {}, body), secrets)
    with pytest.raises(SignatureInvalidError):
        meta_messaging.verify(
            messenger.PLATFORM, signed(body), Secrets(environ={})
        )  # no secret configured: nothing verifies


def test_every_sample_is_signed_by_the_registry_over_the_bytes_it_sends(policy: Policy) -> None:
    secrets = Secrets(environ={"INTAKE_MESSENGER_APP_SECRET": APP_SECRET})
    for path in sorted(SAMPLES.glob("*.json")):
        prepared = samples.prepare(samples.load(path), policy, secrets)
        assert prepared.body == sample(path.stem)
        meta_messaging.verify(
            messenger.PLATFORM, WebhookRequest("POST", prepared.path, "", prepared.headers, prepared.body), secrets
        )


# ------------------------------------------------------------------------------------------------ samples

KINDS = {
    "01-text": ["message"],
    "02-image": ["message"],
    "03-file": ["message"],
    "04-quick-reply": ["quick_reply"],
    "05-delivery": ["delivered"],
    "06-read": ["read"],
    "07-reaction": ["reaction"],
    "08-echo": ["skipped:echo"],
    "09-postback": ["postback"],
    "10-reply-to": ["message", "message"],
}


def kind_of(item: Any) -> str:
    if isinstance(item, InboundMessage):
        return str(item.metadata["type"])
    if isinstance(item, DeliveryStatus):
        return item.state.value
    if isinstance(item, Skipped):
        return f"skipped:{item.kind}"
    return "reaction"


def test_every_sample_maps_to_what_its_readme_says() -> None:
    assert sorted(KINDS) == sorted(path.stem for path in SAMPLES.glob("*.json"))
    for name, kinds in KINDS.items():
        assert [kind_of(item) for item in parse(sample(name))] == kinds, name


def test_a_text_message_becomes_a_message_of_its_conversation_with_the_page() -> None:
    message = only(parse(sample("01-text")))

    assert message.channel == "messenger" and message.provider == "messenger"
    assert message.provider_message_id.startswith("m_")
    assert message.text.startswith("Bonjour, ma commande 5188")
    assert message.team == "support"
    assert message.thread_key == f"messenger#{PAGE}:{PSID}"
    assert message.sender.user == ScopedUser(kind="psid", account=PAGE, id=PSID)
    assert message.sender.identities() == [("psid", f"{PAGE}:{PSID}")]
    assert message.received_at == datetime(2026, 11, 24, 9, 2, tzinfo=UTC)  # its timestamp (ms), not its arrival
    assert message.metadata | {"account_id": PAGE, "user_id": PSID} == message.metadata


def test_an_attachment_is_recorded_by_its_link_and_named_in_the_text_when_there_is_none() -> None:
    image = only(parse(sample("02-image")))
    document = only(parse(sample("03-file")))

    assert image.text == "[image]"
    assert [(a.content_type, a.url is not None, a.media_status) for a in image.attachments] == [
        ("image/jpeg", True, None)
    ]
    assert document.text == "Voici la facture"
    assert [(a.filename, a.content_type) for a in document.attachments] == [("facture-5188.pdf", "application/pdf")]


def test_a_quick_reply_reads_as_its_title_and_keeps_its_payload() -> None:
    message = only(parse(sample("04-quick-reply")))

    assert message.text == "Suivre ma commande"
    assert message.metadata["quick_reply"] == {"payload": "TRACK_ORDER"}


def test_a_postback_reads_as_the_button_tapped_and_opens_a_conversation() -> None:
    message = only(parse(sample("09-postback")))

    assert message.text == "Parler au support"
    assert message.metadata["postback"] == {"title": "Parler au support", "payload": "CONTACT_SUPPORT"}
    assert message.thread_key == f"messenger#{PAGE}:6398765432101234"


def test_a_postback_without_mid_gets_the_same_id_each_time_it_is_delivered() -> None:
    tap = event(postback={"title": "Start", "payload": "GET_STARTED"})

    first, again = only(parse(webhook(tap))), only(parse(webhook(tap)))
    other = only(parse(webhook({**tap, "timestamp": AT_MS + 1000})))

    assert first.provider_message_id == again.provider_message_id != other.provider_message_id


def test_a_reply_to_one_of_our_messages_names_it_and_a_location_reads_as_coordinates() -> None:
    reply, location = parse(sample("10-reply-to"))

    assert reply.metadata["reply_to"].startswith("m_AbC9")
    assert "🏡" in reply.text
    assert location.text == "Shared location: 48.8566, 2.3522"


def test_a_reaction_annotates_the_message_and_removing_it_clears_it() -> None:
    reaction = only(parse(sample("07-reaction")))
    removed = only(parse(webhook(event(reaction={"action": "unreact", "mid": "m_ours"}))))

    assert isinstance(reaction, Reaction) and reaction.emoji == "❤️" and reaction.reacted_to.startswith("m_AbC9")
    assert isinstance(removed, Reaction) and removed.emoji is None and removed.reacted_to == "m_ours"
    assert reaction.event_id != removed.event_id


def test_echoes_and_receipts_open_nothing_and_deliveries_and_reads_report_on_our_messages() -> None:
    batch = webhook(
        event(delivery={"mids": ["m_a", "m_b"], "watermark": AT_MS}),
        event(delivery={"watermark": AT_MS}),  # older clients: no mids
        event(read={"watermark": AT_MS}),
        {
            "sender": {"id": PAGE},
            "recipient": {"id": PSID},
            "timestamp": AT_MS,
            "message": {"is_echo": True, "mid": "x"},
        },
    )

    items = parse(batch)

    assert not any(isinstance(item, InboundMessage | Reaction) for item in items)
    statuses = [item for item in items if isinstance(item, DeliveryStatus)]
    assert [(s.provider, s.provider_message_id, s.state) for s in statuses] == [
        ("messenger", "m_a", DeliveryState.DELIVERED),
        ("messenger", "m_b", DeliveryState.DELIVERED),
        ("messenger", f"watermark:{PAGE}:{PSID}:{AT_MS}", DeliveryState.READ),
    ]
    # a read names no message, only "everything sent by then", in its conversation
    read = statuses[-1]
    assert read.thread_key == f"messenger#{PAGE}:{PSID}" and read.up_to is not None
    assert int(read.up_to.timestamp() * 1000) == AT_MS
    assert [item.kind for item in items if isinstance(item, Skipped)] == ["receipt", "echo"]


# --------------------------------------------------------------------------------------------- routing


def test_a_page_not_listed_goes_to_the_default_team_or_is_skipped_with_its_reason() -> None:
    with_default = messenger.Messenger.model_validate({"pages": {PAGE: {"team": "support"}}, "default_team": "sales"})
    message = webhook(event(page=OTHER_PAGE, message={"mid": "m_1", "text": "x"}), page=OTHER_PAGE)

    assert only(parse(message, with_default)).team == "sales"
    skipped = only(parse(message))
    assert isinstance(skipped, Skipped) and skipped.kind == "unrouted"
    assert OTHER_PAGE in skipped.reason and "messenger.pages" in skipped.reason


# --------------------------------------------------------------------------------------- odd but legal


def test_a_message_sent_while_another_app_controls_the_conversation_is_read_from_standby() -> None:
    body = {"object": "page", "entry": [{"id": PAGE, "standby": [text(mid="m_standby")]}]}

    assert only(parse(body)).provider_message_id == "m_standby"


def test_an_attachment_without_text_and_an_unknown_attachment_type_still_make_a_message() -> None:
    message = only(
        parse(
            webhook(
                event(
                    message={
                        "mid": "m_2",
                        "attachments": [
                            {"type": "hologram", "payload": {"url": "https://cdn.example/h"}},
                            {"type": "video", "payload": {}},
                            {"type": "fallback", "title": "Our shop", "payload": {"url": "https://shop.example/x"}},
                        ],
                    }
                )
            )
        )
    )

    assert message.text.splitlines() == [
        "[attachment: hologram]",
        "[video]",
        "Shared link: Our shop https://shop.example/x",
    ]
    assert [a.filename for a in message.attachments] == ["hologram-1"]
    assert message.metadata["attachments"] == ["hologram", "video", "fallback"]


def test_one_hundred_messages_in_one_request_are_one_hundred_messages_in_order() -> None:
    batch = webhook(*(text(mid=f"m_{n}", body=f"message {n}") for n in range(100)))

    items = parse(batch)

    assert [item.provider_message_id for item in items] == [f"m_{n}" for n in range(100)]


def test_unicode_escaped_as_meta_sends_it_is_read_and_verifies() -> None:
    body = json.dumps(webhook(text(body="Ça marche 👍 — merci")), ensure_ascii=True).encode()

    assert b"\\ud83d\\udc4d" in body
    assert only(parse(body)).text == "Ça marche 👍 — merci"
    meta_messaging.verify(
        messenger.PLATFORM, signed(body), Secrets(environ={"INTAKE_MESSENGER_APP_SECRET": APP_SECRET})
    )


@pytest.mark.parametrize(
    ("broken", "kind"),
    [
        ({"recipient": {"id": PAGE}, "timestamp": AT_MS, "message": {"mid": "m", "text": "x"}}, "invalid"),
        (event(message={"text": "no mid"}), "invalid"),
        (event(reaction={"action": "react", "emoji": "👍"}), "invalid"),
        (event(optin={"ref": "x"}), "unknown"),
        (event(message={"mid": "m_" + "x" * 300, "text": "an id longer than we keep"}), "invalid"),
        ({}, "invalid"),
    ],
    ids=["no-sender", "no-mid", "reaction-without-mid", "optin", "id-too-long", "empty"],
)
def test_an_event_that_cannot_be_mapped_is_skipped_and_the_rest_of_the_batch_goes_through(
    broken: dict[str, Any], kind: str
) -> None:
    items = parse(webhook(broken, text(mid="m_ok")))

    assert isinstance(items[0], Skipped) and items[0].kind == kind
    assert only(items[1:]).provider_message_id == "m_ok"


def test_missing_fields_fall_back_rather_than_fail() -> None:
    bare = {"object": "page", "entry": [{"messaging": [{"sender": {"id": PSID}, "recipient": {"id": PAGE}}]}, "x"]}
    bare["entry"][0]["messaging"][0]["message"] = {"mid": "m_3"}

    message = only(parse(bare))

    assert message.received_at == RECEIVED  # no timestamp anywhere: when it arrived
    assert message.text == "[empty message]"
    assert parse({"object": "page"}) == [] and parse({"object": "page", "entry": [{"messaging": "x"}]}) == []


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", json.dumps({"object": "instagram", "entry": []}).encode()], ids=["text", "list", "ig"]
)
def test_a_body_that_is_not_a_messenger_webhook_is_refused_as_a_whole(body: bytes) -> None:
    with pytest.raises(FieldInvalidError) as refused:
        parse(body)
    assert refused.value.field == "(body)"


# ------------------------------------------------------------------------------------------------ dedupe


def test_a_redelivered_webhook_makes_no_second_message(tmp_path: Path) -> None:
    store = Store(SqliteTable(tmp_path / "t.db"), "t")  # type: ignore[arg-type]  # the table port
    ids = iter(f"01JDQ8Z1W3C9G7T2M4K6P8R{n:03d}" for n in range(100))
    first, again = only(parse(sample("01-text"))), only(parse(sample("01-text")))
    later = only(parse(webhook(event(at=AT_MS + 60_000, message={"mid": "m_later", "text": "Toujours rien ?"}))))

    results = [ingest(store, message, lambda: next(ids)) for message in (first, again, later)]

    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.DUPLICATE, Outcome.APPENDED]
    detail = store.ticket_detail(results[0].ticket_id)
    assert [m.provider_message_id for m in detail.messages] == [first.provider_message_id, "m_later"]
    assert detail.contact is not None and detail.channel == "messenger"


# --------------------------------------------------------------------------------------------- names


def test_a_name_is_filled_in_from_the_profile_and_a_failed_lookup_changes_nothing() -> None:
    from intake.channels.meta_messaging import NameUnavailableError

    message = only(parse(sample("01-text")))
    asked: list[str] = []

    def profile(path: str) -> dict[str, Any]:
        asked.append(path)
        return {"first_name": "Léa", "last_name": "Martin", "id": PSID}

    def down(path: str) -> dict[str, Any]:
        raise NameUnavailableError("HTTP 500")

    assert messenger.named(message, profile).sender.name == "Léa Martin"
    assert asked == [f"{PSID}?fields=first_name,last_name"]
    assert messenger.named(message, down) == message
    assert messenger.named(message, lambda path: {"id": PSID}) == message


# ----------------------------------------------------------------------------------------- reply window

LAST = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "human_agent", "expected"),
    [
        (timedelta(hours=23, minutes=59), False, (True, None)),
        (timedelta(hours=24), False, (False, None)),
        (timedelta(hours=24), True, (True, HUMAN_AGENT)),
        (timedelta(days=6, hours=23), True, (True, HUMAN_AGENT)),
        (timedelta(days=7), True, (False, HUMAN_AGENT)),
    ],
    ids=["23h59", "24h", "24h-tagged", "6d23h-tagged", "7d-tagged"],
)
def test_replies_are_free_for_24_hours_then_human_agent_for_7_days_when_allowed(
    after: timedelta, human_agent: bool, expected: tuple[bool, str | None]
) -> None:
    window = reply_window(LAST, LAST + after, human_agent=human_agent)

    assert (window.open, window.tag) == expected


def test_a_long_text_is_cut_at_a_space_within_the_byte_limit() -> None:
    long = "é" * 400 + " " + "word " * 300
    parts = text_parts(long, 1000)

    assert all(len(part.encode()) <= 1000 for part in parts)
    assert " ".join(parts).split() == long.split()  # no word cut
    assert text_parts("é" * 600, 1000) == ["é" * 500, "é" * 100]  # one word longer than the limit: cut in it
    assert text_parts("   ", 1000) == []


# ------------------------------------------------------------------------------------------------ send


@pytest.fixture(scope="module")
def media() -> Iterator[str]:
    """Where reply attachments' links point (S3's presigned URLs in AWS): any path serves a few bytes."""

    class Files(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"bytes")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    providers = FakeProviders().start()
    yield providers
    providers.stop()


def context(fake: FakeProviders, media: str = "http://127.0.0.1:9", **secrets: str) -> SendContext:
    environ = fake.environment() | secrets
    return SendContext(
        secret=Secrets(environ=environ).get,
        public_base_url="http://127.0.0.1:9",
        graph_api_url=fake.graph_url,
        media_url=lambda attachment: f"{media}/{attachment.s3_key}",
        timeout_s=5,
    )


def reply(text: str = "Votre colis part demain.", **more: Any) -> OutboundReply:
    fields: dict[str, Any] = {
        "reply_id": RECEIPT,
        "ticket_id": RECEIPT,
        "reference": RECEIPT[-8:],
        "channel": "messenger",
        "to": PSID,
        "sender": PAGE,
        "text": text,
    }
    return OutboundReply(**(fields | more))


def test_a_reply_inside_24_hours_is_a_response_to_the_psid_from_the_page(fake: FakeProviders) -> None:
    sent = messenger.send(reply(), context(fake))

    request = only(fake.received("messenger"))
    assert request.path == f"/v21.0/{PAGE}/messages"
    assert request.headers["authorization"] == f"Bearer {fake.page_token}"
    assert request.document == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Votre colis part demain."},
    }
    assert request.status == 200 and sent.provider == "messenger"
    assert sent.provider_message_id == request.answer["message_id"]


def test_each_page_is_answered_with_its_own_token_and_the_shared_one_serves_the_others(fake: FakeProviders) -> None:
    # Given two Pages, one of which has a token of its own (MESSENGER_PAGE_TOKEN_<page id>); Meta takes no other
    other = "104520935529999"
    fake.page_tokens[other] = "fake-token-of-the-other-page"

    messenger.send(reply(), context(fake))
    messenger.send(reply(sender=other), context(fake))

    first, second = fake.received("messenger")
    assert (first.path, first.headers["authorization"]) == (f"/v21.0/{PAGE}/messages", f"Bearer {fake.page_token}")
    assert second.path == f"/v21.0/{other}/messages"
    assert second.headers["authorization"] == "Bearer fake-token-of-the-other-page"
    assert first.status == second.status == 200


def test_a_reply_after_24_hours_carries_the_human_agent_tag(fake: FakeProviders) -> None:
    messenger.send(reply(tag=HUMAN_AGENT), context(fake))

    document = only(fake.received("messenger")).document
    assert (document["messaging_type"], document["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_a_token_meta_does_not_take_fails_for_good_with_metas_words(fake: FakeProviders) -> None:
    with pytest.raises(SendFailedError) as refused:
        messenger.send(reply(), context(fake, INTAKE_MESSENGER_PAGE_TOKEN="expired-token"))

    assert not refused.value.retryable
    assert refused.value.reason == "Messenger error 190: Invalid OAuth access token. (HTTP 401)"
    assert only(fake.received("messenger")).headers["authorization"] == "Bearer expired-token"


def test_a_long_text_and_attachments_go_as_several_messages_and_the_first_id_is_the_replys(
    fake: FakeProviders, media: str
) -> None:
    files = (
        Attachment(filename="photo.png", content_type="image/png", s3_key="a/1-photo.png"),
        Attachment(filename="notice.pdf", content_type="application/pdf", s3_key="a/2-notice.pdf"),
    )

    sent = messenger.send(reply(text="mot " * 600, attachments=files), context(fake, media))

    requests = fake.received("messenger")
    assert [list(r.document["message"]) for r in requests] == [["text"], ["text"], ["attachment"], ["attachment"]]
    assert [r.document["message"]["attachment"]["type"] for r in requests[2:]] == ["image", "file"]
    assert requests[2].document["message"]["attachment"]["payload"]["url"] == f"{media}/a/1-photo.png"
    assert [r.fetched for r in requests[2:]] == [[b"bytes"], [b"bytes"]]  # Meta fetched each link
    assert sent.provider_message_id == requests[0].answer["message_id"]
    assert sent.other_ids == tuple(r.answer["message_id"] for r in requests[1:])


def test_a_meta_outage_is_retryable_and_a_refusal_is_not_with_metas_words(fake: FakeProviders) -> None:
    fake.fail(1, 503)
    with pytest.raises(SendFailedError) as outage:
        messenger.send(reply(), context(fake))
    fake.refuse(551, "This person isn't available right now.")
    with pytest.raises(SendFailedError) as refused:
        messenger.send(reply(), context(fake))

    assert outage.value.retryable
    assert not refused.value.retryable
    assert refused.value.reason == "Messenger error 551: This person isn't available right now. (HTTP 400)"


def test_a_rate_limit_answered_with_a_400_is_retryable(fake: FakeProviders) -> None:
    fake.refuse(613, "Calls to this api have exceeded the rate limit.")

    with pytest.raises(SendFailedError) as limited:
        messenger.send(reply(), context(fake))

    assert limited.value.retryable and "613" in limited.value.reason


def test_no_page_token_configured_fails_for_good_without_calling_meta(fake: FakeProviders) -> None:
    ctx = context(fake)
    bare = SendContext(secret=Secrets(environ={}).get, public_base_url="", graph_api_url=ctx.graph_api_url)

    with pytest.raises(SendFailedError) as missing:
        messenger.send(reply(), bare)

    assert not missing.value.retryable and "MESSENGER_PAGE_TOKEN" in missing.value.reason
    assert fake.received("messenger") == []


# ------------------------------------------------------------------------------------------------ replies


def test_a_messenger_reply_goes_to_the_page_tagged_after_24_hours_and_is_refused_409_past_its_window(
    policy: Policy,
) -> None:
    latest = Message(
        ticket_id=TICKET,
        provider="messenger",
        provider_message_id="m_1",
        receipt_id=TICKET,
        direction=Direction.INBOUND,
        received_at=LAST,
        channel="messenger",
        text="Bonjour",
        metadata={"account_id": PAGE, "user_id": PSID},
    )
    detail = TicketDetail(
        id=TICKET,
        reference=TICKET[-8:],
        channel="messenger",
        team="support",
        priority=Priority.NORMAL,
        status=Status.OPEN,
        contact_id=TICKET,
        thread_key=f"messenger#{PAGE}:{PSID}",
        created_at=LAST,
        updated_at=LAST,
        last_inbound_at=LAST,
        message_count=1,
        contact=None,
        messages=[latest],
        events=[],
    )

    section = policy.section("messenger")
    strict = policy.model_copy(update={"messenger": section.model_copy(update={"human_agent_tag": False})})
    text = replies.ReplyRequest(text="Bonjour", by="ana")

    def way(after: timedelta, rules: Policy = policy) -> ReplyWay:
        return replies.address(detail, rules, text, LAST + after)

    first = way(timedelta(hours=1))
    assert (first.provider, first.channel, first.to, first.sender) == ("messenger", "messenger", PSID, PAGE)
    assert way(timedelta(hours=23)).tag is None
    assert way(timedelta(hours=25)).tag == HUMAN_AGENT  # intake.yaml allows it
    with pytest.raises(WindowClosedError) as closed:  # answered 409 window-closed
        way(timedelta(hours=25), strict)
    assert "human_agent_tag" in str(closed.value)
    assert closed.value.closed_at == LAST + timedelta(hours=24)
    with pytest.raises(WindowClosedError) as too_late:
        way(timedelta(days=7))
    assert too_late.value.closed_at == LAST + timedelta(days=7)
    unnamed = detail.model_copy(update={"messages": [latest.model_copy(update={"metadata": {}})]})
    with pytest.raises(ReplyUndeliverableError, match="names no user or account"):  # a message from before they were
        replies.address(unnamed, policy, text, LAST)
