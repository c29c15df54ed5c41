"""The channel-agnostic core on moto: dedupe windows, threads, contacts, and the read API over them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ulid import ULID

from intake.ingest import Outcome, ingest
from intake.model import InboundMessage, Priority, Sender, Status
from tests.aws.conftest import Stack, at
from tests.unit.builders import form_message

T0 = at("2026-11-20T09:00:00+00:00")


def new_id() -> str:
    return str(ULID())


def message(**changes: Any) -> InboundMessage:
    return form_message(changes.pop("received_at", T0), changes.pop("receipt_id", new_id()), **changes)


def test_identical_submission_is_dropped_within_the_window_and_kept_as_a_reminder_after_it(
    stack: Stack,
) -> None:
    first = ingest(stack.store, message(), new_id)
    nine_minutes = ingest(stack.store, message(received_at=T0 + timedelta(minutes=9)), new_id)
    eleven_minutes = ingest(stack.store, message(received_at=T0 + timedelta(minutes=11)), new_id)

    assert first.outcome == Outcome.CREATED
    assert (nine_minutes.outcome, nine_minutes.ticket_id) == (Outcome.DUPLICATE, first.ticket_id)
    # The same words again, later, while the ticket is open: the customer is still waiting
    assert (eleven_minutes.outcome, eleven_minutes.ticket_id) == (Outcome.APPENDED, first.ticket_id)
    assert len(stack.tickets()) == 1
    assert stack.store.ticket(first.ticket_id).message_count == 2


def test_replaying_the_same_message_hours_later_is_still_a_duplicate(stack: Stack) -> None:
    # The window is judged at the message's own receive time, never the wall clock
    original = message()
    created = ingest(stack.store, original, new_id)
    replayed = ingest(stack.store, original, new_id)
    assert (replayed.outcome, replayed.ticket_id) == (Outcome.DUPLICATE, created.ticket_id)


def test_a_second_message_in_an_open_thread_is_appended_to_its_ticket(stack: Stack) -> None:
    created = ingest(stack.store, message(), new_id)
    later = message(
        provider_message_id="sha256-def",
        received_at=T0 + timedelta(hours=1),
        text="Any news?",
        dedupe_window_s=691200,
    )
    appended = ingest(stack.store, later, new_id)

    assert (appended.outcome, appended.ticket_id) == (Outcome.APPENDED, created.ticket_id)
    detail = stack.store.ticket_detail(created.ticket_id)
    assert [m.text for m in detail.messages] == ["It was due yesterday.", "Any news?"]
    assert detail.message_count == 2 and detail.last_inbound_at == T0 + timedelta(hours=1)
    assert [e.kind.value for e in detail.events] == ["created", "customer_replied"]


def test_a_message_for_a_closed_thread_opens_a_new_ticket_and_moves_the_thread(stack: Stack) -> None:
    first = ingest(stack.store, message(), new_id)
    stack.dynamodb.update_item(
        TableName=stack.resources.table,
        Key={"PK": {"S": f"TICKET#{first.ticket_id}"}, "SK": {"S": "META"}},
        UpdateExpression="SET #s = :resolved",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":resolved": {"S": Status.RESOLVED.value}},
    )
    second = ingest(stack.store, message(provider_message_id="sha256-new", received_at=T0 + timedelta(days=1)), new_id)

    assert second.outcome == Outcome.CREATED and second.ticket_id != first.ticket_id
    current = stack.store.thread_ticket("form#contact#sha256-abc")
    assert current is not None and current.id == second.ticket_id


def test_one_contact_across_identities_learns_new_ones(stack: Stack) -> None:
    by_email = ingest(stack.store, message(), new_id)
    both = message(
        provider_message_id="p2",
        thread_key="other-thread",
        sender=Sender(name="Ana", email="ana@example.com", phone="+33612345678"),
    )
    by_phone_only = message(provider_message_id="p3", thread_key="third-thread", sender=Sender(phone="+33612345678"))
    second = ingest(stack.store, both, new_id)
    third = ingest(stack.store, by_phone_only, new_id)

    contact_ids = {stack.store.ticket(r.ticket_id).contact_id for r in (by_email, second, third)}
    assert len(contact_ids) == 1
    contact = stack.store.contact(contact_ids.pop())
    assert contact is not None
    assert contact.emails == ("ana@example.com",) and contact.phones == ("+33612345678",)


def test_ticket_list_is_newest_first_filtered_and_paged_with_a_cursor(stack: Stack) -> None:
    for n in range(7):
        ingest(
            stack.store,
            message(
                provider_message_id=f"m{n}",
                thread_key=f"t{n}",
                received_at=T0 + timedelta(minutes=n),
                subject=f"ticket {n}",
                priority=Priority.URGENT if n % 2 else Priority.NORMAL,
            ),
            new_id,
        )

    status, first = stack.get("/tickets?limit=3")
    assert status == 200 and [t["subject"] for t in first["items"]] == ["ticket 6", "ticket 5", "ticket 4"]
    second = stack.get(f"/tickets?limit=3&cursor={first['next']}")[1]
    third = stack.get(f"/tickets?limit=3&cursor={second['next']}")[1]
    assert [t["subject"] for t in second["items"]] == ["ticket 3", "ticket 2", "ticket 1"]
    assert [t["subject"] for t in third["items"]] == ["ticket 0"] and third["next"] is None
    assert len(stack.get("/tickets?status=open&channel=form&team=support")[1]["items"]) == 7
    assert stack.get("/tickets?status=resolved")[1]["items"] == []


def test_bad_queries_name_the_parameter(stack: Stack) -> None:
    for query, field in [
        ("status=lost", "status"),
        ("channel=fax", "channel"),
        ("limit=0", "limit"),
        ("team=nobody", "team"),
    ]:
        status, problem = stack.get(f"/tickets?{query}")
        assert (status, problem["field"]) == (400, field)
    status, problem = stack.get("/tickets?cursor=nonsense")
    assert (status, problem["type"]) == (400, "urn:intake:problem:cursor-invalid")


def test_unknown_ticket_and_route_are_404_problems(stack: Stack) -> None:
    status, problem = stack.get(f"/tickets/{new_id()}")
    assert (status, problem["type"]) == (404, "urn:intake:problem:ticket-not-found")
    assert stack.get("/nowhere")[0] == 404
    assert stack.get("/healthz") == (200, {"status": "ok"})
