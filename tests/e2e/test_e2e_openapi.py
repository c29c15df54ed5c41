"""Schemathesis against `schemas/openapi.json` on a real `intake serve`: every route, generated valid and invalid
requests (bounded and seeded; fewer fuzzed ones every day than in the deep run, `tests/depth.py`), no 5xx, and every
answer's status, content type and body as the schema says."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.depth import everyday_or_deep

from .client import REPO, Server, contact_body, form_headers

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_every_route_answers_as_the_schema_says_and_never_5xx(
    launch: Callable[[Path], Server], tmp_path: Path, env: dict[str, str]
) -> None:
    # Given its own Intake (what the run posts must not meet other tests' data), with a ticket in it
    server = launch(tmp_path / "data")
    body = contact_body(f"schema {uuid.uuid4().hex[:8]}")
    receipt = server.post("/webhooks/forms/contact", body, form_headers(body)).json()["receipt"]
    server.wait_for_receipts([receipt])

    # When schemathesis runs every operation of the schema against it
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        str(REPO / "schemas" / "openapi.json"),
        "--url",
        server.url,
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(everyday_or_deep(10, 25)),  # fuzzed requests per operation (tests/depth.py)
        "--seed",
        "20261205",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--no-color",
    ]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)

    # Then nothing failed
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:] + server.stderr()[-5_000:]
    assert "No issues found" in run.stdout or " passed" in run.stdout, run.stdout[-5_000:]
