"""The link in every email sends a person where a person can read the ticket: the web console's page wherever there
is a console, the JSON only where there is none (AWS without `api.jwt.console`), and the policy's own template if it
has one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from intake import runtime
from intake.config import ConsoleSignIn, Jwt, Policy
from intake.notify.notifier import ticket_url
from intake.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
TICKET = "01JDQ8Z1W3C9G7T2M47Q2M4K9D"


@pytest.fixture
def policy() -> Policy:
    return load_policy(ROOT / "intake.yaml")


@pytest.fixture
def runtime_from_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """`intake.runtime` reading this test's environment (and forgetting it after)."""
    monkeypatch.delenv("INTAKE_DATA_DIR", raising=False)
    monkeypatch.setenv("INTAKE_CONFIG", str(ROOT / "intake.yaml"))
    runtime.reset()
    yield monkeypatch
    runtime.reset()


def test_in_aws_with_iam_only_tools_read_tickets_so_the_link_is_the_json(
    policy: Policy, runtime_from_env: pytest.MonkeyPatch
) -> None:
    assert policy.api.jwt is None

    assert ticket_url(policy, "https://api.example.com/", TICKET) == f"https://api.example.com/tickets/{TICKET}"


def test_in_aws_behind_the_sign_in_the_link_opens_the_console(
    policy: Policy, runtime_from_env: pytest.MonkeyPatch
) -> None:
    console = ConsoleSignIn(client_id="intake-console")
    jwt = Jwt(issuer="https://id.example.com", audience=["x"], console=console)
    signed_in = policy.model_copy(update={"api": policy.api.model_copy(update={"jwt": jwt})})

    assert (
        ticket_url(signed_in, "https://api.example.com", TICKET) == f"https://api.example.com/console/tickets/{TICKET}"
    )


def test_in_aws_with_jwts_for_tools_only_there_is_no_console_so_the_link_is_the_json(
    policy: Policy, runtime_from_env: pytest.MonkeyPatch
) -> None:
    jwt = Jwt(issuer="https://id.example.com", audience=["x"])
    tools_only = policy.model_copy(update={"api": policy.api.model_copy(update={"jwt": jwt})})

    assert ticket_url(tools_only, "https://api.example.com", TICKET) == f"https://api.example.com/tickets/{TICKET}"


def test_intake_serve_always_has_its_console(runtime_from_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runtime_from_env.setenv("INTAKE_DATA_DIR", str(tmp_path))

    served = runtime.policy()

    assert ticket_url(served, "http://127.0.0.1:8080", TICKET) == f"http://127.0.0.1:8080/console/tickets/{TICKET}"


def test_in_aws_the_policy_is_read_as_written(runtime_from_env: pytest.MonkeyPatch, policy: Policy) -> None:
    assert runtime.policy() == policy
    assert (
        ticket_url(runtime.policy(), "https://api.example.com", TICKET) == f"https://api.example.com/tickets/{TICKET}"
    )


def test_the_policys_own_template_wins(runtime_from_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    own = "https://helpdesk.example.com/t/{ticket_id}?from={base_url}&x={other}"
    written = tmp_path / "intake.yaml"
    written.write_text((ROOT / "intake.yaml").read_text() + f"notifications:\n  ticket_url: '{own}'\n")
    runtime_from_env.setenv("INTAKE_CONFIG", str(written))
    runtime_from_env.setenv("INTAKE_DATA_DIR", str(tmp_path / "data"))

    served = runtime.policy()

    assert (
        ticket_url(served, "http://127.0.0.1:8080/", TICKET)
        == f"https://helpdesk.example.com/t/{TICKET}?from=http://127.0.0.1:8080&x={{other}}"
    )
