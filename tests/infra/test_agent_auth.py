"""The agent routes' authorization: IAM (SigV4) by default, an OIDC provider's JWTs when the policy file says so;
and the console's routes, with `api.jwt.console`, left to the api function's own OIDC sign-in.

A small stack of its own (the WebhookApi construct, the provider secrets and two stand-in functions), so the
session's one synthesis of the whole app keeps the repository's policy file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from intake.config import ConsoleSignIn, Jwt

ISSUER = "https://auth.example.com/"
AGENTS_ONLY = Jwt(issuer=ISSUER, audience=["intake-agents"])
WITH_CONSOLE = Jwt(issuer=ISSUER, audience=["intake-agents"], console=ConsoleSignIn(client_id="intake-console"))
CONSOLE_ROUTES = {"GET /", "GET /console/{proxy+}", "POST /console/{proxy+}"}


def _template(jwt: Jwt | None) -> Any:
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Template

    stack = Stack(App(), "AgentAuth")
    _build(stack, jwt)
    return Template.from_stack(stack).to_json()


def _build(stack: Any, jwt: Jwt | None) -> Any:
    """The WebhookApi and the provider secrets for a policy file with this `api.jwt`, the console's client secret
    granted to the api function as the stack does (`Functions.serve_console`); the api function."""
    from aws_cdk import aws_lambda as lambda_

    from infra.constructs.secrets import ProviderSecrets
    from infra.constructs.webhook_api import WebhookApi
    from infra.stage import stage_named
    from intake.config import AgentApi
    from intake.policy import load_policy
    from tests.infra.synthesis import ROOT

    code = lambda_.Code.from_inline("def handler(event, context):\n    return {}\n")
    receiver, api = (
        lambda_.Function(stack, name, runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler", code=code)
        for name in ("Receiver", "Api")
    )
    web = WebhookApi(stack, "WebhookApi", stage=stage_named("dev"), receiver=receiver, api=api, jwt=jwt)
    policy = load_policy(ROOT / "intake.yaml").model_copy(update={"api": AgentApi(jwt=jwt)})
    secrets = ProviderSecrets(stack, "ProviderSecrets", stage=stage_named("dev"), policy=policy)
    if web.serves_console:
        secrets.grant_console_client(api)
    return api


def _authorization(template: Any) -> dict[str, str]:
    return {
        r["Properties"]["RouteKey"]: r["Properties"].get("AuthorizationType", "NONE")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApiGatewayV2::Route"
    }


@pytest.mark.parametrize(
    ("jwt", "expected"), [(None, "AWS_IAM"), (Jwt(issuer=ISSUER, audience=["intake-agents"]), "JWT")]
)
def test_agent_routes_take_iam_unless_the_policy_names_a_jwt_issuer(jwt: Jwt | None, expected: str) -> None:
    template = _template(jwt)

    routes = _authorization(template)
    agents = ("GET /tickets", "POST /tickets/{ticket_id}/events", "GET /quarantine", "POST /digests/{team}/{period}")
    assert {routes[key] for key in agents} == {expected}
    assert routes["POST /webhooks/whatsapp"] == "NONE"  # providers sign their own requests, whatever agents use
    authorizers = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Authorizer"
    ]
    if jwt is None:
        assert authorizers == []
    else:
        [authorizer] = authorizers
        assert authorizer["AuthorizerType"] == "JWT"
        assert authorizer["JwtConfiguration"] == {"Issuer": ISSUER, "Audience": ["intake-agents"]}
        assert authorizer["IdentitySource"] == ["$request.header.Authorization"]


@pytest.mark.parametrize("jwt", [None, AGENTS_ONLY, WITH_CONSOLE], ids=["iam", "jwt", "jwt-console"])
def test_the_console_is_routed_with_a_console_client_only_and_without_a_gateway_authorizer(jwt: Jwt | None) -> None:
    template = _template(jwt)
    routes = _authorization(template)

    if jwt is None or jwt.console is None:  # a browser cannot sign SigV4 and no client signs anyone in: no console
        assert not CONSOLE_ROUTES & set(routes)
        return
    # the api function checks the console's session cookie itself (the JWT authorizer reads a bearer header)
    assert {routes[key] for key in CONSOLE_ROUTES} == {"NONE"}
    assert {routes[key] for key in ("GET /tickets", "POST /tickets/{ticket_id}/events", "GET /failures")} == {"JWT"}


def test_the_console_is_throttled_and_alarmed_as_an_agents_route() -> None:
    template = _template(WITH_CONSOLE)
    resources = template["Resources"].values()

    [stage] = [r["Properties"] for r in resources if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert set(stage["RouteSettings"]) == set(_authorization(template))
    for key in ("GET /", "GET /console/{proxy+}", "POST /console/{proxy+}"):
        assert stage["RouteSettings"][key] == stage["RouteSettings"]["GET /tickets"], key
    [agents] = [
        r["Properties"]["FilterPattern"]
        for r in resources
        if r["Type"] == "AWS::Logs::MetricFilter"
        and r["Properties"]["MetricTransformations"][0]["MetricName"] == "AgentsServerErrors"
    ]
    assert '$.routeKey = "POST /console/{proxy+}"' in agents and len(agents) <= 1024


def test_a_jwt_issuer_must_be_https() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="issuer"):
        Jwt(issuer="http://auth.example.com/", audience=["x"])


def test_the_api_function_may_read_the_console_client_secret_and_no_other() -> None:
    template = _template(WITH_CONSOLE)
    resources = template["Resources"]

    # Given the api function's role, the console's client secret granted to it
    [secret] = [
        name
        for name, r in resources.items()
        if r["Type"] == "AWS::SecretsManager::Secret" and "OIDC client secret" in r["Properties"]["Description"]
    ]
    [policy] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Policy"]
    [api] = [
        r["Properties"]
        for name, r in resources.items()
        if name.startswith("Api") and r["Type"] == "AWS::Lambda::Function"
    ]

    # Then its only statement reads that one secret, named to the function by its setting
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Ref": secret}
    assert set(statement["Action"]) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    assert api["Environment"]["Variables"]["INTAKE_CONSOLE_SECRET_ARN"] == {"Ref": secret}
    assert policy["Roles"] == [{"Ref": api["Role"]["Fn::GetAtt"][0]}]


def test_the_console_routes_and_its_client_secret_leave_cdk_nag_nothing_unacknowledged(tmp_path: Path) -> None:
    from aws_cdk import App, Stack, Validations
    from cdk_nag import AwsSolutionsChecks

    from infra.acknowledgments import acknowledge
    from tests.infra.synthesis import cdk_context

    # Given the console routed and its client secret granted, as the stack builds them, with cdk-nag on
    app = App(context=cdk_context(), outdir=str(tmp_path))
    stack = Stack(app, "Console")
    _build(stack, WITH_CONSOLE)
    for name in ("Receiver", "Api"):  # the stand-ins (the real functions have their own acknowledgments)
        function = stack.node.find_child(name)
        acknowledge(function, "AwsSolutions-L1", "A stand-in function of this test, on the stack's one runtime.")
        acknowledge(
            function.node.find_child("ServiceRole"),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "A stand-in function of this test: the stack's functions have roles of their own, with no managed policy.",
        )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))

    # When it is synthesized
    app.synth()

    # Then cdk-nag reports nothing; the console's routes say why they have no gateway authorizer
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])] == []
    template = json.loads((tmp_path / "Console.template.json").read_text())
    reasons = {
        r["Properties"]["RouteKey"]: [
            (rule["id"], rule["reason"]) for rule in r["Metadata"]["cdk_nag"]["rules_to_suppress"]
        ]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApiGatewayV2::Route" and r["Properties"]["RouteKey"] in CONSOLE_ROUTES
    }
    assert set(reasons) == CONSOLE_ROUTES
    for key, [(rule, reason)] in reasons.items():
        assert rule == "AwsSolutions-APIG4" and "checks the session" in reason, key
