"""The local SMTP listener: long lines as real mailers send them, and a strict end of data."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from intake.local.smtp import SmtpController


class _Recorder:
    """Keeps every message the listener accepts, as the sender's bytes."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append(content if isinstance(content, bytes) else content.encode())
        return "250 Message accepted"


@pytest.fixture
def listener() -> Iterator[tuple[int, _Recorder]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    recorder = _Recorder()
    controller = SmtpController(recorder, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    yield port, recorder
    controller.stop()


def _data(port: int, raw: bytes) -> tuple[int, Any]:
    """One transaction whose DATA is sent byte for byte (smtplib's `sendmail` would fix bare line feeds)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail("ana@example.org")
        client.rcpt("support@example.com")
        client.putcmd("data")
        code, _ = client.getreply()
        assert code == 354
        client.send(raw)
        return client.getreply()


def test_a_line_longer_than_998_bytes_is_accepted_as_sent(listener: tuple[int, _Recorder]) -> None:
    port, recorder = listener
    long_line = "<p>" + "x" * 50_000 + "</p>"
    body = f"Subject: long\r\nContent-Type: text/html\r\n\r\n{long_line}\r\n"

    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        refused = client.sendmail("ana@example.org", ["support@example.com"], body.encode())

    assert refused == {}
    [received] = recorder.received
    assert long_line.encode() in received


def test_only_crlf_dot_crlf_ends_the_data_so_a_bare_lf_smuggles_nothing(listener: tuple[int, _Recorder]) -> None:
    port, recorder = listener
    smuggled = (
        b"Subject: first\r\n\r\nHello\n.\nMAIL FROM:<evil@example.net>\r\n"
        b"RCPT TO:<victim@example.com>\r\nDATA\r\nSubject: second\r\n\r\nforged\r\n.\r\n"
    )

    code, _ = _data(port, smuggled)

    assert code == 250
    [received] = recorder.received  # one message, with the would-be second one inside it
    assert b"Hello\n.\nMAIL FROM:<evil@example.net>" in received and b"forged" in received


def test_a_dot_after_a_bare_cr_ends_nothing_either(listener: tuple[int, _Recorder]) -> None:
    port, recorder = listener

    code, _ = _data(port, b"Subject: cr\r\n\r\nHello\r.\rstill the same message\r\n.\r\n")

    assert code == 250
    [received] = recorder.received
    assert received.endswith(b"Hello\r.\rstill the same message\r\n")


def test_a_dot_stuffed_line_is_unstuffed_and_the_message_ends_at_the_lone_dot(
    listener: tuple[int, _Recorder],
) -> None:
    port, recorder = listener

    code, _ = _data(port, b"Subject: dots\r\n\r\n..leading dot\r\n" + b"y" * 5000 + b"\r\n.\r\n")

    assert code == 250
    [received] = recorder.received
    assert received == b"Subject: dots\r\n\r\n.leading dot\r\n" + b"y" * 5000 + b"\r\n"
