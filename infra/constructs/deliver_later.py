"""DeliverLater: the Step Functions Standard state machine "deliver-later", one execution per delayed message.

It waits until the execution's `$.at`, then puts `$.body` on the notifications queue (definition:
`functions/intake/notify/deliver_later.asl.json`, `${NotificationsQueueUrl}` filled in by CloudFormation). Resolving a
ticket schedules its satisfaction survey this way (`survey-<ticket_id>`: a retry cannot schedule two). Its role may
send to the notifications queue and nothing else; logs, tracing and failure alarms as the SLA timer's.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.standard_machine import StandardMachine
from infra.stage import Stage
from intake.resources import LATER_MACHINE, NOTIFICATIONS_QUEUE

DEFINITION = Path("functions") / "intake" / "notify" / "deliver_later.asl.json"  # under the project root


class DeliverLater(StandardMachine):
    def __init__(
        self, scope: Construct, construct_id: str, *, stage: Stage, project_root: Path, queues: InboundQueues
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            stage=stage,
            machine=LATER_MACHINE,
            purpose="deliver-later: waits until a message is due, then queues it for the notifier",
        )
        queues.grant_send(self.role, NOTIFICATIONS_QUEUE)
        self._build_state_machine(
            project_root / DEFINITION,
            {"NotificationsQueueUrl": queues.queues[NOTIFICATIONS_QUEUE.name].queue_url},
        )

    def grant_start(self, grantee: iam.IGrantable) -> None:
        """StartExecution on this machine only: executions are started, never stopped or read back."""
        self.state_machine.grant_start_execution(grantee)

    def _failure_description(self, what: str) -> str:
        return (
            f"A deliver-later execution {what}: a satisfaction survey (execution survey-<ticket_id>) was not "
            "queued. Open the execution in the Step Functions console and read the failing state's error; "
            "the notifications queue may have refused the message."
        )
