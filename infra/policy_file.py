"""The policy file as the synth needs it: validated by `intake.config.load_policy`, plus alert emails.

A bad file stops the synth with one line per error, `path: reason`, as `intake config check` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from intake.config import ConfigError, Policy, load_policy


@dataclass(frozen=True)
class PolicyFile:
    path: Path
    policy: Policy
    alert_emails: tuple[str, ...] = ()


def load_policy_file(path: Path) -> PolicyFile:
    """Validate the file (raises `ConfigError` listing every error) and read who gets the alarms."""
    policy = load_policy(path)
    raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    return PolicyFile(path=path, policy=policy, alert_emails=alert_emails(raw, str(path)))


def alert_emails(raw: Any, source: str) -> tuple[str, ...]:
    """`alerts: {emails: [...]}` if the file has it; none otherwise.

    Read from the raw document until `intake.config.Policy` declares `alerts` itself (its models
    forbid unknown keys, so until then a file carrying `alerts` does not pass `load_policy`).
    """
    alerts = raw.get("alerts") if isinstance(raw, dict) else None
    if alerts is None:
        return ()
    emails = alerts.get("emails", []) if isinstance(alerts, dict) else None
    if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e for e in emails):
        raise ConfigError(source, ["alerts.emails: must be a list of email addresses"])
    return tuple(emails)


def describe_policy_error(error: ConfigError) -> str:
    """What the synth prints before it stops: the file, then each error's path and reason."""
    lines = [f"{error.source}: the policy file is invalid; nothing was synthesized."]
    lines += [f"  {line}" for line in error.errors]
    return "\n".join(lines)
