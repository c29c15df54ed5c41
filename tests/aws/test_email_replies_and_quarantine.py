"""Email on moto, what Intake does beyond threading: it acknowledges new tickets (once, rate-limited, never to
automatic or our own mail), holds back mail SES judged dangerous until released, and keeps oversized parts out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake import runtime
from tests.aws.conftest import ROOT, Stack
from tests.aws.test_email_pipeline import inject, mime, tickets
from tests.iam_calls import running


def test_a_new_email_ticket_is_acknowledged_from_the_team_address_threaded_under_the_customers_mail(
    stack: Stack,
) -> None:
    inject(stack, mime("Refund for order 881", "I was charged twice.", message_id="a1@mail.example.org"))
    stack.work()

    [ticket] = tickets(stack)
    [ack] = stack.sent()
    assert ack["From"].addresses[0].addr_spec == "support@example.com"
    assert ack["To"].addresses[0].addr_spec.lower() == "ana.silva@example.org"
    assert ack["Subject"] == f"Re: Refund for order 881 [#{ticket['reference']}]"
    assert (ack["In-Reply-To"], ack["References"]) == ("<a1@mail.example.org>", "<a1@mail.example.org>")
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ticket["reference"] in ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "acknowledged" in [e["kind"] for e in ticket["events"]]


def test_an_acknowledgment_of_a_reply_subject_adds_no_second_re(stack: Stack) -> None:
    inject(stack, mime("RE: Password reset link expired", "Still broken.", message_id="r1@mail.example.org"))
    stack.work()

    [ticket] = tickets(stack)
    [ack] = stack.sent()
    assert ack["Subject"] == f"RE: Password reset link expired [#{ticket['reference']}]"


def test_a_reply_to_our_acknowledgment_joins_the_ticket_by_the_message_id_we_sent(stack: Stack) -> None:
    inject(stack, mime("Refund for order 881", "I was charged twice.", message_id="a1@mail.example.org"))
    stack.work()
    [ack] = stack.sent()
    reply = mime(
        "Re: your request",  # no reference token: only the Message-ID we sent links it
        "Thanks! Order number is 881.",
        message_id="a2@mail.example.org",
        extra=f"In-Reply-To: {ack['Message-ID']}\r\n",
    )

    inject(stack, reply)
    stack.work()

    [ticket] = tickets(stack)
    assert [m["text"].strip() for m in ticket["messages"]] == ["I was charged twice.", "Thanks! Order number is 881."]
    assert len(stack.sent()) == 1  # a reply on a ticket is not acknowledged again


def test_a_redelivered_email_is_acknowledged_once(stack: Stack) -> None:
    raw = mime("Refund", "I was charged twice.", message_id="same@mail.example.org")
    inject(stack, raw)
    inject(stack, raw)
    stack.work()

    assert len(tickets(stack)) == 1 and len(stack.sent()) == 1


def test_one_sender_gets_at_most_three_acknowledgments_an_hour(stack: Stack) -> None:
    for n in range(5):
        inject(stack, mime(f"Question {n}", "Hello", message_id=f"q{n}@mail.example.org"))
    stack.work()

    assert len(tickets(stack)) == 5
    assert len(stack.sent()) == 3  # intake.yaml: the default, max_per_sender_per_hour 3


@pytest.mark.parametrize(
    ("sender", "extra"),
    [
        ("Ana <ana@example.org>", "Auto-Submitted: auto-replied\r\n"),
        ("Ana <ana@example.org>", "Precedence: bulk\r\n"),
        ("Support <support@example.com>", ""),  # our own acknowledgment echoing back
    ],
    ids=["auto-reply", "bulk", "our-own-address"],
)
def test_automatic_and_our_own_mail_opens_no_ticket_and_gets_no_acknowledgment(
    stack: Stack, sender: str, extra: str
) -> None:
    inject(stack, mime("Hello", "Automatic text", message_id="auto@mail.example.org", sender=sender, extra=extra))
    stack.work()

    assert tickets(stack) == [] and stack.sent() == []


def test_spam_verdict_quarantines_the_email_until_an_agent_releases_it(stack: Stack) -> None:
    spam = mime(
        "You won",
        "Claim your prize",
        message_id="spam@mail.example.org",
        extra="X-SES-Spam-Verdict: FAIL\r\nX-SES-Virus-Verdict: PASS\r\n",
    )
    inject(stack, spam)
    stack.work()

    assert tickets(stack) == [] and stack.sent() == []
    status, listed = stack.get("/quarantine")
    [held] = listed["items"]
    assert status == 200 and held["reasons"] == ["spam"] and held["subject"] == "You won"
    assert held["arrived"]["raw_archive_key"] in stack.objects()  # kept, not lost

    status, released = stack.post_api(f"/quarantine/{held['id']}/release")
    [ticket] = tickets(stack)
    assert status == 200 and released["status"] == "released" and released["ticket_id"] == ticket["id"]
    assert stack.get("/quarantine")[1]["items"] == []
    again, problem = stack.post_api(f"/quarantine/{held['id']}/release")
    assert (again, problem["type"]) == (409, "urn:intake:problem:quarantine-released")
    missing, problem = stack.post_api("/quarantine/01JDZZZZZZZZZZZZZZZZZZZZZZ/release")
    assert (missing, problem["type"]) == (404, "urn:intake:problem:quarantine-not-found")


@pytest.mark.parametrize(
    ("results", "held"),
    [
        ("amazonses.com; spf=fail; dkim=fail; dmarc=fail (p=REJECT sp=REJECT pct=100) header.from=bank.example", True),
        ("amazonses.com; spf=pass; dkim=fail; dmarc=fail (p=NONE sp=NONE pct=100) header.from=shop.example", False),
        ("amazonses.com; spf=pass; dkim=pass; dmarc=pass (p=REJECT) header.from=shop.example", False),
    ],
    ids=["dmarc-fail-reject", "dmarc-fail-none", "dmarc-pass"],
)
def test_only_a_dmarc_failure_under_a_reject_policy_is_quarantined(stack: Stack, results: str, held: bool) -> None:
    inject(
        stack, mime("Invoice", "See attached", message_id="d@x.example", extra=f"Authentication-Results: {results}\r\n")
    )
    stack.work()

    assert len(stack.get("/quarantine")[1]["items"]) == int(held)
    assert len(tickets(stack)) == int(not held)


def test_attachments_beyond_the_message_limit_are_recorded_as_dropped(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = (
        (ROOT / "intake.yaml")
        .read_text()
        .replace(
            "  default_team: support\n  addresses:", "  default_team: support\n  max_message_bytes: 1500\n  addresses:"
        )
    )
    assert "max_message_bytes: 1500" in policy
    (tmp_path / "intake.yaml").write_text(policy)
    monkeypatch.setenv("INTAKE_CONFIG", str(tmp_path / "intake.yaml"))
    runtime.reset()
    parts = "".join(
        f"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename={name}\r\n\r\n{'x' * size}\r\n"
        for name, size in (("a.txt", 1000), ("big.txt", 1000), ("c.txt", 400))
    )
    raw = (
        "From: ana@example.org\r\nTo: support@example.com\r\nSubject: Logs\r\nMessage-ID: <logs@example.org>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\nLogs attached.\r\n{parts}--b--\r\n"
    ).encode()

    inject(stack, raw)
    stack.work()

    [ticket] = tickets(stack)
    [message] = ticket["messages"]
    assert [a["filename"] for a in message["attachments"]] == ["a.txt", "c.txt"]
    assert message["metadata"]["dropped"] == [{"filename": "big.txt", "reason": "message over 1500 bytes"}]


def test_an_acknowledgment_that_ses_throttles_is_sent_when_the_email_is_redelivered(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError
    from ulid import ULID

    from intake.emails import ingest_email
    from intake.ingest import Outcome
    from intake.model import EmailArrived

    monkeypatch.delenv("INTAKE_OUTBOX")  # through SES (moto), where the fault is injected
    runtime.reset()
    ses = runtime.client("ses")
    ses.verify_email_identity(EmailAddress="support@example.com")
    throttled: list[str] = []

    def throttle_once(**_: object) -> None:
        if not throttled:
            throttled.append("SendRawEmail")
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "SendRawEmail")

    ses.meta.events.register("before-call.ses.SendRawEmail", throttle_once)
    key = "raw/ses/throttled.eml"
    stack.s3.put_object(
        Bucket=stack.resources.bucket, Key=key, Body=mime("Refund", "Charged twice.", message_id="t@x.org")
    )
    arrived = EmailArrived(provider="ses", receipt_id=str(ULID()), received_at=datetime.now(UTC), raw_archive_key=key)

    def deliver() -> object:  # what the email function does with it, held to its role
        with running("Email"):
            return ingest_email(runtime.store(), runtime.email_stores(), arrived, runtime.policy(), lambda: str(ULID()))

    with pytest.raises(ClientError, match="Throttling"):
        deliver()  # the ticket is written; the acknowledgment is not: the queue will deliver the email again
    retried = deliver()

    assert retried is not None and retried.outcome == Outcome.DUPLICATE
    [ticket] = tickets(stack)
    assert [e["kind"] for e in ticket["events"]].count("acknowledged") == 1
    assert ses.get_send_quota()["SentLast24Hours"] == 1
    assert deliver() is not None and ses.get_send_quota()["SentLast24Hours"] == 1  # and never twice
