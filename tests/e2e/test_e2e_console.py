"""The web console over real HTTP, without a browser: what its pages escape, refuse and protect.

The browser itself (htmx refresh, countdowns, the agent's forms clicked) is `test_e2e_console_browser.py`."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from .client import Response, Server, contact_body, form_headers, post_contact_with_files


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 303 is the answer under test, not a page to follow


_OPENER = urllib.request.build_opener(_Stay)


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Response:
    """One request, its redirects not followed (as `client.http` does otherwise)."""
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with _OPENER.open(request, timeout=10) as answer:
            return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def _get(server: Server, path: str, headers: dict[str, str] | None = None) -> Response:
    return http("GET", server.url + path, headers=headers)


def _post(server: Server, path: str, body: bytes, headers: dict[str, str]) -> Response:
    return http("POST", server.url + path, body, headers)


SCRIPT = "<script>alert('pwned')</script>"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def server(launch: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    """Its own Intake: the queue shows the most urgent 50, which must be this module's tickets, not the session's."""
    return launch(tmp_path_factory.mktemp("console"))


def _post_form(server: Server, subject: str, **fields: str) -> dict[str, Any]:
    body = contact_body(subject, **fields)
    answer = _post(server, "/webhooks/forms/contact", body, form_headers(body))
    assert answer.status == 202, answer.body
    receipt = answer.json()["receipt"]
    return server.wait_for_receipts([receipt])[receipt]


def _post_files(server: Server, subject: str, files: list[tuple[str, str, bytes]]) -> dict[str, Any]:
    fields = {"name": "Lin Chen", "email": "lin@example.com", "subject": subject, "message": "See the files."}
    return post_contact_with_files(server, fields, [(f"file{n}", *file) for n, file in enumerate(files)])


def _same_origin(server: Server) -> dict[str, str]:
    """What a browser sends with a form posted from one of the console's own pages."""
    return {"origin": server.url, "content-type": "application/x-www-form-urlencoded"}


def _act(server: Server, ticket_id: str, headers: dict[str, str], **form: str) -> Response:
    return _post(server, f"/console/tickets/{ticket_id}/actions", urlencode(form).encode(), headers)


def _html(answer: Response) -> str:
    assert answer.media_type == "text/html", (answer.status, answer.body[:300])
    return answer.body.decode()


def test_every_page_escapes_what_customers_wrote(server: Server) -> None:
    # Given a ticket whose subject, name and message carry markup
    marker = uuid.uuid4().hex[:8]
    ticket = _post_form(
        server, f"{SCRIPT} {marker}", name=f"<b>Eve {marker}</b>", message=f"<img src=x onerror=1> {marker}"
    )

    # When the queue (filtered to the form channel) and the ticket are shown
    queue = _get(server, "/?" + urlencode({"channel": "form"}))
    page = _get(server, f"/console/tickets/{ticket['id']}")

    # Then the markup is text on both, and the pages forbid inline script whatever gets through
    for answer in (queue, page):
        text = _html(answer)
        assert answer.status == 200
        assert marker in text
        assert "<script>alert" not in text and "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in text
        assert "<b>Eve" not in text and "<img src=x" not in text
        csp = answer.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
    # And the only scripts are our own files
    scripts = [line for line in _html(page).splitlines() if "<script" in line]
    assert scripts and all('src="/console/static/' in line for line in scripts)


def test_the_queue_fragment_is_the_table_alone_and_bad_filters_are_400_pages(server: Server) -> None:
    fragment = _get(server, "/console/queue?" + urlencode({"team": "support"}))
    assert fragment.status == 200
    assert _html(fragment).startswith('<section id="queue"') and "<html" not in _html(fragment)
    assert 'hx-trigger="every 5s"' in _html(fragment)
    for query in ({"team": "nobody"}, {"channel": "pigeon"}, {"status": "lost"}):
        refused = _get(server, "/console/queue?" + urlencode(query))
        assert refused.status == 400, query
        assert next(iter(query)) in _html(refused)


def test_unknown_tickets_files_and_pages_are_404(server: Server) -> None:
    ticket = _post_form(server, f"no files {uuid.uuid4().hex[:8]}")
    for path in (
        "/console/tickets/01J0000000000000000000000Z",  # an id that is no ticket
        "/console/tickets/ZZZZZZZZ",  # a reference that is none
        f"/console/tickets/{ticket['id']}/files/0/0",  # a message without files
        f"/console/tickets/{ticket['id']}/files/7/0",
        f"/console/tickets/{ticket['id']}/files/x/0",
        "/console/static/secrets.txt",
        "/console/digests/nobody/daily",
        "/console/digests/support/hourly",
    ):
        answer = _get(server, path)
        assert (answer.status, answer.media_type) == (404, "text/html"), path


