"""Tracing is on in Lambda only, and costs nothing elsewhere: `intake serve`, the CLI and the tests never import the
X-Ray SDK, and a handler outside Lambda is the function itself (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from intake.observability import traced, tracing_enabled

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ("api", "digest", "email", "feedback", "ingest", "notifier", "receiver")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return event


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    return monkeypatch


def test_outside_lambda_a_handler_is_not_traced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)

    assert not tracing_enabled() and traced(handler) is handler


def test_in_lambda_tracing_can_be_turned_off_and_is_off_in_emulators(in_lambda: pytest.MonkeyPatch) -> None:
    in_lambda.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert not tracing_enabled() and traced(handler) is handler

    in_lambda.delenv("POWERTOOLS_TRACE_DISABLED")
    in_lambda.setenv("AWS_SAM_LOCAL", "true")
    assert not tracing_enabled() and traced(handler) is handler


def test_in_lambda_tracing_is_on_where_the_xray_sdk_is_installed(in_lambda: pytest.MonkeyPatch) -> None:
    # the layer has it (tests/infra: aws-lambda-powertools[tracer]); a process without it runs untraced, unbroken
    assert tracing_enabled() is (find_spec("aws_xray_sdk") is not None)
    if not tracing_enabled():
        assert traced(handler) is handler


def test_importing_every_handler_outside_lambda_imports_no_xray_sdk() -> None:
    imports = "; ".join(f"import intake.handlers.{name}" for name in HANDLERS)
    code = f"import sys; {imports}; print('aws_xray_sdk' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_TASK_ROOT",)}
    env |= {"PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT}", "INTAKE_CONFIG": str(ROOT / "intake.yaml")}

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_with_metrics_off_no_number_of_business_events_prints_a_metric_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Powertools prints a set once it holds 100 values even when metrics are off: `intake serve` wrote one to its
    # terminal every 100 forms
    from intake.observability import count, metrics

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    before = len(metrics.metric_set.get("TicketCreated", {}).get("Value", []))  # other tests' events, if any
    for _ in range(250):
        count("TicketCreated")

    assert capsys.readouterr().out == ""
    assert len(metrics.metric_set.get("TicketCreated", {}).get("Value", [])) == before
