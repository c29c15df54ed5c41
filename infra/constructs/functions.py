"""Functions: the receiver, ingest, email and api Lambdas, their dependencies layer, one role each.

Every function runs `functions/` (the `intake` package and the policy file beside it) on the runtime
and architecture of `infra.lambda_platform`, with the dependencies in one layer built by pip on
this machine (and the api function, when it signs people in to the console, the `console` extra's in a
second one). Each role can do what its handler does and nothing more; the grants below say what.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import bundling, lambda_platform
from infra.acknowledgments import acknowledge, acknowledge_for_grantee
from infra.constructs.deliver_later import DeliverLater
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.raw_archive import PROVIDER_MAIL, SES_MAIL, RawArchive
from infra.constructs.secrets import ProviderSecrets
from infra.constructs.sla_timers import SlaTimers
from infra.constructs.ticket_store import ItemGrant, TicketStore
from infra.ses_sending import grant_send_raw_email
from infra.stage import Stage
from intake.channels import mailgun, registry
from intake.config import ENV_PREFIX, Settings
from intake.resources import ARCHIVE, EMAIL_QUEUE, INBOUND_QUEUE, QUEUES
from intake.store import keys

# What the receiver archives raw requests of (`intake.inbox.raw_key`: raw/<yyyy/mm/dd>/<provider>/<receipt id>).
WEBHOOK_PROVIDERS = tuple(channel.name for channel in registry.channels() if channel.routes)

# Satisfaction surveys' items (intake.store): a contact's one survey per period.
SURVEY_CLAIM = "SURVEY"
# A ticket's one acknowledgment (intake.emails.acknowledge): claimed `TOKEN#ack#<ticket id>`.
ACK_CLAIM = "ack"
# What the receiver may do in the table, and nothing else: it is open to anyone on the internet. Survey links
# (/csat/{token}): read the linked ticket's team and reference (two attributes, by projection: a ticket's messages
# stay unreadable), record the first score and the comment (`CSAT#<ticket id>`, apart from the ticket's own items)
# and the team's day of scores (`CSATDAY#...`, what digests read). Mailgun: claim each webhook token once.
RECEIVER_ITEMS = (
    ItemGrant(("dynamodb:GetItem",), (f"{keys.TICKET}*",), attributes=("team", "reference")),
    ItemGrant(("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"), (f"{keys.CSAT}*",)),
    ItemGrant(("dynamodb:PutItem", "dynamodb:UpdateItem"), (f"{keys.CSAT_DAY}*",)),
    ItemGrant(("dynamodb:PutItem",), (keys.token_pk(mailgun.PROVIDER, "*"),)),
)

# What intake.observability names its logger and metrics; set again here for any other Powertools use.
SERVICE_NAME = "intake"
METRICS_NAMESPACE = "Intake"


@dataclass(frozen=True)
class FunctionSpec:
    construct_id: str
    handler: str
    description: str
    timeout: Duration
    memory_mb: int = 512


RECEIVER = FunctionSpec(
    "Receiver",
    "intake.handlers.receiver.handler",
    "Verifies provider webhooks, archives them raw, enqueues them and answers",
    Duration.seconds(10),
)
# SQS wants the queue's visibility timeout to be at least six times the consumer's timeout.
INGEST = FunctionSpec(
    "Ingest",
    "intake.handlers.ingest.handler",
    "Turns inbound messages into tickets (conditional writes, partial batch failures)",
    Duration.seconds(INBOUND_QUEUE.visibility_timeout_s // 6),
)
EMAIL = FunctionSpec(
    "Email",
    "intake.handlers.email.handler",
    "Turns messages SES received (S3 events) into tickets, threaded by Message-ID",
    Duration.seconds(EMAIL_QUEUE.visibility_timeout_s // 6),
)
API = FunctionSpec(
    "Api",
    "intake.handlers.api.handler",
    "Agent tools' API (tickets, their SLA, responses, quarantined email, team digests, failures) and health",
    Duration.seconds(10),
)


def dependencies_layer(
    scope: Construct, construct_id: str, *, project_root: Path, stage: Stage, extra: str | None = None
) -> lambda_.LayerVersion:
    """The one layer: pyproject's runtime dependencies pinned by uv.lock, built by pip for the platform. With
    `extra`, that optional group's packages (and theirs) that the one layer does not hold, for one function."""
    pyproject, lock = project_root / "pyproject.toml", project_root / "uv.lock"
    requirements = bundling.runtime_requirements(pyproject, lock, extra=extra)
    what = "runtime packages" if extra is None else f"'{extra}' packages"
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=lambda_.Code.from_asset(
            str(project_root),  # bundling reads pyproject.toml and uv.lock; nothing is copied
            asset_hash=bundling.layer_hash(requirements),
            bundling=bundling.layer_bundling(requirements),
        ),
        compatible_runtimes=[lambda_platform.RUNTIME],
        compatible_architectures=[lambda_platform.ARCHITECTURE],
        description=f"Intake's {len(requirements)} {what} pinned by uv.lock (boto3 is the runtime's)",
        removal_policy=stage.removal_policy,
    )


