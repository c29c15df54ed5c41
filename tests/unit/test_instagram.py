"""Instagram Direct: the handshake, the signature, webhook events (story replies and mentions, deleted and
unsupported messages included) → messages, reactions, receipts and skipped events, and replies through the Send API
(a fake Graph API over real HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from intake.channels import instagram, messenger, meta_messaging, signatures
from intake.channels.meta_messaging import HUMAN_AGENT, Skipped
from intake.channels.sending import OutboundReply, SendContext, SendFailedError
from intake.config import Policy
from intake.errors import FieldInvalidError, SignatureInvalidError, WebhookSignatureInvalidError
from intake.local import samples
from intake.model import DeliveryState, DeliveryStatus, InboundMessage, Reaction, ScopedUser, WebhookRequest
from intake.secrets import Secrets
from tests.fake_providers import FakeProviders

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "instagram"
ACCOUNT = "17841405822304914"
IGSID = "1047865432109876"
RECEIPT = "01JDQ8Z1W3C9G7T2M4K6P8R0SX"
RECEIVED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
AT_MS = 1795518000000  # 2026-11-24 11:00 UTC
APP_SECRET = "instagram-app-secret"
SECTION = instagram.Instagram.model_validate({"accounts": {ACCOUNT: {"team": "support", "name": "@laboutique"}}})


def parse(body: dict[str, Any] | bytes, section: instagram.Instagram = SECTION) -> list[Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return meta_messaging.parse(
        instagram.PLATFORM, raw, policy=section, receipt_id=RECEIPT, received_at=RECEIVED, raw_archive_key="raw/k"
    )


def webhook(*events: dict[str, Any]) -> dict[str, Any]:
    return {"object": "instagram", "entry": [{"id": ACCOUNT, "time": AT_MS + 500, "messaging": list(events)}]}


def event(**kind: Any) -> dict[str, Any]:
    return {"sender": {"id": IGSID}, "recipient": {"id": ACCOUNT}, "timestamp": AT_MS, **kind}


def only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def sample(name: str) -> bytes:
    found = samples.load(SAMPLES / f"{name}.json")
    return json.dumps(found["json"], ensure_ascii=bool(found.get("json_ascii"))).encode()


def signed(body: bytes, secret: str = APP_SECRET) -> WebhookRequest:
    header = {"x-hub-signature-256": signatures.meta_signature(secret, body)}
    return WebhookRequest(method="POST", path=instagram.PATH, query="", headers=header, body=body)


# ------------------------------------------------------------------------------------- handshake, signature


def test_the_handshake_answers_only_with_instagrams_own_verify_token() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "ig-token", "hub.challenge": "42"}

    assert (
        meta_messaging.handshake(
            instagram.PLATFORM, query, Secrets(environ={"INTAKE_INSTAGRAM_VERIFY_TOKEN": "ig-token"})
        )
        == "42"
    )
    with pytest.raises(WebhookSignatureInvalidError):
        meta_messaging.handshake(
            instagram.PLATFORM, query, Secrets(environ={"INTAKE_MESSENGER_VERIFY_TOKEN": "ig-token"})
        )
    with pytest.raises(WebhookSignatureInvalidError):
        meta_messaging.handshake(
            instagram.PLATFORM,
            query | {"hub.verify_token": "guess"},
            Secrets(environ={"INTAKE_INSTAGRAM_VERIFY_TOKEN": "x"}),
        )


def test_every_sample_is_signed_with_our_app_secret_and_does_not_verify_with_another(policy: Policy) -> None:
    ours = Secrets(environ={"INTAKE_INSTAGRAM_APP_SECRET": APP_SECRET})
    for path in sorted(SAMPLES.glob("*.json")):
        prepared = samples.prepare(samples.load(path), policy, ours)
        meta_messaging.verify(
            instagram.PLATFORM, WebhookRequest("POST", prepared.path, "", prepared.headers, prepared.body), ours
        )
        with pytest.raises(SignatureInvalidError):
            meta_messaging.verify(instagram.PLATFORM, signed(prepared.body, "messenger's secret"), ours)
    with pytest.raises(SignatureInvalidError):
        meta_messaging.verify(
            instagram.PLATFORM, WebhookRequest("POST", instagram.PATH, "", {}, sample("01-text")), ours
        )


# ------------------------------------------------------------------------------------------------ samples

KINDS = {
    "01-text": ["message"],
    "02-story-reply": ["story_reply"],
    "03-image": ["message"],
    "04-quick-reply": ["quick_reply"],
    "05-read": ["read"],
    "06-reaction": ["reaction"],
    "07-echo": ["skipped:echo"],
    "08-postback": ["postback"],
    "09-story-mention": ["message"],
    "10-deleted-unsupported": ["skipped:deleted", "unsupported"],
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


def test_a_direct_message_is_a_message_of_its_conversation_with_the_account() -> None:
    message = only(parse(sample("01-text")))

    assert (message.channel, message.provider, message.team) == ("instagram", "instagram", "support")
    assert message.thread_key == f"instagram#{ACCOUNT}:{IGSID}"
    assert message.sender.user == ScopedUser(kind="igsid", account=ACCOUNT, id=IGSID)
    assert message.provider_message_id.startswith("aWdf")
    assert message.received_at == datetime(2026, 11, 24, 11, 0, tzinfo=UTC)


def test_a_story_reply_keeps_the_customers_text_and_links_the_story() -> None:
    message = only(parse(sample("02-story-reply")))

    assert message.text == "Cette lampe existe en vert ?"
    assert message.metadata["story_id"] == "17996221123456789"
    story = only(list(message.attachments))
    assert story.caption == "the story this message replies to" and story.url is not None
    assert story.s3_key is None and story.media_status is None  # Meta's terms: the link, never the media


def test_a_story_mention_reads_as_one_and_keeps_the_link_only() -> None:
    message = only(parse(sample("09-story-mention")))

    assert message.text == "[mentioned you in their story]"
    mention = only(list(message.attachments))
    assert mention.url is not None and mention.url.startswith("https://lookaside.fbsbx.com/")
    assert mention.s3_key is None


def test_a_deleted_message_opens_nothing_and_an_unsupported_one_says_so() -> None:
    deleted, unsupported = parse(sample("10-deleted-unsupported"))

    assert isinstance(deleted, Skipped) and deleted.kind == "deleted"
    assert unsupported.text == "[unsupported message: Instagram does not share its content]"


def test_a_read_names_our_message_and_a_reaction_annotates_it() -> None:
    read = only(parse(sample("05-read")))
    reaction = only(parse(sample("06-reaction")))
    worded = only(parse(webhook(event(reaction={"mid": "aWdf1", "action": "react", "reaction": "love"}))))

    assert isinstance(read, DeliveryStatus) and (read.provider, read.state) == ("instagram", DeliveryState.READ)
    assert isinstance(reaction, Reaction) and reaction.reacted_to == read.provider_message_id
    assert reaction.emoji == "❤️"
    assert worded.emoji == "love"  # no emoji given: the reaction's word


def test_an_echo_from_our_account_opens_nothing() -> None:
    skipped = only(parse(sample("07-echo")))

    assert isinstance(skipped, Skipped) and skipped.kind == "echo"


def test_an_account_not_listed_without_default_team_is_skipped_and_explained() -> None:
    stranger = {"sender": {"id": IGSID}, "recipient": {"id": "17840000000000000"}, "message": {"mid": "a", "text": "x"}}

    skipped = only(parse(webhook(stranger)))

    assert isinstance(skipped, Skipped) and skipped.kind == "unrouted" and "instagram.accounts" in skipped.reason
    assert only(parse(webhook(stranger), SECTION.model_copy(update={"default_team": "support"}))).team == "support"


def test_a_messenger_webhook_is_not_an_instagram_one() -> None:
    with pytest.raises(FieldInvalidError):
        parse({"object": "page", "entry": []})
    with pytest.raises(FieldInvalidError):
        meta_messaging.parse(
            messenger.PLATFORM,
            sample("01-text"),
            policy=messenger.Messenger(),
            receipt_id=RECEIPT,
            received_at=RECEIVED,
            raw_archive_key="k",
        )


def test_names_come_from_the_profile_name_else_the_username() -> None:
    message = only(parse(sample("01-text")))
    asked: list[str] = []

    def profile(path: str) -> dict[str, Any]:
        asked.append(path)
        return {"name": "Inès Haddad", "username": "ines.h"}

    assert instagram.named(message, profile).sender.name == "Inès Haddad"
    assert instagram.named(message, lambda path: {"username": "ines.h"}).sender.name == "@ines.h"
    assert asked == [f"{IGSID}?fields=name,username"]


# ------------------------------------------------------------------------------------------------ send


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    providers = FakeProviders().start()
    yield providers
    providers.stop()


def context(fake: FakeProviders) -> SendContext:
    environ = fake.environment()
    return SendContext(
        secret=Secrets(environ=environ).get,
        public_base_url="http://127.0.0.1:9",
        graph_api_url=fake.graph_url,
        timeout_s=5,
    )


def reply(text: str = "Oui, nous livrons en Belgique.", **more: Any) -> OutboundReply:
    fields: dict[str, Any] = {
        "reply_id": RECEIPT,
        "ticket_id": RECEIPT,
        "reference": RECEIPT[-8:],
        "channel": "instagram",
        "to": IGSID,
        "sender": ACCOUNT,
        "text": text,
    }
    return OutboundReply(**(fields | more))


def test_a_reply_goes_to_the_igsid_from_the_page_of_the_instagram_token(fake: FakeProviders) -> None:
    sent = instagram.send(reply(), context(fake))

    request = only(fake.received("instagram"))
    assert request.path == "/v21.0/me/messages"  # the Page linked to the account
    assert request.headers["authorization"] == f"Bearer {fake.instagram_token}"
    assert request.document == {
        "recipient": {"id": IGSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Oui, nous livrons en Belgique."},
    }
    assert (sent.provider, sent.provider_message_id) == ("instagram", request.answer["message_id"])


def test_after_24_hours_the_reply_is_tagged_human_agent(fake: FakeProviders) -> None:
    instagram.send(reply(tag=HUMAN_AGENT), context(fake))

    document = only(fake.received("instagram")).document
    assert (document["messaging_type"], document["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_a_text_over_instagrams_1000_bytes_goes_as_several_messages(fake: FakeProviders) -> None:
    sent = instagram.send(reply(text="ça " * 400), context(fake))  # 1,600 bytes

    requests = fake.received("instagram")
    assert len(requests) == 2 and all(r.status == 200 for r in requests)
    assert sent.other_ids == (requests[1].answer["message_id"],)


def test_meta_5xx_is_retryable_and_4xx_is_not_with_its_message(fake: FakeProviders) -> None:
    fake.fail(1, 500)
    with pytest.raises(SendFailedError) as outage:
        instagram.send(reply(), context(fake))
    fake.refuse(10, "This message is sent outside of allowed window.")
    with pytest.raises(SendFailedError) as refused:
        instagram.send(reply(), context(fake))

    assert outage.value.retryable and not refused.value.retryable
    assert refused.value.reason == "Instagram error 10: This message is sent outside of allowed window. (HTTP 400)"
