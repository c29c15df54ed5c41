"""WebhookApi: the API Gateway HTTP API in front of the receiver and api functions.

Webhooks, /healthz and the satisfaction survey links (/csat/{token}) are open at the gateway (providers and
customers cannot sign SigV4; the receiver checks each provider's own signature before it stores anything, and
each survey token's HMAC and expiry); /tickets, /contacts, /quarantine, /digests and /failures require IAM (SigV4)
or the JWTs of the policy file's `api.jwt`. With `api.jwt.console`, the web console (`GET /`, `/console/...`) is
routed with no gateway authorizer: a browser sends cookies, not the bearer header the JWT authorizer reads, so the
api function checks the console's OIDC session itself on every console request (`intake.handlers.console`).

Each route belongs to one group, which has its own throttle (the stage's route settings) and its own server-error
and latency metrics (metric filters on the access logs, which Observability alarms on): providers' webhooks,
what anyone may call (public forms, survey links, health), and agents' tools (the console among them). A burst on
one group is refused with 429s there and leaves the others their rate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import jsii
from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.acknowledgments import acknowledge
from infra.stage import Stage
from intake.channels import forms, registry
from intake.config import Jwt
from intake.console import CALLBACK_PATH

# The stage's default, for what no route matches (a 404 costs a Lambda-free answer); each route has its group's.
THROTTLE_RATE = 50
THROTTLE_BURST = 100
# Where the groups' metrics go (the namespace the functions' business metrics share).
METRICS_NAMESPACE = "Intake"


@dataclass(frozen=True)
class RouteGroup:
    """Routes that share a throttle (requests per second per route, and burst) and alarms."""

    name: str  # PascalCase: construct ids and metric names (`ProviderWebhooksServerErrors`)
    rate: int
    burst: int
    latency_ms: int  # the p90 answer time past which its alarm goes off
    why: str


PROVIDER_WEBHOOKS = RouteGroup(
    "ProviderWebhooks",
    rate=50,
    burst=100,
    latency_ms=2000,
    why="Twilio, Meta, SendGrid and Mailgun: a provider's retry storm is absorbed by the burst, then 429s, which "
    "they retry later. Twilio waits 15 s for TwiML and Meta retries an answer that is slow: the receiver answers in "
    "milliseconds, so 2 s at p90 means the archive or the queue is struggling.",
)
PUBLIC = RouteGroup(
    "Public",
    rate=10,
    burst=20,
    latency_ms=3000,
    why="Anyone may call these (public web forms, satisfaction survey links, health checks): a script posting a public "
    "form is held to 10 a second per route, each of which would otherwise be archived and queued. People submit a "
    "form or follow a link a few times a minute.",
)
AGENTS = RouteGroup(
    "Agents",
    rate=25,
    burst=50,
    latency_ms=5000,
    why="Agents' tools and operators (IAM or JWT): a runaway script is held to its own 25 a second per route and "
    "cannot take the providers' or customers' rate. Lists and SLA explanations read more than a webhook writes.",
)
ROUTE_GROUPS = (PROVIDER_WEBHOOKS, PUBLIC, AGENTS)

CSAT_PATH = "/csat/{token}"  # a satisfaction survey link (GET: the score; POST: the comment form)
DIGEST_PATH = "/digests/{team}/{period}"  # period: daily or weekly
_CSAT_OPEN = (
    "Customers follow survey links from an email, without credentials. The token is the authorization: HMAC-SHA256 "
    "signed with CSAT_SECRET over the ticket, score and expiry, checked by the receiver (forged: 403, expired: 410); "
    "it can only record or comment that one ticket's first score."
)
# HTTP API context variables only: no headers, no bodies, no query strings (they can carry PII).
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
}
# Written as JSON numbers, not strings, so that metric filters compare them as numbers (`$.status >= 500`); API
# Gateway always has a value for these two (`integrationLatency` is "-" when no integration ran: it stays a string).
NUMERIC_FIELDS = ("status", "responseLatency")


def access_log_format() -> str:
    """ACCESS_LOG_FORMAT as the one-line JSON API Gateway fills in, NUMERIC_FIELDS unquoted."""
    fields = [
        f"{json.dumps(name)}: {value if name in NUMERIC_FIELDS else json.dumps(value)}"
        for name, value in ACCESS_LOG_FORMAT.items()
    ]
    return "{" + ", ".join(fields) + "}"


@dataclass(frozen=True)
class Route:
    method: apigwv2.HttpMethod
    path: str
    target: str  # "receiver" or "api"
    open_because: str | None = None  # None: IAM (SigV4) at the gateway
    group: RouteGroup = AGENTS

    @property
    def key(self) -> str:
        """`POST /webhooks/whatsapp`: how the stage's route settings and the access logs name it."""
        return f"{self.method.value} {self.path}"


