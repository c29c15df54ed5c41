"""A customer's message: what the ingest core reads first, and the one write that makes it a ticket or adds it
to one, with its contact, thread, dedupe record, clocks and queue counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from intake.model import EventKind, InboundMessage, SlaTimer, Status, Ticket
from intake.records import ClockPlan, ContactPlan, Lookup, TicketState
from intake.store import keys
from intake.store.backlog import (
    BACKLOG_ATTEMPTS,
    COUNTED_ATTRIBUTES,
    QUEUE_ATTRIBUTES,
    BacklogStore,
    as_read,
    counted_for,
    queue_position,
    unchanged_condition,
)
from intake.store.claims import ClaimsStore
from intake.store.contacts import ContactsStore
from intake.store.errors import StoreUnavailableError, WriteConflictError
from intake.store.items import event_item, expression_values, iso_or_none, item_key, message_item, seen_of
from intake.store.keys import iso
from intake.store.threads import ThreadsStore
from intake.store.tickets import TicketsStore
from intake.store.timers import TimersStore


class InboundStore(TicketsStore, ThreadsStore, ClaimsStore, ContactsStore, TimersStore, BacklogStore):
    def lookup(
        self,
        message: InboundMessage,
        message_ids: Sequence[str] = (),
        known: TicketState | None = None,
        earlier: Mapping[tuple[str, str], tuple[str, str]] | None = None,
    ) -> Lookup:
        """What the ingest core reads before it writes, in one round trip: the message's dedupe record, the sender's
        identities (and the `earlier` forms of some, as they were once written: an earlier form's contact owns the
        identity when the identity itself is unknown), its thread, and `message_ids` (email); and a second for the
        thread's ticket and its clocks, unless it is `known` (just read by the caller)."""
        seen_key = (keys.seen_pk(message.provider, message.provider_message_id), keys.SEEN_SK)
        thread_key = (keys.thread_pk(message.thread_key), keys.THREAD_SK)
        identity_keys = {
            (kind, value): (keys.identity_pk(kind, value), keys.IDENTITY_SK)
            for kind, value in message.sender.identities()
        }
        earlier_keys = {form: (keys.identity_pk(*form), keys.IDENTITY_SK) for form in (earlier or {}).values()}
        message_keys = {message_id: (keys.message_id_pk(message_id), keys.MESSAGE_ID_SK) for message_id in message_ids}
        found = self._batch_get(
            [seen_key, thread_key, *identity_keys.values(), *earlier_keys.values(), *message_keys.values()]
        )
        seen = found.get(seen_key)
        thread = found.get(thread_key)
        state = None
        if thread is not None:
            ticket_id = str(thread["ticket_id"])
            state = known if known is not None and known.ticket.id == ticket_id else self.ticket_state(ticket_id)
        return Lookup(
            seen=None if seen is None else seen_of(seen),
            owners={
                identity: None if key not in found else str(found[key]["contact_id"])
                for identity, key in identity_keys.items()
            }
            | {form: str(found[key]["contact_id"]) for form, key in earlier_keys.items() if key in found},
            thread=state,
            message_tickets={
                message_id: str(found[key]["ticket_id"]) for message_id, key in message_keys.items() if key in found
            },
        )

    def create_ticket(
        self,
        ticket: Ticket,
        inbound: InboundMessage,
        contact: ContactPlan,
        replaces_thread_ticket: str | None,
        day: date | None = None,
        timers: Sequence[SlaTimer] = (),
        message_ids: Sequence[str] = (),
    ) -> None:
        """Ticket, first message, created event, thread pointer, contact and dedupe record, its SLA clocks
        (`timers`, with their started events and the ticket's place in the queue), and its email `message_ids`
        recorded against it (each not recorded yet): all or nothing. `day` is the team's local date of its creation
        (the `by_day` index: digests read a local day); UTC's when not given."""
        created_key = keys.created_key(ticket.created_at, ticket.id)
        due = min((t.due_at for t in timers), default=None)
        meta = {
            "PK": keys.ticket_pk(ticket.id),
            "SK": keys.META,
            **ticket.model_dump(mode="json"),
            "created_at": iso(ticket.created_at),
            "updated_at": iso(ticket.updated_at),
            "last_inbound_at": iso(ticket.last_inbound_at),
            "reply_window_closes_at": iso_or_none(ticket.reply_window_closes_at),
            "created_key": created_key,
            "team_day": keys.team_day(ticket.team, day or ticket.created_at.date()),
            **queue_position(ticket, due),
        }
        if "open_team" in meta:
            meta["wait_key"] = keys.wait_key(ticket.breached, meta["last_inbound_at"], ticket.id)
        thread_condition = "attribute_not_exists(PK)"
        thread_values: dict[str, Any] = {}
        if replaces_thread_ticket is not None:
            thread_condition = "ticket_id = :previous"
            thread_values = expression_values(previous=replaces_thread_ticket)
        operations = [
            ("ticket", {"Put": self._put(meta, "attribute_not_exists(PK)")}),
            ("message", {"Put": self._put(message_item(ticket.id, inbound), "attribute_not_exists(PK)")}),
            ("event", {"Put": self._put(event_item(ticket.id, EventKind.CREATED, ticket.created_at, {}))}),
            (
                "thread",
                {
                    "Put": self._put(
                        {"PK": keys.thread_pk(ticket.thread_key), "SK": keys.THREAD_SK, "ticket_id": ticket.id},
                        thread_condition,
                        thread_values,
                    )
                },
            ),
            ("seen", {"Put": self._seen_put(ticket.id, inbound)}),
            (
                "reference",
                {
                    "Put": self._put(
                        {"PK": keys.reference_pk(ticket.reference), "SK": keys.REFERENCE_SK, "ticket_id": ticket.id},
                        "attribute_not_exists(PK)",
                    )
                },
            ),
            *self._contact_operations(contact, inbound.received_at),
            *self._timer_operations(ticket.id, timers),
            *self._message_id_operations(ticket.id, message_ids),
            *self._backlog_change(ticket.team, Counter(), counted_for(meta)),
        ]
        self._transact(operations, retry_conflicts=True)  # the team's counter item is in every team's creation

    def append_message(
        self,
        ticket: Ticket,
        inbound: InboundMessage,
        contact: ContactPlan,
        *,
        reopen: bool = False,
        clocks: ClockPlan | None = None,
        message_ids: Sequence[str] = (),
        reply_window: timedelta | None = None,
    ) -> None:
        """A further customer message on an open ticket (or, `reopen`, on a resolved one it opens again), with its
        dedupe record, what it does to the ticket's SLA clocks (`clocks`: their new generations, their started
        events and the ticket's place in the queue) and its email `message_ids` recorded against the ticket (each
        not recorded yet): all or nothing. A pending ticket (waiting on the customer) is open again. With `clocks`, its
        place in `open_by_wait` and the team's backlog counters move in the same write (see `_append_counted`).
        `reply_window`: the conversation's free-reply window (`registry.reply_window`), renewed by this message."""
        # Messages may arrive out of order: the latest inbound time only moves forward. The update is conditioned on
        # the version read (its status, last change and last message: every agent action changes `updated_at`), the
        # one the clocks were planned on, so a concurrent write makes this one read again and retry.
        latest = max(ticket.last_inbound_at, inbound.received_at)
        window = latest + reply_window if reply_window is not None else None
        values: dict[str, Any] = {
            "one": 1,
            "at": iso(max(ticket.updated_at, inbound.received_at)),
            "latest": iso(latest),
            "status_read": ticket.status.value,
            "updated_read": iso(ticket.updated_at),
            "inbound_read": iso(ticket.last_inbound_at),
        }
        sets = ["message_count = message_count + :one", "updated_at = :at", "last_inbound_at = :latest"]
        removes: list[str] = []
        if window is not None:
            sets.append("reply_window_closes_at = :window")
            values["window"] = iso(window)
        condition = "#status = :status_read AND updated_at = :updated_read AND last_inbound_at = :inbound_read"
        if reopen:
            if ticket.status != Status.RESOLVED:
                raise ValueError(f"only a resolved ticket reopens, not a {ticket.status.value} one")
            removes.append("resolved_at")
        elif not ticket.status.is_open:
            raise ValueError(f"a message is appended to an open or pending ticket, not a {ticket.status.value} one")
        events = [(EventKind.REOPENED, {"by": "customer"})] if reopen else [(EventKind.CUSTOMER_REPLIED, {})]
        if ticket.status != Status.OPEN:
            sets.append("#status = :open")
            values["open"] = Status.OPEN.value
            if ticket.status == Status.PENDING:  # the customer answered what the team waited for
                events.append((EventKind.REOPENED, {"by": "customer"}))
        position: dict[str, str] = {}
        if clocks is not None:
            position = queue_position(ticket.model_copy(update={"status": Status.OPEN}), clocks.next_due_at)
            sets += [f"{name} = :{name}" for name in position]
            values |= position
            sets.append("wait_key = :wait_key")  # its value: `_append_counted`
            if clocks.next_due_at is None:
                removes.append("next_due_at")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        update = {
            "TableName": self._table,
            "Key": item_key(keys.ticket_pk(ticket.id), keys.META),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": expression_values(**values),
        }
        operations = [
            ("message", {"Put": self._put(message_item(ticket.id, inbound), "attribute_not_exists(PK)")}),
            ("seen", {"Put": self._seen_put(ticket.id, inbound)}),
            ("ticket", {"Update": update}),
            *(
                ("event", {"Put": self._put(event_item(ticket.id, kind, inbound.received_at, detail))})
                for kind, detail in events
            ),
            *self._contact_operations(contact, inbound.received_at),
            *self._timer_operations(ticket.id, clocks.started if clocks is not None else ()),
            *self._message_id_operations(ticket.id, message_ids),
        ]
        if clocks is None:  # its place in the queue is left as it is (the tracker's `schedule` writes it)
            self._transact(operations)
            return
        self._append_counted(ticket, operations, position, values["latest"])

    def _append_counted(
        self, ticket: Ticket, operations: list[tuple[str, dict[str, Any]]], position: dict[str, str], latest: str
    ) -> None:
        """A customer message's write that places its ticket in the queue (`position`; its last message at `latest`),
        with the team's backlog counters: what the ticket counted for before is taken from the ticket as read (queued
        while open or pending, `as_read`) and checked in the same write. When the item says otherwise (a breach
        flagged, or a place in the queue written, since it was read; a ticket queued before the counters), it is read
        and the write made again from it; a ticket changed otherwise since it was read loses (WriteConflictError)."""
        update = next(op["Update"] for role, op in operations if role == "ticket")
        before: Mapping[str, Any] = as_read(ticket)
        for _ in range(BACKLOG_ATTEMPTS):
            wait = keys.wait_key(before.get("breached") is True, latest, ticket.id)
            guard, names, guarded = unchanged_condition(before, COUNTED_ATTRIBUTES)
            counted = update | {
                "ConditionExpression": f"{update['ConditionExpression']} AND {guard}",
                "ExpressionAttributeNames": update["ExpressionAttributeNames"] | names,
                "ExpressionAttributeValues": update["ExpressionAttributeValues"]
                | expression_values(wait_key=wait)
                | guarded,
            }
            after = {k: v for k, v in before.items() if k not in QUEUE_ATTRIBUTES} | position | {"wait_key": wait}
            attempt = [(role, {"Update": counted} if role == "ticket" else op) for role, op in operations]
            attempt += self._backlog_change(ticket.team, counted_for(before), counted_for(after))
            try:
                self._transact(attempt, retry_conflicts=True)
                return
            except WriteConflictError as error:
                if error.failed != ("ticket",):
                    raise
                item = self._get(keys.ticket_pk(ticket.id), keys.META)
                read = (ticket.status.value, iso(ticket.updated_at), iso(ticket.last_inbound_at))
                if item is None or (item.get("status"), item.get("updated_at"), item.get("last_inbound_at")) != read:
                    raise
                before = item  # the same ticket; its queue attributes were not what it said
        raise StoreUnavailableError("the ticket's place in the queue kept changing while a message was written")
