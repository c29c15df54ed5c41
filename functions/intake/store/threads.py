"""What threads an email to its ticket: its Message-IDs (`MSGID#`) and the references in subjects (`REF#`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from intake.model import EventKind
from intake.records import ThreadLinks
from intake.store import keys
from intake.store.items import event_item, to_item
from intake.store.table import Table


class ThreadsStore(Table):
    def thread_links(self, message_ids: Sequence[str], references: Sequence[str]) -> ThreadLinks:
        """Which tickets the Message-IDs an email answers, and the `[#<reference>]` tokens in its subject, are
        recorded against (every Message-ID we receive or send is), in one read."""
        by_id = {message_id: (keys.message_id_pk(message_id), keys.MESSAGE_ID_SK) for message_id in message_ids}
        by_reference = {
            reference: (keys.reference_pk(reference.upper()), keys.REFERENCE_SK) for reference in references
        }
        found = self._batch_get([*by_id.values(), *by_reference.values()])
        return ThreadLinks(
            {message_id: str(found[key]["ticket_id"]) for message_id, key in by_id.items() if key in found},
            {reference: str(found[key]["ticket_id"]) for reference, key in by_reference.items() if key in found},
        )

    def record_message_ids(self, message_ids: Sequence[str], ticket_id: str) -> None:
        """Map Message-IDs to a ticket; the first mapping of an id wins (a later claim changes nothing)."""
        for message_id in message_ids:
            self._conditional(
                self._db.put_item,
                Item=to_item({"PK": keys.message_id_pk(message_id), "SK": keys.MESSAGE_ID_SK, "ticket_id": ticket_id}),
                ConditionExpression="attribute_not_exists(PK)",
            )

    def _message_id_operations(self, ticket_id: str, message_ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """Record email Message-IDs against a ticket in its write; one recorded meanwhile fails the write (read again:
        the first mapping of an id wins)."""
        return [
            (
                "message-id",
                {
                    "Put": self._put(
                        {"PK": keys.message_id_pk(message_id), "SK": keys.MESSAGE_ID_SK, "ticket_id": ticket_id},
                        "attribute_not_exists(PK)",
                    )
                },
            )
            for message_id in dict.fromkeys(message_ids)
        ]

    def record_sent_mail(
        self, ticket_id: str, message_ids: Sequence[str], kind: EventKind, at: datetime, detail: dict[str, Any]
    ) -> None:
        """Mail we just sent on a ticket: its Message-IDs (new, ours) recorded against it, so that a reply threads
        there, and its event, in one write."""
        mapped = [
            {"PK": keys.message_id_pk(message_id), "SK": keys.MESSAGE_ID_SK, "ticket_id": ticket_id}
            for message_id in message_ids
        ]
        self._transact(
            [
                *(("message-id", {"Put": self._put(item)}) for item in mapped),
                ("event", {"Put": self._put(event_item(ticket_id, kind, at, detail))}),
            ]
        )
