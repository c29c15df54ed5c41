"""API Gateway's HTTP API on one machine: real HTTP (waitress) in, the Lambda handlers' own events out.

Each request becomes the payload-v2 event API Gateway would send, goes to the same `handler` function that
runs in Lambda, and the handler's answer goes back as the HTTP response.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask

from intake import console
from intake.observability import logger

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit: answered 413 problem+json once read
# Read no further than this: a body over it is answered 413 as soon as that much has arrived (a client sending
# more, or a chunk header announcing 300 MB, never makes the server buffer more). Between the two, the body is
# read (waitress spools it to a temporary file) so that the client is not cut off before it reads the answer.
READ_LIMIT = 4 * MAX_BODY
READ_TIMEOUT_S = 30  # API Gateway's integration timeout; a request that stalls longer is dropped
BACKLOG = 2048  # connections the kernel queues while every thread is busy (bursts)
HEALTH_PATH = "/healthz"
CONSOLE = "console"  # the api function's pages (`GET /`, `/console/...`): for browsers, a sign-in form and a cookie
# what `--agent-token` protects: everything but webhooks and surveys
AGENT_FUNCTIONS = ("api", "ses-receiving", CONSOLE)


@dataclass
class LocalContext:
    """The parts of the Lambda context object that Powertools reads."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def api_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict[str, Any]:
    url = urlsplit(target)
    request_id = uuid.uuid4().hex
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": lowered,
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "http": {
                "method": method,
                "path": url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


class Gateway:
    """The WSGI application: `/healthz`, the agent token, then the route's handler, one request at a time.

    One at a time, as one Lambda environment takes one event: Powertools keeps the request being resolved on its
    router class (`BaseRouter.current_event`), shared by every resolver in the process, so two requests resolved
    at once would read each other's bodies."""

    def __init__(
        self, route: Callable[[str], tuple[str, Handler]], healthy: Callable[[], bool], agent_token: str | None
    ) -> None:
        self._route, self._healthy, self._token = route, healthy, agent_token
        self._one_at_a_time = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        target = environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/"
        path = urlsplit(target).path
        method = environ["REQUEST_METHOD"]
        if path == HEALTH_PATH:
            status, headers, body = self._health()
        else:
            headers_in = _headers(environ)
            name, handler = self._route(path)
            if name == CONSOLE and method == "POST" and path in (console.LOGIN_PATH, console.LOGOUT_PATH):
                status, headers, body = self._sign_in(path, headers_in, environ)
            elif name in AGENT_FUNCTIONS and (refusal := _from_another_site(method, headers_in, self._token)):
                status, headers, body = _problem(403, "cross-site-request", refusal)
            elif name in AGENT_FUNCTIONS and not self._agent_allowed(headers_in) and not _open_page(name, path):
                status, headers, body = self._refuse(name, method, target, headers_in)
            elif int(environ.get("CONTENT_LENGTH") or 0) > MAX_BODY:
                status, headers, body = _problem(413, "payload-too-large", f"at most {MAX_BODY} bytes")
            else:
                body_in = environ["wsgi.input"].read()  # waitress has read it whole (spooled past 1 MiB)
                event = api_event(method, target, headers_in, body_in, environ["REMOTE_ADDR"])
                status, headers, body = self._invoke(name, handler, event)
        start_response(f"{status} {_phrase(status)}", [*headers.items(), ("Content-Length", str(len(body)))])
        return [body]

    def _invoke(self, name: str, handler: Handler, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """The handler's answer as HTTP; an exception it let through (its resolver maps ours) is a 500 problem, as
        API Gateway answers a failed invocation."""
        request_id = event["requestContext"]["requestId"]
        try:
            with self._one_at_a_time:
                result = handler(event, LocalContext(name, request_id))
        except Exception:
            logger.exception("handler failed", extra={"function": name, "request_id": request_id})
            return _problem(500, "internal", "retry later")
        payload = result.get("body") or ""
        body = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items() if k.lower() != "content-length"}
        return int(result.get("statusCode", 200)), headers, body

    def _health(self) -> tuple[int, dict[str, str], bytes]:
        if self._healthy():
            return 200, {"content-type": "application/json"}, b'{"status":"ok"}'
        return _problem(503, "not-ready", "a listener or worker is not up (yet)")

    def _agent_allowed(self, headers: dict[str, str]) -> bool:
        """The bearer token (tools, the CLI), or the session cookie the console's sign-in set (browsers)."""
        if self._token is None:
            return True
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token.encode()):
            return True
        session = console.cookie(headers, console.SESSION_COOKIE) or ""
        return hmac.compare_digest(session.encode(), console.session_value(self._token).encode())

    def _refuse(
        self, name: str, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """401 problem+json; a browser asking for a console page is sent to the sign-in form instead (htmx, which
        polls, is told to go there with `HX-Redirect`)."""
        status, answer, body = _problem(401, "agent-token-required", "Send Authorization: Bearer <token>")
        if name != CONSOLE:
            return status, answer, body
        if headers.get("hx-request") == "true":  # a fragment: back to the page it is part of, after signing in
            page = urlsplit(headers.get("hx-current-url", "/"))
            back = page.path + (f"?{page.query}" if page.query else "")
            login = f"{console.LOGIN_PATH}?next={quote(console.safe_next(back), safe='')}"
            return status, {**answer, "HX-Redirect": login}, body
        login = f"{console.LOGIN_PATH}?next={quote(console.safe_next(target), safe='')}"
        if method == "GET":
            return 303, {"Location": login, "Cache-Control": "no-store"}, b""
        return status, answer, body

    def _sign_in(
        self, path: str, headers: dict[str, str], environ: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        """The console's sign-in (the form posts the agent token once; the answer sets an HttpOnly, SameSite=Strict
        cookie derived from it) and sign-out. Only from the console's own pages (Origin), like every console POST."""
        if not console.same_origin(headers):
            return _problem(403, "origin-forbidden", "sign in from the console's own page")
        length = min(int(environ.get("CONTENT_LENGTH") or 0), 64 * 1024)
        form = parse_qs(environ["wsgi.input"].read(length).decode("utf-8", "replace"))
        after = console.safe_next(form.get("next", ["/"])[0])
        secure = environ.get("wsgi.url_scheme") == "https"
        if path == console.LOGOUT_PATH:
            cookie = console.session_cookie(None, secure)
            return 303, {"Location": console.LOGIN_PATH, "Set-Cookie": cookie, "Cache-Control": "no-store"}, b""
        given = form.get("token", [""])[0]
        if self._token is not None and not hmac.compare_digest(given.encode(), self._token.encode()):
            logger.info("console sign-in refused")
            again = f"{console.LOGIN_PATH}?failed=1&next={quote(after, safe='')}"
            return 303, {"Location": again, "Cache-Control": "no-store"}, b""
        cookie = console.session_cookie(self._token, secure) if self._token else ""
        headers_out = {"Location": after, "Cache-Control": "no-store", **({"Set-Cookie": cookie} if cookie else {})}
        return 303, headers_out, b""


def _open_page(name: str, path: str) -> bool:
    """What a browser needs before it has signed in: the sign-in form and our CSS and JS."""
    return name == CONSOLE and (path == console.LOGIN_PATH or path.startswith(console.STATIC_PREFIX))


def _from_another_site(method: str, headers: dict[str, str], agent_token: str | None) -> str | None:
    """Why an agent request is refused as coming from another website, or None. Without a token, the agent routes
    (on the loopback: serve refuses another host) trust whoever reaches them, and a browser reaches them for any
    page it shows: a form posted from another site (no CORS preflight needed) carries that site's Origin, and a
    page that rebound its DNS name to 127.0.0.1 sends that name as Host. The CLI and curl send neither."""
    host = headers.get("host", "")
    if agent_token is None and not _is_local_name(urlsplit(f"//{host}").hostname or ""):
        return f"Host {host!r} is not a name of this machine (a DNS name rebound to it?); serve with --agent-token"
    origin = headers.get("origin")
    if method not in ("GET", "HEAD", "OPTIONS") and origin is not None and urlsplit(origin).netloc != host:
        return "a browser posted this from another website (its Origin is not this server)"
    return None


def _is_local_name(hostname: str) -> bool:
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.replace("_", "-").lower()] = str(environ[name])
    return headers


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a code HTTPStatus does not name
        return "Status"


def _problem(status: int, kind: str, detail: str) -> tuple[int, dict[str, str], bytes]:
    body = {
        "type": f"urn:intake:problem:{kind}",
        "title": _phrase(status),
        "status": status,
        "detail": detail,
    }
    return status, {"content-type": "application/problem+json"}, json.dumps(body).encode()


class _ProblemErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's own answers (a malformed request line, headers or chunk size: 400; a body over the limit: 413)
    as problem+json, like every other error."""

    def execute(self) -> None:
        error = self.request.error
        kind = "payload-too-large" if error.code == 413 else "request-malformed"
        if error.code == 431:
            kind = "headers-too-large"
        status, headers, body = _problem(error.code, kind, str(error.body))
        self.status = f"{status} {_phrase(status)}"
        self.response_headers.extend(headers.items())
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _ProblemChannel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _ProblemErrorTask


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with SO_REUSEPORT: every HTTP process of `intake serve` opens one on the same port,
    and the kernel shares the connections out among them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def make_server(
    sock: socket.socket,
    route: Callable[[str], tuple[str, Handler]],
    healthy: Callable[[], bool] = lambda: True,
    agent_token: str | None = None,
    read_timeout_s: int = READ_TIMEOUT_S,
) -> Any:
    """A waitress server on `sock` (call `.run()` in a thread, `.close()` to stop).

    Limits enforced while reading: a body over READ_LIMIT is answered 413 as soon as it is over (chunked or not),
    a connection idle or stalled mid-request for `read_timeout_s` is closed, and the listen backlog takes bursts."""
    server = create_server(
        Gateway(route, healthy, agent_token),
        sockets=[sock],
        threads=8,
        backlog=BACKLOG,
        connection_limit=1000,
        channel_timeout=read_timeout_s,
        cleanup_interval=min(5, read_timeout_s),
        max_request_body_size=READ_LIMIT,
        max_request_header_size=64 * 1024,
        asyncore_use_poll=True,
        expose_tracebacks=False,
        ident="intake",
    )
    server.channel_class = _ProblemChannel
    logging.getLogger("waitress").setLevel(logging.ERROR)  # its queue-depth warnings are not the operator's news
    return server
