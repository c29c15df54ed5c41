"""The queue port on SQLite: SQS's semantics in one file that several threads and processes share.

Every queue of a data folder lives in one file, its rows keyed by queue name, and each queue's dead letters
beside it (`spec.dead_letter`). As on SQS:

- a received message is invisible for the visibility timeout; undeleted, it is delivered again with its
  receive count one higher, under a new receipt. `delete` needs the current receipt of a message still in
  flight: an earlier delivery's receipt, or one whose timeout passed, deletes nothing;
- the receive after `spec.max_receive_count` receives moves the message to the dead-letter queue instead;
  `dead_letters()` lists them, `redrive()` puts them back at the end of the queue, receive count reset;
- FIFO: a group's messages come in send order, and while one of them is in flight no later one of that group
  is delivered; other groups flow (a poison message holds back its own group only, until it is dead-lettered).
  A receive may return several consecutive messages of one group, as SQS does. A deduplication id seen in the
  last 5 minutes is accepted and dropped, even when its message was already deleted;
- standard queues: any visible message, the longest visible first;
- messages older than `spec.retention_s` are dropped (logged by id, counted in `expired`).

How it stays correct and fast: one connection per thread (and per process: a forked child opens its own),
WAL, `synchronous=FULL` (a send that returned survives `kill -9` and power loss), and every receive, delete,
release and send in one `BEGIN IMMEDIATE` transaction, so two consumers never hold the same message. A row's
`ready_at_ms` is its visibility time when it may be handed out (every message of a standard queue; only the
head, the oldest message, of each FIFO group) and NULL behind a group's head, so a receive is one range read on
the `(queue, ready_at_ms, seq)` index whatever the number of messages and groups, and a delete promotes the
group's next message through the `(queue, grp, seq)` index. A long poll wakes at once on a send in this process
and polls the file every 50 ms for the others.

Not persist-queue: its `SQLiteAckQueue` has one status per item (ready, unack, acked, failed) and returns unacked
items only when told to (`nack`, or `resume_unack_tasks` after a restart): no visibility timeout per message, no
receive count or dead letters, no message groups, no deduplication, and pickled bodies. Those are the semantics
the functions count on, so they are written here, on the standard library's sqlite3.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from intake.local.sqlite import immediate
from intake.observability import logger
from intake.queues import QUEUE_MESSAGE_BYTES, DeadLetter, Outgoing, QueueRefusedError, Received
from intake.resources import QueueSpec

DEDUPE_WINDOW_MS = 5 * 60 * 1000  # SQS FIFO: a deduplication id is remembered for 5 minutes
POLL_S = 0.05  # a long poll reads the file this often for messages other processes sent
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY,          -- send order (a new row's rowid is above every row present)
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    grp TEXT,
    dedupe TEXT,
    sent_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,   -- enqueued + retention
    visible_at_ms INTEGER NOT NULL,   -- in flight until then
    ready_at_ms INTEGER,              -- visible_at_ms when it may be handed out, NULL behind its FIFO group head
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT                      -- of its latest delivery
);
CREATE INDEX IF NOT EXISTS queue_messages_ready ON queue_messages (queue, ready_at_ms, seq)
    WHERE ready_at_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS queue_messages_group ON queue_messages (queue, grp, seq) WHERE grp IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS queue_messages_receipt ON queue_messages (receipt) WHERE receipt IS NOT NULL;
CREATE INDEX IF NOT EXISTS queue_messages_expiry ON queue_messages (queue, expires_at_ms);
CREATE TABLE IF NOT EXISTS queue_dedupe (
    queue TEXT NOT NULL,
    dedupe TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (queue, dedupe)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS queue_dedupe_expiry ON queue_dedupe (queue, expires_at_ms);
CREATE TABLE IF NOT EXISTS queue_dead_letters (
    seq INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,              -- the dead-letter queue's name (spec.dead_letter)
    source TEXT NOT NULL,             -- the queue it came from (spec.name)
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    grp TEXT,
    dedupe TEXT,
    sent_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    dead_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_dead_letters_queue ON queue_dead_letters (queue, message_id);
"""

_COLUMNS = "seq, message_id, body, grp, dedupe, sent_at_ms, visible_at_ms, ready_at_ms, receive_count"


