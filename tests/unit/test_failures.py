"""What is recorded when a queue's message fails: the error's type and a message without customer data, for every
message the batch processors report failed (those skipped behind a failed one of their FIFO group included)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from hypothesis import given
from hypothesis import strategies as st

from intake.failures import FailureRecorder, RecordingFifoProcessor, RecordingProcessor, describe
from intake.inbox import decode_message
from intake.local.table import SqliteTable
from intake.queues import Received, sqs_record
from intake.resources import INBOUND_QUEUE, NOTIFICATIONS_QUEUE
from intake.store import Store

AT = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def test_a_validation_error_names_the_wrong_fields_never_their_values() -> None:
    with pytest.raises(ValueError) as raised:
        decode_message('{"type": "message", "channel": "form", "text": ["+33612345678"], "team": "ops@example.com"}')

    kind, message = describe(raised.value)

    assert kind == "ValidationError"
    assert "message.text string_type" in message and "message.provider missing" in message
    assert "33612345678" not in message and "example.com" not in message


def test_addresses_and_phone_numbers_are_masked_and_long_messages_cut() -> None:
    kind, message = describe(ValueError("refused for Lena <lena.m+tag@example.com>, +33 6 12 34 56 78"))
    assert (kind, message) == ("ValueError", "refused for Lena <<address>>, <number>")

    assert describe(KeyError("billing")) == ("KeyError", "'billing'")
    _, long = describe(RuntimeError("x" * 1000))
    assert len(long) == 300 and long.endswith("…")


@given(
    local=st.from_regex(r"[a-z0-9._+-]{1,20}", fullmatch=True), digits=st.from_regex(r"\+?[0-9]{7,14}", fullmatch=True)
)
def test_no_address_or_number_survives(local: str, digits: str) -> None:
    _, message = describe(RuntimeError(f"from {local}@mail.example.org about {digits}: failed"))
    assert "@" not in message and digits not in message


def sqs(n: int, group: str | None, body: str = "{}") -> dict[str, Any]:
    received = Received(f"m-{n}", f"r-{n}", body, receive_count=2, group=group, sent_at_ms=1, dedupe=f"d-{n}")
    return sqs_record(received, "arn:aws:sqs:us-east-1:000000000000:intake-local-inbound", "us-east-1")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(SqliteTable(tmp_path / "t.db"), "t")  # type: ignore[arg-type]  # the table port


def test_a_failed_fifo_message_and_those_skipped_behind_it_are_recorded(store: Store) -> None:
    # Given a batch: a's first message fails, a's second is skipped behind it, b's succeeds
    processor = RecordingFifoProcessor(FailureRecorder(INBOUND_QUEUE, lambda: store, lambda: AT), True)

    def handle(record: SQSRecord) -> None:
        if record.message_id == "m-1":
            raise KeyError("billing")

    event = {"Records": [sqs(1, "a"), sqs(2, "a"), sqs(3, "b")]}
    response = process_partial_response(event=event, record_handler=handle, processor=processor)

    # Then both of a's are reported failed and recorded, each with its own reason; b's is not
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == ["m-1", "m-2"]
    recorded = store.failure_records("inbound")
    assert {k: (r.error_type, r.attempts, r.first_try) for k, r in recorded.items()} == {
        "m-1": ("KeyError", 1, AT),
        "m-2": ("SQSFifoMessageGroupCircuitBreakerError", 1, AT),
    }


def test_a_failure_that_cannot_be_recorded_still_fails_its_message_only(tmp_path: Path) -> None:
    # Given a table that cannot be written (closed)
    table = SqliteTable(tmp_path / "t.db")
    table.close()
    processor = RecordingProcessor(FailureRecorder(NOTIFICATIONS_QUEUE, lambda: Store(table, "t"), lambda: AT))  # type: ignore[arg-type]

    def handle(record: SQSRecord) -> None:
        if record.message_id == "m-1":
            raise ValueError("no recipient")

    event = {"Records": [sqs(1, None), sqs(2, None)]}
    response = process_partial_response(event=event, record_handler=handle, processor=processor)

    # Then the message is reported failed as usual (it stays queued), the other one done
    assert response["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
