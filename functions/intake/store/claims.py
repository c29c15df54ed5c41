"""What is done once: a provider's message taken in (`SEEN#`), a claimed token (`TOKEN#`), a ticket's one
acknowledgment within its sender's hourly rate (`ACKRATE#`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from intake.model import InboundMessage
from intake.records import Seen
from intake.resources import TABLE
from intake.store import keys
from intake.store.errors import WriteConflictError, mapped
from intake.store.items import epoch, expression_values, inbound_sk, item_key, seen_of, to_item
from intake.store.keys import iso
from intake.store.table import Table

_ACK_CLAIM_KEEP = timedelta(days=2)


class ClaimsStore(Table):
    def seen(self, provider: str, provider_message_id: str) -> Seen | None:
        item = self._get(keys.seen_pk(provider, provider_message_id), keys.SEEN_SK)
        return None if item is None else seen_of(item)

    def claim_token(self, provider: str, token: str, at: datetime, keep: timedelta = timedelta(days=2)) -> bool:
        """True the first time a token is claimed (kept `keep`, 2 days by default), False after that."""
        return self._conditional(
            self._db.put_item,
            Item=to_item(_token_item(provider, token, at, keep)),
            ConditionExpression="attribute_not_exists(PK)",
        )

    def release_token(self, provider: str, token: str) -> None:
        """Forget a claimed token, so that the work it guarded may be tried again (it failed)."""
        try:
            self._db.delete_item(TableName=self._table, Key=item_key(keys.token_pk(provider, token), keys.TOKEN_SK))
        except ClientError as error:
            raise mapped(error) from None

    def _seen_put(self, ticket_id: str, inbound: InboundMessage) -> dict[str, Any]:
        keep = inbound.received_at + timedelta(seconds=max(inbound.dedupe_window_s, 8 * 86400))
        item = {
            "PK": keys.seen_pk(inbound.provider, inbound.provider_message_id),
            "SK": keys.SEEN_SK,
            "ticket_id": ticket_id,
            "receipt_id": inbound.receipt_id,
            "message_sk": inbound_sk(inbound),
            "dedupe_until": iso(inbound.received_at + timedelta(seconds=inbound.dedupe_window_s)),
            TABLE.ttl_attribute: epoch(keep),
        }
        # A record past its window (judged at this message's own receive time, so a replay decides
        # the same way) no longer makes this message a duplicate.
        return self._put(
            item,
            "attribute_not_exists(PK) OR dedupe_until <= :received",
            expression_values(received=iso(inbound.received_at)),
        )

    def mark_seen(self, provider: str, event_id: str, ticket_id: str, received_at: datetime) -> None:
        """Remember a callback that was folded into a ticket, for 8 days."""
        keep = received_at + timedelta(days=8)
        item = {
            "PK": keys.seen_pk(provider, event_id),
            "SK": keys.SEEN_SK,
            "ticket_id": ticket_id,
            "dedupe_until": iso(keep),
            TABLE.ttl_attribute: epoch(keep),
        }
        try:
            self._db.put_item(TableName=self._table, Item=to_item(item))
        except ClientError as error:
            raise mapped(error) from None

    def claim_acknowledgment(self, ticket_id: str, sender: str, at: datetime, per_hour: int) -> bool:
        """Claim the ticket's one acknowledgment and count it against `sender`'s `per_hour` in this clock hour, in one
        write; False when the ticket's was claimed already, or (its claim stands: it is never acknowledged) when the
        sender has had `per_hour` this hour or is suppressed (`suppress`: a hard bounce or a complaint came back;
        checked in the same write, so an acknowledgment costs no read of its own)."""
        hour = at.astimezone(UTC).strftime("%Y%m%d%H")
        claim = self._put(_token_item("ack", ticket_id, at, _ACK_CLAIM_KEEP), "attribute_not_exists(PK)")
        count = {
            "TableName": self._table,
            "Key": item_key(keys.ack_rate_pk(sender, hour), keys.ACK_RATE_SK),
            "UpdateExpression": "ADD sent :one SET #ttl = :keep",
            "ConditionExpression": "attribute_not_exists(sent) OR sent < :limit",
            "ExpressionAttributeNames": {"#ttl": TABLE.ttl_attribute},
            "ExpressionAttributeValues": expression_values(one=1, keep=epoch(at) + 2 * 3600, limit=per_hour),
        }
        deliverable = {
            "TableName": self._table,
            "Key": item_key(keys.suppressed_pk(sender), keys.SUPPRESSED_SK),
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


def _token_item(provider: str, token: str, at: datetime, keep: timedelta) -> dict[str, Any]:
    return {"PK": keys.token_pk(provider, token), "SK": keys.TOKEN_SK, TABLE.ttl_attribute: epoch(at + keep)}