class _Signal:
    """Wakes this process's long polls on a queue when a message becomes visible in it."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self.condition:
            self.generation += 1
            self.condition.notify_all()


_signals: dict[tuple[str, str], _Signal] = {}
_signals_lock = threading.Lock()


def _signal(path: Path, queue: str) -> _Signal:
    with _signals_lock:
        return _signals.setdefault((str(path), queue), _Signal())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SqliteQueue:
    """One queue of `spec` in the SQLite file `path`; `visibility_timeout_s` overrides the spec's."""

    def __init__(self, path: Path, spec: QueueSpec, visibility_timeout_s: int | None = None) -> None:
        self.path, self.spec = path.resolve(), spec
        self.name = spec.name
        timeout_s = spec.visibility_timeout_s if visibility_timeout_s is None else visibility_timeout_s
        self.visibility_ms = timeout_s * 1000
        self.expired = 0  # messages this instance dropped for being older than the retention period
        self._local = threading.local()
        self._signal = _signal(self.path, spec.name)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    # ------------------------------------------------------------------ the port

    def send(self, messages: Sequence[Outgoing]) -> None:
        if self.spec.fifo:  # as SQS: no content-based deduplication on Intake's FIFO queues
            missing = {"MessageGroupId": any(m.group is None for m in messages)}
            missing["MessageDeduplicationId"] = any(m.dedupe is None for m in messages)
            if any(missing.values()):
                names = ", ".join(name for name, absent in missing.items() if absent)
                raise QueueRefusedError(f"{len(messages)} messages refused: MissingParameter {names}")
        too_long = sum(len(m.body.encode()) > QUEUE_MESSAGE_BYTES for m in messages)
        if too_long:  # as SQS: the whole batch is refused
            raise QueueRefusedError(f"{len(messages)} messages refused: {too_long} over {QUEUE_MESSAGE_BYTES} bytes")
        if not messages:
            return
        try:
            with self._transaction() as db:
                now = _now_ms()
                if self.spec.fifo:
                    db.execute("DELETE FROM queue_dedupe WHERE queue = ? AND expires_at_ms <= ?", (self.name, now))
                for message in messages:
                    if self.spec.fifo:
                        fresh = db.execute(
                            "INSERT OR IGNORE INTO queue_dedupe (queue, dedupe, expires_at_ms) VALUES (?, ?, ?)",
                            (self.name, message.dedupe, now + DEDUPE_WINDOW_MS),
                        ).rowcount
                        if not fresh:
                            continue
                    self._insert(db, str(uuid.uuid4()), message.body, message.group, message.dedupe, now, now)
        except sqlite3.Error as error:
            raise QueueRefusedError(f"{len(messages)} messages refused: {type(error).__name__}") from error
        self._signal.notify()

    def receive(self, max_messages: int = 10, wait_s: float = 0) -> list[Received]:
        deadline = time.monotonic() + wait_s
        while True:
            seen = self._signal.generation
            received = self._receive_now(max(1, max_messages))
            remaining = deadline - time.monotonic()
            if received or remaining <= 0:
                return received
            with self._signal.condition:
                if self._signal.generation == seen:
                    self._signal.condition.wait(min(POLL_S, remaining))

    def delete(self, receipts: Sequence[str]) -> None:
        if not receipts:
            return
        with self._transaction() as db:
            for row in self._held(db, receipts, _now_ms()):
                self._remove(db, row)

    def release(self, receipts: Sequence[str]) -> None:
        if not receipts:
            return
        with self._transaction() as db:
            now = _now_ms()
            for row in self._held(db, receipts, now):
                db.execute(
                    "UPDATE queue_messages SET visible_at_ms = ?,"
                    " ready_at_ms = CASE WHEN ready_at_ms IS NULL THEN NULL ELSE ? END WHERE seq = ?",
                    (now, now, row["seq"]),
                )
        self._signal.notify()

    def _held(self, db: sqlite3.Connection, receipts: Sequence[str], now: int) -> Iterator[sqlite3.Row]:
        """The messages these receipts still hold (in flight, this delivery's receipt); stale receipts give none."""
        for receipt in receipts:
            row = self._in_flight(db, receipt, now)
            if row is not None:
                yield row

    def depth(self) -> int:
        row = self._connection().execute("SELECT COUNT(*) FROM queue_messages WHERE queue = ?", (self.name,)).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ dead letters

    def dead_letter_count(self) -> int:
        row = (
            self._connection()
            .execute("SELECT COUNT(*) FROM queue_dead_letters WHERE queue = ?", (self.spec.dead_letter,))
            .fetchone()
        )
        return int(row[0])

    def sweep_dead_letters(self, now_ms: int) -> int:
        """Drop dead letters older than the retention period, as an SQS dead-letter queue does (14 days)."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM queue_dead_letters WHERE queue = ? AND dead_at_ms < ?",
                (self.spec.dead_letter, now_ms - self.spec.retention_s * 1000),
            )
        return int(cursor.rowcount)

    def dead_letters(self) -> list[DeadLetter]:
        rows = self._connection().execute(
            "SELECT * FROM queue_dead_letters WHERE queue = ? ORDER BY seq", (self.spec.dead_letter,)
        )
        return [
            DeadLetter(
                message_id=row["message_id"],
                body=row["body"],
                receive_count=row["receive_count"],
                group=row["grp"],
                sent_at_ms=row["sent_at_ms"],
                dedupe=row["dedupe"],
                reason=row["reason"],
                dead_at_ms=row["dead_at_ms"],
            )
            for row in rows
        ]

    def redrive(self, message_ids: Sequence[str] | None = None) -> int:
        """Put dead letters (all, or these) back at the end of the queue with their message ids, as new: receive
        count 0, retention counted from now."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT * FROM queue_dead_letters WHERE queue = ? ORDER BY seq", (self.spec.dead_letter,)
            ).fetchall()
            wanted = None if message_ids is None else set(message_ids)
            now, moved = _now_ms(), 0
            for row in rows:
                if wanted is not None and row["message_id"] not in wanted:
                    continue
                self._insert(db, row["message_id"], row["body"], row["grp"], row["dedupe"], row["sent_at_ms"], now)
                db.execute("DELETE FROM queue_dead_letters WHERE seq = ?", (row["seq"],))
                moved += 1
        if moved:
            logger.info("dead letters redriven", extra={"queue": self.name, "count": moved})
            self._signal.notify()
        return moved

    # ------------------------------------------------------------------ inside a transaction

    def _receive_now(self, max_messages: int) -> list[Received]:
        now = _now_ms()
        db = self._connection()
        ready = db.execute(
            "SELECT 1 FROM queue_messages WHERE queue = ? AND ready_at_ms <= ? LIMIT 1", (self.name, now)
        ).fetchone()
        expired = db.execute(
            "SELECT 1 FROM queue_messages WHERE queue = ? AND expires_at_ms <= ? LIMIT 1", (self.name, now)
        ).fetchone()
        if ready is None and expired is None:
            return []  # nothing to hand out: no write lock taken
        received: list[Received] = []
        with self._transaction() as db:
            now = _now_ms()
            if expired is not None:
                self._expire(db, now)
            while len(received) < max_messages:
                candidates = db.execute(
                    f"SELECT {_COLUMNS} FROM queue_messages WHERE queue = ? AND ready_at_ms <= ?"  # noqa: S608
                    " ORDER BY ready_at_ms, seq LIMIT ?",
                    (self.name, now, max_messages - len(received)),
                ).fetchall()
                if not candidates:
                    break
                for row in candidates:
                    if len(received) >= max_messages:
                        break
                    if row["receive_count"] >= self.spec.max_receive_count:
                        self._dead_letter(db, row, now)
                        continue
                    received.append(self._deliver(db, row, now, head=True))
                    if self.spec.fifo:
                        received += self._followers(db, row, now, max_messages - len(received))
        return received

    def _followers(self, db: sqlite3.Connection, head: sqlite3.Row, now: int, limit: int) -> list[Received]:
        """The messages after a FIFO head in its group, in order, up to the first one not deliverable now."""
        if limit <= 0:
            return []
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM queue_messages WHERE queue = ? AND grp = ? AND seq > ?"  # noqa: S608
            " ORDER BY seq LIMIT ?",
            (self.name, head["grp"], head["seq"], limit),
        ).fetchall()
        taken = []
        for row in rows:
            if row["visible_at_ms"] > now or row["receive_count"] >= self.spec.max_receive_count:
                break  # in flight (released head) or due for the dead letters, which happens when it is head
            taken.append(self._deliver(db, row, now, head=False))
        return taken

    def _deliver(self, db: sqlite3.Connection, row: sqlite3.Row, now: int, *, head: bool) -> Received:
        receipt = uuid.uuid4().hex
        visible_at = now + self.visibility_ms
        db.execute(
            "UPDATE queue_messages SET receive_count = receive_count + 1, receipt = ?, visible_at_ms = ?,"
            " ready_at_ms = ? WHERE seq = ?",
            (receipt, visible_at, visible_at if head else None, row["seq"]),
        )
        return Received(
            message_id=row["message_id"],
            receipt=receipt,
            body=row["body"],
            receive_count=row["receive_count"] + 1,
            group=row["grp"],
            sent_at_ms=row["sent_at_ms"],
            dedupe=row["dedupe"],
        )

    def _dead_letter(self, db: sqlite3.Connection, row: sqlite3.Row, now: int) -> None:
        db.execute(
            "INSERT INTO queue_dead_letters (queue, source, message_id, body, grp, dedupe, sent_at_ms, receive_count,"
            " reason, dead_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'max_receive_count', ?)",
            (
                self.spec.dead_letter,
                self.name,
                row["message_id"],
                row["body"],
                row["grp"],
                row["dedupe"],
                row["sent_at_ms"],
                row["receive_count"],
                now,
            ),
        )
        self._remove(db, row)
        logger.warning(
            "queue message dead-lettered",
            extra={"queue": self.name, "message_id": row["message_id"], "receive_count": row["receive_count"]},
        )

    def _expire(self, db: sqlite3.Connection, now: int) -> None:
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM queue_messages WHERE queue = ? AND expires_at_ms <= ?",  # noqa: S608
            (self.name, now),
        ).fetchall()
        for row in rows:
            self._remove(db, row)
        if rows:
            self.expired += len(rows)
            logger.warning(
                "queue messages expired unread",
                extra={"queue": self.name, "message_ids": [row["message_id"] for row in rows]},
            )

    def _remove(self, db: sqlite3.Connection, row: sqlite3.Row) -> None:
        """Delete a message; its FIFO group's oldest message is then the group's head (unchanged when the
        deleted one was not the head)."""
        db.execute("DELETE FROM queue_messages WHERE seq = ?", (row["seq"],))
        if self.spec.fifo:
            db.execute(
                "UPDATE queue_messages SET ready_at_ms = visible_at_ms WHERE ready_at_ms IS NULL AND seq ="
                " (SELECT seq FROM queue_messages WHERE queue = ? AND grp = ? ORDER BY seq LIMIT 1)",
                (self.name, row["grp"]),
            )

    def _in_flight(self, db: sqlite3.Connection, receipt: str, now: int) -> sqlite3.Row | None:
        """The message this receipt holds now, or None (deleted, redelivered, or its timeout passed)."""
        row: sqlite3.Row | None = db.execute(
            f"SELECT {_COLUMNS} FROM queue_messages WHERE receipt = ? AND queue = ?",  # noqa: S608
            (receipt, self.name),
        ).fetchone()
        return row if row is not None and row["visible_at_ms"] > now else None

    def _insert(
        self,
        db: sqlite3.Connection,
        message_id: str,
        body: str,
        group: str | None,
        dedupe: str | None,
        sent_at_ms: int,
        now: int,
    ) -> None:
        head = True
        if self.spec.fifo:
            head = (
                db.execute(
                    "SELECT 1 FROM queue_messages WHERE queue = ? AND grp = ? LIMIT 1", (self.name, group)
                ).fetchone()
                is None
            )
        db.execute(
            "INSERT INTO queue_messages (queue, message_id, body, grp, dedupe, sent_at_ms, expires_at_ms,"
            " visible_at_ms, ready_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.name,
                message_id,
                body,
                group,
                dedupe,
                sent_at_ms,
                now + self.spec.retention_s * 1000,
                now,
                now if head else None,
            ),
        )

    # ------------------------------------------------------------------ connections

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (a forked child never uses its parent's)."""
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "db", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True)
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        self._local.db = (os.getpid(), db)
        return db

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate(self._connection(), self.path)
