"""Fixtures of the pure unit tests: the shipped policy file and its forms. No AWS, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.channels.forms import Form
from intake.config import Policy
from intake.policy import load_policy

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def policy() -> Policy:
    """The shipped `intake.yaml`: team `support` (FR), forms `contact` (signed), `website`, `feedback`."""
    return load_policy(REPO / "intake.yaml")


@pytest.fixture(scope="session")
def contact_form(policy: Policy) -> Form:
    return policy.forms["contact"]


@pytest.fixture(scope="session")
def website_form(policy: Policy) -> Form:
    return policy.forms["website"]


@pytest.fixture(scope="session")
def feedback_form(policy: Policy) -> Form:
    return policy.forms["feedback"]
