"""What each narrowed function does on moto stays within what its role is granted (issue 15).

Every DynamoDB and S3 request a function's handler makes is recorded at the boto3 boundary (botocore's
`before-parameter-build` event on the runtime's own clients) while real requests run through it, and held to the
grants its construct declares: the receiver (`RECEIVER_ITEMS`, and its S3 keys: each provider's raw keys and
uploads, never SES receiving's), the notifier (`NOTIFIER_ITEMS`) and the feedback function (`FEEDBACK_ITEMS`).
`tests/infra/test_least_privilege.py` holds the template to those same declarations. moto does not evaluate IAM:
a request outside the grants would be refused in AWS, and fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import pytest

from intake import runtime
from intake.local import samples
from intake.model import TimerState
from intake.notify.notifier import notification_body
from intake.secrets import Secrets
from tests.aws.conftest import ROOT, SECRETS, Stack
from tests.aws.test_email_pipeline import inject, mime
from tests.aws.test_mail_feedback import report, sample
from tests.aws.test_notifier import message, open_ticket, set_timer
from tests.aws.test_notifier import run_notifier as run_notifications
from tests.aws.test_satisfaction import asking_policy, email_ticket, links, page, path_of, resolve, surveys, wait_for
from tests.aws.test_whatsapp_pipeline import deliver, payload, text, value, whatsapp_secrets

__all__ = ["asking_policy", "whatsapp_secrets"]  # autouse: surveys 2 s after resolution; WhatsApp's secrets


@dataclass(frozen=True)
class Request:
    """One item request as IAM authorizes it: the action, the item's partition key, the attributes it reads."""

    action: str
    partition_key: str
    attributes: frozenset[str] | None = None  # a read's projection; None: every attribute
    index: str | None = None


@dataclass
class Recorder:
    """Every DynamoDB item request and S3 key written by the function running now (`running`)."""

    function: str | None = None
    items: dict[str, list[Request]] = field(default_factory=dict)
    objects: dict[str, list[str]] = field(default_factory=dict)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.function is None:
            return
        if model.service_model.service_name == "s3":
            if model.name == "PutObject":
                self.objects.setdefault(self.function, []).append(str(params["Key"]))
            return
        self.items.setdefault(self.function, []).extend(_requests(model.name, params))

    @contextmanager
    def running(self, function: str) -> Iterator[None]:
        self.function = function
        try:
            yield
        finally:
            self.function = None


def _requests(operation: str, params: dict[str, Any]) -> list[Request]:
    if operation == "BatchGetItem":
        return [
            Request("dynamodb:BatchGetItem", key["PK"]["S"])
            for table in params["RequestItems"].values()
            for key in table["Keys"]
        ]
    if operation == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [_request(kinds[kind], request) for item in params["TransactItems"] for kind, request in item.items()]
    return [_request(operation, params)]


def _request(operation: str, params: dict[str, Any]) -> Request:
    action = f"dynamodb:{operation}"
    if operation == "Query":
        return Request(action, params["ExpressionAttributeValues"][":pk"]["S"], index=params.get("IndexName"))
    key = params["Item"] if operation == "PutItem" else params["Key"]
    projection = params.get("ProjectionExpression")
    if projection is None:
        return Request(action, key["PK"]["S"])
    names = params.get("ExpressionAttributeNames", {})
    attributes = frozenset(names.get(n.strip(), n.strip()) for n in projection.split(","))
    return Request(action, key["PK"]["S"], attributes)


@pytest.fixture
def recorder(stack: Stack) -> Recorder:
    recording = Recorder()
    for service in ("dynamodb", "s3"):
        runtime.client(service).meta.events.register(f"before-parameter-build.{service}", recording)
    return recording


def _outside(requests: list[Request], grants: Any) -> list[Request]:
    return [
        r
        for r in requests
        if r.index is not None
        or not any(
            g.allows(r.action, r.partition_key, None if r.attributes is None else set(r.attributes)) for g in grants
        )
    ]


