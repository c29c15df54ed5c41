"""SLA clocks end to end on moto: email → ticket → timers (Step Functions executing the real ASL, waits really
sleeping) → notifications queue → notifier → outbox; and agents' actions through `POST /tickets/{id}/events`.

The policy is the repository's, with targets seconds long in calendar time so that moto's waits end soon.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from intake import runtime
from intake.local.workers import poll_once
from intake.queues import SqsQueue
from tests.aws.conftest import ROOT, Stack
from tests.aws.test_email_pipeline import inject, mime

FAST_SLA = """sla:
  policies:
    - name: relaxed
      match: {priorities: [low]}
      first_response: {within: 1h, time: calendar}
      resolution: {within: 1d, time: calendar}
    - name: fast
      first_response: {within: 4s, time: calendar}
      next_response: {within: 4s, time: calendar}
      resolution: {within: 1h, time: calendar}
      warnings: ["50%"]
      escalation:
        - {after: 0s, to: [lead@example.com]}
        - {after: 2s, to: [head@example.com]}

"""


@pytest.fixture(autouse=True)
def fast_policy(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "intake.yaml").read_text()
    policy = re.sub(r"(?ms)^sla:\n.*?(?=^# A new ticket's priority)", FAST_SLA, text)
    assert "name: fast" in policy and "name: urgent" not in policy
    (tmp_path / "fast.yaml").write_text(policy)
    monkeypatch.setenv("INTAKE_CONFIG", str(tmp_path / "fast.yaml"))
    runtime.reset()


def change_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, old: str, new: str) -> None:
    """From now on, the policy in force with `old` replaced by `new` (saved as `name`)."""
    text = Path(os.environ["INTAKE_CONFIG"]).read_text()
    changed = text.replace(old, new)
    assert changed != text
    (tmp_path / name).write_text(changed)
    monkeypatch.setenv("INTAKE_CONFIG", str(tmp_path / name))
    runtime.reset()


def open_ticket(stack: Stack, message_id: str = "m1@mail.example.org") -> dict[str, Any]:
    inject(stack, mime("My parcel never came", "Order 1042 is two weeks late.", message_id=message_id))
    stack.work()
    [ticket] = stack.get("/tickets")[1]["items"]
    return dict(ticket)


def notices(stack: Stack) -> list[str]:
    """The SLA emails sent so far, oldest first, as `kind target level`, after running the notifier."""
    from intake.handlers import notifier

    url = stack.resources.queue_urls["notifications"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    while poll_once(SqsQueue(stack.sqs, url), arn, "notifier", notifier.handler, wait_s=0):
        pass
    return [_notice(m) for m in stack.sent() if m["X-Intake-Notice"]]


def _notice(message: EmailMessage) -> str:
    fields = dict(part.strip().split("=", 1) for part in str(message["X-Intake-Notice"]).split(";")[1:])
    to = ",".join(sorted(a.addr_spec for a in message["To"].addresses))
    return " ".join([str(message["X-Intake-Notice"]).split(";")[0], fields["target"], fields.get("level", "-"), to])


def wait_for(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)


def act(stack: Stack, ticket_id: str, **action: Any) -> tuple[int, dict[str, Any]]:
    return stack.post_api(f"/tickets/{ticket_id}/events", {"by": "agent-7", **action})


def timer(stack: Stack, ticket_id: str, target: str) -> dict[str, Any]:
    return next(t for t in stack.get(f"/tickets/{ticket_id}")[1]["sla"] if t["target"] == target)


def execution_status(stack: Stack, ticket_id: str, target: str, generation: int = 1) -> str:
    """The Step Functions status of the ticket's timer execution (RUNNING until it has sent all it will)."""
    sfn = boto3.session.Session().client("stepfunctions")
    arn = stack.resources.state_machine_arn.replace(":stateMachine:", ":execution:")
    return str(sfn.describe_execution(executionArn=f"{arn}:{ticket_id}-{target}-{generation}")["status"])


