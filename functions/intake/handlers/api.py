"""Agent tools' API: the ticket list, one ticket with its thread, contacts, quarantined email, health."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from intake import runtime
from intake.errors import FieldInvalidError
from intake.handlers import problems
from intake.model import Channel, QuarantineStatus, Status
from intake.observability import logger, metrics

app = APIGatewayHttpResolver()
problems.register(app)
runtime.settings()  # cold start: a bad INTAKE_* variable fails here, named


def _json(payload: Any) -> Response[str]:
    return Response(200, "application/json", json.dumps(payload))


@app.get("/healthz")
def healthz() -> Response[str]:
    return _json({"status": "ok"})


@app.get("/tickets")
def list_tickets() -> Response[str]:
    query = app.current_event.query_string_parameters or {}
    teams = list(runtime.policy().teams)
    team = query.get("team")
    if team is not None and team not in teams:
        raise FieldInvalidError("team", f"unknown team; known: {', '.join(teams)}")
    page = runtime.store().list_tickets(
        [team] if team else teams,
        status=_enum(Status, "status", query.get("status")),
        channel=_enum(Channel, "channel", query.get("channel")),
        limit=_limit(query.get("limit")),
        cursor=query.get("cursor"),
    )
    return _json(page.model_dump(mode="json"))


@app.get("/tickets/<ticket_id>")
def show_ticket(ticket_id: str) -> Response[str]:
    return _json(runtime.store().ticket_detail(ticket_id).model_dump(mode="json"))


E = TypeVar("E", Status, Channel, QuarantineStatus)


@app.get("/contacts/<contact_id>")
def show_contact(contact_id: str) -> Response[str]:
    return _json(runtime.store().contact_detail(contact_id).model_dump(mode="json"))


@app.get("/quarantine")
def list_quarantine() -> Response[str]:
    """Emails held back by their verdicts, newest first (`?status=held|released`; held by default)."""
    query = app.current_event.query_string_parameters or {}
    status = _enum(QuarantineStatus, "status", query.get("status", "held"))
    held = runtime.store().list_quarantine(status)
    return _json({"items": [h.model_dump(mode="json") for h in held]})


@app.post("/quarantine/<quarantine_id>/release")
def release_quarantined(quarantine_id: str) -> Response[str]:
    """Let a quarantined email through: it becomes a ticket (or joins its thread)."""
    from intake.emails import release
    from intake.handlers.ingest import new_id

    released = release(
        runtime.store(), runtime.email_stores(), quarantine_id, runtime.policy(), new_id, runtime.utc_now()
    )
    logger.info("quarantined email released", extra={"quarantine_id": quarantine_id, "ticket_id": released.ticket_id})
    return _json(released.model_dump(mode="json"))


def _enum(kind: type[E], name: str, raw: str | None) -> E | None:
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise FieldInvalidError(name, f"must be one of {', '.join(m.value for m in kind)}") from None


def _limit(raw: str | None) -> int:
    default = runtime.settings().page_size
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise FieldInvalidError("limit", "must be a whole number from 1 to 100")
    return int(raw)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics  # rejected queries are counted (RequestRejected)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
