"""Real SMTP on one machine (`intake serve --smtp-port 2525`): mail in, handled as SES receiving would.

Each accepted message is archived as MIME and queued for the same worker as every other email;
the envelope's recipients travel with it (they route it to a team). Lines longer than RFC 5321's 1,000
octets are accepted, as Postfix and Exchange accept them from real mailers (HTML on one line, long headers):
only the message's size can refuse it. The end of the data stays strict: CRLF "." CRLF and nothing else (a
bare LF before or after the dot ends nothing, so no second message can be smuggled inside the first).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import DATA_SIZE_DEFAULT, SMTP, Envelope, Session
from ulid import ULID

from intake import runtime
from intake.observability import logger
from intake.reception import receive_email


class _Receiving:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        # the envelope sender, as final delivery records it (SES does too): `<>` is a bounce's or an auto-reply's
        sender = (envelope.mail_from or "").replace("\r", "").replace("\n", "").strip("<> ")
        raw = f"Return-Path: <{sender}>\r\n".encode() + (content if isinstance(content, bytes) else content.encode())
        try:
            arrived = receive_email(
                "smtp",
                raw,
                inbox=runtime.inbox(),
                received_at=datetime.now(UTC),
                receipt_id=str(ULID()),
                recipients=tuple(r.lower() for r in envelope.rcpt_tos),
            )
        except Exception:  # not stored (disk full, queue busy): the sending server must keep it and retry
            logger.exception("email over smtp not stored; the sender is asked to retry")
            return "451 4.3.0 Message not stored, try again later"
        logger.info("email received over smtp", extra={"receipt_id": arrived.receipt_id})
        return f"250 Message accepted for delivery as {arrived.receipt_id}"


class _Listener(SMTP):
    """aiosmtpd's SMTP session, with any line length up to the message size limit (aiosmtpd: 1,001 bytes)."""

    line_length_limit = DATA_SIZE_DEFAULT


class SmtpController(Controller):
    """The listener's controller: `_Listener` sessions in a thread of their own."""

    def factory(self) -> SMTP:
        return _Listener(self.handler, **self.SMTP_kwargs)


def start(host: str, port: int) -> Any:
    """An SMTP server in its own thread; `stop()` the returned controller on shutdown."""
    controller = SmtpController(_Receiving(), hostname=host, port=port, decode_data=False)
    controller.start()
    return controller