def test_unanswered_ticket_warns_then_breaches_then_escalates_in_order(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An 8 s target: the warning (at 50 %) is 4 s after the message and 4 s before the breach (3 s as moto's Wait
    # may end a second early), so that the notifier takes it before the breach even on a busy machine (a warning
    # it takes after the breach is stale: skipped, as it should be)
    change_policy(tmp_path, monkeypatch, "slower.yaml", "first_response: {within: 4s", "first_response: {within: 8s")
    ticket = open_ticket(stack)
    first = timer(stack, ticket["id"], "first_response")
    assert first["state"] == "running" and ticket["next_due_at"] is not None

    wait_for(lambda: len(notices(stack)) >= 4, timeout_s=30)

    assert notices(stack) == [
        "warning first_response - support@example.com",
        "breach first_response - support@example.com",
        "escalation first_response 1 lead@example.com",
        "escalation first_response 2 head@example.com",
    ]
    detail = stack.get(f"/tickets/{ticket['id']}")[1]
    assert detail["breached"] is True
    breached = timer(stack, ticket["id"], "first_response")
    assert breached["state"] == "breached"
    assert datetime.fromisoformat(breached["breached_at"]) >= datetime.fromisoformat(first["due_at"]) - timedelta(
        seconds=1  # moto's Wait rounds down to the second; AWS waits until the timestamp
    )
    assert [t["id"] for t in stack.get("/tickets?breached=true")[1]["items"]] == [ticket["id"]]
    assert stack.get("/tickets?breached=false")[1]["items"] == []
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.index("warned") < kinds.index("breached") < kinds.index("escalated")


def test_answering_a_breached_ticket_stops_its_escalations(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Level 2 5 s after level 1: time enough to answer in between on a busy machine
    change_policy(tmp_path, monkeypatch, "later-level-2.yaml", "{after: 2s, to: [head", "{after: 5s, to: [head")
    ticket = open_ticket(stack)
    wait_for(lambda: "escalation first_response 1 lead@example.com" in notices(stack))

    status, _ = act(stack, ticket["id"], type="responded")
    # the execution re-reads the timer at level 2's instant, finds it stopped, and ends
    wait_for(lambda: execution_status(stack, ticket["id"], "first_response") != "RUNNING", timeout_s=30)

    answered = timer(stack, ticket["id"], "first_response")
    assert status == 200 and answered["state"] == "stopped" and answered["breached_at"]
    assert [n for n in notices(stack) if n.startswith("escalation")] == ["escalation first_response 1 lead@example.com"]


def test_a_response_before_the_warning_sends_nothing_and_meets_the_target(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An 8 s target: the response comes well before its warning (4 s) however slowly the machine opens the ticket
    change_policy(tmp_path, monkeypatch, "slower.yaml", "first_response: {within: 4s", "first_response: {within: 8s")
    ticket = open_ticket(stack)

    status, detail = act(stack, ticket["id"], type="responded", note="Looking into it")
    time.sleep(9)  # past the first-response deadline

    assert status == 200 and notices(stack) == []
    assert timer(stack, ticket["id"], "first_response")["state"] == "met"
    assert "responded" in [e["kind"] for e in detail["events"]]
    assert stack.get(f"/tickets/{ticket['id']}")[1]["breached"] is False


def test_pending_pauses_the_clock_and_the_customers_reply_resumes_it_with_the_time_left(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 20 s target: its warning (at 50 %) is 10 s away, so that neither generation's warning is due during the test
    # however slowly the machine opens and pauses the ticket (with 4 s, a busy one warned before the pause)
    change_policy(tmp_path, monkeypatch, "slower.yaml", "first_response: {within: 4s", "first_response: {within: 20s")
    ticket = open_ticket(stack)
    original = timer(stack, ticket["id"], "first_response")

    status, _ = act(stack, ticket["id"], type="pending")
    assert status == 200 and timer(stack, ticket["id"], "first_response")["state"] == "paused"
    time.sleep(3)  # paused: these seconds do not count
    inject(
        stack,
        mime(
            "Re: My parcel",
            "Here is the tracking number.",
            message_id="m2@mail.example.org",
            extra="In-Reply-To: <m1@mail.example.org>\r\n",
        ),
    )
    stack.work()

    resumed = timer(stack, ticket["id"], "first_response")
    assert stack.get(f"/tickets/{ticket['id']}")[1]["status"] == "open"
    assert (resumed["state"], resumed["generation"]) == ("running", 2)
    extended = datetime.fromisoformat(resumed["due_at"]) - datetime.fromisoformat(original["due_at"])
    # paused 3 s; the clock resumes at the reply's receipt (not when the worker takes it), and deadlines are kept
    # to whole seconds: up to a second of the pause may not show
    assert timedelta(seconds=2) <= extended <= timedelta(seconds=6)
    assert notices(stack) == []  # the first generation's warning did not fire while paused


def test_next_response_starts_when_the_customer_writes_after_our_answer(stack: Stack) -> None:
    ticket = open_ticket(stack)
    act(stack, ticket["id"], type="responded")
    inject(
        stack,
        mime(
            "Re: My parcel",
            "Still nothing.",
            message_id="m2@mail.example.org",
            extra="In-Reply-To: <m1@mail.example.org>\r\n",
        ),
    )
    stack.work()

    assert timer(stack, ticket["id"], "next_response")["state"] == "running"
    wait_for(lambda: "breach next_response - support@example.com" in notices(stack))


def test_a_response_racing_the_deadline_is_either_in_time_or_a_breach_never_both(stack: Stack) -> None:
    ticket = open_ticket(stack)
    due = datetime.fromisoformat(timer(stack, ticket["id"], "first_response")["due_at"])
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() - 0.9))  # moto may fire up to 1 s early

    act(stack, ticket["id"], type="responded")
    time.sleep(1.5)

    state = timer(stack, ticket["id"], "first_response")["state"]
    breaches = [n for n in notices(stack) if n.startswith("breach first_response")]
    assert (state, len(breaches)) in {("met", 0), ("breached", 1)}


def test_a_response_that_loses_the_race_to_the_breach_still_stops_the_escalations(stack: Stack) -> None:
    ticket = open_ticket(stack)
    table = stack.resources.table
    key = {"PK": {"S": f"TICKET#{ticket['id']}"}, "SK": {"S": "SLA#first_response"}}

    def breach_first(params: dict[str, Any], **_: Any) -> None:
        # Given the state machine's MarkBreached lands between the agent's read of the timer and its write
        if params.get("Key") == key and params.get("ConditionExpression", "").startswith("generation = :g"):
            runtime.client("dynamodb").meta.events.unregister("provide-client-params.dynamodb.UpdateItem", breach_first)
            stack.dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #state = :breached, breached_at = :now",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":breached": {"S": "breached"}, ":now": {"S": "2026-01-01T00:00:00Z"}},
            )

    runtime.client("dynamodb").meta.events.register("provide-client-params.dynamodb.UpdateItem", breach_first)

    status, _ = act(stack, ticket["id"], type="responded")

    # Then the breach stands, but the answered clock stops there: no further escalation level goes out
    assert status == 200
    assert timer(stack, ticket["id"], "first_response")["state"] == "stopped"
    sfn = boto3.session.Session().client("stepfunctions")
    arn = (
        stack.resources.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{ticket['id']}-first_response-1"
    )
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING")  # moto stops it as FAILED


def test_resolving_stops_every_clock_and_resolving_again_is_a_conflict(stack: Stack) -> None:
    ticket = open_ticket(stack)

    status, detail = act(stack, ticket["id"], type="resolved", note="Refunded")
    again, problem = act(stack, ticket["id"], type="resolved")

    assert status == 200 and detail["status"] == "resolved" and detail["resolved_at"]
    assert {t["target"]: t["state"] for t in detail["sla"]} == {"first_response": "stopped", "resolution": "met"}
    assert (again, problem["type"]) == (409, "urn:intake:problem:transition-invalid")
    assert stack.get("/tickets?order=due")[1]["items"] == []  # out of the queue
    time.sleep(4.5)
    assert notices(stack) == []


def test_a_customer_reply_within_the_reopen_window_reopens_the_resolved_ticket(stack: Stack) -> None:
    ticket = open_ticket(stack)
    act(stack, ticket["id"], type="responded")
    act(stack, ticket["id"], type="resolved")

    inject(
        stack,
        mime(
            "Re: My parcel",
            "It came back broken.",
            message_id="m2@mail.example.org",
            extra="In-Reply-To: <m1@mail.example.org>\r\n",
        ),
    )
    stack.work()

    [reopened] = stack.get("/tickets")[1]["items"]
    detail = stack.get(f"/tickets/{reopened['id']}")[1]
    assert reopened["id"] == ticket["id"] and detail["status"] == "open" and detail["message_count"] == 2
    assert timer(stack, ticket["id"], "resolution")["state"] == "running"
    assert timer(stack, ticket["id"], "next_response")["state"] == "running"


def test_agent_actions_validate_their_input(stack: Stack) -> None:
    ticket = open_ticket(stack)

    unknown, problem = act(stack, ticket["id"], type="escalated")
    incomplete, missing = act(stack, ticket["id"], type="assigned")
    absent, not_found = act(stack, "01JDZZZZZZZZZZZZZZZZZZZZZZ", type="responded")
    assigned, detail = act(stack, ticket["id"], type="assigned", assignee="ana")

    assert (unknown, problem["type"], problem["field"]) == (400, "urn:intake:problem:field-invalid", "type")
    assert (incomplete, missing["field"]) == (400, "assignee")
    assert (absent, not_found["type"]) == (404, "urn:intake:problem:ticket-not-found")
    assert assigned == 200 and detail["assignee"] == "ana"
    assert next(e for e in detail["events"] if e["kind"] == "assigned")["detail"]["by"] == "agent-7"


def test_the_queue_orders_open_tickets_by_their_next_deadline(stack: Stack) -> None:
    older = open_ticket(stack, "a@mail.example.org")
    inject(stack, mime("Second", "Another question", message_id="b@mail.example.org", sender="bo@example.net"))
    stack.work()
    act(stack, older["id"], type="responded")  # its next deadline is now resolution, an hour away

    queue = stack.get("/tickets?order=due")[1]["items"]
    soon = stack.get("/tickets?" + "due_before=" + (datetime.now(UTC) + timedelta(minutes=5)).isoformat())[1]
    in_paris = (datetime.now(UTC) + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=1)))
    soon_too = stack.get("/tickets?" + "due_before=" + quote(in_paris.isoformat()))[1]  # the same instant, +01:00

    assert [t["subject"] for t in queue] == ["Second", "My parcel never came"]
    assert [t["subject"] for t in soon["items"]] == ["Second"]
    assert [t["subject"] for t in soon_too["items"]] == ["Second"]


