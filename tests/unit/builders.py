"""Small builders for the unit tests: requests as providers send them, and the mapping call."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from intake.channels import forms
from intake.config import Policy
from intake.model import Attachment, Channel, InboundMessage, Sender, WebhookRequest

RECEIPT_ID = "01JDQ8Z1W3C9G7T2M4K6P8R0SX"
RECEIVED_AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
BOUNDARY = "----intakeTestBoundary7MA4YWxk"


def request(body: bytes, content_type: str | None = None, **headers: str) -> WebhookRequest:
    """A POST as the receiver sees it; header names are given in snake case (`x_intake_signature`)."""
    named = {name.replace("_", "-").lower(): value for name, value in headers.items()}
    if content_type is not None:
        named["content-type"] = content_type
    return WebhookRequest(method="POST", path="/webhooks/forms/test", query="", headers=named, body=body)


def json_request(payload: Any, **headers: str) -> WebhookRequest:
    return request(json.dumps(payload).encode(), "application/json", **headers)


def multipart(
    fields: Iterable[tuple[str, str]] = (),
    files: Iterable[tuple[str, str, str, bytes]] = (),
    boundary: str = BOUNDARY,
) -> WebhookRequest:
    """A multipart/form-data body as a browser builds it; `files` are (field, filename, type, content)."""
    parts = []
    for name, value in fields:
        head = f'Content-Disposition: form-data; name="{name}"'
        parts.append(head.encode() + b"\r\n\r\n" + value.encode())
    for name, filename, content_type, content in files:
        disposition = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'
        head = f"{disposition}\r\nContent-Type: {content_type}"
        parts.append(head.encode() + b"\r\n\r\n" + content)
    delimiter = f"--{boundary}".encode()
    body = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts) + delimiter + b"--\r\n"
    return request(body, f"multipart/form-data; boundary={boundary}")


def map_fields(
    policy: Policy,
    form_id: str,
    fields: Mapping[str, str],
    *,
    submission_id: str | None = None,
    attachments: tuple[Attachment, ...] = (),
) -> InboundMessage:
    """`forms.to_inbound` as the receiver calls it, with the form's team's default region."""
    form = policy.forms[form_id]
    return forms.to_inbound(
        form_id,
        form,
        forms.Submission(dict(fields), submission_id=submission_id),
        default_region=policy.teams[form.team].default_region,
        receipt_id=RECEIPT_ID,
        received_at=RECEIVED_AT,
        raw_archive_key=f"raw/2026/11/23/forms/{RECEIPT_ID}",
        attachments=attachments,
    )


def form_message(received_at: datetime, receipt_id: str, **changes: Any) -> InboundMessage:
    """A normalized message from the `contact` form (Ana asks where her parcel is); `changes` override fields."""
    fields: dict[str, Any] = {
        "channel": Channel.FORM,
        "provider": "forms",
        "provider_message_id": "sha256-abc",
        "receipt_id": receipt_id,
        "received_at": received_at,
        "team": "support",
        "sender": Sender(name="Ana", email="ana@example.com"),
        "subject": "Where is my parcel?",
        "text": "It was due yesterday.",
        "raw_archive_key": "raw/2026/11/20/forms/x",
        "thread_key": "form#contact#sha256-abc",
        "dedupe_window_s": 600,
    }
    return InboundMessage(**{**fields, **changes})
