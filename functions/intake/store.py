"""The only module that speaks DynamoDB: Intake's single table (see DESIGN.md, "Data").

Callers get our models and our errors, never boto3's.
"""

from __future__ import annotations

import base64
import heapq
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from intake.model import (
    DELIVERY_RANK,
    REFERENCE_LENGTH,
    CallEvent,
    Contact,
    ContactDetail,
    DeliveryState,
    Direction,
    EventKind,
    InboundMessage,
    Message,
    QuarantinedEmail,
    QuarantineStatus,
    SlaTarget,
    SlaTimer,
    Status,
    Ticket,
    TicketDetail,
    TicketEvent,
    TicketPage,
    TicketReference,
    reply_window_closes_at,
)
from intake.resources import TABLE, Index

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from intake.satisfaction import CsatAnswer
    from intake.suppression import SuppressionReason


class StoreError(Exception):
    """Base of the store's errors."""


class WriteConflictError(StoreError):
    """A conditional write lost: `failed` names the roles of the items whose condition failed."""

    def __init__(self, failed: Sequence[str]) -> None:
        self.failed = tuple(failed)
        super().__init__("condition failed: " + ", ".join(self.failed))


class StoreUnavailableError(StoreError):
    """Throttled or conflicting with another transaction: try again later."""


class TicketNotFoundError(StoreError):
    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"no ticket {ticket_id}")


class ContactNotFoundError(StoreError):
    def __init__(self, contact_id: str) -> None:
        self.contact_id = contact_id
        super().__init__(f"no contact {contact_id}")


class CursorInvalidError(StoreError):
    """A pagination cursor that we did not hand out."""


_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "InternalServerError",
    "ServiceUnavailable",
}
_BATCH_GET_KEYS = 100  # BatchGetItem's limit
_BATCH_GET_ATTEMPTS = 5
_ACK_CLAIM_KEEP = timedelta(days=2)
BACKLOG_ITEMS = "BACKLOG#"  # a team's backlog counters: `BACKLOG#<team>`/`BACKLOG` (see `Store.backlog`)
_CONFLICT_RETRIES = 3  # a transaction with a team's counter item, cancelled by a concurrent one: sent again
_BACKLOG_ATTEMPTS = 5  # a queue change whose ticket changed since it was read: read again, write again
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def iso(moment: datetime) -> str:
    """Fixed-width UTC timestamp that sorts as text (`2026-11-23T18:33:46.123456Z`); an aware instant in another
    zone is converted first (`17:00+01:00` is `16:00Z`, not `17:00Z`)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _to_item(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in attributes.items() if v is not None and v != ()}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {TABLE.partition_key: {"S": pk}, TABLE.sort_key: {"S": sk}}


def _values(**values: Any) -> dict[str, Any]:
    return {f":{k}": _serializer.serialize(v) for k, v in values.items()}


@dataclass(frozen=True)
class Seen:
    ticket_id: str
    dedupe_until: datetime
    message_sk: str | None = None  # the message it became, when it became one


@dataclass(frozen=True)
class CallState:
    """Everything known so far about one call, folded from its callbacks."""

    call_sid: str
    started_at: datetime
    team: str | None
    caller: str | None
    caller_name: str | None
    called: str | None
    recording_sid: str | None
    recording_url: str | None
    recording_duration_s: int | None
    transcript_text: str | None
    transcript_status: str | None
    statuses: frozenset[str]
    duration_s: int | None


_CALL_TTL_S = 30 * 86400


@dataclass(frozen=True)
class ContactPlan:
    """How the sender's contact is written with the ticket: new, extended with identities, or as is."""

    contact_id: str
    is_new: bool
    name: str | None
    new_identities: tuple[tuple[str, str], ...]
    absorbed: tuple[Contact, ...] = ()  # other contacts found to be this one: merged into it


@dataclass(frozen=True)
class ClockPlan:
    """What a message does to its ticket's SLA clocks, written with it: the generations it starts (the first of a
    target, or each in place of the one before it) and the ticket's place in its team's queue afterwards (its
    earliest running or breached deadline; None: after every deadline)."""

    started: tuple[SlaTimer, ...]
    next_due_at: datetime | None


@dataclass(frozen=True)
class TicketState:
    """A ticket with its SLA clocks, read together."""

    ticket: Ticket
    timers: tuple[SlaTimer, ...]


@dataclass(frozen=True)
class Lookup:
    """What the ingest core decides a message on: its dedupe record, the contact each of the sender's identities
    belongs to (None: unknown), the ticket its thread points to with that ticket's clocks, and the tickets its
    email Message-IDs are recorded against (those that are)."""

    seen: Seen | None
    owners: dict[tuple[str, str], str | None]
    thread: TicketState | None
    message_tickets: dict[str, str]


@dataclass(frozen=True)
class ThreadLinks:
    """The tickets an email's Message-IDs (`MSGID#`) and reference tokens (`REF#`) are recorded against."""

    by_message_id: dict[str, str]
    by_reference: dict[str, str]


@dataclass(frozen=True)
class FailureRecord:
    """A queue message's failed tries: its latest error, how many failed, the first and the last."""

    queue: str
    message_id: str
    error_type: str
    error_message: str
    attempts: int
    first_try: datetime
    last_try: datetime


@dataclass(frozen=True)
class OutboundRecord:
    """A reply as recorded on its ticket: the message, its sort key, and whether it counted as the response yet."""

    message: Message
    sk: str
    counted: bool


_NEW = "attribute_not_exists(PK)"
_REPLY_KEY_KEEP = timedelta(days=2)