def test_archived_files_are_shown_only_when_they_are_pictures_and_downloaded_otherwise(server: Server) -> None:
    # Given a ticket with a picture and a text file that holds markup
    ticket = _post_files(
        server,
        f"files {uuid.uuid4().hex[:8]}",
        [("dot.png", "image/png", PNG), ("notes.txt", "text/plain", f"<html>{SCRIPT}</html>".encode())],
    )
    page = _html(_get(server, f"/console/tickets/{ticket['id']}"))
    base = f"/console/tickets/{ticket['id']}/files/0"
    assert f'<img src="{base}/0"' in page and f'href="{base}/1" download' in page

    picture, text = _get(server, f"{base}/0"), _get(server, f"{base}/1")

    # Then the picture is a picture, in place; the text file is opaque bytes to save, never a page
    assert (picture.status, picture.headers["content-type"], picture.body) == (200, "image/png", PNG)
    assert picture.headers["content-disposition"].startswith("inline;")
    assert text.status == 200 and text.headers["content-type"] == "application/octet-stream"
    assert text.headers["content-disposition"] == 'attachment; filename="notes.txt"'
    for answer in (picture, text):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in answer.headers["content-security-policy"]


def test_a_form_from_elsewhere_is_refused_and_changes_nothing(server: Server) -> None:
    ticket = _post_form(server, f"csrf {uuid.uuid4().hex[:8]}")
    form = {"type": "resolved", "by": "mallory"}

    no_origin = _act(server, ticket["id"], {"content-type": "application/x-www-form-urlencoded"}, **form)
    other_site = _act(server, ticket["id"], {**_same_origin(server), "origin": "https://evil.example"}, **form)
    opaque = _act(server, ticket["id"], {**_same_origin(server), "origin": "null"}, **form)

    assert [a.status for a in (no_origin, other_site, opaque)] == [403, 403, 403]
    assert server.detail(ticket["id"])["status"] == "open"
    release = _post(
        server, "/console/quarantine/01J0000000000000000000000Z/release", b"", {"origin": "https://evil.example"}
    )
    replay = _post(server, "/console/failures/x/replay", b"", {})
    assert (release.status, replay.status) == (403, 403)


def test_the_agents_forms_act_as_the_json_api_does_and_redirect_back(server: Server) -> None:
    ticket = _post_form(server, f"act {uuid.uuid4().hex[:8]}")
    reference = ticket["reference"]

    responded = _act(server, reference, _same_origin(server), type="responded", note=f"called {SCRIPT}", by="ana")
    assigned = _act(server, ticket["id"], _same_origin(server), type="assigned", assignee="bo", by="")
    twice = _act(server, ticket["id"], _same_origin(server), type="reopened", by="ana")  # it is not resolved
    incomplete = _act(server, ticket["id"], _same_origin(server), type="priority_changed", by="ana")

    assert (
        responded.status == 303 and responded.headers["location"] == f"/console/tickets/{ticket['id']}?done=responded"
    )
    assert assigned.status == 303
    assert (twice.status, incomplete.status) == (409, 400)
    assert "priority" in _html(incomplete)
    detail = server.detail(ticket["id"])
    events = {e["kind"]: e["detail"] for e in detail["events"]}
    assert events["responded"] == {"by": "ana", "note": f"called {SCRIPT}"}
    assert events["assigned"] == {"by": "console", "assignee": "bo"}  # no name given: the console says so
    assert detail["assignee"] == "bo" and detail["first_responded_at"] is not None
    page = _html(_get(server, f"/console/tickets/{ticket['id']}?done=responded"))
    assert "Done: responded" in page and "called &lt;script&gt;" in page


def test_the_reply_form_sent_twice_is_one_reply_and_an_empty_one_names_its_field(server: Server) -> None:
    ticket = _post_form(server, f"reply {uuid.uuid4().hex[:8]}")
    page = _html(_get(server, f"/console/tickets/{ticket['id']}"))
    [key] = re.findall(r'name="key" value="([0-9a-f]{32})"', page)  # one per page shown
    form = {"text": "We are on it.", "by": "ana", "key": key}
    path = f"/console/tickets/{ticket['reference']}/reply"

    first = _post(server, path, urlencode(form).encode(), _same_origin(server))
    again = _post(server, path, urlencode(form).encode(), _same_origin(server))  # a double click, a reload
    empty = _post(server, path, urlencode({**form, "text": " ", "key": "other"}).encode(), _same_origin(server))

    assert first.status == again.status == 303
    assert first.headers["location"] == f"/console/tickets/{ticket['id']}?done=reply_queued"
    assert empty.status == 400 and "text" in _html(empty)
    replies = [m for m in server.detail(ticket["id"])["messages"] if m["direction"] == "outbound"]
    assert [(m["text"], m["by"]) for m in replies] == [("We are on it.", "ana")]
    assert key not in _html(_get(server, f"/console/tickets/{ticket['id']}"))  # the next page, the next key


