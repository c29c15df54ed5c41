"""A stand-in for API Gateway's HTTP API: real HTTP in, the Lambda handlers' own events out.

Each request becomes the payload-v2 event API Gateway would send, goes to the same `handler`
function that runs in Lambda, and the handler's answer goes back as the HTTP response.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit
_TOO_LARGE = json.dumps(
    {
        "type": "urn:intake:problem:payload-too-large",
        "title": "The request is too large",
        "status": 413,
        "detail": f"API Gateway accepts at most {MAX_BODY} bytes",
    }
).encode()


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


def make_server(host: str, port: int, route: Callable[[str], tuple[str, Handler]]) -> ThreadingHTTPServer:
    """`route(path)` names the function that serves a path: (function name, its handler)."""

    class Gateway(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "intake-local"

        def _serve(self) -> None:
            body = self._body()
            if body is None:
                self._send(413, {"content-type": "application/problem+json", "connection": "close"}, _TOO_LARGE)
                return
            event = api_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
            name, handler = route(urlsplit(self.path).path)
            result = handler(event, LocalContext(name, event["requestContext"]["requestId"]))
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            headers = {k: v for k, v in (result.get("headers") or {}).items()}
            self._send(int(result.get("statusCode", 200)), headers, data)

        def _body(self) -> bytes | None:
            """The request body, chunked or not; None when it is over the limit (read and dropped)."""
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks, total = [], 0
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    total += size
                    chunk = self.rfile.read(size)
                    self.rfile.readline()
                    if total <= MAX_BODY:
                        chunks.append(chunk)
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks) if total <= MAX_BODY else None
            length = int(self.headers.get("Content-Length") or 0)
            if length <= MAX_BODY:
                return self.rfile.read(length) if length else b""
            while length > 0 and (dropped := self.rfile.read(min(length, 1 << 16))):
                length -= len(dropped)  # read it all, so that the client gets to read our answer
            return None

        def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the handlers log, structured."""

    server = ThreadingHTTPServer((host, port), Gateway)
    server.daemon_threads = True
    return server
