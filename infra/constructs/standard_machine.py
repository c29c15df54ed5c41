"""What Intake's Step Functions Standard machines share: a role of their own, ALL-level logs, tracing, failure alarms.

Both machines wait for an exact instant and then do one small thing without a Lambda: the SLA timer
(`SlaTimers`) and the deliver-later machine (`DeliverLater`). Each subclass grants its role what its
definition's tasks call; this base builds the rest the same way for both.

Neither the machine nor its log group has a fixed name: prod retains both when the stack is deleted (running
executions finish, their logs stay), and a stack created again beside them must not collide with them
(`AlreadyExists`). CloudFormation names the machine; the log group's name ends with the stack's own id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import ArnFormat, Aws, CfnResource, Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.acknowledgments import acknowledge_for_grantee
from infra.stage import Stage


class StandardMachine(Construct):
    """A Standard state machine from an ASL file, with its role (`self.role`, granted by the subclass)."""

    state_machine: sfn.StateMachine
    log_group: logs.LogGroup

    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage, machine: str, purpose: str) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        self.machine = machine  # `sla-timer`: what descriptions and the log group's name call it
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=f"Intake {stage.name} {purpose}",
        )

    # ------------------------------------------------------------------ builders

    def _build_log_group(self) -> logs.LogGroup:
        # The /aws/vendedlogs/ prefix keeps Step Functions' log delivery off the account's resource policy limit;
        # the stack id's UUID makes the name this stack's own (`/aws/vendedlogs/states/IntakeProd-sla-timer-<uuid>`).
        stack_uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
        return logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-{self.machine}-{stack_uuid}",
            retention=self._stage.log_retention,
            removal_policy=self._stage.removal_policy,
        )

    def _build_state_machine(self, definition: Path, substitutions: Mapping[str, str]) -> None:
        """The machine, its definition the file the moto tests run, with CloudFormation filling in `substitutions`.
        Execution data is logged: the subclasses' inputs are ids and times (no message text, no contact details)."""
        self.log_group = self._build_log_group()
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,  # waits last days; exactly-once named executions
            definition_body=sfn.DefinitionBody.from_file(str(definition)),
            definition_substitutions=dict(substitutions),
            role=self.role,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
            removal_policy=self._stage.removal_policy,  # prod: running executions survive the stack
        )
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
        """`arn:<partition>:states:<region>:<account>:execution:<machine name>:*`: every execution of this machine."""
        return Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def executions_finding(self) -> str:
        """The cdk-nag IAM5 finding id for `executions_arn` (tokens written as cdk-nag writes them)."""
        machine = self.state_machine.node.default_child
        assert isinstance(machine, CfnResource)
        logical_id = Stack.of(self).resolve(machine.logical_id)
        return (
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            f"<{logical_id}.Name>:*]"
        )

    def _failure_description(self, what: str) -> str:
        """What an alarm on a failed or timed-out execution says; subclasses say what it means for customers."""
        return f"A {self.machine} execution {what}: open it in the Step Functions console."

    def add_alarms(self, topic: sns.ITopic) -> list[cloudwatch.Alarm]:
        """A failed or timed-out execution is something nobody was told: both alarm to `topic`."""
        machine = self.state_machine
        alarms = []
        for construct_id, metric, what in (
            ("Failed", machine.metric_failed(period=Duration.minutes(1), statistic="Sum"), "failed"),
            ("TimedOut", machine.metric_timed_out(period=Duration.minutes(1), statistic="Sum"), "timed out"),
        ):
            alarm = cloudwatch.Alarm(
                self,
                f"Executions{construct_id}",
                metric=metric,
                threshold=0,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=self._failure_description(what),
            )
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarm.add_ok_action(actions.SnsAction(topic))
            alarms.append(alarm)
        return alarms
