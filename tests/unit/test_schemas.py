"""`schemas/` is generated from the code: it must be current, valid, and describe every route."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from intake import schemas
from intake.handlers.problems import TYPE_BASE

STALE = "schemas/ is stale: run `make schemas` (or `intake schemas export`) and commit the result"


@pytest.fixture(scope="module")
def committed(repo: Path) -> Path:
    return repo / "schemas"


@pytest.fixture(scope="module")
def openapi(committed: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((committed / "openapi.json").read_text(encoding="utf-8"))
    return document


def test_committed_schemas_match_the_code(tmp_path: Path, committed: Path) -> None:
    # Given the schemas exported from the code as it is now
    written = schemas.export(tmp_path)
    # Then the committed schemas/ holds exactly those files, byte for byte
    assert sorted(p.name for p in written) == sorted(p.name for p in tmp_path.iterdir())
    assert sorted(p.name for p in committed.iterdir()) == sorted(p.name for p in written), STALE
    for fresh in written:
        assert (committed / fresh.name).read_bytes() == fresh.read_bytes(), f"{fresh.name}: {STALE}"


def test_export_is_deterministic_json(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in schemas.export(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in schemas.export(tmp_path / "b")}
    assert first == second
    for name, content in first.items():
        text = content.decode("utf-8")
        assert text.endswith("}\n") and not text.endswith("\n\n"), name
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n", name


def test_one_schema_per_model_and_one_for_the_policy(committed: Path) -> None:
    names = {p.name for p in committed.iterdir()}
    assert {
        "inbound-message.schema.json",
        "ticket.schema.json",
        "ticket-detail.schema.json",
        "ticket-page.schema.json",
        "contact.schema.json",
        "message.schema.json",
        "ticket-event.schema.json",
        "policy.schema.json",
        "openapi.json",
    } <= names


# ------------------------------------------------------------------------------ policy schema


def _validator(schema: dict[str, Any]) -> Any:
    """A JSON Schema validator: `jsonschema` when installed, else the one cfn-lint ships (infra group)."""
    try:
        import jsonschema
    except ImportError:
        from cfnlint.jsonschema import StandardValidator

        return StandardValidator(schema)
    return jsonschema.validators.validator_for(schema)(schema)


def _errors(validator: Any, document: Any) -> list[tuple[str, str]]:
    return sorted((".".join(map(str, e.path)), e.message) for e in validator.iter_errors(document))


@pytest.fixture(scope="module")
def policy_validator(committed: Path) -> Any:
    return _validator(json.loads((committed / "policy.schema.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def shipped_policy(repo: Path) -> dict[str, Any]:
    # As an editor's YAML language server sees it: dates are strings in JSON Schema's eyes
    loaded = yaml.safe_load((repo / "intake.yaml").read_text(encoding="utf-8"))
    document: dict[str, Any] = json.loads(json.dumps(loaded, default=str))
    return document


def test_shipped_policy_file_validates_against_its_schema(policy_validator: Any, shipped_policy: Any) -> None:
    assert _errors(policy_validator, shipped_policy) == []


def test_shipped_policy_file_points_editors_at_its_schema(repo: Path) -> None:
    assert "schemas/policy.schema.json" in (repo / "intake.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("mistake", "path"),
    [
        (lambda p: p["teams"]["support"].update(colour="red"), "teams.support"),
        (lambda p: p["forms"]["contact"].update(max_bytes="lots"), "forms.contact.max_bytes"),
        (lambda p: p["forms"]["contact"].update(auth={"kind": "magic"}), "forms.contact.auth"),
        (lambda p: p["forms"]["website"]["auth"].pop("origins"), "forms.website.auth"),
        (lambda p: p["teams"].update({"Sales Team": {"name": "Sales"}}), "teams"),
    ],
    ids=["unknown-key", "wrong-type", "unknown-auth-kind", "missing-origins", "bad-team-key"],
)
def test_policy_schema_flags_what_the_loader_rejects(
    policy_validator: Any, shipped_policy: Any, mistake: Any, path: str
) -> None:
    # Given the shipped policy with one mistake an editor should underline
    broken = copy.deepcopy(shipped_policy)
    mistake(broken)
    # Then the schema reports it there (or just below: validators differ on where an extra key is reported)
    found = [where for where, _ in _errors(policy_validator, broken)]
    assert any(where == path or where.startswith(f"{path}.") for where in found), found


# ------------------------------------------------------------------------------------- OpenAPI

ROUTES = {
    ("/webhooks/forms/{form_id}", "post"): {"202", "400", "401", "403", "404", "413", "415"},
    **{
        (f"/webhooks/twilio/{route}", "post"): {"200", "400", "403", "413", "415"}
        for route in ("voice", "voice/status", "voice/recording", "voice/transcription", "messaging")
    },
    ("/webhooks/whatsapp", "get"): {"200", "403"},
    ("/webhooks/whatsapp", "post"): {"200", "400", "403", "413"},
    **{(f"/webhooks/{meta}", "get"): {"200", "403"} for meta in ("messenger", "instagram")},
    **{(f"/webhooks/{meta}", "post"): {"200", "400", "403", "413"} for meta in ("messenger", "instagram")},
    ("/webhooks/email/sendgrid", "post"): {"200", "400", "403", "413", "415"},
    ("/webhooks/email/mailgun", "post"): {"200", "400", "403", "406", "413", "415"},
    ("/csat/{token}", "get"): {"200", "403", "410"},
    ("/csat/{token}", "post"): {"200", "400", "403", "410", "415"},
    ("/healthz", "get"): {"200"},
    ("/tickets", "get"): {"200", "400"},
    ("/tickets/{ticket_id}", "get"): {"200", "404"},
    ("/tickets/{ticket_id}/events", "post"): {"200", "400", "404", "409"},
    ("/tickets/{ticket_id}/replies", "post"): {"202", "400", "404", "409", "413", "422"},
    ("/tickets/{ticket_id}/sla", "get"): {"200", "404"},
    ("/contacts/{contact_id}", "get"): {"200", "404"},
    ("/quarantine", "get"): {"200", "400"},
    ("/quarantine/{quarantine_id}/release", "post"): {"200", "404", "409"},
    ("/digests/{team}/{period}", "get"): {"200", "400"},
    ("/digests/{team}/{period}", "post"): {"202", "400"},
    ("/failures", "get"): {"200"},
    ("/failures/{failure_id}/replay", "post"): {"200", "404"},
}
AGENT_PREFIXES = ("/tickets", "/contacts/", "/quarantine", "/digests/", "/failures")


def test_openapi_is_version_3_1_and_describes_every_route(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1.")
    described = {(path, method) for path, item in openapi["paths"].items() for method in item}
    assert described == set(ROUTES)
    for (path, method), statuses in ROUTES.items():
        assert statuses <= set(openapi["paths"][path][method]["responses"]), (path, method)


def test_openapi_describes_exactly_the_routes_the_resolvers_register(openapi: dict[str, Any]) -> None:
    # Given the routes the receiver's and the API's Powertools resolvers dispatch on
    from intake.handlers import api, receiver

    registered = {
        (route.openapi_path, route.method.lower())
        for app in (api.app, receiver.app)
        for route in app._static_routes + app._dynamic_routes  # Powertools keeps no public list of them
        if not _console_page(route.openapi_path)
    }
    # Then the OpenAPI document describes each of them, and nothing else
    assert len(registered) == len(ROUTES)
    described = {(path, method) for path, item in openapi["paths"].items() for method in item}
    assert described == registered


def _console_page(path: str) -> bool:
    """The web console's HTML pages (`GET /`, `/console/...`) are for browsers, not in the OpenAPI document."""
    return path == "/" or path.startswith("/console/")


