"""Email on moto: raw MIME archived as SES would, then threaded by the worker into the right ticket."""

from __future__ import annotations

import json
from typing import Any

from intake.local.gateway import LocalContext, api_event
from tests.aws.conftest import Stack


def mime(
    subject: str,
    body: str,
    *,
    message_id: str,
    sender: str = "Ana Silva <Ana.Silva@example.org>",
    to: str = "support@example.com",
    extra: str = "",
) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
        f"Date: Mon, 23 Nov 2026 09:12:00 +0100\r\nMIME-Version: 1.0\r\n{extra}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def inject(stack: Stack, raw: bytes, to: str = "support@example.com") -> dict[str, Any]:
    """What `intake inject-email` does against `intake serve`, through the same local handler."""
    from intake.local import ses

    event = api_event("POST", f"{ses.PATH}?to={to}", {"content-type": "message/rfc822"}, raw, "127.0.0.1")
    result = ses.handler(event, LocalContext("ses-receiving", "r"))
    assert result["statusCode"] == 202
    answer: dict[str, Any] = json.loads(result["body"])
    return answer


def tickets(stack: Stack) -> list[dict[str, Any]]:
    return [stack.get(f"/tickets/{t['id']}")[1] for t in stack.get("/tickets")[1]["items"]]


def test_a_new_email_becomes_a_ticket_and_its_mime_is_archived(stack: Stack) -> None:
    answer = inject(stack, mime("Refund for order 881", "I was charged twice.", message_id="a1@mail.example.org"))
    stack.work()

    assert answer["archived"].endswith(".eml") and answer["archived"] in stack.objects()
    [ticket] = tickets(stack)
    assert (ticket["channel"], ticket["team"], ticket["subject"]) == ("email", "support", "Refund for order 881")
    assert ticket["contact"]["emails"] == ["ana.silva@example.org"] and ticket["contact"]["name"] == "Ana Silva"
    assert ticket["messages"][0]["text"].startswith("I was charged twice.")


def test_a_reply_joins_its_ticket_by_in_reply_to_and_by_reference_token(stack: Stack) -> None:
    inject(stack, mime("Refund for order 881", "I was charged twice.", message_id="a1@mail.example.org"))
    stack.work()
    [first] = tickets(stack)
    inject(
        stack,
        mime(
            "Re: Refund for order 881",
            "Any news?",
            message_id="a2@mail.example.org",
            extra="In-Reply-To: <a1@mail.example.org>\r\nReferences: <a1@mail.example.org>\r\n",
        ),
    )
    inject(
        stack,
        mime(f"Still waiting [#{first['reference']}]", "Hello again", message_id="a3@other.example.net"),
    )
    stack.work()

    [ticket] = tickets(stack)
    assert [m["text"].strip() for m in ticket["messages"]] == ["I was charged twice.", "Any news?", "Hello again"]


def test_an_out_of_office_reply_to_nothing_we_know_opens_no_ticket(stack: Stack) -> None:
    ooo = mime(
        "Automatic reply: Your order",
        "I am out of the office until Monday.",
        message_id="ooo1@example.org",
        extra="Auto-Submitted: auto-replied\r\n",
    )
    inject(stack, ooo)
    stack.work()

    assert stack.tickets() == []
    assert any(key.endswith(".eml") for key in stack.objects())  # archived all the same


def test_the_same_email_delivered_twice_is_one_message(stack: Stack) -> None:
    raw = mime("Invoice", "Please resend the invoice.", message_id="dup@example.org")
    inject(stack, raw)
    inject(stack, raw)
    stack.work()

    [ticket] = tickets(stack)
    assert len(ticket["messages"]) == 1


def test_sendgrid_and_mailgun_posts_become_tickets_through_the_same_path(stack: Stack) -> None:
    for name in ("sendgrid-raw.json", "mailgun-mime.json"):
        prepared = stack.prepare(name)
        status, answer = stack.post(prepared.path, prepared.body, prepared.headers)
        assert status == 200 and answer["receipt"], (name, answer)
    stack.work()

    assert {m["metadata"]["transport"] for t in tickets(stack) for m in t["messages"]} == {"sendgrid", "mailgun"}


