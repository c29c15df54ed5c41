"""Digests: each team's daily and/or weekly digest, at a local time in the team's timezone.

EventBridge Scheduler runs one schedule per team x period the policy file enables (`teams.<id>.digests`), in the
team's timezone (`ScheduleExpressionTimezone`), with no flexible window; it invokes the digest function with
`{"team": <id>, "period": "daily"|"weekly"}` through a role that may invoke that one function (and reach the
dead-letter queue). The function reads the window from the `by_day` index and the team's backlog from its counters
(`BACKLOG#<team>`, marked complete by the first digest that finds every queued ticket counted) and the
`open_by_wait` and `open_by_due` indexes, claims the window once (`TOKEN#digest#...`, released when sending
fails), archives the digest under `digests/`, announces it on Intake's bus (`DigestPublished`) and mails it with
SES as the policy's `notifications.sender`. The api's
`GET /digests/{team}/{period}` (an agent's preview) reads the same way and sends nothing; `POST` (publish now)
invokes the digest function asynchronously with the window it settled and answers 202 (`publish_on_demand`): the
publishing runs in the digest function's time, retries and dead-letter queue, not in the api's 10 seconds.

An invocation Scheduler could not deliver, or that failed after Lambda's own retries, lands in the dead-letter
queue, which alarms: no digest goes missing silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.functions import Functions, FunctionSpec, setting
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.intake_events import IntakeEvents
from infra.constructs.raw_archive import RawArchive
from infra.constructs.ticket_store import TicketStore
from infra.destinations import QueueOnFailure, dead_letter_queue
from infra.naming import pascal_case
from infra.ses_sending import grant_send_raw_email
from infra.stage import Stage
from intake.config import Policy
from intake.digest.publish import CLAIM_SCOPE
from intake.resources import DIGESTS_PREFIX
from intake.store import keys

DIGEST = FunctionSpec(
    "Digest",
    "intake.handlers.digest.handler",
    "Publishes a team's daily or weekly digest (EventBridge Scheduler): S3 archive, DigestPublished, SES email",
    Duration.minutes(2),
)
# What the digest reads: the window's tickets by local day, the head of the team's queue and today's deadlines in it
# (and items by key: the backlog counters).
READ_INDEXES = ("by_day", "open_by_due", "open_by_wait")
# Lambda's own retries of a failed invocation (the window is claimed once: a retry never sends twice), and how
# late a digest may still go out; Scheduler's retries of an invocation it could not deliver.
ASYNC_RETRIES = 2
MAX_LATENESS = Duration.hours(2)
DELIVERY_RETRIES = 5

Period = Literal["daily", "weekly"]


@dataclass(frozen=True)
class DigestSchedule:
    """One team x period: when it runs, in the team's timezone."""

    team: str
    period: Period
    expression: str  # cron(...) in the team's local time
    timezone: str

    @property
    def input(self) -> dict[str, str]:
        return {"team": self.team, "period": self.period}


def digest_schedules(policy: Policy) -> list[DigestSchedule]:
    """Each team's enabled digests: daily `cron(M H * * ? *)`, weekly `cron(M H ? * DAY *)`, local times."""
    found = []
    for team_id, team in sorted(policy.teams.items()):
        daily, weekly = team.digests.daily, team.digests.weekly
        if daily is not None:
            hour, minute = _clock(daily.at)
            found.append(DigestSchedule(team_id, "daily", f"cron({minute} {hour} * * ? *)", team.timezone))
        if weekly is not None:
            hour, minute = _clock(weekly.at)
            day = weekly.day.upper()
            found.append(DigestSchedule(team_id, "weekly", f"cron({minute} {hour} ? * {day} *)", team.timezone))
    return found


def _clock(at: str) -> tuple[int, int]:
    hour, _, minute = at.partition(":")
    return int(hour), int(minute)


