"""Timers on one machine: the two state machines' executions as rows, fired by one scheduler thread.

`LocalTimers` is the local adapter of the timer port (`intake.sla.timers.TimerControl`): `start` adds an
execution by name (a second start of the same name changes nothing, as Step Functions' ExecutionAlreadyExists),
`stop` ends it. `Scheduler` is the one thread that runs every execution's next step at its instant, the way the
ASL files do in AWS (no thread per timer; the rows survive a restart, and a step past due fires at once):

- SLA timer (`sla/state_machine.asl.json`): each warning (read the timer item; still running with this generation?
  then a `warning` notification), the deadline (the ASL's own conditional `MarkBreached` update: exactly one of it
  and an agent's response wins; won → a `breach` notification), each escalation level (still breached with this
  generation? then an `escalation` notification); a check that fails settles the execution.
- Deliver-later (`notify/deliver_later.asl.json`): at `at`, put `body` on the notifications queue.

A step is delivered at least once: a crash between its notification and the row's advance sends it again after
the restart, and the notifier sends each notice once (its claim), as it does for Step Functions' retries.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from intake.observability import logger
from intake.queues import Outgoing, Queue
from intake.sla.timers import DEFINITION_PATH

SLA = "sla-timer"
LATER = "deliver-later"
KEPT_S = 90 * 86400
RETRY_S = 2.0  # a step whose table or queue failed is tried again this much later
IDLE_S = 0.5  # the scheduler looks at least this often: executions started by the other process of `intake serve`

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    machine TEXT NOT NULL,
    name TEXT NOT NULL,
    input TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    fire_at REAL,
    state TEXT NOT NULL DEFAULT 'running',
    started_at REAL NOT NULL,
    ended_at REAL,
    PRIMARY KEY (machine, name)
);
CREATE INDEX IF NOT EXISTS executions_due ON executions (fire_at) WHERE state = 'running';
"""


