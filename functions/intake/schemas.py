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

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from intake import openapi_parts as parts
from intake.channels import registry
from intake.channels.sending import ReplyUndeliverableError, WindowClosedError
from intake.config import Name, Settings
from intake.digest.figures import Figures
from intake.digest.window import PERIODS
from intake.errors import (
    EmailUnroutableError,
    FailureNotFoundError,
    FieldInvalidError,
    IdempotencyKeyReusedError,
    PayloadTooLargeError,
    QuarantineNotFoundError,
    QuarantineReleasedError,
    SurveyLinkExpiredError,
    SurveyLinkInvalidError,
    TransitionInvalidError,
    UnsupportedMediaTypeError,
)
from intake.failures import FailureList
from intake.handlers.problems import TYPE_BASE
from intake.model import (
    AgentAction,
    Contact,
    ContactDetail,
    ContactId,
    InboundMessage,
    Message,
    QuarantinedEmail,
    QuarantineStatus,
    ReceiptId,
    SlaTimer,
    Ticket,
    TicketDetail,
    TicketEvent,
    TicketId,
    TicketPage,
)
from intake.policy import policy_model
from intake.replies import ReplyAccepted, ReplyRequest
from intake.satisfaction import MAX_COMMENT_CHARS
from intake.store import ContactNotFoundError, CursorInvalidError, TicketNotFoundError

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
_REF = parts.REF
# The agent routes: IAM (SigV4) at the gateway, or the JWTs of intake.yaml's `api.jwt` instead
_AGENTS: list[dict[str, list[str]]] = [{"sigv4": []}, {"jwt": []}]
_UNEXPECTED = "Unexpected: the store is unavailable or the service failed."
_HTML = "text/html; charset=utf-8"


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
    schema = _closed_maps(policy_model().model_json_schema())
    schema["title"] = "Policy"
    schema["description"] = (
        "Intake's policy file (intake.yaml): teams and forms. Also checked by `intake config check`, "
        "which adds what a schema cannot say (every form's team must be declared under `teams`)."
    )
    return {"$schema": DIALECT, **schema}


# ----------------------------------------------------------------------------------------- OpenAPI


