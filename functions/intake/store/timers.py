"""SLA clocks: one item per ticket and target (`SLA#<target>`), one generation after another."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from intake.model import EventKind, SlaTimer
from intake.store import keys
from intake.store.errors import mapped
from intake.store.items import event_item, expression_values, item_key, timer_attributes, timer_of
from intake.store.keys import iso
from intake.store.table import Table


class TimersStore(Table):
    def timers(self, ticket_id: str) -> list[SlaTimer]:
        items = self._query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :sla)",
            ExpressionAttributeValues=expression_values(pk=keys.ticket_pk(ticket_id), sla=keys.TIMER),
            ConsistentRead=True,
        )
        return [timer_of(item) for item in items]

    def put_timer(self, ticket_id: str, timer: SlaTimer, replaces: int | None) -> None:
        """Start a target's clock: the first generation, or the one after `replaces` (else WriteConflictError)."""
        item = {"PK": keys.ticket_pk(ticket_id), "SK": keys.timer_sk(timer.target.value), **timer_attributes(timer)}
        if replaces is None:
            put = self._put(item, "attribute_not_exists(PK)")
        else:
            put = self._put(item, "generation = :replaces", expression_values(replaces=replaces))
        try:
            self._db.put_item(**put)
        except ClientError as error:
            raise mapped(error) from None

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
            Key=item_key(keys.ticket_pk(ticket_id), keys.timer_sk(timer.target.value)),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="generation = :g AND #state = :was",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=expression_values(**values),
        )

    def _timer_operations(self, ticket_id: str, timers: Sequence[SlaTimer]) -> list[tuple[str, dict[str, Any]]]:
        """Start clocks in a ticket's write: each timer item (a first generation, or the one after the generation
        it replaces, else the write fails) with its `timer_started` event."""
        operations: list[tuple[str, dict[str, Any]]] = []
        for timer in timers:
            clock = {
                "PK": keys.ticket_pk(ticket_id),
                "SK": keys.timer_sk(timer.target.value),
                **timer_attributes(timer),
            }
            if timer.generation == 1:
                put = self._put(clock, "attribute_not_exists(PK)")
            else:
                put = self._put(clock, "generation = :replaces", expression_values(replaces=timer.generation - 1))
            started = {"target": timer.target.value, "generation": timer.generation, "due_at": iso(timer.due_at)}
            event = event_item(ticket_id, EventKind.TIMER_STARTED, timer.started_at, started)
            operations += [("timer", {"Put": put}), ("event", {"Put": self._put(event)})]
        return operations
