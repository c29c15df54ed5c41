"""Bounces and complaints on moto (issue 15): SES's feedback, as EventBridge hands it to the feedback function
(`events/ses/`), makes an address suppressed; acknowledgments and satisfaction surveys are never sent to it again,
and a notice goes to the recipients that remain (a bounce or a delivery of an agent's email reply:
`tests/aws/test_replies.py`). The logs name SES's ids, never the address."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from intake import runtime
from intake.local.gateway import LocalContext
from intake.model import TimerState
from intake.notify.mailer import OutboxMailer, RecipientSuppressedError, SuppressingMailer, compose
from intake.notify.notifier import Outcome, notify
from tests.aws.conftest import ROOT, Stack
from tests.aws.test_email_pipeline import inject, mime
from tests.aws.test_notifier import NOW, message, open_ticket, outbox, policy_with_chain, recipients, set_timer
from tests.aws.test_satisfaction import asking_policy, email_ticket, resolve, run_notifier, surveys, wait_for

__all__ = ["asking_policy"]  # autouse: surveys are asked 2 s after a resolution (test_satisfaction)

SAMPLES = ROOT / "events" / "ses"
ANA = "ana.silva@example.org"  # the sender of `mime` (as `Ana.Silva@example.org`) and the permanent bounce's


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text())
    return event


def report(event: dict[str, Any]) -> dict[str, Any]:
    """The feedback function, invoked as EventBridge invokes it."""
    from intake.handlers import feedback

    result: dict[str, Any] = feedback.handler(event, LocalContext("feedback", "r"))
    return result


def suppressed(stack: Stack) -> dict[str, dict[str, Any]]:
    return {
        item["PK"]["S"].removeprefix("SUPPRESSED#"): {k: next(iter(v.values())) for k, v in item.items()}
        for item in stack.items()
        if item["PK"]["S"].startswith("SUPPRESSED#")
    }


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every log record with all its keys, as text."""
    return "\n".join(json.dumps(record.__dict__, default=str) for record in caplog.records)


def test_a_hard_bounce_suppresses_the_address_and_its_next_ticket_is_not_acknowledged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Ana's first email, acknowledged
    inject(stack, mime("Refund for order 881", "I was charged twice.", message_id="a1@mail.example.org"))
    stack.work()
    assert [str(m["To"]) for m in stack.sent()] == [ANA]
    caplog.clear()

    # When SES reports that her mailbox does not exist
    result = report(sample("bounce-permanent"))

    # Then her address is suppressed, and the log says so with SES's ids only
    assert result == {"suppressed": 1, "reply": None}  # an acknowledgment: no reply to move
    assert suppressed(stack) == {
        ANA: {
            "PK": f"SUPPRESSED#{ANA}",
            "SK": "SUPPRESSED",
            "reason": "bounce",
            "at": "2026-11-23T09:14:04.512000Z",
            "feedback_id": "0102019a5c7f0b3e-7d2c4e11-bounce-000000",
        }
    }
    text = logged(caplog)
    assert "0102019a5c7f0a11-5c3e2a77-acknowledgment-000000" in text and "addresses suppressed" in text
    assert "ana.silva" not in text.lower()

    # And when she writes again, her new ticket is made but not acknowledged
    inject(stack, mime("Another order", "Order 882 too.", message_id="a2@mail.example.org"))
    stack.work()
    assert len(stack.tickets()) == 2 and len(stack.sent()) == 1
    assert "ana.silva" not in logged(caplog).lower()


def test_a_complaint_suppresses_and_a_transient_bounce_does_not(stack: Stack) -> None:
    assert report(sample("complaint")) == {"suppressed": 1, "reply": None}
    assert report(sample("bounce-transient")) == {"suppressed": 0, "reply": None}

    assert {address: item["reason"] for address, item in suppressed(stack).items()} == {
        "hugo.bernard@example.org": "complaint"
    }
    assert stack.store.is_suppressed("hugo.bernard@example.org")
    assert not stack.store.is_suppressed(
        "thomas.martin@example.org"
    )  # its mailbox was full: SES retried, later mail may go


def test_a_feedback_report_again_changes_nothing(stack: Stack) -> None:
    report(sample("complaint"))
    first = suppressed(stack)

    assert report(sample("complaint")) == {"suppressed": 1, "reply": None}
    assert suppressed(stack) == first


def test_a_survey_to_a_suppressed_address_is_not_sent_nor_retried(stack: Stack) -> None:
    # Given Ana's ticket, acknowledged, then her address bounced for good
    ticket_id = email_ticket(stack)
    report(sample("bounce-permanent"))

    # When an agent resolves the ticket and the survey falls due
    resolve(stack, ticket_id)
    claim = f"TOKEN#survey#{ticket_id}"
    wait_for(lambda: surveys(stack) == [] and claim in {i["PK"]["S"] for i in stack.items()})

    # Then no survey went out, nothing waits on the queue to retry it, and none is counted as sent
    assert [m["X-Intake-Notice"] for m in stack.sent()] == [None]  # the acknowledgment only
    run_notifier(stack)
    assert stack.queued("notifications") == 0 and stack.queued("notifications-dlq") == 0
    assert not [i for i in stack.items() if i["PK"]["S"].startswith("SURVEYDAY#")]
    detail = stack.get(f"/tickets/{ticket_id}")[1]
    assert "survey_sent" not in [e["kind"] for e in detail["events"]]


def test_a_notice_goes_to_the_recipients_that_are_not_suppressed(stack: Stack, tmp_path: Path) -> None:
    # Given a team whose notify list is agent-a and agent-b, and agent-b's address complained
    ticket_id = open_ticket(stack)
    set_timer(stack, ticket_id, TimerState.RUNNING)
    stack.store.suppress("agent-b@example.com", _complaint(), NOW, "f-1")
    mailer = SuppressingMailer(OutboxMailer(tmp_path), stack.store.is_suppressed)

    # When the warning is sent
    result = notify(
        message(ticket_id, "warning", label="80%"),
        store=stack.store,
        mailer=mailer,
        policy=policy_with_chain(),
        base_url="https://intake.example.com",
        now=NOW,
    )

    # Then only agent-a gets it
    assert result.outcome is Outcome.SENT
    [mail] = outbox(tmp_path)
    assert recipients(mail) == ["agent-a@example.com"]


def test_a_message_whose_every_recipient_is_suppressed_is_not_sent(stack: Stack, tmp_path: Path) -> None:
    stack.store.suppress("ana.silva@example.org", _complaint(), NOW, "f-2")
    mailer = SuppressingMailer(OutboxMailer(tmp_path), stack.store.is_suppressed)
    message = compose(
        sender="support@example.com", to=["Ana Silva <Ana.Silva@Example.org>"], subject="s", text="t", at=NOW
    )

    with pytest.raises(RecipientSuppressedError) as raised:
        mailer.send(message)

    assert list(tmp_path.glob("*.eml")) == [] and "ana" not in str(raised.value).lower()


def test_the_runtime_mailer_checks_suppressions_in_the_table(stack: Stack) -> None:
    stack.store.suppress("ana.silva@example.org", _complaint(), NOW, "f-3")
    message = compose(sender="support@example.com", to=["ana.silva@example.org"], subject="s", text="t", at=NOW)

    with pytest.raises(RecipientSuppressedError):
        runtime.mailer().send(message)
    assert stack.sent() == []


def _complaint() -> Any:
    from intake.records import SuppressionReason

    return SuppressionReason.COMPLAINT
