"""Satisfaction surveys on moto: an agent resolves a ticket → the deliver-later state machine (the real ASL, its
Wait really sleeping) → the notifications queue → the notifier → a survey email in the outbox (or SurveyRequested on
the event bus) → the customer follows a link (`GET /csat/{token}` asks, recording nothing: scanners follow links
too) and answers with the page's button (`POST`), once.

The policy is the repository's with the support team asking, 2 s after the resolution, at any hour.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
import pytest

from intake import runtime
from intake.local.gateway import LocalContext, api_event
from intake.local.workers import poll_once
from intake.queues import SqsQueue
from intake.satisfaction import sign_token
from tests.aws.conftest import ROOT, SECRETS, Stack
from tests.aws.test_email_pipeline import inject, mime

ASKED = '      delay: 1h\n      quiet_hours: ["20:00-24:00", "00:00-08:00"]\n'
SOON = "      delay: 2s\n      quiet_hours: []\n"  # the repository's team, asked 2 s after resolution, day or night


@pytest.fixture(autouse=True)
def asking_policy(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "intake.yaml").read_text()
    policy = text.replace(ASKED, SOON, 1)
    assert SOON in policy and "      enabled: true\n" in policy
    (tmp_path / "asking.yaml").write_text(policy)
    monkeypatch.setenv("INTAKE_CONFIG", str(tmp_path / "asking.yaml"))
    runtime.reset()


# ---------------------------------------------------------------- helpers


def email_ticket(stack: Stack, subject: str = "My parcel never came", message_id: str = "m1@mail.example.org") -> str:
    inject(stack, mime(subject, "Order 1042 is two weeks late.", message_id=message_id))
    stack.work()
    found = [t["id"] for t in stack.get("/tickets")[1]["items"] if t["subject"] == subject]
    assert len(found) == 1
    return str(found[0])


def resolve(stack: Stack, ticket_id: str) -> None:
    status, body = stack.post_api(f"/tickets/{ticket_id}/events", {"by": "agent-7", "type": "resolved"})
    assert status == 200, body


def run_notifier(stack: Stack) -> None:
    from intake.handlers import notifier

    url = stack.resources.queue_urls["notifications"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    while poll_once(SqsQueue(stack.sqs, url), arn, "notifier", notifier.handler, wait_s=0):
        pass


def surveys(stack: Stack) -> list[EmailMessage]:
    run_notifier(stack)
    return [m for m in stack.sent() if m["X-Intake-Notice"] == "survey"]


def wait_for(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)


def links(message: EmailMessage) -> list[str]:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return re.findall(r"https?://\S+/csat/[A-Za-z0-9_.-]+", body.get_content())


def path_of(url: str) -> str:
    return urlsplit(url).path


def page(
    stack: Stack, method: str, path: str, form: dict[str, str] | None = None, accept: str | None = None
) -> tuple[int, str, dict[str, str]]:
    """What a client gets: the receiver's answer to a survey link (or to the comment form)."""
    from intake.handlers import receiver

    body = urlencode(form or {}).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"} if method == "POST" else {}
    if accept is not None:
        headers["accept"] = accept
    result = receiver.handler(api_event(method, path, headers, body, "198.51.100.7"), LocalContext("receiver", "r"))
    return result["statusCode"], result["body"] or "", result.get("headers") or {}


def items(stack: Stack, prefix: str) -> list[dict[str, Any]]:
    return [i for i in stack.items() if i["PK"]["S"].startswith(prefix)]


def answer_of(stack: Stack, ticket_id: str) -> dict[str, Any] | None:
    item = stack.dynamodb.get_item(
        TableName=stack.resources.table, Key={"PK": {"S": f"CSAT#{ticket_id}"}, "SK": {"S": "CSAT"}}
    ).get("Item")
    return None if item is None else {k: next(iter(v.values())) for k, v in item.items()}


def answered_and_emailed(stack: Stack) -> tuple[str, list[str]]:
    ticket_id = email_ticket(stack)
    resolve(stack, ticket_id)
    wait_for(lambda: len(surveys(stack)) == 1)
    [message] = surveys(stack)
    return ticket_id, links(message)


# ---------------------------------------------------------------- tests


