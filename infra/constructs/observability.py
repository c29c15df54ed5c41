"""Observability: alarms to one SNS topic (emails from the policy file) and one dashboard.

Alarms: a message in a dead-letter queue (the digests' included), a function error, a throttle, inbound
messages older than a stuck consumer would leave them, and a failed or timed-out SLA timer or deliver-later
execution (the machines build those). Failures that never reach Lambda's Errors metric page too, within a minute
or five: a queue message that failed in its batch (the consumers report it and retry it, so the function itself
succeeds), and answers 500 and over or slow answers on each route group of the API (the resolvers answer every
error with a problem). Each description says what to look at first. The dashboard shows the API and each route
group, business events, each function, the SLA timers and notifications, digests and satisfaction surveys, each
queue (notifications included) and every alarm.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.constructs.deliver_later import DeliverLater
from infra.constructs.digests import Digests
from infra.constructs.functions import METRICS_NAMESPACE, SERVICE_NAME
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.mail_feedback import MailFeedback
from infra.constructs.sla_timers import SlaTimers
from infra.constructs.webhook_api import ROUTE_GROUPS, WebhookApi
from infra.naming import pascal_case
from infra.stage import Stage
from intake.observability import RECORD_FAILED
from intake.resources import QUEUES

PERIOD = Duration.minutes(1)
# Business events the functions count (intake.observability.count), shown on the dashboard.
BUSINESS_METRICS = (
    "FormReceived",
    "SpamDropped",
    "SignatureRejected",
    "TicketCreated",
    "MessageAppended",
    "DuplicateDropped",
)
# What the notifier counts (intake.handlers.notifier): the SLA emails sent, and notices nobody could be sent.
SLA_NOTIFICATION_METRICS = ("SlaWarningSent", "SlaBreachSent", "SlaEscalationSent", "NotificationUnaddressed")
# Digests sent (intake.handlers.digest), surveys sent by email or requested on the bus (the notifier), and the
# answers and comments customers gave (the receiver's /csat routes).
DIGEST_METRICS = ("DigestSent",)
SURVEY_METRICS = ("SurveySent", "SurveyRequested", "SurveyAnswered", "SurveyCommented")
# SES's bounces and complaints (intake.handlers.feedback), and the surveys left unsent to suppressed addresses.
MAIL_FEEDBACK_METRICS = (
    "MailBounced",
    "MailBouncedTransiently",
    "MailComplained",
    "AddressSuppressed",
    "SurveySuppressed",
)


def oldest_message_threshold_s(visibility_timeout_s: int, max_receive_count: int) -> int:
    """A message that keeps failing reaches the DLQ after max_receive x visibility; twice that is a stuck consumer."""
    return 2 * visibility_timeout_s * max_receive_count


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        functions: Sequence[lambda_.Function],
        queues: InboundQueues,
        api: WebhookApi,
        timers: SlaTimers,
        later: DeliverLater,
        digests: Digests,
        feedback: MailFeedback,
        alert_emails: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        self.topic = self._build_topic(alert_emails)
        self.alarms: list[cloudwatch.Alarm] = []
        self._build_queue_alarms(queues)
        self._build_function_alarms(functions)
        self._build_api_alarms(api)
        self.alarms += timers.add_alarms(self.topic)
        self.alarms += later.add_alarms(self.topic)
        self.alarms += digests.add_alarms(self.topic)
        self.alarms += feedback.add_alarms(self.topic)
        self.dashboard = self._build_dashboard(functions, queues, api, timers)
        self.dashboard.add_widgets(*self._digest_widgets(later, digests))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Mail feedback: bounces, complaints, suppressed addresses and what was not sent to them",
                left=[_business_metric(name) for name in MAIL_FEEDBACK_METRICS],
                width=24,
            )
        )
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24))

    def _build_topic(self, emails: Sequence[str]) -> sns.Topic:
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Intake {self._stage.name}: alarm notifications",
            enable_key_rotation=True,
            removal_policy=self._stage.removal_policy,
            pending_window=self._stage.key_pending_window,
        )
        # CloudWatch publishes the alarms: it needs the topic's key (an AWS managed key would not do).
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        topic = sns.Topic(
            self, "AlarmTopic", display_name=f"Intake {self._stage.name} alarms", master_key=key, enforce_ssl=True
        )
        for email in emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        *,
        periods: int = 1,
        breaching: int | None = None,
    ) -> None:
        """An alarm when `metric` is over `threshold` in `breaching` of the last `periods` periods."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=breaching,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)

    def _build_queue_alarms(self, queues: InboundQueues) -> None:
        for spec in QUEUES:
            name = pascal_case(spec.name)
            self._alarm(
                f"{name}DeadLetters",
                queues.dead_letters[spec.name].metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                0,
                f"Messages in the {spec.name} dead-letter queue: customers' messages that failed "
                f"{spec.max_receive_count} times. Read the consumer's logs for the error, fix it, then redrive.",
            )
            self._alarm(
                f"{name}OldestMessageAge",
                queues.queues[spec.name].metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                oldest_message_threshold_s(spec.visibility_timeout_s, spec.max_receive_count),
                f"The oldest message in {spec.name} waits longer than a failing one would before its DLQ: "
                "the consumer is stuck, throttled or disabled.",
            )
            self._alarm(
                f"{name}RecordsFailed",
                _record_failed_metric(spec.name),
                0,
                f"A message of the {spec.name} queue failed in its batch: it stays on the queue and is retried "
                f"(after {spec.visibility_timeout_s} s; its DLQ after {spec.max_receive_count} tries). The "
                "function itself succeeded, so its Errors alarm is silent. `intake failures list` (or GET "
                "/failures) shows each failed message's error; the consumer's log has its traceback.",
            )

        self._alarm(
            "RepliesFailed",
            _business_metric("ReplyFailed"),
            0,
            "An agent's reply was not sent, for good: the provider refused it (a bad number, an unsubscribed "
            "customer, a wrong credential) or kept failing for all its tries. The ticket shows the reply as failed "
            "with the provider's error; the customer has not been answered.",
        )

    def _build_function_alarms(self, functions: Sequence[lambda_.Function]) -> None:
        for function in functions:
            name = function.node.id
            self._alarm(
                f"{name}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                0,
                f"The {name.lower()} function failed (an uncaught error or a timeout): read its log group.",
            )
            self._alarm(
                f"{name}Throttles",
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                0,
                f"The {name.lower()} function was throttled: the account's concurrency is exhausted.",
            )

    def _build_api_alarms(self, api: WebhookApi) -> None:
        """Per route group: any answer 500 or over (a minute), and a p90 answer time over the group's bound (two of
        the last three 5-minute periods)."""
        for group in ROUTE_GROUPS:
            self._alarm(
                f"{group.name}ServerErrors",
                api.server_errors[group.name],
                0,
                f"The API answered 500 or over on a {group.name} route: a function failed, timed out or was "
                "throttled, or the table was unavailable. The API access log (routeKey, status, integrationError) "
                "says which route; that function's log, the error.",
            )
            self._alarm(
                f"{group.name}Latency",
                api.latency[group.name],
                group.latency_ms,
                f"{group.name} routes answer slowly: p90 over {group.latency_ms} ms. See the route's "
                "integrationLatency in the API access log and the function's duration on the dashboard.",
                periods=3,
                breaching=2,
            )

    def _build_dashboard(
        self, functions: Sequence[lambda_.Function], queues: InboundQueues, api: WebhookApi, timers: SlaTimers
    ) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        http = api.http_api
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="HTTP API requests",
                left=[
                    http.metric_count(period=PERIOD),
                    http.metric_client_error(period=PERIOD),
                    http.metric_server_error(period=PERIOD),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="HTTP API latency (p90)",
                left=[
                    http.metric_latency(period=PERIOD, statistic="p90"),
                    http.metric_integration_latency(period=PERIOD, statistic="p90"),
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API answers 500 and over, by route group",
                left=[api.server_errors[group.name] for group in ROUTE_GROUPS],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API latency (p90), by route group",
                left=[api.latency[group.name] for group in ROUTE_GROUPS],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Business events",
                left=[_business_metric(name) for name in BUSINESS_METRICS],
                width=24,
            )
        )
        dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=f"{function.node.id} function",
                    left=[
                        function.metric_invocations(period=PERIOD),
                        function.metric_errors(period=PERIOD),
                        function.metric_throttles(period=PERIOD),
                    ],
                    right=[function.metric_duration(period=PERIOD, statistic="p90")],
                    width=8,
                )
                for function in functions
            )
        )
        dashboard.add_widgets(*self._sla_widgets(timers))
        for spec in QUEUES:  # the notifications queue (SLA timer → notifier) among them
            dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title=f"{spec.name} queue",
                    left=[
                        queues.queues[spec.name].metric_approximate_number_of_messages_visible(period=PERIOD),
                        _record_failed_metric(spec.name),
                    ],
                    right=[queues.queues[spec.name].metric_approximate_age_of_oldest_message(period=PERIOD)],
                    width=12,
                ),
                cloudwatch.SingleValueWidget(
                    title=f"{spec.name} dead letters",
                    metrics=[
                        queues.dead_letters[spec.name].metric_approximate_number_of_messages_visible(period=PERIOD)
                    ],
                    width=12,
                ),
            )
        return dashboard

    @staticmethod
    def _digest_widgets(later: DeliverLater, digests: Digests) -> list[cloudwatch.IWidget]:
        """Digests sent and the surveys' life (sent, requested, answered, commented); surveys waiting in the
        deliver-later machine beside those that went wrong; digests that could not be published."""
        machine = later.state_machine
        return [
            cloudwatch.GraphWidget(
                title="Digests and satisfaction surveys",
                left=[_business_metric(name) for name in (*DIGEST_METRICS, *SURVEY_METRICS)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Deliver-later executions",
                left=[
                    machine.metric_started(period=PERIOD, statistic="Sum"),
                    machine.metric_succeeded(period=PERIOD, statistic="Sum"),
                ],
                right=[
                    machine.metric_failed(period=PERIOD, statistic="Sum"),
                    machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                ],
                width=8,
            ),
            cloudwatch.SingleValueWidget(
                title="Digest dead letters",
                metrics=[digests.dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD)],
                width=4,
            ),
        ]

    @staticmethod
    def _sla_widgets(timers: SlaTimers) -> list[cloudwatch.IWidget]:
        """Timers started, stopped by a response (aborted) and ended (succeeded), beside those that went wrong
        (failed, timed out: a breach nobody hears about); then the SLA emails the notifier sent."""
        machine = timers.state_machine
        return [
            cloudwatch.GraphWidget(
                title="SLA timer executions",
                left=[
                    machine.metric_started(period=PERIOD, statistic="Sum"),
                    machine.metric_aborted(period=PERIOD, statistic="Sum"),
                    machine.metric_succeeded(period=PERIOD, statistic="Sum"),
                ],
                right=[
                    machine.metric_failed(period=PERIOD, statistic="Sum"),
                    machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="SLA notifications",
                left=[_business_metric(name) for name in SLA_NOTIFICATION_METRICS],
                width=12,
            ),
        ]


def _record_failed_metric(queue: str) -> cloudwatch.Metric:
    """The consumers' count of messages that failed in their batch (`intake.observability.count_failed_record`)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=RECORD_FAILED,
        dimensions_map={"service": SERVICE_NAME, "queue": queue},
        statistic="Sum",
        period=PERIOD,
    )


def _business_metric(name: str) -> cloudwatch.Metric:
    """A count the functions emit (`intake.observability.count`), summed per period."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic="Sum",
        period=PERIOD,
    )
