"""Notifications: the notifier function turns the queued SLA warnings, breaches and escalations, and the
satisfaction surveys the deliver-later machine queues when they are due, into emails.

It consumes the "notifications" queue (partial batch failures, then its DLQ), reads the ticket and timer items
for what the email says, claims each notice and each survey once in the table, and sends with SES `SendRawEmail`
as the policy file's `notifications.sender` and, for surveys, as the addresses of the teams that ask them
(`infra.ses_sending`, as the functions that acknowledge new email tickets). A survey for a contact without email
becomes a `SurveyRequested` event on Intake's bus; survey links are signed with the provider secrets' CSAT_SECRET,
which the notifier reads only when a team asks for surveys.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from constructs import Construct

from infra.constructs.functions import Functions, FunctionSpec, setting
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.intake_events import IntakeEvents
from infra.constructs.secrets import ProviderSecrets
from infra.constructs.ticket_store import TicketStore
from infra.ses_sending import grant_send_raw_email
from intake.notify.notifier import CLAIM_SCOPE
from intake.resources import NOTIFICATIONS_QUEUE
from intake.satisfaction import CLAIM_SCOPE as SURVEY_CLAIM_SCOPE

# SQS wants the queue's visibility timeout to be at least six times the consumer's timeout.
NOTIFIER = FunctionSpec(
    "Notifier",
    "intake.handlers.notifier.handler",
    "Sends the SLA warnings, breaches and escalations and the satisfaction surveys queued for it, with SES",
    Duration.seconds(NOTIFICATIONS_QUEUE.visibility_timeout_s // 6),
)
# The notifier's one-send claims (`TOKEN#<scope>#<id>`): SLA notices, and each ticket's survey.
CLAIM_SCOPES = (CLAIM_SCOPE, SURVEY_CLAIM_SCOPE)


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
        surveys: bool = False,
        survey_senders: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.notifier = functions.add_function(
            NOTIFIER,
            {setting("table_name"): store.table.table_name, setting("event_bus_name"): events.bus.event_bus_name},
        )
        # reads the ticket; claims each notice once (a conditional put), flags breaches, records the event
        store.grant_read_write(self.notifier)
        # a notice or survey whose email failed gives its claim back (so the queue's retry sends it): DeleteItem,
        # and only on the notifier's own claim items
        store.grant_items(self.notifier, ["dynamodb:DeleteItem"], [f"TOKEN#{claim}#*" for claim in CLAIM_SCOPES])
        queues.consume(NOTIFICATIONS_QUEUE, self.notifier)
        grant_send_raw_email(self, self.notifier, [sender, *survey_senders])
        events.grant_put(self.notifier)  # SurveyRequested
        if surveys:  # some team asks for surveys: their links are signed with CSAT_SECRET
            secrets.grant_read(self.notifier)
            self.notifier.add_environment(setting("secrets_arn"), secrets.secret.secret_arn)
