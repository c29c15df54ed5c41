"""Items and their attributes: our models as DynamoDB items and back, and the expressions' values."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from intake.model import DELIVERY_RANK, DeliveryState, Direction, EventKind, InboundMessage, Message, SlaTimer, Ticket
from intake.records import Seen
from intake.resources import TABLE, Index
from intake.store import keys
from intake.store.keys import iso

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_item(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in attributes.items() if v is not None and v != ()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def item_key(pk: str, sk: str) -> dict[str, Any]:
    return {TABLE.partition_key: {"S": pk}, TABLE.sort_key: {"S": sk}}


def expression_values(**values: Any) -> dict[str, Any]:
    return {f":{k}": _serializer.serialize(v) for k, v in values.items()}


def index_named(name: str) -> Index:
    return next(index for index in TABLE.indexes if index.name == name)


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


def strip_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _KEYS}


def seen_of(item: dict[str, Any]) -> Seen:
    return Seen(item["ticket_id"], datetime.fromisoformat(item["dedupe_until"]), item.get("message_sk"))


def ticket_of(item: dict[str, Any]) -> Ticket:
    return Ticket.model_validate(strip_keys(item))


def timer_attributes(timer: SlaTimer) -> dict[str, Any]:
    attributes = timer.model_dump(mode="json")
    for name in ("started_at", "due_at", "breached_at", "ended_at"):
        moment = getattr(timer, name)
        attributes[name] = None if moment is None else iso(moment)
    attributes["execution"] = json.dumps(timer.execution, sort_keys=True)
    return attributes


def timer_of(item: dict[str, Any]) -> SlaTimer:
    fields = strip_keys(item)
    fields["execution"] = json.loads(fields.get("execution") or "{}")
    return SlaTimer.model_validate(fields)


def message_of(item: dict[str, Any]) -> Message:
    fields = strip_keys(item)
    fields.pop("attempts", None)  # a reply's failed tries: its error says the last
    fields["metadata"] = json.loads(fields.get("metadata", "{}"))
    return Message.model_validate(fields)


def message_item(ticket_id: str, inbound: InboundMessage) -> dict[str, Any]:
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
    return {"PK": keys.ticket_pk(ticket_id), "SK": inbound_sk(inbound), **attributes}


def inbound_sk(inbound: InboundMessage) -> str:
    """The sort key of a customer's message on its ticket."""
    return keys.message_sk(inbound.received_at, inbound.provider, inbound.provider_message_id)


def outbound_attributes(message: Message) -> dict[str, Any]:
    attributes = message.model_dump(mode="json", exclude_none=True)
    attributes["received_at"] = iso(message.received_at)
    if message.state_at is not None:
        attributes["state_at"] = iso(message.state_at)
    attributes["metadata"] = json.dumps(message.metadata, sort_keys=True, default=str)
    attributes["state_rank"] = DELIVERY_RANK[message.state or DeliveryState.QUEUED]
    return attributes


def event_item(ticket_id: str, kind: EventKind, at: datetime, detail: dict[str, Any]) -> dict[str, Any]:
    target = str(detail["target"]) if "target" in detail else None  # two clocks' events at one instant: two items
    return {
        "PK": keys.ticket_pk(ticket_id),
        "SK": keys.event_sk(at, kind.value, target),
        "ticket_id": ticket_id,
        "kind": kind.value,
        "at": iso(at),
        "detail": detail,
    }
