"""The functions' calls on moto are held to their roles as synthesized (`tests.iam_calls`, autouse here): the checker
sees what it must, and a grant missing from a role fails the test that needs it (issue 15).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from intake import runtime
from tests.aws.conftest import Stack
from tests.aws.test_email_pipeline import mime
from tests.iam_calls import Call, Enforcer, enforced
from tests.iam_policy import Request, Statement, UnsupportedPolicyError, decide
from tests.iam_roles import synthesized_roles


def acknowledgment_throttled_once(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An email SES receiving stored, taken by the email function twice (as its queue redelivers it) while SES
    throttles the first acknowledgment: the first invocation fails (its one record did); what the second answered."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    from intake.handlers import email
    from intake.local.gateway import LocalContext
    from intake.local.workers import sqs_event
    from intake.queues import SqsQueue
    from intake.resources import SES_PREFIX

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
    raw = mime("Refund", "Charged twice.", message_id="iam1@example.org")
    stack.s3.put_object(Bucket=stack.resources.bucket, Key=f"{SES_PREFIX}iam-throttled", Body=raw)
    url = stack.resources.queue_urls["email"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages = SqsQueue(stack.sqs, url).receive(max_messages=10, wait_s=0)
    assert len(messages) == 1
    with pytest.raises(BatchProcessingError):  # SES throttled (and the claim given back, if the role allows)
        email.handler(sqs_event(messages, arn), LocalContext("email", "r1"))
    answer: dict[str, Any] = email.handler(sqs_event(messages, arn), LocalContext("email", "r2"))
    return answer


def _gives_back_acknowledgments(statement: Mapping[str, Any]) -> bool:
    keys = statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys", [])
    return statement.get("Action") == "dynamodb:DeleteItem" and keys == ["TOKEN#ack#*"]


def _claims_given_back(enforcer: Enforcer) -> list[Call]:
    return [
        c
        for c in enforcer.calls
        if c.request.action == "dynamodb:DeleteItem"
        and c.request.context["dynamodb:LeadingKeys"][0].startswith("TOKEN#ack#")
    ]


def test_an_acknowledgment_claim_given_back_by_the_email_function_is_within_its_role(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, iam_enforced: Enforcer
) -> None:
    # When SES throttles an acknowledgment, and the email comes again
    again = acknowledgment_throttled_once(stack, monkeypatch)

    # Then the claim was given back, by the email function, as its role allows; the retry acknowledged the ticket
    assert again["batchItemFailures"] == []
    [given_back] = _claims_given_back(iam_enforced)
    assert (given_back.function, given_back.decision.allowed) == ("Email", True)
    assert runtime.client("ses").get_send_quota()["SentLast24Hours"] == 1
    # and everything else it did was checked too: the MIME read, the ticket written, the message sent
    actions = {c.request.action for c in iam_enforced.calls if c.function == "Email"}
    assert {"s3:GetObject", "dynamodb:BatchGetItem", "dynamodb:PutItem", "ses:SendRawEmail"} <= actions


def test_without_its_delete_grant_the_email_role_is_reported_for_the_claim_it_gives_back(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the email function's role without DeleteItem on `TOKEN#ack#*` (the grant issue 15 found missing)
    roles = synthesized_roles()
    missing = roles.without("Email", _gives_back_acknowledgments)
    removed = len(roles.functions["intake.handlers.email.handler"].documents) - len(
        missing.functions["intake.handlers.email.handler"].documents
    )
    assert removed == 1

    # When SES throttles an acknowledgment, and the email comes again
    with enforced(missing, stack.resources) as enforcer:
        acknowledgment_throttled_once(stack, monkeypatch)

    # Then the checker names the function, the action and the item's key on the table
    [refused] = _claims_given_back(enforcer)
    assert refused.decision.reason == "no statement allows it"
    report = enforcer.failures()
    assert report is not None
    table = f"arn:aws:dynamodb:us-east-1:123456789012:table/{stack.resources.table}"
    assert f"Email: dynamodb:DeleteItem on {table} (dynamodb:LeadingKeys=['TOKEN#ack#" in report
    assert [str(c) for c in enforcer.denied] == [str(refused)]
    # and, refused as AWS refuses it, the claim stayed: the retry took the email for a duplicate, nothing was sent
    assert runtime.client("ses").get_send_quota()["SentLast24Hours"] == 0


# ---------------------------------------------------------------------- the evaluator on the stack's own statements

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/t"


def _item(action: str, key: str, **context: tuple[str, ...]) -> Request:
    return Request(action, TABLE, {"dynamodb:LeadingKeys": (key,), **context})


def test_leading_keys_and_projected_attributes_are_what_the_receivers_ticket_read_is_held_to() -> None:
    ticket_read = Statement.of(
        {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": TABLE,
            "Condition": {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["TICKET#*"]},
                "ForAllValues:StringEquals": {"dynamodb:Attributes": ["PK", "SK", "team", "reference"]},
                "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
            },
        }
    )
    projected = {"dynamodb:Attributes": ("reference", "team"), "dynamodb:Select": ("SPECIFIC_ATTRIBUTES",)}

    assert decide([ticket_read], _item("dynamodb:GetItem", "TICKET#1", **projected)).allowed
    assert not decide([ticket_read], _item("dynamodb:GetItem", "CONTACT#1", **projected)).allowed
    whole = {"dynamodb:Select": ("ALL_ATTRIBUTES",)}
    assert not decide([ticket_read], _item("dynamodb:GetItem", "TICKET#1", **whole)).allowed
    messages = {"dynamodb:Attributes": ("messages",), "dynamodb:Select": ("SPECIFIC_ATTRIBUTES",)}
    assert not decide([ticket_read], _item("dynamodb:GetItem", "TICKET#1", **messages)).allowed
    assert not decide([ticket_read], _item("dynamodb:PutItem", "TICKET#1")).allowed


def test_a_deny_wins_over_the_allow_that_covers_the_same_object() -> None:
    bucket = "arn:aws:s3:::b"
    statements = [
        Statement.of({"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{bucket}/raw/????/??/??/forms/*"}),
        Statement.of({"Effect": "Allow", "Action": "s3:Put*", "Resource": f"{bucket}/raw/*"}),
        Statement.of({"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"{bucket}/raw/ses/*"}),
    ]

    assert decide(statements, Request("s3:PutObject", f"{bucket}/raw/2026/11/24/forms/r1")).allowed
    assert decide(statements, Request("s3:putobject", f"{bucket}/raw/x")).allowed  # actions: any case
    assert decide(statements, Request("s3:PutObject", f"{bucket}/raw/ses/m1")).reason == "explicitly denied"
    assert decide(statements, Request("s3:GetObject", f"{bucket}/raw/x")).reason == "no statement allows it"


def test_a_condition_operator_the_evaluator_does_not_know_is_refused_not_ignored() -> None:
    dated = Statement.of(
        {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"aws:CurrentTime": "x"}}}
    )

    with pytest.raises(UnsupportedPolicyError, match="DateLessThan"):
        decide(
            [dated], Request("s3:GetObject", "arn:aws:s3:::b/k", {"aws:CurrentTime": (datetime.now(UTC).isoformat(),)})
        )
