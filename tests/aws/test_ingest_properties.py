"""Property: however often and in whatever order messages are delivered, the result is the same."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ulid import ULID

from intake.ingest import ingest
from intake.model import Sender
from intake.store import Store
from tests.aws.conftest import Stack
from tests.aws.test_ingest_core import T0, message
from tests.moto_stack import create_table

# (thread, times delivered) per distinct message; the delivery order is shuffled
plans = st.lists(st.tuples(st.integers(0, 2), st.integers(1, 3)), min_size=1, max_size=8)


def _shuffled(
    plan: list[tuple[int, int]],
) -> st.SearchStrategy[tuple[list[tuple[int, int]], list[tuple[int, int]]]]:
    every = [(n, thread) for n, (thread, times) in enumerate(plan) for _ in range(times)]
    return st.permutations(every).map(lambda order: (plan, order))


deliveries = plans.flatmap(_shuffled)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deliveries)
def test_any_redelivery_order_yields_one_ticket_per_thread_and_one_message_per_provider_id(
    stack: Stack, case: tuple[list[tuple[int, int]], list[tuple[int, int]]]
) -> None:
    plan, order = case
    run = str(ULID())
    table = create_table(f"p{run.lower()}")  # every example on a table of its own
    store = Store(stack.dynamodb, table)
    for n, thread in order:
        ingest(
            store,
            message(
                provider_message_id=f"{run}-{n}",
                thread_key=f"{run}-thread-{thread}",
                received_at=T0 + timedelta(minutes=n),
                sender=Sender(email=f"{run.lower()}-{thread}@example.com"),
                dedupe_window_s=8 * 86400,
            ),
            lambda: str(ULID()),
        )

    items = stack.dynamodb.scan(TableName=table)["Items"]
    tickets = [i for i in items if i["PK"]["S"].startswith("TICKET#") and i["SK"]["S"] == "META"]
    assert len(tickets) == len({thread for thread, _ in plan})
    messages = [i for i in items if i["SK"]["S"].startswith("MSG#")]
    assert len(messages) == len(plan)
    per_ticket = Counter(i["PK"]["S"] for i in messages)
    assert {t["PK"]["S"]: int(t["message_count"]["N"]) for t in tickets} == dict(per_ticket)
