"""MailFeedback: what SES reports back about the mail Intake sends, and the addresses that must not get any more.

Every function that sends email sends it with this stack's SES configuration set (`send_with`: the setting and the
`ses:SendRawEmail` grant on it). The configuration set publishes bounces and complaints to the account's default
EventBridge bus (SES's EventBridge destination supports no other), and deliveries; a rule, matching this
configuration set's events only (dev and prod share the bus in one account), invokes the feedback function, which
records each address that bounced for good or complained as suppressed (`SUPPRESSED#<address>`), and moves an agent's
email reply that bounced to `failed`, one that arrived to `delivered` (its message on the ticket, found through its
`OUT#email#<Message-ID>` item). The mailer never sends to a suppressed address again
(`intake.notify.mailer.SuppressingMailer`).

Alarms: SES's own account reputation (bounce rate over 5 %, complaint rate over 0.1 %: where SES puts an account
under review), invocations EventBridge could not deliver, and feedback the function failed on after Lambda's
retries (its dead-letter queue).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.functions import Functions, FunctionSpec, setting
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.ticket_store import ItemGrant, TicketStore
from infra.destinations import QueueOnFailure, dead_letter_queue
from infra.stage import Stage
from intake.store import keys

FEEDBACK = FunctionSpec(
    "Feedback",
    "intake.handlers.feedback.handler",
    "Suppresses the addresses SES reported a hard bounce or a complaint for; an email reply's bounce or delivery",
    Duration.seconds(30),
)
FEEDBACK_ITEMS = (
    # a suppressed address
    ItemGrant(("dynamodb:PutItem",), (f"{keys.SUPPRESSED}*",)),
    # the agent's email reply a bounce or a delivery is about (`OUT#email#<Message-ID>`), and its state on the ticket
    ItemGrant(("dynamodb:GetItem",), (f"{keys.ROUTE}email#*",)),
    ItemGrant(("dynamodb:UpdateItem",), (f"{keys.TICKET}*",)),
)
# What the rule passes on (SES's EventBridge detail types), and SES's own review thresholds for the account.
DETAIL_TYPES = ("Email Bounced", "Email Complaint Received", "Email Delivered")
BOUNCE_RATE_LIMIT = 0.05
COMPLAINT_RATE_LIMIT = 0.001
ASYNC_RETRIES = 2
PERIOD = Duration.minutes(15)


class MailFeedback(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        functions: Functions,
        store: TicketStore,
        queues: InboundQueues,
    ) -> None:
        super().__init__(scope, construct_id)
        self.configuration_set = ses.ConfigurationSet(self, "ConfigurationSet", reputation_metrics=True)
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        self.configuration_set.add_event_destination(
            "ToEventBridge",
            destination=ses.EventDestination.event_bus(default_bus),
            events=[ses.EmailSendingEvent.BOUNCE, ses.EmailSendingEvent.COMPLAINT, ses.EmailSendingEvent.DELIVERY],
        )
        self.function = functions.add_function(FEEDBACK, {setting("table_name"): store.table.table_name})
        store.grant(self.function, FEEDBACK_ITEMS)
        self.dead_letters = dead_letter_queue(
            self, queues.key, stage.removal_policy, "the feedback function's on-failure destination sends to it"
        )
        self.function.configure_async_invoke(
            retry_attempts=ASYNC_RETRIES, on_failure=QueueOnFailure(self.dead_letters, queues.key)
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description="SES bounces, complaints and deliveries of this stack's configuration set, to the feedback"
            " function",
            event_pattern=events.EventPattern(
                source=["aws.ses"],
                detail_type=list(DETAIL_TYPES),
                detail={"mail": {"tags": {"ses:configuration-set": [self.configuration_set.configuration_set_name]}}},
            ),
            targets=[targets.LambdaFunction(self.function)],  # EventBridge retries delivery for 24 h
        )

    # ------------------------------------------------------------------ senders

    def send_with(self, senders: Iterable[lambda_.Function]) -> None:
        """Each function that sends email sends it with the configuration set: its name (INTAKE_SES_CONFIGURATION_SET),
        and `ses:SendRawEmail` on it (SES authorizes the configuration set a message names, beside its identity)."""
        name = self.configuration_set.configuration_set_name
        arn = Stack.of(self).format_arn(service="ses", resource="configuration-set", resource_name=name)
        for function in senders:
            function.add_environment(setting("ses_configuration_set"), name)
            iam.Grant.add_to_principal(grantee=function, actions=["ses:SendRawEmail"], resource_arns=[arn])

    # ------------------------------------------------------------------ alarms

    def add_alarms(self, topic: sns.ITopic) -> list[cloudwatch.Alarm]:
        rule_name = self.rule.rule_name
        checks = (
            (
                "BounceRate",
                _ses_metric("Reputation.BounceRate"),
                BOUNCE_RATE_LIMIT,
                "The account's SES bounce rate is over 5 %, where SES puts an account under review (10 %: sending "
                "paused). Addresses that bounced for good are suppressed as they come back; look for a form or a "
                "provider giving bad addresses (MailBounced on the dashboard).",
            ),
            (
                "ComplaintRate",
                _ses_metric("Reputation.ComplaintRate"),
                COMPLAINT_RATE_LIMIT,
                "The account's SES complaint rate is over 0.1 %, where SES puts an account under review (0.5 %: "
                "sending paused). Complaining addresses are suppressed; see which mail draws them (MailComplained).",
            ),
            (
                "FeedbackDeadLetters",
                self.dead_letters.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                0,
                "A bounce or complaint was not recorded after Lambda's retries: that address is not suppressed. Each "
                "message holds the invocation record (requestPayload: the SES event); read the feedback function's "
                "log, fix, then invoke it again with that payload.",
            ),
            (
                "FeedbackUndelivered",
                cloudwatch.Metric(
                    namespace="AWS/Events",
                    metric_name="FailedInvocations",
                    dimensions_map={"RuleName": rule_name},
                    statistic="Sum",
                    period=Duration.minutes(1),
                ),
                0,
                "EventBridge could not invoke the feedback function with an SES bounce or complaint (it retries for "
                "24 hours): check the function's permission and that it exists.",
            ),
        )
        alarms = []
        for construct_id, metric, threshold, description in checks:
            alarm = cloudwatch.Alarm(
                self,
                construct_id,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarm.add_ok_action(actions.SnsAction(topic))
            alarms.append(alarm)
        return alarms


def _ses_metric(name: str) -> cloudwatch.Metric:
    """An account-wide SES reputation metric (a rate, 0 to 1; SES publishes it when the account sends)."""
    return cloudwatch.Metric(namespace="AWS/SES", metric_name=name, statistic="Maximum", period=PERIOD)