def openapi() -> dict[str, Any]:
    """OpenAPI 3.1 of the routes the receiver and the read API serve."""
    models: list[tuple[type[BaseModel], Any]] = [
        (m, "serialization")
        for m in (
            TicketPage,
            TicketDetail,
            ContactDetail,
            QuarantinedEmail,
            SlaTimer,
            Figures,
            FailureList,
            ReplyAccepted,
        )
    ]
    requests: list[tuple[type[BaseModel], Any]] = [(AgentAction, "validation"), (ReplyRequest, "validation")]
    _, defs = models_json_schema([*models, *requests], ref_template=_REF + "{model}")
    components: dict[str, Any] = {**defs["$defs"], **_hand_written_schemas()}
    components["AgentAction"] = {**components["AgentAction"], "allOf": _action_needs()}
    webhooks: dict[str, dict[str, Any]] = {}
    for channel, route in registry.routes():
        webhooks.setdefault(route.path, {})[route.method.lower()] = channel.operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Intake",
            "version": version("intake"),
            "description": (
                "Customer messages in (web forms and Typeform, Twilio voice and SMS, WhatsApp, email through "
                "SES, SendGrid or Mailgun), tickets out: one thread per conversation with SLA clocks, agent "
                "actions, satisfaction surveys and team digests. Webhooks answer as soon as the request is "
                "verified, archived and queued. Errors are RFC 9457 problem+json with a stable `type`: "
                f"`{TYPE_BASE}<slug>`."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": Settings.model_fields["public_base_url"].default, "description": "intake serve"}],
        "tags": [
            {"name": "webhooks", "description": "What providers post; signed or origin-checked."},
            {
                "name": "tickets",
                "description": "The agent tools' API; IAM (SigV4) in AWS, or JWT when intake.yaml sets api.jwt.",
            },
            {"name": "contacts", "description": "Customers across channels; authorized as the tickets are."},
            {
                "name": "quarantine",
                "description": "Email held back by its spam, virus or DMARC verdicts; authorized as the tickets are.",
            },
            {"name": "digests", "description": "Each team's daily or weekly digest; authorized as the tickets are."},
            {
                "name": "failures",
                "description": "Messages a function failed on until their queue dead-lettered them, and their "
                "replay; for operators, authorized as the tickets are.",
            },
            {
                "name": "surveys",
                "description": "Satisfaction survey links, followed by customers: public, the signed token is "
                "the authorization.",
            },
            {"name": "operations", "description": "Health checks."},
        ],
        "paths": {
            **webhooks,
            "/csat/{token}": {"get": _open_survey(), "post": _answer_survey()},
            "/healthz": {"get": _healthz()},
            "/tickets": {"get": _list_tickets()},
            "/tickets/{ticket_id}": {"get": _show_ticket()},
            "/tickets/{ticket_id}/events": {"post": _add_event()},
            "/tickets/{ticket_id}/replies": {"post": _reply()},
            "/tickets/{ticket_id}/sla": {"get": _explain_sla()},
            "/contacts/{contact_id}": {"get": _show_contact()},
            "/quarantine": {"get": _list_quarantine()},
            "/quarantine/{quarantine_id}/release": {"post": _release_quarantined()},
            "/digests/{team}/{period}": {"get": _preview_digest(), "post": _publish_digest()},
            "/failures": {"get": _list_failures()},
            "/failures/{failure_id}/replay": {"post": _replay_failure()},
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
                },
                "jwt": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "In place of SigV4 when intake.yaml sets `api.jwt`: a JWT of its `issuer` "
                    "for one of its `audience`, checked at the API gateway.",
                },
                "sendgridBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "SendGrid Inbound Parse's URL credentials: the SENDGRID_INBOUND_USER and "
                    "SENDGRID_INBOUND_PASSWORD secrets (a mismatch is answered 403, webhook-signature-invalid).",
                },
            },
        },
    }


def _healthz() -> dict[str, Any]:
    return {
        "operationId": "health",
        "tags": ["operations"],
        "summary": "Readiness: 200 when the service answers",
        "security": [],
        "responses": {"200": parts.json_response("Ready.", _REF + "Health")},
    }


