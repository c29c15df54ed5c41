"""The policy file and the environment: valid ones load, bad ones fail with each error's path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.channels.forms import FormAuthKind
from intake.config import ConfigError, Policy, Settings
from intake.policy import load_policy

VALID = """\
version: 1
teams:
  support: {name: Customer Support, timezone: Europe/Paris, default_region: FR}
forms:
  contact: {team: support, auth: {kind: signed}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "intake.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_policy(path)
    assert raised.value.source == str(path)
    return raised.value.errors


def test_shipped_policy_file_loads(policy: Policy) -> None:
    # Given the intake.yaml at the repository's root, When loaded, Then it declares what the README shows
    assert list(policy.teams) == ["support"]
    assert policy.teams["support"].default_region == "FR"
    assert {form_id: form.auth.kind for form_id, form in policy.forms.items()} == {
        "contact": FormAuthKind.SIGNED,
        "website": FormAuthKind.PUBLIC,
        "feedback": FormAuthKind.TYPEFORM,
    }
    assert all(form.team in policy.teams for form in policy.forms.values())


def test_minimal_policy_gets_the_documented_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, VALID))
    contact = policy.forms["contact"]
    assert contact.fields.message == "message"
    assert contact.auth.kind is FormAuthKind.SIGNED
    assert getattr(contact.auth, "tolerance_s", None) == 300
    assert contact.dedupe_window_s == 600


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        pytest.param(
            VALID + "  website: {team: sales, auth: {kind: public, origins: [https://example.com]}}\n",
            "forms.website.team",
            "unknown team 'sales'",
            id="unknown-team-on-a-form",
        ),
        pytest.param(
            VALID.replace("default_region: FR}", "default_region: FR, colour: red}"),
            "teams.support.colour",
            "Extra inputs are not permitted",
            id="unknown-key",
        ),
        pytest.param(
            VALID.replace("auth: {kind: signed}}", "auth: {kind: signed}, max_bytes: lots}"),
            "forms.contact.max_bytes",
            "valid integer",
            id="wrong-type",
        ),
        pytest.param(
            VALID.replace("default_region: FR", "default_region: France"),
            "teams.support.default_region",
            "should match pattern",
            id="bad-pattern",
        ),
        pytest.param(
            VALID.replace("kind: signed", "kind: magic"),
            "forms.contact.auth",
            "'magic'",
            id="unknown-auth-kind",
        ),
        pytest.param(
            VALID.replace("kind: signed", "kind: public"),
            "forms.contact.auth.public.origins",
            "Field required",
            id="public-form-without-origins",
        ),
        pytest.param(VALID.replace("version: 1", "version: 2"), "version", "Input should be 1", id="unknown-version"),
        pytest.param("teams: {}\n", "teams", "at least 1 item", id="no-team"),
    ],
)
def test_bad_policy_names_the_path_and_the_reason(tmp_path: Path, text: str, path: str, reason: str) -> None:
    # Given a policy file with one mistake, When loaded
    errors = errors_of(write(tmp_path, text))
    # Then the error's line starts with the mistake's path in the file and says why
    assert any(line.startswith(f"{path}: ") and reason in line for line in errors), errors


def test_every_mistake_in_a_policy_is_reported_at_once(tmp_path: Path) -> None:
    text = VALID.replace("default_region: FR}", "default_region: FR, colour: red}").replace(
        "auth: {kind: signed}}", "auth: {kind: signed}, max_bytes: lots}"
    )
    errors = errors_of(write(tmp_path, text))
    assert [line.split(":", 1)[0] for line in errors] == ["teams.support.colour", "forms.contact.max_bytes"]


def test_policy_that_is_not_yaml_is_rejected_with_the_line(tmp_path: Path) -> None:
    errors = errors_of(write(tmp_path, "teams:\n  support: [unclosed\n"))
    assert len(errors) == 1
    assert errors[0].startswith("not valid YAML: ")
    assert "line 3" in errors[0]


def test_missing_policy_file_is_reported_as_such(tmp_path: Path) -> None:
    assert errors_of(tmp_path / "nowhere.yaml") == ["file not found"]


def test_empty_policy_file_is_rejected(tmp_path: Path) -> None:
    errors = errors_of(write(tmp_path, "# nothing yet\n"))
    assert errors == ["(root): Input should be a valid dictionary or instance of Policy"]


def test_policy_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    # Given a policy saved in Latin-1 by an editor (an accented team name)
    path = tmp_path / "intake.yaml"
    path.write_bytes("teams:\n  support: {name: \u00c9quipe support}\n".encode("latin-1"))
    # When loaded, Then it is a ConfigError naming the file, not a traceback from `intake config check`
    assert errors_of(path)


# ------------------------------------------------------------------------------------- settings


def test_settings_read_intake_variables_and_ignore_others() -> None:
    settings = Settings.from_env(
        {
            "INTAKE_MAX_BODY_BYTES": "1024",
            "INTAKE_TABLE_NAME": "t",
            "INTAKE_FORM_CONTACT_SECRET": "s",
            "HOME": "/root",
        }
    )
    assert (settings.max_body_bytes, settings.table_name, settings.page_size) == (1024, "t", 25)


def test_settings_defaults_apply_to_an_empty_environment() -> None:
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5"])
def test_bad_max_body_bytes_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"INTAKE_MAX_BODY_BYTES": value})
    assert raised.value.source == "environment"
    assert [line.split(":", 1)[0] for line in raised.value.errors] == ["INTAKE_MAX_BODY_BYTES"]


def test_environment_error_keeps_the_reason_as_written() -> None:
    # Given a bad variable, Then the variable's name is upper case and the reason reads as pydantic wrote it
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"INTAKE_MAX_BODY_BYTES": "0"})
    assert raised.value.errors == ["INTAKE_MAX_BODY_BYTES: Input should be greater than 0"]


CONSOLE = VALID + "api:\n  jwt:\n    issuer: https://auth.example.com\n    audience: [intake-agents]\n    console: "


def test_the_console_sign_in_takes_a_client_id_and_asks_openid_email_profile_by_default(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, CONSOLE + "{client_id: 3n4b5urk1ft4fl3mg5e62d9ado}\n"))

    assert policy.api.jwt is not None and policy.api.jwt.console is not None
    assert policy.api.jwt.console.client_id == "3n4b5urk1ft4fl3mg5e62d9ado"
    assert policy.api.jwt.console.scopes == ["openid", "email", "profile"]


@pytest.mark.parametrize(
    ("console", "path", "reason"),
    [
        ("{}", "api.jwt.console.client_id", "Field required"),
        ("{client_id: 'has space'}", "api.jwt.console.client_id", "should match pattern"),
        ("{client_id: c, scopes: [email]}", "api.jwt.console.scopes", "must include openid"),
        ("{client_id: c, scopes: [openid, email, email]}", "api.jwt.console.scopes", "names email more than once"),
        ("{client_id: c, scopes: ['openid email']}", "api.jwt.console.scopes.0", "should match pattern"),
        ("{client_id: c, client_secret: s}", "api.jwt.console.client_secret", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_console_sign_in_is_named_with_its_reason(tmp_path: Path, console: str, path: str, reason: str) -> None:
    errors = errors_of(write(tmp_path, CONSOLE + console + "\n"))

    assert any(e.startswith(f"{path}:") and reason in e for e in errors), errors
