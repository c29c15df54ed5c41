"""One synthesis of the Intake stack per session, bundling skipped, shared by every infra test.

The context is cdk.json's (feature flags included), as `cdk synth` would pass it, so what the
tests see is what `make synth` produces, minus the built assets. The policy is the repository's
file plus what the tests need it to enable (`synthesis.tested_policy`): alert emails, each team's
digests, a second team in another timezone, satisfaction surveys.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infra.synthesis import ROOT, Synthesized, cdk_context, tested_policy


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    from aws_cdk.assertions import Template

    from infra.app import build_app
    from infra.policy_file import load_policy_file

    policy_file = tested_policy(load_policy_file(ROOT / "intake.yaml"))
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(cdk_context(), outdir=str(outdir), policy_file=policy_file)
    template = app.synth().get_stack_by_name("IntakeDev").template
    yield Synthesized(outdir, template, Template.from_json(template), policy_file)
