"""Agent tools' API: the ticket list, one ticket with its thread, contacts, quarantined email, dead-lettered
messages, health; and the web console's pages (`intake.handlers.console`), which call the same domain code."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from intake import runtime
from intake.errors import FieldInvalidError
from intake.handlers import console, imported, problems
from intake.model import AgentAction, Channel, QuarantineStatus, Status
from intake.observability import count, logger, metrics, traced

app = APIGatewayHttpResolver()
problems.register(app)
app.include_router(console.router)  # GET / and /console/...: HTML for people, over the same calls
runtime.settings()  # cold start: a bad INTAKE_* variable fails here, named


def _json(payload: Any) -> Response[str]:
    return Response(200, "application/json", json.dumps(payload))


def _json_body() -> Any:
    """The request's JSON (None when it has no body); anything else is a 400 naming the body: not JSON, not
    UTF-8, or nested deeper than a parser should follow."""
    if not app.current_event.body:
        return None
    try:
        return json.loads(app.current_event.decoded_body or "")
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError and bad base64 are ValueErrors
        raise FieldInvalidError("(body)", "must be JSON (UTF-8)") from None


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
    chosen = [team] if team else teams
    order = query.get("order", "newest")
    if order not in ("newest", "due"):
        raise FieldInvalidError("order", "must be newest or due")
    due_before = _instant("due_before", query.get("due_before"))
    if order == "due" or due_before is not None:  # the queue: open tickets, the most urgent first
        page = runtime.store().queue(
            chosen, due_before=due_before, limit=_limit(query.get("limit")), cursor=query.get("cursor")
        )
        return _json(page.model_dump(mode="json"))
    page = runtime.store().list_tickets(
        chosen,
        status=_enum(Status, "status", query.get("status")),
        channel=_enum(Channel, "channel", query.get("channel")),
        breached=_flag("breached", query.get("breached")),
        limit=_limit(query.get("limit")),
        cursor=query.get("cursor"),
    )
    return _json(page.model_dump(mode="json"))


@app.post("/tickets/<ticket_id>/events")
def add_event(ticket_id: str) -> Response[str]:
    """An agent's action (responded, pending, resolved, reopened, assigned, priority_changed): it changes the
    ticket and its SLA clocks and is recorded in its history. Answers with the ticket as it is now."""
    action = _validated(AgentAction, _json_body())
    detail = runtime.tracker().act(_ticket_id(ticket_id), action, runtime.utc_now())
    logger.info("agent action", extra={"ticket_id": detail.id, "action": action.type})
    return _json(detail.model_dump(mode="json"))


@app.post("/tickets/<ticket_id>/replies")
def reply(ticket_id: str) -> Response[str]:
    """An agent's reply, sent on the channel and in the conversation the customer used, after this answer (202):
    recorded on the ticket as an outbound message (queued, then sent, delivered, read or failed). The same
    `Idempotency-Key` again answers the same reply, sent once."""
    from intake.replies import ReplyRequest

    key = (app.current_event.headers or {}).get("idempotency-key")
    if key is not None and not (0 < len(key) <= 255 and key.isascii() and key.isprintable()):
        raise FieldInvalidError("Idempotency-Key", "must be 1 to 255 printable ASCII characters")
    request = _validated(ReplyRequest, _json_body())
    accepted = runtime.accept_reply(_ticket_id(ticket_id), request, key)
    count("ReplyQueued" if accepted.created else "DuplicateDropped")
    location = {"Location": f"/tickets/{accepted.message.ticket_id}"}
    return Response(202, "application/json", json.dumps(accepted.answer()), headers=location)


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], body: Any) -> M:
    """The body as `model`; the first error a FieldInvalidError naming its field (a nested one by its path)."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        if first["loc"]:
            raise FieldInvalidError(".".join(str(part) for part in first["loc"]), first["msg"]) from None
        field, _, why = str(first.get("ctx", {}).get("error", first["msg"])).partition(": ")
        raise FieldInvalidError(field if why else "(body)", why or field) from None


@app.get("/tickets/<ticket_id>/sla")
def explain_sla(ticket_id: str) -> Response[str]:
    """Each SLA clock of the ticket and, as text, the policy, calendar and arithmetic behind its deadlines."""
    ticket_id = _ticket_id(ticket_id)
    timers = runtime.store().timers(ticket_id)
    explanation = runtime.tracker().explain(ticket_id)
    return _json({"timers": [t.model_dump(mode="json") for t in timers], "explanation": explanation})


@app.get("/tickets/<ticket_id>")
def show_ticket(ticket_id: str) -> Response[str]:
    return _json(runtime.store().ticket_detail(_ticket_id(ticket_id)).model_dump(mode="json"))


