"""What Amazon SES receiving does, on one machine: raw MIME in, archived, queued for the same worker.

`intake inject-email FILE.eml` posts the file here (`POST /_local/email?to=...`); in AWS a receipt rule
stores the MIME in S3 and the worker is told by the bucket's event.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from intake import runtime
from intake.reception import receive_email

PATH = "/_local/email"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["requestContext"]["http"]["method"] != "POST" or event["rawPath"] != PATH:
        return {"statusCode": 404, "headers": {"content-type": "application/json"}, "body": '{"status": 404}'}
    raw = (
        base64.b64decode(event.get("body") or "")
        if event.get("isBase64Encoded")
        else (event.get("body") or "").encode()
    )
    query = event.get("queryStringParameters") or {}
    recipients = tuple(r.strip().lower() for r in query.get("to", "").split(",") if r.strip())
    arrived = receive_email(
        "ses",
        raw,
        inbox=runtime.inbox(),
        received_at=datetime.now(UTC),
        receipt_id=str(ULID()),
        recipients=recipients,
    )
    body = json.dumps({"receipt": arrived.receipt_id, "archived": arrived.raw_archive_key})
    return {"statusCode": 202, "headers": {"content-type": "application/json"}, "body": body}
