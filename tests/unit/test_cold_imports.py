"""A Lambda handler's cold import loads what every request of that function needs, and no more (issue 16).

Each handler is imported in a fresh interpreter, which then reports the modules it holds and which of our pydantic
models have their validators built. This guards the structure, not a time: what one path needs (phone metadata,
the email parser, templates, the survey pages) is imported on that path, and models are built when first used.
`make bench` measures the times (bench/README.md, section 1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ("receiver", "ingest", "api", "console", "notifier", "digest", "email", "feedback", "sender")
SQS_CONSUMERS = {"ingest", "notifier", "email", "sender"}

# No handler needs these to start: each is imported where its one path runs
NEVER = (
    "ulid",  # reads its version from the installed packages' metadata: ids come from intake.ids
    "phonenumbers",  # a form's phone field, Twilio's and WhatsApp's numbers
    "yaml",  # read once, when the policy is loaded
    "aws_lambda_powertools.utilities.parser",  # Powertools' pydantic event models: built when imported after pydantic
    "aws_xray_sdk",  # only where tracing is on (tests/unit/test_observability.py)
)
ONLY = {  # module -> the handlers that may import it at cold start
    "intake.emails": {"email"},  # the email path (MIME parsing, quoted replies)
    "mailparser_reply": {"email"},
    "jinja2": {"digest"},  # templates: the digest renders on every run; the notifier on its first email
    "intake.failures": SQS_CONSUMERS,  # dead letters' records: the queue consumers
    "aws_lambda_powertools.utilities.batch": SQS_CONSUMERS,
    "intake.satisfaction": {"api", "console", "notifier"},  # not the receiver: only its survey pages use it
    # the receiver stores nothing (it archives and queues): only Mailgun's token claims reach the table
    "intake.store": set(HANDLERS) - {"receiver"},
    # agents' replies: the sender delivers them; the API and the console import them when a reply comes in
    "intake.replies": {"sender"},
}

REPORT = """
import gc, json, sys
import intake.handlers.{name}
from pydantic import BaseModel, TypeAdapter
built = sorted({{
    f"{{module}}.{{getattr(value, '__qualname__', name)}}"
    for module in [m for m in sys.modules if m.split(".")[0] == "intake"]
    for name, value in vars(sys.modules[module]).items()
    if (isinstance(value, type) and issubclass(value, BaseModel) and value.__pydantic_complete__)
    and value.__module__ == module
    or (isinstance(value, TypeAdapter) and value.pydantic_complete)
}})
print(json.dumps({{"modules": sorted(sys.modules), "built": built, "collecting": gc.isenabled()}}))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Per handler, what a fresh interpreter holds after importing it (all eight at once, bytecode shared)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "LAMBDA_", "PYTHONDONTWRITEBYTECODE"))}
    env["PYTHONPATH"] = f"{ROOT / 'functions'}{os.pathsep}{ROOT}"
    env["AWS_LAMBDA_FUNCTION_NAME"] = "intake-cold-import"  # as in Lambda: the collector is off during the import
    # the run's bytecode (the Makefile's), or bytecode of their own: which modules load does not depend on it
    env.setdefault("PYTHONPYCACHEPREFIX", str(tmp_path_factory.mktemp("pycache")))
    run = [sys.executable, "-c", REPORT.format(name=HANDLERS[0])]
    subprocess.run(run, capture_output=True, env=env, timeout=120, check=True)  # compiles what they all share
    started = {
        name: subprocess.Popen(
            [sys.executable, "-c", REPORT.format(name=name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in HANDLERS
    }
    found = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        found[name] = json.loads(out)
    return found


@pytest.mark.parametrize("name", HANDLERS)
def test_a_handler_imports_no_module_that_only_one_path_needs(loaded: dict[str, dict[str, Any]], name: str) -> None:
    modules = set(loaded[name]["modules"])

    assert f"intake.handlers.{name}" in modules
    assert [module for module in NEVER if module in modules] == []
    assert [module for module, allowed in ONLY.items() if module in modules and name not in allowed] == []


@pytest.mark.parametrize("name", HANDLERS)
def test_a_handler_turns_the_garbage_collector_on_again_once_imported(
    loaded: dict[str, dict[str, Any]], name: str
) -> None:
    # in Lambda, intake.handlers turns it off for the import (a cold start); each handler module's last line turns
    # it on again
    assert loaded[name]["collecting"] is True


@pytest.mark.parametrize("name", HANDLERS)
def test_a_handler_builds_no_validator_but_the_settings_at_import(loaded: dict[str, dict[str, Any]], name: str) -> None:
    # Settings are validated at cold start (a bad INTAKE_* variable fails there, named); the policy's models, the
    # domain's and the type adapters (a queue message's decoder) are built when a request first needs them
    assert loaded[name]["built"] == ["intake.config.Settings"]
