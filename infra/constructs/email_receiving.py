"""EmailReceiving: Amazon SES receives mail for the policy file's addresses, scans it for spam and
viruses, and stores each message's MIME in the archive; the bucket's event queues it for the email
function (see Functions). Activating the rule set is one CLI call (README), as CloudFormation cannot."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_ses as ses
from aws_cdk import aws_ses_actions as ses_actions
from constructs import Construct

from infra.acknowledgments import acknowledge
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.raw_archive import RawArchive
from intake.resources import EMAIL_QUEUE, SES_PREFIX


class EmailReceiving(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        archive: RawArchive,
        queues: InboundQueues,
        recipients: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self._allow_ses_to_encrypt(archive)
        self.rule_set = ses.ReceiptRuleSet(
            self,
            "RuleSet",
            rules=[
                ses.ReceiptRuleOptions(
                    recipients=list(recipients) or None,
                    scan_enabled=True,  # spam and virus verdicts travel in the message's headers
                    tls_policy=ses.TlsPolicy.REQUIRE,
                    actions=[ses_actions.S3(bucket=archive.bucket, object_key_prefix=SES_PREFIX)],
                )
            ],
        )
        archive.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(queues.queues[EMAIL_QUEUE.name]),
            s3.NotificationKeyFilter(prefix=SES_PREFIX),
        )
        self._acknowledge_notifications_handler()

    def _acknowledge_notifications_handler(self) -> None:
        """CDK configures bucket notifications with a Lambda-backed custom resource of its own."""
        stack = Stack.of(self)
        handler = next(c for c in stack.node.children if c.node.id.startswith("BucketNotificationsHandler"))
        role = handler.node.find_child("Role")
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's own bucket-notifications custom resource (runs at deploy time only): its execution role "
            "writes its logs with the AWS managed basic execution policy, which CDK does not let us replace.",
        )

    @staticmethod
    def _allow_ses_to_encrypt(archive: RawArchive) -> None:
        """The bucket encrypts with our key: SES may use it for what it writes, from this account only."""
        archive.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("ses.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:Encrypt"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
