"""SLA notifications on moto: queue message → notifier → email to the right people, once (outbox or SES)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from intake import runtime
from intake.config import Policy
from intake.local.workers import poll_once
from intake.model import SlaTarget, SlaTimer, TimerState
from intake.notify.mailer import OutboxMailer, SesMailer
from intake.notify.notifier import Notification, Outcome, notification_body, notify
from intake.policy import load_policy, parse_policy
from intake.queues import SqsQueue
from tests.aws.conftest import ROOT, Stack

NOW = datetime(2026, 12, 1, 12, 20, tzinfo=UTC)
DUE = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
SENDER = "intake@example.com"


def open_ticket(stack: Stack) -> str:
    """A ticket made the real way: a signed form post, through the receiver, the queue and the ingest worker."""
    status, _ = stack.post_sample("contact-json.json")
    assert status == 202 and stack.work() == 1
    [ticket] = stack.tickets()
    return str(ticket["PK"]["S"].removeprefix("TICKET#"))


def set_timer(stack: Stack, ticket_id: str, state: TimerState, *, policy: str = "default", generation: int = 1) -> None:
    """The ticket's first-response timer item as the contract has it (the state machine marks breaches on it)."""
    timer = SlaTimer(
        target=SlaTarget.FIRST_RESPONSE,
        generation=generation,
        state=state,
        policy=policy,
        time="business",
        started_at=DUE - timedelta(hours=8),
        due_at=DUE,
        target_s=8 * 3600,
        breached_at=DUE if state is TimerState.BREACHED else None,
    )
    attributes = {k: v for k, v in timer.model_dump(mode="json").items() if v is not None}
    attributes["execution"] = json.dumps(timer.execution)
    item = {"PK": f"TICKET#{ticket_id}", "SK": "SLA#first_response", **attributes}
    stack.dynamodb.put_item(
        TableName=stack.resources.table,
        Item={k: {"N": str(v)} if isinstance(v, int) else {"S": str(v)} for k, v in item.items()},
    )


def message(ticket_id: str, kind: str, **fields: Any) -> Notification:
    return Notification.model_validate(
        {"kind": kind, "ticket_id": ticket_id, "target": "first_response", "generation": 1, "due_at": DUE, **fields}
    )


def policy_with_chain(**team_changes: Any) -> Policy:
    """The shipped policy, with a known notify list and a three-level escalation chain on the default policy."""
    data = yaml.safe_load((ROOT / "intake.yaml").read_text(encoding="utf-8"))
    data["teams"]["support"] |= {"notify": ["agent-a@example.com", "Agent-B@example.com"], **team_changes}
    data["sla"] = {
        "policies": [
            {
                "name": "default",
                "first_response": {"within": "8h"},
                "warnings": ["80%"],
                "escalation": [
                    {"after": "0m", "to": ["lead@example.com"]},
                    {"after": "1h", "to": ["manager@example.com", "director@example.com"]},
                    {"after": "1h", "to": ["ceo@example.com"]},
                ],
            }
        ]
    }
    return parse_policy(data)


def outbox(folder: Path) -> list[EmailMessage]:
    files = sorted(folder.glob("*.eml")) if folder.exists() else []
    return [BytesParser(policy=email_policy.default).parsebytes(f.read_bytes()) for f in files]


def recipients(mail: EmailMessage) -> list[str]:
    return [a.strip() for a in str(mail["To"]).split(",")]


