"""What a team's digest reads of its tickets: those of a local day, and whether each was warned.

What a team's digest reads (intake.digest): the `by_day` index one local day at a time (each ticket says whether it
was `warned`, here), the team's backlog counters, the head of its `open_by_wait` queue and today's part of
`open_by_due` (`backlog`), and the satisfaction items of the survey contract (`SURVEYDAY#<team>#<local date>` per
survey sent, `CSATDAY#<team>#<local date>` per score received: `surveys`). A few queries per local day and three for
the backlog: what is read grows with the window's tickets, not with the table nor with the open backlog.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from intake.model import EventKind, Ticket
from intake.store import keys
from intake.store.items import expression_values, index_named, ticket_of
from intake.store.table import Table


class DigestsStore(Table):
    def day_tickets(self, team: str, day: date) -> list[Ticket]:
        """Tickets created on the team's local date `day`, oldest first (the `by_day` index)."""
        index = index_named("by_day")
        items = self._query(
            IndexName=index.name,
            KeyConditionExpression=f"{index.partition_key} = :day",
            ExpressionAttributeValues=expression_values(day=keys.team_day(team, day)),
        )
        return [self._day_ticket(item) for item in items]

    def _day_ticket(self, item: dict[str, Any]) -> Ticket:
        ticket = ticket_of(item)
        if "warned" not in item and not ticket.breached:
            # written before tickets carried the flag (each one has it since): its history says
            ticket = ticket.model_copy(update={"warned": self.was_warned(ticket.id)})
        return ticket

    def was_warned(self, ticket_id: str) -> bool:
        """Whether an SLA warning was sent for the ticket (a `warned` event in its history; the ticket's `warned`
        flag says the same, for tickets written since it exists)."""
        return (
            self._count(
                KeyConditionExpression="PK = :pk AND begins_with(SK, :evt)",
                FilterExpression="kind = :warned",
                ExpressionAttributeValues=expression_values(
                    pk=keys.ticket_pk(ticket_id), evt=keys.EVENT, warned=EventKind.WARNED.value
                ),
            )
            > 0
        )
