"""The local gateway's own limits, on a real socket: a request that stalls mid-body is dropped, not held."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from intake.local.gateway import listening_socket, make_server


def _never_called(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise AssertionError("a request that never finished reached a handler")


def test_a_body_that_stalls_is_dropped_after_the_read_timeout() -> None:
    sock = listening_socket("127.0.0.1", 0)
    server = make_server(sock, lambda path: ("receiver", _never_called), read_timeout_s=1)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        with socket.create_connection(sock.getsockname(), timeout=15) as client:
            # Given a client that announces 100 bytes and sends 10
            head = b"POST /webhooks/forms/contact HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
            client.sendall(head + b"x" * 10)
            started = time.monotonic()
            # Then the server closes the connection once the timeout has passed, without calling the handler
            assert client.recv(1024) == b""
            assert 1 <= time.monotonic() - started < 10
    finally:
        server.close()
