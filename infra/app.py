"""The CDK app: `cdk synth` / `cdk deploy [-c stage=dev|prod] [-c policy=intake.yaml]`.

Loads and validates the policy file first (a bad one stops the synth with each error's path and
reason), builds the one stack, and always runs cdk-nag's AWS Solutions checks over it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.policy_file import PolicyFile, describe_policy_error, load_policy_file
from infra.stack import IntakeStack
from infra.stage import StageUnknownError, stage_named
from intake.config import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STAGE = "dev"
DEFAULT_POLICY = "intake.yaml"


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: str | None = None,
    policy_file: PolicyFile | None = None,
) -> App:
    """The app with its stack. Context comes from cdk.json and `-c`, or from `context` (tests)."""
    app = App(context=dict(context or {}), outdir=outdir)
    stage = stage_named(app.node.try_get_context("stage") or DEFAULT_STAGE)
    if policy_file is None:
        policy_file = load_policy_file(PROJECT_ROOT / (app.node.try_get_context("policy") or DEFAULT_POLICY))
    IntakeStack(
        app,
        f"Intake{stage.name.capitalize()}",
        stage=stage,
        policy_file=policy_file,
        project_root=PROJECT_ROOT,
    )
    # Findings fail the synth; each acknowledgment (next to its cause) is written into the template.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return app


def main() -> None:
    try:
        app = build_app()
    except ConfigError as error:
        sys.exit(describe_policy_error(error))
    except StageUnknownError as error:
        sys.exit(str(error))
    app.synth()


if __name__ == "__main__":
    main()
