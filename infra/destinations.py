"""Where a failed asynchronous invocation goes: a queue of the stack's, through the function's own role."""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.acknowledgments import acknowledge

DEAD_LETTERS_KEPT = Duration.days(14)


@jsii.implements(lambda_.IDestination)
class QueueOnFailure:
    """A failed asynchronous invocation's record, sent to the queue with the function's own role (SendMessage
    and the queue key's data key only; CDK's SqsDestination would grant every key action)."""

    def __init__(self, queue: sqs.IQueue, key: kms.IKey) -> None:
        self._queue = queue
        self._key = key

    def bind(
        self,
        scope: Construct,
        fn: lambda_.IFunction,
        options: Any = None,  # jsii passes DestinationOptions positionally
        *,
        type: lambda_.DestinationType | None = None,  # the interface's keyword (IDestination.bind)
    ) -> lambda_.DestinationConfig:
        iam.Grant.add_to_principal(grantee=fn, actions=["sqs:SendMessage"], resource_arns=[self._queue.queue_arn])
        self._key.grant(fn, "kms:GenerateDataKey", "kms:Decrypt")
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


def dead_letter_queue(scope: Construct, key: kms.IKey, removal_policy: RemovalPolicy, fed_by: str) -> sqs.Queue:
    """`DeadLetters` in `scope`: where failed asynchronous deliveries end (kept 14 days, under the queues' key, TLS
    only). `fed_by` names what sends to it, for cdk-nag: a dead end has no redrive policy of its own."""
    queue = sqs.Queue(
        scope,
        "DeadLetters",
        retention_period=DEAD_LETTERS_KEPT,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        removal_policy=removal_policy,
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        f"This is a dead-letter queue itself: {fed_by} (not an SQS redrive policy, which is what the rule looks for).",
    )
    return queue
