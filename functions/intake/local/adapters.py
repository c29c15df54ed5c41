"""The local adapters of every port, in one data folder: what `intake serve` runs on instead of AWS.

<data-dir>/tickets.db    the ticket table (SQLite, WAL): `SqliteTable`, behind the same `Store`
<data-dir>/queues.db     the inbound and notifications queues and their dead letters: `SqliteQueue`
<data-dir>/timers.db     the SLA and deliver-later executions, fired by one `Scheduler` thread
<data-dir>/archive/      raw requests, emails, attachments, digests: `FileArchive`
<data-dir>/events.jsonl  Intake's events (DigestPublished, SurveyRequested): `FileBus`
<data-dir>/outbox/       the mail Intake sends, one .eml file each (`OutboxMailer`)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from intake.local.archive import FileArchive
from intake.local.bus import FileBus
from intake.local.queue import SqliteQueue
from intake.local.table import SqliteTable
from intake.local.timers import LATER, SLA, LocalTimers, Scheduler
from intake.resources import INBOUND_QUEUE, NOTIFICATIONS_QUEUE, QUEUES


@dataclass
class LocalAdapters:
    data_dir: Path
    table: SqliteTable
    table_name: str
    archive: FileArchive
    queues: dict[str, SqliteQueue]
    scheduler: Scheduler
    bus: FileBus
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def inbound(self) -> SqliteQueue:
        return self.queues[INBOUND_QUEUE.name]

    @property
    def notifications(self) -> SqliteQueue:
        return self.queues[NOTIFICATIONS_QUEUE.name]

    def dead_letters(self) -> int:
        return sum(queue.dead_letter_count() for queue in self.queues.values())

    def sweep(self, now: float) -> None:
        """What expires: items past their TTL, dead letters past 14 days, executions ended 90 days ago, and the
        temporary files of archive writes a crash interrupted."""
        self.table.sweep_expired(int(now))
        for queue in self.queues.values():
            queue.sweep_dead_letters(int(now * 1000))
        self.scheduler.sweep(now)
        self.archive.sweep_temporary(now - 3600)

    def sla_timers(self) -> LocalTimers:
        return self.scheduler.timers(SLA)

    def later(self) -> LocalTimers:
        return self.scheduler.timers(LATER)


def open_adapters(data_dir: Path, table_name: str, visibility_timeout_s: int | None = None) -> LocalAdapters:
    """Open (creating when new) every local store under `data_dir`; nothing is started. The queues keep their
    specs' visibility timeouts (as in AWS: a batch slower than it would be handed out twice, and a failing
    message spends five of them before its dead letter) unless `visibility_timeout_s` is given."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "outbox").mkdir(exist_ok=True)
    table = SqliteTable(data_dir / "tickets.db")
    queues = {spec.name: SqliteQueue(data_dir / "queues.db", spec, visibility_timeout_s) for spec in QUEUES}
    stop = threading.Event()
    scheduler = Scheduler(data_dir / "timers.db", table, table_name, queues[NOTIFICATIONS_QUEUE.name], stop)
    return LocalAdapters(
        data_dir=data_dir,
        table=table,
        table_name=table_name,
        archive=FileArchive(data_dir / "archive"),
        queues=queues,
        scheduler=scheduler,
        bus=FileBus(data_dir / "events.jsonl"),
        stop=stop,
    )
