"""The WhatsApp Cloud API adapter: the handshake, and webhook bodies → messages, reactions and statuses."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.channels import whatsapp
from intake.config import Policy
from intake.errors import FieldInvalidError, WebhookSignatureInvalidError
from intake.local import samples
from intake.model import Channel, InboundMessage, Reaction
from intake.policy import parse_policy
from tests.depth import examples

from .builders import RECEIPT_ID, RECEIVED_AT

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "events" / "whatsapp").glob("*.json"))
OUR_NUMBER_ID = "106540352242922"  # intake.yaml: team support (also whatsapp.default_team)
SALES_NUMBER_ID = "223344556677889"
CAMILLE = "33612345678"
ARCHIVE_KEY = f"raw/2026/11/23/whatsapp/{RECEIPT_ID}"
SENT_AT = datetime(2026, 11, 23, 8, 12, 3, tzinfo=UTC)
WAMID = "wamid.HBgLMzM2MTIzNDU2NzgVAgASGBQxQjJDM0Q0RTVGNjA3MTgyOTNBNEIA"
OUR_WAMID = "wamid.HBgLMzM2MTIzNDU2NzgVAgARGBJENjM5MUFEMkI5MjEwM0NGQzkA"
CONTENT = b"the bytes of a photo"
SHA256_HEX = hashlib.sha256(CONTENT).hexdigest()
SHA256_BASE64 = base64.b64encode(hashlib.sha256(CONTENT).digest()).decode()


# ---------------------------------------------------------------------------------------- builders


def parse(body: bytes | dict[str, Any], policy: Policy, received_at: datetime = RECEIVED_AT) -> list[whatsapp.Parsed]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return whatsapp.parse(
        raw, policy=policy, receipt_id=RECEIPT_ID, received_at=received_at, raw_archive_key=ARCHIVE_KEY
    )


def value(
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    *,
    number_id: str = OUR_NUMBER_ID,
    contacts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "33186950001", "phone_number_id": number_id},
    }
    if messages is not None:
        found["contacts"] = (
            contacts if contacts is not None else [{"profile": {"name": "Camille Durand"}, "wa_id": CAMILLE}]
        )
        found["messages"] = messages
    if statuses is not None:
        found["statuses"] = statuses
    return found


def webhook(*values: dict[str, Any]) -> dict[str, Any]:
    changes = [{"value": v, "field": "messages"} for v in values]
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": changes}]}


def message(kind: str, content: Any = None, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"from": CAMILLE, "id": WAMID, "timestamp": str(int(SENT_AT.timestamp())), "type": kind}
    if content is not None:
        found[kind] = content
    found.update(extra)
    return found


def one(kind: str, content: Any = None, policy: Policy | None = None, **extra: Any) -> InboundMessage:
    assert policy is not None
    [mapped] = parse(webhook(value([message(kind, content, **extra)])), policy)
    assert isinstance(mapped, InboundMessage)
    return mapped


def sample_items(path: Path, policy: Policy) -> list[whatsapp.Parsed]:
    sample = samples.load(path)
    body = json.dumps(sample["json"], ensure_ascii=bool(sample.get("json_ascii", False))).encode()
    return parse(body, policy)


@pytest.fixture(scope="module")
def sales_policy() -> Policy:
    """Two teams: our number serves support, another serves sales; no default team."""
    return parse_policy(
        {
            "teams": {"support": {"name": "Support"}, "sales": {"name": "Sales"}},
            "whatsapp": {
                "phone_numbers": {OUR_NUMBER_ID: {"team": "support"}, SALES_NUMBER_ID: {"team": "sales"}},
            },
        }
    )


# --------------------------------------------------------------------------------------- handshake

SUBSCRIBE = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}


def test_subscription_with_our_verify_token_is_answered_with_the_challenge() -> None:
    assert whatsapp.handshake(SUBSCRIBE, "verify-me") == "1158201444"


@pytest.mark.parametrize(
    ("query", "token"),
    [
        ({**SUBSCRIBE, "hub.verify_token": "guess"}, "verify-me"),
        ({**SUBSCRIBE, "hub.verify_token": ""}, "verify-me"),
        ({k: v for k, v in SUBSCRIBE.items() if k != "hub.verify_token"}, "verify-me"),
        ({**SUBSCRIBE, "hub.mode": "unsubscribe"}, "verify-me"),
        ({k: v for k, v in SUBSCRIBE.items() if k != "hub.mode"}, "verify-me"),
        ({k: v for k, v in SUBSCRIBE.items() if k != "hub.challenge"}, "verify-me"),
        (SUBSCRIBE, None),
        ({**SUBSCRIBE, "hub.verify_token": ""}, ""),
    ],
    ids=["wrong-token", "empty-token", "no-token", "wrong-mode", "no-mode", "no-challenge", "none-set", "empty-set"],
)
def test_subscription_is_refused_unless_mode_and_configured_token_match(
    query: dict[str, str], token: str | None
) -> None:
    with pytest.raises(WebhookSignatureInvalidError):
        whatsapp.handshake(query, token)


# ----------------------------------------------------------------------------------------- samples

KINDS = {
    "01-text": ["text"],
    "02-image": ["image"],
    "03-audio-voice-note": ["audio"],
    "04-video": ["video"],
    "05-document": ["document"],
    "06-sticker": ["sticker"],
    "07-status-delivered": ["status:delivered"],
    "08-interactive-button-reply": ["interactive"],
    "09-interactive-list-reply": ["interactive"],
    "10-location": ["location"],
    "11-contacts": ["contacts"],
    "12-reaction": ["reaction"],
    "13-button": ["button"],
    "14-text-from-ad": ["text"],
    "15-order": ["order"],
    "16-system": ["system"],
    "17-status-failed": ["status:failed"],
    "18-unsupported": ["unsupported"],
    "19-batch": ["text", "status:read", "text"],
    "20-non-ascii": ["text"],
}


def kind_of(item: whatsapp.Parsed) -> str:
    if isinstance(item, whatsapp.StatusUpdate):
        return f"status:{item.status}"
    if isinstance(item, Reaction):
        return "reaction"
    return str(item.metadata["type"])


def test_there_is_one_sample_per_kind() -> None:
    assert [path.stem for path in SAMPLES] == list(KINDS)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_parses_to_its_kinds(path: Path, policy: Policy) -> None:
    # Given a sample as the demo sends it
    sample = samples.load(path)
    assert sample["path"] == whatsapp.PATH
    assert sample["expect_status"] == 200
    # When it is parsed, Then it is what its name says, dated by Meta's timestamps
    items = sample_items(path, policy)
    assert [kind_of(item) for item in items] == KINDS[path.stem]
    for item in items:
        at = item.at if isinstance(item, whatsapp.StatusUpdate) else item.received_at
        assert datetime(2026, 11, 23, tzinfo=UTC) <= at < datetime(2026, 11, 24, tzinfo=UTC)
        if isinstance(item, InboundMessage | Reaction):
            assert item.sender.phone is not None and item.sender.phone.startswith("+33")
            assert item.receipt_id == RECEIPT_ID and item.raw_archive_key == ARCHIVE_KEY
        if isinstance(item, InboundMessage):
            assert item.channel == Channel.WHATSAPP and item.provider == "whatsapp"
            assert item.team == "support" and item.thread_key == f"whatsapp#{item.sender.phone}"
            assert item.dedupe_window_s == 8 * 86400 and item.text
            assert item.metadata["phone_number_id"] == OUR_NUMBER_ID


def test_expect_ticket_marks_the_first_message_of_each_new_conversation(policy: Policy) -> None:
    # Given the samples in the order the demo sends them
    seen: set[str] = set()
    for path in SAMPLES:
        threads = [i.thread_key for i in sample_items(path, policy) if isinstance(i, InboundMessage)]
        new = [key for key in dict.fromkeys(threads) if key not in seen]
        seen.update(threads)
        # Then a sample expects a ticket exactly when it opens one new conversation
        assert len(new) <= 1, path.name
        assert samples.load(path)["expect_ticket"] is bool(new), path.name
    assert len(seen) == 4


def test_sample_text_is_the_body_and_the_sender_named_by_the_contacts_array(policy: Policy) -> None:
    [text] = sample_items(SAMPLES[0], policy)
    assert isinstance(text, InboundMessage)
    assert text.text.startswith("Bonjour, ma commande 4120 est arrivée")
    assert text.sender.name == "Camille Durand" and text.sender.phone == "+33612345678"
    assert text.received_at == SENT_AT
    assert text.provider_message_id.startswith("wamid.HBgL")
    assert text.metadata == {
        "type": "text",
        "wa_id": CAMILLE,
        "phone_number_id": OUR_NUMBER_ID,
        "display_phone_number": "33186950001",
    }


def test_sample_media_are_pending_attachments_with_hex_sha256(policy: Policy) -> None:
    found = {path.stem: sample_items(path, policy)[0] for path in SAMPLES[1:6]}
    image, voice, video, document, sticker = (found[name] for name in list(KINDS)[1:6])
    assert isinstance(image, InboundMessage) and isinstance(voice, InboundMessage)
    assert isinstance(video, InboundMessage) and isinstance(document, InboundMessage)
    assert isinstance(sticker, InboundMessage)
    # Then each carries one attachment to download, its sha256 as hex
    for item in (image, voice, video, document, sticker):
        [attachment] = item.attachments
        assert attachment.media_status == "pending" and attachment.media_id
        assert attachment.sha256 is not None and len(attachment.sha256) == 64
        assert attachment.s3_key is None and attachment.url is None
    # And the text is the caption, or says what was sent
    assert image.text == image.attachments[0].caption == "Le carton à la livraison"
    assert image.attachments[0].content_type == "image/jpeg"
    assert image.attachments[0].filename == f"{image.attachments[0].media_id}.jpg"
    assert voice.text == "[voice message]" and voice.metadata["voice"] is True
    assert voice.attachments[0].content_type == "audio/ogg; codecs=opus"
    assert voice.attachments[0].filename.endswith(".ogg")
    assert video.text == "[video]" and video.attachments[0].filename.endswith(".mp4")
    assert document.text == "La facture" and document.attachments[0].filename == "Facture-4120.pdf"
    assert sticker.text == "[sticker]" and sticker.metadata["animated"] is False


def test_sample_interactive_replies_read_as_the_title_with_their_ids_kept(policy: Policy) -> None:
    button, choice = (sample_items(path, policy)[0] for path in SAMPLES[7:9])
    assert isinstance(button, InboundMessage) and isinstance(choice, InboundMessage)
    assert button.text == "Renvoyer la housse"
    assert button.metadata["interactive"] == {
        "type": "button_reply",
        "id": "resend_missing_item",
        "title": "Renvoyer la housse",
    }
    assert button.metadata["context"]["from"] == "33186950001"
    assert choice.text == "Jeudi 26/11, matin\nLivraison entre 8 h et 13 h"
    assert choice.metadata["interactive"]["id"] == "slot_2026-11-26_am"


def test_sample_location_reads_with_coordinates_and_a_map_link(policy: Policy) -> None:
    [location] = sample_items(SAMPLES[9], policy)
    assert isinstance(location, InboundMessage)
    assert location.text == (
        "Shared location: Domicile, 12 Rue de Rivoli, 75004 Paris\n"
        "Coordinates: 48.8556127, 2.3592138\n"
        "Map: https://www.google.com/maps/search/?api=1&query=48.8556127,2.3592138"
    )
    assert location.metadata["location"]["latitude"] == 48.8556127


def test_sample_contacts_read_as_name_phones_and_emails(policy: Policy) -> None:
    [card] = sample_items(SAMPLES[10], policy)
    assert isinstance(card, InboundMessage)
    assert card.text == (
        "Shared contact: Julien Moreau\nPhone: +33 6 23 45 67 89 (CELL)\nEmail: julien.moreau@example.org (HOME)"
    )
    assert card.metadata["contacts"][0]["phones"][0]["wa_id"] == "33623456789"


def test_sample_reaction_annotates_our_message(policy: Policy) -> None:
    [reaction] = sample_items(SAMPLES[11], policy)
    assert isinstance(reaction, Reaction)
    assert reaction.emoji == "👍" and reaction.provider == "whatsapp"
    assert reaction.reacted_to.startswith("wamid.") and reaction.event_id != reaction.reacted_to
    assert reaction.sender.phone == "+33612345678" and reaction.sender.name == "Camille Durand"


def test_sample_template_button_reads_as_its_text_with_the_payload_kept(policy: Policy) -> None:
    [button] = sample_items(SAMPLES[12], policy)
    assert isinstance(button, InboundMessage)
    assert button.text == "Je serai là"
    assert button.metadata["button"] == {"text": "Je serai là", "payload": "CONFIRM_DELIVERY_4120"}


def test_sample_from_an_ad_keeps_the_referral(policy: Policy) -> None:
    [text] = sample_items(SAMPLES[13], policy)
    assert isinstance(text, InboundMessage)
    referral = text.metadata["referral"]
    assert referral["source_type"] == "ad" and referral["ctwa_clid"].startswith("ARA")
    assert referral["headline"] == "Linge de lit en lin lavé"


def test_sample_order_reads_as_items_and_total(policy: Policy) -> None:
    [order] = sample_items(SAMPLES[14], policy)
    assert isinstance(order, InboundMessage)
    assert order.text == (
        "Order from catalog 1046897762536541:\n"
        "- HC-LIN-240-SAUGE x 1 @ 129.0 EUR\n"
        "- TO-LIN-65-SAUGE x 2 @ 24.5 EUR\n"
        "Total: 178.0 EUR\n"
        "Livraison en point relais si possible"
    )
    assert order.metadata["order"]["catalog_id"] == "1046897762536541"


def test_sample_system_message_keeps_the_new_wa_id_without_a_contacts_array(policy: Policy) -> None:
    [system] = sample_items(SAMPLES[15], policy)
    assert isinstance(system, InboundMessage)
    assert system.text == "User Thomas Petit changed from 33698712345 to 33698700011"
    assert system.metadata["new_wa_id"] == "33698700011"
    assert system.sender.phone == "+33698712345" and system.sender.name is None
    assert system.thread_key == "whatsapp#+33698712345"  # the conversation it belongs to so far


def test_sample_statuses_never_become_messages(policy: Policy) -> None:
    [delivered] = sample_items(SAMPLES[6], policy)
    [failed] = sample_items(SAMPLES[16], policy)
    assert isinstance(delivered, whatsapp.StatusUpdate) and isinstance(failed, whatsapp.StatusUpdate)
    assert delivered.status == "delivered" and delivered.errors == [] and delivered.recipient == CAMILLE
    assert delivered.at == datetime(2026, 11, 23, 8, 31, tzinfo=UTC)
    assert failed.status == "failed" and failed.recipient == "33698712345"
    assert [error["code"] for error in failed.errors] == [131026]


def test_sample_unsupported_message_is_recorded_with_its_error(policy: Policy) -> None:
    [poll] = sample_items(SAMPLES[17], policy)
    assert isinstance(poll, InboundMessage)
    assert poll.text == "[unsupported message: poll creation — Message type is currently not supported.]"
    assert poll.metadata["unsupported"] == {"type": "poll_creation"}
    assert poll.metadata["errors"][0]["code"] == 131051


def test_sample_batch_maps_every_entry_and_change_in_order(policy: Policy) -> None:
    hugo, read, camille = sample_items(SAMPLES[18], policy)
    assert isinstance(hugo, InboundMessage) and isinstance(camille, InboundMessage)
    assert isinstance(read, whatsapp.StatusUpdate)
    assert hugo.sender.name == "Hugo Lefèvre" and hugo.thread_key == "whatsapp#+33745612378"
    assert camille.sender.name == "Camille Durand" and camille.thread_key == "whatsapp#+33612345678"
    assert hugo.received_at < read.at < camille.received_at


def test_sample_sent_with_unicode_escapes_parses_to_the_characters(policy: Policy) -> None:
    # Given the non-ASCII sample as Meta sends it: pure ASCII, emoji as surrogate pairs
    sample = samples.load(SAMPLES[19])
    escaped = json.dumps(sample["json"], ensure_ascii=True).encode()
    assert escaped.isascii() and b"\\ud83d\\ude15" in escaped
    # When it is parsed, Then the text and the name are the characters, not the escapes
    [text] = parse(escaped, policy)
    assert isinstance(text, InboundMessage)
    assert text.text == (
        "Bonjour ! J'ai reçu « Votre remboursement de 49,90 € est en cours » mais rien sur mon compte 😕 "
        "Pouvez-vous vérifier ? Merci 🙏"
    )
    assert text.sender.name == "Zoé Lemaître"
    # And the same JSON sent as UTF-8 maps identically
    assert parse(json.dumps(sample["json"], ensure_ascii=False).encode(), policy) == [text]


# ---------------------------------------------------------------------------------- batches, order


def test_several_entries_and_changes_are_all_mapped_in_the_order_given(policy: Policy) -> None:
    # Given two entries: the first with a message and a status change, the second with two messages
    first = message("text", {"body": "un"}, id="wamid.1")
    status = {"id": OUR_WAMID, "status": "sent", "timestamp": "1795421600", "recipient_id": CAMILLE}
    second = message("text", {"body": "deux"}, id="wamid.2")
    third = message("text", {"body": "trois"}, id="wamid.3")
    body = webhook(value([first]), value(statuses=[status]))
    body["entry"].append({"id": "102290129340398", "changes": [{"field": "messages", "value": value([second, third])}]})
    # When it is parsed, Then every update comes out, in order
    items = parse(body, policy)
    assert [getattr(i, "provider_message_id", None) or getattr(i, "wamid", None) for i in items] == [
        "wamid.1",
        OUR_WAMID,
        "wamid.2",
        "wamid.3",
    ]


def test_messages_and_statuses_of_one_change_are_both_mapped(policy: Policy) -> None:
    status = {"id": OUR_WAMID, "status": "read", "timestamp": "1795421600", "recipient_id": CAMILLE}
    items = parse(webhook(value([message("text", {"body": "Merci"})], [status])), policy)
    assert [type(i).__name__ for i in items] == ["InboundMessage", "StatusUpdate"]


def test_changes_of_other_fields_and_empty_requests_map_to_nothing(policy: Policy) -> None:
    template = {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1}}
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [template]}]}
    assert parse(body, policy) == []
    assert parse({"object": "whatsapp_business_account", "entry": []}, policy) == []
    assert parse({"object": "whatsapp_business_account"}, policy) == []
    errors_only = value()
    errors_only["errors"] = [{"code": 130429, "title": "Rate limit hit"}]
    assert parse(webhook(errors_only), policy) == []


def test_redelivered_request_maps_identically(policy: Policy) -> None:
    # Given the same request delivered again a day later under another receipt
    body = json.dumps(webhook(value([message("text", {"body": "Bonjour"})]))).encode()
    first = parse(body, policy, RECEIVED_AT)
    again = parse(body, policy, RECEIVED_AT + timedelta(days=1))
    # Then it maps to the same message, dated when the customer sent it
    assert first == again
    assert isinstance(first[0], InboundMessage) and first[0].received_at == SENT_AT


def test_message_without_a_readable_timestamp_is_dated_when_received(policy: Policy) -> None:
    for timestamp in (None, "", "soon", "-5", "1e9", "99999999999999999999"):
        extra = {"timestamp": timestamp} if timestamp is not None else {}
        raw = message("text", {"body": "Bonjour"}, **extra)
        if timestamp is None:
            del raw["timestamp"]
        [mapped] = parse(webhook(value([raw])), policy)
        assert isinstance(mapped, InboundMessage)
        assert mapped.received_at == RECEIVED_AT, timestamp


# ---------------------------------------------------------------------------------- message types


def test_text_message_is_its_body(policy: Policy) -> None:
    mapped = one("text", {"body": "  Bonjour  "}, policy)
    assert mapped.text == "Bonjour" and mapped.subject is None and mapped.attachments == ()


def test_base64_or_hex_sha256_becomes_lower_case_hex(policy: Policy) -> None:
    for sent in (SHA256_BASE64, SHA256_HEX, SHA256_HEX.upper(), SHA256_BASE64.replace("+", "-").replace("/", "_")):
        image = {"mime_type": "image/png", "sha256": sent, "id": "1013859600285441"}
        mapped = one("image", image, policy)
        assert mapped.attachments[0].sha256 == SHA256_HEX, sent
        assert "media_sha256" not in mapped.metadata


def test_unreadable_sha256_is_kept_as_sent_and_not_checked(policy: Policy) -> None:
    for sent in ("not a hash", base64.b64encode(b"short").decode(), 42):
        mapped = one("image", {"mime_type": "image/png", "sha256": sent, "id": "1013859600285441"}, policy)
        assert mapped.attachments[0].sha256 is None
        assert mapped.metadata["media_sha256"] == sent


def test_media_file_names_come_from_the_document_or_the_media_id_and_type(policy: Policy) -> None:
    cases = [
        ("audio", {"mime_type": "audio/mpeg", "id": "11"}, "11.mp3"),
        ("audio", {"mime_type": "audio/amr", "id": "12"}, "12.amr"),
        ("video", {"mime_type": "video/3gpp", "id": "13"}, "13.3gp"),
        ("image", {"mime_type": "IMAGE/JPEG", "id": "14"}, "14.jpg"),
        ("document", {"mime_type": "application/x-unheard-of", "id": "15"}, "15"),
        ("document", {"id": "16"}, "16.bin"),
        ("document", {"mime_type": "text/plain", "id": "17", "filename": "notes de Zoé.txt"}, "notes de Zoé.txt"),
    ]
    for kind, media, filename in cases:
        [attachment] = one(kind, media, policy).attachments
        assert attachment.filename == filename
        assert attachment.content_type == (media.get("mime_type") or "application/octet-stream").lower()


def test_media_without_caption_reads_as_a_placeholder(policy: Policy) -> None:
    assert one("audio", {"mime_type": "audio/ogg", "id": "1"}, policy).text == "[audio]"
    assert one("audio", {"mime_type": "audio/ogg", "id": "1", "voice": True}, policy).text == "[voice message]"
    assert one("image", {"id": "1"}, policy).text == "[image]"
    document = one("document", {"id": "1", "filename": "Facture.pdf"}, policy)
    assert document.text == "[document: Facture.pdf]"


def test_media_without_an_id_keeps_what_was_sent_without_an_attachment(policy: Policy) -> None:
    mapped = one("image", {"mime_type": "image/jpeg", "caption": "Voilà"}, policy)
    assert mapped.attachments == () and mapped.text == "Voilà"
    assert mapped.metadata["image"] == {"mime_type": "image/jpeg", "caption": "Voilà"}


def test_location_without_a_name_or_with_bad_coordinates_still_reads(policy: Policy) -> None:
    plain = one("location", {"latitude": -33.8688, "longitude": 151.2093}, policy)
    assert plain.text.splitlines()[:2] == ["Shared location", "Coordinates: -33.8688, 151.2093"]
    bad = one("location", {"latitude": 123, "longitude": "east", "url": "https://example.org/shop"}, policy)
    assert bad.text == "Shared location\nLink: https://example.org/shop"


def test_contacts_without_names_or_several_cards_read_line_by_line(policy: Policy) -> None:
    cards = [
        {"name": {"first_name": "Ana", "last_name": "Silva"}, "phones": [{"wa_id": "351912345678"}]},
        {"org": {"company": "Atelier Lin"}, "emails": [{"email": "contact@atelier-lin.example"}]},
    ]
    mapped = one("contacts", cards, policy)
    assert mapped.text == (
        "Shared contact: Ana Silva\nPhone: 351912345678\n\n"
        "Shared contact: (no name)\nCompany: Atelier Lin\nEmail: contact@atelier-lin.example"
    )


def test_unknown_interactive_reply_keeps_the_whole_object(policy: Policy) -> None:
    flow = {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": '{"slot": "am"}'}}
    mapped = one("interactive", flow, policy)
    assert mapped.text == "Sent" and mapped.metadata["interactive"] == flow
    novel = {"type": "carousel_reply", "carousel_reply": {"index": 2}}
    mapped = one("interactive", novel, policy)
    assert mapped.text == "[interactive reply: carousel_reply]" and mapped.metadata["interactive"] == novel


def test_order_with_odd_items_still_reads_and_totals_what_it_can(policy: Policy) -> None:
    order = {
        "catalog_id": "42",
        "product_items": [
            {"product_retailer_id": "A", "quantity": 3, "item_price": 19.99, "currency": "EUR"},
            {"product_retailer_id": "B", "quantity": "two", "item_price": 5, "currency": "EUR"},
            {"quantity": 1},
            "not an item",
        ],
    }
    mapped = one("order", order, policy)
    assert mapped.text == (
        "Order from catalog 42:\n- A x 3 @ 19.99 EUR\n- B x two @ 5 EUR\n- (unknown product) x 1\nTotal: 59.97 EUR"
    )


def test_system_message_without_a_body_names_the_change(policy: Policy) -> None:
    mapped = one("system", {"type": "user_changed_number", "new_wa_id": 33698700011}, policy)
    assert mapped.text == "[system: user changed number, new number +33698700011]"
    assert mapped.metadata["new_wa_id"] == "33698700011"


@pytest.mark.parametrize(
    ("kind", "content", "text"),
    [
        ("poll", {"question": "Quand ?", "options": ["lundi", "mardi"]}, "[unsupported message: poll]"),
        ("request_welcome", None, "[unsupported message: request_welcome]"),
        ("unsupported", None, "[unsupported message]"),
    ],
)
def test_unknown_message_type_is_kept_not_rejected(kind: str, content: Any, text: str, policy: Policy) -> None:
    # Given a message of a type this adapter does not know, with unknown fields
    mapped = one(kind, content, policy, brand_new_field={"x": 1})
    # Then it is a message that says so, with what was sent kept
    assert mapped.text == text
    assert mapped.metadata["type"] == kind
    if content is not None:
        assert mapped.metadata[kind] == content


def test_message_without_a_type_is_kept_as_unknown(policy: Policy) -> None:
    raw = message("text", {"body": "x"})
    del raw["type"]
    [mapped] = parse(webhook(value([raw])), policy)
    assert isinstance(mapped, InboundMessage) and mapped.text == "[unsupported message: unknown]"


def test_reply_context_forward_flags_and_identity_are_kept(policy: Policy) -> None:
    context = {"from": "33186950001", "id": OUR_WAMID, "forwarded": True}
    mapped = one("text", {"body": "Oui"}, policy, context=context, identity={"acknowledged": True, "hash": "x"})
    assert mapped.metadata["context"] == context
    assert mapped.metadata["identity"] == {"acknowledged": True, "hash": "x"}


def test_long_texts_and_names_are_clipped_to_what_a_ticket_holds(policy: Policy) -> None:
    contacts = [{"profile": {"name": "N" * 500}, "wa_id": CAMILLE}]
    body = webhook(value([message("text", {"body": "x" * 200_000})], contacts=contacts))
    [mapped] = parse(body, policy)
    assert isinstance(mapped, InboundMessage)
    assert len(mapped.text) == 100_000 and mapped.sender.name == "N" * 200


# ------------------------------------------------------------------------------------------ senders


def test_sender_is_e164_and_named_by_the_matching_contact_only(policy: Policy) -> None:
    contacts = [{"profile": {"name": "Someone Else"}, "wa_id": "447700900123"}]
    [mapped] = parse(webhook(value([message("text", {"body": "x"})], contacts=contacts)), policy)
    assert isinstance(mapped, InboundMessage)
    assert mapped.sender.phone == "+33612345678" and mapped.sender.name is None


def test_sender_known_only_by_a_business_scoped_user_id_gets_a_thread_of_their_own(policy: Policy) -> None:
    # Given a user with a username, whose number Meta leaves out
    raw = message("text", {"body": "Bonjour"}, from_user_id="FR.1410018717833190")
    del raw["from"]
    contacts = [{"profile": {"name": "Léo"}, "user_id": "FR.1410018717833190"}]
    [mapped] = parse(webhook(value([raw], contacts=contacts)), policy)
    # Then the conversation is keyed by that id
    assert isinstance(mapped, InboundMessage)
    assert mapped.sender.phone is None and mapped.sender.name == "Léo"
    assert mapped.thread_key == "whatsapp#user:FR.1410018717833190"
    assert mapped.metadata["user_id"] == "FR.1410018717833190" and "wa_id" not in mapped.metadata


def test_user_id_next_to_the_number_is_kept_and_the_number_keys_the_thread(policy: Policy) -> None:
    mapped = one("text", {"body": "x"}, policy, from_user_id="FR.1")
    assert mapped.thread_key == "whatsapp#+33612345678" and mapped.metadata["user_id"] == "FR.1"


@pytest.mark.parametrize("sender", [None, "", "not-a-number", "12", "0033612345678999999", "+"])
def test_message_without_a_usable_sender_is_refused_naming_from(sender: str | None, policy: Policy) -> None:
    raw = message("text", {"body": "x"})
    if sender is None:
        del raw["from"]
    else:
        raw["from"] = sender
    with pytest.raises(FieldInvalidError) as raised:
        parse(webhook(value([raw])), policy)
    assert raised.value.field == "messages.from"


def test_message_without_an_id_is_refused(policy: Policy) -> None:
    raw = message("text", {"body": "x"})
    del raw["id"]
    with pytest.raises(FieldInvalidError) as raised:
        parse(webhook(value([raw])), policy)
    assert raised.value.field == "messages.id"


# ---------------------------------------------------------------------------------------- reactions


def test_reaction_is_a_reaction_on_the_message_it_names(policy: Policy) -> None:
    [reaction] = parse(webhook(value([message("reaction", {"message_id": OUR_WAMID, "emoji": "❤️"})])), policy)
    assert isinstance(reaction, Reaction)
    assert reaction.event_id == WAMID and reaction.reacted_to == OUR_WAMID and reaction.emoji == "❤️"
    assert reaction.received_at == SENT_AT and reaction.receipt_id == RECEIPT_ID
    assert reaction.raw_archive_key == ARCHIVE_KEY


@pytest.mark.parametrize("content", [{"message_id": OUR_WAMID, "emoji": ""}, {"message_id": OUR_WAMID}])
def test_removed_reaction_has_no_emoji(content: dict[str, str], policy: Policy) -> None:
    [reaction] = parse(webhook(value([message("reaction", content)])), policy)
    assert isinstance(reaction, Reaction) and reaction.emoji is None


def test_reaction_without_the_message_it_reacts_to_is_refused(policy: Policy) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        parse(webhook(value([message("reaction", {"emoji": "👍"})])), policy)
    assert raised.value.field == "reaction.message_id"


def test_reaction_needs_no_team(sales_policy: Policy) -> None:
    body = webhook(value([message("reaction", {"message_id": OUR_WAMID, "emoji": "👍"})], number_id="unknown"))
    [reaction] = parse(body, sales_policy)
    assert isinstance(reaction, Reaction)


# ----------------------------------------------------------------------------------------- statuses


def test_statuses_map_with_their_errors_and_time(policy: Policy) -> None:
    error = {"code": 131047, "title": "Re-engagement message", "error_data": {"details": "More than 24 hours"}}
    statuses: list[dict[str, Any]] = [
        {"id": OUR_WAMID, "status": "sent", "timestamp": "1795421600", "recipient_id": CAMILLE, "pricing": {}},
        {"id": "wamid.2", "status": "FAILED", "timestamp": "1795421660", "errors": [error, "junk"]},
        {"id": "wamid.3", "status": "played", "errors": "junk"},
    ]
    sent, failed, played = parse(webhook(value(statuses=statuses)), policy)
    assert sent == whatsapp.StatusUpdate(
        wamid=OUR_WAMID,
        status="sent",
        recipient=CAMILLE,
        at=datetime(2026, 11, 23, 8, 13, 20, tzinfo=UTC),
        errors=[],
    )
    assert isinstance(failed, whatsapp.StatusUpdate) and isinstance(played, whatsapp.StatusUpdate)
    assert failed.status == "failed" and failed.errors == [error] and failed.recipient is None
    assert played.errors == [] and played.at == RECEIVED_AT


@pytest.mark.parametrize(("missing", "field"), [("id", "statuses.id"), ("status", "statuses.status")])
def test_status_without_id_or_status_is_refused(missing: str, field: str, policy: Policy) -> None:
    status = {"id": OUR_WAMID, "status": "sent", "timestamp": "1795421600"}
    del status[missing]
    with pytest.raises(FieldInvalidError) as raised:
        parse(webhook(value(statuses=[status])), policy)
    assert raised.value.field == field


# -------------------------------------------------------------------------------------------- teams


def test_message_goes_to_the_team_of_the_number_it_was_sent_to(sales_policy: Policy) -> None:
    for number_id, team in ((OUR_NUMBER_ID, "support"), (SALES_NUMBER_ID, "sales")):
        [mapped] = parse(webhook(value([message("text", {"body": "x"})], number_id=number_id)), sales_policy)
        assert isinstance(mapped, InboundMessage) and mapped.team == team


def test_message_to_an_unlisted_number_goes_to_the_default_team(policy: Policy) -> None:
    # intake.yaml: whatsapp.default_team is support
    [mapped] = parse(webhook(value([message("text", {"body": "x"})], number_id="999")), policy)
    assert isinstance(mapped, InboundMessage) and mapped.team == "support"


def test_message_to_an_unlisted_number_without_a_default_team_is_refused(sales_policy: Policy) -> None:
    without_section = parse_policy({"teams": {"support": {"name": "Support"}}})
    for policy in (sales_policy, without_section):
        with pytest.raises(FieldInvalidError) as raised:
            parse(webhook(value([message("text", {"body": "x"})], number_id="999")), policy)
        assert raised.value.field == "metadata.phone_number_id"


def test_statuses_of_an_unlisted_number_need_no_team(sales_policy: Policy) -> None:
    status = {"id": OUR_WAMID, "status": "read", "timestamp": "1795421600"}
    assert len(parse(webhook(value(statuses=[status], number_id="999")), sales_policy)) == 1


# --------------------------------------------------------------------------------------- bad bodies


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b'"whatsapp_business_account"',
        b"null",
        b'{"entry": []}',
        b'{"object": "page", "entry": []}',
        b"[" * 100_000,
        b'{"object": "whatsapp_business_account", "n": 1' + b"1" * 5000 + b"}",
    ],
    ids=[
        "empty",
        "truncated",
        "text",
        "not-utf8",
        "array",
        "string",
        "null",
        "no-object",
        "other-object",
        "too-deep",
        "huge-int",
    ],
)
def test_body_that_is_not_a_whatsapp_webhook_is_refused_as_a_whole(body: bytes, policy: Policy) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        parse(body, policy)
    assert raised.value.field == "(body)"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"object": "whatsapp_business_account", "entry": {"id": "1"}}, "entry"),
        ({"object": "whatsapp_business_account", "entry": ["x"]}, "entry"),
        ({"object": "whatsapp_business_account", "entry": [{"changes": "x"}]}, "changes"),
        (webhook({"messages": {"id": "x"}}), "messages"),
        (webhook({"statuses": [1, 2]}), "statuses"),
    ],
)
def test_updates_that_are_not_lists_of_objects_are_refused(body: dict[str, Any], field: str, policy: Policy) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        parse(body, policy)
    assert raised.value.field == field


def test_unknown_members_anywhere_are_kept_out_of_the_way(policy: Policy) -> None:
    body = webhook(value([message("text", {"body": "Bonjour", "preview_url": True})]))
    body["new_top_level"] = [1, 2]
    body["entry"][0]["time"] = 1795421600
    body["entry"][0]["changes"][0]["value"]["new_member"] = {"x": None}
    body["entry"][0]["changes"][0]["value"]["contacts"] = "no longer a list"
    [mapped] = parse(body, policy)
    assert isinstance(mapped, InboundMessage) and mapped.text == "Bonjour" and mapped.sender.name is None


# ------------------------------------------------------------------------------------- properties

JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
JSON = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
TYPES = st.sampled_from(
    (
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "order",
        "system",
        "unsupported",
        "reaction",
        "poll",
        "",
    )
)
# The members Meta's message types have, so that random contents often look like real ones
KNOWN_KEYS = st.sampled_from(
    (
        "body",
        "id",
        "mime_type",
        "sha256",
        "caption",
        "filename",
        "voice",
        "animated",
        "latitude",
        "longitude",
        "name",
        "address",
        "url",
        "type",
        "button_reply",
        "list_reply",
        "nfm_reply",
        "title",
        "description",
        "payload",
        "text",
        "catalog_id",
        "product_items",
        "quantity",
        "item_price",
        "currency",
        "wa_id",
        "new_wa_id",
        "message_id",
        "emoji",
        "phones",
        "emails",
        "phone",
        "email",
        "formatted_name",
        "org",
    )
)
SHAPED = st.recursive(
    JSON_LEAVES | st.just(SHA256_BASE64) | st.just(WAMID),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KNOWN_KEYS, children, max_size=5),
    max_leaves=16,
)
PHONES = st.sampled_from([CAMILLE, "447700900123", "15551234567", "1", "", "abc"]) | st.text(max_size=16)


def mostly(good: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` nine times in ten, so that most examples get past the first checks."""
    return st.integers(min_value=0, max_value=9).flatmap(lambda n: other if n == 0 else good)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(TYPES)
    found = {
        "from": draw(mostly(st.sampled_from([CAMILLE, "447700900123"]), PHONES | JSON)),
        "id": draw(mostly(st.just(WAMID), JSON)),
        "timestamp": draw(mostly(st.sampled_from(["1795421600", "0", "999999999999"]), JSON)),
        "type": kind,
        kind: draw(SHAPED),
    }
    if kind == "reaction":
        found[kind] = draw(mostly(st.fixed_dictionaries({"message_id": st.just(OUR_WAMID), "emoji": JSON}), SHAPED))
    for key in ("context", "referral", "errors", "from_user_id"):
        if draw(st.booleans()):
            found[key] = draw(SHAPED)
    return found


