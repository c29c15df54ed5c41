"""`intake.mail_policy.DEFAULT` reads and writes email exactly as `email.policy.default` does, one header class per
name instead of one per header, and a sender inventing header names cannot grow it without bound."""

from __future__ import annotations

from email import message_from_bytes
from email import policy as stdlib
from email.headerregistry import AddressHeader, ContentTypeHeader, UnstructuredHeader
from typing import Any

from intake.mail_policy import DEFAULT

RAW = (
    b'From: =?utf-8?q?Zo=C3=A9_Lema=C3=AEtre?= <zoe@example.fr>\r\nTo: a@example.com, "B, b" <b@example.com>\r\n'
    b"Subject: =?utf-8?q?Probl=C3=A8me?= de facturation\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"X-Odd: value\r\n\r\nBonjour\r\n"
)


def test_it_parses_and_writes_as_the_standard_policy_does() -> None:
    ours, theirs = message_from_bytes(RAW, policy=DEFAULT), message_from_bytes(RAW, policy=stdlib.default)

    for name in ("From", "To", "Subject", "Content-Type", "X-Odd"):
        assert str(ours[name]) == str(theirs[name])
    assert isinstance(ours["From"], AddressHeader) and ours["To"].addresses[1].display_name == "B, b"
    assert isinstance(ours["Content-Type"], ContentTypeHeader) and ours["Content-Type"].params["charset"] == "utf-8"
    assert isinstance(ours["X-Odd"], UnstructuredHeader)
    assert ours.as_bytes() == theirs.as_bytes()


def test_one_class_per_header_name() -> None:
    first, second = message_from_bytes(RAW, policy=DEFAULT), message_from_bytes(RAW, policy=DEFAULT)

    assert type(first["Subject"]) is type(second["Subject"])
    assert type(first["From"]) is not type(first["Subject"])


def test_invented_header_names_do_not_grow_it_without_bound() -> None:
    for number in range(2_000):
        DEFAULT.header_factory(f"X-Invented-{number}", "value")

    registry: Any = DEFAULT.header_factory
    assert registry.__getitem__.cache_info().currsize <= 512