def test_a_resolved_ticket_gets_one_survey_email_with_five_links_after_the_delay(stack: Stack) -> None:
    ticket_id = email_ticket(stack)
    resolved_at = datetime.now(UTC)
    resolve(stack, ticket_id)
    assert surveys(stack) == []  # not before the delay

    wait_for(lambda: len(surveys(stack)) == 1)

    [message] = surveys(stack)
    assert datetime.now(UTC) - resolved_at >= timedelta(seconds=1)  # moto's Wait rounds down to the second
    assert message["From"] == "support@example.com" and message["To"] == "ana.silva@example.org"
    assert message["Auto-Submitted"] == "auto-generated" and message["X-Intake-Ticket"] == ticket_id
    assert "How did we do?" in message["Subject"]
    urls = links(message)
    assert len(urls) == 5 and len(set(urls)) == 5
    html = message.get_body(preferencelist=("html",))
    assert html is not None and all(url in html.get_content() for url in urls)
    assert "<script" not in html.get_content().lower()
    detail = stack.get(f"/tickets/{ticket_id}")[1]
    assert "survey_sent" in [e["kind"] for e in detail["events"]]
    [sent] = items(stack, "SURVEYDAY#support#")
    assert sent["SK"]["S"].endswith(f"#{ticket_id}") and sent["ticket_id"]["S"] == ticket_id

    time.sleep(1)
    assert len(surveys(stack)) == 1  # and no second one


def test_following_a_link_shows_the_question_with_its_score_and_records_nothing(stack: Stack) -> None:
    ticket_id, urls = answered_and_emailed(stack)

    # When a mail scanner (or the customer) follows the link, twice
    status, html, headers = page(stack, "GET", path_of(urls[3]))
    again, _, _ = page(stack, "GET", path_of(urls[3]))

    # Then the page asks, with that score chosen and one button, and nothing is recorded
    assert (status, again) == (200, 200) and headers["Content-Type"].startswith("text/html")
    assert "How did we do?" in html and "4 out of 5" in html and 'method="post"' in html and "Send my answer" in html
    assert 'name="comment"' in html and "<script" not in html.lower()
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    assert answer_of(stack, ticket_id) is None and items(stack, "CSATDAY#") == []
    events = [e["kind"] for e in stack.get(f"/tickets/{ticket_id}")[1]["events"]]
    assert "survey_answered" not in events


def test_the_pages_button_records_the_score_once_and_shows_thanks(stack: Stack) -> None:
    ticket_id, urls = answered_and_emailed(stack)

    status, html, headers = page(stack, "POST", path_of(urls[3]), {"comment": ""})

    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "Thank you" in html and "4 out of 5" in html and 'name="comment"' in html and "<script" not in html.lower()
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    answer = answer_of(stack, ticket_id)
    assert answer is not None and answer["score"] == "4"
    [day] = items(stack, "CSATDAY#support#")
    assert day["score"]["N"] == "4" and day["ticket_id"]["S"] == ticket_id and day["SK"]["S"].endswith(ticket_id)
    events = [e["kind"] for e in stack.get(f"/tickets/{ticket_id}")[1]["events"]]
    assert events.count("survey_answered") == 1

    again, html_again, _ = page(stack, "POST", path_of(urls[3]), {"comment": ""})
    opened, html_opened, _ = page(stack, "GET", path_of(urls[3]))

    assert again == 200 and "4 out of 5" in html_again
    assert opened == 200 and "We already have your answer" in html_opened and "4 out of 5" in html_opened
    assert len(items(stack, "CSATDAY#")) == 1 and answer_of(stack, ticket_id) == answer


def test_a_second_click_on_another_score_keeps_the_first_and_says_so(stack: Stack) -> None:
    ticket_id, urls = answered_and_emailed(stack)
    page(stack, "POST", path_of(urls[1]), {"comment": ""})  # 2

    opened, html_opened, _ = page(stack, "GET", path_of(urls[4]))  # 5
    status, html, _ = page(stack, "POST", path_of(urls[4]), {"comment": ""})

    assert opened == 200 and "we keep it" in html_opened and "2 out of 5" in html_opened
    assert status == 200 and "first answer" in html and "2 out of 5" in html
    answer = answer_of(stack, ticket_id)
    assert answer is not None and answer["score"] == "2"
    assert [i["score"]["N"] for i in items(stack, "CSATDAY#")] == ["2"]


def test_a_comment_is_stored_with_the_score(stack: Stack) -> None:
    ticket_id, urls = answered_and_emailed(stack)
    page(stack, "POST", path_of(urls[0]), {"comment": ""})

    status, html, _ = page(stack, "POST", path_of(urls[0]), {"comment": "Took <b>three</b> emails to get an answer."})

    assert status == 200 and "Thank you for your comment" in html
    assert "&lt;b&gt;three&lt;/b&gt;" in html  # escaped, never markup
    answer = answer_of(stack, ticket_id)
    assert answer is not None and answer["comment"] == "Took <b>three</b> emails to get an answer."
    [day] = items(stack, "CSATDAY#support#")
    assert day["comment"]["S"] == answer["comment"] and day["score"]["N"] == "1"


