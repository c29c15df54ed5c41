"""The timer contract (`intake.sla`'s docstring): every scenario on the real ASL executed by moto (Step Functions +
DynamoDB + SQS) and on the local `Scheduler` (its thread, `SqliteTable`, `SqliteQueue`), with the same assertions.

Deadlines are one to four seconds away and both backends really wait. Timing is asserted as the contract states it
(nothing before its instant, in order, once), with two allowances:
- moto's Wait sleeps `int(seconds until the timestamp)`, so it may end up to a second early (AWS waits until the
  timestamp); `Backend.early_s` is that second for moto and 0 for the local scheduler;
- a busy machine may be late: up to `LATE_S`.
moto is one emulated deployment for the module; every test makes its own tickets and execution names.
The last two tests are the local scheduler's own: its rows survive a crash (a new scheduler fires what is due,
once), and a timer started just as the scheduler goes to sleep still fires on time.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from ulid import ULID

from intake.config import SlaTargetName
from intake.local.queue import SqliteQueue
from intake.local.table import SqliteTable
from intake.local.timers import IDLE_S, LATER, SLA, Scheduler
from intake.model import SlaTarget, SlaTimer, TimerState
from intake.queues import Queue, SqsQueue
from intake.resources import NOTIFICATIONS_QUEUE, table_name
from intake.sla.policy import TimerPlan, execution_name
from intake.sla.timers import TimerControl, Timers
from intake.store import Store
from tests.moto_stack import REGION, create_resources, emulated

TARGET: SlaTargetName = "first_response"
LATE_S = 3.0  # how late a notification may be on a busy test machine
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION")


# ------------------------------------------------------------------ time


class Clock:
    """Instants in whole seconds (as the contract's `...Z` stamps are) from the next whole second at least 0.2 s
    away; `at(s)` is the stamp, `moment(s)` the datetime, `epoch(s)` the POSIX time of `zero + s`."""

    def __init__(self) -> None:
        self.zero = datetime.fromtimestamp(math.ceil(time.time() + 0.2), UTC)

    def moment(self, seconds: float) -> datetime:
        return self.zero + timedelta(seconds=seconds)

    def at(self, seconds: float) -> str:
        return self.moment(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")

    def epoch(self, seconds: float) -> float:
        return self.moment(seconds).timestamp()


# ------------------------------------------------------------------ the backends


@dataclass(frozen=True)
class Notice:
    body: dict[str, Any]
    sent_at: float  # POSIX seconds (the queue's SentTimestamp)


@dataclass
class Backend:
    """One timer backend behind the small interface the scenarios need."""

    kind: str  # "moto" or "local"
    table: Any  # the ticket table's item API (boto3 DynamoDB client or SqliteTable)
    table_name: str
    sla: TimerControl
    later: TimerControl
    queue: Queue  # the notifications queue
    ended: Callable[[str, str], bool]  # (machine, execution name) → no longer running
    early_s: float  # how early a Wait may end on this backend
    received: list[Notice] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return Store(self.table, self.table_name)

    def collect(self) -> list[Notice]:
        """Take every visible notification off the queue; all received so far, in the order they were sent."""
        self.received += taken(self.queue)
        self.received.sort(key=lambda notice: notice.sent_at)  # stable: ties keep the order received
        return list(self.received)

    def wait_for(self, count: int, within_s: float = 10) -> list[Notice]:
        """All notifications, once there are `count` (or `within_s` has passed)."""
        deadline = time.monotonic() + within_s
        while len(self.collect()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)

    def settle(self, machine: str, name: str, within_s: float = 10) -> list[Notice]:
        """All notifications, once the execution has ended (so it sends nothing more)."""
        deadline = time.monotonic() + within_s
        while not self.ended(machine, name):
            assert time.monotonic() < deadline, f"{name} still running after {within_s} s"
            time.sleep(0.05)
        return self.collect()

    def quiet_until(self, epoch: float) -> list[Notice]:
        """All notifications, once `epoch` has passed."""
        while time.time() < epoch:
            self.collect()
            time.sleep(0.05)
        return self.collect()


def taken(queue: Queue) -> list[Notice]:
    """Every visible message, off the queue, as parsed bodies."""
    notices: list[Notice] = []
    while batch := queue.receive(10):
        queue.delete([m.receipt for m in batch])
        notices += [Notice(json.loads(m.body), m.sent_at_ms / 1000) for m in batch]
    return notices


@dataclass(frozen=True)
class Moto:
    """One emulated deployment for the module (creating it takes a second): each test has its own tickets and
    execution names, and leaves no execution running."""

    session: boto3.session.Session
    table: str
    notifications_url: str
    machines: dict[str, Timers]


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        for variable in (*AWS_VARIABLES, "TZ"):  # emulated() sets these: give them back afterwards
            monkeypatch.setenv(variable, os.environ.get(variable, "UTC" if variable == "TZ" else "testing"))
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        with emulated():
            time.tzset()  # moto compares Wait timestamps with the naive local clock: TZ=UTC must apply
            resources = create_resources("tcontract")
            session = boto3.session.Session(region_name=REGION)
            sfn = session.client("stepfunctions")
            machines = {SLA: Timers(sfn, resources.state_machine_arn), LATER: Timers(sfn, resources.later_machine_arn)}
            yield Moto(session, resources.table, resources.queue_urls[NOTIFICATIONS_QUEUE.name], machines)
    time.tzset()


def _on_moto(moto: Moto) -> Iterator[Backend]:
    sfn = moto.session.client("stepfunctions")
    machines = moto.machines

    def history_began(machine: str, name: str) -> bool:
        arn = machines[machine].execution_arn(name)
        return bool(sfn.get_execution_history(executionArn=arn)["events"])

    def ended(machine: str, name: str) -> bool:
        described = sfn.describe_execution(executionArn=machines[machine].execution_arn(name))
        return str(described["status"]) != "RUNNING"

    class MotoSla:
        """`Timers` on the SLA machine; moto fails (inside, AttributeError) to stop an execution whose thread has
        not begun, so stop waits for its history first (AWS has no such gap)."""

        def start(self, name: str, execution_input: dict[str, Any]) -> None:
            machines[SLA].start(name, execution_input)

        def stop(self, name: str, cause: str) -> None:
            deadline = time.monotonic() + 10
            while not history_began(SLA, name) and time.monotonic() < deadline:
                time.sleep(0.01)
            machines[SLA].stop(name, cause)

    queue = SqsQueue(moto.session.client("sqs"), moto.notifications_url)
    assert taken(queue) == []  # the tests before left nothing behind
    yield Backend(
        kind="moto",
        table=moto.session.client("dynamodb"),
        table_name=moto.table,
        sla=MotoSla(),
        later=machines[LATER],
        queue=queue,
        ended=ended,
        early_s=1.0,
    )
    for timers in machines.values():  # no execution may outlive its test (nor, in a thread, moto)
        listed = sfn.list_executions(stateMachineArn=timers.state_machine_arn, statusFilter="RUNNING")
        for execution in listed["executions"]:
            sfn.stop_execution(executionArn=execution["executionArn"])
    taken(queue)


def _on_local(tmp_path: Path) -> Iterator[Backend]:
    table = SqliteTable(tmp_path / "tickets.db")
    queue = SqliteQueue(tmp_path / "queues.db", NOTIFICATIONS_QUEUE)
    name = table_name("tcontract")
    stop = threading.Event()
    scheduler = Scheduler(tmp_path / "timers.db", table, name, queue, stop)
    scheduler.start()
    assert scheduler.ticking.wait(5)
    machines = {SLA: scheduler.timers(SLA), LATER: scheduler.timers(LATER)}
    yield Backend(
        kind="local",
        table=table,
        table_name=name,
        sla=machines[SLA],
        later=machines[LATER],
        queue=queue,
        ended=lambda machine, execution: machines[machine].state(execution) != "running",
        early_s=0.0,
    )
    stop.set()
    scheduler.wake()
    scheduler.join(timeout=10)
    assert not scheduler.is_alive()
    table.close()


@pytest.fixture(params=["moto", "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The same timer contract on Step Functions executing the ASL (moto) or on the local scheduler thread."""
    if request.param == "moto":
        yield from _on_moto(request.getfixturevalue("moto"))
    else:
        yield from _on_local(tmp_path)


# ------------------------------------------------------------------ builders


def planned(
    clock: Clock,
    *,
    due: float,
    warnings: tuple[tuple[str, float], ...] = (),
    escalations: tuple[tuple[int, float], ...] = (),
    generation: int = 1,
    ticket: str | None = None,
) -> SlaTimer:
    """The timer item of one generation of a new ticket's (or `ticket`'s) timer, its `execution` made by the real
    `TimerPlan` (instants in seconds from the clock's zero)."""
    within = timedelta(seconds=60)
    plan = TimerPlan(
        target=TARGET,
        generation=generation,
        policy="urgent",
        time="calendar",
        started_at=clock.moment(due) - within,
        due_at=clock.moment(due),
        within=within,
        counted=within,
        warnings=tuple((label, clock.moment(s)) for label, s in warnings),
        escalations=tuple((level, clock.moment(s), ("lead@example.com",)) for level, s in escalations),
    )
    return SlaTimer(
        target=SlaTarget.FIRST_RESPONSE,
        generation=generation,
        state=TimerState.RUNNING,
        policy=plan.policy,
        time=plan.time,
        started_at=plan.started_at,
        due_at=plan.due_at,
        target_s=int(within.total_seconds()),
        execution=plan.execution_input(ticket or str(ULID())),
    )


def start(backend: Backend, timer: SlaTimer, *, replaces: int | None = None) -> str:
    """What the tracker does: write the generation's item, then start its execution; returns the execution name."""
    backend.store.put_timer(ticket_of(timer), timer, replaces=replaces)
    name = execution_name(ticket_of(timer), TARGET, timer.generation)
    backend.sla.start(name, timer.execution)
    return name


def ticket_of(timer: SlaTimer) -> str:
    return str(timer.execution["ticket_id"])


def item(backend: Backend, timer: SlaTimer) -> dict[str, Any]:
    return timer_item(backend.table, backend.table_name, ticket_of(timer))


def timer_item(table: Any, name: str, ticket: str) -> dict[str, Any]:
    key = {"PK": {"S": f"TICKET#{ticket}"}, "SK": {"S": f"SLA#{TARGET}"}}
    found: dict[str, Any] = table.get_item(TableName=name, Key=key, ConsistentRead=True)["Item"]
    return found


def notice(timer: SlaTimer, kind: str, **detail: Any) -> dict[str, Any]:
    """A notification exactly as the contract has it."""
    execution = timer.execution
    fields = {k: execution[k] for k in ("ticket_id", "target", "generation", "due_at")}
    return {"kind": kind, **fields, **detail}


def bodies(notices: list[Notice]) -> list[dict[str, Any]]:
    return [n.body for n in notices]


def assert_on_time(backend: Backend, sent: Notice, instant: float) -> None:
    assert instant - backend.early_s <= sent.sent_at <= instant + LATE_S, (sent.body, sent.sent_at - instant)


def now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ 1. untouched


def test_untouched_timer_warns_breaches_and_escalates_once_each_in_order(backend: Backend) -> None:
    clock = Clock()
    timer = planned(clock, warnings=(("50%", 0), ("80%", 1)), due=2, escalations=((1, 3), (2, 4)))

    name = start(backend, timer)
    sent = backend.settle(SLA, name)

    assert bodies(sent) == [
        notice(timer, "warning", label="50%"),
        notice(timer, "warning", label="80%"),
        notice(timer, "breach"),
        notice(timer, "escalation", level=1),
        notice(timer, "escalation", level=2),
    ]
    for notified, seconds in zip(sent, (0, 1, 2, 3, 4), strict=True):
        assert_on_time(backend, notified, clock.epoch(seconds))
    after = item(backend, timer)
    assert (after["state"], after["generation"]) == ({"S": "breached"}, {"N": "1"})
    breached_at = datetime.fromisoformat(after["breached_at"]["S"])  # ASL: EnteredTime (moto +00:00, AWS ...Z)
    assert clock.epoch(2) - backend.early_s <= breached_at.timestamp() <= clock.epoch(2) + LATE_S


# ------------------------------------------------------------------ 2-4. an agent's response


def test_response_before_the_warning_sends_nothing(backend: Backend) -> None:
    clock = Clock()
    timer = planned(clock, warnings=(("50%", 1),), due=2, escalations=((1, 3),))
    name = start(backend, timer)

    assert backend.store.end_timer(ticket_of(timer), timer, "met", now())
    sent = backend.settle(SLA, name)

    assert sent == []
    after = item(backend, timer)
    assert after["state"] == {"S": "met"}
    assert "breached_at" not in after


def test_response_after_the_warning_wins_the_deadline(backend: Backend) -> None:
    clock = Clock()
    timer = planned(clock, warnings=(("50%", 0),), due=2, escalations=((1, 3),))
    name = start(backend, timer)
    assert bodies(backend.wait_for(1)) == [notice(timer, "warning", label="50%")]

    answered = backend.store.end_timer(ticket_of(timer), timer, "met", now())  # before the deadline
    sent = backend.settle(SLA, name)

    assert answered
    assert bodies(sent) == [notice(timer, "warning", label="50%")]  # the breach update lost
    after = item(backend, timer)
    assert after["state"] == {"S": "met"}
    assert "breached_at" not in after


def test_response_after_the_breach_stops_the_escalations(backend: Backend) -> None:
    clock = Clock()
    timer = planned(clock, due=0, escalations=((1, 2), (2, 3)))
    name = start(backend, timer)
    assert bodies(backend.wait_for(1)) == [notice(timer, "breach")]

    # The tracker's `_answer`: `met` loses to the breach, so the breached generation is stopped (no StopExecution:
    # the machine's own re-read before each level has to find it)
    assert not backend.store.end_timer(ticket_of(timer), timer, "met", now())
    [breached] = backend.store.timers(ticket_of(timer))
    assert breached.state == TimerState.BREACHED
    assert backend.store.end_timer(ticket_of(timer), breached, "stopped", now())
    sent = backend.settle(SLA, name)

    assert bodies(sent) == [notice(timer, "breach")]
    after = item(backend, timer)
    assert after["state"] == {"S": "stopped"}
    assert "breached_at" in after


# ------------------------------------------------------------------ 5. a newer generation


def test_newer_generation_silences_the_old_execution(backend: Backend) -> None:
    clock = Clock()
    first = planned(clock, warnings=(("50%", 0),), due=2, escalations=((1, 3),))
    name = start(backend, first)
    assert bodies(backend.wait_for(1)) == [notice(first, "warning", label="50%")]

    # Restarted (resumed, priority changed): the new generation's item replaces the old one (not started here)
    second = planned(clock, due=600, generation=2, ticket=ticket_of(first))
    backend.store.put_timer(ticket_of(first), second, replaces=1)
    sent = backend.settle(SLA, name)

    assert bodies(sent) == [notice(first, "warning", label="50%")]
    after = item(backend, second)
    assert (after["state"], after["generation"]) == ({"S": "running"}, {"N": "2"})
    assert "breached_at" not in after


# ------------------------------------------------------------------ 6. start twice, stop


def test_starting_the_same_execution_twice_runs_it_once(backend: Backend) -> None:
    clock = Clock()
    timer = planned(clock, warnings=(("50%", 0),), due=1, escalations=((1, 2),))

    name = start(backend, timer)
    backend.sla.start(name, timer.execution)  # a retried worker starts it again
    backend.settle(SLA, name)
    backend.sla.start(name, timer.execution)  # a late retry, after it ended
    sent = backend.quiet_until(time.time() + 0.5)

    assert bodies(sent) == [
        notice(timer, "warning", label="50%"),
        notice(timer, "breach"),
        notice(timer, "escalation", level=1),
    ]


def test_stopped_execution_sends_nothing_more(backend: Backend) -> None:
    clock = Clock()
    # the deadline 4 s after the warning (3 s on moto): time enough to stop it in between on a busy machine
    timer = planned(clock, warnings=(("50%", 0),), due=4)
    name = start(backend, timer)
    assert bodies(backend.wait_for(1)) == [notice(timer, "warning", label="50%")]

    backend.sla.stop(name, "resolved")
    backend.sla.start(name, timer.execution)  # a late retry: the stopped execution stands
    sent = backend.quiet_until(clock.epoch(4) + 1)  # past the deadline it would have breached at

    assert bodies(sent) == [notice(timer, "warning", label="50%")]
    assert backend.ended(SLA, name)
    assert item(backend, timer)["state"] == {"S": "running"}  # stopping an execution does not touch the item


# ------------------------------------------------------------------ 7. deliver-later


def test_deliver_later_puts_the_body_on_the_queue_once_at_its_instant(backend: Backend) -> None:
    clock = Clock()
    ticket = str(ULID())
    survey = {"kind": "survey", "ticket_id": ticket}
    text = {"kind": "survey", "ticket_id": ticket, "sent_as": "text"}
    # `body` as the ASL's sqs:sendMessage takes it: an object goes as its JSON, a string as it is
    executions = {f"survey-{ticket}-object": survey, f"survey-{ticket}-text": json.dumps(text)}

    for name, body in executions.items():
        backend.later.start(name, {"at": clock.at(1), "body": body})
        backend.later.start(name, {"at": clock.at(1), "body": body})  # a retry
    assert backend.wait_for(1, within_s=0.5) == []  # not before `at`
    for name in executions:
        backend.settle(LATER, name)
    sent = backend.quiet_until(time.time() + 0.5)

    assert sorted(bodies(sent), key=json.dumps) == sorted([survey, text], key=json.dumps)
    for delivered in sent:
        assert_on_time(backend, delivered, clock.epoch(1))


# ------------------------------------------------------------------ 8. local: restart


def test_local_scheduler_after_a_crash_fires_every_due_step_once(tmp_path: Path) -> None:
    """One scheduler starts executions and fires the first warning, then is dropped (a crash: never stopped, no
    thread); after every deadline has passed a new one on the same timers.db fires the rest, each once."""
    table = SqliteTable(tmp_path / "tickets.db")
    queue = SqliteQueue(tmp_path / "queues.db", NOTIFICATIONS_QUEUE)
    name = table_name("tcontract")
    clock = Clock()
    instant = [clock.epoch(0)]  # the schedulers' clock, moved by hand: "after the deadlines passed" without waiting

    def scheduler() -> Scheduler:
        return Scheduler(tmp_path / "timers.db", table, name, queue, threading.Event(), clock=lambda: instant[0])

    timer = planned(clock, warnings=(("50%", 0), ("80%", 1)), due=2, escalations=((1, 3), (2, 4)))
    body = {"kind": "survey", "ticket_id": ticket_of(timer)}
    sla_name = execution_name(ticket_of(timer), TARGET, 1)
    Store(table, name).put_timer(ticket_of(timer), timer, replaces=None)  # type: ignore[arg-type]

    crashed = scheduler()
    crashed.timers(SLA).start(sla_name, timer.execution)
    crashed.timers(LATER).start("survey-1", {"at": clock.at(3), "body": body})
    assert crashed.run_due() == clock.epoch(1)
    before = bodies(taken(queue))
    del crashed

    instant[0] = clock.epoch(10)
    restarted = scheduler()
    assert restarted.run_due() is None  # nothing left running
    assert scheduler().run_due() is None  # and a third start finds nothing to fire again
    after = bodies(taken(queue))

    assert before == [notice(timer, "warning", label="50%")]
    assert after.count(body) == 1
    assert [b for b in after if b != body] == [
        notice(timer, "warning", label="80%"),
        notice(timer, "breach"),
        notice(timer, "escalation", level=1),
        notice(timer, "escalation", level=2),
    ]
    assert restarted.timers(SLA).state(sla_name) == "succeeded"
    assert restarted.timers(LATER).state("survey-1") == "succeeded"
    assert timer_item(table, name, ticket_of(timer))["state"] == {"S": "breached"}
    table.close()


def test_local_scheduler_wakes_for_a_timer_started_just_before_it_waits(tmp_path: Path) -> None:
    """A start between a round's last read of the rows and its wait must not be lost (it was: the step then fired
    when the scheduler next woke, up to IDLE_S late). The scheduler's clock is read last, in `run`, right after
    the round with one far execution running: that is where this clock starts a due one."""
    queue = SqliteQueue(tmp_path / "queues.db", NOTIFICATIONS_QUEUE)
    stop = threading.Event()
    calls: list[float] = []
    body = {"kind": "survey", "ticket_id": str(ULID())}

    def clock() -> float:
        calls.append(time.time())
        if len(calls) == 2:  # the first call is the round's `now`, the second the wait's
            later.start("due-now", {"at": Clock().at(-2), "body": body})
        return calls[-1]

    scheduler = Scheduler(tmp_path / "timers.db", None, "unused", queue, stop, clock=clock)
    later = scheduler.timers(LATER)
    later.start("far", {"at": Clock().at(600), "body": {"kind": "far"}})
    started = time.monotonic()
    scheduler.start()
    try:
        delivered = queue.receive(1, wait_s=IDLE_S + 1)
        waited = time.monotonic() - started
    finally:
        stop.set()
        scheduler.wake()
        scheduler.join(timeout=10)

    assert [json.loads(m.body) for m in delivered] == [body]
    assert waited < 1, f"delivered after {waited:.1f} s"


class RefusingOnce:
    """The notifications queue, refusing the first send of a breach (a full disk, a crash before the send)."""

    def __init__(self, queue: SqliteQueue) -> None:
        self.queue, self.refused = queue, False

    def send(self, messages: Any) -> None:
        if not self.refused and any('"breach"' in m.body for m in messages):
            self.refused = True
            raise sqlite3.OperationalError("database or disk is full")
        self.queue.send(messages)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


def test_local_scheduler_sends_the_breach_and_escalations_after_a_failure_between_update_and_send(
    tmp_path: Path,
) -> None:
    """The breach update committed but its notice was not sent: the retried step finds the item breached with
    this generation and goes on (as Step Functions' separate SendBreach state would), never settling silently."""
    table = SqliteTable(tmp_path / "tickets.db")
    queue = SqliteQueue(tmp_path / "queues.db", NOTIFICATIONS_QUEUE)
    name = table_name("tcontract")
    clock = Clock()
    instant = [clock.epoch(0)]
    refusing = RefusingOnce(queue)
    scheduler = Scheduler(tmp_path / "timers.db", table, name, refusing, threading.Event(), clock=lambda: instant[0])
    timer = planned(clock, warnings=(), due=1, escalations=((1, 2),))
    sla_name = execution_name(ticket_of(timer), TARGET, 1)
    Store(table, name).put_timer(ticket_of(timer), timer, replaces=None)  # type: ignore[arg-type]
    scheduler.timers(SLA).start(sla_name, timer.execution)

    instant[0] = clock.epoch(1)
    scheduler.run_due()  # the update commits, the send fails: retried later
    assert refusing.refused and bodies(taken(queue)) == []
    instant[0] = clock.epoch(10)
    assert scheduler.run_due() is None

    assert bodies(taken(queue)) == [notice(timer, "breach"), notice(timer, "escalation", level=1)]
    assert scheduler.timers(SLA).state(sla_name) == "succeeded"
    table.close()
