"""The one description of Intake's stateful resources.

The CDK stack builds its table, queues and bucket from it, the tests create the same resources in moto from it
(`tests/moto_stack.py`), and `intake serve`'s local adapters take the table's keys and indexes and the queues'
settings from it, so none of them can drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    partition_key: str
    sort_key: str
    ttl_attribute: str
    indexes: tuple[Index, ...]


@dataclass(frozen=True)
class QueueSpec:
    name: str
    fifo: bool
    visibility_timeout_s: int
    max_receive_count: int
    retention_s: int = 14 * 86400
    dead_letter: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dead_letter", self.name + "-dlq")

    def physical_name(self, prefix: str) -> str:
        return f"{prefix}-{self.name}" + (".fifo" if self.fifo else "")

    def dead_letter_name(self, prefix: str) -> str:
        return f"{prefix}-{self.dead_letter}" + (".fifo" if self.fifo else "")


@dataclass(frozen=True)
class BucketSpec:
    name: str
    raw_prefix: str
    attachments_prefix: str


TABLE = TableSpec(
    name="tickets",
    partition_key="PK",
    sort_key="SK",
    ttl_attribute="expires_at",
    indexes=(
        Index("by_team", "team", "created_key"),
        Index("by_day", "team_day", "created_key"),
        Index("open_by_due", "open_team", "due_key"),
        Index("open_by_wait", "open_team", "wait_key"),  # the same queue, breached first, then the longest waiting
        Index("by_contact", "contact_id", "created_key"),
    ),
)

# 180 s: six times the ingest function's 30 s timeout (WhatsApp media are downloaded, with retries, in it)
INBOUND_QUEUE = QueueSpec(name="inbound", fifo=True, visibility_timeout_s=180, max_receive_count=5)
# Amazon SES receiving: the archive bucket's "object created" events under SES_PREFIX, for the email worker
EMAIL_QUEUE = QueueSpec(name="email", fifo=False, visibility_timeout_s=180, max_receive_count=5)
# SLA warnings, breaches and escalations, sent by the SLA timer (Step Functions) for the notifier
NOTIFICATIONS_QUEUE = QueueSpec(name="notifications", fifo=False, visibility_timeout_s=60, max_receive_count=5)
# Agents' replies, for the sender: one ticket's replies in order (FIFO, grouped by ticket), each queued once. 300 s:
# six times the sender function's 50 s timeout (a reply's three tries wait up to 6 s each on the provider, with
# backoff between); a reply still failing at its fifth receive is recorded as failed on its ticket
SENDER_QUEUE = QueueSpec(name="sender", fifo=True, visibility_timeout_s=300, max_receive_count=5)
QUEUES = (INBOUND_QUEUE, EMAIL_QUEUE, NOTIFICATIONS_QUEUE, SENDER_QUEUE)

SLA_MACHINE = "sla-timer"  # one execution per ticket x target x generation
LATER_MACHINE = "deliver-later"  # waits until a given instant, then sends a message (satisfaction surveys)
EVENT_BUS = "events"  # Intake's EventBridge bus: DigestPublished, SurveyRequested
DIGESTS_PREFIX = "digests/"  # where each published digest is archived (inside the raw archive bucket)

ARCHIVE = BucketSpec(name="raw", raw_prefix="raw/", attachments_prefix="attachments/")
SES_PREFIX = "raw/ses/"  # where SES's receipt rule writes each message's MIME (inside the raw archive)


def table_name(prefix: str) -> str:
    return f"{prefix}-{TABLE.name}"


def event_bus_name(prefix: str) -> str:
    return f"{prefix}-{EVENT_BUS}"


def bucket_name(prefix: str) -> str:
    return f"{prefix}-{ARCHIVE.name}"
