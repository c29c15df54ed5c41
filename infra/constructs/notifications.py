"""Notifications: the notifier function turns the SLA timer's queued warnings, breaches and escalations into emails.

It consumes the "notifications" queue (partial batch failures, then its DLQ), reads the ticket and timer items
for what the email says, claims each notice once in the table, and sends with SES `SendRawEmail` as the policy
file's `notifications.sender` only (`infra.ses_sending`, as the functions that acknowledge new email tickets).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.functions import Functions, FunctionSpec, setting
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.ticket_store import TicketStore
from infra.ses_sending import grant_send_raw_email
from intake.notify.notifier import CLAIM_SCOPE
from intake.resources import NOTIFICATIONS_QUEUE

# SQS wants the queue's visibility timeout to be at least six times the consumer's timeout.
NOTIFIER = FunctionSpec(
    "Notifier",
    "intake.handlers.notifier.handler",
    "Sends the SLA warnings, breaches and escalations the SLA timer queues, as email with SES",
    Duration.seconds(NOTIFICATIONS_QUEUE.visibility_timeout_s // 6),
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
        sender: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.notifier = functions.add_function(NOTIFIER, {setting("table_name"): store.table.table_name})
        # reads the ticket; claims each notice once (a conditional put), flags breaches, records the event
        store.grant_read_write(self.notifier)
        self._grant_release_claims(self.notifier, store)
        queues.consume(NOTIFICATIONS_QUEUE, self.notifier)
        grant_send_raw_email(self, self.notifier, [sender])

    @staticmethod
    def _grant_release_claims(function: lambda_.IFunction, store: TicketStore) -> None:
        """A notice whose email failed gives its claim back (so the queue's retry sends it): DeleteItem, and only
        on the notifier's own claim items."""
        iam.Grant.add_to_principal(
            grantee=function,
            actions=["dynamodb:DeleteItem"],
            resource_arns=[store.table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"TOKEN#{CLAIM_SCOPE}#*"]}},
        )