def _instant(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def steps(machine: str, execution: dict[str, Any]) -> list[tuple[str, float, dict[str, Any]]]:
    """An execution's steps in order: (kind, instant, what the step needs)."""
    if machine == LATER:
        return [("deliver", _instant(execution["at"]), {})]
    return [
        *(("warning", _instant(w["at"]), w) for w in execution["warnings"]),
        ("deadline", _instant(execution["due_at"]), {}),
        *(("escalation", _instant(e["at"]), e) for e in execution["escalations"]),
    ]


class _Database:
    """One SQLite file, a connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        with self.connection() as db:
            db.executescript(_SCHEMA)

    def connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db


class LocalTimers:
    """The executions of one machine (`SLA` or `LATER`), by name."""

    def __init__(self, database: _Database, machine: str, wake: threading.Event) -> None:
        self._database, self.machine, self._wake = database, machine, wake

    def start(self, name: str, execution_input: dict[str, Any]) -> None:
        first = steps(self.machine, execution_input)[0][1]
        self._database.connection().execute(
            "INSERT OR IGNORE INTO executions (machine, name, input, fire_at, started_at) VALUES (?, ?, ?, ?, ?)",
            (self.machine, name, json.dumps(execution_input), first, time.time()),
        )
        logger.info("timer started", extra={"execution": name})
        self._wake.set()

    def stop(self, name: str, cause: str) -> None:
        self._database.connection().execute(
            "UPDATE executions SET state = 'stopped', ended_at = ?"
            " WHERE machine = ? AND name = ? AND state = 'running'",
            (time.time(), self.machine, name),
        )
        logger.info("timer stopped", extra={"execution": name})

    def state(self, name: str) -> str | None:
        """`running`, `succeeded`, `settled`, `stopped`; None when never started."""
        row = (
            self._database.connection()
            .execute("SELECT state FROM executions WHERE machine = ? AND name = ?", (self.machine, name))
            .fetchone()
        )
        return None if row is None else str(row[0])


class Scheduler(threading.Thread):
    """Runs every machine's due steps; `table` is the ticket table's item API (the ASL's DynamoDB tasks), `queue`
    the notifications queue (its SQS task)."""

    def __init__(
        self,
        path: Path,
        table: Any,
        table_name: str,
        queue: Queue,
        stop: threading.Event,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name="timer-scheduler", daemon=True)
        self._database = _Database(path)
        self._table, self._table_name, self._queue = table, table_name, queue
        self._stopping, self._clock = stop, clock
        # Set by `wake` and every start, cleared before each round: a start between a round's last look at the rows
        # and its wait is not lost (a Condition's notify there was, and the new step fired up to IDLE_S late)
        self._wake = threading.Event()
        self.ticking = threading.Event()  # set once the first round ran: the scheduler is up
        breach = json.loads(DEFINITION_PATH.read_text(encoding="utf-8"))["States"]["MarkBreached"]["Parameters"]
        self._breach = {k: breach[k] for k in ("ConditionExpression", "UpdateExpression", "ExpressionAttributeNames")}

    def timers(self, machine: str) -> LocalTimers:
        return LocalTimers(self._database, machine, self._wake)

    def sweep(self, now: float) -> int:
        """Forget executions that ended more than KEPT_S ago (Step Functions keeps a finished one 90 days)."""
        cursor = self._database.connection().execute(
            "DELETE FROM executions WHERE state <> 'running' AND ended_at < ?", (now - KEPT_S,)
        )
        return int(cursor.rowcount)

    def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before the round reads the rows: a start from here on makes the wait below return
            try:
                next_at = self.run_due()
            except sqlite3.Error:
                logger.exception("timer table unavailable")
                next_at = self._clock() + RETRY_S
            self.ticking.set()
            wait = IDLE_S if next_at is None else min(IDLE_S, max(0.0, next_at - self._clock()))
            self._wake.wait(wait)

    def wake(self) -> None:
        self._wake.set()

    def run_due(self) -> float | None:
        """Run every step due now; returns the instant of the next one (None: nothing is running)."""
        db = self._database.connection()
        while True:
            now = self._clock()
            due = db.execute(
                "SELECT machine, name, input, step FROM executions WHERE state = 'running' AND fire_at <= ?"
                " ORDER BY fire_at LIMIT 100",
                (now,),
            ).fetchall()
            if not due:
                break
            for machine, name, execution, step in due:
                self._advance(db, machine, name, json.loads(execution), step)
        row = db.execute("SELECT MIN(fire_at) FROM executions WHERE state = 'running'").fetchone()
        return None if row[0] is None else float(row[0])

    def _advance(self, db: sqlite3.Connection, machine: str, name: str, execution: dict[str, Any], step: int) -> None:
        planned = steps(machine, execution)
        kind, _, detail = planned[step]
        try:
            go_on = self._run_step(kind, execution, detail)
        except Exception:  # the table or the queue failed: this step again, a little later (Retry in the ASL)
            logger.exception("timer step failed; retried", extra={"execution": name, "step": kind})
            db.execute(
                "UPDATE executions SET fire_at = ? WHERE machine = ? AND name = ? AND state = 'running'",
                (self._clock() + RETRY_S, machine, name),
            )
            return
        following = step + 1
        if go_on and following < len(planned):
            db.execute(
                "UPDATE executions SET step = ?, fire_at = ? WHERE machine = ? AND name = ? AND state = 'running'",
                (following, planned[following][1], machine, name),
            )
            return
        db.execute(
            "UPDATE executions SET state = ?, ended_at = ?, fire_at = NULL"
            " WHERE machine = ? AND name = ? AND state = 'running'",
            ("succeeded" if go_on else "settled", self._clock(), machine, name),
        )

    def _run_step(self, kind: str, execution: dict[str, Any], detail: dict[str, Any]) -> bool:
        """One step; False when the timer is settled (nothing more to send)."""
        if kind == "deliver":
            self._send(execution["body"])
            return True
        notice = {k: execution[k] for k in ("ticket_id", "target", "generation", "due_at")}
        if kind == "deadline":
            if not self._mark_breached(execution):
                return False
            self._send({"kind": "breach", **notice})
            return True
        if not self._still(execution, "running" if kind == "warning" else "breached"):
            return False
        if kind == "warning":
            self._send({"kind": "warning", **notice, "label": detail["label"]})
        else:
            self._send({"kind": "escalation", **notice, "level": detail["level"]})
        return True

    def _mark_breached(self, execution: dict[str, Any]) -> bool:
        entered = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        try:
            self._table.update_item(
                TableName=self._table_name,
                Key=self._key(execution),
                ExpressionAttributeValues={
                    ":g": {"N": execution["generation_text"]},
                    ":running": {"S": "running"},
                    ":breached": {"S": "breached"},
                    ":now": {"S": entered},
                },
                **self._breach,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # Lost, or won by this very step before a crash or a failed send (the ASL persists MarkBreached and
            # SendBreach as two states; here a retry runs the step again): breached with this generation goes on.
            return self._still(execution, "breached")
        return True

    def _still(self, execution: dict[str, Any], state: str) -> bool:
        """Whether the timer item is in `state` with this execution's generation (the ASL's Choice states)."""
        item = self._table.get_item(TableName=self._table_name, Key=self._key(execution), ConsistentRead=True)
        found = item.get("Item", {})
        generation = found.get("generation") == {"N": execution["generation_text"]}
        return bool(generation and found.get("state") == {"S": state})

    @staticmethod
    def _key(execution: dict[str, Any]) -> dict[str, Any]:
        return {"PK": {"S": execution["pk"]}, "SK": {"S": execution["sk"]}}

    def _send(self, body: Any) -> None:
        """As the ASL's `sqs:sendMessage` task: a string body is sent as it is, any other value as its JSON."""
        self._queue.send([Outgoing(body=body if isinstance(body, str) else json.dumps(body))])