def test_a_ticket_with_every_clock_breached_stays_first_in_the_queue_and_the_backlog_paused_and_resumed(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a policy whose resolution target is seconds long too, so that every clock of a ticket breaches
    fast = Path(os.environ["INTAKE_CONFIG"]).read_text()
    every = fast.replace("resolution: {within: 1h, time: calendar}", "resolution: {within: 5s, time: calendar}")
    assert every != fast
    (tmp_path / "every.yaml").write_text(every)
    monkeypatch.setenv("INTAKE_CONFIG", str(tmp_path / "every.yaml"))
    runtime.reset()
    late = open_ticket(stack)
    wait_for(lambda: {t["state"] for t in stack.get(f"/tickets/{late['id']}")[1]["sla"]} == {"breached"}, 30)
    # a newer ticket, its clocks running (an hour long: not overdue by the time the digest is read, however busy
    # the machine)
    change_policy(tmp_path, monkeypatch, "newer.yaml", "first_response: {within: 4s", "first_response: {within: 1h")
    change_policy(tmp_path, monkeypatch, "newest.yaml", "resolution: {within: 5s", "resolution: {within: 1h")
    inject(stack, mime("Second", "Another question", message_id="b@mail.example.org", sender="bo@example.net"))
    stack.work()
    notices(stack)  # the notifier records the breaches on the ticket

    def queue() -> list[str]:
        return [t["id"] for t in stack.get("/tickets?order=due")[1]["items"]]

    def backlog() -> dict[str, Any]:
        today = datetime.now(UTC).date().isoformat()
        return dict(stack.get(f"/digests/support/daily?date={today}")[1]["figures"]["backlog"])

    # Then it is listed first, in the queue and in the digest's backlog, breached
    assert queue()[0] == late["id"] and len(queue()) == 2
    assert backlog()["oldest"][0]["ticket"]["ticket_id"] == late["id"]
    assert (backlog()["open"], backlog()["breached"], backlog()["overdue"]) == (2, 1, 1)

    # When it waits on the customer (pending: running clocks pause, breached ones stay breached), it stays first
    assert act(stack, late["id"], type="pending")[0] == 200
    assert queue()[0] == late["id"] and len(queue()) == 2
    assert backlog()["open"] == 2 and backlog()["oldest"][0]["ticket"]["ticket_id"] == late["id"]

    # And when the customer writes again (the ticket is open again, next-response starts), it stays first too
    inject(
        stack,
        mime(
            "Re: My parcel",
            "Still nothing.",
            message_id="m2@mail.example.org",
            extra="In-Reply-To: <m1@mail.example.org>\r\n",
        ),
    )
    stack.work()
    assert stack.get(f"/tickets/{late['id']}")[1]["status"] == "open"
    assert queue()[0] == late["id"] and len(queue()) == 2


def test_open_tickets_without_a_deadline_are_in_the_queue_after_every_deadline(stack: Stack) -> None:
    waiting = open_ticket(stack)
    assert act(stack, waiting["id"], type="pending")[0] == 200  # its clocks pause: no deadline
    inject(stack, mime("Second", "Another question", message_id="b@mail.example.org", sender="bo@example.net"))
    stack.work()
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()

    queue = stack.get("/tickets?order=due")[1]["items"]

    assert [t["subject"] for t in queue] == ["Second", "My parcel never came"]
    assert queue[1]["next_due_at"] is None
    assert [t["subject"] for t in stack.get("/tickets?due_before=" + quote(soon))[1]["items"]] == ["Second"]
    assert [t["subject"] for t in stack.get("/tickets?order=due&limit=1")[1]["items"]] == ["Second"]
    cursor = stack.get("/tickets?order=due&limit=1")[1]["next"]
    assert [t["subject"] for t in stack.get(f"/tickets?order=due&limit=1&cursor={cursor}")[1]["items"]] == [
        "My parcel never came"
    ]


def test_a_redelivered_message_after_a_crash_starts_no_second_execution(stack: Stack) -> None:
    ticket = open_ticket(stack)
    tracker = runtime.tracker()

    tracker.opened(tracker.store.ticket(ticket["id"]), datetime.now(UTC))  # the worker's retry
    tracker.opened(tracker.store.ticket(ticket["id"]), datetime.now(UTC))

    sfn = boto3.session.Session().client("stepfunctions")
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=stack.resources.state_machine_arn)["executions"]]
    assert sorted(names) == sorted({f"{ticket['id']}-first_response-1", f"{ticket['id']}-resolution-1"})


