"""Settings (from the environment) and the policy file (`intake.yaml`), both validated up front."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

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

from intake import identity
from intake.hours import CalendarInvalidError, OpenHours, Weekday, open_hours
from intake.model import EMAIL_PATTERN, ChannelName, Priority

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


def _json_object(value: object) -> object:
    """A setting holding a JSON object (`INTAKE_CHANNEL_SECRETS`) as the environment gives it: a string."""
    import json

    return json.loads(value) if isinstance(value, str) else value


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
    secrets_arn: str | None = None  # the webhook signing secrets (the receiver's)
    survey_secret_arn: str | None = None  # CSAT_SECRET alone: the receiver checks survey links, the notifier signs them
    # Each channel API credential this function reads (`Channel.api_secrets`), by name: the ARN of the secret holding it
    channel_secrets: Annotated[dict[str, str], BeforeValidator(_json_object)] = Field(default_factory=dict)
    console_secret_arn: str | None = None  # CONSOLE_CLIENT_SECRET alone: the api's OIDC client secret, if any
    # Who signs people in to the console: the server in front of the api function (`intake serve`'s gateway, its
    # agent token), or, in AWS, the api function itself with the OIDC provider of the policy's `api.jwt.console`
    console_sign_in: Literal["gateway", "oidc"] = "gateway"
    page_size: int = Field(default=25, gt=0, le=100)
    state_machine_arn: str = ""  # the SLA timer (Step Functions); empty: no timers are started
    notifications_queue_url: str = ""
    outbox: Path | None = None  # locally, outgoing email is written here as .eml files instead of sent with SES
    ses_configuration_set: str | None = None  # SES: what sends bounces and complaints back (intake.suppression)
    event_bus_name: str = ""  # Intake's EventBridge bus (DigestPublished, SurveyRequested); empty: none
    later_machine_arn: str = ""  # the deliver-later state machine (delayed surveys)
    digest_function_name: str = ""  # the api: where POST /digests/... hands a digest (empty: published in-process)
    # The API's `/failures` (dead-lettered messages): each queue and its dead-letter queue; unset elsewhere
    email_queue_url: str = ""
    inbound_dlq_url: str = ""
    email_dlq_url: str = ""
    notifications_dlq_url: str = ""
    # Agents' replies (intake.replies): the sender queue, and the providers' API roots (tests point them at fakes)
    sender_queue_url: str = ""
    sender_dlq_url: str = ""
    twilio_api_url: str = "https://api.twilio.com"
    graph_api_url: str | None = None  # the Graph API's versioned root; unset: the policy's whatsapp.graph_api_url
    # `intake serve`: the local adapters (SQLite store, queues and timers, files) keep everything here; unset in AWS
    data_dir: Path | None = None
    # `intake serve`: every queue's visibility timeout instead of its own (a failing message retries sooner)
    visibility_timeout_s: int | None = Field(default=None, gt=0)

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


def default_model(make: Callable[[], Strict]) -> Any:
    """A field whose default is `make()`, made when a policy first needs it: a model instance as a class attribute
    would build that model's validator while the module is imported, in every process that imports it. The JSON
    Schema still shows the default."""

    def shown(schema: dict[str, Any]) -> None:
        schema["default"] = make().model_dump(mode="json")

    return Field(default_factory=make, json_schema_extra=shown)


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


def _repeated(values: Iterable[str]) -> list[str]:
    """The values given more than once, sorted."""
    return sorted(value for value, n in Counter(values).items() if n > 1)


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

    def open_hours(self) -> OpenHours:
        """Its parts, checked (CalendarInvalidError: what only the calendar itself can tell, such as holiday regions
        and intervals that end before they start)."""
        holidays = None if self.holidays is None else (self.holidays.country, self.holidays.subdivision)
        return open_hours(
            self.hours,
            open_dates_hours=self.open_dates_hours,
            open_dates=self.open_dates,
            closed_dates=self.closed_dates,
            holidays=holidays,
        )


class Acknowledgment(Strict):
    """The automatic reply to a new email ticket: from the team's address, at most N per sender per hour."""

    enabled: bool = True
    max_per_sender_per_hour: int = Field(default=3, ge=1)


Clock = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class DigestSchedule(Strict):
    at: Clock = Field(default="08:30", description="local time in the team's timezone")


class WeeklyDigestSchedule(DigestSchedule):
    day: Weekday = "mon"


