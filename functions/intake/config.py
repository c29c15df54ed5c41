"""Settings (from the environment) and the policy file (`intake.yaml`), both validated up front."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from intake.model import EMAIL_PATTERN, Priority

ENV_PREFIX = "INTAKE_"


class ConfigError(Exception):
    """The policy file or the environment is invalid; `errors` holds one line per problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(errors))


def describe(error: ValidationError) -> list[str]:
    """Each pydantic error as `path.to.field: reason`."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        if not path and item["type"] == "value_error":
            lines.append(str(item["ctx"]["error"]))  # our cross-field checks name their own path
        else:
            lines.append(f"{path or '(root)'}: {item['msg']}")
    return lines


class Settings(BaseModel):
    """One per process, read from `INTAKE_*` variables at cold start."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = "intake-tickets"
    bucket_name: str = "intake-raw"
    inbound_queue_url: str = ""
    config: Path = Path("intake.yaml")
    public_base_url: str = "http://127.0.0.1:8080"
    # Lambda takes 6 MB of event and API Gateway base64-encodes binary bodies: 4 MiB is what fits
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    secrets_arn: str | None = None
    page_size: int = Field(default=25, gt=0, le=100)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            named = [line.partition(":") for line in describe(error)]
            lines = [f"{ENV_PREFIX}{name.upper()}:{why}" for name, _, why in named]
            raise ConfigError("environment", lines) from None


# ---------------------------------------------------------------- policy file

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Team(Strict):
    name: str
    timezone: str = "UTC"
    email: str | None = None
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$", description="for phones given without +")


class FormAuthKind(StrEnum):
    SIGNED = "signed"
    TYPEFORM = "typeform"
    PUBLIC = "public"


class SignedAuth(Strict):
    kind: Literal[FormAuthKind.SIGNED]
    tolerance_s: int = Field(default=300, gt=0)


class TypeformAuth(Strict):
    kind: Literal[FormAuthKind.TYPEFORM]


class PublicAuth(Strict):
    kind: Literal[FormAuthKind.PUBLIC]
    origins: list[str] = Field(min_length=1)
    honeypot: str = "website"


FormAuth = Annotated[SignedAuth | TypeformAuth | PublicAuth, Field(discriminator="kind")]


class FieldMap(Strict):
    """Which of the form's fields (or Typeform field `ref`s) carries each of ours."""

    name: str | None = "name"
    email: str | None = "email"
    phone: str | None = "phone"
    subject: str | None = "subject"
    message: str = "message"
    priority: str | None = "priority"


class AttachmentLimits(Strict):
    max_files: int = Field(default=5, ge=0)
    max_file_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    types: list[str] = Field(default_factory=lambda: ["image/png", "image/jpeg", "application/pdf", "text/plain"])


class Form(Strict):
    team: Name
    auth: FormAuth
    fields: FieldMap = FieldMap()
    max_bytes: int = Field(default=1024 * 1024, gt=0)
    attachments: AttachmentLimits = AttachmentLimits()
    default_priority: Priority = Priority.NORMAL
    dedupe_window_s: int = Field(default=600, gt=0, description="identical submissions within it make one ticket")


class Alerts(Strict):
    """Who the stack's alarms (dead letters, errors, throttles, queue age) are emailed to."""

    emails: list[Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]] = Field(default_factory=list)


class Policy(Strict):
    version: Literal[1] = 1
    teams: dict[Name, Team] = Field(min_length=1)
    forms: dict[Name, Form] = Field(default_factory=dict)
    alerts: Alerts = Alerts()

    @model_validator(mode="after")
    def _teams_exist(self) -> Policy:
        for form_id, form in self.forms.items():
            if form.team not in self.teams:
                raise ValueError(f"forms.{form_id}.team: unknown team {form.team!r}")
        return self


def load_policy(path: Path) -> Policy:
    import yaml  # only where a policy is read from disk

    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except UnicodeDecodeError as error:
        raise ConfigError(str(path), [f"not UTF-8 text: {error.reason} at byte {error.start}"]) from None
    except OSError as error:
        raise ConfigError(str(path), [f"cannot be read: {error.strerror}"]) from None
    except yaml.YAMLError as error:
        raise ConfigError(str(path), [f"not valid YAML: {error}"]) from None
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        raise ConfigError(str(path), describe(error)) from None