def test_the_console_pages_are_the_only_routes_left_out_of_openapi(openapi: dict[str, Any]) -> None:
    from intake.handlers import api

    pages = {route.openapi_path for route in api.app._static_routes + api.app._dynamic_routes}
    assert {"/", "/console/tickets/{ticket_id}"} <= {p for p in pages if _console_page(p)}
    assert not any(_console_page(path) for path in openapi["paths"])


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_every_openapi_ref_points_into_its_components(openapi: dict[str, Any]) -> None:
    refs = {value for key, value in _walk(openapi) if key == "$ref"}
    assert refs, "no $ref at all: the components are not used"
    prefix = "#/components/schemas/"
    assert all(ref.startswith(prefix) for ref in refs), sorted(refs)
    assert {ref.removeprefix(prefix) for ref in refs} <= set(openapi["components"]["schemas"])
    assert "$defs" not in json.dumps(openapi)


def test_form_webhook_takes_the_three_body_types_and_the_authentication_headers(
    openapi: dict[str, Any],
) -> None:
    post = openapi["paths"]["/webhooks/forms/{form_id}"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }
    parameters = {(p["in"], p["name"]): p for p in post["parameters"]}
    assert set(parameters) == {
        ("path", "form_id"),
        ("header", "X-Intake-Timestamp"),
        ("header", "X-Intake-Signature"),
        ("header", "Typeform-Signature"),
        ("header", "Origin"),
    }
    assert parameters[("path", "form_id")]["required"] is True
    accepted = post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"]
    receipt = openapi["components"]["schemas"][accepted.rsplit("/", 1)[1]]
    assert receipt["required"] == ["receipt"] and receipt["properties"]["receipt"]["type"] == "string"


