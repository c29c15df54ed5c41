"""A team's open queue: each ticket's place in it (`open_by_due`, `open_by_wait`) and its counters (`BACKLOG#`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from intake.model import Ticket
from intake.records import OpenQueue
from intake.store import keys
from intake.store.errors import StoreUnavailableError, WriteConflictError
from intake.store.items import expression_values, index_named, item_key, ticket_of
from intake.store.keys import iso
from intake.store.table import Table

BACKLOG_ATTEMPTS = 5  # a queue change whose ticket changed since it was read: read again, write again


class BacklogStore(Table):
    # The open queue's counters: `BACKLOG#<team>`/`BACKLOG` holds, for the tickets of the team's queue that it
    # counts, `open` (how many), `breached` (how many flagged breached) and `due#<UTC date>` (how many whose next
    # deadline falls on that date: the overdue ones are those of the past dates, plus today's read from the index).
    # They change (ADD) in the same transaction as the ticket's place in the queue: `create_ticket`, a customer
    # message with its clocks (`append_message`: a new deadline, a pending ticket opened, a resolved one reopened),
    # `schedule` (the tracker's: an agent's pending, resolve, reopen, priority change...), `mark_breached`, each
    # conditioned on what the ticket counted for as read, so they cannot drift. An agent's `change_ticket` changes no
    # queue attribute (a resolved ticket leaves the queue in the `schedule` that follows). A ticket is counted when
    # it has a `wait_key` (its place in `open_by_wait`). Tickets queued before the counters existed have none: until
    # no such ticket is left in the queue (`count_backlog` counts them in; any reschedule does too), `backlog` counts
    # the whole queue, as digests did before, and marks the counters `complete` once it finds them all counted.
    # Every queue change of a team updates its one counter item: a hot key, fine at a support team's pace (DynamoDB
    # takes ~1,000 writes a second on one item; a conflict between two transactions is sent again).

    def schedule(self, ticket: Ticket, next_due_at: datetime | None) -> None:
        """Where the ticket sits in its team's queue (`open_by_due`, see `queue_position`): every open ticket is in
        it, by its earliest running or breached deadline; a resolved one leaves it. Its place in `open_by_wait` and
        the team's backlog counters move with it, in the same write (see "the open queue's counters" below)."""
        for _ in range(BACKLOG_ATTEMPTS):
            item = self._get(keys.ticket_pk(ticket.id), keys.META)
            if item is None:
                return  # only an existing ticket: a write would otherwise create a bare META item in the queue
            position: dict[str, Any] = queue_position(ticket, next_due_at)
            if position:
                position["wait_key"] = keys.wait_key(bool(item.get("breached")), item["last_inbound_at"], ticket.id)
            sets = ", ".join(f"{name} = :{name}" for name in position)
            removes = ", ".join(name for name in QUEUE_ATTRIBUTES if name not in position)
            expression = " ".join(p for p in (sets and f"SET {sets}", removes and f"REMOVE {removes}") if p)
            update = self._guarded_update(item, expression, position, watched=WAIT_ATTRIBUTES)
            after = {k: v for k, v in item.items() if k not in QUEUE_ATTRIBUTES} | position
            if self._write_counted(update, self._backlog_change(ticket.team, counted_for(item), counted_for(after))):
                return
        raise StoreUnavailableError("the ticket kept changing while its place in the queue was written")

    def mark_breached(self, ticket_id: str) -> None:
        """Flag the ticket as breached (the timer item already says which target, since when); once. A queued
        ticket moves to the front of `open_by_wait` and into the team's breached count, in the same write."""
        for _ in range(BACKLOG_ATTEMPTS):
            item = self._get(keys.ticket_pk(ticket_id), keys.META)
            if item is None:
                raise WriteConflictError(["item"])
            if item.get("breached") is True:
                return
            changes: dict[str, Any] = {"breached": True}
            if "wait_key" in item:
                changes["wait_key"] = keys.wait_key(True, item["last_inbound_at"], ticket_id)
            expression = "SET " + ", ".join(f"{name} = :{name}" for name in changes)
            update = self._guarded_update(item, expression, changes, watched=WAIT_ATTRIBUTES)
            counters = self._backlog_change(str(item["team"]), counted_for(item), counted_for(item | changes))
            if self._write_counted(update, counters):
                return
        raise StoreUnavailableError("the ticket kept changing while it was flagged breached")

    def backlog(self, team: str, now: datetime, listed: int) -> OpenQueue:
        """The team's open queue now: how many tickets, breached, overdue (next deadline at or before `now`), and the
        first `listed` of them breached first, then by the longest wait (the oldest last customer message)."""
        counters = self._get(keys.backlog_pk(team), keys.BACKLOG_SK)
        if counters is None or counters.get("complete") is not True:
            return self._counted_backlog(team, now, listed)
        utc_day = now.astimezone(UTC).date()
        today = utc_day.isoformat()
        index = index_named("open_by_due")
        due_today = self._count(
            IndexName=index.name,
            KeyConditionExpression=f"{index.partition_key} = :team AND {index.sort_key} BETWEEN :midnight AND :now",
            ExpressionAttributeValues=expression_values(
                team=team, midnight=keys.day_start_due_key(utc_day), now=keys.due_key_bound(now)
            ),
        )
        past = sum(int(n) for name, n in counters.items() if name.startswith("due#") and name[4:] < today)
        return OpenQueue(
            open=int(counters.get("open", 0)),
            breached=int(counters.get("breached", 0)),
            overdue=past + due_today,
            longest_waiting=tuple(ticket_of(item) for item in islice(self._waiting(team, listed), listed)),
        )

    def count_backlog(self, team: str) -> int:
        """Count into the team's backlog counters the queued tickets written before there were counters (once,
        after upgrading; harmless again); how many it counted."""
        uncounted = [ticket_of(item) for item in self._open_items(team) if "wait_key" not in item]
        for ticket in uncounted:
            self.schedule(ticket, ticket.next_due_at)  # the same place, now counted
        self._complete_if_counted(team, list(self._open_items(team)))
        return len(uncounted)

    def _counted_backlog(self, team: str, now: datetime, listed: int) -> OpenQueue:
        """The backlog from the whole queue, while the counters are not complete."""
        items = list(self._open_items(team))
        uncounted = self._complete_if_counted(team, items)
        tickets = [ticket_of(item) for item in items]
        waiting = sorted(tickets, key=lambda t: keys.wait_key(t.breached, iso(t.last_inbound_at), t.id))
        return OpenQueue(
            open=len(tickets),
            breached=sum(t.breached for t in tickets),
            overdue=sum(t.next_due_at is not None and t.next_due_at <= now for t in tickets),
            longest_waiting=tuple(waiting[:listed]),
            uncounted=uncounted,
        )

    def _complete_if_counted(self, team: str, queued: Sequence[dict[str, Any]]) -> int:
        """How many of the team's `queued` items its counters do not hold; none: the counters are marked complete
        (for good: a ticket written before the counters cannot join the queue again without being counted)."""
        uncounted = sum("wait_key" not in item for item in queued)
        if not uncounted:
            self._conditional(
                self._db.update_item,
                Key=item_key(keys.backlog_pk(team), keys.BACKLOG_SK),
                UpdateExpression="SET complete = :yes",
                ExpressionAttributeValues=expression_values(yes=True),
            )
        return uncounted

    def _open_items(self, team: str) -> Iterator[dict[str, Any]]:
        index = index_named("open_by_due")
        return self._query(
            IndexName=index.name,
            KeyConditionExpression=f"{index.partition_key} = :team",
            ExpressionAttributeValues=expression_values(team=team),
        )

    def _waiting(self, team: str, limit: int) -> Iterator[dict[str, Any]]:
        index = index_named("open_by_wait")
        return self._query(
            IndexName=index.name,
            KeyConditionExpression=f"{index.partition_key} = :team",
            ExpressionAttributeValues=expression_values(team=team),
            Limit=max(limit, 1),
        )

    def _backlog_change(
        self, team: str, before: Mapping[str, int], after: Mapping[str, int]
    ) -> list[tuple[str, dict[str, Any]]]:
        """The counter item's part of a queue change: what the ticket counted for before, taken off, what it counts
        for now, added; nothing when that is the same."""
        change = Counter(after)
        change.subtract(before)
        deltas = {name: n for name, n in change.items() if n}
        if not deltas:
            return []
        names = {f"#c{n}": name for n, name in enumerate(deltas)}
        update = {
            "TableName": self._table,
            "Key": item_key(keys.backlog_pk(team), keys.BACKLOG_SK),
            "UpdateExpression": "ADD " + ", ".join(f"#c{n} :c{n}" for n in range(len(deltas))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": expression_values(
                **{f"c{n}": delta for n, delta in enumerate(deltas.values())}
            ),
        }
        return [("backlog", {"Update": update})]

    def _guarded_update(
        self, item: dict[str, Any], expression: str, values: dict[str, Any], *, watched: Sequence[str]
    ) -> dict[str, Any]:
        """An update of the ticket `item` was read from, made only if its `watched` attributes are still as read."""
        condition, names, guard = unchanged_condition(item, watched)
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": item_key(str(item["PK"]), str(item["SK"])),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values or guard:
            update["ExpressionAttributeValues"] = expression_values(**values) | guard
        return update

    def _write_counted(self, update: dict[str, Any], counters: list[tuple[str, dict[str, Any]]]) -> bool:
        """The ticket's update and its counters' (if they change), all or nothing; False when the ticket changed
        since it was read."""
        if not counters:
            return self._conditional(self._db.update_item, **{k: v for k, v in update.items() if k != "TableName"})
        try:
            self._transact([("ticket", {"Update": update}), *counters], retry_conflicts=True)
        except WriteConflictError as error:
            if "ticket" in error.failed:
                return False
            raise
        return True

    def open_tickets(self, team: str) -> list[Ticket]:
        """The team's whole queue: every open ticket, the most urgent first (`open_by_due`)."""
        return [ticket_of(item) for item in self._open_items(team)]