def test_an_answer_sent_with_a_comment_records_both(stack: Stack) -> None:
    ticket_id, urls = answered_and_emailed(stack)

    status, _, _ = page(stack, "POST", path_of(urls[2]), {"comment": "ok"})

    answer = answer_of(stack, ticket_id)
    assert status == 200 and answer is not None and (answer["score"], answer["comment"]) == ("3", "ok")


def test_a_comment_over_2000_characters_is_refused(stack: Stack) -> None:
    ticket_id, urls = answered_and_emailed(stack)

    status, body, headers = page(stack, "POST", path_of(urls[2]), {"comment": "x" * 2001})

    assert status == 400 and headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["type"] == "urn:intake:problem:field-invalid"
    assert answer_of(stack, ticket_id) is None


def test_a_forged_link_is_403_and_records_nothing(stack: Stack) -> None:
    ticket_id = email_ticket(stack)
    forged = sign_token(ticket_id, 5, datetime.now(UTC) + timedelta(days=1), "not-the-secret")

    status, body, headers = page(stack, "GET", f"/csat/{forged}")

    assert status == 403 and headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["type"] == "urn:intake:problem:survey-link-invalid"
    assert answer_of(stack, ticket_id) is None and items(stack, "CSATDAY#") == []


def test_an_expired_link_is_410_and_records_nothing(stack: Stack) -> None:
    ticket_id = email_ticket(stack)
    expired = sign_token(ticket_id, 5, datetime.now(UTC) - timedelta(seconds=1), SECRETS["INTAKE_CSAT_SECRET"])

    status, body, _ = page(stack, "GET", f"/csat/{expired}")

    assert status == 410 and json.loads(body)["type"] == "urn:intake:problem:survey-link-expired"
    assert answer_of(stack, ticket_id) is None


def test_a_browser_following_a_bad_link_reads_a_page_with_the_same_status(stack: Stack) -> None:
    ticket_id = email_ticket(stack)
    expired = sign_token(ticket_id, 4, datetime.now(UTC) - timedelta(seconds=1), SECRETS["INTAKE_CSAT_SECRET"])
    forged = sign_token(ticket_id, 4, datetime.now(UTC) + timedelta(days=1), "not-the-secret")
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

    gone, closed, gone_headers = page(stack, "GET", f"/csat/{expired}", accept=browser)
    refused, invalid, _ = page(stack, "GET", f"/csat/{forged}", accept=browser)

    assert (gone, gone_headers["Content-Type"]) == (410, "text/html; charset=utf-8")
    assert (
        gone_headers["Cache-Control"] == "no-store"
        and "frame-ancestors 'none'" in gone_headers["Content-Security-Policy"]
    )
    assert "This survey has closed" in closed and "<script" not in closed
    assert refused == 403 and "This link does not work" in invalid
    assert answer_of(stack, ticket_id) is None


def test_a_contact_without_email_gets_survey_requested_on_the_event_bus(stack: Stack) -> None:
    sqs = boto3.client("sqs")
    events = boto3.client("events")
    target = sqs.create_queue(QueueName="survey-integration")["QueueUrl"]
    target_arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.resources.event_bus
    events.put_rule(
        Name="surveys",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["intake"], "detail-type": ["SurveyRequested"]}),
    )
    events.put_targets(Rule="surveys", EventBusName=bus, Targets=[{"Id": "integration", "Arn": target_arn}])
    prepared = stack.prepare("08-sms-conversation-1.json")
    status, _, _ = stack.post_raw(prepared.path, prepared.body, prepared.headers)
    assert status == 200 and stack.work() == 1
    [ticket] = stack.get("/tickets")[1]["items"]
    resolve(stack, ticket["id"])

    received: list[dict[str, Any]] = []

    def delivered() -> bool:
        run_notifier(stack)
        received.extend(sqs.receive_message(QueueUrl=target, WaitTimeSeconds=0).get("Messages", []))
        return bool(received)

    wait_for(delivered)

    event = json.loads(received[0]["Body"])
    assert event["source"] == "intake" and event["detail-type"] == "SurveyRequested"
    detail = event["detail"]
    assert (detail["ticket_id"], detail["channel"], detail["team"]) == (ticket["id"], "sms", "support")
    assert detail["contact_id"] == ticket["contact_id"] and sorted(detail["links"]) == ["1", "2", "3", "4", "5"]
    assert "+33" not in json.dumps(detail)  # ids, not the phone number
    assert surveys(stack) == []
    status_page, html, _ = page(stack, "POST", path_of(detail["links"]["5"]), {"comment": ""})
    assert status_page == 200 and "5 out of 5" in html
    kinds = [e["kind"] for e in stack.get(f"/tickets/{ticket['id']}")[1]["events"]]
    assert "survey_sent" in kinds and "survey_answered" in kinds


