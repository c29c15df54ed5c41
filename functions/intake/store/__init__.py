"""The only package that speaks DynamoDB: Intake's single table (see DESIGN.md, "Data").

Callers get our models (`intake.model`), our records (`intake.records`) and our errors, never boto3's. `Store` is
the port: one class made of one part per aggregate, each in its module (tickets, contacts, inbound messages,
threads, claims, timers, the open queue, digests, surveys, calls, quarantine, failures, suppressed addresses,
replies), on `table.Table`'s calls; `keys` defines every key once, `items` what an item holds. The package imports
no feature module: what the features and the store share lives below both (`intake.model`, `intake.records`).
"""

from intake.store.backlog import BacklogStore
from intake.store.calls import CallsStore
from intake.store.digests import DigestsStore
from intake.store.errors import (
    ContactNotFoundError,
    CursorInvalidError,
    StoreError,
    StoreUnavailableError,
    TicketNotFoundError,
    WriteConflictError,
)
from intake.store.failures import FailuresStore
from intake.store.inbound import InboundStore
from intake.store.outbound import OutboundStore
from intake.store.quarantine import QuarantineStore
from intake.store.suppressed import SuppressedStore

__all__ = [
    "ContactNotFoundError",
    "CursorInvalidError",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "TicketNotFoundError",
    "WriteConflictError",
]


class Store(
    InboundStore,
    BacklogStore,
    DigestsStore,
    CallsStore,
    OutboundStore,
    QuarantineStore,
    FailuresStore,
    SuppressedStore,
):
    """Intake's ticket store on one DynamoDB table: `Store(client, table_name)`."""
