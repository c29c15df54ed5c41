"""A local stand-in for Meta's Graph API media endpoints, as a real HTTP server on 127.0.0.1.

`GET /v21.0/<media_id>` answers the media's JSON (`url`, `mime_type`, `sha256`, `file_size`, `id`) and
`GET /media/<media_id>?...` its bytes, both only with the right bearer token (else 401, Graph error 190),
as the Cloud API does. Each media can be scripted to fail its first N requests, serve other bytes than
it declares, answer a fixed status, hang past a client's timeout, or redirect its download.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

VERSION = "v21.0"
TOKEN = "test-graph-token"


@dataclass
class Media:
    content: bytes
    mime_type: str = "image/jpeg"
    failures: int = 0  # the first N requests for its URL answer 500
    served: bytes | None = None  # bytes served instead of `content` (its sha256 stays that of `content`)
    status: int | None = None  # every request for its URL answers this status
    hang_s: float = 0.0  # wait this long before answering for its URL
    redirect: bool = False  # its download answers 302 to a second location, which needs no token
    declared_size: int | None = None  # `file_size` to declare instead of the real one

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class Seen:
    path: str  # without the query string
    query: str
    authorization: str | None


@dataclass
class GraphApi:
    port: int = 0
    media: dict[str, Media] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{VERSION}"

    def add(self, media_id: str, content: bytes, **behaviour: Any) -> Media:
        self.media[media_id] = Media(content, **behaviour)
        return self.media[media_id]

    def requests_for(self, path_start: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.startswith(path_start)]

    def url_requests(self, media_id: str) -> int:
        return len(self.requests_for(f"/{VERSION}/{media_id}"))

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        with self._lock:
            self.seen.append(Seen(parts.path, parts.query, handler.headers.get("Authorization")))
        kind, _, media_id = parts.path.strip("/").partition("/")
        media = self.media.get(media_id)
        if kind == "cdn" and media is not None:  # a redirect's target, authorized by its URL alone
            return _send(handler, 200, media.served or media.content, media.mime_type)
        if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
            error = {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
            return _send(handler, 401, json.dumps(error).encode(), "application/json")
        if media is None or kind not in (VERSION, "media"):
            return _send(handler, 404, b"", "text/plain")
        if kind == "media":
            if media.redirect:
                handler.send_response(302)
                handler.send_header("Location", f"/cdn/{media_id}?sig=cdn-signature")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return None
            return _send(handler, 200, media.served or media.content, media.mime_type)
        if media.hang_s:
            self._released.wait(media.hang_s)
        with self._lock:
            failing = media.failures > 0
            if failing:
                media.failures -= 1
        if media.status is not None or failing:
            return _send(handler, media.status or 500, b'{"error": {"code": 2}}', "application/json")
        answer = {
            "messaging_product": "whatsapp",
            "url": f"http://127.0.0.1:{self.port}/media/{media_id}?mid={media_id}&ext=1&hash=secret-query",
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "file_size": str(len(media.content) if media.declared_size is None else media.declared_size),
            "id": media_id,
        }
        return _send(handler, 200, json.dumps(answer).encode(), "application/json")


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    with suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout): carry on
        handler.wfile.write(body)


@contextmanager
def serving() -> Iterator[GraphApi]:
    """The Graph API stand-in on 127.0.0.1 and a free port, for the duration of the block."""
    api = GraphApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            api._answer(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="graph-api", daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api._released.set()  # hung answers end now
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
