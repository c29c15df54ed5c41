"""JSON Schema of the models and of the policy file, and OpenAPI 3.1 of the routes, built from the code.

`intake schemas export` (`make schemas`) writes them to `schemas/`; `tests/unit/test_schemas.py`
fails when the committed files are stale. Everything here is derived from the pydantic models, the
policy's own types and the problem table the handlers use, so a change there shows up here.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from intake.config import Name, Policy, Settings
from intake.errors import (
    FieldInvalidError,
    FormNotFoundError,
    OriginForbiddenError,
    PayloadTooLargeError,
    SignatureInvalidError,
    UnsupportedMediaTypeError,
)
from intake.handlers.problems import CONTENT_TYPE, PROBLEMS, TYPE_BASE
from intake.model import (
    Contact,
    InboundMessage,
    Message,
    ReceiptId,
    Ticket,
    TicketDetail,
    TicketEvent,
    TicketId,
    TicketPage,
)
from intake.store import CursorInvalidError, TicketNotFoundError

DIALECT = "https://json-schema.org/draft/2020-12/schema"
MODELS: tuple[type[BaseModel], ...] = (
    InboundMessage,
    Ticket,
    TicketDetail,
    TicketPage,
    Contact,
    Message,
    TicketEvent,
)
POLICY_FILE = "policy.schema.json"
OPENAPI_FILE = "openapi.json"
_REF = "#/components/schemas/"


def export(out: Path) -> list[Path]:
    """Write every schema into `out` (created if missing); return the paths written, in order."""
    out.mkdir(parents=True, exist_ok=True)
    documents = {f"{_kebab(m.__name__)}.schema.json": model_schema(m) for m in MODELS}
    documents[POLICY_FILE] = policy_schema()
    documents[OPENAPI_FILE] = openapi()
    written = []
    for name, document in documents.items():
        path = out / name
        path.write_bytes(render(document).encode("utf-8"))
        written.append(path)
    return written


def render(document: dict[str, Any]) -> str:
    """Deterministic JSON: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"$schema": DIALECT, **_closed_maps(model.model_json_schema())}


def policy_schema() -> dict[str, Any]:
    """The schema of `intake.yaml`, for editors (`# yaml-language-server: $schema=...`)."""
    schema = _closed_maps(Policy.model_json_schema())
    schema["description"] = (
        "Intake's policy file (intake.yaml): teams and forms. Also checked by `intake config check`, "
        "which adds what a schema cannot say (every form's team must be declared under `teams`)."
    )
    return {"$schema": DIALECT, **schema}


# ----------------------------------------------------------------------------------------- OpenAPI


def openapi() -> dict[str, Any]:
    """OpenAPI 3.1 of the routes the receiver and the read API serve."""
    _, defs = models_json_schema(
        [(m, "serialization") for m in (TicketPage, TicketDetail)], ref_template=_REF + "{model}"
    )
    components: dict[str, Any] = {**defs["$defs"], **_hand_written_schemas()}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Intake",
            "version": version("intake"),
            "description": (
                "Customer messages in (web forms now; phone, SMS, WhatsApp and email as their channels "
                "land), tickets out. Errors are RFC 9457 problem+json with a stable `type`: "
                f"`{TYPE_BASE}<slug>`."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": Settings.model_fields["public_base_url"].default, "description": "intake serve"}],
        "tags": [
            {"name": "webhooks", "description": "What providers post; signed or origin-checked."},
            {"name": "tickets", "description": "The agent tools' read API; IAM (SigV4) in AWS."},
            {"name": "operations", "description": "Health checks."},
        ],
        "paths": {
            "/webhooks/forms/{form_id}": {"post": _form_webhook()},
            "/healthz": {"get": _healthz()},
            "/tickets": {"get": _list_tickets()},
            "/tickets/{ticket_id}": {"get": _show_ticket()},
        },
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4: an IAM principal allowed to invoke the API.",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
        },
    }