def _ticket_id(given: str) -> str:
    return runtime.store().ticket_id_of(given)


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
    """Let a quarantined email through: it becomes a ticket (or joins its thread). `{"team": "..."}` names the
    team that takes it when no team takes mail for its recipients."""
    from intake.emails import release
    from intake.ids import new_id

    now = runtime.utc_now()
    body = _json_body()
    team = body.get("team") if isinstance(body, dict) else None
    if team is not None and not isinstance(team, str):
        raise FieldInvalidError("team", "must be a team's id")
    stores = runtime.email_stores()
    released, result = release(runtime.store(), stores, quarantine_id, runtime.policy(), new_id, now, team)
    if result is not None:
        runtime.tracker().after_ingest(result, now)
    logger.info("quarantined email released", extra={"quarantine_id": quarantine_id, "ticket_id": released.ticket_id})
    return _json(released.model_dump(mode="json"))


@app.get("/failures")
def list_failures() -> Response[str]:
    """Every queue's dead-lettered messages, oldest first, with the error recorded when they failed."""
    from intake.failures import dead_lettered

    return _json(dead_lettered(runtime.dead_letter_queues(), runtime.store()).model_dump(mode="json"))


@app.post("/failures/<failure_id>/replay")
def replay_failure(failure_id: str) -> Response[str]:
    """Send a dead-lettered message back to its queue (its error fixed); what already became a message is not
    doubled. Answers {id, queue}."""
    from intake.failures import replay

    return _json({"id": failure_id, "queue": replay(runtime.dead_letter_queues(), failure_id)})


@app.get("/digests/<team>/<period>")
def preview_digest(team: str, period: str) -> Response[str]:
    """A team's digest (`?date=YYYY-MM-DD`: the window containing that local date; else the last complete
    one), computed and rendered, sent nowhere: {figures, subject, text, html}."""
    from intake.digest.publish import prepare

    query = app.current_event.query_string_parameters or {}
    day = _digest_args(team, period, query.get("date"))
    base_url = runtime.settings().public_base_url
    digest = prepare(runtime.store(), runtime.policy(), team, period, day, base_url=base_url, now=runtime.utc_now())
    return _json(digest.preview())


@app.post("/digests/<team>/<period>")
def publish_digest(team: str, period: str) -> Response[str]:
    """Publish a team's digest (body optional: {"date": "YYYY-MM-DD"}): archived, announced and mailed once per
    window by the digest function, after this answer (202), which names the window and where it will be."""
    from intake.digest.requests import requested

    body = _json_body()
    if body is not None and not isinstance(body, dict):
        raise FieldInvalidError("(body)", "must be a JSON object, or empty")
    raw = body.get("date") if body else None
    if raw is not None and not isinstance(raw, str):
        raise FieldInvalidError("date", "must be a date like 2026-12-01")
    day = _digest_args(team, period, raw)
    asked = requested(runtime.policy(), team, period, day, runtime.utc_now())
    runtime.digest_requests().request(asked)
    logger.info("digest requested", extra={"team": team, "period": period, "start": asked.start.isoformat()})
    return Response(202, "application/json", json.dumps(asked.answer()), headers={"Location": asked.preview_path})


def _digest_args(team: str, period: str, raw_date: str | None) -> date | None:
    from intake.digest import PERIODS

    teams = list(runtime.policy().teams)
    if team not in teams:
        raise FieldInvalidError("team", f"unknown team; known: {', '.join(teams)}")
    if period not in PERIODS:
        raise FieldInvalidError("period", f"must be one of {', '.join(PERIODS)}")
    if raw_date is None:
        return None
    try:
        return date.fromisoformat(raw_date)
    except ValueError:
        raise FieldInvalidError("date", "must be a date like 2026-12-01") from None


def _enum(kind: type[E], name: str, raw: str | None) -> E | None:
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise FieldInvalidError(name, f"must be one of {', '.join(m.value for m in kind)}") from None


def _flag(name: str, raw: str | None) -> bool | None:
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise FieldInvalidError(name, "must be true or false")
    return raw == "true"


def _instant(name: str, raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "+"))  # a `+` in a query string arrives as a space
    except ValueError:
        raise FieldInvalidError(name, "must be an ISO 8601 instant, e.g. 2026-12-01T17:00:00Z") from None
    if moment.tzinfo is None:
        raise FieldInvalidError(name, "must say its time zone (Z or +01:00)")
    return moment


def _limit(raw: str | None) -> int:
    default = runtime.settings().page_size
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise FieldInvalidError("limit", "must be a whole number from 1 to 100")
    return int(raw)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@traced
@metrics.log_metrics  # rejected queries are counted (RequestRejected)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


imported()
