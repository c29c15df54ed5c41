"""The web console as the api function serves it in AWS: DynamoDB and S3 (moto), signed in with the OIDC provider."""

from __future__ import annotations

import base64

from tests.aws.conftest import Stack
from tests.aws.oidc_provider import EMAIL, HOST, Browser, Provider, provider, sign_in, text

__all__ = ["provider"]  # the fixture (tests.aws.oidc_provider)


def test_the_console_reads_dynamodb_and_s3_and_acts_as_the_signed_in_agent(stack: Stack, provider: Provider) -> None:
    # Given a form with a picture, made a ticket by the worker, and a lead signed in with the provider
    status, _ = stack.post_sample("website-multipart.json")
    assert status == 202 and stack.work() == 1
    [ticket] = stack.get("/tickets")[1]["items"]
    browser = Browser(HOST)
    assert sign_in(browser, provider)["statusCode"] == 303

    # When the lead opens the queue and the ticket
    queue, page = browser.get("/"), browser.get(f"/console/tickets/{ticket['reference']}")

    # Then both are pages with the ticket, its picture served from the archive as a picture
    assert queue["statusCode"] == 200 and ticket["reference"] in text(queue)
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert f'<img src="/console/tickets/{ticket["id"]}/files/0/0"' in text(page)
    picture = browser.get(f"/console/tickets/{ticket['id']}/files/0/0")
    assert picture["statusCode"] == 200 and picture["isBase64Encoded"] is True
    assert base64.b64decode(picture["body"]).startswith(b"\x89PNG")
    assert picture["headers"]["Content-Type"] == "image/png"

    # When they resolve it from the ticket's page, with no name typed; and another site posts the same form
    form = {"type": "resolved", "note": "done", "by": ""}
    answer = browser.post(f"/console/tickets/{ticket['id']}/actions", form)
    forged = browser.post(f"/console/tickets/{ticket['id']}/actions", form, origin="https://evil.test")

    # Then the resolution is recorded as the signed-in person did it; the cross-site one is refused
    assert answer["statusCode"] == 303 and forged["statusCode"] == 403
    detail = stack.get(f"/tickets/{ticket['id']}")[1]
    assert detail["status"] == "resolved"
    resolved = [e for e in detail["events"] if e["kind"] == "resolved"]
    assert [e["detail"] for e in resolved] == [{"by": EMAIL, "note": "done"}]