class Digests(Strict):
    """When a team's lead gets the digest of how the team answers (EventBridge Scheduler, the team's timezone)."""

    daily: DigestSchedule | None = None
    weekly: WeeklyDigestSchedule | None = None
    recipients: list[Email] = Field(default_factory=list, description="default: the team's notify list, else email")
    send_empty: bool = Field(default=False, description="send a digest of a window with nothing in it")


class Satisfaction(Strict):
    """The one-question survey (1 to 5) after a ticket is resolved."""

    enabled: bool = False
    delay: Duration = Field(default=timedelta(hours=1), description="after the resolution")
    quiet_hours: list[Interval] = Field(
        default_factory=lambda: ["20:00-24:00", "00:00-08:00"], description="local times no survey is sent in"
    )
    once_per: Duration = Field(default=timedelta(days=30), description="at most one survey per contact this often")
    link_valid_for: Duration = Field(default=timedelta(days=14))


class Team(Strict):
    name: str
    timezone: str = "UTC"
    email: Email | None = Field(default=None, description="the team's address: acknowledgments are sent from it")
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$", description="for phones given without +")
    calendar: Calendar | None = None
    acknowledgment: Acknowledgment = default_model(Acknowledgment)
    reopen_within: Duration = Field(
        default=timedelta(days=7),
        description="a customer message this soon after resolution reopens the ticket; later, a new linked ticket",
    )
    notify: list[Email] = Field(default_factory=list, description="who gets SLA warnings and breaches (default: email)")
    digests: Digests = default_model(Digests)
    satisfaction: Satisfaction = default_model(Satisfaction)

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
        if self.calendar is None:
            return self
        try:
            self.calendar.open_hours()
        except CalendarInvalidError as error:
            raise ValueError(f"calendar: {error}") from None
        return self


class Notifications(Strict):
    """Emails Intake sends to the team (SLA warnings, breaches, escalations; digests)."""

    sender: Email = Field(default="intake@example.com", description="a verified SES identity in AWS")
    ticket_url: str | None = Field(
        default=None,
        description="the link in every email: {base_url}, {ticket_id}; unset: the web console's ticket page where"
        " there is a console (intake serve; AWS with api.jwt.console), else the JSON /tickets/{ticket_id}",
    )

    CONSOLE_TICKET_URL: ClassVar[str] = "{base_url}/console/tickets/{ticket_id}"
    JSON_TICKET_URL: ClassVar[str] = "{base_url}/tickets/{ticket_id}"


class Alerts(Strict):
    """Who the stack's alarms (dead letters, errors, throttles, queue age) are emailed to."""

    emails: list[Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]] = Field(default_factory=list)


# ---------------------------------------------------------------- SLA and priority

SlaTargetName = Literal["first_response", "next_response", "resolution"]
SLA_TARGETS: tuple[SlaTargetName, ...] = ("first_response", "next_response", "resolution")
TimeKind = Literal["business", "calendar"]


class SlaTarget(Strict):
    """One deadline: this long after the clock starts, counted in the team's open hours or around the clock."""

    within: Duration
    time: TimeKind = Field(default="business", description="business: the team's open hours; calendar: 24/7")

    @field_validator("within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0m")
        return value


class SlaMatch(Strict):
    """Which tickets a policy applies to; each list left out (or null) means any."""

    teams: list[Name] | None = Field(default=None, min_length=1)
    channels: list[ChannelName] | None = Field(default=None, min_length=1)
    priorities: list[Priority] | None = Field(default=None, min_length=1)


class EscalationLevel(Strict):
    """Who is told when a breach is this old: level 1 `after` the deadline, level N `after` level N-1."""

    after: Duration
    to: list[Email] = Field(min_length=1)


class SlaWarning(Strict):
    """When to warn before a deadline: once `percent` of the target has elapsed, or `before` the deadline."""

    percent: int | None = Field(default=None, ge=1, le=99)
    before: Duration | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SlaWarning:
        if (self.percent is None) == (self.before is None):
            raise ValueError("give a percent of the target or a duration before the deadline, not both")
        if self.before is not None and self.before <= timedelta(0):
            raise ValueError("a warning before the deadline must be longer than 0m")
        return self

    @property
    def label(self) -> str:
        """`"80%"` or `"15m"`: how the policy file writes it, and the warning's name in notifications."""
        return f"{self.percent}%" if self.before is None else format_duration(self.before)


_PERCENT = re.compile(r"^([0-9]+)\s*%$")