def test_a_priority_change_replans_running_clocks_under_the_new_policy_counting_the_time_used(stack: Stack) -> None:
    ticket = open_ticket(stack)
    before = timer(stack, ticket["id"], "first_response")
    time.sleep(1)

    status, detail = act(stack, ticket["id"], type="priority_changed", priority="low")

    after = timer(stack, ticket["id"], "first_response")
    assert status == 200 and detail["priority"] == "low"
    assert (after["generation"], after["policy"], after["state"]) == (2, "relaxed", "running")
    used = timedelta(seconds=after["consumed_s"])
    assert timedelta(seconds=0.5) <= used <= timedelta(seconds=3)  # the second slept (and the second fraction)
    expected = datetime.fromisoformat(after["started_at"]) + timedelta(hours=1) - used
    assert abs(datetime.fromisoformat(after["due_at"]) - expected) <= timedelta(seconds=1)
    assert datetime.fromisoformat(after["due_at"]) > datetime.fromisoformat(before["due_at"])
    time.sleep(4)  # past generation 1's deadline: it was stopped and settles quietly
    assert notices(stack) == []


def test_a_reply_after_the_reopen_window_opens_a_new_ticket_linked_to_the_resolved_one(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = (
        Path(str(runtime.settings().config))
        .read_text()
        .replace("    timezone: Europe/Paris\n", "    timezone: Europe/Paris\n    reopen_within: 1s\n", 1)
    )
    (tmp_path / "short-window.yaml").write_text(policy)
    monkeypatch.setenv("INTAKE_CONFIG", str(tmp_path / "short-window.yaml"))
    runtime.reset()
    ticket = open_ticket(stack)
    act(stack, ticket["id"], type="resolved")
    time.sleep(1.5)

    inject(
        stack,
        mime(
            "Re: My parcel",
            "One more thing.",
            message_id="m2@mail.example.org",
            extra="In-Reply-To: <m1@mail.example.org>\r\n",
        ),
    )
    stack.work()

    newest, resolved = stack.get("/tickets")[1]["items"]
    assert resolved["id"] == ticket["id"] and resolved["status"] == "resolved"
    assert newest["previous_ticket_id"] == ticket["id"] and newest["status"] == "open"