def _problem_types(response: dict[str, Any]) -> set[str]:
    schema = response["content"]["application/problem+json"]["schema"]
    return {t for part in schema["allOf"] for t in part.get("properties", {}).get("type", {}).get("enum", [])}


def test_errors_are_problem_json_with_their_stable_types(openapi: dict[str, Any]) -> None:
    webhook = openapi["paths"]["/webhooks/forms/{form_id}"]["post"]["responses"]
    expected = {
        "400": "field-invalid",
        "401": "signature-invalid",
        "403": "origin-forbidden",
        "404": "form-not-found",
        "413": "payload-too-large",
        "415": "unsupported-media-type",
    }
    assert {status: _problem_types(webhook[status]) for status in expected} == {
        status: {TYPE_BASE + slug} for status, slug in expected.items()
    }
    tickets = openapi["paths"]["/tickets"]["get"]["responses"]
    assert _problem_types(tickets["400"]) == {TYPE_BASE + "field-invalid", TYPE_BASE + "cursor-invalid"}
    ticket = openapi["paths"]["/tickets/{ticket_id}"]["get"]["responses"]
    assert _problem_types(ticket["404"]) == {TYPE_BASE + "ticket-not-found"}
    problem = openapi["components"]["schemas"]["ProblemDetails"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert "field" in problem["properties"] and "field" not in problem["required"]


def test_agent_routes_require_iam_or_jwt_and_the_others_do_not(openapi: dict[str, Any]) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert (schemes["jwt"]["type"], schemes["jwt"]["scheme"]) == ("http", "bearer")
    assert (schemes["sendgridBasic"]["type"], schemes["sendgridBasic"]["scheme"]) == ("http", "basic")
    for path, method in ROUTES:
        security = openapi["paths"][path][method]["security"]
        if path.startswith(AGENT_PREFIXES):
            assert security == [{"sigv4": []}, {"jwt": []}], (path, method)
        elif path == "/webhooks/email/sendgrid":
            assert security == [{"sendgridBasic": []}]
        else:  # providers sign in their own way, customers follow a signed link, health checks hold nothing
            assert security == [], (path, method)
    assert "security" not in openapi


def test_ticket_list_query_parameters(openapi: dict[str, Any]) -> None:
    get = openapi["paths"]["/tickets"]["get"]
    parameters = {p["name"]: p for p in get["parameters"] if p["in"] == "query"}
    assert set(parameters) == {"team", "status", "channel", "breached", "order", "due_before", "limit", "cursor"}
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert parameters["breached"]["schema"]["enum"] == ["true", "false"]
    assert parameters["order"]["schema"]["enum"] == ["newest", "due"]
    assert parameters["due_before"]["schema"]["format"] == "date-time"
    assert not any(p["required"] for p in parameters.values())
    page = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page == "#/components/schemas/TicketPage"


def test_agent_routes_answer_their_own_problem_types(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    expected = {
        ("/tickets/{ticket_id}/events", "post"): {
            "400": "field-invalid",
            "404": "ticket-not-found",
            "409": "transition-invalid",
        },
        ("/tickets/{ticket_id}/sla", "get"): {"404": "ticket-not-found"},
        ("/contacts/{contact_id}", "get"): {"404": "contact-not-found"},
        ("/quarantine", "get"): {"400": "field-invalid"},
        ("/quarantine/{quarantine_id}/release", "post"): {
            "400": "field-invalid",
            "404": "quarantine-not-found",
            "409": ("quarantine-released", "team-required"),
        },
        ("/digests/{team}/{period}", "get"): {"400": "field-invalid"},
        ("/digests/{team}/{period}", "post"): {"400": "field-invalid"},
    }
    for (path, method), by_status in expected.items():
        responses = paths[path][method]["responses"]
        found = {status: _problem_types(responses[status]) for status in by_status}
        slugs = {status: (slug,) if isinstance(slug, str) else slug for status, slug in by_status.items()}
        assert found == {status: {TYPE_BASE + s for s in some} for status, some in slugs.items()}, (path, method)


def test_agent_action_body_is_the_tracker_model_with_its_conditional_fields(openapi: dict[str, Any]) -> None:
    post = openapi["paths"]["/tickets/{ticket_id}/events"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AgentAction"}
    action = openapi["components"]["schemas"]["AgentAction"]
    assert set(action["required"]) == {"type", "by"}
    assert set(action["properties"]["type"]["enum"]) == {
        "responded",
        "pending",
        "resolved",
        "reopened",
        "assigned",
        "priority_changed",
    }
    validator = _validator({**action, "properties": {**action["properties"], "priority": {}}})  # no $ref to follow
    assert _errors(validator, {"type": "responded", "by": "ana"}) == []
    assert _errors(validator, {"type": "assigned", "by": "ana"}) != []
    assert _errors(validator, {"type": "assigned", "by": "ana", "assignee": "bo"}) == []
    assert _errors(validator, {"type": "priority_changed", "by": "ana", "priority": None}) != []


def test_survey_links_are_public_pages_whose_problems_a_browser_reads_as_html(openapi: dict[str, Any]) -> None:
    link = openapi["paths"]["/csat/{token}"]
    for method in ("get", "post"):
        responses = link[method]["responses"]
        assert "text/html; charset=utf-8" in responses["200"]["content"]
        assert _problem_types(responses["403"]) == {TYPE_BASE + "survey-link-invalid"}
        assert _problem_types(responses["410"]) == {TYPE_BASE + "survey-link-expired"}
        for status in ("403", "410"):
            assert set(responses[status]["content"]) == {"application/problem+json", "text/html; charset=utf-8"}
    form = link["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["$ref"]
    comment = openapi["components"]["schemas"][form.rsplit("/", 1)[1]]["properties"]["comment"]
    assert comment == {"type": "string", "maxLength": 2000}


def test_provider_webhooks_say_how_they_are_authenticated(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    headers = {
        "/webhooks/twilio/voice": "X-Twilio-Signature",
        "/webhooks/twilio/messaging": "X-Twilio-Signature",
        "/webhooks/whatsapp": "X-Hub-Signature-256",
        "/webhooks/messenger": "X-Hub-Signature-256",
        "/webhooks/instagram": "X-Hub-Signature-256",
    }
    for path, header in headers.items():
        parameters = {(p["in"], p["name"]): p for p in paths[path]["post"]["parameters"]}
        assert parameters[("header", header)]["required"] is True, path
    handshake = {p["name"] for p in paths["/webhooks/whatsapp"]["get"]["parameters"]}
    assert handshake == {"hub.mode", "hub.verify_token", "hub.challenge"}
    forged = TYPE_BASE + "webhook-signature-invalid"
    for path in (*headers, "/webhooks/email/sendgrid", "/webhooks/email/mailgun"):
        assert _problem_types(paths[path]["post"]["responses"]["403"]) == {forged}, path
    mailgun = paths["/webhooks/email/mailgun"]["post"]["responses"]
    assert _problem_types(mailgun["406"]) == {TYPE_BASE + "message-unacceptable"}
    assert "text/xml" in paths["/webhooks/twilio/voice"]["post"]["responses"]["200"]["content"]


def test_a_digest_preview_carries_the_figures_and_publishing_is_accepted_with_where_it_will_be(
    openapi: dict[str, Any],
) -> None:
    components = openapi["components"]["schemas"]
    operations = openapi["paths"]["/digests/{team}/{period}"]
    for method, status, answer in (("get", "200", "DigestPreview"), ("post", "202", "DigestRequested")):
        ref = operations[method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{answer}"
        period = next(p for p in operations[method]["parameters"] if p["name"] == "period")
        assert period["schema"]["enum"] == ["daily", "weekly"]
    assert components["DigestPreview"]["properties"]["figures"] == {"$ref": "#/components/schemas/Figures"}
    assert {"current", "previous", "change", "backlog"} <= set(components["Figures"]["required"])
    accepted = components["DigestRequested"]
    assert {"start", "end", "archive", "announced_as"} <= set(accepted["required"])
    assert "Location" in operations["post"]["responses"]["202"]["headers"]


def test_the_accepted_digest_answer_matches_its_schema() -> None:
    from datetime import date

    from jsonschema import Draft202012Validator

    from intake.digest.requests import Requested
    from intake.schemas import openapi

    schema = openapi()["components"]["schemas"]["DigestRequested"]
    answer = Requested("support", "weekly", date(2026, 11, 23), date(2026, 11, 29)).answer()

    assert list(Draft202012Validator(schema).iter_errors(answer)) == []