def queue_position(ticket: Ticket, next_due_at: datetime | None) -> dict[str, str]:
    """The `open_by_due` index's attributes: an open ticket by its earliest deadline (a breached one is past, so
    first), or, with none, after every deadline ("~" sorts after digits), oldest first; none when resolved."""
    if not ticket.status.is_open:
        return {}
    due_key = keys.due_key(ticket.id, next_due_at, ticket.created_at)
    if next_due_at is None:
        return {"open_team": ticket.team, "due_key": due_key}
    return {"next_due_at": iso(next_due_at), "open_team": ticket.team, "due_key": due_key}


QUEUE_ATTRIBUTES = ("next_due_at", "open_team", "due_key", "wait_key")
COUNTED_ATTRIBUTES = ("open_team", "wait_key", "breached", "next_due_at")  # what a ticket's counts derive from
WAIT_ATTRIBUTES = (*COUNTED_ATTRIBUTES, "last_inbound_at")  # and what its `wait_key` is written from


def counted_for(item: Mapping[str, Any]) -> Counter[str]:
    """What a ticket item counts for in its team's backlog counters (nothing when not counted, or not queued)."""
    if "wait_key" not in item or "open_team" not in item:
        return Counter()
    counts = Counter({"open": 1, "breached": 1 if item.get("breached") is True else 0})
    if item.get("next_due_at"):
        counts[f"due#{str(item['next_due_at'])[:10]}"] = 1
    return counts


def as_read(ticket: Ticket) -> dict[str, Any]:
    """The queue attributes a ticket read from the table has, as far as it shows them (what it counts for, see
    `counted_for`): queued and counted while open or pending, with its breach flag and its next deadline. A guess that
    the write it is used in checks (`unchanged_condition`)."""
    attributes: dict[str, Any] = {"breached": ticket.breached}
    if ticket.next_due_at is not None:
        attributes["next_due_at"] = iso(ticket.next_due_at)
    if ticket.status.is_open:
        attributes["open_team"] = ticket.team
        attributes["wait_key"] = keys.wait_key(ticket.breached, iso(ticket.last_inbound_at), ticket.id)
    return attributes


def unchanged_condition(item: Mapping[str, Any], names: Sequence[str]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A condition: the item still exists, each of `names` as read (or still absent); its names and values."""
    terms, placeholders, values = ["attribute_exists(PK)"], {}, {}
    for n, name in enumerate(names):
        placeholders[f"#w{n}"] = name
        if name in item:
            terms.append(f"#w{n} = :w{n}")
            values[f"w{n}"] = item[name]
        else:
            terms.append(f"attribute_not_exists(#w{n})")
    return " AND ".join(terms), placeholders, expression_values(**values)