def parse_warning(value: object) -> object:
    """`"80%"` (of the target elapsed, 1 to 99) or a duration before the deadline (`"15m"`) → `SlaWarning`."""
    if isinstance(value, SlaWarning):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a warning like '80%' or '15m'")
    percent = _PERCENT.match(value.strip())
    if percent is not None:
        number = int(percent.group(1))
        if not 1 <= number <= 99:
            raise ValueError(f"{value!r}: a warning's percent must be between 1% and 99%")
        return SlaWarning(percent=number)
    before = parse_duration(value)
    assert isinstance(before, timedelta)
    if before <= timedelta(0):
        raise ValueError(f"{value!r}: a warning before the deadline must be longer than 0m")
    return SlaWarning(before=before)


WarningSpec = Annotated[
    SlaWarning,
    BeforeValidator(parse_warning),
    PlainSerializer(lambda warning: warning.label, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(?:[1-9][0-9]?\s*%|" + _DURATION.pattern[1:-1] + ")$",
            "description": "a percent of the target elapsed (1% to 99%) or a duration before the deadline",
            "examples": ["50%", "80%", "15m"],
        }
    ),
]


class SlaPolicy(Strict):
    """Targets for the tickets it matches, warnings before each deadline and who is told after a breach."""

    name: Name
    match: SlaMatch | None = Field(default=None, description="left out: every ticket (the default policy)")
    first_response: SlaTarget | None = None
    next_response: SlaTarget | None = None
    resolution: SlaTarget | None = None
    warnings: list[WarningSpec] = Field(default_factory=list)
    escalation: list[EscalationLevel] = Field(default_factory=list)

    @field_validator("warnings")
    @classmethod
    def _distinct_warnings(cls, value: list[SlaWarning]) -> list[SlaWarning]:
        twice = _repeated(warning.label for warning in value)
        if twice:
            raise ValueError(f"{', '.join(twice)} listed more than once")
        return value

    def target(self, name: SlaTargetName) -> SlaTarget | None:
        """The policy's `first_response`, `next_response` or `resolution` (None when it sets none)."""
        if name not in SLA_TARGETS:
            raise ValueError(f"unknown SLA target {name!r}; one of {', '.join(SLA_TARGETS)}")
        found: SlaTarget | None = getattr(self, name)
        return found


class Sla(Strict):
    """SLA policies, first match wins; the last one has no `match` and applies to everything else."""

    policies: list[SlaPolicy] = Field(min_length=1)

    @field_validator("policies")
    @classmethod
    def _default_last(cls, value: list[SlaPolicy]) -> list[SlaPolicy]:
        twice = _repeated(policy.name for policy in value)
        if twice:
            raise ValueError(f"policy names must be unique: {', '.join(twice)} used more than once")
        if value[-1].match is not None:
            raise ValueError(
                f"the last policy ({value[-1].name!r}) must have no `match`: it is the default for every other ticket"
            )
        for index, policy in enumerate(value[:-1]):
            if policy.match is None:
                raise ValueError(
                    f"only the last policy may have no `match`: {policy.name!r} (policy {index}) matches every "
                    "ticket, so the ones after it would never apply"
                )
        return value


@cache
def default_sla() -> Sla:
    """The SLA of a policy file that sets none."""
    return Sla.model_validate(
        {
            "policies": [
                {
                    "name": "default",
                    "first_response": {"within": "8h"},
                    "resolution": {"within": "5d", "time": "calendar"},
                    "warnings": ["80%"],
                }
            ]
        }
    )


class PriorityRule(Strict):
    """One condition (`form_field`, `vip`, `channels` or `keywords`) and the priority it gives; `form_field`
    keeps the priority a form's submitter chose."""

    form_field: Literal[True] | None = Field(default=None, description="a form's own priority, when not normal")
    vip: Literal[True] | None = Field(default=None, description="the sender is one of `vip_contacts`")
    channels: list[ChannelName] | None = Field(default=None, min_length=1)
    keywords: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]] | None = Field(
        default=None, min_length=1, description="whole words or phrases, any case, in the subject or the text"
    )
    priority: Priority | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> PriorityRule:
        given = [name for name in ("form_field", "vip", "channels", "keywords") if getattr(self, name) is not None]
        if len(given) != 1:
            listed = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of form_field, vip, channels, keywords (got {listed})")
        if self.form_field and self.priority is not None:
            raise ValueError("form_field keeps the form's own priority: leave `priority` out")
        if not self.form_field and self.priority is None:
            raise ValueError(f"{given[0]}: `priority` is required")
        return self


