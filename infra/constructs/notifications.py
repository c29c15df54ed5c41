"""Notifications: the notifier function turns the queued SLA warnings, breaches and escalations, and the
satisfaction surveys the deliver-later machine queues when they are due, into emails.

It consumes the "notifications" queue (partial batch failures, then its DLQ), reads the ticket, its contact and
timer items for what the email says, claims each notice and each survey once in the table, and sends with SES
`SendRawEmail` as the policy file's `notifications.sender` and, for surveys, as the addresses of the teams that ask
them (`infra.ses_sending`, as the functions that acknowledge new email tickets). A survey for a contact without
email becomes a `SurveyRequested` event on Intake's bus; survey links are signed with CSAT_SECRET, a secret of its
own (ProviderSecrets' SurveyLinks): no other provider secret. Its table access is `NOTIFIER_ITEMS`, item by item.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from constructs import Construct

from infra.constructs.functions import Functions, FunctionSpec, setting
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.intake_events import IntakeEvents
from infra.constructs.secrets import ProviderSecrets
from infra.constructs.ticket_store import ItemGrant, TicketStore
from infra.ses_sending import grant_send_raw_email
from intake.notify.notifier import CLAIM_SCOPE
from intake.resources import NOTIFICATIONS_QUEUE
from intake.satisfaction import CLAIM_SCOPE as SURVEY_CLAIM_SCOPE
from intake.store import keys

# SQS wants the queue's visibility timeout to be at least six times the consumer's timeout.
NOTIFIER = FunctionSpec(
    "Notifier",
    "intake.handlers.notifier.handler",
    "Sends the SLA warnings, breaches and escalations and the satisfaction surveys queued for it, with SES",
    Duration.seconds(NOTIFICATIONS_QUEUE.visibility_timeout_s // 6),
)
# The notifier's one-send claims (`TOKEN#<scope>#<id>`): SLA notices, and each ticket's survey.
CLAIM_SCOPES = (CLAIM_SCOPE, SURVEY_CLAIM_SCOPE)
_CLAIMS = tuple(keys.token_pk(scope, "*") for scope in CLAIM_SCOPES)
# What the notifier reads and writes in the table, and nothing else (no index, no other item):
NOTIFIER_ITEMS = (
    # what it sends with: the ticket's items (its messages: the last is quoted; its clocks and history; the ticket
    # itself again where it flags a breach), its contact (the survey's address), the survey answer shown in its
    # history, and whether an address is suppressed
    ItemGrant(("dynamodb:Query",), (f"{keys.TICKET}*",)),
    ItemGrant(("dynamodb:GetItem",), (f"{keys.TICKET}*", f"{keys.CONTACT}*", f"{keys.CSAT}*", f"{keys.SUPPRESSED}*")),
    # what it records: each notice and survey claimed once (and given back when sending failed), the ticket's events
    # and its warned and breach flags, the team's breached count with the latter (`BACKLOG#<team>`), the survey's
    # Message-IDs (a reply threads to the ticket), the team's day of surveys sent, and its own failed messages
    # (`intake failures`)
    ItemGrant(("dynamodb:PutItem", "dynamodb:DeleteItem"), _CLAIMS),
    ItemGrant(("dynamodb:PutItem",), (f"{keys.MESSAGE_ID}*", f"{keys.SURVEY_DAY}*")),
    ItemGrant(("dynamodb:PutItem", "dynamodb:UpdateItem"), (f"{keys.TICKET}*",)),
    ItemGrant(("dynamodb:UpdateItem",), (f"{keys.BACKLOG}*",)),
    ItemGrant(("dynamodb:UpdateItem",), (keys.failure_pk(NOTIFICATIONS_QUEUE.name),)),
)


class Notifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        store: TicketStore,
        queues: InboundQueues,
        events: IntakeEvents,
        secrets: ProviderSecrets,
        sender: str,
        survey_senders: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.notifier = functions.add_function(
            NOTIFIER,
            {setting("table_name"): store.table.table_name, setting("event_bus_name"): events.bus.event_bus_name},
        )
        store.grant(self.notifier, NOTIFIER_ITEMS)
        queues.consume(NOTIFICATIONS_QUEUE, self.notifier)
        grant_send_raw_email(self, self.notifier, [sender, *survey_senders])
        events.grant_put(self.notifier)  # SurveyRequested
        secrets.grant_survey_links(self.notifier)  # links are signed with CSAT_SECRET, when a team asks for surveys