def test_forged_sendgrid_auth_is_403_and_stores_nothing(stack: Stack) -> None:
    prepared = stack.prepare("sendgrid-raw.json")
    headers = {**prepared.headers, "authorization": "Basic bm9ib2R5Om5vdGhpbmc="}
    status, problem = stack.post(prepared.path, prepared.body, headers)
    assert (status, problem["type"]) == (403, "urn:intake:problem:webhook-signature-invalid")
    assert stack.objects() == [] and stack.queued() == 0


def test_a_replayed_mailgun_request_is_refused(stack: Stack) -> None:
    prepared = stack.prepare("mailgun-mime.json")
    assert stack.post(prepared.path, prepared.body, prepared.headers)[0] == 200
    status, problem = stack.post(prepared.path, prepared.body, prepared.headers)
    assert (status, problem["type"]) == (403, "urn:intake:problem:webhook-signature-invalid")


def test_ses_receiving_path_s3_event_to_queue_to_worker_to_ticket(stack: Stack) -> None:
    from intake.handlers import email
    from intake.local.workers import poll_once
    from intake.queues import SqsQueue
    from intake.resources import SES_PREFIX

    # Given SES's receipt rule storing a message's MIME in the archive
    raw = mime(
        "Broken zipper",
        "The zipper broke on day two.",
        message_id="ses1@mail.example.org",
        extra="X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n"
        "Authentication-Results: amazonses.com; spf=pass smtp.mailfrom=example.org; dkim=pass; dmarc=none\r\n",
    )
    stack.s3.put_object(Bucket=stack.resources.bucket, Key=f"{SES_PREFIX}0q8v2hf1rk1ig2s5o2l0", Body=raw)

    # When the bucket's event reaches the email queue and its worker
    url = stack.resources.queue_urls["email"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    taken = 0
    for _ in range(3):
        taken += poll_once(SqsQueue(stack.sqs, url), arn, "email", email.handler, wait_s=0)

    # Then the message is a ticket, and the queue is empty
    assert taken >= 1
    [ticket] = tickets(stack)
    assert (ticket["channel"], ticket["subject"]) == ("email", "Broken zipper")
    assert ticket["messages"][0]["metadata"]["transport"] == "ses"
    assert ticket["messages"][0]["metadata"]["verdicts"] == {
        "spam": "PASS",
        "virus": "PASS",
        "spf": "PASS",
        "dkim": "PASS",
        "dmarc": "NONE",
    }
    assert stack.queued("email") == 0


def test_a_message_that_always_fails_holds_up_only_its_own_thread(stack: Stack) -> None:
    from datetime import UTC, datetime

    from intake import runtime
    from intake.model import EmailArrived

    # Given a first message that can never be processed (its archived MIME is gone), a reply to it, and mail of
    # two other conversations, all on the inbound FIFO queue in that order
    lost = EmailArrived(
        provider="smtp",
        receipt_id="01JDZZZZZZZZZZZZZZZZZZZZZ0",
        received_at=datetime.now(UTC),
        raw_archive_key="raw/2026/11/23/smtp/gone.eml",
        conversation="root@mail.example.org",
    )
    runtime.inbox().enqueue(lost)
    inject(stack, mime("Re: broken", "Any news?", message_id="r1@mail.example.org", extra=_replying("root")))
    inject(stack, mime("Other", "A question", message_id="o1@mail.example.org", sender="bo@example.net"))
    inject(stack, mime("Re: Other", "More", message_id="o2@mail.example.org", extra=_replying("o1")))
    inject(stack, mime("Third", "Hello", message_id="t1@mail.example.org", sender="cy@example.net"))

    # When the worker runs
    stack.work()

    # Then the other conversations are tickets, in order (the reply joined its ticket); the failed message and
    # the reply behind it wait on the queue
    assert sorted((t["subject"], t["message_count"]) for t in tickets(stack)) == [("Other", 2), ("Third", 1)]
    assert stack.queued() == 2


def _replying(root: str) -> str:
    return f"In-Reply-To: <{root}@mail.example.org>\r\nReferences: <{root}@mail.example.org>\r\n"
