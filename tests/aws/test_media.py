"""WhatsApp media, downloaded from a local Graph API into the moto archive: retries, sha256, failures."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from ulid import ULID

from intake.archive import S3Archive
from intake.inbox import Inbox
from intake.media import MediaUnavailableError, fetch_media, graph_fetcher, sha256_hex
from intake.model import Attachment, Channel, InboundMessage, Sender
from intake.queues import SqsQueue
from tests.aws.conftest import Stack, at
from tests.aws.graph_api import TOKEN, GraphApi, serving

T0 = at("2026-11-23T09:30:00+00:00")
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40  # a JPEG's start, then some bytes
VOICE = b"OggS" + b"\x01" * 3000


@pytest.fixture
def graph() -> Iterator[GraphApi]:
    with serving() as api:
        yield api


@pytest.fixture
def inbox(stack: Stack) -> Inbox:
    queue = SqsQueue(stack.sqs, stack.resources.queue_urls["inbound"])
    return Inbox(S3Archive(stack.s3, stack.resources.bucket), queue)


class Sleeps(list[float]):
    """What `fetch_media` asked to sleep, in order: the backoff, without waiting for it."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def media(media_id: str, content: bytes | None = None, **fields: Any) -> Attachment:
    values: dict[str, Any] = {
        "filename": f"whatsapp-{media_id}.jpg",
        "content_type": "image/jpeg",
        "media_id": media_id,
        "sha256": hashlib.sha256(content).hexdigest() if content is not None else None,
        "media_status": "pending",
    }
    return Attachment(**(values | fields))


def message(*attachments: Attachment) -> InboundMessage:
    receipt_id = str(ULID())
    return InboundMessage(
        channel=Channel.WHATSAPP,
        provider="whatsapp",
        provider_message_id="wamid.HBgLMzM2MTIzNDU2NzgVAgASGBQzQUNFNUZCQjQ2NjVCNzUyMkQ5QQA=",
        receipt_id=receipt_id,
        received_at=T0,
        team="support",
        sender=Sender(name="Camille", phone="+33612345678"),
        text="Here is the broken part",
        attachments=attachments,
        raw_archive_key=f"raw/2026/11/23/whatsapp/{receipt_id}",
        thread_key="whatsapp:+33612345678",
    )


def archived(stack: Stack, key: str) -> tuple[bytes, str]:
    got = stack.s3.get_object(Bucket=stack.resources.bucket, Key=key)
    return got["Body"].read(), got["ContentType"]


def attachment_objects(stack: Stack) -> list[str]:
    return [key for key in stack.objects() if key.startswith("attachments/")]


def test_a_pending_image_is_archived_with_its_type_and_marked_stored(
    stack: Stack, graph: GraphApi, inbox: Inbox
) -> None:
    # Given a WhatsApp message with a photo the Graph API holds, its sha256 as the webhook gave it
    graph.add("1001", PHOTO)
    received = message(media("1001", PHOTO, caption="the broken part"))

    # When the worker fetches its media
    result = fetch_media(received, graph_fetcher(graph.base_url, TOKEN), inbox.store_attachment, attempts=4)

    # Then the photo is in the archive under attachments/, with its type, and the message says so
    (photo,) = result.attachments
    assert photo.media_status == "stored"
    assert photo.size == len(PHOTO)
    assert photo.sha256 == hashlib.sha256(PHOTO).hexdigest()
    assert photo.caption == "the broken part"
    assert photo.s3_key == f"attachments/2026/11/23/{received.receipt_id}/1-whatsapp-1001.jpg"
    assert archived(stack, photo.s3_key) == (PHOTO, "image/jpeg")
    # (a fresh URL, then its bytes, both with the token; nothing else of the message changed)
    assert [(s.path, s.authorization) for s in graph.seen] == [
        ("/v21.0/1001", f"Bearer {TOKEN}"),
        ("/media/1001", f"Bearer {TOKEN}"),
    ]
    assert result.model_copy(update={"attachments": received.attachments}) == received


def test_a_media_that_fails_twice_is_stored_at_the_third_attempt_after_backing_off(
    stack: Stack, graph: GraphApi, inbox: Inbox
) -> None:
    # Given a Graph API that answers 500 twice before it answers
    graph.add("1002", PHOTO, failures=2)
    sleeps = Sleeps()

    # When the worker fetches the media with 4 attempts
    result = fetch_media(
        message(media("1002", PHOTO)),
        graph_fetcher(graph.base_url, TOKEN),
        inbox.store_attachment,
        attempts=4,
        sleep=sleeps,
    )

    # Then it is stored after 3 attempts, having waited 0.5 s then 1 s
    (photo,) = result.attachments
    assert photo.media_status == "stored"
    assert graph.url_requests("1002") == 3
    assert sleeps == [0.5, 1.0]
    assert attachment_objects(stack) == [photo.s3_key]