ROUTES = (
    *(  # every channel's webhooks (intake.channels.registry)
        Route(
            apigwv2.HttpMethod(route.method),
            route.path,
            "receiver",
            open_because=route.open_because,
            group=PUBLIC if route.public else PROVIDER_WEBHOOKS,
        )
        for _, route in registry.routes()
    ),
    Route(apigwv2.HttpMethod.GET, CSAT_PATH, "receiver", open_because=_CSAT_OPEN, group=PUBLIC),
    Route(apigwv2.HttpMethod.POST, CSAT_PATH, "receiver", open_because=_CSAT_OPEN, group=PUBLIC),
    Route(
        apigwv2.HttpMethod.GET,
        "/healthz",
        "api",
        open_because="Load balancers and uptime checks call it without credentials; it answers "
        '{"status": "ok"} and reads nothing.',
        group=PUBLIC,
    ),
    Route(apigwv2.HttpMethod.GET, "/tickets", "api"),
    Route(apigwv2.HttpMethod.GET, "/contacts/{contact_id}", "api"),
    Route(apigwv2.HttpMethod.GET, "/tickets/{ticket_id}", "api"),
    # An agent's response, pending, resolution, reopening: recorded on the ticket, SLA timers stopped/started
    Route(apigwv2.HttpMethod.POST, "/tickets/{ticket_id}/events", "api"),
    # An agent's reply: recorded on the ticket and queued for the sender (202), sent on the customer's channel
    Route(apigwv2.HttpMethod.POST, "/tickets/{ticket_id}/replies", "api"),
    # Why a ticket's clocks stand where they do: policy, targets, business time used and left
    Route(apigwv2.HttpMethod.GET, "/tickets/{ticket_id}/sla", "api"),
    # Email held back by its spam/virus/DMARC verdicts; releasing one makes it a ticket (and acknowledges it)
    Route(apigwv2.HttpMethod.GET, "/quarantine", "api"),
    Route(apigwv2.HttpMethod.POST, "/quarantine/{quarantine_id}/release", "api"),
    # A team's digest: a preview sent nowhere (GET), or published now (POST: archived, announced, mailed once)
    Route(apigwv2.HttpMethod.GET, DIGEST_PATH, "api"),
    Route(apigwv2.HttpMethod.POST, DIGEST_PATH, "api"),
    # Operators: messages dead-lettered after failing, and their replay onto their queue
    Route(apigwv2.HttpMethod.GET, "/failures", "api"),
    Route(apigwv2.HttpMethod.POST, "/failures/{failure_id}/replay", "api"),
)


# The web console (the api function's HTML pages, `intake.handlers.console`): routed only when the policy file's
# `api.jwt.console` names the OIDC client people sign in with (IAM SigV4 is for tools: a browser cannot sign it).
_CONSOLE_OPEN = (
    "Browsers send the console's session cookie, not the Authorization header the gateway's JWT authorizer reads. "
    "The api function checks the session on every console request (the provider's ID token: signature against its "
    "JWKS, issuer, audience, expiry): a page without one is sent to the OIDC sign-in, a POST is refused (401); POSTs "
    "must also come from the console's own origin."
)
CONSOLE_ROUTES = (
    Route(apigwv2.HttpMethod.GET, "/", "api", open_because=_CONSOLE_OPEN),
    Route(apigwv2.HttpMethod.GET, "/console/{proxy+}", "api", open_because=_CONSOLE_OPEN),
    Route(apigwv2.HttpMethod.POST, "/console/{proxy+}", "api", open_because=_CONSOLE_OPEN),
)


def _agent_authorizer(jwt: Jwt | None) -> apigwv2.IHttpRouteAuthorizer:
    """IAM (SigV4) by default; the policy file's `api.jwt` puts an OIDC provider's JWTs in its place."""
    if jwt is None:
        return authorizers.HttpIamAuthorizer()
    return authorizers.HttpJwtAuthorizer("AgentJwt", jwt.issuer, jwt_audience=list(jwt.audience))


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    def __init__(self, group: logs.ILogGroup) -> None:
        self._group = group

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return apigwv2.LogGroupLogDestination(self._group)

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(access_log_format())


def _cors(origins: Sequence[str]) -> apigwv2.CorsPreflightOptions | None:
    """Public forms are posted by browsers from their sites' origins (the policy file lists them)."""
    if not origins:
        return None
    return apigwv2.CorsPreflightOptions(
        allow_origins=list(origins),
        allow_methods=[apigwv2.CorsHttpMethod.POST],
        allow_headers=["content-type"],
        max_age=Duration.days(1),
    )


class WebhookApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        receiver: lambda_.IFunction,
        api: lambda_.IFunction,
        browser_origins: Sequence[str] = (),
        jwt: Jwt | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=stage.log_retention, removal_policy=stage.removal_policy
        )
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            description=f"Intake {stage.name}: provider webhooks and the agent tools' API",
            create_default_stage=False,
            cors_preflight=_cors(browser_origins),
        )
        self.stage = self._build_stage()
        self.serves_console = jwt is not None and jwt.console is not None
        self.routes = (*ROUTES, *CONSOLE_ROUTES) if self.serves_console else ROUTES
        self._build_routes(
            {
                "receiver": integrations.HttpLambdaIntegration("Receiver", receiver),
                "api": integrations.HttpLambdaIntegration("Api", api),
            },
            _agent_authorizer(jwt),
            self.routes,
        )
        self._throttle_each_route()
        self.server_errors = {group.name: self._build_server_errors(group) for group in ROUTE_GROUPS}
        self.latency = {group.name: self._build_latency(group) for group in ROUTE_GROUPS}

    @property
    def url(self) -> str:
        """`https://<id>.execute-api.<region>.amazonaws.com`, no trailing slash."""
        return self.http_api.api_endpoint

    @property
    def console_callback_url(self) -> str:
        """Where the OIDC provider sends a browser back after signing in: the console client's redirect URI."""
        return self.url + CALLBACK_PATH

    def form_webhook_url(self, form_id: str) -> str:
        return self.url + forms.PATH.replace("{form_id}", form_id)

    def _build_stage(self) -> apigwv2.HttpStage:
        return apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=THROTTLE_RATE, burst_limit=THROTTLE_BURST),
            access_log_settings=_AccessLogs(self.access_logs),
        )

    def _build_routes(
        self,
        targets: dict[str, apigwv2.HttpRouteIntegration],
        agents: apigwv2.IHttpRouteAuthorizer,
        routes: Sequence[Route],
    ) -> None:
        for route in routes:
            (built,) = self.http_api.add_routes(
                path=route.path,
                methods=[route.method],
                integration=targets[route.target],
                authorizer=agents if route.open_because is None else None,
            )
            if route.open_because is not None:
                acknowledge(built, "AwsSolutions-APIG4", route.open_because)
            # The stage's route settings name the route: CloudFormation must create it first.
            stage, created = self.stage.node.default_child, built.node.default_child
            assert isinstance(stage, apigwv2.CfnStage) and isinstance(created, apigwv2.CfnRoute)
            stage.node.add_dependency(created)

    def _throttle_each_route(self) -> None:
        """Each route at its group's rate and burst (HTTP APIs throttle per route, through the stage)."""
        stage = self.stage.node.default_child
        assert isinstance(stage, apigwv2.CfnStage)
        stage.route_settings = {  # a JSON map in CloudFormation's own spelling (CDK passes it as it is)
            route.key: {"ThrottlingRateLimit": route.group.rate, "ThrottlingBurstLimit": route.group.burst}
            for route in self.routes
        }

    # ------------------------------------------------------------------ metrics (from the access logs)

    def _build_server_errors(self, group: RouteGroup) -> cloudwatch.Metric:
        """Answers 500 and over (a function that failed, timed out or was throttled, a store that was unavailable)
        on the group's routes, as the access log has them: what the callers saw, whatever failed."""
        metric_filter = logs.MetricFilter(
            self,
            f"{group.name}ServerErrors",
            log_group=self.access_logs,
            metric_namespace=METRICS_NAMESPACE,
            metric_name=f"{group.name}ServerErrors",
            filter_pattern=logs.FilterPattern.all(
                logs.FilterPattern.number_value("$.status", ">=", 500), _on(group, self.routes)
            ),
            metric_value="1",
        )
        return metric_filter.metric(period=Duration.minutes(1), statistic="Sum")

    def _build_latency(self, group: RouteGroup) -> cloudwatch.Metric:
        """How long the group's callers waited for each answer (ms)."""
        metric_filter = logs.MetricFilter(
            self,
            f"{group.name}Latency",
            log_group=self.access_logs,
            metric_namespace=METRICS_NAMESPACE,
            metric_name=f"{group.name}Latency",
            filter_pattern=logs.FilterPattern.all(
                logs.FilterPattern.number_value("$.responseLatency", ">=", 0), _on(group, self.routes)
            ),
            metric_value="$.responseLatency",
            unit=cloudwatch.Unit.MILLISECONDS,
        )
        return metric_filter.metric(period=Duration.minutes(5), statistic="p90")


def _on(group: RouteGroup, routes: Sequence[Route]) -> logs.JsonPattern:
    """An access log line of one of the group's routes."""
    return logs.FilterPattern.any(
        *(logs.FilterPattern.string_value("$.routeKey", "=", route.key) for route in routes if route.group is group)
    )
