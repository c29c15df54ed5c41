"""Reconciliation on moto: requests archived whose message never reached the queue (SQS refused the send, and the
provider did not retry) are found in the archive and queued again, once; what is already a message is left alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from intake import runtime
from intake.reconciliation import Reconciled, WindowTooLongError, reconcile
from tests.aws.conftest import Stack


def refusing_sends(times: int) -> Callable[[], None]:
    """SQS refuses the receiver's next `times` sends (after the request was archived); returns a check that it did."""
    sqs = runtime.inbox().queue._sqs  # type: ignore[attr-defined]  # the receiver's own client: the AWS boundary
    left = [times]

    def refuse(**_: Any) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "SendMessageBatch")

    sqs.meta.events.register("before-call.sqs.SendMessageBatch", refuse)

    def refused_all() -> None:
        assert left == [0]

    return refused_all


def post(stack: Stack, sample: str) -> int:
    prepared = stack.prepare(sample)
    return stack.post_raw(prepared.path, prepared.body, prepared.headers)[0]


def reconciled(since: timedelta = timedelta(hours=1)) -> Reconciled:
    now = datetime.now(UTC)
    return reconcile(runtime.inbox(), runtime.store(), runtime.policy(), since=now - since, now=now)


def test_requests_archived_but_never_queued_are_queued_again_once(stack: Stack) -> None:
    # Given a form, a text message and an email whose sends SQS refused (answered 500; these providers gave up)
    refused = refusing_sends(3)
    for name in ("contact-json.json", "08-sms-conversation-1.json", "sendgrid-raw.json"):
        assert post(stack, name) == 500
    refused()
    # and a form that went through, and a delivery status (archived, never a message)
    assert post(stack, "website-urlencoded.json") == 202
    assert post(stack, "14-message-status-delivered.json") == 200
    stack.work()
    assert len(stack.tickets()) == 1

    # When the archive is reconciled
    first = reconciled()

    # Then the three lost ones are queued again, and become tickets
    assert (first.found, first.requeued, first.unreadable) == (5, 3, ())
    assert stack.work() == 3
    tickets = stack.get("/tickets")[1]["items"]
    assert sorted(t["channel"] for t in tickets) == ["email", "form", "form", "sms"]
    # And a second pass finds them all known: nothing is queued again
    assert reconciled() == Reconciled(found=5, requeued=0, unreadable=())
    assert stack.queued() == 0


def test_a_request_that_cannot_be_made_again_is_named_and_left_in_the_archive(stack: Stack) -> None:
    key = f"raw/{datetime.now(UTC):%Y/%m/%d}/forms/01KBQ3V7Y5R8M2C6D9E4F0G1H2"
    stack.s3.put_object(Bucket=stack.resources.bucket, Key=key, Body=b"not an envelope")

    assert reconciled() == Reconciled(found=0, requeued=0, unreadable=(key,))
    assert key in stack.objects() and stack.queued() == 0


def test_the_window_reaches_back_seven_days_at_most(stack: Stack) -> None:
    with pytest.raises(WindowTooLongError, match="kept 8 days"):
        reconciled(since=timedelta(days=7, minutes=1))
    assert reconciled(since=timedelta(days=7)).found == 0
