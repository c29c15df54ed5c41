"""Tickets: read one, with its clocks or in full, list and queue them, and change them with their history."""

from __future__ import annotations

import base64
import heapq
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from intake.model import (
    REFERENCE_LENGTH,
    EventKind,
    InboundMessage,
    SlaTarget,
    Status,
    Ticket,
    TicketDetail,
    TicketEvent,
    TicketPage,
    TicketReference,
)
from intake.records import TicketState
from intake.store import keys
from intake.store.contacts import ContactsStore
from intake.store.errors import CursorInvalidError, TicketNotFoundError, WriteConflictError, mapped
from intake.store.items import (
    event_item,
    expression_values,
    from_item,
    index_named,
    item_key,
    message_item,
    message_of,
    strip_keys,
    ticket_of,
    timer_of,
    to_item,
)
from intake.store.keys import iso
from intake.store.surveys import SurveysStore


class TicketsStore(ContactsStore, SurveysStore):
    def thread_ticket(self, thread_key: str) -> Ticket | None:
        item = self._get(keys.thread_pk(thread_key), keys.THREAD_SK)
        return None if item is None else self.ticket(item["ticket_id"])

    def ticket(self, ticket_id: str) -> Ticket:
        item = self._get(keys.ticket_pk(ticket_id), keys.META)
        if item is None:
            raise TicketNotFoundError(ticket_id)
        return ticket_of(item)

    def ticket_id_of(self, name: str) -> str:
        """The id of the ticket a person names: by its id, or by the reference that lists, emails and digests show
        (`F770VB20`, in any case). TicketNotFoundError for a reference nothing has."""
        if len(name) != REFERENCE_LENGTH:
            return name
        item = self._get(keys.reference_pk(name.upper()), keys.REFERENCE_SK)
        if item is None:
            raise TicketNotFoundError(name)
        return str(item["ticket_id"])

    def ticket_state(self, ticket_id: str) -> TicketState:
        """The ticket and its SLA clocks, in one read (one item per target: `SLA#<target>`)."""
        pk = keys.ticket_pk(ticket_id)
        clocks = [(pk, keys.timer_sk(target.value)) for target in SlaTarget]
        found = self._batch_get([(pk, keys.META), *clocks])
        meta = found.get((pk, keys.META))
        if meta is None:
            raise TicketNotFoundError(ticket_id)
        return TicketState(ticket_of(meta), tuple(timer_of(found[key]) for key in clocks if key in found))

    def ticket_detail(self, ticket_id: str) -> TicketDetail:
        """The ticket with its contact, messages, history and clocks. The customer's survey answer is kept apart
        (`CSAT#<id>`, where the receiver writes it) and shows in the history as its `survey_answered` event."""
        items = list(
            self._query(
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues=expression_values(pk=keys.ticket_pk(ticket_id)),
            )
        )
        meta = next((i for i in items if i["SK"] == keys.META), None)
        if meta is None:
            raise TicketNotFoundError(ticket_id)
        ticket = ticket_of(meta)
        events = [TicketEvent.model_validate(strip_keys(i)) for i in items if i["SK"].startswith(keys.EVENT)]
        answer = self.csat(ticket_id)
        if answer is not None:
            detail = {"score": answer.score}
            answered = TicketEvent(
                ticket_id=ticket_id, kind=EventKind.SURVEY_ANSWERED, at=answer.answered_at, detail=detail
            )
            events.append(answered)
            events.sort(key=lambda event: event.at)
        return TicketDetail(
            **ticket.model_dump(),
            contact=self.contact(ticket.contact_id),
            messages=[message_of(i) for i in items if i["SK"].startswith(keys.MESSAGE)],
            events=events,
            sla=[timer_of(i) for i in items if i["SK"].startswith(keys.TIMER)],
        )

    def ticket_reference(self, ticket_id: str) -> TicketReference:
        """The ticket's team and reference, and nothing else of it: what a survey page shows and files an answer
        under. Read with a projection, so that the receiver, which serves survey links, may read those two
        attributes of a ticket and no other (its role's `dynamodb:Attributes` condition)."""
        try:
            response = self._db.get_item(
                TableName=self._table,
                Key=item_key(keys.ticket_pk(ticket_id), keys.META),
                ConsistentRead=True,
                ProjectionExpression="#team, #reference",
                ExpressionAttributeNames={"#team": "team", "#reference": "reference"},
            )
        except ClientError as error:
            raise mapped(error) from None
        item = response.get("Item")
        if item is None:
            raise TicketNotFoundError(ticket_id)
        found = from_item(item)
        return TicketReference(id=ticket_id, team=str(found["team"]), reference=str(found["reference"]))

    def list_tickets(
        self,
        teams: Sequence[str],
        *,
        status: Status | None = None,
        channel: str | None = None,
        breached: bool | None = None,
        limit: int = 25,
        cursor: str | None = None,
    ) -> TicketPage:
        """Newest first across `teams`, from the `by_team` index; `cursor` is the last key handed out."""
        before = None if cursor is None else _decode_cursor(cursor)
        per_team = [self._team_tickets(team, status, channel, breached, limit, before) for team in teams]
        return _merged_page(per_team, "created_key", limit, newest_first=True)

    def queue(
        self, teams: Sequence[str], *, due_before: datetime | None = None, limit: int = 25, cursor: str | None = None
    ) -> TicketPage:
        """Every open ticket, the most urgent first (breached, then by deadline, then those without one), from the
        `open_by_due` index; `due_before`: only those with a deadline before it."""
        after = None if cursor is None else _decode_cursor(cursor)
        per_team = [self._team_queue(team, due_before, limit, after) for team in teams]
        return _merged_page(per_team, "due_key", limit)

    def _team_queue(
        self, team: str, due_before: datetime | None, limit: int, after: str | None
    ) -> Iterator[dict[str, Any]]:
        index = index_named("open_by_due")
        if after is not None and due_before is not None and after >= iso(due_before):
            return iter(())  # the cursor is past the bound: nothing (DynamoDB refuses a reversed BETWEEN)
        condition = f"{index.partition_key} = :team"
        values: dict[str, Any] = {"team": team}
        if after is not None and due_before is not None:
            condition += f" AND {index.sort_key} BETWEEN :after AND :before"
        elif after is not None:
            condition += f" AND {index.sort_key} > :after"
        elif due_before is not None:
            condition += f" AND {index.sort_key} < :before"
        if after is not None:
            values["after"] = after + "\x00"  # strictly after the last one handed out
        if due_before is not None:
            values["before"] = iso(due_before)
        return self._query(
            IndexName=index.name,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=expression_values(**values),
            Limit=limit + 1,
        )

    def _team_tickets(
        self,
        team: str,
        status: Status | None,
        channel: str | None,
        breached: bool | None,
        limit: int,
        before: str | None,
    ) -> Iterator[dict[str, Any]]:
        index = index_named("by_team")
        condition = f"{index.partition_key} = :team"
        values: dict[str, Any] = {"team": team}
        if before is not None:
            condition += f" AND {index.sort_key} < :before"
            values["before"] = before
        filters, names = [], {}
        if status is not None:
            filters.append("#status = :status")
            names["#status"] = "status"
            values["status"] = status.value
        if channel is not None:
            filters.append("channel = :channel")
            values["channel"] = channel
        if breached is not None:
            filters.append("breached = :breached")
            values["breached"] = breached
        kwargs: dict[str, Any] = {
            "IndexName": index.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": expression_values(**values),
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if names:  # DynamoDB refuses an empty ExpressionAttributeNames (moto does not)
            kwargs["ExpressionAttributeNames"] = names
        return self._query(**kwargs)

    def update_message(self, ticket_id: str, message: InboundMessage) -> None:
        """Rewrite a message's content in place (a voicemail whose transcript arrived), same key."""
        attributes = message_item(ticket_id, message)
        try:
            self._db.update_item(
                TableName=self._table,
                Key=item_key(attributes["PK"], attributes["SK"]),
                UpdateExpression="SET #text = :text, attachments = :attachments, metadata = :metadata",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#text": "text"},
                ExpressionAttributeValues=expression_values(
                    text=attributes["text"],
                    attachments=attributes.get("attachments", []),
                    metadata=attributes["metadata"],
                ),
            )
        except ClientError as error:
            raise mapped(error) from None

    def react(self, ticket_id: str, message_sk: str, emoji: str | None) -> None:
        """Set (or, with None, clear) the customer's reaction on one of their messages."""
        key = item_key(keys.ticket_pk(ticket_id), message_sk)
        update: dict[str, Any] = {"TableName": self._table, "Key": key, "ConditionExpression": "attribute_exists(PK)"}
        if emoji is None:
            update["UpdateExpression"] = "REMOVE reaction"
        else:
            update |= {
                "UpdateExpression": "SET reaction = :emoji",
                "ExpressionAttributeValues": expression_values(emoji=emoji),
            }
        try:
            self._db.update_item(**update)
        except ClientError as error:
            raise mapped(error) from None

    def retitle_ticket(self, ticket_id: str, created_at: datetime, subject: str) -> None:
        """Give a ticket the subject of its first message again, if that message is the one it was opened by."""
        self._conditional(
            self._db.update_item,
            Key=item_key(keys.ticket_pk(ticket_id), keys.META),
            UpdateExpression="SET subject = :subject",
            ConditionExpression="created_at = :created",
            ExpressionAttributeValues=expression_values(subject=subject, created=iso(created_at)),
        )

    def record_event(self, ticket_id: str, kind: EventKind, at: datetime, detail: dict[str, Any]) -> None:
        """Add an entry to a ticket's history. A warning also flags the ticket `warned`, in the same transaction:
        digests read near-breaches from the tickets of their window, not from each one's history."""
        event = event_item(ticket_id, kind, at, detail)
        if kind is EventKind.WARNED:
            flag = {
                "TableName": self._table,
                "Key": item_key(keys.ticket_pk(ticket_id), keys.META),
                "UpdateExpression": "SET warned = :yes",
                "ConditionExpression": "attribute_exists(PK)",
                "ExpressionAttributeValues": expression_values(yes=True),
            }
            try:
                operations = [("event", {"Put": self._put(event)}), ("ticket", {"Update": flag})]
                self._transact(operations, retry_conflicts=True)  # the ticket may be in a queue change just then
                return
            except WriteConflictError:
                pass  # no such ticket: the history entry alone, as before tickets were flagged
        try:
            self._db.put_item(TableName=self._table, Item=to_item(event))
        except ClientError as error:
            raise mapped(error) from None

    def change_ticket(
        self,
        ticket: Ticket,
        at: datetime,
        event: EventKind,
        detail: dict[str, Any],
        *,
        sets: dict[str, Any] | None = None,
        removes: Sequence[str] = (),
    ) -> None:
        """Change a ticket's fields and record why, both or neither; only if its status is still the one read
        (else WriteConflictError: someone changed it meanwhile)."""
        changes = {**(sets or {}), "updated_at": iso(at)}
        names = {f"#{k}": k for k in changes} | {f"#{k}": k for k in removes} | {"#status_read": "status"}
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in changes)
        if removes:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in removes)
        values = expression_values(**changes, status_read=ticket.status.value)
        operations = [
            (
                "ticket",
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": item_key(keys.ticket_pk(ticket.id), keys.META),
                        "UpdateExpression": expression,
                        "ConditionExpression": "#status_read = :status_read",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                },
            ),
            ("event", {"Put": self._put(event_item(ticket.id, event, at, detail))}),
        ]
        self._transact(operations)


def _merged_page(
    per_team: list[Iterator[dict[str, Any]]], key: str, limit: int, *, newest_first: bool = False
) -> TicketPage:
    """One page of tickets from each team's items, each already in `key` order (descending: `newest_first`): the
    first `limit` of them merged, and the cursor to the next page when more follow."""
    merged = heapq.merge(*per_team, key=lambda item: item[key], reverse=newest_first)
    page = [item for _, item in zip(range(limit + 1), merged, strict=False)]
    more = len(page) > limit
    page = page[:limit]
    return TicketPage(items=[ticket_of(i) for i in page], next=_encode_cursor(page[-1][key]) if more else None)


def _encode_cursor(created_key: str) -> str:
    return base64.urlsafe_b64encode(created_key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    """The `created_key` a cursor stands for: a timestamp, `#`, a ULID."""
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise CursorInvalidError(cursor) from None
    stamp, _, ticket_id = decoded.partition("#")
    if len(stamp) != 27 or not stamp.endswith("Z") or len(ticket_id) != 26:
        raise CursorInvalidError(cursor)
    return decoded
