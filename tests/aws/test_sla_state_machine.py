"""The SLA timer state machine (`sla/state_machine.asl.json`) executed by moto, and `Timers` starting and stopping it.

Deadlines are a second or a few away: moto's Wait really sleeps. Two moto facts shape the assertions:
- a Wait sleeps `int(seconds until the timestamp)`, so it ends up to a second *early* (AWS waits until the
  timestamp); times are checked to within a second, and a response "just before the deadline" is made while the
  execution is in its deadline Wait, which is the race the conditional update has to settle;
- `$$.State.EnteredTime` is `...+00:00` with microseconds in moto, `...Z` with milliseconds in AWS.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from intake.resources import NOTIFICATIONS_QUEUE, SLA_MACHINE, TABLE
from intake.sla.timers import DEFINITION_PATH, NoTimers, Timers, TimersUnavailableError, definition
from tests.aws.conftest import Stack

TICKET = "01JDZ8Q4V5T6W7X8Y9Z0ABCDEF"
TARGET = "first_response"
ROLE = "arn:aws:iam::123456789012:role/intake-test-sla-timer"
LATE_S = 3  # how late a notification may be on a busy test machine


@pytest.fixture
def sfn(stack: Stack) -> Any:
    time.tzset()  # moto compares Wait timestamps with the naive local clock: TZ=UTC (set by `emulated`) must apply
    return boto3.session.Session().client("stepfunctions")


@pytest.fixture
def timers(stack: Stack, sfn: Any) -> Iterator[Timers]:
    """The state machine as the stack declares it, on moto's table and notifications queue."""
    created = sfn.create_state_machine(
        name=f"intake-test-{SLA_MACHINE}",
        definition=definition(stack.resources.table, stack.resources.queue_urls[NOTIFICATIONS_QUEUE.name]),
        roleArn=ROLE,
        type="STANDARD",
    )
    yield Timers(sfn, created["stateMachineArn"])
    # No execution thread may outlive moto
    for execution in sfn.list_executions(stateMachineArn=created["stateMachineArn"], statusFilter="RUNNING")[
        "executions"
    ]:
        sfn.stop_execution(executionArn=execution["executionArn"])


