"""The synthesized stack as the infra tests read it, and the context they synthesize it with."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.policy_file import PolicyFile

ROOT = Path(__file__).resolve().parents[2]
STACK = "IntakeDev"
ALERT_EMAILS = ("oncall@example.com",)
# A second team, in another timezone, with a weekly digest only and no surveys (added by `tested_policy`).
BILLING = "billing"
BILLING_TIMEZONE = "America/New_York"


def tested_policy(policy_file: PolicyFile) -> PolicyFile:
    """The repository's policy file, plus: the alert emails; `support` with a daily digest at 08:30 and a weekly
    one on Monday at 09:00 (Europe/Paris) and satisfaction surveys; `billing` (America/New_York, no address of its
    own) with a weekly digest on Friday at 16:45 only."""
    from intake.config import Digests, DigestSchedule, Satisfaction, Team, WeeklyDigestSchedule

    policy = policy_file.policy
    support = policy.teams["support"].model_copy(
        update={
            "digests": Digests(daily=DigestSchedule(at="08:30"), weekly=WeeklyDigestSchedule(at="09:00", day="mon")),
            "satisfaction": Satisfaction(enabled=True),
        }
    )
    billing = Team(
        name="Billing",
        timezone=BILLING_TIMEZONE,
        notify=["billing-lead@example.com"],
        digests=Digests(weekly=WeeklyDigestSchedule(at="16:45", day="fri")),
    )
    teams = {**policy.teams, "support": support, BILLING: billing}
    return replace(policy_file, policy=policy.model_copy(update={"teams": teams}), alert_emails=ALERT_EMAILS)


def cdk_context(**extra: Any) -> dict[str, Any]:
    """cdk.json's context (feature flags included) as `cdk synth` passes it, bundling skipped."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return {
        **context,
        "aws:cdk:bundling-stacks": [],  # no pip, no copies: the assets have their own test
        "aws:cdk:disable-stack-trace": True,  # as the CLI does
        "aws:cdk:enable-path-metadata": True,  # as the CLI does: resources name their construct path
        **extra,
    }


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    template: dict[str, Any]
    assertions: Any  # aws_cdk.assertions.Template (imported lazily: `import aws_cdk` costs seconds)
    policy_file: Any  # infra.policy_file.PolicyFile

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.template["Resources"].items() if r["Type"] == kind}

    def one(self, kind: str, path: str) -> tuple[str, dict[str, Any]]:
        """The resource of `kind` built by the construct at `path` (under the stack), and its logical id."""
        wanted = {f"{STACK}/{path}", f"{STACK}/{path}/Resource"}
        found = [(n, r) for n, r in self.resources(kind).items() if r.get("Metadata", {}).get("aws:cdk:path") in wanted]
        assert len(found) == 1, f"{kind} at {path}: {[n for n, _ in found]}"
        return found[0]
