"""TicketStore: the single DynamoDB table `tickets`, built from `intake.resources.TABLE`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.acknowledgments import acknowledge_for_grantee, wildcard_action
from infra.stage import Stage
from intake.resources import TABLE

# What `intake.store` calls: GetItem and Query to read; TransactWriteItems made of Puts, Updates and condition
# checks (an acknowledgment's claim checks its recipient is not suppressed).
_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")
_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")
# What a function that writes tickets (ingest, email, api) may do on any item (`grant_read_write`); DeleteItem only
# where a grant names the items (`grant_items`).
TICKET_WRITER_ACTIONS = (*_READ_ACTIONS, "dynamodb:BatchGetItem", *_WRITE_ACTIONS)


@dataclass(frozen=True)
class ItemGrant:
    """`actions` on the table's items whose partition key matches one of `leading_keys` (IAM `StringLike`: `*` is
    any text), and, with `attributes`, on those attributes only: reads must name them (a projection)."""

    actions: tuple[str, ...]
    leading_keys: tuple[str, ...]
    attributes: tuple[str, ...] | None = None

    def allows(self, action: str, partition_key: str, attributes: set[str] | None = None) -> bool:
        """Whether a request of `action` on an item of `partition_key` (reading `attributes`; None: all) is granted:
        what the tests hold every recorded call of a function to."""
        if action not in self.actions or not any(fnmatchcase(partition_key, k) for k in self.leading_keys):
            return False
        return self.attributes is None or (attributes is not None and attributes <= set(self.attributes))


class TicketStore(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        self.key = self._build_key(stage)
        self.table = self._build_table(stage)

    def _build_key(self, stage: Stage) -> kms.Key:
        return kms.Key(
            self,
            "Key",
            description=f"Intake {stage.name}: tickets, messages and contacts (customers' data)",
            enable_key_rotation=True,
            removal_policy=stage.removal_policy,
            pending_window=stage.key_pending_window,
        )

    def _build_table(self, stage: Stage) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            "Tickets",
            partition_key=_string(TABLE.partition_key),
            sort_key=_string(TABLE.sort_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TABLE.ttl_attribute,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            deletion_protection=stage.deletion_protection,
            removal_policy=stage.removal_policy,
        )
        for index in TABLE.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string(index.partition_key),
                sort_key=_string(index.sort_key),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table

    # ------------------------------------------------------------------ grants

    def grant_read(self, grantee: iam.IGrantable, indexes: Sequence[str] | None = None) -> None:
        """Items by key and queries on the table and on each named index (or only on `indexes`)."""
        self._grant(grantee, _READ_ACTIONS, self._table_and_index_arns(indexes))
        self.grant_key_for_reads(grantee)

    def grant_read_write(self, grantee: iam.IGrantable) -> None:
        """Reads, plus the transactional puts and updates that create and append to tickets. What the ingest core
        and the email path read before they write comes in one BatchGetItem (`Store.lookup`, `thread_links`,
        `ticket_state`): a permission of its own, which GetItem does not give."""
        self.grant_read(grantee)
        self._grant(grantee, ("dynamodb:BatchGetItem", *_WRITE_ACTIONS), [self.table.table_arn])
        self.grant_key_for_writes(grantee)

    def grant(self, grantee: iam.IGrantable, grants: Sequence[ItemGrant]) -> None:
        """Each of `grants` (items by their partition key, attributes if it says), and the table key that reads and
        writes need."""
        for grant in grants:
            if grant.attributes is None:
                self.grant_items(grantee, grant.actions, grant.leading_keys)
                continue
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=list(grant.actions),
                resource_arns=[self.table.table_arn],
                conditions={
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(grant.leading_keys)},
                    # the keys and the attributes named, nothing else: a read without a projection is refused
                    "ForAllValues:StringEquals": {
                        "dynamodb:Attributes": [TABLE.partition_key, TABLE.sort_key, *grant.attributes]
                    },
                    "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
                },
            )
        self.grant_key_for_reads(grantee)
        if any(set(g.actions) - set(_READ_ACTIONS) for g in grants):
            self.grant_key_for_writes(grantee)

    def grant_items(self, grantee: iam.IGrantable, actions: Sequence[str], leading_keys: Sequence[str]) -> None:
        """`actions` on the table, and only on items whose partition key matches one of `leading_keys`
        (`dynamodb:LeadingKeys`, StringLike: `TOKEN#digest#*`). The key: `grant_key_for_reads`/`_writes`."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(actions),
            resource_arns=[self.table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(leading_keys)}},
        )

    def grant_key_for_reads(self, grantee: iam.IGrantable) -> None:
        self.key.grant(grantee, "kms:Decrypt", "kms:DescribeKey")

    def grant_key_for_writes(self, grantee: iam.IGrantable) -> None:
        """The table key as DynamoDB needs it to write under a customer managed key (reads: `grant_key_for_reads`)."""
        self.key.grant_encrypt_decrypt(grantee)
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge_for_grantee(
                grantee,
                wildcard_action(action),
                "The key actions DynamoDB needs to write a table under a customer managed key (the set "
                "CDK's Table.grantWriteData grants), on this one key only.",
            )

    def _grant(self, grantee: iam.IGrantable, actions: tuple[str, ...], arns: list[str]) -> None:
        iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=arns)

    def _table_and_index_arns(self, indexes: Sequence[str] | None = None) -> list[str]:
        names = [index.name for index in TABLE.indexes if indexes is None or index.name in indexes]
        unknown = set(indexes or ()) - {index.name for index in TABLE.indexes}
        if unknown:
            raise KeyError(f"the table has no index {', '.join(sorted(unknown))}")
        return [self.table.table_arn] + [f"{self.table.table_arn}/index/{name}" for name in names]


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)