def test_a_contact_is_asked_once_per_period_whatever_the_ticket(stack: Stack) -> None:
    first = email_ticket(stack, "My parcel never came", "m1@mail.example.org")
    second = email_ticket(stack, "And my invoice is wrong", "m2@mail.example.org")
    assert first != second
    details = [stack.get(f"/tickets/{t}")[1] for t in (first, second)]
    assert details[0]["contact_id"] == details[1]["contact_id"]

    resolve(stack, first)
    resolve(stack, second)
    wait_for(lambda: len(surveys(stack)) == 1)
    time.sleep(3)  # the second one's delay, had it been scheduled

    [message] = surveys(stack)
    assert message["X-Intake-Ticket"] == first


def test_a_ticket_reopened_before_its_survey_is_due_is_not_surveyed(stack: Stack) -> None:
    ticket_id = email_ticket(stack)
    resolve(stack, ticket_id)
    status, _ = stack.post_api(f"/tickets/{ticket_id}/events", {"by": "agent-7", "type": "reopened"})
    assert status == 200

    time.sleep(3.5)

    assert surveys(stack) == []
    assert stack.queued("notifications") == 0


def test_a_ticket_resolved_again_after_its_survey_was_skipped_is_surveyed_once(stack: Stack) -> None:
    ticket_id = email_ticket(stack)
    resolve(stack, ticket_id)
    stack.post_api(f"/tickets/{ticket_id}/events", {"by": "agent-7", "type": "reopened"})
    time.sleep(3.5)  # the first schedule fires on a reopened ticket: skipped
    assert surveys(stack) == []

    resolve(stack, ticket_id)

    wait_for(lambda: len(surveys(stack)) == 1)
    time.sleep(1)
    assert len(surveys(stack)) == 1


def test_a_ticket_resolved_again_after_its_survey_claim_expired_is_not_surveyed_again(stack: Stack) -> None:
    ticket_id, _ = answered_and_emailed(stack)
    [claim] = items(stack, f"TOKEN#survey#{ticket_id}")
    stack.dynamodb.delete_item(TableName=stack.resources.table, Key={"PK": claim["PK"], "SK": claim["SK"]})  # TTL
    stack.post_api(f"/tickets/{ticket_id}/events", {"by": "agent-7", "type": "reopened"})

    resolve(stack, ticket_id)  # its contact's SURVEY# claim is this ticket's own: scheduled again
    time.sleep(3.5)

    assert len(surveys(stack)) == 1
    assert stack.queued("notifications") == 0


def test_a_team_that_does_not_ask_sends_no_survey(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    policy = (ROOT / "intake.yaml").read_text().replace("      enabled: true\n", "      enabled: false\n", 1)
    assert "enabled: false" in policy
    (tmp_path / "no-surveys.yaml").write_text(policy)
    monkeypatch.setenv("INTAKE_CONFIG", str(tmp_path / "no-surveys.yaml"))
    runtime.reset()
    ticket_id = email_ticket(stack)

    resolve(stack, ticket_id)
    time.sleep(3)

    assert surveys(stack) == [] and items(stack, "SURVEY#") == []


def test_once_per_period_frees_the_contact_when_the_period_ends_even_before_ttl_deletion(stack: Stack) -> None:
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    first, second = "01JDQ3M9Z8R6V4T2N0K8H6F4D2", "01JDQ3M9Z8R6V4T2N0K8H6F4D3"
    store = stack.store

    assert store.claim_survey("C1", first, start, start + timedelta(days=30))
    assert store.claim_survey("C1", first, start + timedelta(hours=1), start + timedelta(days=30))  # a retry
    assert not store.claim_survey("C1", second, start + timedelta(days=29), start + timedelta(days=59))
    assert store.claim_survey("C1", second, start + timedelta(days=30), start + timedelta(days=60))
    assert store.claim_survey("C2", first, start, start + timedelta(days=30))  # another contact
