"""Settings (from the environment) and the policy file (`intake.yaml`), both validated up front."""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

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
        reason = str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"]
        if not path and item["type"] == "value_error":
            lines.append(reason)  # our cross-field checks name their own path
        else:
            lines.append(f"{path or '(root)'}: {reason}")
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
    state_machine_arn: str = ""  # the SLA timer (Step Functions); empty: no timers are started
    notifications_queue_url: str = ""
    outbox: Path | None = None  # locally, outgoing email is written here as .eml files instead of sent with SES

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


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: object) -> object:
    """`"1h30m"`, `"2d"`, `"45s"`, `"0m"` → a timedelta (a day is 24 hours); other values go to pydantic."""
    if not isinstance(value, str):
        return value
    match = _DURATION.match(value.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration like 30m, 4h, 1h30m or 2d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of `parse_duration`, shortest form (`timedelta(minutes=90)` → `"1h30m"`)."""
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts) or "0m"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _DURATION.pattern, "examples": ["30m", "4h", "1h30m", "2d"]}),
]
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, to_lower=True)]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Interval = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$")]


class Holidays(Strict):
    """Public holidays from the `holidays` package: a country and optionally a subdivision."""

    country: str = Field(pattern=r"^[A-Z]{2}$")
    subdivision: str | None = None


class Calendar(Strict):
    """When a team is open: weekly hours in its timezone (any number of intervals a day, "09:00-12:30"),
    minus public holidays and extra closed dates, plus extra open dates (with the usual weekday hours
    of `open_dates_hours`). A team without a calendar is always open."""

    hours: dict[Weekday, list[Interval]] = Field(min_length=1)
    holidays: Holidays | None = None
    closed_dates: list[date] = Field(default_factory=list)
    open_dates: list[date] = Field(default_factory=list)
    open_dates_hours: list[Interval] = Field(default_factory=lambda: ["09:00-17:00"])


class Acknowledgment(Strict):
    """The automatic reply to a new email ticket: from the team's address, at most N per sender per hour."""

    enabled: bool = True
    max_per_sender_per_hour: int = Field(default=3, ge=1)


class Team(Strict):
    name: str
    timezone: str = "UTC"
    email: Email | None = Field(default=None, description="the team's address: acknowledgments are sent from it")
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$", description="for phones given without +")
    calendar: Calendar | None = None
    acknowledgment: Acknowledgment = Acknowledgment()
    reopen_within: Duration = Field(
        default=timedelta(days=7),
        description="a customer message this soon after resolution reopens the ticket; later, a new linked ticket",
    )
    notify: list[Email] = Field(default_factory=list, description="who gets SLA warnings and breaches (default: email)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _calendar_usable(self) -> Team:
        """What only the calendar itself can tell (holiday regions, intervals that end before they start)."""
        from intake.sla.calendar import CalendarInvalidError, calendar_for

        try:
            calendar_for(self)
        except CalendarInvalidError as error:
            raise ValueError(f"calendar: {error}") from None
        return self


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


class Greeting(Strict):
    """What a caller hears before the beep, read by Twilio's <Say>."""

    open: str = "Thank you for calling. Please leave a message after the tone and we will call you back."
    closed: str = "We are closed right now. Please leave a message after the tone and we will call you back."
    language: str = "en-US"
    voice: str = "Polly.Joanna"


class TwilioNumber(Strict):
    """One of our Twilio numbers: which team its calls and messages go to, and what callers hear."""

    team: Name
    greeting: Greeting | None = None


class Twilio(Strict):
    """Phone calls, voicemails, SMS/MMS and WhatsApp through Twilio. Numbers in E.164."""

    numbers: dict[Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")], TwilioNumber] = Field(
        default_factory=dict
    )
    default_team: Name | None = Field(default=None, description="for numbers not listed")
    greeting: Greeting = Greeting()
    max_recording_s: int = Field(default=120, ge=5, le=3600)
    transcribe: bool = True

    @model_validator(mode="after")
    def _transcribable(self) -> Twilio:
        if self.transcribe and self.max_recording_s > 120:
            raise ValueError("twilio.max_recording_s: Twilio transcribes recordings of at most 120 s")
        return self


class WhatsAppNumber(Strict):
    """One WhatsApp Business phone number (by its Graph API `phone_number_id`) and the team it serves."""

    team: Name
    display_phone_number: str | None = None


class WhatsApp(Strict):
    """The WhatsApp Cloud API. Secrets: INTAKE_WHATSAPP_APP_SECRET (signatures), INTAKE_WHATSAPP_VERIFY_TOKEN
    (the subscription handshake), INTAKE_WHATSAPP_ACCESS_TOKEN (media downloads); Secrets Manager in AWS."""

    phone_numbers: dict[str, WhatsAppNumber] = Field(default_factory=dict)
    default_team: Name | None = None
    graph_api_url: str = "https://graph.facebook.com/v21.0"
    media_attempts: int = Field(default=4, ge=1, le=10)


class EmailChannel(Strict):
    """Inbound email (SES, SendGrid, Mailgun, local SMTP): which address goes to which team, and limits."""

    addresses: dict[Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, to_lower=True)], Name] = Field(
        default_factory=dict
    )
    default_team: Name | None = None
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_message_bytes: int = Field(
        default=25 * 1024 * 1024, gt=0, description="attachments beyond this total are recorded as dropped"
    )


class Notifications(Strict):
    """Emails Intake sends to the team (SLA warnings, breaches, escalations; digests)."""

    sender: Email = Field(default="intake@example.com", description="a verified SES identity in AWS")
    ticket_url: str = Field(
        default="{base_url}/tickets/{ticket_id}", description="the link in every email: {base_url}, {ticket_id}"
    )


class Alerts(Strict):
    """Who the stack's alarms (dead letters, errors, throttles, queue age) are emailed to."""

    emails: list[Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]] = Field(default_factory=list)


class Policy(Strict):
    version: Literal[1] = 1
    teams: dict[Name, Team] = Field(min_length=1)
    forms: dict[Name, Form] = Field(default_factory=dict)
    twilio: Twilio | None = None
    whatsapp: WhatsApp | None = None
    email: EmailChannel | None = None
    alerts: Alerts = Alerts()
    notifications: Notifications = Notifications()

    @model_validator(mode="after")
    def _teams_exist(self) -> Policy:
        named = [(f"forms.{form_id}.team", form.team) for form_id, form in self.forms.items()]
        if self.twilio is not None:
            named += [(f"twilio.numbers.{n}.team", number.team) for n, number in self.twilio.numbers.items()]
            named += [("twilio.default_team", self.twilio.default_team)] if self.twilio.default_team else []
        if self.email is not None:
            named += [(f"email.addresses.{a}", team) for a, team in self.email.addresses.items()]
            named += [("email.default_team", self.email.default_team)] if self.email.default_team else []
        if self.whatsapp is not None:
            numbers = self.whatsapp.phone_numbers
            named += [(f"whatsapp.phone_numbers.{n}.team", number.team) for n, number in numbers.items()]
            named += [("whatsapp.default_team", self.whatsapp.default_team)] if self.whatsapp.default_team else []
        for path, team in named:
            if team not in self.teams:
                raise ValueError(f"{path}: unknown team {team!r}")
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