def _form_webhook() -> dict[str, Any]:
    return {
        "operationId": "submitForm",
        "tags": ["webhooks"],
        "summary": "Submit a web form or a Typeform response",
        "description": (
            "The form must be declared under `forms` in intake.yaml, which also says how it is "
            "authenticated: `signed` (X-Intake-Timestamp and X-Intake-Signature), `typeform` "
            "(Typeform-Signature) or `public` (an allowed Origin plus a honeypot field). The raw request is "
            "archived and queued before the answer; the ticket is created asynchronously. A filled honeypot "
            "is answered 202 like any other submission and creates nothing."
        ),
        "security": [],
        "parameters": [
            _parameter("form_id", "path", _adapter_schema(Name), "the form's key under `forms` in intake.yaml"),
            _parameter(
                "X-Intake-Timestamp",
                "header",
                {"type": "string", "pattern": "^[0-9]+$"},
                "signed forms: when the request was signed, in unix seconds; must be within the form's "
                "`auth.tolerance_s` (default 300) of the receiver's clock",
            ),
            _parameter(
                "X-Intake-Signature",
                "header",
                {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                'signed forms: `sha256=` + hex HMAC-SHA256(secret, "<timestamp>." + raw body)',
            ),
            _parameter(
                "Typeform-Signature",
                "header",
                {"type": "string", "pattern": "^sha256=[A-Za-z0-9+/]{43}=$"},
                "Typeform forms: `sha256=` + base64 HMAC-SHA256(secret, raw body)",
            ),
            _parameter(
                "Origin",
                "header",
                {"type": "string"},
                "public forms: must be one of the form's `auth.origins`",
            ),
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"anyOf": [{"$ref": _REF + "FormFields"}, {"$ref": _REF + "TypeformWebhook"}]}
                },
                "application/x-www-form-urlencoded": {"schema": {"$ref": _REF + "UrlencodedFormFields"}},
                "multipart/form-data": {"schema": {"$ref": _REF + "MultipartFormFields"}},
            },
        },
        "responses": {
            "202": _json_response("Accepted: archived and queued.", _REF + "Receipt"),
            **_problems(
                FieldInvalidError,
                SignatureInvalidError,
                OriginForbiddenError,
                FormNotFoundError,
                PayloadTooLargeError,
                UnsupportedMediaTypeError,
            ),
            "default": _problem_response("Unexpected: the service is misconfigured or failed.", []),
        },
    }


def _healthz() -> dict[str, Any]:
    return {
        "operationId": "health",
        "tags": ["operations"],
        "summary": "Readiness: 200 when the service answers",
        "security": [],
        "responses": {"200": _json_response("Ready.", _REF + "Health")},
    }


def _list_tickets() -> dict[str, Any]:
    page_size = Settings.model_fields["page_size"].default
    return {
        "operationId": "listTickets",
        "tags": ["tickets"],
        "summary": "Tickets, newest first, one page at a time",
        "security": [{"sigv4": []}],
        "parameters": [
            _parameter("team", "query", _adapter_schema(Name), "only this team's tickets (default: all teams)"),
            _parameter("status", "query", {"$ref": _REF + "Status"}, "only tickets in this status"),
            _parameter("channel", "query", {"$ref": _REF + "Channel"}, "only tickets from this channel"),
            _parameter(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 100},
                f"page size (default: INTAKE_PAGE_SIZE, {page_size})",
            ),
            _parameter("cursor", "query", {"type": "string"}, "the previous page's `next`"),
        ],
        "responses": {
            "200": _json_response("One page of tickets; `next` is null on the last page.", _REF + "TicketPage"),
            **_problems(FieldInvalidError, CursorInvalidError),
            "default": _problem_response("Unexpected: the store is unavailable or the service failed.", []),
        },
    }


def _show_ticket() -> dict[str, Any]:
    return {
        "operationId": "showTicket",
        "tags": ["tickets"],
        "summary": "One ticket with its contact, messages and history",
        "security": [{"sigv4": []}],
        "parameters": [_parameter("ticket_id", "path", _adapter_schema(TicketId), "the ticket's ULID")],
        "responses": {
            "200": _json_response("The ticket.", _REF + "TicketDetail"),
            **_problems(TicketNotFoundError),
            "default": _problem_response("Unexpected: the store is unavailable or the service failed.", []),
        },
    }


