"""Replies: the sender function sends agents' replies on the customer's channel, and nothing else.

The api function records each reply on its ticket and queues it on the "sender" FIFO queue (grouped by ticket,
partial batch failures, then its DLQ; alarms as every queue's); the sender consumes it and calls the provider:
SES `SendRawEmail` as the teams' addresses (and the notifications sender, a team without one), each channel's API
with that channel's credentials (`Channel.api_secrets`: Twilio's account SID and an API key, never the webhook auth
token; the WhatsApp Cloud API's access token). It links a reply's files for Twilio and Meta to fetch (S3 presigned
GETs on attachments/), stops the first- and next-response clocks once a reply is sent (the SLA timer's executions), and
its table access is `SENDER_ITEMS`, item by item.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from constructs import Construct

from infra.constructs.functions import Functions, FunctionSpec, setting
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.raw_archive import RawArchive
from infra.constructs.secrets import ProviderSecrets
from infra.constructs.sla_timers import SlaTimers
from infra.constructs.ticket_store import ItemGrant, TicketStore
from infra.ses_sending import grant_send_raw_email
from intake.resources import SENDER_QUEUE
from intake.store import keys

# SQS wants the queue's visibility timeout to be at least six times the consumer's timeout.
SENDER = FunctionSpec(
    "Sender",
    "intake.handlers.sender.handler",
    "Sends agents' replies on the customer's channel (SES, Twilio, WhatsApp Cloud API) and records their state",
    Duration.seconds(SENDER_QUEUE.visibility_timeout_s // 6),
)
# What the sender reads and writes in the table, and nothing else (no index, no identity, thread or contact written):
SENDER_ITEMS = (
    # the reply and its ticket (the thread it quotes, the clocks `responded` stops), the contact's name, the survey
    # answer shown in the history, and whether an address is suppressed
    ItemGrant(("dynamodb:Query",), (f"{keys.TICKET}*",)),
    ItemGrant(("dynamodb:GetItem",), (f"{keys.TICKET}*", f"{keys.CONTACT}*", f"{keys.CSAT}*", f"{keys.SUPPRESSED}*")),
    # a status report the provider sent before the send was recorded (`OUT#...`/`HELD`), applied once it is
    ItemGrant(("dynamodb:GetItem",), (f"{keys.ROUTE}*",)),
    # the reply's state; the ticket's response, events and clocks (the `responded` action)
    ItemGrant(("dynamodb:PutItem", "dynamodb:UpdateItem"), (f"{keys.TICKET}*",)),
    # the team's backlog counters, moved with the ticket's place in the queue when a reply meets a clock
    ItemGrant(("dynamodb:UpdateItem",), (f"{keys.BACKLOG}*",)),
    # where its provider's status reports find it, and (email) its Message-IDs, so the customer's answer threads
    ItemGrant(("dynamodb:PutItem",), (f"{keys.ROUTE}*", f"{keys.MESSAGE_ID}*")),
    # its own failed messages (`intake failures`)
    ItemGrant(("dynamodb:UpdateItem",), (keys.failure_pk(SENDER_QUEUE.name),)),
)


class Replies(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        store: TicketStore,
        archive: RawArchive,
        queues: InboundQueues,
        secrets: ProviderSecrets,
        timers: SlaTimers,
        senders: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.sender = functions.add_function(
            SENDER,
            {setting("table_name"): store.table.table_name, setting("bucket_name"): archive.bucket.bucket_name},
        )
        store.grant(self.sender, SENDER_ITEMS)
        queues.consume(SENDER_QUEUE, self.sender)
        queues.grant_send(functions.api, SENDER_QUEUE)  # the api queues each reply (its URL it has: /failures)
        grant_send_raw_email(self, self.sender, senders)
        secrets.grant_channel_apis(self.sender, "sender")
        archive.grant_read_attachments(self.sender)  # presigned links are signed with the sender's own rights
        timers.grant_control(self.sender)  # a sent reply is the response: its clocks' executions stop
        self.sender.add_environment(setting("state_machine_arn"), timers.state_machine.state_machine_arn)
