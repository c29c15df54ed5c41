"""The agent routes' authorization: IAM (SigV4) by default, an OIDC provider's JWTs when the policy file says so.

A small stack of its own (the WebhookApi construct and two stand-in functions), so the session's one
synthesis of the whole app keeps the repository's policy file."""

from __future__ import annotations

from typing import Any

import pytest

from intake.config import Jwt

ISSUER = "https://auth.example.com/"


def _template(jwt: Jwt | None) -> Any:
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk.assertions import Template

    from infra.constructs.webhook_api import WebhookApi
    from infra.stage import stage_named

    stack = Stack(App(), "AgentAuth")
    code = lambda_.Code.from_inline("def handler(event, context):\n    return {}\n")
    receiver, api = (
        lambda_.Function(stack, name, runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler", code=code)
        for name in ("Receiver", "Api")
    )
    WebhookApi(stack, "WebhookApi", stage=stage_named("dev"), receiver=receiver, api=api, jwt=jwt)
    return Template.from_stack(stack).to_json()


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


@pytest.mark.parametrize("jwt", [None, Jwt(issuer=ISSUER, audience=["intake-agents"])], ids=["iam", "jwt"])
def test_the_console_is_routed_behind_the_jwt_authorizer_only(jwt: Jwt | None) -> None:
    routes = _authorization(_template(jwt))

    console = {"GET /", "GET /console/{proxy+}", "POST /console/{proxy+}"}
    if jwt is None:  # a browser cannot sign SigV4: without an OIDC provider there is no console in AWS
        assert not console & set(routes)
    else:
        assert {routes[key] for key in console} == {"JWT"}


def test_the_console_is_throttled_and_alarmed_as_an_agents_route() -> None:
    template = _template(Jwt(issuer=ISSUER, audience=["intake-agents"]))
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
