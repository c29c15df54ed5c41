"""moto for every test here; the resources come from `intake.resources`, as the stack's do."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from intake import runtime
from intake.local import samples
from intake.local.gateway import LocalContext, api_event
from intake.local.workers import poll_once
from intake.policy import load_policy
from intake.queues import SqsQueue
from intake.secrets import Secrets
from intake.store import Store
from tests.iam_calls import Enforcer, attributed, enforced
from tests.iam_roles import synthesized_roles
from tests.moto_stack import Resources, create_resources, emulated, session

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "INTAKE_FORM_CONTACT_SECRET": "test-contact-secret",
    "INTAKE_FORM_FEEDBACK_SECRET": "test-typeform-secret",
    "INTAKE_TWILIO_AUTH_TOKEN": "test-twilio-auth-token",
    "INTAKE_SENDGRID_INBOUND_USER": "inbound",
    "INTAKE_SENDGRID_INBOUND_PASSWORD": "test-sendgrid-password",
    "INTAKE_MAILGUN_SIGNING_KEY": "test-mailgun-key",
    "INTAKE_CSAT_SECRET": "test-csat-secret",
    "INTAKE_WHATSAPP_APP_SECRET": "test-whatsapp-app-secret",
    "INTAKE_WHATSAPP_VERIFY_TOKEN": "test-whatsapp-verify-token",
    "INTAKE_MESSENGER_APP_SECRET": "test-messenger-app-secret",
    "INTAKE_INSTAGRAM_APP_SECRET": "test-instagram-app-secret",
}


@dataclass
class Stack:
    """The emulated deployment: its resources, clients, and the handlers called as Lambda calls them."""

    resources: Resources
    s3: Any
    sqs: Any
    dynamodb: Any
    outbox: Path  # where the mail Intake sends lands (INTAKE_OUTBOX)

    def sent(self) -> list[EmailMessage]:
        """The mail sent so far, oldest first."""
        files = sorted(self.outbox.glob("*.eml")) if self.outbox.exists() else []
        return [BytesParser(policy=email_policy.default).parsebytes(f.read_bytes()) for f in files]  # type: ignore[misc]

    @property
    def store(self) -> Store:
        return Store(self.dynamodb, self.resources.table)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        status, body_text, _ = self.post_raw(path, body, headers)
        return status, json.loads(body_text or "{}")

    def post_raw(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        """The receiver's answer as sent: status, body text, headers (TwiML is not JSON)."""
        from intake.handlers import receiver

        event = api_event("POST", path, headers, body, "203.0.113.9")
        result = receiver.handler(event, LocalContext("receiver", "req-1"))
        return result["statusCode"], result["body"] or "", result.get("headers") or {}

    def post_sample(self, name: str, now: float | None = None, **changes: Any) -> tuple[int, dict[str, Any]]:
        prepared = self.prepare(name, now, **changes)
        return self.post(prepared.path, prepared.body, prepared.headers)

    def prepare(self, name: str, now: float | None = None, **changes: Any) -> samples.Prepared:
        folder = "twilio" if name.startswith(tuple("0123456789")) else "forms"
        if name.startswith(("sendgrid", "mailgun")):
            folder = "email"
        sample = samples.load(ROOT / "events" / folder / name)
        for key, value in changes.items():
            sample[key] = value
        return samples.prepare(sample, load_policy(ROOT / "intake.yaml"), Secrets(environ=SECRETS), now)

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        from intake.handlers import api

        result = api.handler(api_event("GET", path, {}, b"", "127.0.0.1"), LocalContext("api", "req-2"))
        return result["statusCode"], json.loads(result["body"])

    def post_api(self, path: str, payload: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        from intake.handlers import api

        body = json.dumps(payload or {}).encode()
        event = api_event("POST", path, {"content-type": "application/json"}, body, "127.0.0.1")
        result = api.handler(event, LocalContext("api", "req-3"))
        return result["statusCode"], json.loads(result["body"])

    def work(self, rounds: int = 3) -> int:
        """Run the ingest consumer until the queue is empty (or `rounds` empty polls)."""
        from intake.handlers import ingest

        url = self.resources.queue_urls["inbound"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        taken, empty = 0, 0
        while empty < rounds:
            got = poll_once(SqsQueue(self.sqs, url), arn, "ingest", ingest.handler, wait_s=0)
            taken += got
            empty = 0 if got else empty + 1
        return taken

    def queued(self, name: str = "inbound") -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.resources.queue_urls[name],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def objects(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.resources.bucket)
        return [o["Key"] for o in listed.get("Contents", [])]

    def items(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=self.resources.table)["Items"]

    def tickets(self) -> list[dict[str, Any]]:
        return [i for i in self.items() if i["PK"]["S"].startswith("TICKET#") and i["SK"]["S"] == "META"]


@pytest.fixture(autouse=True)
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stack]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("INTAKE_OUTBOX", str(tmp_path / "outbox"))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with emulated():
        resources = create_resources("intake-test")
        for name, value in resources.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("INTAKE_CONFIG", str(ROOT / "intake.yaml"))
        runtime.reset()
        # fresh clients each test (what a test registers on one stays in that test), from the process's one session
        clients = (session().client("s3"), session().client("sqs"), session().client("dynamodb"))
        yield Stack(resources, *clients, outbox=tmp_path / "outbox")
        runtime.reset()
    assert os.environ.get("TZ") == "UTC"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture(autouse=True)
def iam_enforced(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Enforcer]:
    """Every AWS call a function's handler makes here is held to that function's role as the stack synthesizes it
    (`tests.iam_calls`): one the role does not allow is refused as AWS would, and fails the test."""
    roles = synthesized_roles()
    for module, name, handler in attributed(roles):
        monkeypatch.setattr(module, name, handler)
    with enforced(roles, stack.resources) as enforcer:
        yield enforcer
    failures = enforcer.failures()
    if failures:
        pytest.fail(failures, pytrace=False)


def ses_throttled_once(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Mail through SES (moto) rather than the outbox, the first SendRawEmail refused with `Throttling` as SES
    answers a burst; the SES client, to count what was sent."""
    from botocore.exceptions import ClientError

    monkeypatch.delenv("INTAKE_OUTBOX")
    runtime.reset()
    ses = runtime.client("ses")
    ses.verify_email_identity(EmailAddress="support@example.com")
    throttled: list[str] = []

    def throttle_once(**_: object) -> None:
        if not throttled:
            throttled.append("SendRawEmail")
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "SendRawEmail")

    ses.meta.events.register("before-call.ses.SendRawEmail", throttle_once)
    return ses
