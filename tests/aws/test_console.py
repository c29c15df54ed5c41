"""The web console as the api function serves it in AWS: DynamoDB and S3 (moto), the JWT authorizer's claims."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from intake.local.gateway import LocalContext, api_event
from tests.aws.conftest import Stack

HOST = "abc123.execute-api.eu-west-3.amazonaws.com"


def _call(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> dict[str, Any]:
    from intake.handlers import api

    event = api_event(method, path, {"host": HOST, **(headers or {})}, body, "198.51.100.7")
    # What the JWT authorizer adds once it has checked the bearer token (api.jwt in intake.yaml)
    event["requestContext"]["authorizer"] = {"jwt": {"claims": {"email": "lead@example.com"}, "scopes": None}}
    result: dict[str, Any] = api.handler(event, LocalContext("api", "req-console"))
    return result


def _text(result: dict[str, Any]) -> str:
    body = result["body"] or ""
    return base64.b64decode(body).decode() if result.get("isBase64Encoded") else body


def test_the_console_reads_dynamodb_and_s3_and_acts_as_the_signed_in_agent(stack: Stack) -> None:
    # Given a form with a picture, made a ticket by the worker
    status, _ = stack.post_sample("website-multipart.json")
    assert status == 202 and stack.work() == 1
    [ticket] = stack.get("/tickets")[1]["items"]

    # When the lead opens the queue and the ticket
    queue, page = _call("GET", "/"), _call("GET", f"/console/tickets/{ticket['reference']}")

    # Then both are pages with the ticket, its picture served from the archive as a picture
    assert queue["statusCode"] == 200 and ticket["reference"] in _text(queue)
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert f'<img src="/console/tickets/{ticket["id"]}/files/0/0"' in _text(page)
    picture = _call("GET", f"/console/tickets/{ticket['id']}/files/0/0")
    assert picture["statusCode"] == 200 and picture["isBase64Encoded"] is True
    assert base64.b64decode(picture["body"]).startswith(b"\x89PNG")
    assert picture["headers"]["Content-Type"] == "image/png"

    # When they resolve it from the ticket's page, with no name typed
    form = urlencode({"type": "resolved", "note": "done", "by": ""}).encode()
    posted = {"origin": f"https://{HOST}", "content-type": "application/x-www-form-urlencoded"}
    answer = _call("POST", f"/console/tickets/{ticket['id']}/actions", form, posted)
    forged = _call("POST", f"/console/tickets/{ticket['id']}/actions", form, {**posted, "origin": "https://evil.test"})

    # Then the resolution is recorded as the JWT's email did it; the cross-site one is refused
    assert answer["statusCode"] == 303 and forged["statusCode"] == 403
    detail = stack.get(f"/tickets/{ticket['id']}")[1]
    assert detail["status"] == "resolved"
    resolved = next(e for e in detail["events"] if e["kind"] == "resolved")
    assert resolved["detail"] == {"by": "lead@example.com", "note": "done"}