def _parameter(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


def _json_response(description: str, ref: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _problems(*errors: type[Exception]) -> dict[str, Any]:
    """The problem responses of a route, by status, each with the exact `type`s it may carry."""
    by_status: dict[int, list[tuple[str, str]]] = {}
    for error in errors:
        status, slug, title = PROBLEMS[error]
        by_status.setdefault(status, []).append((slug, title))
    return {
        str(status): _problem_response(" ".join(f"{title}." for _, title in found), [s for s, _ in found])
        for status, found in sorted(by_status.items())
    }


def _problem_response(description: str, slugs: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": _REF + "ProblemDetails"}
    if slugs:
        only = {"properties": {"type": {"enum": [TYPE_BASE + slug for slug in slugs]}}}
        schema = {"allOf": [schema, only]}
    return {"description": description, "content": {CONTENT_TYPE: {"schema": schema}}}


def _hand_written_schemas() -> dict[str, Any]:
    """Bodies that are not models of ours: provider payloads, the receipt, problems, health."""
    field_names = (
        "The form's fields by name; intake.yaml (`forms.<id>.fields`) says which carry the sender's "
        "name, email, phone, the subject, the message and the priority. Other fields are kept as the "
        "ticket's metadata."
    )
    return {
        "FormFields": {
            "title": "FormFields",
            "type": "object",
            "description": field_names + " Values that are not strings are kept as their JSON text; "
            "arrays are joined with ', '.",
            "additionalProperties": True,
        },
        "UrlencodedFormFields": {
            "title": "UrlencodedFormFields",
            "type": "object",
            "description": field_names + " A name given more than once has its values joined with ', '.",
            "additionalProperties": {"type": "string"},
        },
        "MultipartFormFields": {
            "title": "MultipartFormFields",
            "type": "object",
            "description": field_names + " Parts with a filename are attachments, within the form's "
            "`attachments` limits (count, size per file, media types).",
            "additionalProperties": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "string", "contentMediaType": "application/octet-stream"},
                ]
            },
        },
        "TypeformWebhook": {
            "title": "TypeformWebhook",
            "type": "object",
            "description": "Typeform's webhook payload; answers are mapped by their field's `ref`, hidden "
            "fields by name. `form_response.token` identifies the submission (retries make one ticket).",
            "required": ["form_response"],
            "properties": {
                "event_id": {"type": "string"},
                "event_type": {"type": "string"},
                "form_response": {
                    "type": "object",
                    "properties": {
                        "token": {"type": "string"},
                        "hidden": {"type": "object", "additionalProperties": True},
                        "answers": {"type": "array", "items": {"$ref": _REF + "TypeformAnswer"}},
                    },
                    "additionalProperties": True,
                },
            },
            "additionalProperties": True,
        },
        "TypeformAnswer": {
            "title": "TypeformAnswer",
            "type": "object",
            "description": "The value sits under the key named by `type` (`text`, `email`, `choice`, ...).",
            "required": ["type", "field"],
            "properties": {
                "type": {"type": "string"},
                "field": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "ref": {"type": "string"}},
                    "additionalProperties": True,
                },
            },
            "additionalProperties": True,
        },
        "Receipt": {
            "title": "Receipt",
            "type": "object",
            "required": ["receipt"],
            "properties": {
                "receipt": {
                    **_adapter_schema(ReceiptId),
                    "description": "The receipt id (a ULID): quote it to find the request in the logs.",
                }
            },
            "additionalProperties": False,
        },
        "ProblemDetails": {
            "title": "ProblemDetails",
            "type": "object",
            "description": "RFC 9457 problem details.",
            "required": ["type", "title", "status", "detail", "instance"],
            "properties": {
                "type": {
                    "type": "string",
                    "format": "uri",
                    "description": f"Stable: `{TYPE_BASE}<slug>`; match on it, not on `title` or `detail`.",
                },
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "instance": {"type": "string", "description": "The correlation id (receipt or request id)."},
                "field": {"type": "string", "description": "field-invalid only: the field at fault."},
            },
            "additionalProperties": True,
        },
        "Health": {
            "title": "Health",
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
            "additionalProperties": False,
        },
    }


# ----------------------------------------------------------------------------------------- helpers


def _adapter_schema(alias: Any) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(alias).json_schema()
    return schema


def _closed_maps(schema: Any) -> Any:
    """Maps keyed by a constrained name (`teams`, `forms`) reject other keys, as pydantic does.

    pydantic describes `dict[Name, X]` with `patternProperties` alone, which lets any other key
    through; without `additionalProperties: false` an editor would not flag `Support Team:`.
    """
    if isinstance(schema, dict):
        closed = {key: _closed_maps(value) for key, value in schema.items()}
        is_map = closed.get("type") == "object" and "patternProperties" in closed and "properties" not in closed
        if is_map and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed_maps(item) for item in schema]
    return schema


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