def function_code(functions_dir: Path, policy_file: Path) -> lambda_.Code:
    """`functions/` without caches and tests, with the policy file beside the package."""
    return lambda_.Code.from_asset(
        str(functions_dir),
        asset_hash=bundling.code_hash(functions_dir, policy_file),
        bundling=bundling.code_bundling(functions_dir, policy_file),
        exclude=list(bundling.CODE_EXCLUDES),
    )


def setting(field: str) -> str:
    """The environment variable `intake.config.Settings` reads `field` from: `INTAKE_<FIELD>`."""
    if field not in Settings.model_fields:
        raise KeyError(f"intake.config.Settings has no field {field!r}")
    return ENV_PREFIX + field.upper()


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        project_root: Path,
        policy_file: Path,
        store: TicketStore,
        archive: RawArchive,
        queues: InboundQueues,
        secrets: ProviderSecrets,
    ) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        self._project_root = project_root
        self._added: list[lambda_.Function] = []  # built here for other capabilities (add_function)
        self.layer = dependencies_layer(self, "Dependencies", project_root=project_root, stage=stage)
        self.code = function_code(project_root / "functions", policy_file)

        self.receiver = self._build_function(
            RECEIVER,
            {
                setting("bucket_name"): archive.bucket.bucket_name,
                setting("inbound_queue_url"): queues.inbound.queue_url,
            },
        )
        # each provider's requests under its own raw keys, forms' uploads under attachments/; never raw/ses/
        archive.grant_receive(self.receiver, WEBHOOK_PROVIDERS)
        self.receiver.add_environment(setting("table_name"), store.table.table_name)
        store.grant(self.receiver, RECEIVER_ITEMS)
        queues.grant_send(self.receiver, INBOUND_QUEUE)
        secrets.grant_webhook_secrets(self.receiver)  # every webhook's signature
        secrets.grant_survey_links(self.receiver)  # survey links' signature (when a team asks for surveys)

        self.ingest = self._build_function(
            INGEST,
            {setting("table_name"): store.table.table_name, setting("bucket_name"): archive.bucket.bucket_name},
        )
        store.grant_read_write(self.ingest)
        queues.consume(INBOUND_QUEUE, self.ingest)
        # WhatsApp media and Twilio voicemails: downloaded with their API credentials, stored under attachments/
        archive.grant_archive(self.ingest, (ARCHIVE.attachments_prefix,))
        secrets.grant_channel_apis(self.ingest, "ingest")
        # Email through SendGrid or Mailgun (EmailArrived): the MIME the receiver stored, parsed as SES's is
        archive.grant_read_received_mail(self.ingest, (PROVIDER_MAIL,))

        self.email = self._build_function(
            EMAIL,
            {setting("table_name"): store.table.table_name, setting("bucket_name"): archive.bucket.bucket_name},
        )
        store.grant_read_write(self.email)
        queues.consume(EMAIL_QUEUE, self.email)
        archive.grant_read_received_mail(self.email)
        archive.grant_archive(self.email, (ARCHIVE.attachments_prefix,))

        self.api = self._build_function(
            API,
            {setting("table_name"): store.table.table_name, setting("bucket_name"): archive.bucket.bucket_name},
        )
        # Agents' actions change tickets, their timer items and events; releasing a quarantined email runs the
        # email ingest again: its MIME (SES's or a provider's) is read, its attachments stored, its ticket written.
        store.grant_read_write(self.api)
        archive.grant_read_received_mail(self.api, (SES_MAIL, PROVIDER_MAIL))
        archive.grant_archive(self.api, (ARCHIVE.attachments_prefix,))
        # Operators' /failures: every queue's dead letters, read and replayed onto their own queue
        queues.grant_redrive(self.api)
        for spec in QUEUES:
            self.api.add_environment(setting(f"{spec.name}_queue_url"), queues.queues[spec.name].queue_url)
            self.api.add_environment(setting(f"{spec.name}_dlq_url"), queues.dead_letters[spec.name].queue_url)

        self._acknowledge_runtime()

    @property
    def all(self) -> list[lambda_.Function]:
        return [self.receiver, self.ingest, self.email, self.api, *self._added]

    def add_function(self, spec: FunctionSpec, environment: dict[str, str]) -> lambda_.Function:
        """A function another capability grants to (e.g. Notifications' notifier), built like these ones."""
        function = self._build_function(spec, environment)
        self._added.append(function)
        self._acknowledge_runtime_of(function)
        return function

    def control_sla_timers(self, timers: SlaTimers) -> None:
        """Those that create tickets (ingest, email) start timers; the api stops them on an agent's response."""
        for function in (self.ingest, self.email, self.api):
            timers.grant_control(function)
            function.add_environment(setting("state_machine_arn"), timers.state_machine.state_machine_arn)

    def schedule_surveys(self, later: DeliverLater, store: TicketStore) -> None:
        """Resolving a ticket schedules its satisfaction survey on the deliver-later machine, and only an agent's
        action resolves one (the api: `Tracker.act`); ingest and email never do, so they get no machine. Scheduling
        that failed gives the contact's survey claim back: DeleteItem, only on those `SURVEY#<contact_id>` items."""
        later.grant_start(self.api)
        self.api.add_environment(setting("later_machine_arn"), later.state_machine.state_machine_arn)
        store.grant_items(self.api, ["dynamodb:DeleteItem"], [f"{SURVEY_CLAIM}#*"])

    def grant_acknowledgments(self, senders: Iterable[str], store: TicketStore) -> None:
        """Those that turn email into tickets (email: SES; ingest: SendGrid and Mailgun; api: a released
        quarantined email) acknowledge a new ticket from its team's address: `ses:SendRawEmail` as `senders` only;
        and an acknowledgment whose sending failed gives its claim back (so the queue's retry sends it): DeleteItem,
        on those `TOKEN#ack#<ticket>` claims only."""
        senders = list(senders)
        for function in (self.ingest, self.email, self.api):
            grant_send_raw_email(self, function, senders)
            store.grant_items(function, ["dynamodb:DeleteItem"], [keys.token_pk(ACK_CLAIM, "*")])

    def serve_console(self, archive: RawArchive, secrets: ProviderSecrets) -> None:
        """The web console (routed when the policy file has `api.jwt.console`) is the api function's: it signs
        people in with the OIDC provider itself (the console's client secret, if any, is its alone), shows the
        pictures and offers the files customers sent, read from the archive (`GET /console/tickets/.../files/...`)."""
        self.api.add_environment(setting("console_sign_in"), "oidc")
        self.api.add_layers(  # PyJWT and cryptography: the api's alone (the one layer stays small for the others)
            dependencies_layer(
                self, "ConsoleDependencies", project_root=self._project_root, stage=self._stage, extra="console"
            )
        )
        secrets.grant_console_client(self.api)
        archive.grant_read_attachments(self.api)

    def set_public_base_url(self, url: str) -> None:
        for function in self.all:
            function.add_environment(setting("public_base_url"), url)

    # ------------------------------------------------------------------ builders

    def _build_function(self, spec: FunctionSpec, environment: dict[str, str]) -> lambda_.Function:
        role = iam.Role(
            self,
            f"{spec.construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Intake {self._stage.name} {spec.construct_id.lower()} function: {spec.description}",
        )
        log_group = logs.LogGroup(
            self,
            f"{spec.construct_id}Logs",
            retention=self._stage.log_retention,
            removal_policy=self._stage.removal_policy,
        )
        log_group.grant_write(role)
        return lambda_.Function(
            self,
            spec.construct_id,
            runtime=lambda_platform.RUNTIME,
            architecture=lambda_platform.ARCHITECTURE,
            handler=spec.handler,
            code=self.code,
            layers=[self.layer],
            role=role,
            log_group=log_group,
            memory_size=spec.memory_mb,
            timeout=spec.timeout,
            description=spec.description,
            # X-Ray: Lambda's own segments, and the handler's AWS calls (intake.observability.traced)
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": self._stage.log_level,
                # pydantic looks for plugins in every installed package's metadata at its first model: there are none
                "PYDANTIC_DISABLE_PLUGINS": "__all__",
                setting("config"): f"{lambda_platform.TASK_ROOT}/{bundling.POLICY_IN_ASSET}",
                **environment,
            },
        )

    def _acknowledge_runtime(self) -> None:
        for function in self.all:
            self._acknowledge_runtime_of(function)

    @staticmethod
    def _acknowledge_runtime_of(function: lambda_.Function) -> None:
        acknowledge(
            function,
            "AwsSolutions-L1",
            f"Python {lambda_platform.PYTHON_VERSION} on purpose: the layer's compiled wheels (pydantic-core, "
            "PyYAML) are built for it; moving runtimes is a change to infra/lambda_platform.py, which "
            "rebuilds the layer for the new one.",
        )
        acknowledge_for_grantee(
            function,
            "AwsSolutions-IAM5[Resource::*]",
            "Added by CDK for active tracing: X-Ray's PutTraceSegments and PutTelemetryRecords support no "
            "resource-level permissions; no data action is on '*'.",
        )