def run_notifier(stack: Stack) -> int:
    from intake.handlers import notifier

    url = stack.resources.queue_urls["notifications"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    taken = 0
    while got := poll_once(SqsQueue(stack.sqs, url), arn, "notifier", notifier.handler, wait_s=0):
        taken += got
    return taken


@pytest.fixture
def mail_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "notifications-outbox"
    monkeypatch.setenv("INTAKE_OUTBOX", str(folder))
    runtime.reset()
    return folder


def test_a_warning_from_the_queue_reaches_the_team_by_email(stack: Stack, mail_folder: Path) -> None:
    # Given an open ticket whose first-response timer is running
    ticket_id = open_ticket(stack)
    set_timer(stack, ticket_id, TimerState.RUNNING)

    # When the SLA timer's warning arrives on the notifications queue and the notifier runs
    body = notification_body(message(ticket_id, "warning", label="80%"))
    stack.sqs.send_message(QueueUrl=stack.resources.queue_urls["notifications"], MessageBody=body)
    assert run_notifier(stack) == 1

    # Then one email went to the team's address (the shipped team has no notify list), from the sender
    [mail] = outbox(mail_folder)
    assert recipients(mail) == ["support@example.com"]
    assert mail["From"] == load_policy(ROOT / "intake.yaml").notifications.sender
    assert mail["Auto-Submitted"] == "auto-generated" and mail["X-Intake-Ticket"] == ticket_id
    assert "First response due" in str(mail["Subject"]) and "Camille Durand" in str(mail["Subject"])
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    link = f"http://127.0.0.1:8080/tickets/{ticket_id}"
    assert link in text and link in html
    assert "Tue 1 Dec 2026, 14:00 CET" in text
    # and the ticket's history says so, without addresses
    _, detail = stack.get(f"/tickets/{ticket_id}")
    [warned] = [e for e in detail["events"] if e["kind"] == "warned"]
    assert warned["detail"] == {"target": "first_response", "generation": 1, "label": "80%", "recipients": 1}
    assert stack.queued("notifications") == 0


def test_a_redelivered_notification_sends_once(stack: Stack, mail_folder: Path) -> None:
    # Given a breached timer, and its breach notice queued twice (the state machine retried its SendMessage)
    ticket_id = open_ticket(stack)
    set_timer(stack, ticket_id, TimerState.BREACHED)
    body = notification_body(message(ticket_id, "breach"))
    for _ in range(2):
        stack.sqs.send_message(QueueUrl=stack.resources.queue_urls["notifications"], MessageBody=body)

    # When the notifier takes both, and the notice comes a third time
    assert run_notifier(stack) == 2
    stack.sqs.send_message(QueueUrl=stack.resources.queue_urls["notifications"], MessageBody=body)
    assert run_notifier(stack) == 1

    # Then one email was sent, and the ticket is flagged breached
    [mail] = outbox(mail_folder)
    assert str(mail["Subject"]).startswith("SLA missed: first response")
    _, detail = stack.get(f"/tickets/{ticket_id}")
    assert detail["breached"] is True
    assert [e["kind"] for e in detail["events"]].count("breached") == 1


def test_escalation_level_two_goes_to_level_twos_people(stack: Stack, tmp_path: Path) -> None:
    # Given a breached ticket under a policy with a three-level escalation chain
    ticket_id = open_ticket(stack)
    set_timer(stack, ticket_id, TimerState.BREACHED)
    mailer = OutboxMailer(tmp_path / "outbox")

    # When level 2 comes due, an hour after the breach
    result = notify(
        notification_body(message(ticket_id, "escalation", level=2)),
        store=stack.store,
        mailer=mailer,
        policy=policy_with_chain(),
        base_url="https://intake.example.com/",
        now=DUE + timedelta(hours=1, minutes=5),
    )

    # Then level 2's people, and only they, get it
    assert result.outcome is Outcome.SENT and result.recipients == 2
    [mail] = outbox(tmp_path / "outbox")
    assert recipients(mail) == ["manager@example.com", "director@example.com"]
    assert str(mail["Subject"]).startswith("Escalation level 2: first response overdue by 1 h 5 min")
    assert f"https://intake.example.com/tickets/{ticket_id}" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_warnings_go_to_the_teams_notify_list(stack: Stack, tmp_path: Path) -> None:
    ticket_id = open_ticket(stack)
    set_timer(stack, ticket_id, TimerState.RUNNING)
    result = notify(
        message(ticket_id, "warning", label="80%"),
        store=stack.store,
        mailer=OutboxMailer(tmp_path),
        policy=policy_with_chain(),
        base_url="https://intake.example.com",
        now=NOW,
    )
    assert result.outcome is Outcome.SENT
    [mail] = outbox(tmp_path)
    assert recipients(mail) == ["agent-a@example.com", "agent-b@example.com"]


def test_a_level_beyond_the_chain_or_a_team_without_addresses_is_skipped(stack: Stack, tmp_path: Path) -> None:
    ticket_id = open_ticket(stack)
    set_timer(stack, ticket_id, TimerState.BREACHED)
    common: dict[str, Any] = {"store": stack.store, "mailer": OutboxMailer(tmp_path), "base_url": "x", "now": NOW}

    beyond = notify(message(ticket_id, "escalation", level=4), policy=policy_with_chain(), **common)
    nobody = notify(message(ticket_id, "breach"), policy=policy_with_chain(notify=[], email=None), **common)

    assert (beyond.outcome, nobody.outcome) == (Outcome.NO_RECIPIENTS, Outcome.NO_RECIPIENTS)
    assert outbox(tmp_path) == []


def test_a_notice_whose_timer_moved_on_is_not_sent(stack: Stack, tmp_path: Path) -> None:
    # Given a warning for generation 1, while the timer was met, and one for a restarted timer (generation 2)
    ticket_id = open_ticket(stack)
    common: dict[str, Any] = {"store": stack.store, "mailer": OutboxMailer(tmp_path), "base_url": "x", "now": NOW}
    set_timer(stack, ticket_id, TimerState.MET)
    met = notify(message(ticket_id, "warning", label="80%"), policy=policy_with_chain(), **common)
    set_timer(stack, ticket_id, TimerState.RUNNING, generation=2)
    superseded = notify(message(ticket_id, "warning", label="80%"), policy=policy_with_chain(), **common)

    # Then nothing is sent
    assert (met.outcome, superseded.outcome) == (Outcome.STALE, Outcome.STALE)
    assert outbox(tmp_path) == []


def test_ses_sends_after_a_rejected_attempt_is_retried(stack: Stack) -> None:
    # Given SES, where the sender is not verified yet
    ses = boto3.session.Session().client("ses")
    mailer = SesMailer(ses, ses.meta.region_name)
    ticket_id = open_ticket(stack)
    set_timer(stack, ticket_id, TimerState.BREACHED)
    note = message(ticket_id, "escalation", level=1)
    common: dict[str, Any] = {"store": stack.store, "mailer": mailer, "policy": policy_with_chain(), "base_url": "x"}

    # When the first attempt is rejected, the identity gets verified, and the queue retries
    with pytest.raises(Exception, match="MessageRejected"):
        notify(note, now=NOW, **common)
    ses.verify_email_identity(EmailAddress=SENDER)
    retried = notify(note, now=NOW + timedelta(minutes=1), **common)
    again = notify(note, now=NOW + timedelta(minutes=2), **common)

    # Then SES sent it once: the rejected attempt did not use up the notice
    assert (retried.outcome, again.outcome) == (Outcome.SENT, Outcome.DUPLICATE)
    assert retried.message_ids[1].endswith("@email.amazonses.com>")
    assert ses.get_send_quota()["SentLast24Hours"] == 1