class Digests(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        policy: Policy,
        functions: Functions,
        store: TicketStore,
        archive: RawArchive,
        queues: InboundQueues,
        events: IntakeEvents,
    ) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        self._sender = policy.notifications.sender
        self._store, self._archive, self._events = store, archive, events
        self.dead_letters = dead_letter_queue(
            self,
            queues.key,
            stage.removal_policy,
            "Scheduler's target dead-letter config and the digest function's on-failure destination send to it",
        )
        self.function = functions.add_function(
            DIGEST,
            {
                setting("table_name"): store.table.table_name,
                setting("bucket_name"): archive.bucket.bucket_name,
                setting("event_bus_name"): events.bus.event_bus_name,
            },
        )
        store.grant_read(self.function, READ_INDEXES)
        self._grant_publish(self.function)
        self.function.configure_async_invoke(
            retry_attempts=ASYNC_RETRIES,
            max_event_age=MAX_LATENESS,
            on_failure=QueueOnFailure(self.dead_letters, queues.key),
        )
        self.role = self._build_scheduler_role(queues)
        self.schedules = {
            (schedule.team, schedule.period): self._build_schedule(schedule) for schedule in digest_schedules(policy)
        }

    # ------------------------------------------------------------------ builders

    def _grant_publish(self, function: lambda_.IFunction) -> None:
        """What publishing a digest writes, beyond reading the window (`READ_INDEXES`, items by key)."""
        store = self._store
        # the window's claim (a conditional put) and its release when sending failed: those items only
        store.grant_items(function, ["dynamodb:PutItem", "dynamodb:DeleteItem"], [keys.token_pk(CLAIM_SCOPE, "*")])
        # the backlog counters' `complete` mark, set once it finds every queued ticket counted: those items only
        store.grant_items(function, ["dynamodb:UpdateItem"], [f"{keys.BACKLOG}*"])
        store.grant_key_for_writes(function)
        self._archive.grant_archive(function, (DIGESTS_PREFIX,))
        self._events.grant_put(function)
        grant_send_raw_email(self, function, [self._sender])

    def _build_scheduler_role(self, queues: InboundQueues) -> iam.Role:
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"Intake {self._stage.name} digest schedules: invoke the digest function, dead-letter to "
            "its queue",
        )
        iam.Grant.add_to_principal(
            grantee=role, actions=["lambda:InvokeFunction"], resource_arns=[self.function.function_arn]
        )
        iam.Grant.add_to_principal(
            grantee=role, actions=["sqs:SendMessage"], resource_arns=[self.dead_letters.queue_arn]
        )
        queues.key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        return role

    def _build_schedule(self, schedule: DigestSchedule) -> scheduler.CfnSchedule:
        return scheduler.CfnSchedule(
            self,
            f"{pascal_case(schedule.team)}{pascal_case(schedule.period)}",
            description=f"Intake {self._stage.name}: team {schedule.team}'s {schedule.period} digest",
            schedule_expression=schedule.expression,
            schedule_expression_timezone=schedule.timezone,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=self.role.role_arn,
                input=json.dumps(schedule.input),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=DELIVERY_RETRIES,
                    maximum_event_age_in_seconds=int(MAX_LATENESS.to_seconds()),
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
            ),
        )

    # ------------------------------------------------------------------ on demand

    def publish_on_demand(self, api: lambda_.Function) -> None:
        """The api's `POST /digests/{team}/{period}` (publish now): `lambda:InvokeFunction` on the digest function
        (asynchronous, `intake.digest.requests`), and its name. Nothing of publishing itself: the api neither
        archives, announces nor mails a digest. Its preview (`GET`) reads the table and indexes the api has."""
        iam.Grant.add_to_principal(
            grantee=api, actions=["lambda:InvokeFunction"], resource_arns=[self.function.function_arn]
        )
        api.add_environment(setting("digest_function_name"), self.function.function_name)

    # ------------------------------------------------------------------ alarms

    def add_alarms(self, topic: sns.ITopic) -> list[cloudwatch.Alarm]:
        alarm = cloudwatch.Alarm(
            self,
            "DeadLettersVisible",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="A team's digest was not published: Scheduler could not invoke the digest function, "
            "or it failed after Lambda's retries. Each message holds the {team, period} input (Scheduler) or the "
            "invocation record with its requestPayload (Lambda). Read the digest function's log, fix, then invoke "
            "it again with that input: a window is only ever sent once.",
        )
        alarm.add_alarm_action(actions.SnsAction(topic))
        alarm.add_ok_action(actions.SnsAction(topic))
        return [alarm]
