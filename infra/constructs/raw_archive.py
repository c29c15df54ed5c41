"""RawArchive: every provider request as it arrived, and the files customers attached.

Built from `intake.resources.ARCHIVE` (its key prefixes). Storage first: the receiver writes here
before it answers, so this bucket is what `intake replay` rebuilds tickets from.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.acknowledgments import acknowledge, acknowledge_for_grantee, wildcard_resource
from infra.stage import Stage
from intake.resources import ARCHIVE, DIGESTS_PREFIX, SES_PREFIX

COLDER_AFTER = Duration.days(90)

# Received email's MIME in the archive: what SES's receipt rule writes, and what the receiver writes for SendGrid
# and Mailgun (`intake.reception.receive_email`: `raw/<yyyy/mm/dd>/<provider>/<receipt id>.eml`). Other raw
# objects are webhook requests (JSON envelopes), which nothing reads back in AWS.
SES_MAIL = f"{SES_PREFIX}*"
PROVIDER_MAIL = f"{ARCHIVE.raw_prefix}*.eml"
_MAIL_KEYS = {
    SES_MAIL: f"GetObject only, under {SES_PREFIX}: SES names each received message's object by its own id.",
    PROVIDER_MAIL: f"GetObject only, on the .eml objects under {ARCHIVE.raw_prefix}: the MIME the receiver stored for "
    "SendGrid and Mailgun, each under its date, provider and receipt id (the JSON webhook envelopes stay unreadable).",
}
ACCESS_LOGS_KEPT = Duration.days(365)
# A raw request's key (`intake.inbox.raw_key`): raw/<yyyy/mm/dd>/<provider>/<receipt id>[.eml], the date in IAM
# wildcards (`?` is one character). Only the explicit deny on SES_MAIL keeps raw/ses/ out of it: "????" is "ses/" too.
RECEIVED_ON = f"{ARCHIVE.raw_prefix}????/??/??/"


def received_prefix(provider: str) -> str:
    """Where the receiver writes for `provider`: each request's JSON envelope, and the .eml beside an email's."""
    return f"{RECEIVED_ON}{provider}/"


# Why a PutObject grant is on a key prefix: what the keys under it are named by.
_PUT_KEYS = {
    DIGESTS_PREFIX: "every digest is written under its team, period and window start (digests/<team>/<period>/"
    "<start>.html|txt|json), so a key prefix is as narrow as the grant can be.",
}
_PUT_KEYS_DEFAULT = (
    "every request or file is written to a new key (its date, provider and receipt id), so a key pattern is as "
    "narrow as the grant can be."
)


class RawArchive(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        self.key = self._build_key(stage)
        self.access_logs = self._build_access_logs(stage)
        self.bucket = self._build_bucket(stage)

    def _build_key(self, stage: Stage) -> kms.Key:
        return kms.Key(
            self,
            "Key",
            description=f"Intake {stage.name}: raw provider requests and attachments (customers' data)",
            enable_key_rotation=True,
            removal_policy=stage.removal_policy,
            pending_window=stage.key_pending_window,
        )

    def _build_access_logs(self, stage: Stage) -> s3.Bucket:
        logs = s3.Bucket(
            self,
            "AccessLogs",
            # S3 delivers server access logs only to buckets encrypted with S3-managed keys.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=ACCESS_LOGS_KEPT)],
            removal_policy=stage.removal_policy,
        )
        acknowledge(
            logs,
            "AwsSolutions-S1",
            "This bucket receives the archive's server access logs; logging its own access would only "
            "log log deliveries.",
        )
        return logs

    def _build_bucket(self, stage: Stage) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,  # one KMS request per bucket key, not per object
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{ARCHIVE.name}/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ColderAfter90Days",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transition_after=COLDER_AFTER
                        )
                    ],
                    noncurrent_version_transitions=[
                        s3.NoncurrentVersionTransition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transition_after=COLDER_AFTER
                        )
                    ],
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=stage.removal_policy,
        )

    # ------------------------------------------------------------------ grants

    def grant_read_received_mail(self, grantee: iam.IGrantable, keys: tuple[str, ...] = (SES_MAIL,)) -> None:
        """`s3:GetObject` on received email's MIME only (SES_MAIL, PROVIDER_MAIL or both), and its key to decrypt."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:GetObject"], resource_arns=[self.bucket.arn_for_objects(k) for k in keys]
        )
        self.key.grant_decrypt(grantee)
        bucket = self.bucket.node.default_child
        assert isinstance(bucket, CfnResource)
        for pattern in keys:
            acknowledge_for_grantee(grantee, wildcard_resource(bucket, f"/{pattern}"), _MAIL_KEYS[pattern])

    def grant_read_attachments(self, grantee: iam.IGrantable) -> None:
        """`s3:GetObject` on customers' files only (attachments/), and the key to decrypt: what the web console
        shows or offers as a download."""
        prefix = ARCHIVE.attachments_prefix
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:GetObject"], resource_arns=[self.bucket.arn_for_objects(f"{prefix}*")]
        )
        self.key.grant_decrypt(grantee)
        bucket = self.bucket.node.default_child
        assert isinstance(bucket, CfnResource)
        acknowledge_for_grantee(
            grantee,
            wildcard_resource(bucket, f"/{prefix}*"),
            f"GetObject only, under {prefix}: each file a customer sent is named by its date, receipt and "
            "position; the console reads the one a ticket's message lists, whichever ticket an agent opens.",
        )

    def grant_receive(self, grantee: iam.IGrantable, providers: Sequence[str]) -> None:
        """The receiver's writes: `s3:PutObject` on each provider's raw requests (`received_prefix`) and on uploaded
        files (attachments/), and an explicit deny under raw/ses/. SES receiving writes there, its object events
        feed the email function, and that function trusts the SES verdict headers in the files: a public endpoint
        that could write there could forge mail that passed SES's spam, virus and DMARC checks."""
        self.grant_archive(grantee, (*(received_prefix(p) for p in providers), ARCHIVE.attachments_prefix))
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY, actions=["s3:PutObject"], resources=[self.bucket.arn_for_objects(SES_MAIL)]
            )
        )

    def grant_archive(self, grantee: iam.IGrantable, prefixes: tuple[str, ...]) -> None:
        """`s3:PutObject` under `prefixes` only (`<prefix>*`): no reads, no deletes."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:PutObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes],
        )
        # A single-part PutObject under SSE-KMS needs a data key, nothing more.
        self.key.grant(grantee, "kms:GenerateDataKey")
        bucket = self.bucket.node.default_child
        assert isinstance(bucket, CfnResource)
        for prefix in prefixes:
            acknowledge_for_grantee(
                grantee,
                wildcard_resource(bucket, f"/{prefix}*"),
                f"PutObject only, on {prefix}*: " + _PUT_KEYS.get(prefix, _PUT_KEYS_DEFAULT),
            )
