"""SlaTimers: the Step Functions Standard state machine "sla-timer", one execution per ticket x target x generation.

The definition is `functions/intake/sla/state_machine.asl.json`, the file the moto tests run; CloudFormation fills
in its `${TableName}` and `${NotificationsQueueUrl}`. The machine's own role may read and conditionally update the
timer items and send to the notifications queue, and nothing else (no Lambda: waits, reads, one conditional write).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.acknowledgments import acknowledge_for_grantee, wildcard_action
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.ticket_store import TicketStore
from infra.stage import Stage
from intake.resources import NOTIFICATIONS_QUEUE, SLA_MACHINE

DEFINITION = Path("functions") / "intake" / "sla" / "state_machine.asl.json"  # under the project root
# What the state machine's tasks call (arn:aws:states:::dynamodb:getItem / updateItem, sqs:sendMessage).
TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
# On the executions, named `<ticket>-<target>-<generation>` (StartExecution is on the machine itself).
_CONTROL_ACTIONS = ("states:StopExecution", "states:DescribeExecution")


class SlaTimers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        project_root: Path,
        store: TicketStore,
        queues: InboundQueues,
    ) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        # Readable in the console and distinct per stage in one account: `IntakeDev-sla-timer`.
        self.machine_name = f"{Stack.of(self).stack_name}-{SLA_MACHINE}"
        self.role = self._build_role(store, queues)
        self.log_group = self._build_log_group()
        self.state_machine = self._build_state_machine(project_root / DEFINITION, store, queues)
        self._acknowledge_service_wildcards()

    # ------------------------------------------------------------------ builders

    def _build_role(self, store: TicketStore, queues: InboundQueues) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=f"Intake {self._stage.name} SLA timer: reads and marks its timer item, queues notifications",
        )
        iam.Grant.add_to_principal(grantee=role, actions=list(TABLE_ACTIONS), resource_arns=[store.table.table_arn])
        # The table's customer managed key, as TicketStore grants it to its writers (a conditional UpdateItem writes).
        store.key.grant(role, "kms:Decrypt", "kms:DescribeKey")
        store.key.grant_encrypt_decrypt(role)
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge_for_grantee(
                role,
                wildcard_action(action),
                "The key actions DynamoDB needs to write a table under a customer managed key (the set CDK's "
                "Table.grantWriteData grants), on this one key only: the timer's conditional UpdateItem writes.",
            )
        queues.grant_send(role, NOTIFICATIONS_QUEUE)
        return role

    def _build_log_group(self) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "Logs",
            # The /aws/vendedlogs/ prefix keeps Step Functions' log delivery off the account's resource policy limit.
            log_group_name=f"/aws/vendedlogs/states/{self.machine_name}",
            retention=self._stage.log_retention,
            removal_policy=self._stage.removal_policy,
        )

    def _build_state_machine(self, definition: Path, store: TicketStore, queues: InboundQueues) -> sfn.StateMachine:
        return sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,  # waits last days; exactly-once named executions
            definition_body=sfn.DefinitionBody.from_file(str(definition)),
            definition_substitutions={
                "TableName": store.table.table_name,
                "NotificationsQueueUrl": queues.queues[NOTIFICATIONS_QUEUE.name].queue_url,
            },
            role=self.role,
            # Execution data is ids, targets, generations and times: no message text, no contact details.
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
            removal_policy=self._stage.removal_policy,  # prod: running timers survive the stack
        )

    def _acknowledge_service_wildcards(self) -> None:
        acknowledge_for_grantee(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Added by CDK for logging and tracing: CloudWatch Logs' log-delivery actions (CreateLogDelivery, "
            "PutResourcePolicy, ...) and X-Ray's PutTraceSegments/GetSamplingRules support no resource-level "
            "permissions; no data action is on '*'.",
        )

    # ------------------------------------------------------------------ grants and alarms

    @property
    def executions_arn(self) -> str:
        """`arn:<partition>:states:<region>:<account>:execution:<machine>:*`: every execution of this machine."""
        return Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def grant_control(self, grantee: iam.IGrantable) -> None:
        """Start executions of this machine; stop and describe its executions (named per ticket x target)."""
        self.state_machine.grant_start_execution(grantee)
        iam.Grant.add_to_principal(grantee=grantee, actions=list(_CONTROL_ACTIONS), resource_arns=[self.executions_arn])
        acknowledge_for_grantee(
            grantee,
            self.executions_finding(),
            "Timers are executions named <ticket>-<target>-<generation>, created at run time: they can only be "
            "named by a pattern, and the pattern is limited to this one state machine's executions.",
        )

    def executions_finding(self) -> str:
        """The cdk-nag IAM5 finding id for `executions_arn` (tokens written as cdk-nag writes them)."""
        return (
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"{self.machine_name}:*]"
        )

    def add_alarms(self, topic: sns.ITopic) -> list[cloudwatch.Alarm]:
        """A failed or timed-out timer is a breach nobody hears about: both alarm to `topic`."""
        alarms = []
        for construct_id, metric, what in (
            ("Failed", self.state_machine.metric_failed(period=Duration.minutes(1), statistic="Sum"), "failed"),
            ("TimedOut", self.state_machine.metric_timed_out(period=Duration.minutes(1), statistic="Sum"), "timed out"),
        ):
            alarm = cloudwatch.Alarm(
                self,
                f"Executions{construct_id}",
                metric=metric,
                threshold=0,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"An SLA timer execution {what}: its warnings, breach or escalations may not have "
                "been sent. Open the execution in the Step Functions console (its name is <ticket>-<target>-"
                "<generation>) and read the failing state's error.",
            )
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarm.add_ok_action(actions.SnsAction(topic))
            alarms.append(alarm)
        return alarms
