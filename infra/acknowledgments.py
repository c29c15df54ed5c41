"""cdk-nag acknowledgments, made next to what causes them, each with its reason.

They are recorded in the template's metadata (`cdk_nag.rules_to_suppress`), so a reviewer reads
every exception and its reason in one place (`tests/infra` lists them too).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Accept `rule_id` findings on the CloudFormation resource of `scope`, for `reason`.

    On that resource only (an acknowledgment also covers whatever a construct holds beneath it).
    """
    target = scope.node.default_child or scope
    Validations.of(target).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def acknowledge_for_grantee(grantee: iam.IGrantable, rule_id: str, reason: str) -> None:
    """On the policy of the role a grant went to: that is where IAM findings are."""
    principal = grantee.grant_principal
    policy = principal.node.try_find_child("DefaultPolicy") if isinstance(principal, Construct) else None
    if policy is None:
        raise TypeError(f"{principal} has no policy of its own: cannot acknowledge {rule_id} on it")
    acknowledge(policy, rule_id, reason)


def wildcard_resource(resource: CfnResource, suffix: str) -> str:
    """The IAM5 finding for `<resource ARN><suffix>`, e.g. an S3 prefix `/raw/*`."""
    logical_id = Stack.of(resource).resolve(resource.logical_id)
    return f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>{suffix}]"


def wildcard_action(action: str) -> str:
    return f"AwsSolutions-IAM5[Action::{action}]"