def test_the_receivers_requests_are_within_its_grants(stack: Stack, recorder: Recorder) -> None:
    from infra.constructs.functions import RECEIVER_ITEMS, WEBHOOK_PROVIDERS
    from infra.constructs.raw_archive import SES_MAIL, received_prefix
    from intake.resources import ARCHIVE

    # Given a customer's emailed ticket, resolved, whose survey went out
    ticket_id = email_ticket(stack)
    resolve(stack, ticket_id)
    wait_for(lambda: len(surveys(stack)) == 1)
    [survey] = surveys(stack)

    # When every provider's webhook and the survey's link reach the receiver
    with recorder.running("Receiver"):
        for name, status in (
            ("contact-json.json", 202),
            ("website-multipart.json", 202),
            ("feedback-typeform.json", 202),
            ("08-sms-conversation-1.json", 200),
            ("01-voice-incoming-call.json", 200),
            ("sendgrid-raw.json", 200),
            ("mailgun-mime.json", 200),
        ):
            prepared = stack.prepare(name)
            assert stack.post_raw(prepared.path, prepared.body, prepared.headers)[0] == status, name
        body = payload([value("33612345678", text("33612345678", "wamid.LP1", "Bonjour"))])
        assert deliver(stack, body)[0] == 200
        for posted in ("messenger/01-text.json", "instagram/01-text.json"):
            signed = samples.prepare(samples.load(ROOT / "events" / posted), runtime.policy(), Secrets(environ=SECRETS))
            assert stack.post_raw(signed.path, signed.body, signed.headers)[0] == 200, posted
        url = path_of(links(survey)[3])
        assert page(stack, "GET", url)[0] == 200
        assert page(stack, "POST", url, {"comment": "quick"})[0] == 200
        assert page(stack, "POST", url, {"comment": "quick and kind"})[0] == 200

    # Then each table request is one of its grants: survey answers apart from the ticket, two attributes of the
    # ticket read, Mailgun's token claimed; and each object is a provider's raw key or an upload, never SES's
    requests = recorder.items["Receiver"]
    assert {(r.action, r.partition_key.split("#")[0]) for r in requests} >= {
        ("dynamodb:GetItem", "TICKET"),
        ("dynamodb:PutItem", "CSAT"),
        ("dynamodb:UpdateItem", "CSATDAY"),
        ("dynamodb:PutItem", "TOKEN"),
    }
    assert _outside(requests, RECEIVER_ITEMS) == []
    keys = recorder.objects["Receiver"]
    allowed = [f"{received_prefix(p)}*" for p in WEBHOOK_PROVIDERS] + [f"{ARCHIVE.attachments_prefix}*"]
    assert {k.split("/")[4] for k in keys if k.startswith(ARCHIVE.raw_prefix)} == set(WEBHOOK_PROVIDERS)
    assert any(k.startswith(ARCHIVE.attachments_prefix) for k in keys)  # the multipart form's file
    assert [k for k in keys if not any(fnmatchcase(k, p) for p in allowed) or fnmatchcase(k, SES_MAIL)] == []


def test_the_notifiers_requests_are_within_its_grants(stack: Stack, recorder: Recorder) -> None:
    from infra.constructs.notifications import NOTIFIER_ITEMS

    # Given a ticket with a running timer, a resolved emailed ticket whose survey is due, a suppressed address
    ticket_id = open_ticket(stack)
    set_timer(stack, ticket_id, TimerState.BREACHED)
    emailed = email_ticket(stack)
    resolve(stack, emailed)
    notices = [
        message(ticket_id, "warning", label="80%"),
        message(ticket_id, "breach"),
        message(ticket_id, "escalation", level=1),
    ]
    for notice in notices:
        stack.sqs.send_message(
            QueueUrl=stack.resources.queue_urls["notifications"], MessageBody=notification_body(notice)
        )
    stack.sqs.send_message(QueueUrl=stack.resources.queue_urls["notifications"], MessageBody='{"kind": "nonsense"}')

    # When the notifier works the queue: the notices, the survey, and a message it fails on
    with recorder.running("Notifier"):
        run_notifications(stack)
        wait_for(lambda: (run_notifications(stack), any(m["X-Intake-Notice"] == "survey" for m in stack.sent()))[1])

    # Then each request is one of its grants: the ticket and its contact read, its claims, events and breach flag,
    # the survey's day and Message-IDs, its failed message recorded; no index, nothing else
    requests = recorder.items["Notifier"]
    prefixes = {(r.action, r.partition_key.split("#")[0]) for r in requests}
    assert prefixes >= {
        ("dynamodb:Query", "TICKET"),
        ("dynamodb:GetItem", "CONTACT"),
        ("dynamodb:GetItem", "SUPPRESSED"),
        ("dynamodb:PutItem", "TOKEN"),
        ("dynamodb:UpdateItem", "TICKET"),
        ("dynamodb:PutItem", "SURVEYDAY"),
        ("dynamodb:PutItem", "MSGID"),
        ("dynamodb:UpdateItem", "FAIL"),
    }
    assert _outside(requests, NOTIFIER_ITEMS) == []


