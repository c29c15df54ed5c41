"""A provider's delivery report that comes before the sender recorded its send waits on the queue for a while; one
about a message that is none of ours, or too old to be waiting for its send, is ignored (on the local store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from intake.ids import new_id
from intake.local.table import SqliteTable
from intake.model import DeliveryState, DeliveryStatus
from intake.replies import EARLY_REPORT, ReportAheadOfSendError, apply_status
from intake.store import Store

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    table = SqliteTable(tmp_path / "tickets.db")
    yield Store(table, "tickets")  # type: ignore[arg-type]  # the table port
    table.close()


def _report(at: datetime) -> DeliveryStatus:
    return DeliveryStatus(
        provider="twilio",
        provider_message_id="SM" + "0" * 32,
        state=DeliveryState.DELIVERED,
        at=at,
        receipt_id=new_id(),
        received_at=at,
        raw_archive_key="raw/2026/12/05/twilio/x",
    )


def test_a_report_ahead_of_its_send_waits_on_the_queue(store: Store) -> None:
    # Given a report, a second old, on a message the table does not know as sent yet
    # Then applying it asks the queue to deliver it again
    with pytest.raises(ReportAheadOfSendError):
        apply_status(store, _report(NOW - timedelta(seconds=1)), NOW)


def test_a_report_past_the_wait_on_a_message_not_ours_is_ignored(store: Store) -> None:
    # Given the same report, older than a send can take to be recorded: a message sent from outside Intake
    # Then it moves nothing, and is not asked for again
    assert apply_status(store, _report(NOW - EARLY_REPORT - timedelta(seconds=1)), NOW) is None
