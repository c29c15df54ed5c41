"""InboundQueues: SQS FIFO "inbound" (grouped by thread key) and its dead-letter queue.

Built from `intake.resources.QUEUES`: each spec gives a queue and a dead-letter queue with the
spec's visibility timeout, retention and max receive count.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.naming import pascal_case
from infra.stage import Stage
from intake.resources import INBOUND_QUEUE, QUEUES, QueueSpec


class InboundQueues(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        self.key = self._build_key(stage)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letters: dict[str, sqs.Queue] = {}
        for spec in QUEUES:
            self.dead_letters[spec.name] = self._build_dead_letter(spec, stage)
            self.queues[spec.name] = self._build_queue(spec, stage)

    @property
    def inbound(self) -> sqs.Queue:
        return self.queues[INBOUND_QUEUE.name]

    def _build_key(self, stage: Stage) -> kms.Key:
        return kms.Key(
            self,
            "Key",
            description=f"Intake {stage.name}: normalized inbound messages (customers' data)",
            enable_key_rotation=True,
            removal_policy=stage.removal_policy,
            pending_window=stage.key_pending_window,
        )

    def _build_dead_letter(self, spec: QueueSpec, stage: Stage) -> sqs.Queue:
        return sqs.Queue(
            self,
            pascal_case(spec.dead_letter),
            fifo=spec.fifo or None,
            retention_period=Duration.seconds(spec.retention_s),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            # `intake failures replay` and the console's "Start DLQ redrive" move messages back to their source.
            redrive_allow_policy=sqs.RedriveAllowPolicy(redrive_permission=sqs.RedrivePermission.ALLOW_ALL),
            removal_policy=stage.removal_policy,
        )

    def _build_queue(self, spec: QueueSpec, stage: Stage) -> sqs.Queue:
        return sqs.Queue(
            self,
            pascal_case(spec.name),
            fifo=spec.fifo or None,
            content_based_deduplication=False if spec.fifo else None,  # the sender sets the provider's id
            visibility_timeout=Duration.seconds(spec.visibility_timeout_s),
            retention_period=Duration.seconds(spec.retention_s),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            data_key_reuse=Duration.minutes(5),
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letters[spec.name], max_receive_count=spec.max_receive_count
            ),
            removal_policy=stage.removal_policy,
        )

    # ------------------------------------------------------------------ grants

    def grant_send(self, grantee: iam.IGrantable, spec: QueueSpec) -> None:
        """`sqs:SendMessage` to that one queue, and the data key SQS encrypts messages with."""
        queue = self.queues[spec.name]
        iam.Grant.add_to_principal(grantee=grantee, actions=["sqs:SendMessage"], resource_arns=[queue.queue_arn])
        self.key.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt")

    def grant_redrive(self, grantee: iam.IGrantable) -> None:
        """Operators' `/failures`: read each dead-letter queue without consuming it (receive, then change the
        visibility back), delete what was replayed, and send it to its own queue; the data key of both."""
        dead_letters = [queue.queue_arn for queue in self.dead_letters.values()]
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ],
            resource_arns=dead_letters,
        )
        sources = [queue.queue_arn for queue in self.queues.values()]
        iam.Grant.add_to_principal(grantee=grantee, actions=["sqs:SendMessage"], resource_arns=sources)
        self.key.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt")

    def consume(self, spec: QueueSpec, function: lambda_.Function) -> None:
        """The function receives the queue's messages in batches and reports the ones that failed."""
        if function.timeout is None or function.timeout.to_seconds() * 6 > spec.visibility_timeout_s:
            raise ValueError(f"{function.node.path}: its timeout must be at most 1/6 of {spec.name}'s visibility")
        function.add_event_source(
            sources.SqsEventSource(
                self.queues[spec.name],
                batch_size=10,  # the most a FIFO queue hands over at once
                report_batch_item_failures=True,
            )
        )