def test_the_feedback_functions_requests_are_within_its_grants(stack: Stack, recorder: Recorder) -> None:
    from infra.constructs.mail_feedback import FEEDBACK_ITEMS

    names = ("bounce-permanent", "complaint", "bounce-transient", "delivery")
    with recorder.running("Feedback"):
        for name in names:
            report(sample(name))

    # the suppressed addresses, and the reply (none here) each bounce and delivery is about, by SES's Message-ID
    requests = recorder.items["Feedback"]
    ses_id = {name: sample(name)["detail"]["mail"]["messageId"] for name in names}
    assert [(r.action.removeprefix("dynamodb:"), r.partition_key) for r in requests] == [
        ("PutItem", "SUPPRESSED#ana.silva@example.org"),
        ("GetItem", f"OUT#email#{ses_id['bounce-permanent']}@email.amazonses.com"),
        ("PutItem", "SUPPRESSED#hugo.bernard@example.org"),
        ("GetItem", f"OUT#email#{ses_id['bounce-transient']}@email.amazonses.com"),
        ("GetItem", f"OUT#email#{ses_id['delivery']}@email.amazonses.com"),
    ]
    assert _outside(requests, FEEDBACK_ITEMS) == []


def test_the_ticket_writers_requests_are_actions_their_roles_have(stack: Stack, recorder: Recorder) -> None:
    from infra.constructs.ticket_store import TICKET_WRITER_ACTIONS

    # Given a form, an email (acknowledged) and a text message, each queued by the receiver
    for name in ("contact-json.json", "08-sms-conversation-1.json"):
        prepared = stack.prepare(name)
        assert stack.post_raw(prepared.path, prepared.body, prepared.headers)[0] in (200, 202), name
    inject(stack, mime("Refund for order 881", "I was charged twice.", message_id="lp1@mail.example.org"))

    # When the ingest function works them into tickets
    with recorder.running("Ingest"):
        assert stack.work() == 3

    # Then every request is an action its role has on any item (reads in one BatchGetItem, transactions with their
    # condition checks): nothing IAM would refuse in AWS
    requests = recorder.items["Ingest"]
    assert {r.action for r in requests} >= {"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"}
    assert {r.action for r in requests} <= set(TICKET_WRITER_ACTIONS)
    assert [r for r in requests if r.index is not None] == []
    assert len(stack.sent()) == 1  # the email's acknowledgment


def test_an_unprojected_read_of_a_ticket_is_outside_the_receivers_grants() -> None:
    from infra.constructs.functions import RECEIVER_ITEMS

    whole = Request("dynamodb:GetItem", "TICKET#01JQ0000000000000000000000")
    projected = Request("dynamodb:GetItem", "TICKET#01JQ0000000000000000000000", frozenset({"team", "reference"}))
    messages = Request("dynamodb:GetItem", "TICKET#01JQ0000000000000000000000", frozenset({"team", "text"}))

    written = Request("dynamodb:PutItem", "TICKET#01JQ0000000000000000000000")

    assert _outside([whole, projected, messages, written], RECEIVER_ITEMS) == [whole, messages, written]