def _open_survey() -> dict[str, Any]:
    return {
        "operationId": "openSurvey",
        "tags": ["surveys"],
        "summary": "The question a survey link opens, with its score chosen; records nothing",
        "description": (
            "Mail security scanners follow every link in a message, so a GET never answers: the page shows the "
            "link's score and one button (with an optional comment) that POSTs it to the same link. Once the "
            "ticket has an answer, the page shows the score kept and the comment form."
        ),
        "security": [],
        "parameters": [_token_parameter()],
        "responses": {
            "200": _page_response("The question page (no scripts, not cached, not framed)."),
            **_pages(parts.problems(SurveyLinkInvalidError, TicketNotFoundError, SurveyLinkExpiredError)),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _answer_survey() -> dict[str, Any]:
    return {
        "operationId": "answerSurvey",
        "tags": ["surveys"],
        "summary": "Answer: record the link's score and the comment, if any",
        "description": (
            "The first score given for a ticket stands: another answer changes nothing and the page says which "
            "score was kept. A comment replaces an earlier one; an empty one keeps it."
        ),
        "security": [],
        "parameters": [_token_parameter()],
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": {"$ref": _REF + "SurveyComment"}}},
        },
        "responses": {
            "200": _page_response("The thank-you page, with the score and the comment kept."),
            **_pages(
                parts.problems(
                    FieldInvalidError,
                    SurveyLinkInvalidError,
                    TicketNotFoundError,
                    SurveyLinkExpiredError,
                    UnsupportedMediaTypeError,
                )
            ),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _list_tickets() -> dict[str, Any]:
    page_size = Settings.model_fields["page_size"].default
    return {
        "operationId": "listTickets",
        "tags": ["tickets"],
        "summary": "Tickets, newest first (or the open ones, the most urgent first), one page at a time",
        "description": (
            "`order=due` or `due_before` lists the queue instead: every open ticket, by its next deadline "
            "(`next_due_at`, a breached clock's is past, so breached tickets come first), earliest first, then the "
            "open tickets without a deadline (waiting on the customer, or no SLA), oldest first; `due_before` keeps "
            "those due before it. `status`, `channel` and `breached` do not apply to it."
        ),
        "security": _AGENTS,
        "parameters": [
            parts.parameter(
                "team", "query", parts.adapter_schema(Name), "only this team's tickets (default: all teams)"
            ),
            parts.parameter("status", "query", {"$ref": _REF + "Status"}, "only tickets in this status"),
            parts.parameter(
                "channel",
                "query",
                {"type": "string", "enum": list(registry.kinds())},
                "only tickets from this kind of conversation",
            ),
            parts.parameter(
                "breached",
                "query",
                {"type": "string", "enum": ["true", "false"]},
                "only tickets that breached an SLA target (`true`) or that did not (`false`)",
            ),
            parts.parameter(
                "order",
                "query",
                {"type": "string", "enum": ["newest", "due"], "default": "newest"},
                "`newest`: by creation, newest first; `due`: the queue, the earliest deadline first",
            ),
            parts.parameter(
                "due_before",
                "query",
                {"type": "string", "format": "date-time"},
                "the queue, only deadlines before this ISO 8601 instant, which must carry its zone "
                "(`2026-12-01T17:00:00Z` or `+01:00`)",
            ),
            parts.parameter(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 100},
                f"page size (default: INTAKE_PAGE_SIZE, {page_size})",
            ),
            parts.parameter("cursor", "query", {"type": "string"}, "the previous page's `next`"),
        ],
        "responses": {
            "200": parts.json_response("One page of tickets; `next` is null on the last page.", _REF + "TicketPage"),
            **parts.problems(FieldInvalidError, CursorInvalidError),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _show_ticket() -> dict[str, Any]:
    return {
        "operationId": "showTicket",
        "tags": ["tickets"],
        "summary": "One ticket with its contact, messages, history and SLA clocks",
        "security": _AGENTS,
        "parameters": [_ticket_parameter()],
        "responses": {
            "200": parts.json_response("The ticket.", _REF + "TicketDetail"),
            **parts.problems(TicketNotFoundError),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _add_event() -> dict[str, Any]:
    return {
        "operationId": "addTicketEvent",
        "tags": ["tickets"],
        "summary": "Record an agent's action: responded, pending, resolved, reopened, assigned, priority_changed",
        "description": (
            "The action changes the ticket and its SLA clocks (a response meets the response targets, pending "
            "pauses the clocks, a resolution stops them, reopening resumes resolution with the time it had left, "
            "a priority change replans the running clocks) and is recorded in its history. `assigned` needs "
            "`assignee`; `priority_changed` needs `priority`. An action the ticket's status does not allow "
            "(resolving a resolved ticket) is answered 409."
        ),
        "security": _AGENTS,
        "parameters": [_ticket_parameter()],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF + "AgentAction"}}},
        },
        "responses": {
            "200": parts.json_response("The ticket as it is now.", _REF + "TicketDetail"),
            **parts.problems(FieldInvalidError, TicketNotFoundError, TransitionInvalidError),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _reply() -> dict[str, Any]:
    return {
        "operationId": "replyToTicket",
        "tags": ["tickets"],
        "summary": "Answer the customer on the channel and in the conversation they used",
        "description": (
            "The reply goes to the conversation of the customer's latest message: their email thread (from the "
            "team's address, In-Reply-To and References, the `[#reference]` token in the subject, the thread quoted "
            "below), the Twilio number they texted or WhatsApped, the WhatsApp Cloud API number they wrote to; a "
            "voicemail is answered by SMS to a mobile caller, a form by email when it gave one. It is recorded on "
            "the ticket as an outbound message, queued, and answered 202 before it is sent; `GET /tickets/{id}` "
            "shows its state as the provider reports it (queued, sent, delivered, read, or failed with the "
            "provider's error). Once sent it counts as the team's response for the SLA clocks. WhatsApp allows "
            "free text and files for 24 hours after the customer's last message; then only an approved template "
            "(`template`, one of intake.yaml's `whatsapp.templates`; the Cloud API's only: through Twilio none is "
            "sent, and a closed window is a 409), else 409 `window-closed` listing them. The "
            "same `Idempotency-Key` again answers the same reply, sent once; with another body, 422."
        ),
        "security": _AGENTS,
        "parameters": [
            _ticket_parameter(),
            parts.parameter(
                "Idempotency-Key",
                "header",
                {"type": "string", "minLength": 1, "maxLength": 255},
                "a key of the client's choosing: a retried request with it makes no second reply (kept 2 days)",
            ),
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF + "ReplyRequest"}}},
        },
        "responses": {
            "202": {
                **parts.json_response("Queued: the reply as recorded.", _REF + "ReplyAccepted"),
                "headers": {
                    "Location": {"description": "The ticket (`GET /tickets/{id}`).", "schema": {"type": "string"}}
                },
            },
            **parts.problems(
                FieldInvalidError,
                TicketNotFoundError,
                WindowClosedError,
                ReplyUndeliverableError,
                PayloadTooLargeError,
                IdempotencyKeyReusedError,
            ),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _explain_sla() -> dict[str, Any]:
    return {
        "operationId": "explainTicketSla",
        "tags": ["tickets"],
        "summary": "The ticket's SLA clocks and why their deadlines are where they are",
        "security": _AGENTS,
        "parameters": [_ticket_parameter()],
        "responses": {
            "200": parts.json_response("Each clock, and the explanation as text.", _REF + "SlaExplanation"),
            **parts.problems(TicketNotFoundError),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _show_contact() -> dict[str, Any]:
    return {
        "operationId": "showContact",
        "tags": ["contacts"],
        "summary": "A customer across channels, with every ticket of theirs, newest first",
        "description": "A contact that was merged into another answers as the one it became.",
        "security": _AGENTS,
        "parameters": [parts.parameter("contact_id", "path", parts.adapter_schema(ContactId), "the contact's ULID")],
        "responses": {
            "200": parts.json_response("The contact and their tickets.", _REF + "ContactDetail"),
            **parts.problems(ContactNotFoundError),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _list_quarantine() -> dict[str, Any]:
    return {
        "operationId": "listQuarantine",
        "tags": ["quarantine"],
        "summary": "Emails held back by their verdicts, newest first",
        "security": _AGENTS,
        "parameters": [
            parts.parameter(
                "status",
                "query",
                {"$ref": _REF + "QuarantineStatus", "default": QuarantineStatus.HELD.value},
                "held (default) or released",
            )
        ],
        "responses": {
            "200": parts.json_response("The emails.", _REF + "QuarantineList"),
            **parts.problems(FieldInvalidError),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _release_quarantined() -> dict[str, Any]:
    return {
        "operationId": "releaseQuarantined",
        "tags": ["quarantine"],
        "summary": "Let a quarantined email through: it becomes a ticket (or joins its thread)",
        "security": _AGENTS,
        "parameters": [
            parts.parameter(
                "quarantine_id", "path", parts.adapter_schema(ReceiptId), "the quarantined email's id (a ULID)"
            )
        ],
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "team": {
                                "type": "string",
                                "description": "the team that takes it when no team takes mail for its recipients",
                            }
                        },
                    }
                }
            },
        },
        "responses": {
            "200": parts.json_response("The email as released, with its `ticket_id`.", _REF + "QuarantinedEmail"),
            **parts.problems(QuarantineNotFoundError, QuarantineReleasedError, EmailUnroutableError, FieldInvalidError),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _list_failures() -> dict[str, Any]:
    return {
        "operationId": "listFailures",
        "tags": ["failures"],
        "summary": "Every queue's dead-lettered messages, oldest first, with the error recorded when they failed",
        "description": "What each message is about (channel and receipt, or ticket) and why it failed (the "
        "exception's type and a short message), never its content. In AWS at most 500 per queue are read at once, "
        "and a FIFO queue shows at most 10 of one conversation until those are replayed; `dead_letters` counts them "
        "all.",
        "security": _AGENTS,
        "responses": {
            "200": parts.json_response("The dead-lettered messages.", _REF + "FailureList"),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _replay_failure() -> dict[str, Any]:
    return {
        "operationId": "replayFailure",
        "tags": ["failures"],
        "summary": "Send a dead-lettered message back to its queue, once its cause is fixed",
        "description": "Safe to repeat: what already became a message (the table's dedupe records) or was already "
        "sent (the notifier's claims) is not done twice.",
        "security": _AGENTS,
        "parameters": [
            parts.parameter("failure_id", "path", {"type": "string"}, "the dead letter's id (`id` in the list)")
        ],
        "responses": {
            "200": parts.json_response("The message is back on its queue.", _REF + "FailureReplayed"),
            **parts.problems(FailureNotFoundError),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _preview_digest() -> dict[str, Any]:
    return {
        "operationId": "previewDigest",
        "tags": ["digests"],
        "summary": "A team's digest, computed and rendered, sent nowhere",
        "security": _AGENTS,
        "parameters": [
            *_digest_parameters(),
            parts.parameter(
                "date",
                "query",
                {"type": "string", "format": "date"},
                "the window containing this local date (default: the last complete window)",
            ),
        ],
        "responses": {
            "200": parts.json_response("The figures, and the mail as it would be sent.", _REF + "DigestPreview"),
            **parts.problems(FieldInvalidError),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _publish_digest() -> dict[str, Any]:
    return {
        "operationId": "publishDigest",
        "tags": ["digests"],
        "summary": "Publish a team's digest now: archived, announced and mailed once per window",
        "description": (
            "Answered at once (202) with the window and where the digest will be; the digest function publishes "
            "it after the answer (locally, `intake serve` publishes it before). An empty window is skipped unless "
            "the team's `digests.send_empty` is set; a window that is over is mailed once, whoever asks again."
        ),
        "security": _AGENTS,
        "parameters": _digest_parameters(),
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"$ref": _REF + "DigestRequest"}}},
        },
        "responses": {
            "202": {
                **parts.json_response("Accepted: the window, and where the digest will be.", _REF + "DigestRequested"),
                "headers": {
                    "Location": {
                        "description": "The window's preview (`GET /digests/{team}/{period}?date=<start>`).",
                        "schema": {"type": "string"},
                    }
                },
            },
            **parts.problems(FieldInvalidError),
            "default": parts.problem_response(_UNEXPECTED, []),
        },
    }


def _action_needs() -> list[dict[str, Any]]:
    """What `AgentAction`'s own validator requires beyond its fields, said in JSON Schema."""
    needs = {"assigned": "assignee", "priority_changed": "priority"}
    return [
        {
            "if": {"properties": {"type": {"const": action}}, "required": ["type"]},
            "then": {"required": [field], "properties": {field: {"not": {"type": "null"}}}},
        }
        for action, field in needs.items()
    ]


def _ticket_parameter() -> dict[str, Any]:
    reference = {"type": "string", "pattern": "^[0-9A-Za-z]{8}$", "description": "its reference, in any case"}
    schema = {"anyOf": [parts.adapter_schema(TicketId), reference]}
    return parts.parameter("ticket_id", "path", schema, "the ticket's ULID, or its 8-character reference (`F770VB20`)")


def _token_parameter() -> dict[str, Any]:
    return parts.parameter(
        "token",
        "path",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$"},
        "the link's signed token: ticket, score and expiry, HMAC-SHA256 with the CSAT_SECRET secret",
    )


def _digest_parameters() -> list[dict[str, Any]]:
    return [
        parts.parameter("team", "path", parts.adapter_schema(Name), "the team's key under `teams` in intake.yaml"),
        parts.parameter("period", "path", {"type": "string", "enum": list(PERIODS)}, "the digest's window"),
    ]


def _page_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {
            "Cache-Control": {"schema": {"const": "no-store"}},
            "Content-Security-Policy": {"schema": {"type": "string"}},
        },
        "content": {_HTML: {"schema": {"type": "string", "contentMediaType": "text/html"}}},
    }


def _pages(responses: dict[str, Any]) -> dict[str, Any]:
    """Problems on a page route: a client whose Accept names text/html (a browser) reads a small page instead."""
    page = {"schema": {"type": "string", "contentMediaType": "text/html"}}
    return {
        status: {**response, "content": {**response["content"], _HTML: page}} for status, response in responses.items()
    }


def _hand_written_schemas() -> dict[str, Any]:
    """Bodies that are not models of ours: provider payloads, receipts, problems, the answers handlers assemble."""
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
                    **parts.adapter_schema(ReceiptId),
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
        "WhatsAppReceipt": {
            "title": "WhatsAppReceipt",
            "type": "object",
            "required": ["receipt", "queued"],
            "properties": {
                "receipt": {**parts.adapter_schema(ReceiptId), "description": "The receipt id (a ULID)."},
                "queued": {"type": "integer", "minimum": 0, "description": "Messages and reactions queued."},
            },
            "additionalProperties": False,
        },
        "SurveyComment": {
            "title": "SurveyComment",
            "type": "object",
            "description": "The survey page's form (UTF-8): an optional comment.",
            "properties": {"comment": {"type": "string", "maxLength": MAX_COMMENT_CHARS}},
            "additionalProperties": True,
        },
        "SlaExplanation": {
            "title": "SlaExplanation",
            "type": "object",
            "required": ["timers", "explanation"],
            "properties": {
                "timers": {"type": "array", "items": {"$ref": _REF + "SlaTimer"}},
                "explanation": {
                    "type": "string",
                    "description": "The policy, calendar and arithmetic behind each deadline, in the team's time "
                    "zone, as text.",
                },
            },
            "additionalProperties": False,
        },
        "QuarantineList": {
            "title": "QuarantineList",
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": {"$ref": _REF + "QuarantinedEmail"}}},
            "additionalProperties": False,
        },
        "DigestRequest": {
            "title": "DigestRequest",
            "type": "object",
            "properties": {
                "date": {
                    "type": "string",
                    "format": "date",
                    "description": "The window containing this local date (default: the last complete window).",
                }
            },
            "additionalProperties": True,
        },
        "DigestPreview": {
            "title": "DigestPreview",
            "type": "object",
            "required": ["figures", "subject", "text", "html"],
            "properties": {
                "figures": {"$ref": _REF + "Figures"},
                "subject": {"type": "string"},
                "text": {"type": "string"},
                "html": {"type": "string", "contentMediaType": "text/html"},
            },
            "additionalProperties": False,
        },
        "DigestRequested": {
            "title": "DigestRequested",
            "type": "object",
            "required": [
                "accepted",
                "team",
                "period",
                "start",
                "end",
                "digest_id",
                "archive",
                "announced_as",
                "preview",
            ],
            "properties": {
                "accepted": {"const": True},
                "team": {"type": "string"},
                "period": {"enum": list(PERIODS)},
                "start": {"type": "string", "format": "date", "description": "The window's first local date."},
                "end": {"type": "string", "format": "date", "description": "The window's last local date."},
                "digest_id": {"type": "string", "description": "`<team>#<period>#<start date>`"},
                "archive": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The S3 keys (`digests/<team>/<period>/<start>.html|txt|json`) it will be "
                    "archived under, whether or not it is mailed.",
                },
                "announced_as": {
                    "const": "DigestPublished",
                    "description": "The event on Intake's bus that says it was published, with its figures.",
                },
                "preview": {"type": "string", "description": "The path of the window's preview."},
            },
            "additionalProperties": False,
        },
        "FailureReplayed": {
            "title": "FailureReplayed",
            "type": "object",
            "required": ["id", "queue"],
            "properties": {
                "id": {"type": "string", "description": "The dead letter's id."},
                "queue": {"type": "string", "description": "The queue it was sent back to."},
            },
            "additionalProperties": False,
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