class Clock:
    """Whole seconds from a second ahead, so that moto's whole-second Waits are as predictable as they get."""

    def __init__(self) -> None:
        self.zero = datetime.fromtimestamp(math.ceil(time.time()) + 1, UTC)

    def at(self, seconds: float) -> str:
        return (self.zero + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def epoch(self, seconds: float) -> float:
        return (self.zero + timedelta(seconds=seconds)).timestamp()


def seed(stack: Stack, due_at: str, *, generation: int = 1, state: str = "running", target: str = TARGET) -> None:
    """The timer item as `intake.store` writes it (the contract's attributes)."""
    stack.dynamodb.put_item(
        TableName=stack.resources.table,
        Item={
            "PK": {"S": f"TICKET#{TICKET}"},
            "SK": {"S": f"SLA#{target}"},
            "target": {"S": target},
            "generation": {"N": str(generation)},
            "state": {"S": state},
            "due_at": {"S": due_at.replace("Z", ".000000Z")},
            "started_at": {"S": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
            "policy": {"S": "urgent"},
            "time": {"S": "business"},
        },
    )


def timer_item(stack: Stack, target: str = TARGET) -> dict[str, Any]:
    key = {"PK": {"S": f"TICKET#{TICKET}"}, "SK": {"S": f"SLA#{target}"}}
    item: dict[str, Any] = stack.dynamodb.get_item(TableName=stack.resources.table, Key=key, ConsistentRead=True)[
        "Item"
    ]
    return item


def set_state(stack: Stack, state: str, *, generation: int | None = None) -> None:
    """What an agent's response (`met`) or a restart (a new generation) does to the item."""
    names = {"#state": "state"}
    values: dict[str, Any] = {":s": {"S": state}}
    update = "SET #state = :s"
    if generation is not None:
        update += ", generation = :g"
        values[":g"] = {"N": str(generation)}
    stack.dynamodb.update_item(
        TableName=stack.resources.table,
        Key={"PK": {"S": f"TICKET#{TICKET}"}, "SK": {"S": f"SLA#{TARGET}"}},
        UpdateExpression=update,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def timer_input(
    due_at: str,
    *,
    generation: int = 1,
    warnings: list[dict[str, str]] | None = None,
    escalations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "ticket_id": TICKET,
        "target": TARGET,
        "generation": generation,
        "generation_text": str(generation),
        "pk": f"TICKET#{TICKET}",
        "sk": f"SLA#{TARGET}",
        "due_at": due_at,
        "warnings": warnings or [],
        "escalations": escalations or [],
    }


def name(generation: int = 1) -> str:
    return f"{TICKET}-{TARGET}-{generation}"


def running(sfn: Any, timers: Timers, execution: str) -> None:
    """moto runs an execution on a thread; stopping it before that thread has begun fails inside moto
    (AttributeError on the worker's environment), so wait until its history has begun."""
    deadline = time.monotonic() + 10
    while not history(sfn, timers, execution) and time.monotonic() < deadline:
        time.sleep(0.01)


def waiting(sfn: Any, timers: Timers, execution: str) -> None:
    """Until the execution sleeps in a Wait state: a stop that reached moto while its thread was still stepping
    through the first states was lost now and then (the execution ran on; seen about one run in four under load)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(e["type"] == "WaitStateEntered" for e in history(sfn, timers, execution)):
            return
        time.sleep(0.01)


def finished(sfn: Any, timers: Timers, execution: str, within_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=timers.execution_arn(execution))
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def notifications(stack: Stack) -> list[tuple[dict[str, Any], float]]:
    """Every notification so far (taken off the queue), with the time it was sent."""
    url = stack.resources.queue_urls[NOTIFICATIONS_QUEUE.name]
    taken: list[tuple[dict[str, Any], float]] = []
    while True:
        got = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
        messages = got.get("Messages", [])
        if not messages:
            return sorted(taken, key=lambda pair: pair[1])
        for message in messages:
            sent = int(message["Attributes"]["SentTimestamp"]) / 1000
            taken.append((json.loads(message["Body"]), sent))
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def history(sfn: Any, timers: Timers, execution: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = sfn.get_execution_history(executionArn=timers.execution_arn(execution))["events"]
    return events


def in_deadline_wait(sfn: Any, timers: Timers, execution: str) -> bool:
    """The execution has entered the Wait for the deadline (the second top-level Wait after the warnings)."""
    entered = [e for e in history(sfn, timers, execution) if e["type"] == "WaitStateEntered"]
    return any(e["stateEnteredEventDetails"]["name"] == "WaitForDeadline" for e in entered)


# ------------------------------------------------------------------ the definition


def test_definition_reads_the_tables_keys_and_leaves_no_variable() -> None:
    text = definition(
        "intake-test-tickets", "https://sqs.us-east-1.amazonaws.com/123456789012/intake-test-notifications"
    )
    parsed = json.loads(text)
    assert "${" not in text
    assert set(parsed["States"]["MarkBreached"]["Parameters"]["Key"]) == {TABLE.partition_key, TABLE.sort_key}
    raw = DEFINITION_PATH.read_text()
    assert "${TableName}" in raw and "${NotificationsQueueUrl}" in raw


# ------------------------------------------------------------------ the machine


def test_running_timer_sends_warning_then_breach_and_marks_the_item_breached(
    stack: Stack, sfn: Any, timers: Timers
) -> None:
    clock = Clock()
    due = clock.at(1)
    seed(stack, due)

    timers.start(name(), timer_input(due, warnings=[{"at": clock.at(0), "label": "50%"}]))
    outcome = finished(sfn, timers, name())

    assert outcome["status"] == "SUCCEEDED"
    sent = notifications(stack)
    assert [body for body, _ in sent] == [
        {"kind": "warning", "ticket_id": TICKET, "target": TARGET, "generation": 1, "due_at": due, "label": "50%"},
        {"kind": "breach", "ticket_id": TICKET, "target": TARGET, "generation": 1, "due_at": due},
    ]
    # moto's Waits end up to a second early (whole seconds, rounded down); a loaded machine may be late
    assert clock.epoch(-1) <= sent[0][1] <= clock.epoch(0 + LATE_S)
    assert clock.epoch(0) <= sent[1][1] <= clock.epoch(1 + LATE_S)
    item = timer_item(stack)
    assert item["state"] == {"S": "breached"}
    breached_at = datetime.fromisoformat(item["breached_at"]["S"])  # AWS: ...Z, moto: ...+00:00; both ISO 8601
    assert clock.epoch(0) <= breached_at.timestamp() <= clock.epoch(1 + LATE_S)


def test_timer_met_before_its_warning_sends_nothing_and_never_breaches(stack: Stack, sfn: Any, timers: Timers) -> None:
    clock = Clock()
    due = clock.at(3)
    seed(stack, due)

    timers.start(name(), timer_input(due, warnings=[{"at": clock.at(0), "label": "50%"}]))
    set_state(stack, "met")
    outcome = finished(sfn, timers, name())

    assert outcome["status"] == "SUCCEEDED"
    assert not in_deadline_wait(sfn, timers, name())  # settled at the warning, not waiting for the deadline
    assert notifications(stack) == []
    item = timer_item(stack)
    assert item["state"] == {"S": "met"}
    assert "breached_at" not in item


def test_response_racing_the_deadline_wins_and_nothing_breaches(stack: Stack, sfn: Any, timers: Timers) -> None:
    clock = Clock()
    due = clock.at(2)
    seed(stack, due)
    timers.start(name(), timer_input(due))

    deadline = time.monotonic() + 5
    while not in_deadline_wait(sfn, timers, name()) and time.monotonic() < deadline:
        time.sleep(0.02)
    set_state(stack, "met")  # the agent's response, while the machine waits for the deadline
    outcome = finished(sfn, timers, name())

    assert outcome["status"] == "SUCCEEDED"
    assert notifications(stack) == []
    assert timer_item(stack)["state"] == {"S": "met"}
    events = history(sfn, timers, name())
    failures = [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
    assert failures == ["DynamoDB.ConditionalCheckFailedException"]  # lost once, caught, not retried
    assert any(e["type"] == "SucceedStateEntered" for e in events)


def test_superseded_generation_sends_nothing_and_leaves_the_new_one_alone(
    stack: Stack, sfn: Any, timers: Timers
) -> None:
    clock = Clock()
    due = clock.at(1)
    seed(stack, due)

    timers.start(name(1), timer_input(due, generation=1, warnings=[{"at": clock.at(0), "label": "80%"}]))
    set_state(stack, "running", generation=2)  # restarted (e.g. resumed after pending): a new generation runs
    outcome = finished(sfn, timers, name(1))

    assert outcome["status"] == "SUCCEEDED"
    assert not in_deadline_wait(sfn, timers, name(1))
    assert notifications(stack) == []
    item = timer_item(stack)
    assert (item["state"], item["generation"]) == ({"S": "running"}, {"N": "2"})


def test_superseded_generation_without_warnings_does_not_breach_at_its_deadline(
    stack: Stack, sfn: Any, timers: Timers
) -> None:
    clock = Clock()
    due = clock.at(0)
    seed(stack, due, generation=2)

    timers.start(name(1), timer_input(due, generation=1))
    outcome = finished(sfn, timers, name(1))

    assert outcome["status"] == "SUCCEEDED"
    assert notifications(stack) == []
    assert timer_item(stack)["state"] == {"S": "running"}


def test_escalation_levels_arrive_in_order_and_stop_once_the_breach_is_answered(
    stack: Stack, sfn: Any, timers: Timers
) -> None:
    clock = Clock()
    due = clock.at(0)
    seed(stack, due)
    levels = [{"level": 1, "at": clock.at(0)}, {"level": 2, "at": clock.at(1)}, {"level": 3, "at": clock.at(3)}]

    timers.start(name(), timer_input(due, escalations=levels))
    sent: list[tuple[dict[str, Any], float]] = []
    deadline = time.monotonic() + 8
    while not any(body.get("level") == 2 for body, _ in sent) and time.monotonic() < deadline:
        sent += notifications(stack)
        time.sleep(0.05)
    set_state(stack, "met")  # answered after level 2: level 3 (two seconds later) must not go out
    outcome = finished(sfn, timers, name())
    sent += notifications(stack)

    assert outcome["status"] == "SUCCEEDED"
    assert [(body["kind"], body.get("level")) for body, _ in sent] == [
        ("breach", None),
        ("escalation", 1),
        ("escalation", 2),
    ]
    assert sent[1][0] == {
        "kind": "escalation",
        "ticket_id": TICKET,
        "target": TARGET,
        "generation": 1,
        "due_at": due,
        "level": 1,
    }
    # each level at its time (moto: up to a second early)
    assert clock.epoch(-1) <= sent[1][1] <= clock.epoch(0 + LATE_S)
    assert clock.epoch(0) <= sent[2][1] <= clock.epoch(1 + LATE_S)


# ------------------------------------------------------------------ Timers


def test_starting_the_same_timer_twice_runs_one_execution(stack: Stack, sfn: Any, timers: Timers) -> None:
    clock = Clock()
    due = clock.at(600)
    seed(stack, due)
    given = timer_input(due)

    timers.start(name(), given)
    timers.start(name(), given)  # the worker crashed after starting it, and its retry starts it again
    running(sfn, timers, name())
    timers.stop(name(), "resolved")
    timers.start(name(), given)  # a late retry, after the timer was stopped

    executions = sfn.list_executions(stateMachineArn=timers.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == [name()]


def test_stopping_a_running_timer_aborts_it(stack: Stack, sfn: Any, timers: Timers) -> None:
    clock = Clock()
    due = clock.at(600)
    seed(stack, due)
    timers.start(name(), timer_input(due))
    waiting(sfn, timers, name())

    timers.stop(name(), "first response sent")

    assert finished(sfn, timers, name())["status"] == "ABORTED"
    assert notifications(stack) == []


def test_stopping_a_finished_or_unknown_timer_is_fine(stack: Stack, sfn: Any, timers: Timers) -> None:
    clock = Clock()
    due = clock.at(-1)
    seed(stack, due, state="met")
    timers.start(name(), timer_input(due))
    assert finished(sfn, timers, name())["status"] == "SUCCEEDED"

    timers.stop(name(), "resolved")
    timers.stop(f"{TICKET}-resolution-7", "resolved")


def test_throttled_step_functions_is_a_retryable_error(sfn: Any) -> None:
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:intake-test-sla-timer"
    with Stubber(sfn) as stubber:
        stubber.add_client_error("start_execution", service_error_code="ThrottlingException", http_status_code=400)
        stubber.add_client_error("stop_execution", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(TimersUnavailableError) as started:
            Timers(sfn, machine).start(name(), timer_input("2026-12-01T10:00:00Z"))
        with pytest.raises(TimersUnavailableError) as stopped:
            Timers(sfn, machine).stop(name(), "resolved")
    assert (started.value.operation, started.value.code) == ("StartExecution", "ThrottlingException")
    assert stopped.value.operation == "StopExecution"


def test_no_timers_does_nothing() -> None:
    timers = NoTimers()
    timers.start(name(), timer_input("2026-12-01T10:00:00Z"))
    timers.stop(name(), "resolved")
