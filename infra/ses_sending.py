"""Who may send email with SES, and as whom: `ses:SendRawEmail` on the identities a From address is verified as.

SES authorizes `SendRawEmail` against the identity verified for the From address, which is either the
address itself or its domain; a grant names both, and nothing else. Used for the notifier (the policy's
`notifications.sender`) and for the functions that acknowledge new email tickets (each team's address).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import IConstruct


def ses_identities(sender: str) -> list[str]:
    """The SES identities `sender` may be verified as: the address itself, or its domain."""
    domain = sender.rpartition("@")[2]
    return [sender, domain] if domain and domain != sender else [sender]


def grant_send_raw_email(scope: IConstruct, grantee: iam.IGrantable, senders: Iterable[str]) -> None:
    """`ses:SendRawEmail` for `grantee`, as `senders` only (their address and domain identities, deduplicated)."""
    identities = sorted({identity for sender in senders for identity in ses_identities(sender)})
    if not identities:
        return  # nobody to send as: no statement at all, rather than one on "*"
    stack = Stack.of(scope)
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["ses:SendRawEmail"],
        resource_arns=[
            stack.format_arn(service="ses", resource="identity", resource_name=identity) for identity in identities
        ],
    )
