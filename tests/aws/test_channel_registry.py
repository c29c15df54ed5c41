"""Every channel of the registry is wired everywhere the registry is walked: the receiver takes its signed samples,
the OpenAPI document has its routes, intake.yaml's schema its section, the signing secret its keys; a channel that
sends replies says where they go. (The stack's routes and outputs: tests/infra/test_channel_registry.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from intake import runtime
from intake.channels import registry
from intake.channels.contract import Channel
from intake.local import samples
from intake.schemas import openapi, policy_schema
from intake.secrets import Secrets
from tests.aws.conftest import SECRETS, Stack

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_CHANNELS = [channel for channel in registry.channels() if channel.routes]


def _samples(channel: Channel) -> list[Path]:
    """The channel's samples: those in its folder whose path is one of its routes."""
    files = sorted((ROOT / "events" / channel.samples).glob("*.json")) if channel.samples else []
    return [
        path
        for path in files
        if (found := registry.route_for("POST", samples.load(path)["path"].split("?", 1)[0])) and found[0] is channel
    ]


@pytest.mark.parametrize("channel", WEBHOOK_CHANNELS, ids=lambda channel: channel.name)
def test_the_receiver_takes_every_signed_sample_of_the_channel(stack: Stack, channel: Channel) -> None:
    # Given the channel's samples, signed as its provider signs them
    found = _samples(channel)
    assert found, f"{channel.name}: no sample under events/{channel.samples}"
    for path in found:
        prepared = samples.prepare(samples.load(path), runtime.policy(), Secrets(environ=SECRETS))
        # When each is posted to the receiver
        status, _, _ = stack.post_raw(prepared.path, prepared.body, prepared.headers)
        # Then it is accepted, so the route exists, the signature checks out and the policy has its section
        assert 200 <= status < 300, f"{path.name}: {status}"
    # And the same request unsigned is refused as forged or unauthenticated, storing nothing
    unsigned = samples.prepare(samples.load(found[0]), runtime.policy(), Secrets(environ=SECRETS), signed=False)
    before = stack.objects()
    status, body, _ = stack.post_raw(unsigned.path, unsigned.body, unsigned.headers)
    assert status in (401, 403) and stack.objects() == before, body


@pytest.mark.parametrize("channel", WEBHOOK_CHANNELS, ids=lambda channel: channel.name)
def test_every_route_of_the_channel_is_in_the_openapi_document(channel: Channel) -> None:
    paths = openapi()["paths"]
    for route in channel.routes:
        operation = paths[route.path][route.method.lower()]
        assert operation["operationId"] == route.operation and operation["tags"] == ["webhooks"]


@pytest.mark.parametrize("channel", registry.channels(), ids=lambda channel: channel.name)
def test_the_channel_has_its_section_in_the_policy_schema_and_its_keys_in_the_signing_secret(channel: Channel) -> None:
    from infra.constructs.secrets import secret_keys

    assert channel.section in policy_schema()["properties"]
    policy = runtime.policy()
    section = policy.section(channel.section)
    assert section is not None, f"intake.yaml has no {channel.section} section"
    assert set(channel.webhook_secrets(section)) <= set(secret_keys(policy))
    assert channel.kinds, "a channel makes at least one kind of conversation"


@pytest.mark.parametrize("channel", [c for c in registry.channels() if c.api_secrets], ids=lambda c: c.name)
def test_a_channel_that_calls_its_api_names_the_secret_it_keeps_its_credentials_in(channel: Channel) -> None:
    assert channel.api_secret_id and channel.api_readers


@pytest.mark.parametrize("channel", [c for c in registry.channels() if c.send is not None], ids=lambda c: c.name)
def test_a_channel_that_sends_replies_says_where_they_go(channel: Channel) -> None:
    assert channel.address is not None, "its conversations are answered through its `address`"
