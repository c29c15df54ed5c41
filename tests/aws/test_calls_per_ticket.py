"""What one message costs in DynamoDB calls, counted on the client as the worker makes them (moto): a regression
in the number of round trips fails here, long before it shows on a bill or in a latency graph."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import boto3

from intake import runtime
from tests.aws.conftest import Stack
from tests.aws.test_email_pipeline import inject, mime


@contextmanager
def dynamodb_calls() -> Iterator[list[str]]:
    """The DynamoDB operations made inside, in order."""
    calls: list[str] = []
    events = runtime.client("dynamodb").meta.events

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    events.register("before-call.dynamodb", record)
    try:
        yield calls
    finally:
        events.unregister("before-call.dynamodb", record)


def test_a_new_form_ticket_costs_at_most_5_dynamodb_calls(stack: Stack) -> None:
    status, _ = stack.post_sample("contact-json.json")
    assert status == 202

    with dynamodb_calls() as calls:
        assert stack.work() == 1

    # the dedupe record, the sender's identities and the thread in one read, then one transaction with the clocks in it
    assert len(calls) <= 5, calls
    assert calls.count("TransactWriteItems") == 1 and calls[-1] == "TransactWriteItems", calls
    [ticket] = stack.get("/tickets")[1]["items"]
    assert {t["state"] for t in stack.get(f"/tickets/{ticket['id']}")[1]["sla"]} == {"running"}
    assert stack.get("/tickets?order=due")[1]["items"][0]["id"] == ticket["id"]


def test_a_new_email_ticket_costs_at_most_7_dynamodb_calls(stack: Stack) -> None:
    inject(stack, mime("Refund for order 881", "I was charged twice.", message_id="a1@mail.example.org"))

    with dynamodb_calls() as calls:
        assert stack.work() == 1

    # one read (dedupe record, identity, thread, Message-ID); the ticket's transaction with its clocks and its
    # Message-ID; the acknowledgment's claim with the sender's hourly count; the acknowledgment's Message-ID and event
    assert len(calls) <= 7, calls
    assert "GetItem" not in calls and calls.index("TransactWriteItems") == calls.count("BatchGetItem"), calls
    [ticket] = stack.get("/tickets")[1]["items"]
    detail = stack.get(f"/tickets/{ticket['id']}")[1]
    assert {t["state"] for t in detail["sla"]} == {"running"}
    assert [e["kind"] for e in detail["events"]].count("acknowledged") == 1 and len(stack.sent()) == 1
    [ack] = stack.sent()
    assert stack.store.thread_links([ack["Message-ID"].strip("<>"), "a1@mail.example.org"], []).by_message_id == {
        ack["Message-ID"].strip("<>"): ticket["id"],
        "a1@mail.example.org": ticket["id"],
    }


def answer(stack: Stack, ticket_id: str, kind: str) -> None:
    status, _ = stack.post_api(f"/tickets/{ticket_id}/events", {"by": "agent-7", "type": kind})
    assert status == 200


def reply_to_first_email(stack: Stack) -> None:
    inject(
        stack,
        mime(
            "Re: Refund for order 881",
            "Any news?",
            message_id="a2@mail.example.org",
            extra="In-Reply-To: <a1@mail.example.org>\r\nReferences: <a1@mail.example.org>\r\n",
        ),
    )


def test_a_reply_on_an_email_thread_costs_at_most_5_dynamodb_calls_and_starts_next_response(stack: Stack) -> None:
    inject(stack, mime("Refund for order 881", "I was charged twice.", message_id="a1@mail.example.org"))
    stack.work()
    [opened] = stack.get("/tickets")[1]["items"]
    answer(stack, opened["id"], "responded")
    reply_to_first_email(stack)

    with dynamodb_calls() as calls:
        assert stack.work() == 1

    # the ticket the Message-ID answered is recorded against, that ticket with its clocks, the dedupe record with the
    # identity and the thread; then one transaction: the message, the ticket, next-response, its queue position
    assert len(calls) <= 5, calls
    assert calls.count("TransactWriteItems") == 1 and calls[-1] == "TransactWriteItems", calls
    [ticket] = stack.get("/tickets")[1]["items"]
    detail = stack.get(f"/tickets/{ticket['id']}")[1]
    assert ticket["id"] == opened["id"] and [m["text"].strip() for m in detail["messages"]] == [
        "I was charged twice.",
        "Any news?",
    ]
    clocks = {t["target"]: t for t in detail["sla"]}
    assert {target: t["state"] for target, t in clocks.items()} == {
        "first_response": "met",
        "next_response": "running",
        "resolution": "running",
    }
    following = clocks["next_response"]
    assert following["started_at"] == detail["messages"][1]["received_at"] and following["generation"] == 1
    due = min(datetime.fromisoformat(clocks[t]["due_at"]) for t in ("next_response", "resolution"))
    assert datetime.fromisoformat(detail["next_due_at"]) == due  # its place in the queue moved with it
    assert [e["kind"] for e in detail["events"]].count("customer_replied") == 1
    assert len(stack.sent()) == 1  # the first email's acknowledgment only
    assert f"{ticket['id']}-next_response-1" in executions(stack)


def test_a_reply_to_a_pending_ticket_reopens_it_and_resumes_its_clocks_within_5_dynamodb_calls(stack: Stack) -> None:
    inject(stack, mime("Refund for order 881", "I was charged twice.", message_id="a1@mail.example.org"))
    stack.work()
    [opened] = stack.get("/tickets")[1]["items"]
    answer(stack, opened["id"], "pending")
    paused = {t["target"]: t for t in stack.get(f"/tickets/{opened['id']}")[1]["sla"]}
    reply_to_first_email(stack)

    with dynamodb_calls() as calls:
        assert stack.work() == 1

    assert len(calls) <= 5, calls
    assert calls.count("TransactWriteItems") == 1 and calls[-1] == "TransactWriteItems", calls
    detail = stack.get(f"/tickets/{opened['id']}")[1]
    assert detail["status"] == "open" and detail["message_count"] == 2
    resumed = {t["target"]: t for t in detail["sla"]}
    assert {(t["state"], t["generation"]) for t in resumed.values()} == {("running", 2)}
    for target, clock in resumed.items():
        # the time used before the pause is counted: what is left starts when the customer wrote
        assert clock["consumed_s"] == paused[target]["consumed_s"]
        assert clock["started_at"] == detail["messages"][1]["received_at"]
    assert {f"{opened['id']}-{target}-2" for target in resumed} <= set(executions(stack))
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.count("reopened") == 1 and kinds.count("timer_started") == 4


def executions(stack: Stack) -> list[str]:
    sfn = boto3.session.Session().client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=stack.resources.state_machine_arn)["executions"]
    return [e["name"] for e in listed]
