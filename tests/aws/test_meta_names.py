"""Messenger's worker step: a new customer's name from the User Profile API (a fake Graph API over real HTTP), when
intake.yaml's `messenger.fetch_names` asks for it; never for a redelivered message, never without the setting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from intake import runtime
from intake.local import samples
from intake.secrets import Secrets
from tests.aws.conftest import ROOT, SECRETS, Stack
from tests.fake_providers import FakeProviders

USER = "7459123456789012"  # the sender of events/messenger/01-text.json


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    fake = FakeProviders().start()
    fake.profiles[USER] = {"first_name": "Ana", "last_name": "Lima", "profile_pic": "https://example.com/a.jpg"}
    for name, value in fake.environment().items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield fake
    fake.stop()


def _fetching_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    policy = yaml.safe_load((ROOT / "intake.yaml").read_text(encoding="utf-8"))
    policy["messenger"]["fetch_names"] = True
    path = tmp_path / "intake.yaml"
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    monkeypatch.setenv("INTAKE_CONFIG", str(path))
    runtime.reset()


def _post_text(stack: Stack) -> None:
    prepared = samples.prepare(
        samples.load(ROOT / "events" / "messenger" / "01-text.json"), runtime.policy(), Secrets(environ=SECRETS)
    )
    status, _ = stack.post(prepared.path, prepared.body, prepared.headers)
    assert status == 200


def test_a_new_messenger_customer_is_named_from_the_graph_api(
    stack: Stack, graph: FakeProviders, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a policy that asks for names
    _fetching_names(monkeypatch, tmp_path)
    # When a customer's first message is received and worked, then delivered again by Meta
    _post_text(stack)
    stack.work()
    _post_text(stack)
    stack.work()
    # Then the ticket names the customer, from one profile call with the Page token
    [ticket] = stack.tickets()
    assert ticket["customer"]["S"] == "Ana Lima"
    [asked] = graph.received("profile")
    assert asked.status == 200 and asked.path.endswith(f"/{USER}?fields=first_name,last_name")


def test_the_name_is_asked_with_the_token_of_the_page_written_to_where_it_has_its_own(
    stack: Stack, graph: FakeProviders, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the Page the sample writes to has a token of its own (MESSENGER_PAGE_TOKEN_<page id>)
    page = samples.load(ROOT / "events" / "messenger" / "01-text.json")["json"]["entry"][0]["id"]
    graph.page_tokens[page] = "fake-token-of-this-page"
    monkeypatch.setenv(f"INTAKE_MESSENGER_PAGE_TOKEN_{page}", "fake-token-of-this-page")
    _fetching_names(monkeypatch, tmp_path)

    _post_text(stack)
    stack.work()

    [asked] = graph.received("profile")
    assert asked.headers["authorization"] == "Bearer fake-token-of-this-page"
    assert stack.tickets()[0]["customer"]["S"] == "Ana Lima"


def test_no_name_is_asked_for_without_fetch_names(stack: Stack, graph: FakeProviders) -> None:
    _post_text(stack)
    stack.work()

    [ticket] = stack.tickets()
    assert "customer" not in ticket or ticket["customer"]["S"] != "Ana Lima"
    assert graph.received("profile") == []
