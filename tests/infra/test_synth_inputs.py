"""What the synth reads before it builds anything: the stage, the policy file, the layer's pins."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from intake.config import ConfigError
from tests.infra.synthesis import ROOT, cdk_context

BROKEN_POLICY = """\
version: 1
teams:
  support: {name: Support, default_region: France}
forms:
  contact:
    team: sales
    auth: {kind: signed, tolerance_s: -1}
"""


def test_a_broken_policy_file_stops_the_synth_naming_each_error_path(tmp_path: Path) -> None:
    from infra.app import build_app
    from infra.policy_file import describe_policy_error

    policy = tmp_path / "intake.yaml"
    policy.write_text(BROKEN_POLICY)

    with pytest.raises(ConfigError) as raised:
        build_app(cdk_context(policy=str(policy)), outdir=str(tmp_path / "cdk.out"))

    message = describe_policy_error(raised.value)
    assert message.startswith(f"{policy}: the policy file is invalid")
    assert "teams.support.default_region: String should match pattern" in message
    assert "forms.contact.auth.signed.tolerance_s: Input should be greater than 0" in message
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    from infra.app import build_app

    with pytest.raises(ConfigError, match="file not found"):
        build_app(cdk_context(policy=str(tmp_path / "nowhere.yaml")))


def test_an_unknown_stage_is_refused() -> None:
    from infra.app import build_app
    from infra.stage import StageUnknownError

    with pytest.raises(StageUnknownError, match="stage=qa"):
        build_app(cdk_context(stage="qa"))


def test_prod_keeps_customers_data_and_dev_does_not() -> None:
    from aws_cdk import RemovalPolicy

    from infra.stage import stage_named

    prod, dev = stage_named("prod"), stage_named("dev")

    assert (prod.removal_policy, prod.deletion_protection, prod.log_level) == (RemovalPolicy.RETAIN, True, "INFO")
    assert (dev.removal_policy, dev.deletion_protection, dev.log_level) == (RemovalPolicy.DESTROY, False, "DEBUG")


def test_in_prod_the_table_is_protected_and_stateful_resources_are_retained() -> None:
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Template

    from infra.constructs.raw_archive import RawArchive
    from infra.constructs.ticket_store import TicketStore
    from infra.stage import stage_named

    stack = Stack(App(context=cdk_context()), "Prod")
    TicketStore(stack, "TicketStore", stage=stage_named("prod"))
    RawArchive(stack, "RawArchive", stage=stage_named("prod"))
    template = Template.from_stack(stack)

    template.has_resource(
        "AWS::DynamoDB::Table",
        {"DeletionPolicy": "Retain", "Properties": {"DeletionProtectionEnabled": True}},
    )
    for kind in ("AWS::S3::Bucket", "AWS::KMS::Key"):
        for resource in template.find_resources(kind).values():
            assert resource["DeletionPolicy"] == "Retain", kind


def test_alert_emails_come_from_the_policy_file_and_bad_ones_are_named(tmp_path: Path) -> None:
    from infra.policy_file import load_policy_file

    assert load_policy_file(ROOT / "intake.yaml").alert_emails == ("oncall@example.com",)
    broken = tmp_path / "intake.yaml"
    broken.write_text("teams: {support: {name: Support}}\nalerts: {emails: [oncall]}\n")
    with pytest.raises(ConfigError) as raised:
        load_policy_file(broken)
    assert any(line.startswith("alerts.emails.0:") for line in raised.value.errors)


def test_the_layer_pins_pyproject_dependencies_to_the_lock_and_leaves_boto3_to_the_runtime() -> None:
    from infra.bundling import runtime_requirements

    requirements = dict(line.split("==") for line in runtime_requirements(ROOT / "pyproject.toml", ROOT / "uv.lock"))
    locked = {p["name"]: p["version"] for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}

    for name in ("aws-lambda-powertools", "pydantic", "pydantic-core", "python-ulid", "phonenumberslite", "pyyaml"):
        assert requirements[name] == locked[name]
    assert not {"boto3", "botocore", "s3transfer", "jmespath", "urllib3"} & set(requirements)


def test_the_consoles_sign_in_packages_are_a_layer_of_their_own_beside_the_one_layer() -> None:
    from infra.bundling import runtime_requirements

    pins = (ROOT / "pyproject.toml", ROOT / "uv.lock")
    console = dict(line.split("==") for line in runtime_requirements(*pins, extra="console"))
    base = dict(line.split("==") for line in runtime_requirements(*pins))

    assert {"pyjwt", "cryptography", "cffi"} <= set(console)  # pyjwt[crypto]
    assert not set(console) & set(base)