def test_quarantine_failures_and_digests_pages_show(server: Server) -> None:
    for path in ("/console/quarantine", "/console/quarantine?status=released", "/console/failures", "/console/digests"):
        answer = _get(server, path)
        assert answer.status == 200, path
        assert "<h1>" in _html(answer)
    assert 'src="/console/digests/support/daily"' in _html(_get(server, "/console/digests"))
    frame = _get(server, "/console/digests/support/daily")
    assert frame.status == 200 and "Customer Support" in _html(frame)
    assert "frame-ancestors 'self'" in frame.headers["content-security-policy"]
    assert "script-src" not in frame.headers["content-security-policy"]  # default-src 'none': no script at all


def test_static_files_are_cached_for_a_year_at_a_url_that_names_their_content(server: Server) -> None:
    page = _html(_get(server, "/"))
    for name in ("console.css", "console.js", "htmx.min.js"):
        start = page.index(f"/console/static/{name}?v=")
        url = page[start : page.index('"', start)]
        answer = _get(server, url)
        assert answer.status == 200, name
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert _get(server, "/console/static/console.js").headers["content-type"].startswith("text/javascript")


@pytest.fixture(scope="module")
def guarded(launch: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    """Its own Intake with an agent token."""
    return launch(tmp_path_factory.mktemp("guarded"), settings={"INTAKE_AGENT_TOKEN": "s3cret"})


def _sign_in(server: Server, token: str, origin: str | None = None, next_page: str = "/") -> Response:
    headers = {"content-type": "application/x-www-form-urlencoded", "origin": origin or server.url}
    return _post(server, "/console/login", urlencode({"token": token, "next": next_page}).encode(), headers)


def test_with_an_agent_token_a_browser_signs_in_once_and_its_cookie_opens_the_console(guarded: Server) -> None:
    # Without the token: the pages send the browser to the sign-in form, which (with our CSS and JS) is open
    first = _get(guarded, "/?team=support")
    assert first.status == 303 and first.headers["location"] == "/console/login?next=%2F%3Fteam%3Dsupport"
    assert _get(guarded, "/console/login").status == 200
    assert _get(guarded, "/console/static/console.css").status == 200
    polled = http(
        "GET", guarded.url + "/console/queue", headers={"hx-request": "true", "hx-current-url": guarded.url + "/"}
    )
    assert polled.status == 401 and polled.headers["hx-redirect"] == "/console/login?next=%2F"

    # A wrong token, or one posted from another site, sets nothing
    wrong = _sign_in(guarded, "nope")
    assert wrong.status == 303 and wrong.headers["location"].startswith("/console/login?failed=1")
    assert "set-cookie" not in wrong.headers
    elsewhere = _sign_in(guarded, "s3cret", origin="https://evil.example")
    assert elsewhere.status == 403 and "set-cookie" not in elsewhere.headers

    # The right one sets an HttpOnly, SameSite=Strict cookie that is not the token, and goes where it was asked
    signed = _sign_in(guarded, "s3cret", next_page="/console/failures")
    assert signed.status == 303 and signed.headers["location"] == "/console/failures"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "s3cret" not in cookie
    session = {"cookie": cookie.split(";", 1)[0]}
    # Where the bearer header is accepted, the cookie is too; a forged one is not
    assert http("GET", guarded.url + "/", headers=session).status == 200
    assert http("GET", guarded.url + "/tickets", headers=session).status == 200
    assert http("GET", guarded.url + "/", headers={"cookie": "intake_session=" + "0" * 64}).status == 303
    assert http("GET", guarded.url + "/", headers={"authorization": "Bearer s3cret"}).status == 200
    # Only to our own paths after signing in
    assert _sign_in(guarded, "s3cret", next_page="//evil.example/").headers["location"] == "/"
    # Signing out forgets the cookie
    out = _post(guarded, "/console/logout", b"", {"origin": guarded.url})
    assert out.status == 303 and "Max-Age=0" in out.headers["set-cookie"]


def test_signed_in_forms_still_need_their_own_origin(guarded: Server) -> None:
    session = _sign_in(guarded, "s3cret").headers["set-cookie"].split(";", 1)[0]
    headers = {"cookie": session, "content-type": "application/x-www-form-urlencoded"}
    body = urlencode({"type": "resolved", "by": "x"}).encode()
    refused = http("POST", guarded.url + "/console/tickets/01J0000000000000000000000Z/actions", body, headers)
    allowed = http(
        "POST",
        guarded.url + "/console/tickets/01J0000000000000000000000Z/actions",
        body,
        {**headers, "origin": guarded.url},
    )
    assert (refused.status, allowed.status) == (403, 404)  # past the origin check: no such ticket


def test_the_sign_in_page_keeps_where_to_go_only_on_our_own_site(guarded: Server) -> None:
    page = _html(_get(guarded, "/console/login?" + urlencode({"next": "https://evil.example/"})))
    assert 'name="next" value="/"' in page and "evil.example" not in page
