"""Mail over a real SMTP socket to `intake serve --smtp-port`, then the ticket over real HTTP."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage

from .client import Server, wait_until
from .conftest import SMTP_PORT


def test_mail_sent_over_smtp_becomes_an_email_ticket(server: Server) -> None:
    subject = f"Parcel never arrived {uuid.uuid4().hex[:8]}"
    mail = EmailMessage()
    mail["From"] = "Lena Vogel <lena.vogel@example.de>"
    mail["To"] = "support@example.com"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@mail.example.de>"
    mail.set_content("Guten Tag, my parcel 7781 never arrived.\n\nLena")

    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=10) as smtp:
        refused = smtp.send_message(mail, to_addrs=["support@example.com"])
    assert refused == {}

    ticket = wait_until(
        lambda: next((t for t in server.tickets() if t["subject"] == subject), None), 20, "the email's ticket"
    )
    assert (ticket["channel"], ticket["team"]) == ("email", "support")
    detail = server.detail(ticket["id"])
    assert detail["contact"]["emails"] == ["lena.vogel@example.de"]
    assert detail["messages"][0]["text"].startswith("Guten Tag, my parcel 7781 never arrived.")


def test_mail_with_lines_over_998_bytes_is_accepted_and_becomes_a_ticket(server: Server) -> None:
    subject = f"One long line {uuid.uuid4().hex[:8]}"
    sentence = "My order 4410 arrived broken and nobody answers the phone. "
    raw = (
        f"From: Ana Silva <ana.silva@example.org>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@mail.example.org>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{sentence * 100}\r\n"
    ).encode()

    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=10) as smtp:
        refused = smtp.sendmail("ana.silva@example.org", ["support@example.com"], raw)
    assert refused == {}

    ticket = wait_until(
        lambda: next((t for t in server.tickets() if t["subject"] == subject), None), 20, "the email's ticket"
    )
    assert server.detail(ticket["id"])["messages"][0]["text"].startswith(sentence * 10)