def test_a_sha256_mismatch_on_every_try_leaves_the_media_unavailable_and_the_archive_empty(
    stack: Stack, graph: GraphApi, inbox: Inbox
) -> None:
    # Given a media whose bytes never match the sha256 the webhook announced
    graph.add("1003", PHOTO)
    announced = media("1003", sha256=hashlib.sha256(b"what the customer sent").hexdigest())
    sleeps = Sleeps()

    # When the worker fetches it with 4 attempts
    result = fetch_media(
        message(announced), graph_fetcher(graph.base_url, TOKEN), inbox.store_attachment, attempts=4, sleep=sleeps
    )

    # Then it tried 4 times, backing off, and stored nothing
    (photo,) = result.attachments
    assert photo == announced.model_copy(update={"media_status": "unavailable"})
    assert graph.url_requests("1003") == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert attachment_objects(stack) == []


def test_bytes_that_do_not_match_the_graph_api_sha256_are_not_stored(
    stack: Stack, graph: GraphApi, inbox: Inbox
) -> None:
    # Given a download corrupted on the way, and a webhook that gave no sha256
    graph.add("1004", PHOTO, served=PHOTO[:-10] + b"corrupted!")

    # When the worker fetches it
    result = fetch_media(
        message(media("1004")), graph_fetcher(graph.base_url, TOKEN), inbox.store_attachment, attempts=2, sleep=Sleeps()
    )

    # Then the Graph API's own sha256 caught it
    assert [a.media_status for a in result.attachments] == ["unavailable"]
    assert graph.url_requests("1004") == 2
    assert attachment_objects(stack) == []


def test_a_rejected_token_makes_the_media_unavailable_without_retrying(
    stack: Stack, graph: GraphApi, inbox: Inbox
) -> None:
    # Given a token the Graph API rejects (401, error 190)
    graph.add("1005", PHOTO)
    sleeps = Sleeps()

    # When the worker fetches the media with it
    result = fetch_media(
        message(media("1005", PHOTO)),
        graph_fetcher(graph.base_url, "expired-token"),
        inbox.store_attachment,
        attempts=4,
        sleep=sleeps,
    )

    # Then the media is unavailable at once: no retry can fix a token
    assert [a.media_status for a in result.attachments] == ["unavailable"]
    assert graph.url_requests("1005") == 1
    assert sleeps == []
    assert attachment_objects(stack) == []


def test_a_graph_api_that_hangs_past_the_timeout_makes_the_media_unavailable(
    stack: Stack, graph: GraphApi, inbox: Inbox
) -> None:
    # Given a Graph API that answers after 5 s, and a worker that waits 0.2 s
    graph.add("1006", PHOTO, hang_s=5)
    sleeps = Sleeps()

    # When the worker fetches the media with 2 attempts
    result = fetch_media(
        message(media("1006", PHOTO)),
        graph_fetcher(graph.base_url, TOKEN, timeout_s=0.2),
        inbox.store_attachment,
        attempts=2,
        sleep=sleeps,
    )

    # Then both attempts time out and the media is unavailable
    assert [a.media_status for a in result.attachments] == ["unavailable"]
    assert graph.url_requests("1006") == 2
    assert sleeps == [0.5]
    assert attachment_objects(stack) == []


def test_a_media_over_the_size_limit_is_unavailable_without_being_downloaded(
    stack: Stack, graph: GraphApi, inbox: Inbox
) -> None:
    # Given a media larger than the worker accepts
    graph.add("1007", PHOTO)
    sleeps = Sleeps()

    # When the worker fetches it
    result = fetch_media(
        message(media("1007", PHOTO)),
        graph_fetcher(graph.base_url, TOKEN, max_bytes=1024),
        inbox.store_attachment,
        attempts=4,
        sleep=sleeps,
    )

    # Then the announced size alone makes it unavailable: not downloaded, not retried
    assert [a.media_status for a in result.attachments] == ["unavailable"]
    assert graph.requests_for("/media/") == []
    assert sleeps == []


def test_a_download_larger_than_announced_is_cut_at_the_limit() -> None:
    # Given a Graph API that understates the size of a media
    with serving() as graph:
        graph.add("1008", PHOTO, declared_size=100)
        fetch = graph_fetcher(graph.base_url, TOKEN, max_bytes=1024)

        # When one attempt downloads it
        with pytest.raises(MediaUnavailableError) as failed:
            fetch("1008")

    # Then it stops at the limit, for good
    assert "larger than 1024 bytes" in failed.value.reason
    assert failed.value.retryable is False


def test_one_failing_media_of_two_leaves_the_other_stored(stack: Stack, graph: GraphApi, inbox: Inbox) -> None:
    # Given a message with a voice note and a photo that the Graph API no longer has
    graph.add("2001", VOICE, mime_type="audio/ogg")
    graph.add("2002", PHOTO, status=404)
    voice = media("2001", VOICE, filename="voice.ogg", content_type="audio/ogg; codecs=opus")
    photo = media("2002", PHOTO)

    # When the worker fetches its media
    result = fetch_media(
        message(voice, photo), graph_fetcher(graph.base_url, TOKEN), inbox.store_attachment, attempts=3, sleep=Sleeps()
    )

    # Then the voice note is stored (as the type the message declared), the photo unavailable
    stored, missing = result.attachments
    assert (stored.media_status, missing.media_status) == ("stored", "unavailable")
    assert stored.s3_key is not None and stored.s3_key.endswith("/1-voice.ogg")
    assert archived(stack, stored.s3_key) == (VOICE, "audio/ogg; codecs=opus")
    assert missing.s3_key is None
    assert attachment_objects(stack) == [stored.s3_key]


