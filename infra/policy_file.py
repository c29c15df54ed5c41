"""The policy file as the synth needs it: validated by `intake.config.load_policy`, plus alert emails.

A bad file stops the synth with one line per error, `path: reason`, as `intake config check` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from intake.config import ConfigError, Policy
from intake.policy import load_policy


@dataclass(frozen=True)
class PolicyFile:
    path: Path
    policy: Policy
    alert_emails: tuple[str, ...] = ()


def load_policy_file(path: Path) -> PolicyFile:
    """Validate the file (raises `ConfigError` listing every error) and read who gets the alarms."""
    policy = load_policy(path)
    return PolicyFile(path=path, policy=policy, alert_emails=tuple(policy.alerts.emails))


def describe_policy_error(error: ConfigError) -> str:
    """What the synth prints before it stops: the file, then each error's path and reason."""
    lines = [f"{error.source}: the policy file is invalid; nothing was synthesized."]
    lines += [f"  {line}" for line in error.errors]
    return "\n".join(lines)
