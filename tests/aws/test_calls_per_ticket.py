"""What one message costs in DynamoDB calls, counted on the client as the worker makes them (moto): a regression
in the number of round trips fails here, long before it shows on a bill or in a latency graph."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from intake import runtime
from tests.aws.conftest import Stack


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

    # the dedupe record, the sender's identities, the thread, then one transaction with the clocks in it
    assert len(calls) <= 5, calls
    assert calls.count("TransactWriteItems") == 1 and calls[-1] == "TransactWriteItems", calls
    [ticket] = stack.get("/tickets")[1]["items"]
    assert {t["state"] for t in stack.get(f"/tickets/{ticket['id']}")[1]["sla"]} == {"running"}
    assert stack.get("/tickets?order=due")[1]["items"][0]["id"] == ticket["id"]