@st.composite
def statuses(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(mostly(st.just(OUR_WAMID), JSON)),
        "status": draw(mostly(st.sampled_from(["sent", "failed"]), JSON)),
        "timestamp": draw(JSON),
        "recipient_id": draw(JSON),
        "errors": draw(SHAPED),
    }


@st.composite
def webhooks(draw: st.DrawFn) -> dict[str, Any]:
    """Meta's shape with anything in its leaves, so that parsing goes deep before it meets the unexpected."""
    number_id = draw(mostly(st.sampled_from([OUR_NUMBER_ID, "999"]), JSON))
    changes = []
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        change_value: dict[str, Any] = {"metadata": {"phone_number_id": number_id}}
        change_value["contacts"] = draw(mostly(st.just([{"profile": {"name": "Camille"}, "wa_id": CAMILLE}]), JSON))
        change_value["messages"] = draw(st.lists(messages(), max_size=2))
        change_value["statuses"] = draw(st.lists(statuses(), max_size=2))
        changes.append({"field": draw(mostly(st.just("messages"), JSON)), "value": change_value})
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": changes}]}


def check_parse_only_refuses_with_field_invalid(body: bytes, policy: Policy) -> None:
    try:
        items = parse(body, policy)
    except FieldInvalidError:
        return
    for item in items:
        if isinstance(item, InboundMessage):
            assert item.thread_key.startswith("whatsapp#") and item.provider == "whatsapp"
            json.dumps(item.metadata)  # what the store will write
            item.model_dump_json()  # what the queue will carry
        elif isinstance(item, Reaction):
            item.model_dump_json()
        else:
            assert item.at.tzinfo is not None


# no per-example deadline: what is asserted is the outcome; a busy machine (parallel workers) made 200 ms flaky
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=webhooks())
def test_parse_of_any_meta_shaped_body_maps_or_raises_field_invalid_only(
    document: dict[str, Any], policy: Policy
) -> None:
    check_parse_only_refuses_with_field_invalid(json.dumps(document).encode(), policy)


@settings(max_examples=200)
@given(document=JSON, raw=st.binary(max_size=64))
def test_parse_of_any_json_or_bytes_maps_or_raises_field_invalid_only(
    document: Any, raw: bytes, policy: Policy
) -> None:
    check_parse_only_refuses_with_field_invalid(json.dumps(document).encode(), policy)
    check_parse_only_refuses_with_field_invalid(raw, policy)
