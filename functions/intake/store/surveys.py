"""Satisfaction surveys' items (the contract is `intake.satisfaction`'s): claims, answers, the teams' days."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from intake.model import EventKind, Ticket, TicketReference
from intake.records import CsatAnswer, ScoreReceived
from intake.resources import TABLE
from intake.store import keys
from intake.store.errors import WriteConflictError
from intake.store.items import epoch, event_item, expression_values, item_key, to_item
from intake.store.keys import iso
from intake.store.table import Table


class SurveysStore(Table):
    # Surveys after resolution (intake.satisfaction): `SURVEY#<contact_id>`/`SURVEY` asks a contact at most once
    # per period (expires_at = the period's end); `CSAT#<ticket id>`/`CSAT` is the ticket's answer (first score wins,
    # latest comment); `SURVEYDAY#<team>#<local date>` and `CSATDAY#<team>#<local date>` (SK `<iso>#<ticket id>`)
    # are what digests read: surveys sent, scores received.

    def claim_survey(self, contact_id: str, ticket_id: str, at: datetime, until: datetime) -> bool:
        """Reserve the contact's one survey until `until`; True when free (none, expired, or this ticket's own)."""
        item = {
            "PK": keys.survey_pk(contact_id),
            "SK": keys.SURVEY_SK,
            "ticket_id": ticket_id,
            "claimed_at": iso(at),
            TABLE.ttl_attribute: epoch(until),
        }
        return self._conditional(
            self._db.put_item,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(PK) OR #ttl <= :now OR ticket_id = :ticket",
            ExpressionAttributeNames={"#ttl": TABLE.ttl_attribute},
            ExpressionAttributeValues=expression_values(now=epoch(at), ticket=ticket_id),
        )

    def release_survey(self, contact_id: str, ticket_id: str) -> None:
        """Give the contact's survey back (scheduling it failed); only this ticket's claim is removed."""
        self._conditional(
            self._db.delete_item,
            Key=item_key(keys.survey_pk(contact_id), keys.SURVEY_SK),
            ConditionExpression="ticket_id = :ticket",
            ExpressionAttributeValues=expression_values(ticket=ticket_id),
        )

    def record_survey_sent(self, ticket: Ticket, day: date, at: datetime, detail: dict[str, Any]) -> None:
        """A survey went out: the team's day item (digests count them) and the `survey_sent` event, together."""
        sent = {
            "PK": keys.survey_day_pk(ticket.team, day),
            "SK": keys.day_sk(at, ticket.id),
            "ticket_id": ticket.id,
            "channel": ticket.channel,
            **{k: v for k, v in detail.items() if k not in ("PK", "SK", "ticket_id", "channel")},
        }
        self._transact(
            [
                ("survey", {"Put": self._put(sent)}),
                ("event", {"Put": self._put(event_item(ticket.id, EventKind.SURVEY_SENT, at, detail))}),
            ]
        )

    def csat(self, ticket_id: str) -> CsatAnswer | None:
        item = self._get(keys.csat_pk(ticket_id), keys.CSAT_SK)
        return None if item is None else self._csat_answer(item)

    def record_csat(self, ticket: TicketReference, score: int, day: date, at: datetime) -> tuple[CsatAnswer, bool]:
        """The ticket's first answer, with its day item; (answer, True). If the ticket has one already, nothing is
        written: (that answer, False). Both are items of their own, outside the ticket's (`ticket_detail` shows the
        answer as the `survey_answered` event), so that the public receiver writes no ticket item."""
        day_pk, day_sk = keys.csat_day_pk(ticket.team, day), keys.day_sk(at, ticket.id)
        answer = {
            "PK": keys.csat_pk(ticket.id),
            "SK": keys.CSAT_SK,
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
        answer = self._get(keys.csat_pk(ticket_id), keys.CSAT_SK)
        if answer is None:
            return None
        update = "SET #comment = :comment, commented_at = :at"
        values = expression_values(comment=comment, at=iso(at))
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
                ("answer", item_key(keys.csat_pk(ticket_id), keys.CSAT_SK)),
                ("day", item_key(str(answer["day_pk"]), str(answer["day_sk"]))),
            )
        ]
        self._transact(operations)
        return self._csat_answer({**answer, "comment": comment})

    @staticmethod
    def _csat_answer(item: dict[str, Any]) -> CsatAnswer:
        return CsatAnswer(
            ticket_id=str(item["ticket_id"]),
            team=str(item["team"]),
            score=int(item["score"]),
            answered_at=datetime.fromisoformat(str(item["answered_at"])),
            comment=item.get("comment") or None,
        )

    def surveys_sent(self, team: str, day: date) -> int:
        """Satisfaction surveys sent on the team's local date `day` (none recorded: 0)."""
        return self._count(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=expression_values(pk=keys.survey_day_pk(team, day)),
        )

    def scores_received(self, team: str, day: date) -> list[ScoreReceived]:
        """Satisfaction scores answered on the team's local date `day`, in the order they came (none: [])."""
        items = self._query(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=expression_values(pk=keys.csat_day_pk(team, day)),
        )
        return [
            ScoreReceived(
                ticket_id=str(item["ticket_id"]),
                score=int(item["score"]),
                answered_at=keys.day_sk_instant(str(item["SK"])),
                comment=item.get("comment") or None,
            )
            for item in items
        ]
