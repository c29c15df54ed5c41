"""Agents' replies: outbound messages on their tickets with their delivery state, their idempotency keys
(`REPLYKEY#`) and the routes of providers' status reports to them (`OUT#`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from intake.model import DELIVERY_RANK, DeliveryState, Message
from intake.records import OutboundRecord
from intake.resources import TABLE
from intake.store import keys
from intake.store.errors import WriteConflictError
from intake.store.items import epoch, expression_values, item_key, message_of, outbound_attributes, to_item
from intake.store.keys import iso
from intake.store.table import Table

_NEW = "attribute_not_exists(PK)"
_REPLY_KEY_KEEP = timedelta(days=2)
_READABLE = (DeliveryState.SENT.value, DeliveryState.DELIVERED.value)  # what a read receipt moves on


class OutboundStore(Table):
    # An agent's reply is an outbound message on its ticket (`MSG#<at>#out#<reply id>`) with its delivery state;
    # `REPLYKEY#<ticket>#<Idempotency-Key>`/`REPLYKEY` keeps a retried request from making a second reply (kept 2
    # days), and `OUT#<provider>#<provider message id>`/`OUT` leads a provider's status report to the message.

    def put_reply(self, message: Message, sk: str, key: str | None, fingerprint: str, at: datetime) -> bool:
        """Record a new reply (queued) and, with it, its idempotency key; False when the key was taken already (the
        same request again, or a race with it): nothing is written then."""
        attributes = outbound_attributes(message)
        operations: list[tuple[str, dict[str, Any]]] = [
            ("message", {"Put": self._put({"PK": keys.ticket_pk(message.ticket_id), "SK": sk, **attributes}, _NEW)})
        ]
        if key is not None:
            claim = {
                "PK": keys.reply_key_pk(message.ticket_id, key),
                "SK": keys.REPLY_KEY_SK,
                "message_sk": sk,
                "fingerprint": fingerprint,
                TABLE.ttl_attribute: epoch(at + _REPLY_KEY_KEEP),
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
        item = self._get(keys.reply_key_pk(ticket_id, key), keys.REPLY_KEY_SK)
        return None if item is None else (str(item["message_sk"]), str(item["fingerprint"]))

    def outbound(self, ticket_id: str, sk: str) -> OutboundRecord | None:
        """A reply as recorded, and whether its sending was counted as the team's response yet."""
        item = self._get(keys.ticket_pk(ticket_id), sk)
        if item is None:
            return None
        return OutboundRecord(message_of(item), sk, bool(item.get("counted")))

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
            "Key": item_key(keys.ticket_pk(ticket_id), sk),
            "UpdateExpression": "SET #state = :sent, state_rank = :rank, state_at = :at, provider_message_id = :id"
            " REMOVE #error",
            "ConditionExpression": "#state = :queued",
            "ExpressionAttributeNames": {"#state": "state", "#error": "error"},
            "ExpressionAttributeValues": expression_values(
                sent=DeliveryState.SENT.value,
                rank=DELIVERY_RANK[DeliveryState.SENT],
                at=iso(at),
                id=provider_id,
                queued=DeliveryState.QUEUED.value,
            ),
        }
        routes = [
            {"PK": keys.route_pk(provider, i), "SK": keys.ROUTE_SK, "ticket_id": ticket_id, "message_sk": sk}
            for i in provider_ids
        ]
        threads = [{"PK": keys.message_id_pk(i), "SK": keys.MESSAGE_ID_SK, "ticket_id": ticket_id} for i in message_ids]
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

    def read_up_to(self, thread_key: str, up_to: datetime, at: datetime) -> str | None:
        """A read receipt that names no message, only a time (Messenger's watermark): each reply on the
        conversation's ticket recorded by `up_to` and sent or delivered is read. Its ticket when one moved."""
        thread = self._get(keys.thread_pk(thread_key), keys.THREAD_SK)
        if thread is None:
            return None
        ticket_id = str(thread["ticket_id"])
        replies = self._query(
            KeyConditionExpression="PK = :pk AND SK BETWEEN :first AND :last",
            ExpressionAttributeValues=expression_values(
                pk=keys.ticket_pk(ticket_id), first=keys.MESSAGE, last=f"{keys.MESSAGE}{iso(up_to)}~"
            ),
        )
        moved = False
        for item in replies:
            if f"#{keys.REPLY_PROVIDER}#" in str(item["SK"]) and item.get("state") in _READABLE:
                moved |= self._conditional(
                    self._db.update_item,
                    Key=item_key(keys.ticket_pk(ticket_id), str(item["SK"])),
                    UpdateExpression="SET #state = :read, state_rank = :rank, state_at = :at",
                    ConditionExpression="state_rank >= :sent AND state_rank <= :delivered",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues=expression_values(
                        read=DeliveryState.READ.value,
                        rank=DELIVERY_RANK[DeliveryState.READ],
                        at=iso(at),
                        sent=DELIVERY_RANK[DeliveryState.SENT],
                        delivered=DELIVERY_RANK[DeliveryState.DELIVERED],
                    ),
                )
        return ticket_id if moved else None

    def _hold(self, route_pk: str, state: DeliveryState, at: datetime, error: str | None, until: datetime) -> None:
        item = {
            "PK": route_pk,
            "SK": keys.HELD_SK,
            "state": state.value,
            "state_rank": DELIVERY_RANK[state],
            "state_at": iso(at),
            "expires_at": epoch(until),
            **({"error": error[:1000]} if error is not None else {}),
        }
        self._conditional(
            self._db.put_item,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(PK) OR state_rank < :rank",
            ExpressionAttributeValues=expression_values(rank=DELIVERY_RANK[state]),
        )

    def held_report(self, provider: str, provider_message_id: str) -> tuple[DeliveryState, datetime, str | None] | None:
        """The report held for a message before it was recorded as sent (`advance_delivery`'s `hold_until`)."""
        item = self._get(keys.route_pk(provider, provider_message_id), keys.HELD_SK)
        if item is None:
            return None
        error = item.get("error")
        return DeliveryState(item["state"]), datetime.fromisoformat(item["state_at"]), str(error) if error else None

    def reply_failed(self, ticket_id: str, sk: str, error: str, at: datetime) -> bool:
        """The reply will never be sent: `failed` with the provider's error (from `queued` only)."""
        return self._conditional(
            self._db.update_item,
            Key=item_key(keys.ticket_pk(ticket_id), sk),
            UpdateExpression="SET #state = :failed, state_rank = :rank, state_at = :at, #error = :error",
            ConditionExpression="#state = :queued",
            ExpressionAttributeNames={"#state": "state", "#error": "error"},
            ExpressionAttributeValues=expression_values(
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
            Key=item_key(keys.ticket_pk(ticket_id), sk),
            UpdateExpression="SET #error = :error ADD attempts :one",
            ConditionExpression="#state = :queued",
            ExpressionAttributeNames={"#state": "state", "#error": "error"},
            ExpressionAttributeValues=expression_values(error=error[:1000], one=1, queued=DeliveryState.QUEUED.value),
        )

    def reply_counted(self, ticket_id: str, sk: str) -> None:
        """The reply's sending was counted as the team's response (the SLA clocks): never again."""
        self._conditional(
            self._db.update_item,
            Key=item_key(keys.ticket_pk(ticket_id), sk),
            UpdateExpression="SET counted = :yes",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues=expression_values(yes=True),
        )

    def advance_delivery(
        self,
        provider: str,
        provider_message_id: str,
        state: DeliveryState,
        at: datetime,
        error: str | None,
        *,
        hold_until: datetime | None = None,
    ) -> str | None:
        """A provider's status report on a message we sent: its state moves forward to `state` (never back: a late
        `sent` after `delivered` changes nothing). The ticket it is on when it moved; None when it did not, or when
        the id is none of ours yet: then, with `hold_until`, the report is held (`OUT#...`/`HELD`, the furthest
        state) until then, for the sender to apply when it records the send (`held_report`)."""
        route_pk = keys.route_pk(provider, provider_message_id)
        route = self._get(route_pk, keys.ROUTE_SK)
        if route is None:
            if hold_until is not None:
                self._hold(route_pk, state, at, error, hold_until)
            return None
        sets = ["#state = :state", "state_rank = :rank", "state_at = :at"]
        values: dict[str, Any] = {"state": state.value, "rank": DELIVERY_RANK[state], "at": iso(at)}
        if error is not None:
            sets.append("#error = :error")
            values["error"] = error[:1000]
        moved = self._conditional(
            self._db.update_item,
            Key=item_key(keys.ticket_pk(route["ticket_id"]), str(route["message_sk"])),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_exists(PK) AND state_rank < :rank",
            ExpressionAttributeNames={"#state": "state", **({"#error": "error"} if error is not None else {})},
            ExpressionAttributeValues=expression_values(**values),
        )
        return str(route["ticket_id"]) if moved else None