class Store:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    # ------------------------------------------------------------------ reads

    def seen(self, provider: str, provider_message_id: str) -> Seen | None:
        item = self._get(f"SEEN#{provider}#{provider_message_id}", "SEEN")
        return None if item is None else _seen(item)

    def identity(self, kind: str, value: str) -> str | None:
        item = self._get(f"ID#{kind}#{value}", "ID")
        return None if item is None else str(item["contact_id"])

    def thread_ticket(self, thread_key: str) -> Ticket | None:
        item = self._get(f"THREAD#{thread_key}", "THREAD")
        return None if item is None else self.ticket(item["ticket_id"])

    def ticket(self, ticket_id: str) -> Ticket:
        item = self._get(f"TICKET#{ticket_id}", "META")
        if item is None:
            raise TicketNotFoundError(ticket_id)
        return _ticket(item)

    def ticket_id_of(self, name: str) -> str:
        """The id of the ticket a person names: by its id, or by the reference that lists, emails and digests show
        (`F770VB20`, in any case). TicketNotFoundError for a reference nothing has."""
        if len(name) != REFERENCE_LENGTH:
            return name
        item = self._get(f"REF#{name.upper()}", "REF")
        if item is None:
            raise TicketNotFoundError(name)
        return str(item["ticket_id"])

    def ticket_state(self, ticket_id: str) -> TicketState:
        """The ticket and its SLA clocks, in one read (one item per target: `SLA#<target>`)."""
        pk = f"TICKET#{ticket_id}"
        clocks = [(pk, f"SLA#{target.value}") for target in SlaTarget]
        found = self._batch_get([(pk, "META"), *clocks])
        meta = found.get((pk, "META"))
        if meta is None:
            raise TicketNotFoundError(ticket_id)
        return TicketState(_ticket(meta), tuple(_timer(found[key]) for key in clocks if key in found))

    def thread_links(self, message_ids: Sequence[str], references: Sequence[str]) -> ThreadLinks:
        """Which tickets the Message-IDs an email answers, and the `[#<reference>]` tokens in its subject, are
        recorded against (every Message-ID we receive or send is), in one read."""
        by_id = {message_id: (f"MSGID#{message_id}", "MSGID") for message_id in message_ids}
        by_reference = {reference: (f"REF#{reference.upper()}", "REF") for reference in references}
        found = self._batch_get([*by_id.values(), *by_reference.values()])
        return ThreadLinks(
            {message_id: str(found[key]["ticket_id"]) for message_id, key in by_id.items() if key in found},
            {reference: str(found[key]["ticket_id"]) for reference, key in by_reference.items() if key in found},
        )

    def lookup(
        self, message: InboundMessage, message_ids: Sequence[str] = (), known: TicketState | None = None
    ) -> Lookup:
        """What the ingest core reads before it writes, in one round trip: the message's dedupe record, the sender's
        identities, its thread, and `message_ids` (email); and a second for the thread's ticket and its clocks,
        unless it is `known` (just read by the caller)."""
        seen_key = (f"SEEN#{message.provider}#{message.provider_message_id}", "SEEN")
        thread_key = (f"THREAD#{message.thread_key}", "THREAD")
        identity_keys = {(kind, value): (f"ID#{kind}#{value}", "ID") for kind, value in message.sender.identities()}
        message_keys = {message_id: (f"MSGID#{message_id}", "MSGID") for message_id in message_ids}
        found = self._batch_get([seen_key, thread_key, *identity_keys.values(), *message_keys.values()])
        seen = found.get(seen_key)
        thread = found.get(thread_key)
        state = None
        if thread is not None:
            ticket_id = str(thread["ticket_id"])
            state = known if known is not None and known.ticket.id == ticket_id else self.ticket_state(ticket_id)
        return Lookup(
            seen=None if seen is None else _seen(seen),
            owners={
                identity: None if key not in found else str(found[key]["contact_id"])
                for identity, key in identity_keys.items()
            },
            thread=state,
            message_tickets={
                message_id: str(found[key]["ticket_id"]) for message_id, key in message_keys.items() if key in found
            },
        )

    def record_message_ids(self, message_ids: Sequence[str], ticket_id: str) -> None:
        """Map Message-IDs to a ticket; the first mapping of an id wins (a later claim changes nothing)."""
        for message_id in message_ids:
            self._conditional(
                self._db.put_item,
                Item=_to_item({"PK": f"MSGID#{message_id}", "SK": "MSGID", "ticket_id": ticket_id}),
                ConditionExpression="attribute_not_exists(PK)",
            )

    def claim_token(self, provider: str, token: str, at: datetime, keep: timedelta = timedelta(days=2)) -> bool:
        """True the first time a token is claimed (kept `keep`, 2 days by default), False after that."""
        return self._conditional(
            self._db.put_item,
            Item=_to_item(_token_item(provider, token, at, keep)),
            ConditionExpression="attribute_not_exists(PK)",
        )

    def release_token(self, provider: str, token: str) -> None:
        """Forget a claimed token, so that the work it guarded may be tried again (it failed)."""
        try:
            self._db.delete_item(TableName=self._table, Key=_key(f"TOKEN#{provider}#{token}", "TOKEN"))
        except ClientError as error:
            raise _mapped(error) from None

    def contact(self, contact_id: str) -> Contact | None:
        item = self._get(f"CONTACT#{contact_id}", "META")
        return None if item is None else Contact.model_validate(_strip(item))

    def contact_detail(self, contact_id: str) -> ContactDetail:
        """The customer behind `contact_id` (following merges) with every ticket of theirs, newest first."""
        contact = self.contact(contact_id)
        for _ in range(8):  # a merged contact points to the one it became
            if contact is None or contact.merged_into is None:
                break
            contact = self.contact(contact.merged_into)
        if contact is None:
            raise ContactNotFoundError(contact_id)
        index = _index("by_contact")
        tickets = [
            _ticket(item)
            for owner in (contact.id, *contact.merged)
            for item in self._query(
                IndexName=index.name,
                KeyConditionExpression=f"{index.partition_key} = :owner",
                ExpressionAttributeValues=_values(owner=owner),
                ScanIndexForward=False,
            )
        ]
        tickets.sort(key=lambda t: (t.created_at, t.id), reverse=True)
        return ContactDetail(contact=contact, tickets=tickets)

    def ticket_detail(self, ticket_id: str) -> TicketDetail:
        """The ticket with its contact, messages, history and clocks. The customer's survey answer is kept apart
        (`CSAT#<id>`, where the receiver writes it) and shows in the history as its `survey_answered` event."""
        items = list(
            self._query(KeyConditionExpression="PK = :pk", ExpressionAttributeValues=_values(pk=f"TICKET#{ticket_id}"))
        )
        meta = next((i for i in items if i["SK"] == "META"), None)
        if meta is None:
            raise TicketNotFoundError(ticket_id)
        ticket = _ticket(meta)
        events = [TicketEvent.model_validate(_strip(i)) for i in items if i["SK"].startswith("EVT#")]
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
            messages=[_message(i) for i in items if i["SK"].startswith("MSG#")],
            events=events,
            sla=[_timer(i) for i in items if i["SK"].startswith("SLA#")],
        )

    def ticket_reference(self, ticket_id: str) -> TicketReference:
        """The ticket's team and reference, and nothing else of it: what a survey page shows and files an answer
        under. Read with a projection, so that the receiver, which serves survey links, may read those two
        attributes of a ticket and no other (its role's `dynamodb:Attributes` condition)."""
        try:
            response = self._db.get_item(
                TableName=self._table,
                Key=_key(f"TICKET#{ticket_id}", "META"),
                ConsistentRead=True,
                ProjectionExpression="#team, #reference",
                ExpressionAttributeNames={"#team": "team", "#reference": "reference"},
            )
        except ClientError as error:
            raise _mapped(error) from None
        item = response.get("Item")
        if item is None:
            raise TicketNotFoundError(ticket_id)
        found = _from_item(item)
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
        merged = heapq.merge(*per_team, key=lambda item: item["created_key"], reverse=True)
        page = [item for _, item in zip(range(limit + 1), merged, strict=False)]
        more = len(page) > limit
        page = page[:limit]
        return TicketPage(
            items=[_ticket(i) for i in page], next=_encode_cursor(page[-1]["created_key"]) if more else None
        )

    def queue(
        self, teams: Sequence[str], *, due_before: datetime | None = None, limit: int = 25, cursor: str | None = None
    ) -> TicketPage:
        """Every open ticket, the most urgent first (breached, then by deadline, then those without one), from the
        `open_by_due` index; `due_before`: only those with a deadline before it."""
        after = None if cursor is None else _decode_cursor(cursor)
        per_team = [self._team_queue(team, due_before, limit, after) for team in teams]
        merged = heapq.merge(*per_team, key=lambda item: item["due_key"])
        page = [item for _, item in zip(range(limit + 1), merged, strict=False)]
        more = len(page) > limit
        page = page[:limit]
        return TicketPage(items=[_ticket(i) for i in page], next=_encode_cursor(page[-1]["due_key"]) if more else None)

    def _team_queue(
        self, team: str, due_before: datetime | None, limit: int, after: str | None
    ) -> Iterator[dict[str, Any]]:
        index = _index("open_by_due")
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
            ExpressionAttributeValues=_values(**values),
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
        index = _index("by_team")
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
            "ExpressionAttributeValues": _values(**values),
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if names:  # DynamoDB refuses an empty ExpressionAttributeNames (moto does not)
            kwargs["ExpressionAttributeNames"] = names
        return self._query(**kwargs)

    # ----------------------------------------------------------------- writes

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
        created_key = f"{iso(ticket.created_at)}#{ticket.id}"
        due = min((t.due_at for t in timers), default=None)
        meta = {
            "PK": f"TICKET#{ticket.id}",
            "SK": "META",
            **ticket.model_dump(mode="json"),
            "created_at": iso(ticket.created_at),
            "updated_at": iso(ticket.updated_at),
            "last_inbound_at": iso(ticket.last_inbound_at),
            "reply_window_closes_at": _iso_or_none(ticket.reply_window_closes_at),
            "created_key": created_key,
            "team_day": f"{ticket.team}#{(day or ticket.created_at.date()).isoformat()}",
            **_queue_position(ticket, due),
        }
        if "open_team" in meta:
            meta["wait_key"] = _wait_key(ticket.breached, meta["last_inbound_at"], ticket.id)
        thread_condition = "attribute_not_exists(PK)"
        thread_values: dict[str, Any] = {}
        if replaces_thread_ticket is not None:
            thread_condition = "ticket_id = :previous"
            thread_values = _values(previous=replaces_thread_ticket)
        operations = [
            ("ticket", {"Put": self._put(meta, "attribute_not_exists(PK)")}),
            ("message", {"Put": self._put(_message_item(ticket.id, inbound), "attribute_not_exists(PK)")}),
            ("event", {"Put": self._put(_event_item(ticket.id, EventKind.CREATED, ticket.created_at, {}))}),
            (
                "thread",
                {
                    "Put": self._put(
                        {"PK": f"THREAD#{ticket.thread_key}", "SK": "THREAD", "ticket_id": ticket.id},
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
                        {"PK": f"REF#{ticket.reference}", "SK": "REF", "ticket_id": ticket.id},
                        "attribute_not_exists(PK)",
                    )
                },
            ),
            *self._contact_operations(contact, inbound.received_at),
            *self._timer_operations(ticket.id, timers),
            *self._message_id_operations(ticket.id, message_ids),
            *self._backlog_change(ticket.team, Counter(), _counted(meta)),
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
    ) -> None:
        """A further customer message on an open ticket (or, `reopen`, on a resolved one it opens again), with its
        dedupe record, what it does to the ticket's SLA clocks (`clocks`: their new generations, their started
        events and the ticket's place in the queue) and its email `message_ids` recorded against the ticket (each
        not recorded yet): all or nothing. A pending ticket (waiting on the customer) is open again. With `clocks`, its
        place in `open_by_wait` and the team's backlog counters move in the same write (see `_append_counted`)."""
        # Messages may arrive out of order: the latest inbound time only moves forward. The update is conditioned on
        # the version read (its status, last change and last message: every agent action changes `updated_at`), the
        # one the clocks were planned on, so a concurrent write makes this one read again and retry.
        latest = max(ticket.last_inbound_at, inbound.received_at)
        window = reply_window_closes_at(ticket.channel, latest)
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
            position = _queue_position(ticket.model_copy(update={"status": Status.OPEN}), clocks.next_due_at)
            sets += [f"{name} = :{name}" for name in position]
            values |= position
            sets.append("wait_key = :wait_key")  # its value: `_append_counted`
            if clocks.next_due_at is None:
                removes.append("next_due_at")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        update = {
            "TableName": self._table,
            "Key": _key(f"TICKET#{ticket.id}", "META"),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": _values(**values),
        }
        operations = [
            ("message", {"Put": self._put(_message_item(ticket.id, inbound), "attribute_not_exists(PK)")}),
            ("seen", {"Put": self._seen_put(ticket.id, inbound)}),
            ("ticket", {"Update": update}),
            *(
                ("event", {"Put": self._put(_event_item(ticket.id, kind, inbound.received_at, detail))})
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
        while open or pending, `_as_read`) and checked in the same write. When the item says otherwise (a breach
        flagged, or a place in the queue written, since it was read; a ticket queued before the counters), it is read
        and the write made again from it; a ticket changed otherwise since it was read loses (WriteConflictError)."""
        update = next(op["Update"] for role, op in operations if role == "ticket")
        before: Mapping[str, Any] = _as_read(ticket)
        for _ in range(_BACKLOG_ATTEMPTS):
            wait = _wait_key(before.get("breached") is True, latest, ticket.id)
            guard, names, guarded = _unchanged(before, _COUNTED_ATTRIBUTES)
            counted = update | {
                "ConditionExpression": f"{update['ConditionExpression']} AND {guard}",
                "ExpressionAttributeNames": update["ExpressionAttributeNames"] | names,
                "ExpressionAttributeValues": update["ExpressionAttributeValues"] | _values(wait_key=wait) | guarded,
            }
            after = {k: v for k, v in before.items() if k not in _QUEUE_ATTRIBUTES} | position | {"wait_key": wait}
            attempt = [(role, {"Update": counted} if role == "ticket" else op) for role, op in operations]
            attempt += self._backlog_change(ticket.team, _counted(before), _counted(after))
            try:
                self._transact(attempt, retry_conflicts=True)
                return
            except WriteConflictError as error:
                if error.failed != ("ticket",):
                    raise
                item = self._get(f"TICKET#{ticket.id}", "META")
                read = (ticket.status.value, iso(ticket.updated_at), iso(ticket.last_inbound_at))
                if item is None or (item.get("status"), item.get("updated_at"), item.get("last_inbound_at")) != read:
                    raise
                before = item  # the same ticket; its queue attributes were not what it said
        raise StoreUnavailableError("the ticket's place in the queue kept changing while a message was written")

    def _timer_operations(self, ticket_id: str, timers: Sequence[SlaTimer]) -> list[tuple[str, dict[str, Any]]]:
        """Start clocks in a ticket's write: each timer item (a first generation, or the one after the generation
        it replaces, else the write fails) with its `timer_started` event."""
        operations: list[tuple[str, dict[str, Any]]] = []
        for timer in timers:
            clock = {"PK": f"TICKET#{ticket_id}", "SK": f"SLA#{timer.target.value}", **_timer_attributes(timer)}
            if timer.generation == 1:
                put = self._put(clock, "attribute_not_exists(PK)")
            else:
                put = self._put(clock, "generation = :replaces", _values(replaces=timer.generation - 1))
            started = {"target": timer.target.value, "generation": timer.generation, "due_at": iso(timer.due_at)}
            event = _event_item(ticket_id, EventKind.TIMER_STARTED, timer.started_at, started)
            operations += [("timer", {"Put": put}), ("event", {"Put": self._put(event)})]
        return operations

    def _message_id_operations(self, ticket_id: str, message_ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """Record email Message-IDs against a ticket in its write; one recorded meanwhile fails the write (read again:
        the first mapping of an id wins)."""
        return [
            (
                "message-id",
                {
                    "Put": self._put(
                        {"PK": f"MSGID#{message_id}", "SK": "MSGID", "ticket_id": ticket_id}, "attribute_not_exists(PK)"
                    )
                },
            )
            for message_id in dict.fromkeys(message_ids)
        ]

    def _contact_operations(self, plan: ContactPlan, at: datetime) -> list[tuple[str, dict[str, Any]]]:
        """The contact's part of a ticket write: a new contact, or new identities, a name, and merges."""
        operations: list[tuple[str, dict[str, Any]]] = [
            (
                "identity",
                {
                    "Put": self._put(
                        {"PK": f"ID#{kind}#{value}", "SK": "ID", "contact_id": plan.contact_id, "kind": kind},
                        "attribute_not_exists(PK)",
                    )
                },
            )
            for kind, value in plan.new_identities
        ]
        phones = [v for k, v in plan.new_identities if k == "phone"]
        emails = [v for k, v in plan.new_identities if k == "email"]
        if plan.is_new:
            contact = {
                "PK": f"CONTACT#{plan.contact_id}",
                "SK": "META",
                "id": plan.contact_id,
                "name": plan.name,
                "phones": phones,
                "emails": emails,
                "merged": [],
                "created_at": iso(at),
            }
            operations.append(("contact", {"Put": self._put(contact, "attribute_not_exists(PK)")}))
            return operations
        for other in plan.absorbed:
            operations += self._merge_operations(plan.contact_id, other, at)
            phones += list(other.phones)
            emails += list(other.emails)
        if not (phones or emails or plan.name or plan.absorbed):
            return operations
        # Learn identities (new or absorbed); take a name only when none is known; remember merges
        values: dict[str, Any] = {"phones": phones, "emails": emails, "merged": [c.id for c in plan.absorbed]}
        expression = (
            "SET phones = list_append(phones, :phones), emails = list_append(emails, :emails), "
            "merged = list_append(if_not_exists(merged, :none), :merged)"
        )
        values["none"] = []
        names: dict[str, str] = {}
        if plan.name:
            expression += ", #name = if_not_exists(#name, :name)"
            values["name"] = plan.name
            names["#name"] = "name"
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(f"CONTACT#{plan.contact_id}", "META"),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(merged_into)",
            "ExpressionAttributeValues": _values(**values),
        }
        if names:
            update["ExpressionAttributeNames"] = names
        operations.append(("contact", {"Update": update}))
        return operations

    def _merge_operations(self, survivor: str, other: Contact, at: datetime) -> list[tuple[str, dict[str, Any]]]:
        """`other` is the same customer as `survivor`: it points there, its identities move, an event says so."""
        operations: list[tuple[str, dict[str, Any]]] = [
            (
                "merged-contact",
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(f"CONTACT#{other.id}", "META"),
                        "UpdateExpression": "SET merged_into = :survivor",
                        "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(merged_into)",
                        "ExpressionAttributeValues": _values(survivor=survivor),
                    }
                },
            ),
            (
                "merge-event",
                {
                    "Put": self._put(
                        {
                            "PK": f"CONTACT#{survivor}",
                            "SK": f"EVT#{iso(at)}#merged#{other.id}",
                            "kind": "merged",
                            "at": iso(at),
                            "detail": {"absorbed": other.id, "identities": len(other.phones) + len(other.emails)},
                        }
                    )
                },
            ),
        ]
        for kind, values in (("phone", other.phones), ("email", other.emails)):
            operations += [
                (
                    "identity",
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": _key(f"ID#{kind}#{value}", "ID"),
                            "UpdateExpression": "SET contact_id = :survivor",
                            "ConditionExpression": "contact_id = :other",
                            "ExpressionAttributeValues": _values(survivor=survivor, other=other.id),
                        }
                    },
                )
                for value in values
            ]
        return operations

    def _seen_put(self, ticket_id: str, inbound: InboundMessage) -> dict[str, Any]:
        keep = inbound.received_at + timedelta(seconds=max(inbound.dedupe_window_s, 8 * 86400))
        item = {
            "PK": f"SEEN#{inbound.provider}#{inbound.provider_message_id}",
            "SK": "SEEN",
            "ticket_id": ticket_id,
            "receipt_id": inbound.receipt_id,
            "message_sk": _message_sk(inbound),
            "dedupe_until": iso(inbound.received_at + timedelta(seconds=inbound.dedupe_window_s)),
            TABLE.ttl_attribute: _epoch(keep),
        }
        # A record past its window (judged at this message's own receive time, so a replay decides
        # the same way) no longer makes this message a duplicate.
        return self._put(
            item,
            "attribute_not_exists(PK) OR dedupe_until <= :received",
            _values(received=iso(inbound.received_at)),
        )

    # ------------------------------------------------------------------ calls

    def merge_call(self, event: CallEvent) -> CallState:
        """Fold one callback into the call's state; every field is set idempotently, in any order."""
        sets = ["started_at = if_not_exists(started_at, :at)", f"{TABLE.ttl_attribute} = :expires"]
        values: dict[str, Any] = {"at": iso(event.received_at), "expires": _epoch(event.received_at) + _CALL_TTL_S}
        names: dict[str, str] = {}
        first_known = {
            "team": event.team,
            "caller": event.caller,
            "caller_name": event.caller_name,
            "called": event.called,
        }
        if event.recording is not None:
            first_known |= {"recording_sid": event.recording.sid, "recording_url": event.recording.url}
            if event.recording.duration_s is not None:
                sets.append("recording_duration_s = :recording_duration_s")
                values["recording_duration_s"] = event.recording.duration_s
        if event.transcript is not None and event.transcript.text:
            # a transcript with text wins over a failed attempt, whatever the order they came in
            sets += ["transcript_text = :transcript_text", "transcript_status = :transcript_status"]
            values |= {"transcript_text": event.transcript.text, "transcript_status": "completed"}
        elif event.transcript is not None:
            sets.append("transcript_status = if_not_exists(transcript_status, :transcript_status)")
            values["transcript_status"] = event.transcript.status
        if event.duration_s is not None:
            sets.append("duration_s = :duration_s")
            values["duration_s"] = event.duration_s
        for name, value in first_known.items():
            if value is not None:
                sets.append(f"#{name} = if_not_exists(#{name}, :{name})")
                names[f"#{name}"] = name
                values[name] = value
        expression = "SET " + ", ".join(sets)
        if event.call_status:
            expression += " ADD statuses :status"
            values["status"] = {event.call_status}
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(f"CALL#{event.call_sid}", "CALL"),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": _values(**values),
            "ReturnValues": "ALL_NEW",
        }
        if names:
            update["ExpressionAttributeNames"] = names
        try:
            response = self._db.update_item(**update)
        except ClientError as error:
            raise _mapped(error) from None
        state = _from_item(response["Attributes"])
        return CallState(
            call_sid=event.call_sid,
            started_at=datetime.fromisoformat(state["started_at"]),
            team=state.get("team"),
            caller=state.get("caller"),
            caller_name=state.get("caller_name"),
            called=state.get("called"),
            recording_sid=state.get("recording_sid"),
            recording_url=state.get("recording_url"),
            recording_duration_s=state.get("recording_duration_s"),
            transcript_text=state.get("transcript_text"),
            transcript_status=state.get("transcript_status"),
            statuses=frozenset(state.get("statuses", ())),
            duration_s=state.get("duration_s"),
        )

    def update_message(self, ticket_id: str, message: InboundMessage) -> None:
        """Rewrite a message's content in place (a voicemail whose transcript arrived), same key."""
        attributes = _message_item(ticket_id, message)
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(attributes["PK"], attributes["SK"]),
                UpdateExpression="SET #text = :text, attachments = :attachments, metadata = :metadata",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#text": "text"},
                ExpressionAttributeValues=_values(
                    text=attributes["text"],
                    attachments=attributes.get("attachments", []),
                    metadata=attributes["metadata"],
                ),
            )
        except ClientError as error:
            raise _mapped(error) from None

    def react(self, ticket_id: str, message_sk: str, emoji: str | None) -> None:
        """Set (or, with None, clear) the customer's reaction on one of their messages."""
        key = _key(f"TICKET#{ticket_id}", message_sk)
        update: dict[str, Any] = {"TableName": self._table, "Key": key, "ConditionExpression": "attribute_exists(PK)"}
        if emoji is None:
            update["UpdateExpression"] = "REMOVE reaction"
        else:
            update |= {"UpdateExpression": "SET reaction = :emoji", "ExpressionAttributeValues": _values(emoji=emoji)}
        try:
            self._db.update_item(**update)
        except ClientError as error:
            raise _mapped(error) from None

    def name_contact(self, contact_id: str, name: str) -> None:
        """Give a contact a name if it has none yet (a caller ID name that arrived late)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(f"CONTACT#{contact_id}", "META"),
                UpdateExpression="SET #name = if_not_exists(#name, :name)",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#name": "name"},
                ExpressionAttributeValues=_values(name=name),
            )
        except ClientError as error:
            raise _mapped(error) from None

    def retitle_ticket(self, ticket_id: str, created_at: datetime, subject: str) -> None:
        """Give a ticket the subject of its first message again, if that message is the one it was opened by."""
        self._conditional(
            self._db.update_item,
            Key=_key(f"TICKET#{ticket_id}", "META"),
            UpdateExpression="SET subject = :subject",
            ConditionExpression="created_at = :created",
            ExpressionAttributeValues=_values(subject=subject, created=iso(created_at)),
        )

    def mark_seen(self, provider: str, event_id: str, ticket_id: str, received_at: datetime) -> None:
        """Remember a callback that was folded into a ticket, for 8 days."""
        keep = received_at + timedelta(days=8)
        item = {
            "PK": f"SEEN#{provider}#{event_id}",
            "SK": "SEEN",
            "ticket_id": ticket_id,
            "dedupe_until": iso(keep),
            TABLE.ttl_attribute: _epoch(keep),
        }
        try:
            self._db.put_item(TableName=self._table, Item=_to_item(item))
        except ClientError as error:
            raise _mapped(error) from None

    def record_event(self, ticket_id: str, kind: EventKind, at: datetime, detail: dict[str, Any]) -> None:
        """Add an entry to a ticket's history. A warning also flags the ticket `warned`, in the same transaction:
        digests read near-breaches from the tickets of their window, not from each one's history."""
        event = _event_item(ticket_id, kind, at, detail)
        if kind is EventKind.WARNED:
            flag = {
                "TableName": self._table,
                "Key": _key(f"TICKET#{ticket_id}", "META"),
                "UpdateExpression": "SET warned = :yes",
                "ConditionExpression": "attribute_exists(PK)",
                "ExpressionAttributeValues": _values(yes=True),
            }
            try:
                operations = [("event", {"Put": self._put(event)}), ("ticket", {"Update": flag})]
                self._transact(operations, retry_conflicts=True)  # the ticket may be in a queue change just then
                return
            except WriteConflictError:
                pass  # no such ticket: the history entry alone, as before tickets were flagged
        try:
            self._db.put_item(TableName=self._table, Item=_to_item(event))
        except ClientError as error:
            raise _mapped(error) from None

    # ------------------------------------------------------------- SLA timers

    def timers(self, ticket_id: str) -> list[SlaTimer]:
        items = self._query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :sla)",
            ExpressionAttributeValues=_values(pk=f"TICKET#{ticket_id}", sla="SLA#"),
            ConsistentRead=True,
        )
        return [_timer(item) for item in items]

    def put_timer(self, ticket_id: str, timer: SlaTimer, replaces: int | None) -> None:
        """Start a target's clock: the first generation, or the one after `replaces` (else WriteConflictError)."""
        item = {"PK": f"TICKET#{ticket_id}", "SK": f"SLA#{timer.target.value}", **_timer_attributes(timer)}
        if replaces is None:
            put = self._put(item, "attribute_not_exists(PK)")
        else:
            put = self._put(item, "generation = :replaces", _values(replaces=replaces))
        try:
            self._db.put_item(**put)
        except ClientError as error:
            raise _mapped(error) from None

    def end_timer(
        self, ticket_id: str, timer: SlaTimer, state: str, at: datetime, *, consumed_s: int | None = None
    ) -> bool:
        """Move a running (or paused) generation to `state`; False when it had moved on already (a breach that
        won the race, a newer generation). This conditional write is what makes a response racing the
        deadline safe: the state machine's breach update carries the same condition."""
        sets = ["#state = :state", "ended_at = :at"]
        values: dict[str, Any] = {"state": state, "at": iso(at), "g": timer.generation, "was": timer.state.value}
        if consumed_s is not None:
            sets.append("consumed_s = :consumed")
            values["consumed"] = consumed_s
        return self._conditional(
            self._db.update_item,
            Key=_key(f"TICKET#{ticket_id}", f"SLA#{timer.target.value}"),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="generation = :g AND #state = :was",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=_values(**values),
        )

    def schedule(self, ticket: Ticket, next_due_at: datetime | None) -> None:
        """Where the ticket sits in its team's queue (`open_by_due`, see `_queue_position`): every open ticket is in
        it, by its earliest running or breached deadline; a resolved one leaves it. Its place in `open_by_wait` and
        the team's backlog counters move with it, in the same write (see "the open queue's counters" below)."""
        for _ in range(_BACKLOG_ATTEMPTS):
            item = self._get(f"TICKET#{ticket.id}", "META")
            if item is None:
                return  # only an existing ticket: a write would otherwise create a bare META item in the queue
            position: dict[str, Any] = _queue_position(ticket, next_due_at)
            if position:
                position["wait_key"] = _wait_key(bool(item.get("breached")), item["last_inbound_at"], ticket.id)
            sets = ", ".join(f"{name} = :{name}" for name in position)
            removes = ", ".join(name for name in _QUEUE_ATTRIBUTES if name not in position)
            expression = " ".join(p for p in (sets and f"SET {sets}", removes and f"REMOVE {removes}") if p)
            update = self._guarded_update(item, expression, position, watched=_WAIT_ATTRIBUTES)
            after = {k: v for k, v in item.items() if k not in _QUEUE_ATTRIBUTES} | position
            if self._write_counted(update, self._backlog_change(ticket.team, _counted(item), _counted(after))):
                return
        raise StoreUnavailableError("the ticket kept changing while its place in the queue was written")

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
        values = _values(**changes, status_read=ticket.status.value)
        operations = [
            (
                "ticket",
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(f"TICKET#{ticket.id}", "META"),
                        "UpdateExpression": expression,
                        "ConditionExpression": "#status_read = :status_read",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                },
            ),
            ("event", {"Put": self._put(_event_item(ticket.id, event, at, detail))}),
        ]
        self._transact(operations)

    def mark_breached(self, ticket_id: str) -> None:
        """Flag the ticket as breached (the timer item already says which target, since when); once. A queued
        ticket moves to the front of `open_by_wait` and into the team's breached count, in the same write."""
        for _ in range(_BACKLOG_ATTEMPTS):
            item = self._get(f"TICKET#{ticket_id}", "META")
            if item is None:
                raise WriteConflictError(["item"])
            if item.get("breached") is True:
                return
            changes: dict[str, Any] = {"breached": True}
            if "wait_key" in item:
                changes["wait_key"] = _wait_key(True, item["last_inbound_at"], ticket_id)
            expression = "SET " + ", ".join(f"{name} = :{name}" for name in changes)
            update = self._guarded_update(item, expression, changes, watched=_WAIT_ATTRIBUTES)
            counters = self._backlog_change(str(item["team"]), _counted(item), _counted(item | changes))
            if self._write_counted(update, counters):
                return
        raise StoreUnavailableError("the ticket kept changing while it was flagged breached")

    # ------------------------------------------------ quarantine, acknowledgments

    def quarantine(self, held: QuarantinedEmail) -> None:
        """Hold an email back (again, harmlessly, on a redelivery: the first record stays)."""
        item = {"PK": "QUARANTINE", "SK": held.id, "document": held.model_dump_json()}
        self._conditional(self._db.put_item, Item=_to_item(item), ConditionExpression="attribute_not_exists(PK)")

    def quarantined(self, quarantine_id: str) -> QuarantinedEmail | None:
        item = self._get("QUARANTINE", quarantine_id)
        return None if item is None else QuarantinedEmail.model_validate_json(item["document"])

    def list_quarantine(self, status: QuarantineStatus | None = QuarantineStatus.HELD) -> list[QuarantinedEmail]:
        """Newest first (ids are ULIDs)."""
        items = self._query(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=_values(pk="QUARANTINE"),
            ScanIndexForward=False,
        )
        held = [QuarantinedEmail.model_validate_json(item["document"]) for item in items]
        return [h for h in held if status is None or h.status == status]

    def release(self, released: QuarantinedEmail) -> None:
        """Record a release; only a held email can be released (else WriteConflictError)."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=_to_item({"PK": "QUARANTINE", "SK": released.id, "document": released.model_dump_json()}),
                ConditionExpression="contains(document, :held)",
                ExpressionAttributeValues=_values(held='"status":"held"'),
            )
        except ClientError as error:
            raise _mapped(error) from None

    # ------------------------------------------------------------ failures

    def record_failure(
        self, queue: str, message_id: str, error_type: str, error_message: str, at: datetime, keep: timedelta
    ) -> None:
        """One more failed try of a queue's message (`FAIL#<queue>`, `<message id>`), kept `keep` after it."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(f"FAIL#{queue}", message_id),
                UpdateExpression="SET error_type = :type, error_message = :message, last_try = :at,"
                " first_try = if_not_exists(first_try, :at), #expires = :until ADD attempts :one",
                ExpressionAttributeNames={"#expires": TABLE.ttl_attribute},
                ExpressionAttributeValues=_values(
                    type=error_type, message=error_message, at=iso(at), until=_epoch(at + keep), one=1
                ),
            )
        except ClientError as error:
            raise _mapped(error) from None

    def failure_records(self, queue: str) -> dict[str, FailureRecord]:
        """The failed tries recorded for a queue's messages, by message id."""
        items = self._query(KeyConditionExpression="PK = :pk", ExpressionAttributeValues=_values(pk=f"FAIL#{queue}"))
        return {
            item["SK"]: FailureRecord(
                queue=queue,
                message_id=item["SK"],
                error_type=item["error_type"],
                error_message=item["error_message"],
                attempts=item["attempts"],
                first_try=datetime.fromisoformat(item["first_try"]),
                last_try=datetime.fromisoformat(item["last_try"]),
            )
            for item in items
        }

    def claim_acknowledgment(self, ticket_id: str, sender: str, at: datetime, per_hour: int) -> bool:
        """Claim the ticket's one acknowledgment and count it against `sender`'s `per_hour` in this clock hour, in one
        write; False when the ticket's was claimed already, or (its claim stands: it is never acknowledged) when the
        sender has had `per_hour` this hour or is suppressed (`suppress`: a hard bounce or a complaint came back;
        checked in the same write, so an acknowledgment costs no read of its own)."""
        hour = at.astimezone(UTC).strftime("%Y%m%d%H")
        claim = self._put(_token_item("ack", ticket_id, at, _ACK_CLAIM_KEEP), "attribute_not_exists(PK)")
        count = {
            "TableName": self._table,
            "Key": _key(f"ACKRATE#{sender}#{hour}", "ACKRATE"),
            "UpdateExpression": "ADD sent :one SET #ttl = :keep",
            "ConditionExpression": "attribute_not_exists(sent) OR sent < :limit",
            "ExpressionAttributeNames": {"#ttl": TABLE.ttl_attribute},
            "ExpressionAttributeValues": _values(one=1, keep=_epoch(at) + 2 * 3600, limit=per_hour),
        }
        deliverable = {
            "TableName": self._table,
            "Key": _key(f"SUPPRESSED#{sender}", "SUPPRESSED"),
            "ConditionExpression": "attribute_not_exists(PK)",
        }
        try:
            self._transact(
                [
                    ("claim", {"Put": claim}),
                    ("rate", {"Update": count}),
                    ("suppressed", {"ConditionCheck": deliverable}),
                ]
            )
        except WriteConflictError as conflict:
            if "claim" not in conflict.failed:
                self.claim_token("ack", ticket_id, at, _ACK_CLAIM_KEEP)  # over the rate, or suppressed: none, ever
            return False
        return True

    def record_sent_mail(
        self, ticket_id: str, message_ids: Sequence[str], kind: EventKind, at: datetime, detail: dict[str, Any]
    ) -> None:
        """Mail we just sent on a ticket: its Message-IDs (new, ours) recorded against it, so that a reply threads
        there, and its event, in one write."""
        mapped = [{"PK": f"MSGID#{message_id}", "SK": "MSGID", "ticket_id": ticket_id} for message_id in message_ids]
        self._transact(
            [
                *(("message-id", {"Put": self._put(item)}) for item in mapped),
                ("event", {"Put": self._put(_event_item(ticket_id, kind, at, detail))}),
            ]
        )

    # ---- suppressed addresses
    # `SUPPRESSED#<address>`/`SUPPRESSED` (intake.suppression): SES reported a hard bounce or a complaint for it; the
    # mailer sends nothing more to it. Kept until removed by hand (an operator who knows the address works again).

    def suppress(self, address: str, reason: SuppressionReason, at: datetime, feedback_id: str) -> None:
        """Keep `address` (normalized: `suppression.address_key`) from any further mail; the latest report wins."""
        item = {
            "PK": f"SUPPRESSED#{address}",
            "SK": "SUPPRESSED",
            "reason": reason.value,
            "at": iso(at),
            "feedback_id": feedback_id,
        }
        try:
            self._db.put_item(TableName=self._table, Item=_to_item(item))
        except ClientError as error:
            raise _mapped(error) from None

    def is_suppressed(self, address: str) -> bool:
        return self._get(f"SUPPRESSED#{address}", "SUPPRESSED") is not None

    # ---- satisfaction
    # Surveys after resolution (intake.satisfaction): `SURVEY#<contact_id>`/`SURVEY` asks a contact at most once
    # per period (expires_at = the period's end); `CSAT#<ticket id>`/`CSAT` is the ticket's answer (first score wins,
    # latest comment); `SURVEYDAY#<team>#<local date>` and `CSATDAY#<team>#<local date>` (SK `<iso>#<ticket id>`)
    # are what digests read: surveys sent, scores received.

    def claim_survey(self, contact_id: str, ticket_id: str, at: datetime, until: datetime) -> bool:
        """Reserve the contact's one survey until `until`; True when free (none, expired, or this ticket's own)."""
        item = {
            "PK": f"SURVEY#{contact_id}",
            "SK": "SURVEY",
            "ticket_id": ticket_id,
            "claimed_at": iso(at),
            TABLE.ttl_attribute: _epoch(until),
        }
        return self._conditional(
            self._db.put_item,
            Item=_to_item(item),
            ConditionExpression="attribute_not_exists(PK) OR #ttl <= :now OR ticket_id = :ticket",
            ExpressionAttributeNames={"#ttl": TABLE.ttl_attribute},
            ExpressionAttributeValues=_values(now=_epoch(at), ticket=ticket_id),
        )

    def release_survey(self, contact_id: str, ticket_id: str) -> None:
        """Give the contact's survey back (scheduling it failed); only this ticket's claim is removed."""
        self._conditional(
            self._db.delete_item,
            Key=_key(f"SURVEY#{contact_id}", "SURVEY"),
            ConditionExpression="ticket_id = :ticket",
            ExpressionAttributeValues=_values(ticket=ticket_id),
        )

    def record_survey_sent(self, ticket: Ticket, day: date, at: datetime, detail: dict[str, Any]) -> None:
        """A survey went out: the team's day item (digests count them) and the `survey_sent` event, together."""
        sent = {
            "PK": f"SURVEYDAY#{ticket.team}#{day.isoformat()}",
            "SK": f"{iso(at)}#{ticket.id}",
            "ticket_id": ticket.id,
            "channel": ticket.channel,
            **{k: v for k, v in detail.items() if k not in ("PK", "SK", "ticket_id", "channel")},
        }
        self._transact(
            [
                ("survey", {"Put": self._put(sent)}),
                ("event", {"Put": self._put(_event_item(ticket.id, EventKind.SURVEY_SENT, at, detail))}),
            ]
        )

    def csat(self, ticket_id: str) -> CsatAnswer | None:
        item = self._get(f"CSAT#{ticket_id}", "CSAT")
        return None if item is None else self._csat_answer(item)

    def record_csat(self, ticket: TicketReference, score: int, day: date, at: datetime) -> tuple[CsatAnswer, bool]:
        """The ticket's first answer, with its day item; (answer, True). If the ticket has one already, nothing is
        written: (that answer, False). Both are items of their own, outside the ticket's (`ticket_detail` shows the
        answer as the `survey_answered` event), so that the public receiver writes no ticket item."""
        day_pk, day_sk = f"CSATDAY#{ticket.team}#{day.isoformat()}", f"{iso(at)}#{ticket.id}"
        answer = {
            "PK": f"CSAT#{ticket.id}",
            "SK": "CSAT",
            "ticket_id": ticket.id,
            "team": ticket.team,
            "score": score,
            "answered_at": iso(at),
            "day_pk": day_pk,
            "day_sk": day_sk,
        }
        day_item = {"PK": day_pk, "SK": day_sk, "ticket_id": ticket.id, "score": score}
        try:
            self._transact(
                [
                    ("answer", {"Put": self._put(answer, "attribute_not_exists(PK)")}),
                    ("day", {"Put": self._put(day_item)}),
                ]
            )
        except WriteConflictError:
            kept = self.csat(ticket.id)
            if kept is None:  # pragma: no cover - an answer is never deleted
                raise
            return kept, False
        return self._csat_answer(answer), True

    def comment_csat(self, ticket_id: str, comment: str, at: datetime) -> CsatAnswer | None:
        """Keep the customer's comment on the answer and its day item (a later comment replaces it); None when
        the ticket has no answer."""
        answer = self._get(f"CSAT#{ticket_id}", "CSAT")
        if answer is None:
            return None
        update = "SET #comment = :comment, commented_at = :at"
        values = _values(comment=comment, at=iso(at))
        operations = [
            (
                role,
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": key,
                        "UpdateExpression": update,
                        "ConditionExpression": "attribute_exists(PK)",
                        "ExpressionAttributeNames": {"#comment": "comment"},
                        "ExpressionAttributeValues": values,
                    }
                },
            )
            for role, key in (
                ("answer", _key(f"CSAT#{ticket_id}", "CSAT")),
                ("day", _key(str(answer["day_pk"]), str(answer["day_sk"]))),
            )
        ]
        self._transact(operations)
        return self._csat_answer({**answer, "comment": comment})

    @staticmethod
    def _csat_answer(item: dict[str, Any]) -> CsatAnswer:
        from intake.satisfaction import CsatAnswer

        return CsatAnswer(
            ticket_id=str(item["ticket_id"]),
            team=str(item["team"]),
            score=int(item["score"]),
            answered_at=datetime.fromisoformat(str(item["answered_at"])),
            comment=item.get("comment") or None,
        )

    # ---- end of satisfaction

    # ---- replies
    # An agent's reply is an outbound message on its ticket (`MSG#<at>#out#<reply id>`) with its delivery state;
    # `REPLYKEY#<ticket>#<Idempotency-Key>`/`REPLYKEY` keeps a retried request from making a second reply (kept 2
    # days), and `OUT#<provider>#<provider message id>`/`OUT` leads a provider's status report to the message.

    def put_reply(self, message: Message, sk: str, key: str | None, fingerprint: str, at: datetime) -> bool:
        """Record a new reply (queued) and, with it, its idempotency key; False when the key was taken already (the
        same request again, or a race with it): nothing is written then."""
        attributes = _outbound_attributes(message)
        operations: list[tuple[str, dict[str, Any]]] = [
            ("message", {"Put": self._put({"PK": f"TICKET#{message.ticket_id}", "SK": sk, **attributes}, _NEW)})
        ]
        if key is not None:
            claim = {
                "PK": f"REPLYKEY#{message.ticket_id}#{key}",
                "SK": "REPLYKEY",
                "message_sk": sk,
                "fingerprint": fingerprint,
                TABLE.ttl_attribute: _epoch(at + _REPLY_KEY_KEEP),
            }
            operations.append(("key", {"Put": self._put(claim, _NEW)}))
        try:
            self._transact(operations)
        except WriteConflictError as conflict:
            if "key" in conflict.failed:
                return False
            raise
        return True

    def reply_key(self, ticket_id: str, key: str) -> tuple[str, str] | None:
        """The reply an idempotency key made on a ticket: (its message's sort key, its request's fingerprint)."""
        item = self._get(f"REPLYKEY#{ticket_id}#{key}", "REPLYKEY")
        return None if item is None else (str(item["message_sk"]), str(item["fingerprint"]))

    def outbound(self, ticket_id: str, sk: str) -> OutboundRecord | None:
        """A reply as recorded, and whether its sending was counted as the team's response yet."""
        item = self._get(f"TICKET#{ticket_id}", sk)
        if item is None:
            return None
        return OutboundRecord(_message(item), sk, bool(item.get("counted")))

    def reply_sent(
        self,
        ticket_id: str,
        sk: str,
        provider: str,
        provider_ids: Sequence[str],
        message_ids: Sequence[str],
        at: datetime,
    ) -> bool:
        """The provider took the reply: `sent` (from `queued` only), its provider ids mapped to it for their status
        reports, and an email's Message-IDs to its ticket (the customer's answer threads there), in one write.
        False when it had left `queued` already (sent by an earlier try)."""
        provider_id = provider_ids[0]
        update = {
            "TableName": self._table,
            "Key": _key(f"TICKET#{ticket_id}", sk),
            "UpdateExpression": "SET #state = :sent, state_rank = :rank, state_at = :at, provider_message_id = :id"
            " REMOVE #error",
            "ConditionExpression": "#state = :queued",
            "ExpressionAttributeNames": {"#state": "state", "#error": "error"},
            "ExpressionAttributeValues": _values(
                sent=DeliveryState.SENT.value,
                rank=DELIVERY_RANK[DeliveryState.SENT],
                at=iso(at),
                id=provider_id,
                queued=DeliveryState.QUEUED.value,
            ),
        }
        routes = [
            {"PK": f"OUT#{provider}#{i}", "SK": "OUT", "ticket_id": ticket_id, "message_sk": sk} for i in provider_ids
        ]
        threads = [{"PK": f"MSGID#{i}", "SK": "MSGID", "ticket_id": ticket_id} for i in message_ids]
        try:
            self._transact(
                [
                    ("message", {"Update": update}),
                    *(("route", {"Put": self._put(route)}) for route in routes),
                    *(("thread", {"Put": self._put(thread)}) for thread in threads),
                ]
            )
        except WriteConflictError:
            return False
        return True

    def reply_failed(self, ticket_id: str, sk: str, error: str, at: datetime) -> bool:
        """The reply will never be sent: `failed` with the provider's error (from `queued` only)."""
        return self._conditional(
            self._db.update_item,
            Key=_key(f"TICKET#{ticket_id}", sk),
            UpdateExpression="SET #state = :failed, state_rank = :rank, state_at = :at, #error = :error",
            ConditionExpression="#state = :queued",
            ExpressionAttributeNames={"#state": "state", "#error": "error"},
            ExpressionAttributeValues=_values(
                failed=DeliveryState.FAILED.value,
                rank=DELIVERY_RANK[DeliveryState.FAILED],
                at=iso(at),
                error=error[:1000],
                queued=DeliveryState.QUEUED.value,
            ),
        )

    def reply_retrying(self, ticket_id: str, sk: str, error: str) -> None:
        """A try failed in a way the next may not: the error shows on the still-queued reply."""
        self._conditional(
            self._db.update_item,
            Key=_key(f"TICKET#{ticket_id}", sk),
            UpdateExpression="SET #error = :error ADD attempts :one",
            ConditionExpression="#state = :queued",
            ExpressionAttributeNames={"#state": "state", "#error": "error"},
            ExpressionAttributeValues=_values(error=error[:1000], one=1, queued=DeliveryState.QUEUED.value),
        )

    def reply_counted(self, ticket_id: str, sk: str) -> None:
        """The reply's sending was counted as the team's response (the SLA clocks): never again."""
        self._conditional(
            self._db.update_item,
            Key=_key(f"TICKET#{ticket_id}", sk),
            UpdateExpression="SET counted = :yes",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues=_values(yes=True),
        )

    def advance_delivery(
        self, provider: str, provider_message_id: str, state: DeliveryState, at: datetime, error: str | None
    ) -> str | None:
        """A provider's status report on a message we sent: its state moves forward to `state` (never back: a late
        `sent` after `delivered` changes nothing). The ticket it is on when it moved; None when it did not, or when
        the id is none of ours (a message sent from outside Intake)."""
        route = self._get(f"OUT#{provider}#{provider_message_id}", "OUT")
        if route is None:
            return None
        sets = ["#state = :state", "state_rank = :rank", "state_at = :at"]
        values: dict[str, Any] = {"state": state.value, "rank": DELIVERY_RANK[state], "at": iso(at)}
        if error is not None:
            sets.append("#error = :error")
            values["error"] = error[:1000]
        moved = self._conditional(
            self._db.update_item,
            Key=_key(f"TICKET#{route['ticket_id']}", str(route["message_sk"])),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_exists(PK) AND state_rank < :rank",
            ExpressionAttributeNames={"#state": "state", **({"#error": "error"} if error is not None else {})},
            ExpressionAttributeValues=_values(**values),
        )
        return str(route["ticket_id"]) if moved else None

    # ---- end of replies

    # --------------------------------------------------------------- plumbing

    def _put(
        self, attributes: dict[str, Any], condition: str | None = None, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self._table, "Item": _to_item(attributes)}
        if condition:
            put["ConditionExpression"] = condition
        if values:
            put["ExpressionAttributeValues"] = values
        return put

    def _conditional(self, write: Callable[..., Any], **request: Any) -> bool:
        """One conditional write (put, update or delete): True when it was made, False when its condition did not
        hold; any other failure becomes our error."""
        try:
            write(TableName=self._table, **request)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise _mapped(error) from None
        return True

    def _transact(self, operations: list[tuple[str, dict[str, Any]]], *, retry_conflicts: bool = False) -> None:
        """All the operations or none. `retry_conflicts`: a transaction cancelled only because another one held one
        of its items (`TransactionConflict`, on the team's counter item that each of its queue changes updates) is
        sent again a few milliseconds later, a few times: it wrote nothing, and its conditions are judged again."""
        attempts = 1 + (_CONFLICT_RETRIES if retry_conflicts else 0)
        for attempt in range(attempts):
            try:
                self._db.transact_write_items(TransactItems=[op for _, op in operations])  # type: ignore[misc]
                return
            except ClientError as error:
                if attempt + 1 < attempts and _conflicted_only(error):
                    time.sleep(random.uniform(0.01, 0.05) * 2**attempt)  # noqa: S311 - jitter, not a secret
                    continue
                raise _transaction_error(error, [role for role, _ in operations]) from None

    def _batch_get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The items found among `keys` (pk, sk), read consistently with as few BatchGetItem calls as DynamoDB takes
        (100 keys each). The keys it leaves unprocessed (throttled, or past 16 MB of items) are asked for again."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(wanted), _BATCH_GET_KEYS):
            pending = [_key(pk, sk) for pk, sk in wanted[start : start + _BATCH_GET_KEYS]]
            for attempt in range(_BATCH_GET_ATTEMPTS):
                request: dict[str, Any] = {self._table: {"Keys": pending, "ConsistentRead": True}}
                try:
                    response = self._db.batch_get_item(RequestItems=request)
                except ClientError as error:
                    raise _mapped(error) from None
                items = response.get("Responses", {}).get(self._table, [])
                for item in items:
                    plain = _from_item(item)
                    found[(plain[TABLE.partition_key], plain[TABLE.sort_key])] = plain
                unprocessed = response.get("UnprocessedKeys", {}).get(self._table)
                pending = [dict(key) for key in unprocessed["Keys"]] if unprocessed else []
                if not pending:
                    break
                if not items:  # throttled: nothing was read this time
                    time.sleep(0.05 * 2**attempt)
            else:
                raise StoreUnavailableError("UnprocessedKeys")
        return found

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            response = self._db.get_item(TableName=self._table, Key=_key(pk, sk), ConsistentRead=True)
        except ClientError as error:
            raise _mapped(error) from None
        item = response.get("Item")
        return None if item is None else _from_item(item)

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        while True:
            try:
                response = self._db.query(TableName=self._table, **kwargs)
            except ClientError as error:
                raise _mapped(error) from None
            for item in response.get("Items", []):
                yield _from_item(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # ---------------------------------------------------------------- digests
    # What a team's digest reads (intake.digest): the `by_day` index one local day at a time (each ticket says
    # whether it was `warned`), the team's backlog counters, the head of its `open_by_wait` queue and today's part
    # of `open_by_due`, and the satisfaction items of the survey contract (`SURVEYDAY#<team>#<local date>` per
    # survey sent, `CSATDAY#<team>#<local date>` per score received). A few queries per local day and three for the
    # backlog: what is read grows with the window's tickets, not with the table nor with the open backlog.
    #
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

    def day_tickets(self, team: str, day: date) -> list[Ticket]:
        """Tickets created on the team's local date `day`, oldest first (the `by_day` index)."""
        index = _index("by_day")
        items = self._query(
            IndexName=index.name,
            KeyConditionExpression=f"{index.partition_key} = :day",
            ExpressionAttributeValues=_values(day=f"{team}#{day.isoformat()}"),
        )
        return [self._day_ticket(item) for item in items]

    def _day_ticket(self, item: dict[str, Any]) -> Ticket:
        ticket = _ticket(item)
        if "warned" not in item and not ticket.breached:
            # written before tickets carried the flag (each one has it since): its history says
            ticket = ticket.model_copy(update={"warned": self.was_warned(ticket.id)})
        return ticket

    def backlog(self, team: str, now: datetime, listed: int) -> OpenQueue:
        """The team's open queue now: how many tickets, breached, overdue (next deadline at or before `now`), and the
        first `listed` of them breached first, then by the longest wait (the oldest last customer message)."""
        counters = self._get(f"{BACKLOG_ITEMS}{team}", "BACKLOG")
        if counters is None or counters.get("complete") is not True:
            return self._counted_backlog(team, now, listed)
        today = now.astimezone(UTC).date().isoformat()
        index = _index("open_by_due")
        due_today = self._count(
            IndexName=index.name,
            KeyConditionExpression=f"{index.partition_key} = :team AND {index.sort_key} BETWEEN :midnight AND :now",
            ExpressionAttributeValues=_values(team=team, midnight=f"{today}T00:00:00.000000Z", now=f"{iso(now)}#~"),
        )
        past = sum(int(n) for name, n in counters.items() if name.startswith("due#") and name[4:] < today)
        return OpenQueue(
            open=int(counters.get("open", 0)),
            breached=int(counters.get("breached", 0)),
            overdue=past + due_today,
            longest_waiting=tuple(_ticket(item) for item in islice(self._waiting(team, listed), listed)),
        )

    def count_backlog(self, team: str) -> int:
        """Count into the team's backlog counters the queued tickets written before there were counters (once,
        after upgrading; harmless again); how many it counted."""
        uncounted = [_ticket(item) for item in self._open_items(team) if "wait_key" not in item]
        for ticket in uncounted:
            self.schedule(ticket, ticket.next_due_at)  # the same place, now counted
        self._complete_if_counted(team, list(self._open_items(team)))
        return len(uncounted)

    def _counted_backlog(self, team: str, now: datetime, listed: int) -> OpenQueue:
        """The backlog from the whole queue, while the counters are not complete."""
        items = list(self._open_items(team))
        uncounted = self._complete_if_counted(team, items)
        tickets = [_ticket(item) for item in items]
        waiting = sorted(tickets, key=lambda t: _wait_key(t.breached, iso(t.last_inbound_at), t.id))
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
                Key=_key(f"{BACKLOG_ITEMS}{team}", "BACKLOG"),
                UpdateExpression="SET complete = :yes",
                ExpressionAttributeValues=_values(yes=True),
            )
        return uncounted

    def _open_items(self, team: str) -> Iterator[dict[str, Any]]:
        index = _index("open_by_due")
        return self._query(
            IndexName=index.name,
            KeyConditionExpression=f"{index.partition_key} = :team",
            ExpressionAttributeValues=_values(team=team),
        )

    def _waiting(self, team: str, limit: int) -> Iterator[dict[str, Any]]:
        index = _index("open_by_wait")
        return self._query(
            IndexName=index.name,
            KeyConditionExpression=f"{index.partition_key} = :team",
            ExpressionAttributeValues=_values(team=team),
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
            "Key": _key(f"{BACKLOG_ITEMS}{team}", "BACKLOG"),
            "UpdateExpression": "ADD " + ", ".join(f"#c{n} :c{n}" for n in range(len(deltas))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _values(**{f"c{n}": delta for n, delta in enumerate(deltas.values())}),
        }
        return [("backlog", {"Update": update})]

    def _guarded_update(
        self, item: dict[str, Any], expression: str, values: dict[str, Any], *, watched: Sequence[str]
    ) -> dict[str, Any]:
        """An update of the ticket `item` was read from, made only if its `watched` attributes are still as read."""
        condition, names, guard = _unchanged(item, watched)
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(str(item["PK"]), str(item["SK"])),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values or guard:
            update["ExpressionAttributeValues"] = _values(**values) | guard
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
        return [_ticket(item) for item in self._open_items(team)]

    def was_warned(self, ticket_id: str) -> bool:
        """Whether an SLA warning was sent for the ticket (a `warned` event in its history; the ticket's `warned`
        flag says the same, for tickets written since it exists)."""
        return (
            self._count(
                KeyConditionExpression="PK = :pk AND begins_with(SK, :evt)",
                FilterExpression="kind = :warned",
                ExpressionAttributeValues=_values(pk=f"TICKET#{ticket_id}", evt="EVT#", warned=EventKind.WARNED.value),
            )
            > 0
        )

    def surveys_sent(self, team: str, day: date) -> int:
        """Satisfaction surveys sent on the team's local date `day` (none recorded: 0)."""
        return self._count(
            KeyConditionExpression="PK = :pk", ExpressionAttributeValues=_values(pk=f"SURVEYDAY#{team}#{day}")
        )

    def scores_received(self, team: str, day: date) -> list[ScoreReceived]:
        """Satisfaction scores answered on the team's local date `day`, in the order they came (none: [])."""
        items = self._query(
            KeyConditionExpression="PK = :pk", ExpressionAttributeValues=_values(pk=f"CSATDAY#{team}#{day}")
        )
        return [
            ScoreReceived(
                ticket_id=str(item["ticket_id"]),
                score=int(item["score"]),
                answered_at=datetime.fromisoformat(str(item["SK"]).partition("#")[0]),
                comment=item.get("comment") or None,
            )
            for item in items
        ]

    def _count(self, **kwargs: Any) -> int:
        total = 0
        while True:
            try:
                response = self._db.query(TableName=self._table, Select="COUNT", **kwargs)
            except ClientError as error:
                raise _mapped(error) from None
            total += response.get("Count", 0)
            if "LastEvaluatedKey" not in response:
                return total
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


@dataclass(frozen=True)
class OpenQueue:
    """A team's open queue as a digest shows it."""

    open: int
    breached: int
    overdue: int  # next SLA deadline at or before the digest's `now`
    longest_waiting: tuple[Ticket, ...]  # breached first, then by the oldest last customer message
    uncounted: int = 0  # queued tickets its counters do not hold yet: the whole queue was read


@dataclass(frozen=True)
class ScoreReceived:
    """A customer's answer to a satisfaction survey, as a digest reads it."""

    ticket_id: str
    score: int
    answered_at: datetime
    comment: str | None
    # ---------------------------------------------------------------- end of digests


def _index(name: str) -> Index:
    return next(index for index in TABLE.indexes if index.name == name)


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


def _transaction_error(error: ClientError, roles: Sequence[str]) -> StoreError:
    """A failed TransactWriteItems as our error: the roles whose condition failed, or unavailable."""
    if error.response["Error"]["Code"] != "TransactionCanceledException":
        return _mapped(error)
    reasons = [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]
    if "ConditionalCheckFailed" in reasons:
        return WriteConflictError(
            [role for role, r in zip(roles, reasons, strict=False) if r == "ConditionalCheckFailed"]
        )
    return StoreUnavailableError(",".join(reasons))


def _conflicted_only(error: ClientError) -> bool:
    """Cancelled because another transaction held one of its items, and for no other reason."""
    if error.response["Error"]["Code"] != "TransactionCanceledException":
        return False
    reasons = {r.get("Code", "None") for r in error.response.get("CancellationReasons", [])}
    return "TransactionConflict" in reasons and reasons <= {"TransactionConflict", "None"}


def _mapped(error: ClientError) -> StoreError:
    code = error.response["Error"]["Code"]
    if code in _RETRYABLE:
        return StoreUnavailableError(code)
    if code == "ConditionalCheckFailedException":
        return WriteConflictError(["item"])
    return StoreError(code)


_KEYS = (
    "PK",
    "SK",
    "created_key",
    "team_day",
    "open_team",
    "due_key",
    "wait_key",
    TABLE.ttl_attribute,
    "state_rank",
    "counted",
)


def _strip(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _KEYS}


def _token_item(provider: str, token: str, at: datetime, keep: timedelta) -> dict[str, Any]:
    return {"PK": f"TOKEN#{provider}#{token}", "SK": "TOKEN", TABLE.ttl_attribute: _epoch(at + keep)}


def _seen(item: dict[str, Any]) -> Seen:
    return Seen(item["ticket_id"], datetime.fromisoformat(item["dedupe_until"]), item.get("message_sk"))


def _ticket(item: dict[str, Any]) -> Ticket:
    return Ticket.model_validate(_strip(item))


def _timer_attributes(timer: SlaTimer) -> dict[str, Any]:
    attributes = timer.model_dump(mode="json")
    for name in ("started_at", "due_at", "breached_at", "ended_at"):
        moment = getattr(timer, name)
        attributes[name] = None if moment is None else iso(moment)
    attributes["execution"] = json.dumps(timer.execution, sort_keys=True)
    return attributes


def _timer(item: dict[str, Any]) -> SlaTimer:
    fields = _strip(item)
    fields["execution"] = json.loads(fields.get("execution") or "{}")
    return SlaTimer.model_validate(fields)


def _message(item: dict[str, Any]) -> Message:
    fields = _strip(item)
    fields.pop("attempts", None)  # a reply's failed tries: its error says the last
    fields["metadata"] = json.loads(fields.get("metadata", "{}"))
    return Message.model_validate(fields)


def _message_item(ticket_id: str, inbound: InboundMessage) -> dict[str, Any]:
    message = Message(
        ticket_id=ticket_id,
        provider=inbound.provider,
        provider_message_id=inbound.provider_message_id,
        receipt_id=inbound.receipt_id,
        direction=Direction.INBOUND,
        received_at=inbound.received_at,
        channel=inbound.channel,
        subject=inbound.subject,
        text=inbound.text,
        attachments=inbound.attachments,
        raw_archive_key=inbound.raw_archive_key,
    )
    attributes = message.model_dump(mode="json")
    attributes["received_at"] = iso(inbound.received_at)
    attributes["metadata"] = json.dumps(inbound.metadata, sort_keys=True, default=str)
    return {"PK": f"TICKET#{ticket_id}", "SK": _message_sk(inbound), **attributes}


def _outbound_attributes(message: Message) -> dict[str, Any]:
    attributes = message.model_dump(mode="json", exclude_none=True)
    attributes["received_at"] = iso(message.received_at)
    if message.state_at is not None:
        attributes["state_at"] = iso(message.state_at)
    attributes["metadata"] = json.dumps(message.metadata, sort_keys=True, default=str)
    attributes["state_rank"] = DELIVERY_RANK[message.state or DeliveryState.QUEUED]
    return attributes


def _message_sk(inbound: InboundMessage) -> str:
    return f"MSG#{iso(inbound.received_at)}#{inbound.provider}#{inbound.provider_message_id}"


def _queue_position(ticket: Ticket, next_due_at: datetime | None) -> dict[str, str]:
    """The `open_by_due` index's attributes: an open ticket by its earliest deadline (a breached one is past, so
    first), or, with none, after every deadline ("~" sorts after digits), oldest first; none when resolved."""
    if not ticket.status.is_open:
        return {}
    if next_due_at is None:
        return {"open_team": ticket.team, "due_key": f"~#{iso(ticket.created_at)}#{ticket.id}"}
    return {"next_due_at": iso(next_due_at), "open_team": ticket.team, "due_key": f"{iso(next_due_at)}#{ticket.id}"}


_QUEUE_ATTRIBUTES = ("next_due_at", "open_team", "due_key", "wait_key")
_COUNTED_ATTRIBUTES = ("open_team", "wait_key", "breached", "next_due_at")  # what a ticket's counts derive from
_WAIT_ATTRIBUTES = (*_COUNTED_ATTRIBUTES, "last_inbound_at")  # and what its `wait_key` is written from


def _wait_key(breached: bool, last_inbound_at: str, ticket_id: str) -> str:
    """The `open_by_wait` index's sort key: breached first, then the longest waiting (the oldest last customer
    message, an `iso` text); present with the queue position, on the tickets the backlog counters hold."""
    return f"{0 if breached else 1}#{last_inbound_at}#{ticket_id}"


def _counted(item: Mapping[str, Any]) -> Counter[str]:
    """What a ticket item counts for in its team's backlog counters (nothing when not counted, or not queued)."""
    if "wait_key" not in item or "open_team" not in item:
        return Counter()
    counts = Counter({"open": 1, "breached": 1 if item.get("breached") is True else 0})
    if item.get("next_due_at"):
        counts[f"due#{str(item['next_due_at'])[:10]}"] = 1
    return counts


def _as_read(ticket: Ticket) -> dict[str, Any]:
    """The queue attributes a ticket read from the table has, as far as it shows them (what it counts for, see
    `_counted`): queued and counted while open or pending, with its breach flag and its next deadline. A guess that
    the write it is used in checks (`_unchanged`)."""
    attributes: dict[str, Any] = {"breached": ticket.breached}
    if ticket.next_due_at is not None:
        attributes["next_due_at"] = iso(ticket.next_due_at)
    if ticket.status.is_open:
        attributes["open_team"] = ticket.team
        attributes["wait_key"] = _wait_key(ticket.breached, iso(ticket.last_inbound_at), ticket.id)
    return attributes


def _unchanged(item: Mapping[str, Any], names: Sequence[str]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A condition: the item still exists, each of `names` as read (or still absent); its names and values."""
    terms, placeholders, values = ["attribute_exists(PK)"], {}, {}
    for n, name in enumerate(names):
        placeholders[f"#w{n}"] = name
        if name in item:
            terms.append(f"#w{n} = :w{n}")
            values[f"w{n}"] = item[name]
        else:
            terms.append(f"attribute_not_exists(#w{n})")
    return " AND ".join(terms), placeholders, _values(**values)


def _event_item(ticket_id: str, kind: EventKind, at: datetime, detail: dict[str, Any]) -> dict[str, Any]:
    target = f"#{detail['target']}" if "target" in detail else ""  # two clocks' events at one instant: two items
    return {
        "PK": f"TICKET#{ticket_id}",
        "SK": f"EVT#{iso(at)}#{kind.value}{target}",
        "ticket_id": ticket_id,
        "kind": kind.value,
        "at": iso(at),
        "detail": detail,
    }
