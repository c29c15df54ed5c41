"""Every channel route of the registry is an API Gateway route of the stack, open (its own check), and every
configured channel's setup URLs are stack outputs."""

from __future__ import annotations

from intake.channels import registry
from tests.infra.synthesis import Synthesized


def test_every_channel_route_is_an_open_route_of_the_stack(synthesized: Synthesized) -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]["AuthorizationType"]
        for r in synthesized.resources("AWS::ApiGatewayV2::Route").values()
    }
    for channel, route in registry.routes():
        assert routes.get(route.key) == "NONE", f"{channel.name}: {route.key}"


def test_every_configured_channel_tells_the_operator_where_to_point_its_provider(synthesized: Synthesized) -> None:
    outputs = synthesized.template["Outputs"]
    policy = synthesized.policy_file.policy
    for channel in registry.channels():
        section = policy.section(channel.section)
        for name, path, _ in channel.setup(section) if section is not None else []:
            assert name in outputs, f"{channel.name}: no output {name}"
            assert path in str(outputs[name]["Value"]), name
