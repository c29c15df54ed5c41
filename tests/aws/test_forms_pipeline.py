"""A web form, end to end on moto: receiver → raw archive → FIFO queue → ingest worker → ticket → API."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.exceptions import ClientError

from intake.queues import QUEUE_MESSAGE_BYTES
from tests.aws.conftest import Stack


def test_signed_json_form_becomes_one_ticket_with_its_contact_and_archive(stack: Stack) -> None:
    # Given a signed JSON post from the site's backend
    status, body = stack.post_sample("contact-json.json")

    # Then it is accepted, archived raw and queued, before any ticket exists
    assert status == 202
    receipt = body["receipt"]
    raw = [k for k in stack.objects() if k.startswith("raw/")]
    assert len(raw) == 1 and raw[0].endswith(f"/forms/{receipt}")
    envelope = json.loads(stack.s3.get_object(Bucket=stack.resources.bucket, Key=raw[0])["Body"].read())
    assert envelope["path"] == "/webhooks/forms/contact" and envelope["receipt_id"] == receipt
    assert stack.queued() == 1 and stack.tickets() == []

    # When the worker runs
    assert stack.work() == 1

    # Then one ticket exists, readable through the API with contact, message and history
    status, page = stack.get("/tickets")
    assert status == 200 and page["next"] is None
    [ticket] = page["items"]
    assert ticket["subject"] == "Order 1042 arrived damaged"
    assert (ticket["channel"], ticket["priority"], ticket["status"], ticket["team"]) == (
        "form",
        "high",
        "open",
        "support",
    )
    status, detail = stack.get(f"/tickets/{ticket['id']}")
    assert status == 200
    assert detail["contact"]["phones"] == ["+33612345678"]
    assert detail["contact"]["emails"] == ["camille.durand+orders@example.org"]
    assert detail["contact"]["name"] == "Camille Durand"
    [message] = detail["messages"]
    assert message["text"].startswith("Bonjour, the vase in order 1042")
    assert message["receipt_id"] == receipt and message["raw_archive_key"] == raw[0]
    assert message["metadata"] == {"form_id": "contact", "fields": {"order_number": "1042"}}
    assert next(e["kind"] for e in detail["events"]) == "created"


def test_multipart_files_become_attachments_in_the_archive(stack: Stack) -> None:
    status, _ = stack.post_sample("website-multipart.json")
    assert status == 202
    stack.work()

    [ticket] = stack.get("/tickets")[1]["items"]
    [message] = stack.get(f"/tickets/{ticket['id']}")[1]["messages"]
    [attachment] = message["attachments"]
    assert (attachment["filename"], attachment["content_type"]) == ("invoice.png", "image/png")
    stored = stack.s3.get_object(Bucket=stack.resources.bucket, Key=attachment["s3_key"])
    content = stored["Body"].read()
    assert len(content) == attachment["size"] == 70
    assert content.startswith(b"\x89PNG")


def test_same_request_delivered_five_times_makes_one_ticket(stack: Stack) -> None:
    prepared = stack.prepare("contact-json.json")
    receipts = set()
    for _ in range(5):
        status, body = stack.post(prepared.path, prepared.body, prepared.headers)
        assert status == 202
        receipts.add(body["receipt"])
    stack.work()

    assert len(receipts) == 5  # every delivery was answered and archived
    assert len([k for k in stack.objects() if k.startswith("raw/")]) == 5
    assert len(stack.tickets()) == 1


def test_redelivered_queue_messages_past_sqs_deduplication_still_make_one_ticket(stack: Stack) -> None:
    # Given one accepted form, its queue message sent again five times with fresh deduplication ids
    # (as after SQS's 5-minute window, or a DLQ redrive), so only DynamoDB can tell
    stack.post_sample("contact-json.json")
    message = stack.sqs.receive_message(QueueUrl=stack.resources.queue_urls["inbound"], VisibilityTimeout=0)[
        "Messages"
    ][0]
    for n in range(5):
        stack.sqs.send_message(
            QueueUrl=stack.resources.queue_urls["inbound"],
            MessageBody=message["Body"],
            MessageGroupId="g",
            MessageDeduplicationId=f"again-{n}",
        )
    assert stack.work() == 6

    [ticket] = stack.tickets()
    messages = [i for i in stack.items() if i["SK"]["S"].startswith("MSG#")]
    assert len(messages) == 1 and ticket["message_count"]["N"] == "1"


def test_twenty_concurrent_deliveries_make_one_ticket(stack: Stack) -> None:
    prepared = stack.prepare("contact-json.json")
    start = threading.Barrier(20)

    def deliver(_: int) -> int:
        start.wait()
        return stack.post(prepared.path, prepared.body, prepared.headers)[0]

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(deliver, range(20)))
    stack.work()

    assert statuses == [202] * 20
    assert len(stack.tickets()) == 1


def test_double_clicked_public_form_makes_one_ticket(stack: Stack) -> None:
    first = stack.post_sample("website-urlencoded.json")
    second = stack.post_sample("website-urlencoded.json")
    stack.work()

    assert first[0] == second[0] == 202 and first[1] != second[1]
    assert len(stack.tickets()) == 1


def test_enqueue_failure_answers_500_and_the_providers_retry_makes_one_ticket(stack: Stack) -> None:
    # Given SQS fails once, after the raw request was archived
    from intake import runtime

    sqs = runtime.inbox().queue._sqs  # type: ignore[attr-defined]  # the receiver's own client: the AWS boundary
    failures = iter([True])

    def fail_once(**_: Any) -> None:
        if next(failures, False):
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "SendMessageBatch")

    sqs.meta.events.register("before-call.sqs.SendMessageBatch", fail_once)
    prepared = stack.prepare("contact-json.json")

    # When the provider sees the 500 and retries
    status, problem = stack.post(prepared.path, prepared.body, prepared.headers)
    assert status == 500 and problem["type"] == "urn:intake:problem:internal"
    assert stack.post(prepared.path, prepared.body, prepared.headers)[0] == 202
    stack.work()

    # Then nothing was lost and nothing doubled
    assert len(stack.tickets()) == 1


def test_ticket_write_failure_leaves_the_message_queued_and_the_retry_creates_it_once(stack: Stack) -> None:
    from intake import runtime

    stack.post_sample("contact-json.json")
    dynamodb = runtime.store()._db
    calls = {"n": 0}

    def throttle_first(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "TransactWriteItems")

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", throttle_first)
    stack.sqs.set_queue_attributes(
        QueueUrl=stack.resources.queue_urls["inbound"], Attributes={"VisibilityTimeout": "0"}
    )

    # When the first attempt fails (the batch reports it) and the redelivery succeeds
    stack.work()

    assert calls["n"] == 2
    assert len(stack.tickets()) == 1 and stack.queued() == 0


def test_crash_after_the_ticket_write_then_redelivery_leaves_the_same_state(stack: Stack) -> None:
    # Given a worker that wrote the ticket but died before deleting the queue message
    from intake.handlers import ingest
    from intake.local.gateway import LocalContext
    from intake.local.workers import sqs_event
    from intake.queues import SqsQueue

    stack.post_sample("contact-json.json")
    queue = SqsQueue(stack.sqs, stack.resources.queue_urls["inbound"])
    messages = queue.receive()
    queue.release([m.receipt for m in messages])  # not deleted: it comes back at once
    ingest.handler(sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:q"), LocalContext("ingest", "r"))
    before = sorted(json.dumps(i, sort_keys=True) for i in stack.items())

    # When the message comes back and is processed again
    assert stack.work() == 1

    # Then the table is exactly as it was
    assert sorted(json.dumps(i, sort_keys=True) for i in stack.items()) == before
    assert len(stack.tickets()) == 1


def test_poison_message_goes_to_the_dead_letter_queue_without_blocking_other_conversations(
    stack: Stack,
) -> None:
    url = stack.resources.queue_urls["inbound"]
    stack.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    stack.sqs.send_message(QueueUrl=url, MessageBody="{not json", MessageGroupId="poison", MessageDeduplicationId="p")
    stack.post_sample("contact-json.json")

    stack.work(rounds=8)

    assert len(stack.tickets()) == 1
    assert stack.queued() == 0
    assert stack.queued("inbound-dlq") == 1


@pytest.mark.parametrize(
    ("change", "status", "problem"),
    [
        ({"x-intake-signature": "sha256=" + "0" * 64}, 401, "signature-invalid"),
        ({"x-intake-signature": None}, 401, "signature-invalid"),
        ({"x-intake-timestamp": str(int(time.time()) - 3600)}, 401, "signature-invalid"),
    ],
)
def test_forged_or_stale_signature_stores_nothing(
    stack: Stack, change: dict[str, Any], status: int, problem: str
) -> None:
    prepared = stack.prepare("contact-json.json")
    headers = {k: v for k, v in {**prepared.headers, **change}.items() if v is not None}

    got, body = stack.post(prepared.path, prepared.body, headers)
    stack.work()

    assert (got, body["type"]) == (status, f"urn:intake:problem:{problem}")
    assert body["status"] == status and body["instance"]
    assert stack.objects() == [] and stack.queued() == 0 and stack.items() == []


def test_tampered_body_with_a_valid_signature_for_another_body_is_rejected(stack: Stack) -> None:
    prepared = stack.prepare("contact-json.json")
    status, body = stack.post(prepared.path, prepared.body.replace(b"1042", b"9999"), prepared.headers)
    assert status == 401 and body["type"] == "urn:intake:problem:signature-invalid"
    assert stack.objects() == [] and stack.queued() == 0


def test_filled_honeypot_answers_202_and_stores_nothing(stack: Stack) -> None:
    status, body = stack.post_sample("website-honeypot.json")
    stack.work()
    assert status == 202 and body["receipt"]
    assert stack.objects() == [] and stack.items() == []


def test_public_form_from_an_unlisted_origin_is_forbidden(stack: Stack) -> None:
    status, body = stack.post_sample("website-urlencoded.json", headers={"Origin": "https://evil.example"})
    assert status == 403 and body["type"] == "urn:intake:problem:origin-forbidden"
    assert stack.objects() == [] and stack.queued() == 0


def test_bad_field_answers_400_naming_the_field_and_stores_nothing(stack: Stack) -> None:
    form = {"full_name": "Jo", "email": "not-an-email", "message": "hello", "website": ""}
    status, body = stack.post_sample("website-urlencoded.json", form=form)
    assert status == 400
    assert body["type"] == "urn:intake:problem:field-invalid" and body["field"] == "email"
    assert stack.objects() == [] and stack.queued() == 0


def test_unknown_form_oversized_body_and_wrong_content_type_are_refused(stack: Stack) -> None:
    assert stack.post("/webhooks/forms/nope", b"{}", {"content-type": "application/json"})[1]["status"] == 404
    big = {"full_name": "Jo", "email": "jo@example.com", "message": "x" * 7_000_000, "website": ""}
    status, body = stack.post_sample("website-urlencoded.json", form=big)
    assert (status, body["type"]) == (413, "urn:intake:problem:payload-too-large")
    origin = {"origin": "https://www.example.com", "content-type": "text/plain"}
    status, body = stack.post("/webhooks/forms/website", b"hello", origin)
    assert (status, body["type"]) == (415, "urn:intake:problem:unsupported-media-type")
    assert stack.objects() == [] and stack.queued() == 0


def test_typeform_webhook_is_mapped_by_field_ref(stack: Stack) -> None:
    assert stack.post_sample("feedback-typeform.json")[0] == 202
    assert stack.post_sample("feedback-typeform.json")[0] == 202  # Typeform retries: same token
    stack.work()

    [ticket] = stack.get("/tickets")[1]["items"]
    detail = stack.get(f"/tickets/{ticket['id']}")[1]
    assert detail["contact"]["name"] == "Sam Okafor"
    assert detail["messages"][0]["text"].startswith("The app crashes")
    assert detail["messages"][0]["metadata"]["fields"] == {"platform": "Android"}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_logs_carry_ids_never_bodies_phones_or_emails(stack: Stack) -> None:
    from intake.observability import logger

    # The JSON lines exactly as the functions write them
    collected = _Lines()
    collected.setFormatter(logger.registered_formatter)
    logger.addHandler(collected)
    try:
        _, body = stack.post_sample("contact-json.json")
        stack.work()
        stack.post_sample("contact-json.json", json={"email": "bad", "message": "x"})
    finally:
        logger.removeHandler(collected)
    logs = "\n".join(collected.lines)

    assert body["receipt"] in logs
    [ticket] = stack.tickets()
    assert ticket["id"]["S"] in logs
    for secret in ("Camille", "camille.durand", "+33612345678", "06 12 34 56 78", "vase", "Order 1042"):
        assert secret not in logs


def test_poison_message_holds_its_own_conversation_only_until_it_is_dead_lettered(stack: Stack) -> None:
    # Given a poison message first in a conversation, and a good message after it in the same group
    url = stack.resources.queue_urls["inbound"]
    stack.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    stack.post_sample("contact-json.json")
    good = stack.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, MessageSystemAttributeNames=["All"])
    [queued] = good["Messages"]
    group = queued["Attributes"]["MessageGroupId"]
    stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=queued["ReceiptHandle"])
    for body, dedupe in (("{not json", "p"), (queued["Body"], "g")):
        stack.sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=dedupe)

    # When the consumer keeps running
    stack.work(rounds=8)

    # Then the poison is dead-lettered after its tries and the good message is processed after it
    assert stack.queued("inbound-dlq") == 1
    assert stack.queued() == 0
    assert len(stack.tickets()) == 1


@pytest.mark.parametrize(
    ("text", "extra"),
    [("😀" * 90_000, "x" * 1_000_000), ("\x01" * 90_000, "")],
    ids=["360 KB of emoji and a 1 MB extra field", "control characters"],
)
def test_a_form_too_big_for_a_queue_message_becomes_a_ticket_with_its_head(stack: Stack, text: str, extra: str) -> None:
    # Given a public form post within the form's 4 MB, but over what SQS takes in a message (256 KiB), even as the
    # model keeps it (text under 100,000 characters, custom fields as metadata)
    sample = stack.prepare("website-urlencoded.json")
    form = {"full_name": "Jonas W", "email": "jonas@example.net", "topic": "Logs", "message": text, "website": ""}
    body = urlencode({**form, "logs": extra}).encode()

    # Then it is accepted, queued within the limit, and becomes a ticket whose message keeps the head of the text
    status, _ = stack.post(sample.path, body, {**sample.headers, "content-type": "application/x-www-form-urlencoded"})
    assert status == 202 and stack.queued() == 1
    queue = stack.resources.queue_urls["inbound"]
    [queued] = stack.sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"]
    assert len(queued["Body"].encode()) <= QUEUE_MESSAGE_BYTES
    assert stack.work() == 1
    [ticket] = stack.get("/tickets")[1]["items"]
    [message] = stack.get(f"/tickets/{ticket['id']}")[1]["messages"]
    assert 1000 < len(message["text"]) < len(text) and text.startswith(message["text"])
    assert "text" in message["metadata"]["cut"]
    # and the whole request is in the archive
    archived = stack.s3.get_object(Bucket=stack.resources.bucket, Key=message["raw_archive_key"])["Body"].read()
    assert len(json.loads(archived)["body_base64"]) > len(body)
