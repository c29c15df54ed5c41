"""The pieces OpenAPI operations are written with, by `intake.schemas` and by each channel for its routes."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from intake.handlers.problems import CONTENT_TYPE, PROBLEMS, TYPE_BASE

REF = "#/components/schemas/"
UNEXPECTED = "Unexpected: the service is misconfigured or failed."


def parameter(
    name: str, where: str, schema: dict[str, Any], description: str, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": description,
    }


def provider_payload(description: str, *media_types: str) -> dict[str, Any]:
    schema = {"type": "object", "description": description}
    return {"required": True, "content": {media_type: {"schema": schema} for media_type in media_types}}


def json_response(description: str, ref: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def problems(*errors: type[Exception]) -> dict[str, Any]:
    """The problem responses of a route, by status, each with the exact `type`s it may carry."""
    by_status: dict[int, list[tuple[str, str]]] = {}
    for error in errors:
        status, slug, title = PROBLEMS[error]
        by_status.setdefault(status, []).append((slug, title))
    return {
        str(status): problem_response(" ".join(f"{title}." for _, title in found), [s for s, _ in found])
        for status, found in sorted(by_status.items())
    }


def problem_response(description: str, slugs: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": REF + "ProblemDetails"}
    if slugs:
        only = {"properties": {"type": {"enum": [TYPE_BASE + slug for slug in slugs]}}}
        schema = {"allOf": [schema, only]}
    return {"description": description, "content": {CONTENT_TYPE: {"schema": schema}}}


def adapter_schema(alias: Any) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(alias).json_schema()
    return schema


def webhook(operation: str, summary: str, description: str, responses: dict[str, Any], **parts: Any) -> dict[str, Any]:
    """A provider webhook's operation: tagged `webhooks`, no SigV4 (its own check), an unexpected-error default."""
    return {
        "operationId": operation,
        "tags": ["webhooks"],
        "summary": summary,
        "description": description,
        "security": parts.pop("security", []),
        **parts,
        "responses": {**responses, "default": problem_response(UNEXPECTED, [])},
    }
