"""The table contract: every test runs on a moto table (built as the stack builds it) and on `SqliteTable`,
with the same assertions, through the real `Store` where it can and through raw item calls for the grammar.

Where moto and DynamoDB's documented behaviour differ, the test says so and asserts what each does, so a
change on either side shows: nothing is skipped.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from ulid import ULID

from intake.ingest import Outcome, ingest
from intake.local.table import SqliteTable
from intake.model import (
    CallEvent,
    CallEventKind,
    Channel,
    EmailArrived,
    EventKind,
    InboundMessage,
    Priority,
    QuarantinedEmail,
    QuarantineStatus,
    Recording,
    Sender,
    SlaTarget,
    SlaTimer,
    Status,
    Ticket,
    TimerState,
    reference_for,
)
from intake.records import ClockPlan, ContactPlan, ThreadLinks
from intake.store import Store, TicketNotFoundError, WriteConflictError
from intake.store.keys import iso
from tests.moto_stack import create_table, emulated
from tests.unit.builders import form_message

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "functions" / "intake" / "sla" / "state_machine.asl.json"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION")


@dataclass
class Table:
    """One table under contract: its client (boto3's on moto, or a SqliteTable) and its name."""

    kind: str  # "moto" | "sqlite"
    client: Any
    name: str

    @property
    def store(self) -> Store:
        return Store(self.client, self.name)

    def call(self, method: str, **request: Any) -> dict[str, Any]:
        return dict(getattr(self.client, method)(TableName=self.name, **request))

    def items(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {}
        while True:
            page = self.call("scan", **request)
            found += page["Items"]
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def tickets(self) -> list[dict[str, Any]]:
        return [i for i in self.items() if i["PK"]["S"].startswith("TICKET#") and i["SK"]["S"] == "META"]


@pytest.fixture(params=["moto", "sqlite"])
def table(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Table]:
    if request.param == "moto":
        for name in AWS_VARIABLES:  # emulated() sets these: give them back afterwards
            monkeypatch.setenv(name, os.environ.get(name, "testing"))
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        with emulated():
            name = create_table("contract")
            client = boto3.session.Session(region_name="us-east-1").client("dynamodb")
            yield Table("moto", client, name)
    else:
        sqlite = SqliteTable(tmp_path / "t.db")
        yield Table("sqlite", sqlite, "any-table-name")
        sqlite.close()


# ------------------------------------------------------------------ builders


def new_id(at: datetime | None = None) -> str:
    return str(ULID() if at is None else ULID.from_datetime(at))


def inbound(**changes: Any) -> InboundMessage:
    return form_message(changes.pop("received_at", T0), changes.pop("receipt_id", new_id()), **changes)


def ticket_for(message: InboundMessage, contact_id: str) -> Ticket:
    ticket_id = new_id(message.received_at)
    return Ticket(
        id=ticket_id,
        reference=reference_for(ticket_id),
        channel=message.channel,
        team=message.team,
        priority=Priority.NORMAL,
        status=Status.OPEN,
        contact_id=contact_id,
        subject=message.subject,
        thread_key=message.thread_key,
        created_at=message.received_at,
        updated_at=message.received_at,
        last_inbound_at=message.received_at,
        message_count=1,
    )


def open_ticket(store: Store, n: int, **changes: Any) -> Ticket:
    """A ticket from the real ingest core: message n, its own thread, `n` minutes after T0."""
    fields: dict[str, Any] = {
        "provider_message_id": f"m{n}",
        "thread_key": f"thread-{n}",
        "received_at": T0 + timedelta(minutes=n),
        "subject": f"ticket {n}",
    }
    result = ingest(store, inbound(**{**fields, **changes}), new_id)
    assert result.outcome == Outcome.CREATED
    return store.ticket(result.ticket_id)


def timer(generation: int = 1, state: TimerState = TimerState.RUNNING) -> SlaTimer:
    return SlaTimer(
        target=SlaTarget.FIRST_RESPONSE,
        generation=generation,
        state=state,
        policy="standard",
        time="calendar",
        started_at=T0,
        due_at=T0 + timedelta(hours=1),
        target_s=3600,
    )


def breach(table: Table, ticket_id: str, generation: int) -> bool:
    """The SLA state machine's MarkBreached task, its parameters read from the ASL it runs."""
    parameters = json.loads(ASL.read_text())["States"]["MarkBreached"]["Parameters"]
    paths = {"$.generation_text": str(generation), "$$.State.EnteredTime": iso(T0 + timedelta(hours=1))}
    values = {
        name: {kind.removesuffix(".$"): paths[v] if kind.endswith(".$") else v for kind, v in value.items()}
        for name, value in parameters["ExpressionAttributeValues"].items()
    }
    try:
        table.call(
            "update_item",
            Key={"PK": {"S": f"TICKET#{ticket_id}"}, "SK": {"S": f"SLA#{SlaTarget.FIRST_RESPONSE.value}"}},
            ConditionExpression=parameters["ConditionExpression"],
            UpdateExpression=parameters["UpdateExpression"],
            ExpressionAttributeNames=parameters["ExpressionAttributeNames"],
            ExpressionAttributeValues=values,
        )
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
        return False
    return True


def code(call: Callable[[], Any]) -> str:
    """The error code a call fails with ("" when it succeeds)."""
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return ""


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


# ------------------------------------------------------------------ ingest and tickets


def test_the_same_message_ingested_twice_makes_one_ticket(table: Table) -> None:
    first = ingest(table.store, inbound(), new_id)
    again = ingest(table.store, inbound(), new_id)

    assert first.outcome == Outcome.CREATED
    assert (again.outcome, again.ticket_id) == (Outcome.DUPLICATE, first.ticket_id)
    assert len(table.tickets()) == 1


def test_a_create_that_lost_its_race_names_the_items_whose_condition_failed(table: Table) -> None:
    message = inbound()
    plan = ContactPlan(new_id(), is_new=True, name="Ana", new_identities=(("email", "ana@example.com"),))
    table.store.create_ticket(ticket_for(message, plan.contact_id), message, plan, None)
    loser = ticket_for(message, plan.contact_id)

    with pytest.raises(WriteConflictError) as lost:
        table.store.create_ticket(loser, message, plan, None)

    assert lost.value.failed == ("thread", "seen", "identity", "contact")
    with pytest.raises(TicketNotFoundError):
        table.store.ticket(loser.id)  # all or nothing
    assert len(table.tickets()) == 1


def test_list_tickets_is_newest_first_filtered_and_paged(table: Table) -> None:
    store = table.store
    tickets = [
        open_ticket(store, n, channel=Channel.EMAIL if n % 3 == 0 else Channel.FORM, provider="forms") for n in range(7)
    ]
    billing = open_ticket(store, 10, team="billing")
    store.mark_breached(tickets[3].id)
    store.change_ticket(tickets[5], T0 + timedelta(hours=1), EventKind.RESOLVED, {}, sets={"status": "resolved"})

    def subjects(**query: Any) -> tuple[list[str], str | None]:
        page = store.list_tickets(**{"teams": ["support"], **query})
        return [t.subject or "" for t in page.items], page.next

    first, cursor = subjects(limit=3)
    second, cursor_two = subjects(limit=3, cursor=cursor)
    third, end = subjects(limit=3, cursor=cursor_two)
    assert (first, second, third, end) == (
        ["ticket 6", "ticket 5", "ticket 4"],
        ["ticket 3", "ticket 2", "ticket 1"],
        ["ticket 0"],
        None,
    )
    assert subjects(status=Status.RESOLVED)[0] == ["ticket 5"]
    assert subjects(breached=True)[0] == ["ticket 3"]
    assert subjects(channel="email")[0] == ["ticket 6", "ticket 3", "ticket 0"]
    open_first, open_cursor = subjects(status=Status.OPEN, limit=2)
    assert (open_first, subjects(status=Status.OPEN, limit=4, cursor=open_cursor)[0]) == (
        ["ticket 6", "ticket 4"],
        ["ticket 3", "ticket 2", "ticket 1", "ticket 0"],
    )
    both = store.list_tickets(["support", "billing"], limit=2)
    assert [t.id for t in both.items] == [billing.id, tickets[6].id]


def test_the_queue_is_in_due_order_bounded_and_paged(table: Table) -> None:
    store = table.store
    due_in_hours = [5, 1, 3, None, 2]
    tickets = [open_ticket(store, n) for n in range(len(due_in_hours))]
    for ticket, hours in zip(tickets, due_in_hours, strict=True):
        store.schedule(ticket, None if hours is None else T0 + timedelta(hours=hours))
    other = open_ticket(store, 9, team="billing")
    store.schedule(other, T0)

    def queued(**query: Any) -> list[str]:
        return [t.subject or "" for t in store.queue(["support"], **query).items]

    assert queued() == ["ticket 1", "ticket 4", "ticket 2", "ticket 0", "ticket 3"]  # no deadline: last
    assert queued(due_before=T0 + timedelta(hours=2, minutes=30)) == ["ticket 1", "ticket 4"]
    page = store.queue(["support"], limit=3)
    assert [t.id for t in store.queue(["support"], limit=3, cursor=page.next).items] == [tickets[0].id, tickets[3].id]
    bounded = store.queue(["support"], limit=1, due_before=T0 + timedelta(hours=4))
    assert [t.id for t in store.queue(["support"], cursor=bounded.next, due_before=T0 + timedelta(hours=4)).items] == [
        tickets[4].id,
        tickets[2].id,
    ]
    assert [t.id for t in store.open_tickets("support")] == [
        t.id for t in (tickets[1], tickets[4], tickets[2], tickets[0], tickets[3])
    ]

    store.schedule(tickets[1], None)  # no deadline any more: after every deadline, the oldest first
    assert queued() == ["ticket 4", "ticket 2", "ticket 0", "ticket 1", "ticket 3"]
    store.schedule(tickets[1].model_copy(update={"status": Status.RESOLVED}), None)  # out of the sparse index
    assert queued() == ["ticket 4", "ticket 2", "ticket 0", "ticket 3"]


def test_contact_detail_follows_merges_and_lists_every_ticket_newest_first(table: Table) -> None:
    store = table.store
    by_email = open_ticket(store, 1, sender=Sender(name="Ana", email="ana@example.com"))
    by_phone = open_ticket(store, 2, sender=Sender(phone="+33612345678"))
    both = open_ticket(store, 3, sender=Sender(name="Ana B", email="ana@example.com", phone="+33612345678"))

    detail = store.contact_detail(by_phone.contact_id)  # the absorbed contact points to the survivor

    assert detail.contact.id == by_email.contact_id == both.contact_id
    assert detail.contact.merged == (by_phone.contact_id,)
    assert (detail.contact.name, detail.contact.emails, detail.contact.phones) == (
        "Ana",
        ("ana@example.com",),
        ("+33612345678",),
    )
    assert [t.id for t in detail.tickets] == [both.id, by_phone.id, by_email.id]
    assert store.identity("phone", "+33612345678") == by_email.contact_id


def test_a_day_lists_its_tickets_oldest_first(table: Table) -> None:
    store = table.store
    today = [open_ticket(store, n) for n in (5, 1, 3)]
    open_ticket(store, 24 * 60 + 1)  # the next day
    open_ticket(store, 2, team="billing")

    assert [t.id for t in store.day_tickets("support", T0.date())] == [today[1].id, today[2].id, today[0].id]
    assert store.day_tickets("support", date(2026, 11, 19)) == []


def test_was_warned_counts_only_warned_events(table: Table) -> None:
    store = table.store
    ticket = open_ticket(store, 1)
    store.record_event(ticket.id, EventKind.ASSIGNED, T0 + timedelta(minutes=5), {"to": "a"})
    assert store.was_warned(ticket.id) is False

    store.record_event(ticket.id, EventKind.WARNED, T0 + timedelta(minutes=10), {"label": "75%"})

    assert store.was_warned(ticket.id) is True
    assert [e.kind for e in store.ticket_detail(ticket.id).events] == [
        EventKind.CREATED,
        EventKind.ASSIGNED,
        EventKind.WARNED,
    ]


def test_a_warning_flags_its_ticket_and_a_ticket_from_before_the_flag_is_read_from_its_history(table: Table) -> None:
    store = table.store
    warned, quiet, older = (open_ticket(store, n) for n in (1, 2, 3))
    store.record_event(warned.id, EventKind.WARNED, T0 + timedelta(hours=1), {"target": "first_response"})
    store.record_event(older.id, EventKind.WARNED, T0 + timedelta(hours=1), {"target": "first_response"})
    # a ticket written before tickets carried the flag: its warning is only in its history
    table.call("update_item", Key=key(f"TICKET#{older.id}", "META"), UpdateExpression="REMOVE warned")

    assert (store.ticket(warned.id).warned, store.ticket(quiet.id).warned) == (True, False)
    assert {t.id: t.warned for t in store.day_tickets("support", T0.date())} == {
        warned.id: True,
        quiet.id: False,
        older.id: True,
    }
    assert [e.kind for e in store.ticket_detail(warned.id).events] == [EventKind.CREATED, EventKind.WARNED]
    store.record_event(new_id(), EventKind.WARNED, T0, {})  # no such ticket: the history entry alone, as before


# ------------------------------------------------------------------ the open queue's counters

NOW = T0 + timedelta(days=2)


def whole_queue(store: Store, now: datetime, team: str = "support") -> tuple[int, int, int, list[str]]:
    """The backlog worked out from every ticket of the queue, as digests did before there were counters."""
    tickets = store.open_tickets(team)
    waiting = sorted(tickets, key=lambda t: (not t.breached, t.last_inbound_at, t.id))[:5]
    overdue = sum(t.next_due_at is not None and t.next_due_at <= now for t in tickets)
    return len(tickets), sum(t.breached for t in tickets), overdue, [t.id for t in waiting]


def counted(store: Store, now: datetime, team: str = "support") -> tuple[int, int, int, list[str]]:
    queue = store.backlog(team, now, 5)
    assert queue.uncounted == 0
    return queue.open, queue.breached, queue.overdue, [t.id for t in queue.longest_waiting]


def test_the_backlog_counters_follow_every_queue_change(table: Table) -> None:
    store = table.store
    assert store.backlog("support", NOW, 5).open == 0  # a new table: nothing queued, the counters are complete
    tickets = [open_ticket(store, n) for n in range(8)]
    open_ticket(store, 9, team="billing")

    assert counted(store, NOW) == whole_queue(store, NOW) == (8, 0, 0, [t.id for t in tickets[:5]])
    # deadlines: overdue two days and two hours ago, on NOW's own date before and after it, tomorrow; none
    for ticket, due in zip(
        tickets, [T0, NOW - timedelta(hours=1), NOW, NOW + timedelta(minutes=1), NOW + timedelta(days=1)], strict=False
    ):
        store.schedule(ticket, due)
    store.mark_breached(tickets[6].id)
    store.mark_breached(tickets[6].id)  # once
    store.mark_breached(tickets[0].id)
    assert counted(store, NOW) == whole_queue(store, NOW)
    assert counted(store, NOW)[:3] == (8, 2, 3)

    # resolved: out of the queue and of its counts; reopened: back in them; a later deadline: no longer overdue
    store.schedule(tickets[0].model_copy(update={"status": Status.RESOLVED}), None)
    store.schedule(tickets[1], NOW + timedelta(hours=5))
    store.mark_breached(tickets[7].id)
    assert counted(store, NOW) == whole_queue(store, NOW)
    assert counted(store, NOW)[:3] == (7, 2, 1)
    store.schedule(store.ticket(tickets[0].id), T0)
    assert counted(store, NOW) == whole_queue(store, NOW)
    assert counted(store, NOW)[:3] == (8, 3, 2)
    assert counted(store, NOW + timedelta(days=3)) == whole_queue(store, NOW + timedelta(days=3))
    assert counted(store, NOW, team="billing") == whole_queue(store, NOW, team="billing")


def test_a_queue_from_before_the_counters_is_counted_whole_until_every_ticket_in_it_is_counted(table: Table) -> None:
    store = table.store
    tickets = [open_ticket(store, n) for n in range(4)]
    store.schedule(tickets[0], T0)
    store.mark_breached(tickets[1].id)
    # the table as a version without counters left it: no counters, no `wait_key` on the queued tickets
    table.call("delete_item", Key=key("BACKLOG#support", "BACKLOG"))
    for ticket in tickets:
        table.call("update_item", Key=key(f"TICKET#{ticket.id}", "META"), UpdateExpression="REMOVE wait_key")

    before = store.backlog("support", NOW, 5)
    assert before.uncounted == 4  # read from the whole queue, its figures right all the same
    assert (before.open, before.breached, before.overdue) == whole_queue(store, NOW)[:3] == (4, 1, 1)
    assert [t.id for t in before.longest_waiting] == whole_queue(store, NOW)[3]
    store.schedule(tickets[2], None)  # any change to its place in the queue counts a ticket in
    assert store.backlog("support", NOW, 5).uncounted == 3

    assert store.count_backlog("support") == 3
    assert store.count_backlog("support") == 0
    assert counted(store, NOW) == whole_queue(store, NOW)
    store.schedule(tickets[1].model_copy(update={"status": Status.RESOLVED}), None)
    assert counted(store, NOW) == whole_queue(store, NOW)


def test_threads_moving_the_same_tickets_leave_the_counters_right(table: Table) -> None:
    store = table.store
    tickets = [open_ticket(store, n) for n in range(6)]
    dues = [None, T0, NOW, NOW + timedelta(days=1)]

    def move(n: int) -> None:
        for step in range(12):
            ticket = tickets[(n + step) % len(tickets)]
            if step % 4 == 3:
                store.mark_breached(ticket.id)
            else:
                status = Status.RESOLVED if (n + step) % 5 == 0 else Status.OPEN
                store.schedule(ticket.model_copy(update={"status": status}), dues[(n * step) % len(dues)])

    race(4, move)

    assert counted(store, NOW) == whole_queue(store, NOW)


def test_a_reply_counts_its_ticket_as_the_item_is_not_as_the_ticket_read_said(table: Table) -> None:
    """A reply's write takes what its ticket counted for from the ticket as read; when the item says otherwise it is
    read again: a breach flagged since, a resolved ticket the tracker had not taken out of the queue yet, a ticket
    queued before the counters."""
    store = table.store
    flagged, resolved, older = (open_ticket(store, n) for n in (1, 2, 3))
    read_before_its_breach = store.ticket(flagged.id)
    store.mark_breached(flagged.id)
    store.change_ticket(resolved, T0 + timedelta(hours=1), EventKind.RESOLVED, {}, sets={"status": "resolved"})
    # one queued as a version without counters left it: no `wait_key`, not in the counters
    table.call("update_item", Key=key(f"TICKET#{older.id}", "META"), UpdateExpression="REMOVE wait_key")
    table.call(
        "update_item",
        Key=key("BACKLOG#support", "BACKLOG"),
        UpdateExpression="ADD #open :less",
        ExpressionAttributeNames={"#open": "open"},
        ExpressionAttributeValues={":less": {"N": "-1"}},
    )
    assert counter_items(table) == {"open": 2, "breached": 1}  # the resolved one is still queued until rescheduled

    def reply(ticket: Ticket, due: datetime | None, **reopen: bool) -> None:
        message = inbound(provider_message_id=f"r-{ticket.id}", thread_key=ticket.thread_key, received_at=NOW)
        known = ContactPlan(ticket.contact_id, is_new=False, name=None, new_identities=())
        store.append_message(ticket, message, known, clocks=ClockPlan((), due), **reopen)

    reply(read_before_its_breach, NOW + timedelta(hours=1))
    reply(store.ticket(resolved.id), NOW + timedelta(hours=2), reopen=True)
    reply(store.ticket(older.id), None)

    assert counter_items(table) == {"open": 3, "breached": 1, f"due#{NOW.date()}": 2}  # the older one counted in
    assert counted_whole(store) == {"open": 3, "breached": 1, f"due#{NOW.date()}": 2}
    assert [t.id for t in store.backlog("support", NOW, 5).longest_waiting] == [flagged.id, resolved.id, older.id]
    assert store.ticket(flagged.id).breached and store.ticket(resolved.id).status == Status.OPEN


def counter_items(table: Table, team: str = "support") -> dict[str, int]:
    """The team's counters as kept, without the ones back at zero."""
    item = table.call("get_item", Key=key(f"BACKLOG#{team}", "BACKLOG"), ConsistentRead=True).get("Item", {})
    return {name: int(value["N"]) for name, value in item.items() if "N" in value and int(value["N"])}


def counted_whole(store: Store, team: str = "support") -> dict[str, int]:
    """What the counters should hold, counted from every ticket of the queue."""
    tickets = store.open_tickets(team)
    counts = {"open": len(tickets), "breached": sum(t.breached for t in tickets)}
    for ticket in tickets:
        if ticket.next_due_at is not None:
            name = f"due#{iso(ticket.next_due_at)[:10]}"
            counts[name] = counts.get(name, 0) + 1
    return {name: n for name, n in counts.items() if n}


def test_threads_creating_answering_reopening_breaching_and_resolving_tickets_leave_the_counters_exact(
    table: Table,
) -> None:
    """Every write that moves a ticket in its team's queue, racing on the same tickets: new tickets (with a deadline
    or none), customer replies with their clocks (a pending ticket opened, a resolved one reopened), breaches, the
    agent's pending and resolved with the tracker's reschedule, a new deadline. The counters are the whole count."""
    store = table.store
    tickets = [open_ticket(store, n, team="billing" if n == 5 else "support") for n in range(6)]
    dues = [None, T0, NOW, NOW + timedelta(days=1), NOW - timedelta(minutes=1)]
    created: list[str] = []

    def create(n: int, step: int) -> None:
        message = inbound(provider_message_id=f"new-{n}-{step}", thread_key=f"new-{n}-{step}", received_at=T0)
        contact = ContactPlan(new_id(), is_new=True, name=None, new_identities=())
        deadline = dues[(n + step) % len(dues)]
        clock = [] if deadline is None else [timer().model_copy(update={"due_at": deadline})]
        ticket = ticket_for(message, contact.contact_id)
        store.create_ticket(ticket, message, contact, None, timers=clock)
        created.append(ticket.id)

    def reply(ticket_id: str, n: int, step: int) -> None:
        for _ in range(20):  # as the ingest core does: a ticket changed meanwhile is read again
            ticket = store.ticket(ticket_id)
            if not ticket.status.is_open and ticket.status != Status.RESOLVED:
                return
            received = T0 + timedelta(hours=1 + step, minutes=n)
            message = inbound(
                provider_message_id=f"r-{ticket_id}-{n}-{step}", thread_key=ticket.thread_key, received_at=received
            )
            known = ContactPlan(ticket.contact_id, is_new=False, name=None, new_identities=())
            clocks = ClockPlan((), dues[(n * step + 1) % len(dues)])
            try:
                store.append_message(ticket, message, known, reopen=ticket.status == Status.RESOLVED, clocks=clocks)
                return
            except WriteConflictError:
                continue
        raise AssertionError("a reply lost every time")

    def act(ticket_id: str, status: Status, at: datetime) -> None:
        """An agent's pending or resolved, then the tracker's reschedule (out of the queue when resolved)."""
        ticket = store.ticket(ticket_id)
        if not ticket.status.is_open:
            return
        kind = EventKind.RESOLVED if status == Status.RESOLVED else EventKind.PENDING
        try:
            store.change_ticket(ticket, at, kind, {}, sets={"status": status.value})
        except WriteConflictError:
            return  # a reply got there first
        changed = store.ticket(ticket_id)
        store.schedule(changed, None if status == Status.RESOLVED else changed.next_due_at)

    def work(n: int) -> bool:
        for step in range(10):
            ticket = tickets[(n + step) % len(tickets)]
            at = T0 + timedelta(hours=1 + step, minutes=n, seconds=30)
            match (n + step) % 6:
                case 0:
                    create(n, step)
                case 1:
                    reply(ticket.id, n, step)
                case 2:
                    store.mark_breached(ticket.id)
                case 3:
                    act(ticket.id, Status.RESOLVED, at)
                case 4:
                    act(ticket.id, Status.PENDING, at)
                case _:
                    store.schedule(store.ticket(ticket.id), dues[(n + step) % len(dues)])
        return True

    assert race(4, work) == [True] * 4  # no thread failed
    assert len(created) == 6
    for team in ("support", "billing"):
        assert counter_items(table, team) == counted_whole(store, team)
        assert counted(store, NOW, team) == whole_queue(store, NOW, team)
        assert counted(store, NOW + timedelta(days=2), team) == whole_queue(store, NOW + timedelta(days=2), team)


def test_a_timer_generation_is_started_once_and_ended_once(table: Table) -> None:
    store = table.store
    ticket_id = new_id()
    store.put_timer(ticket_id, timer(1), None)
    with pytest.raises(WriteConflictError):
        store.put_timer(ticket_id, timer(1), None)
    store.put_timer(ticket_id, timer(2), replaces=1)
    with pytest.raises(WriteConflictError):
        store.put_timer(ticket_id, timer(2), replaces=1)  # generation 1 is gone

    assert store.end_timer(ticket_id, timer(1), "met", T0) is False  # an older generation
    assert store.end_timer(ticket_id, timer(2), "met", T0, consumed_s=60) is True
    assert store.end_timer(ticket_id, timer(2), "met", T0) is False
    (ended,) = store.timers(ticket_id)
    assert (ended.generation, ended.state, ended.ended_at, ended.consumed_s) == (2, TimerState.MET, T0, 60)


@pytest.mark.parametrize("first", ["breach", "response"])
def test_the_state_machines_breach_and_a_response_settle_a_timer_exactly_once(table: Table, first: str) -> None:
    store = table.store
    ticket_id = new_id()
    store.put_timer(ticket_id, timer(1), None)

    if first == "breach":
        outcomes = (breach(table, ticket_id, 1), store.end_timer(ticket_id, timer(1), "met", T0))
    else:
        outcomes = (store.end_timer(ticket_id, timer(1), "met", T0), breach(table, ticket_id, 1))

    assert outcomes == (True, False)
    (settled,) = store.timers(ticket_id)
    assert settled.state == (TimerState.BREACHED if first == "breach" else TimerState.MET)
    assert (settled.breached_at is not None) == (first == "breach")


def test_change_ticket_sets_removes_and_loses_to_a_changed_status(table: Table) -> None:
    store = table.store
    ticket = open_ticket(store, 1)
    store.change_ticket(ticket, T0 + timedelta(hours=1), EventKind.ASSIGNED, {"to": "a"}, sets={"assignee": "a"})
    assigned = store.ticket(ticket.id)
    assert assigned.assignee == "a"

    store.change_ticket(assigned, T0 + timedelta(hours=2), EventKind.ASSIGNED, {}, removes=("assignee",))
    unassigned = store.ticket(ticket.id)
    assert (unassigned.assignee, unassigned.updated_at) == (None, T0 + timedelta(hours=2))

    store.change_ticket(unassigned, T0 + timedelta(hours=3), EventKind.PENDING, {}, sets={"status": "pending"})
    with pytest.raises(WriteConflictError) as lost:  # read as open; it is pending now
        store.change_ticket(unassigned, T0 + timedelta(hours=4), EventKind.RESOLVED, {}, sets={"status": "resolved"})
    assert lost.value.failed == ("ticket",)
    assert store.ticket(ticket.id).status == Status.PENDING


def test_a_ticket_is_acknowledged_once_and_a_sender_at_most_n_times_an_hour(table: Table) -> None:
    store = table.store

    def claim(ticket: str, sender: str = "ana@example.com", hour: int = 0, minute: int = 0) -> bool:
        return store.claim_acknowledgment(ticket, sender, T0 + timedelta(hours=hour, minutes=minute), 3)

    first_hour = [claim(f"t{m}", minute=m) for m in range(5)]
    claimed_again = claim("t0", hour=1)  # a redelivery: not acknowledged, and not counted against the sender
    next_hour = [claim(f"u{m}", hour=1, minute=m) for m in range(4)]
    over_the_rate_before = claim("t3", hour=2)  # its claim stood: it is never acknowledged
    other = claim("v0", sender="bo@example.com")

    assert first_hour == [True, True, True, False, False] and claimed_again is False
    assert next_hour == [True, True, True, False]
    assert (over_the_rate_before, other) == (False, True)


def test_a_suppressed_sender_is_never_acknowledged_and_uses_none_of_the_hours_count(table: Table) -> None:
    from intake.records import SuppressionReason

    store = table.store
    store.suppress("cy@example.com", SuppressionReason.BOUNCE, T0, "feedback-1")

    refused = store.claim_acknowledgment("w0", "cy@example.com", T0, 3)
    again = store.claim_acknowledgment("w0", "cy@example.com", T0 + timedelta(hours=1), 3)  # a redelivery

    assert (refused, again) == (False, False)
    assert store.is_suppressed("cy@example.com") and not store.is_suppressed("ana@example.com")
    assert not [i for i in table.items() if i["PK"]["S"].startswith("ACKRATE#cy@example.com#")]
    assert store.claim_acknowledgment("w1", "ana@example.com", T0, 3) is True


def test_a_reply_writes_its_clocks_queue_place_and_message_ids_with_it_or_nothing(table: Table) -> None:
    store = table.store
    ticket = open_ticket(store, 1)
    known = ContactPlan(ticket.contact_id, is_new=False, name=None, new_identities=())
    following = timer().model_copy(
        update={
            "target": SlaTarget.NEXT_RESPONSE,
            "started_at": T0 + timedelta(hours=1),
            "due_at": T0 + timedelta(hours=2),
        }
    )
    reply = inbound(provider_message_id="m2", thread_key="thread-1", received_at=T0 + timedelta(hours=1))

    store.append_message(ticket, reply, known, clocks=ClockPlan((following,), following.due_at), message_ids=["m2@x"])

    state = store.ticket_state(ticket.id)
    assert state.timers == (following,) and state.ticket.next_due_at == following.due_at
    assert state.ticket.message_count == 2
    assert store.thread_links(["m2@x", "unknown@x"], [ticket.reference]) == ThreadLinks(
        {"m2@x": ticket.id}, {ticket.reference: ticket.id}
    )
    late = inbound(provider_message_id="m3", thread_key="thread-1", received_at=T0 + timedelta(hours=2))
    with pytest.raises(WriteConflictError) as lost:  # generation 1 was started meanwhile, the Message-ID recorded
        store.append_message(
            state.ticket, late, known, clocks=ClockPlan((following,), following.due_at), message_ids=["m2@x"]
        )
    assert lost.value.failed == ("timer", "message-id")
    assert store.ticket(ticket.id).message_count == 2  # all or nothing


def test_a_customer_message_opens_a_pending_ticket_and_loses_to_an_agents_change(table: Table) -> None:
    store = table.store
    ticket = open_ticket(store, 1)
    known = ContactPlan(ticket.contact_id, is_new=False, name=None, new_identities=())
    store.change_ticket(ticket, T0 + timedelta(minutes=5), EventKind.PENDING, {}, sets={"status": "pending"})
    pending = store.ticket(ticket.id)
    store.change_ticket(
        pending, T0 + timedelta(minutes=6), EventKind.RESPONDED, {}, sets={"first_responded_at": iso(T0)}
    )
    reply = inbound(provider_message_id="m2", thread_key="thread-1", received_at=T0 + timedelta(hours=1))

    with pytest.raises(WriteConflictError) as lost:  # planned on the ticket before the team's answer
        store.append_message(pending, reply, known, clocks=ClockPlan((), None))
    store.append_message(store.ticket(ticket.id), reply, known, clocks=ClockPlan((), None))

    assert lost.value.failed == ("ticket",)
    detail = store.ticket_detail(ticket.id)
    assert (detail.status, detail.next_due_at, detail.message_count) == (Status.OPEN, None, 2)
    assert [e.kind for e in detail.events][-2:] == [EventKind.CUSTOMER_REPLIED, EventKind.REOPENED]
    assert [t.id for t in store.queue([ticket.team]).items] == [ticket.id]  # after every deadline, still queued


def test_a_batch_read_returns_the_items_found_and_refuses_what_dynamodb_refuses(table: Table) -> None:
    for n in range(3):
        table.call("put_item", Item={**key("B", str(n)), "n": {"N": str(n)}})
    asked = [key("B", "2"), key("B", "0"), key("B", "missing")]

    read = table.client.batch_get_item(RequestItems={table.name: {"Keys": asked, "ConsistentRead": True}})

    assert sorted(item["n"]["N"] for item in read["Responses"][table.name]) == ["0", "2"]
    assert not read.get("UnprocessedKeys")
    twice = {table.name: {"Keys": [key("B", "0"), key("B", "0")]}}
    too_many = {table.name: {"Keys": [key("B", str(n)) for n in range(101)]}}
    for request in (twice, too_many):
        assert code(lambda r=request: table.client.batch_get_item(RequestItems=r)) == "ValidationException"


def test_a_token_is_claimed_once_until_released(table: Table) -> None:
    store = table.store
    claims = [store.claim_token("twilio", "tok", T0), store.claim_token("twilio", "tok", T0)]
    store.release_token("twilio", "tok")
    store.release_token("twilio", "never-claimed")

    assert (claims, store.claim_token("twilio", "tok", T0)) == ([True, False], True)


def test_a_survey_claim_holds_until_it_expires(table: Table) -> None:
    store = table.store
    contact, until = new_id(), T0 + timedelta(days=1)
    claims = [
        store.claim_survey(contact, "ticket-a", T0, until),
        store.claim_survey(contact, "ticket-b", T0 + timedelta(hours=1), until),
        store.claim_survey(contact, "ticket-a", T0 + timedelta(hours=2), until),  # its own claim
    ]
    store.release_survey(contact, "ticket-b")  # not its claim: nothing happens
    held = store.claim_survey(contact, "ticket-b", T0 + timedelta(hours=3), until)
    expired = store.claim_survey(contact, "ticket-b", until, until + timedelta(days=1))  # at expiry: free

    assert (claims, held, expired) == ([True, False, True], False, True)
    store.release_survey(contact, "ticket-b")
    assert store.claim_survey(contact, "ticket-c", T0, until) is True


def test_call_callbacks_fold_in_any_order(table: Table) -> None:
    store = table.store

    def event(kind: CallEventKind, minutes: int, **fields: Any) -> CallEvent:
        return CallEvent(
            kind=kind,
            provider="twilio",
            call_sid="CA1",
            event_id=f"e{minutes}",
            receipt_id=new_id(),
            received_at=T0 + timedelta(minutes=minutes),
            raw_archive_key="raw/x",
            **fields,
        )

    store.merge_call(event(CallEventKind.STARTED, 0, team="support", caller="+33612345678", call_status="ringing"))
    store.merge_call(
        event(CallEventKind.RECORDING, 2, recording=Recording(sid="RE1", url="https://r/1", duration_s=30))
    )
    store.merge_call(event(CallEventKind.STATUS, -1, team="billing", call_status="completed", duration_s=42))
    state = store.merge_call(event(CallEventKind.STATUS, 3, call_status="completed"))

    assert (state.started_at, state.team, state.caller) == (T0, "support", "+33612345678")
    assert (state.statuses, state.duration_s) == (frozenset({"ringing", "completed"}), 42)
    assert (state.recording_sid, state.recording_duration_s) == ("RE1", 30)


def test_the_first_satisfaction_answer_wins_and_comments_replace(table: Table) -> None:
    store = table.store
    ticket = open_ticket(store, 1)
    day = T0.date()
    store.record_survey_sent(ticket, day, T0 + timedelta(hours=1), {"via": "email"})

    linked = store.ticket_reference(ticket.id)  # what a survey link's page reads of the ticket

    first, recorded = store.record_csat(linked, 5, day, T0 + timedelta(hours=2))
    kept, again = store.record_csat(linked, 1, day, T0 + timedelta(hours=3))
    store.comment_csat(ticket.id, "quick", T0 + timedelta(hours=4))
    commented = store.comment_csat(ticket.id, "quick and kind", T0 + timedelta(hours=5))

    assert (linked.id, linked.team, linked.reference) == (ticket.id, "support", ticket.reference)
    assert (recorded, again, first.score, kept.score) == (True, False, 5, 5)
    assert commented is not None and commented.comment == "quick and kind"
    assert [(s.score, s.comment) for s in store.scores_received("support", day)] == [(5, "quick and kind")]
    assert store.surveys_sent("support", day) == 1
    assert store.comment_csat(open_ticket(store, 2).id, "no answer", T0) is None
    # the answer is an item of its own, outside the ticket's; the ticket's history shows it
    assert {i["PK"]["S"] for i in table.items() if i["SK"]["S"] == "CSAT"} == {f"CSAT#{ticket.id}"}
    answered = [e for e in store.ticket_detail(ticket.id).events if e.kind is EventKind.SURVEY_ANSWERED]
    assert [(e.at, e.detail) for e in answered] == [(T0 + timedelta(hours=2), {"score": 5})]
    with pytest.raises(TicketNotFoundError):
        store.ticket_reference(str(ULID()))


def test_a_projection_reads_only_the_attributes_it_names(table: Table) -> None:
    table.call("put_item", Item={**key("P#1", "S"), "team": {"S": "support"}, "body": {"S": "a customer's words"}})

    got = table.call(
        "get_item", Key=key("P#1", "S"), ProjectionExpression="#team", ExpressionAttributeNames={"#team": "team"}
    )

    assert got["Item"] == {"team": {"S": "support"}}
    assert table.call("get_item", Key=key("P#1", "S"), ProjectionExpression="body")["Item"] == {
        "body": {"S": "a customer's words"}
    }


def test_quarantine_lists_newest_first_and_releases_a_held_email_once(table: Table) -> None:
    store = table.store
    held = [
        QuarantinedEmail(
            id=new_id(T0 + timedelta(seconds=n)),
            arrived=EmailArrived(
                provider="ses", receipt_id=new_id(), received_at=T0 + timedelta(seconds=n), raw_archive_key=f"raw/{n}"
            ),
            reasons=("spam",),
        )
        for n in range(3)
    ]
    for email in [*held, held[0]]:  # a redelivery keeps the first record
        store.quarantine(email)
    released = held[1].model_copy(update={"status": QuarantineStatus.RELEASED, "released_at": T0})

    store.release(released)
    with pytest.raises(WriteConflictError):
        store.release(released)  # `contains(document, :held)` no longer holds

    assert [e.id for e in store.list_quarantine()] == [held[2].id, held[0].id]
    assert [e.id for e in store.list_quarantine(None)] == [held[2].id, held[1].id, held[0].id]
    assert store.quarantined(held[1].id) == released


def test_a_messages_failed_tries_are_counted_keeping_the_first_and_the_latest(table: Table) -> None:
    # Given a message that failed three times, and another queue's message that failed once
    store = table.store
    for n, error in enumerate(["KeyError", "KeyError", "ValidationError"]):
        store.record_failure("inbound", "m-1", error, f"try {n}", T0 + timedelta(minutes=n), timedelta(days=14))
    store.record_failure("notifications", "m-2", "MailerError", "refused", T0, timedelta(days=14))

    # Then its record has the latest error, three tries, the first and the last, and expires 14 days after the last
    [record] = store.failure_records("inbound").values()
    assert (record.queue, record.message_id, record.error_type, record.error_message, record.attempts) == (
        "inbound",
        "m-1",
        "ValidationError",
        "try 2",
        3,
    )
    assert (record.first_try, record.last_try) == (T0, T0 + timedelta(minutes=2))
    [item] = [i for i in table.items() if i["PK"]["S"] == "FAIL#inbound"]
    assert int(item["expires_at"]["N"]) == int((T0 + timedelta(minutes=2, days=14)).timestamp())
    assert list(store.failure_records("notifications")) == ["m-2"]
    assert store.failure_records("email") == {}


# ------------------------------------------------------------------ the expression grammar, raw


ITEM = {
    "PK": {"S": "grammar"},
    "SK": {"S": "item"},
    "n": {"N": "10"},
    "ns": {"S": "10"},
    "s": {"S": "héllo world"},
    "tags": {"SS": ["a", "b"]},
    "nums": {"NS": ["1", "2"]},
    "l": {"L": [{"S": "x"}, {"N": "1"}]},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
}
VALUES = {
    ":one": {"N": "1"},
    ":two": {"N": "2"},
    ":five": {"N": "5"},
    ":nine": {"N": "9"},
    ":ten": {"N": "10"},
    ":ten_point_zero": {"N": "10.0"},
    ":eleven": {"N": "11"},
    ":twenty": {"N": "20"},
    ":ten_text": {"S": "10"},
    ":nine_text": {"S": "9"},
    ":a": {"S": "a"},
    ":x": {"S": "x"},
    ":he": {"S": "hé"},
    ":world": {"S": "world"},
    ":yes": {"BOOL": True},
    ":no": {"BOOL": False},
    ":type_n": {"S": "N"},
}


def holds(table: Table, condition: str, names: dict[str, str] | None = None) -> bool:
    """Whether `condition` holds for ITEM: a conditional put of the same item, made or refused."""
    request: dict[str, Any] = {"Item": ITEM, "ConditionExpression": condition}
    used = {k: v for k, v in VALUES.items() if any(k == t.rstrip(",)") for t in condition.replace("(", " ").split())}
    if used:
        request["ExpressionAttributeValues"] = used
    if names:
        request["ExpressionAttributeNames"] = names
    failure = code(lambda: table.call("put_item", **request))
    assert failure in ("", "ConditionalCheckFailedException"), (condition, failure)
    return failure == ""


CONDITIONS = [
    ("n = :ten", True),
    ("n = :ten_point_zero", True),  # numbers compare as numbers
    ("n = :ten_text", False),  # a number never equals a string
    ("n <> :ten_text", True),
    ("ns = :ten_text", True),
    ("n > :nine", True),
    ("ns > :nine_text", False),  # strings compare bytewise: "10" < "9"
    ("gone <> :ten", True),  # an absent attribute is not equal to anything
    ("gone = :ten", False),
    ("NOT n = :ten", False),
    ("NOT (n = :nine)", True),
    ("n BETWEEN :five AND :ten", True),
    ("n BETWEEN :eleven AND :twenty", False),
    ("n IN (:one, :ten)", True),
    ("n IN (:one, :five)", False),
    ("size(s) = :eleven", True),
    ("size(tags) = :two", True),
    ("size(l) = :two", True),
    ("begins_with(s, :he)", True),
    ("begins_with(s, :world)", False),
    ("contains(s, :world)", True),
    ("contains(tags, :a)", True),
    ("contains(nums, :one)", True),
    ("contains(l, :x)", True),
    ("contains(tags, :x)", False),
    ("attribute_exists(nothing) AND attribute_not_exists(gone)", True),
    ("attribute_type(n, :type_n)", True),
    ("(n = :five OR n = :ten) AND (NOT (s = :x) AND (flag = :yes))", True),
    ("(n = :five) OR (NOT (n = :ten OR (flag = :no)))", False),
    ("n = :five OR n = :ten AND flag = :no", False),  # AND binds tighter than OR
    ("flag = :no AND n = :five OR n = :ten", True),
]


def test_condition_expressions_evaluate_as_dynamodb_does(table: Table) -> None:
    table.call("put_item", Item=ITEM)

    results = [(condition, holds(table, condition)) for condition, _ in CONDITIONS]

    assert results == CONDITIONS
    assert holds(table, "#s = :x OR #n = :ten", names={"#s": "s", "#n": "n"}) is True


@pytest.mark.parametrize("condition", ["n < :ten_text", "size(gone) = :two"])
def test_conditions_moto_cannot_evaluate_are_false(table: Table, condition: str) -> None:
    table.call("put_item", Item=ITEM)
    if table.kind == "moto":
        # moto raises a Python error here (it compares a Decimal with a str; it has no size of an absent
        # attribute). DynamoDB's comparisons of two different types, or with an absent attribute, are false:
        # the condition fails, as with the adapter.
        with pytest.raises((TypeError, ValueError)):
            holds(table, condition)
    else:
        assert holds(table, condition) is False


def test_updates_add_append_and_compute_from_the_item_as_it_was(table: Table) -> None:
    update = "ADD c :one, tags :set SET l = list_append(if_not_exists(l, :none), :x), seen = if_not_exists(seen, :t)"
    values = {":one": {"N": "1"}, ":set": {"SS": ["a", "b"]}, ":none": {"L": []}, ":x": {"L": [{"S": "x"}]}}

    def apply(expression: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return table.call(
            "update_item",
            Key=key("u", "u"),
            UpdateExpression=expression,
            ExpressionAttributeValues={**values, ":t": {"S": "first"}, **(extra or {})},
            ReturnValues="ALL_NEW",
        )["Attributes"]

    created = apply(update)  # on a missing item: ADD counts from 0, if_not_exists takes the default
    again = apply(update.replace("first", "second"), None)
    assert (created["c"], created["l"], created["seen"], sorted(created["tags"]["SS"])) == (
        {"N": "1"},
        {"L": [{"S": "x"}]},
        {"S": "first"},
        ["a", "b"],
    )
    assert (again["c"], again["l"], again["seen"]) == ({"N": "2"}, {"L": [{"S": "x"}, {"S": "x"}]}, {"S": "first"})

    swapped = table.call(
        "update_item",
        Key=key("u", "u"),
        UpdateExpression="SET c = c - :one, d = c REMOVE l DELETE tags :a",
        ExpressionAttributeValues={":one": {"N": "1"}, ":a": {"SS": ["a"]}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert (swapped["c"], swapped["d"], "l" in swapped, swapped["tags"]) == (
        {"N": "1"},
        {"N": "2"},
        False,
        {"SS": ["b"]},
    )

    missing = code(
        lambda: table.call(
            "update_item",
            Key=key("u", "u"),
            UpdateExpression="SET e = e + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    )
    assert missing == "ValidationException"  # `e + 1` needs e; ADD is the one that counts from 0


def test_limit_counts_items_read_before_the_filter_and_pages_continue(table: Table) -> None:
    for n in range(11):
        table.call("put_item", Item={**key("page", f"{n:02}"), "even": {"BOOL": n % 2 == 0}})

    def pages(forward: bool) -> list[tuple[int, list[str], str | None]]:
        request: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk",
            "FilterExpression": "even = :yes",
            "ExpressionAttributeValues": {":pk": {"S": "page"}, ":yes": {"BOOL": True}},
            "Limit": 4,
            "ScanIndexForward": forward,
        }
        seen = []
        while True:
            page = table.call("query", **request)
            last = page.get("LastEvaluatedKey")
            seen.append((page["ScannedCount"], [i["SK"]["S"] for i in page["Items"]], last and last["SK"]["S"]))
            if last is None:
                return seen
            request["ExclusiveStartKey"] = last

    assert pages(True) == [(4, ["00", "02"], "03"), (4, ["04", "06"], "07"), (3, ["08", "10"], None)]
    assert pages(False) == [(4, ["10", "08"], "07"), (4, ["06", "04"], "03"), (3, ["02", "00"], None)]


def test_key_conditions_read_ranges_of_the_sort_key(table: Table) -> None:
    for sk in ["a", "ab", "abc", "b", "b\x00", "ba", "c"]:
        table.call("put_item", Item=key("range", sk))

    def sort_keys(condition: str, forward: bool = True, **values: str) -> list[str]:
        page = table.call(
            "query",
            KeyConditionExpression=f"PK = :pk AND {condition}",
            ExpressionAttributeNames={"#sk": "SK"},
            ExpressionAttributeValues={":pk": {"S": "range"}, **{f":{k}": {"S": v} for k, v in values.items()}},
            ScanIndexForward=forward,
        )
        return [i["SK"]["S"] for i in page["Items"]]

    assert sort_keys("begins_with(#sk, :p)", p="ab") == ["ab", "abc"]
    assert sort_keys("#sk > :v", v="b") == ["b\x00", "ba", "c"]
    assert sort_keys("#sk >= :v", forward=False, v="b") == ["c", "ba", "b\x00", "b"]
    assert sort_keys("#sk < :v", v="ab") == ["a"]
    assert sort_keys("#sk <= :v", v="ab") == ["a", "ab"]
    assert sort_keys("#sk BETWEEN :lo AND :hi", lo="ab", hi="b") == ["ab", "abc", "b"]
    assert sort_keys("#sk = :v", v="b\x00") == ["b\x00"]
    count = table.call(
        "query",
        Select="COUNT",
        KeyConditionExpression="PK = :pk AND begins_with(SK, :p)",
        ExpressionAttributeValues={":pk": {"S": "range"}, ":p": {"S": "b"}},
    )
    assert (count["Count"], "Items" in count) == (3, False)


def test_an_index_is_sparse_ordered_and_paged_with_its_keys(table: Table) -> None:
    rows = [("t1", "k2"), ("t2", "k2"), ("t0", "k1"), ("t3", "k3"), ("t4", None)]
    for pk, created in rows:
        item = {**key(pk, "META"), "team": {"S": "blue"}}
        if created is not None:
            item["created_key"] = {"S": created}
        table.call("put_item", Item=item)
    table.call("put_item", Item={**key("t5", "META"), "team": {"S": "red"}, "created_key": {"S": "k0"}})

    def read(forward: bool) -> tuple[list[str], list[dict[str, Any]]]:
        request: dict[str, Any] = {
            "IndexName": "by_team",
            "KeyConditionExpression": "team = :team",
            "ExpressionAttributeValues": {":team": {"S": "blue"}},
            "Limit": 2,
            "ScanIndexForward": forward,
        }
        found, keys = [], []
        while True:
            page = table.call("query", **request)
            found += [i["PK"]["S"] for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return found, keys
            keys.append(page["LastEvaluatedKey"])
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    forward, forward_keys = read(True)
    backward, _ = read(False)
    assert forward == ["t0", "t1", "t2", "t3"]  # t4 has no sort key attribute: not in the index
    assert backward == ["t3", "t2", "t1", "t0"]
    assert forward_keys[0] == {"team": {"S": "blue"}, "created_key": {"S": "k2"}, **key("t1", "META")}


def test_a_page_cut_by_limit_has_a_last_evaluated_key_even_with_nothing_after_it(table: Table) -> None:
    for n in range(3):
        table.call("put_item", Item=key("exact", str(n)))
    page = table.call(
        "query", KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": "exact"}}, Limit=3
    )
    if table.kind == "moto":
        # moto looks ahead and leaves the key out. DynamoDB stops when Limit items were read and returns the key
        # ("LastEvaluatedKey ... does not necessarily mean that there is more data"): the adapter does so.
        assert "LastEvaluatedKey" not in page
    else:
        assert page["LastEvaluatedKey"] == key("exact", "2")
        after = table.call(
            "query",
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": "exact"}},
            Limit=3,
            ExclusiveStartKey=page["LastEvaluatedKey"],
        )
        assert (after["Items"], "LastEvaluatedKey" in after) == ([], False)


def test_an_item_over_400_kb_is_refused(table: Table) -> None:
    big = {**key("big", "big"), "text": {"S": "x" * 410_000}}
    table.call("put_item", Item={**key("grow", "grow"), "text": {"S": "x" * 300_000}})

    refused = [
        code(lambda: table.call("put_item", Item=big)),
        code(
            lambda: table.client.transact_write_items(TransactItems=[{"Put": {"TableName": table.name, "Item": big}}])
        ),
        code(
            lambda: table.call(
                "update_item",
                Key=key("grow", "grow"),
                UpdateExpression="SET more = :more",
                ExpressionAttributeValues={":more": {"S": "y" * 150_000}},
            )
        ),
    ]

    assert refused == ["ValidationException"] * 3
    assert "Item" not in table.call("get_item", Key=key("big", "big"))


def test_malformed_expressions_are_refused(table: Table) -> None:
    value = {":v": {"S": "x"}}

    def update(expression: str) -> str:
        return code(
            lambda: table.call(
                "update_item", Key=key("m", "m"), UpdateExpression=expression, ExpressionAttributeValues=value
            )
        )

    assert [
        update(e) for e in ["SET a = = :v", "SET a = foo(:v)", "PUT a = :v", "SET a = :v SET b = :v", "SET a = :v,"]
    ] == ["ValidationException"] * 5
    assert update("SET PK = :v") == "ValidationException"  # a key attribute
    assert update("SET a = :v REMOVE a") == "ValidationException"  # overlapping paths

    def condition(expression: str) -> Callable[[], Any]:
        return lambda: table.call(
            "put_item", Item=key("m", "m"), ConditionExpression=expression, ExpressionAttributeValues=value
        )

    # DynamoDB refuses redundant parentheses, and so do both
    assert code(condition("((a = :v))")) == code(condition("a = :v OR ((a = :v))")) == "ValidationException"
    malformed = [
        "a = = :v",
        "nofunction(a) = :v",
        "(a = :v",
        "a = :v AND",
        "a BETWEEN :v OR :v",
        "attribute_exists(:v)",
    ]
    if table.kind == "moto":
        # moto's condition parser raises ValueError (not a ClientError); DynamoDB answers ValidationException.
        for expression in malformed:
            with pytest.raises(ValueError):
                condition(expression)()
    else:
        assert [code(condition(e)) for e in malformed] == ["ValidationException"] * len(malformed)


def test_placeholders_must_all_be_defined_and_used(table: Table) -> None:
    def put(**request: Any) -> str:
        return code(lambda: table.call("put_item", Item=key("p", "p"), **request))

    assert put(ConditionExpression="attribute_not_exists(PK)", ExpressionAttributeValues={}) == "ValidationException"
    unused = put(ConditionExpression="attribute_not_exists(PK)", ExpressionAttributeValues={":v": {"S": "x"}})
    if table.kind == "moto":
        # moto accepts a value no expression uses; DynamoDB refuses it ("Value provided in
        # ExpressionAttributeValues unused in expressions"), and so does the adapter.
        assert unused == ""
    else:
        assert unused == "ValidationException"


def test_a_transaction_is_all_or_nothing_and_says_why_per_item(table: Table) -> None:
    table.call("put_item", Item=key("exists", "x"))

    def put(pk: str, condition: str | None = None) -> dict[str, Any]:
        request: dict[str, Any] = {"TableName": table.name, "Item": key(pk, "x")}
        if condition:
            request["ConditionExpression"] = condition
        return {"Put": request}

    with pytest.raises(ClientError) as cancelled:
        table.client.transact_write_items(
            TransactItems=[
                put("new"),
                put("exists", "attribute_not_exists(PK)"),
                {
                    "ConditionCheck": {
                        "TableName": table.name,
                        "Key": key("absent", "x"),
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                },
                {"Delete": {"TableName": table.name, "Key": key("exists", "y")}},
            ]
        )

    response = cancelled.value.response
    assert response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in response["CancellationReasons"]] == [
        "None",
        "ConditionalCheckFailed",
        "ConditionalCheckFailed",
        "None",
    ]
    assert "Item" not in table.call("get_item", Key=key("new", "x"))
    twice = code(lambda: table.client.transact_write_items(TransactItems=[put("a"), put("a")]))
    too_many = code(lambda: table.client.transact_write_items(TransactItems=[put(f"n{n}") for n in range(101)]))
    assert (twice, too_many) == ("ValidationException", "ValidationException")


def test_numbers_are_kept_with_their_zeroes_trimmed(table: Table) -> None:
    table.call("put_item", Item={**key("num", "num"), "x": {"N": "01.50"}})
    stored = table.call("get_item", Key=key("num", "num"))["Item"]["x"]["N"]
    if table.kind == "moto":
        # moto keeps the text as sent; DynamoDB documents "Leading and trailing zeroes are trimmed", and the
        # adapter trims them.
        assert stored == "01.50"
    else:
        assert stored == "1.5"


def test_expired_items_are_read_until_deleted(table: Table) -> None:
    # DynamoDB deletes expired items lazily (within days): reads still return them, as on both here
    assert table.store.claim_token("twilio", "old", T0 - timedelta(days=30)) is True
    assert table.store.claim_token("twilio", "old", T0) is False


def test_returned_items_are_copies(table: Table) -> None:
    item = {**key("copy", "copy"), "l": {"L": [{"S": "a"}]}}
    table.call("put_item", Item=item)
    item["l"]["L"].append({"S": "changed by the caller"})
    read = table.call("get_item", Key=key("copy", "copy"))["Item"]
    read["l"]["L"].clear()

    assert table.call("get_item", Key=key("copy", "copy"))["Item"]["l"] == {"L": [{"S": "a"}]}


# ------------------------------------------------------------------ SQLite only: threads, processes, files


@pytest.fixture
def sqlite_table(tmp_path: Path) -> Iterator[Table]:
    sqlite = SqliteTable(tmp_path / "t.db")
    yield Table("sqlite", sqlite, "any-table-name")
    sqlite.close()


def race(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(n)` for n in range(count), each in its own thread, released together."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(n: int) -> None:
        start.wait()
        results[n] = work(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_eight_threads_ingesting_the_same_message_make_one_ticket(sqlite_table: Table) -> None:
    message = inbound()
    results = race(8, lambda _: ingest(sqlite_table.store, message, new_id))

    assert sorted(r.outcome for r in results) == [Outcome.CREATED] + [Outcome.DUPLICATE] * 7
    assert len({r.ticket_id for r in results}) == 1
    assert len(sqlite_table.tickets()) == 1


def test_the_breach_and_the_response_racing_in_threads_settle_once(sqlite_table: Table) -> None:
    store = sqlite_table.store
    for _ in range(25):
        ticket_id = new_id()
        store.put_timer(ticket_id, timer(1), None)

        def settle(n: int, ticket_id: str = ticket_id) -> bool:
            return breach(sqlite_table, ticket_id, 1) if n else store.end_timer(ticket_id, timer(1), "met", T0)

        outcomes = race(2, settle)
        assert sorted(outcomes) == [False, True]


def test_expired_items_are_swept(sqlite_table: Table) -> None:
    store, table = sqlite_table.store, sqlite_table.client
    store.claim_token("twilio", "old", T0, keep=timedelta(hours=1))
    store.claim_token("twilio", "new", T0, keep=timedelta(days=1))
    store.record_event("t", EventKind.ASSIGNED, T0, {})  # no TTL: kept

    swept = table.sweep_expired(int((T0 + timedelta(hours=2)).timestamp()))

    assert swept == 1
    assert store.claim_token("twilio", "old", T0) is True
    assert store.claim_token("twilio", "new", T0) is False


def claim_tokens(path: str, ready: Any, go: Any, claimed: Any) -> None:
    """A process's part of the race: claim tokens 0..199 on the file, report those it won."""
    table = SqliteTable(Path(path))
    store = Store(table, "any")  # type: ignore[arg-type]
    ready.put(os.getpid())
    go.wait()
    claimed.put([n for n in range(200) if store.claim_token("race", str(n), T0)])
    table.close()


def test_two_processes_claim_each_token_exactly_once(tmp_path: Path) -> None:
    SqliteTable(tmp_path / "t.db").close()
    context = multiprocessing.get_context("spawn")
    ready, claimed, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=claim_tokens, args=(str(tmp_path / "t.db"), ready, go, claimed)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=60)
    go.set()
    won = [claimed.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)

    assert sorted(won[0] + won[1]) == list(range(200))
    assert set(won[0]).isdisjoint(won[1])
    assert [p.exitcode for p in processes] == [0, 0]


def claim_forever(path: str, reported: Any) -> None:
    """Claim token after token, reporting each one after its write returned (committed)."""
    store = Store(SqliteTable(Path(path)), "any")  # type: ignore[arg-type]
    n = 0
    while True:
        store.claim_token("durable", str(n), T0)
        reported.put(n)
        n += 1


def test_what_was_committed_survives_kill_9(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    reported = context.Queue()
    writer = context.Process(target=claim_forever, args=(str(tmp_path / "t.db"), reported))
    writer.start()
    committed = [reported.get(timeout=60) for _ in range(50)]
    os.kill(writer.pid or 0, signal.SIGKILL)
    writer.join(timeout=30)

    table = SqliteTable(tmp_path / "t.db")
    store = Store(table, "any")  # type: ignore[arg-type]
    assert [store.claim_token("durable", str(n), T0) for n in committed] == [False] * len(committed)
    with sqlite3.connect(tmp_path / "t.db") as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    table.close()
