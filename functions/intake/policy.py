"""The policy file (`intake.yaml`) as one model: the core sections of `intake.config.Policy` and each channel's.

A channel brings its section (`intake.channels.contract.Channel.section_type`); `policy_model()` adds one field per
channel of `intake.channels.registry`, so the file's schema, its validation and the names it may use (a team, a
channel) follow the registry without naming a provider here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, get_origin

from pydantic import Field, ValidationError, create_model, model_validator

from intake.channels import registry
from intake.config import ConfigError, Policy, describe


@cache
def policy_model() -> type[Policy]:
    fields: dict[str, Any] = {  # a section of entries (`forms`) is empty when left out; any other, None
        name: (kind, Field(default_factory=dict)) if get_origin(kind) is dict else (kind | None, None)
        for name, kind in registry.sections().items()
    }

    def _names_exist(policy: Policy) -> Policy:
        named = policy.named_teams()
        for channel in registry.channels():
            section = policy.section(channel.section) if channel.section_type is not None else None
            named += [(f"{channel.section}.{path}", team) for path, team in channel.teams(section)] if section else []
        for path, team in named:
            if team not in policy.teams:
                raise ValueError(f"{path}: unknown team {team!r}")
        kinds = registry.kinds()
        for path, kind in policy.named_channels():
            if kind not in kinds:
                raise ValueError(f"{path}: unknown channel {kind!r} (known: {', '.join(sorted(kinds))})")
        return policy

    validators: dict[str, Any] = {"_names_exist": model_validator(mode="after")(_names_exist)}
    model: type[Policy] = create_model("Policy", __base__=Policy, __validators__=validators, **fields)
    return model


def parse_policy(data: Any) -> Policy:
    """A policy file's content (its YAML, parsed) as the policy; pydantic's `ValidationError` when invalid."""
    return policy_model().model_validate(data)


def load_policy(path: Path) -> Policy:
    import yaml  # only where a policy is read from disk

    # libyaml's safe loader where PyYAML was built with it (its wheels are): the same documents, a tenth of the time
    # of the pure-Python one on a cold start
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (a safe loader)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except UnicodeDecodeError as error:
        raise ConfigError(str(path), [f"not UTF-8 text: {error.reason} at byte {error.start}"]) from None
    except OSError as error:
        raise ConfigError(str(path), [f"cannot be read: {error.strerror}"]) from None
    except yaml.YAMLError as error:
        raise ConfigError(str(path), [f"not valid YAML: {error}"]) from None
    try:
        return parse_policy(data)
    except ValidationError as error:
        raise ConfigError(str(path), describe(error)) from None