def test_attachments_without_media_id_or_not_pending_are_left_as_they_are(
    stack: Stack, graph: GraphApi, inbox: Inbox
) -> None:
    # Given a message whose attachments are already archived, already given up, or have no media id,
    # and one pending media at position 4
    graph.add("3001", PHOTO)
    graph.add("3002", PHOTO)
    graph.add("3004", VOICE, mime_type="audio/ogg")
    kept = (
        media("3001", PHOTO, media_status="stored", s3_key="attachments/2026/11/23/x/1-whatsapp-3001.jpg", size=9),
        media("3002", media_status="unavailable"),
        Attachment(filename="form.pdf", content_type="application/pdf", s3_key="attachments/x/3-form.pdf"),
    )
    pending = media("3004", VOICE, filename="voice.ogg", content_type="application/octet-stream")
    received = message(*kept, pending)

    # When the worker fetches its media
    result = fetch_media(received, graph_fetcher(graph.base_url, TOKEN), inbox.store_attachment, attempts=2)

    # Then only the pending one was asked for; it keeps its position and takes the Graph API's type
    assert result.attachments[:3] == kept
    assert [s.path for s in graph.seen] == ["/v21.0/3004", "/media/3004"]
    fetched = result.attachments[3]
    assert fetched.s3_key is not None and fetched.s3_key.endswith(f"/{received.receipt_id}/4-voice.ogg")
    assert archived(stack, fetched.s3_key) == (VOICE, "audio/ogg")

    # And a message with nothing pending comes back as it came, without a request
    untouched = message(*kept)
    assert fetch_media(untouched, _never, inbox.store_attachment, attempts=2) is untouched


def _never(media_id: str) -> tuple[bytes, str]:
    raise AssertionError(f"{media_id} was fetched")


def test_a_redirected_download_does_not_carry_the_token(stack: Stack, graph: GraphApi, inbox: Inbox) -> None:
    # Given a media URL that redirects to a CDN location authorized by its own URL
    graph.add("4001", PHOTO, redirect=True)

    # When the worker fetches the media
    result = fetch_media(
        message(media("4001", PHOTO)), graph_fetcher(graph.base_url, TOKEN), inbox.store_attachment, attempts=1
    )

    # Then it is stored, and the bearer token went to the Graph API only
    assert [a.media_status for a in result.attachments] == ["stored"]
    assert [(s.path, s.authorization) for s in graph.seen] == [
        ("/v21.0/4001", f"Bearer {TOKEN}"),
        ("/media/4001", f"Bearer {TOKEN}"),
        ("/cdn/4001", None),
    ]


def test_logs_carry_media_and_receipt_ids_but_never_the_token_or_the_download_url(
    stack: Stack, graph: GraphApi, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    # Given one media that fails once, one whose bytes never match, and one refused token
    graph.add("5001", PHOTO, failures=1)
    graph.add("5002", PHOTO, served=b"other bytes")
    received = message(media("5001", PHOTO), media("5002", PHOTO))
    caplog.set_level(logging.INFO, logger="intake")

    # When the worker fetches them, then the same with a wrong token
    fetch_media(received, graph_fetcher(graph.base_url, TOKEN), inbox.store_attachment, attempts=2, sleep=Sleeps())
    fetch_media(received, graph_fetcher(graph.base_url, "wrong-token"), inbox.store_attachment, attempts=2)

    # Then each line names the receipt and the media, and none holds the token or the URL's query
    records = [r for r in caplog.records if r.name == "intake"]
    assert {r.getMessage() for r in records} == {"media fetch failed", "media stored", "media unavailable"}
    assert {(getattr(r, "receipt_id", None), getattr(r, "media_id", None)) for r in records} == {
        (received.receipt_id, "5001"),
        (received.receipt_id, "5002"),
    }
    logged = " ".join(str(vars(r)) for r in records) + caplog.text
    assert TOKEN not in logged
    assert "wrong-token" not in logged
    assert "secret-query" not in logged
    assert "/media/" not in logged


def test_webhook_sha256_in_base64_reads_as_hex() -> None:
    # Given the sha256 of a media as WhatsApp webhooks send it (base64) and as the Graph API does (hex)
    digest = hashlib.sha256(PHOTO).digest()

    # Then both read as the same hex digest, and anything else as nothing
    assert sha256_hex(base64.b64encode(digest).decode()) == digest.hex()
    assert sha256_hex(digest.hex().upper()) == digest.hex()
    assert sha256_hex("not a digest") is None
    assert sha256_hex(base64.b64encode(b"short").decode()) is None
    assert sha256_hex(None) is None


def test_fewer_than_one_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="attempts"):
        fetch_media(message(), _never, lambda attachment, content: None, attempts=0)
