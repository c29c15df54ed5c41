"""SlaTimers: the Step Functions Standard state machine "sla-timer", one execution per ticket x target x generation.

The definition is `functions/intake/sla/state_machine.asl.json`, the file the moto tests run; CloudFormation fills
in its `${TableName}` and `${NotificationsQueueUrl}`. The machine's own role may read and conditionally update the
timer items and send to the notifications queue, and nothing else (no Lambda: waits, reads, one conditional write).
Logs, tracing and failure alarms as every Intake machine has them (`StandardMachine`).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.acknowledgments import acknowledge_for_grantee, wildcard_action
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.standard_machine import StandardMachine
from infra.constructs.ticket_store import TicketStore
from infra.stage import Stage
from intake.resources import NOTIFICATIONS_QUEUE, SLA_MACHINE

DEFINITION = Path("functions") / "intake" / "sla" / "state_machine.asl.json"  # under the project root
# What the state machine's tasks call (arn:aws:states:::dynamodb:getItem / updateItem, sqs:sendMessage).
TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
# On the executions, named `<ticket>-<target>-<generation>` (StartExecution is on the machine itself).
_CONTROL_ACTIONS = ("states:StopExecution", "states:DescribeExecution")


class SlaTimers(StandardMachine):
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
        super().__init__(
            scope,
            construct_id,
            stage=stage,
            machine=SLA_MACHINE,
            purpose="SLA timer: reads and marks its timer item, queues notifications",
        )
        self._grant_role(store, queues)
        self._build_state_machine(
            project_root / DEFINITION,
            {
                "TableName": store.table.table_name,
                "NotificationsQueueUrl": queues.queues[NOTIFICATIONS_QUEUE.name].queue_url,
            },
        )

    def _grant_role(self, store: TicketStore, queues: InboundQueues) -> None:
        role = self.role
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

    # ------------------------------------------------------------------ grants and alarms

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

    def _failure_description(self, what: str) -> str:
        return (
            f"An SLA timer execution {what}: its warnings, breach or escalations may not have been sent. Open the "
            "execution in the Step Functions console (its name is <ticket>-<target>-<generation>) and read the "
            "failing state's error."
        )