def _vip_contact(value: object) -> object:
    """A VIP contact as it is compared: a phone in E.164, an email address in lower case."""
    if not isinstance(value, str):
        return value
    found = identity.contact(value)
    if found is None:
        raise ValueError(f"{value!r} is neither an email address nor a phone number in international form (+...)")
    return found[1]


VipContact = Annotated[str, BeforeValidator(_vip_contact)]


class PriorityRules(Strict):
    """How a new ticket's priority is set: first matching rule wins, none → the message's own priority."""

    vip_contacts: list[VipContact] = Field(
        default_factory=list, description="phones in international form (+33...) or email addresses"
    )
    rules: list[PriorityRule] = Field(default_factory=list)


# An OAuth scope token (RFC 6749 3.3): printable ASCII but space, `"` and `\\`
Scope = Annotated[str, StringConstraints(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+$")]


class ConsoleSignIn(Strict):
    """The web console's sign-in in AWS, as one OIDC client of the issuer: the api function runs the authorization
    code flow with PKCE (`intake.console.oidc`). Register `<ApiUrl>/console/sign-in/callback` at the provider as
    the client's redirect URI (the stack's output ConsoleSignInCallbackUrl); a client secret, if the provider gave
    one, goes in the stack's ConsoleClient secret (`CONSOLE_CLIENT_SECRET`), never here."""

    client_id: Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,256}$")] = Field(
        description="the OIDC client's id at the provider (an app client, not the agent tools' audience)"
    )
    scopes: list[Scope] = Field(
        default=["openid", "email", "profile"],
        description="what the sign-in asks for; openid is required, email or profile name who acted",
    )

    @field_validator("scopes")
    @classmethod
    def _openid_asked(cls, scopes: list[str]) -> list[str]:
        if "openid" not in scopes:
            raise ValueError("must include openid (the sign-in reads the provider's ID token)")
        if repeated := _repeated(scopes):
            raise ValueError(f"names {', '.join(repeated)} more than once")
        return scopes


class Jwt(Strict):
    """Agent tools authenticate with a JWT (an OIDC provider's) instead of IAM SigV4, at the API gateway; with
    `console`, people sign in to the web console with the same provider."""

    issuer: Annotated[str, StringConstraints(pattern=r"^https://")]
    audience: list[str] = Field(min_length=1)
    console: ConsoleSignIn | None = None


class AgentApi(Strict):
    """How the agent routes (/tickets, /contacts, /quarantine) are authorized in AWS: IAM unless `jwt` is set."""

    jwt: Jwt | None = None


class Policy(Strict):
    version: Literal[1] = 1
    teams: dict[Name, Team] = Field(min_length=1)
    alerts: Alerts = default_model(Alerts)
    notifications: Notifications = default_model(Notifications)
    api: AgentApi = default_model(AgentApi)
    sla: Sla = default_model(default_sla)
    priority: PriorityRules = default_model(PriorityRules)

    # Each channel's section (`twilio`, `whatsapp`, `forms`, ...) is a field of `intake.policy.policy_model()`, the
    # model this one becomes with the sections of the channels in `intake.channels.registry`; each section's model is
    # in its channel's module (`Channel.section_type`).

    def section(self, name: str) -> Any:
        """A channel's section as validated by its model, or None when the file does not have it."""
        return getattr(self, name, None)

    def named_teams(self) -> list[tuple[str, str]]:
        """Where the file names a team outside `teams` (a channel's sections add theirs): (path, team)."""
        named = []
        for index, sla_policy in enumerate(self.sla.policies):
            teams = sla_policy.match.teams if sla_policy.match is not None else None
            named += [(f"sla.policies.{index}.match.teams", team) for team in teams or []]
        return named

    def named_channels(self) -> list[tuple[str, str]]:
        """Where the file names a kind of conversation (`sms`, `messenger`, ...): (path, kind)."""
        named = []
        for index, sla_policy in enumerate(self.sla.policies):
            kinds = sla_policy.match.channels if sla_policy.match is not None else None
            named += [(f"sla.policies.{index}.match.channels", kind) for kind in kinds or []]
        for index, rule in enumerate(self.priority.rules):
            named += [(f"priority.rules.{index}.channels", kind) for kind in rule.channels or []]
        return named
