"""Mailgun routes: the HMAC over timestamp + token (Mailgun's published vector), the 15-minute window,
and body-mime or the parsed fields turned into MIME the email path reads."""

from __future__ import annotations

import base64
import email
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode

import pytest

from intake.channels import mailgun, signatures
from intake.config import Policy
from intake.errors import SignatureInvalidError, UnsupportedMediaTypeError
from intake.local import samples
from intake.model import WebhookRequest
from intake.secrets import Secrets

# Mailgun's published example
KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
TIMESTAMP = "1403645220"
TOKEN = "5egbgr1vjgqxtrnp65xfznchgdccwh5d6i09vijqi3whgowmn6"
SIGNATURE = "9cfc5c41582e51246e73c88d34db3af0a3a2692a76fbab81492842f000256d33"
SENT_AT = 1_403_645_220
SIGNED = {"timestamp": TIMESTAMP, "token": TOKEN, "signature": SIGNATURE}

BOUNDARY = "mailgun-boundary-42"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "email"
MESSAGE_HEADERS = [
    ["Received", "from mail.example.org by mxa.mailgun.org with ESMTP; Mon, 23 Nov 2026 15:05:44 -0000"],
    ["From", "Lucía Fernández <lucia.fernandez@example.com>"],
    ["To", "support@example.com"],
    ["Subject", "Pantalla rota"],
    ["Message-Id", "<3b9f6c2e@example.com>"],
    ["Mime-Version", "1.0"],
    ["Content-Type", 'multipart/mixed; boundary="old"'],
]


def form(fields: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        path=mailgun.PATH,
        query="",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=urlencode(fields).encode(),
    )


def form_data(fields: list[tuple[str, bytes]], files: list[tuple[str, str, str, bytes]]) -> WebhookRequest:
    chunks = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
        for name, value in fields
    ]
    for name, filename, content_type, content in files:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        chunks.append(head.encode() + content + b"\r\n")
    body = b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()
    headers = {"content-type": f'multipart/form-data; boundary="{BOUNDARY}"'}
    return WebhookRequest(method="POST", path=mailgun.PATH, query="", headers=headers, body=body)


def read(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None and part.get_content_type() == f"text/{subtype}"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def accepts(fields: dict[str, str], *, key: str | None = KEY, now: float = SENT_AT) -> bool:
    try:
        assert mailgun.verify(fields, key, now) == fields["token"].strip()
    except SignatureInvalidError:
        return False
    return True


# -------------------------------------------------------------------------------------- signature


def test_signature_matches_mailguns_published_example() -> None:
    # Given Mailgun's published key, timestamp and token
    # When the signature is computed
    # Then it is the published hex digest
    assert signatures.mailgun_signature(KEY, TIMESTAMP, TOKEN) == SIGNATURE


def test_signed_request_is_accepted_and_its_token_returned() -> None:
    assert mailgun.verify(SIGNED, KEY, SENT_AT) == TOKEN
    assert accepts({**SIGNED, "signature": SIGNATURE.upper()})


@pytest.mark.parametrize("offset", [-mailgun.TOLERANCE_S, -60, 0, 60, mailgun.TOLERANCE_S], ids=lambda s: f"{s:+d}s")
def test_a_request_within_fifteen_minutes_of_our_clock_is_accepted(offset: int) -> None:
    assert accepts(SIGNED, now=SENT_AT - offset)


@pytest.mark.parametrize("offset", [-mailgun.TOLERANCE_S - 1, -86400, mailgun.TOLERANCE_S + 1, 86400])
def test_a_stale_or_future_timestamp_is_refused_even_when_signed(offset: int) -> None:
    # Given a correctly signed request whose timestamp is more than 15 minutes before or after our clock
    # When it is verified
    # Then it is refused: a replay from the past or a request from a skewed future
    assert not accepts(SIGNED, now=SENT_AT - offset)


@pytest.mark.parametrize(
    "forged",
    [
        {**SIGNED, "signature": "0" * 64},
        {**SIGNED, "token": TOKEN[:-1] + "x"},
        {**SIGNED, "timestamp": str(SENT_AT + 1)},
        {**SIGNED, "signature": SIGNATURE[:-2]},
        {**SIGNED, "signature": "sha256=" + SIGNATURE},
        {**SIGNED, "timestamp": "yesterday"},
        {"timestamp": TIMESTAMP, "token": TOKEN},
        {"token": TOKEN, "signature": SIGNATURE},
        {"timestamp": TIMESTAMP, "signature": SIGNATURE, "token": ""},
    ],
    ids=[
        "zeros",
        "other-token",
        "other-timestamp",
        "short",
        "prefixed",
        "not-a-time",
        "unsigned",
        "no-time",
        "no-token",
    ],
)
def test_a_forged_or_incomplete_signature_is_refused(forged: dict[str, str]) -> None:
    assert not accepts({"token": "", **forged})


def test_a_signature_made_with_another_key_is_refused() -> None:
    assert not accepts(SIGNED, key="key-another-account-0000000000000")


@pytest.mark.parametrize("key", [None, ""])
def test_nothing_is_accepted_without_a_configured_signing_key(key: str | None) -> None:
    assert not accepts(SIGNED, key=key)


# ----------------------------------------------------------------------------------------- fields


def test_fields_are_read_from_a_urlencoded_body() -> None:
    fields = mailgun.fields(form({**SIGNED, "subject": "Où est ma commande ?"}))
    assert fields["token"] == TOKEN and fields["subject"] == "Où est ma commande ?"


def test_fields_of_a_multipart_body_leave_files_out() -> None:
    request = form_data(
        [("timestamp", TIMESTAMP.encode()), ("token", TOKEN.encode())], [("attachment-1", "a.png", "image/png", PNG)]
    )
    assert mailgun.fields(request) == {"timestamp": TIMESTAMP, "token": TOKEN}


def test_a_json_body_is_not_a_mailgun_route_post() -> None:
    request = WebhookRequest(
        method="POST", path=mailgun.PATH, query="", headers={"content-type": "application/json"}, body=b"{}"
    )
    with pytest.raises(UnsupportedMediaTypeError):
        mailgun.fields(request)


# -------------------------------------------------------------------------------------- body-mime

MIME = (
    b"From: Amara Okafor <amara.okafor@example.org>\r\nTo: support@example.com\r\n"
    b"Subject: Re: [#7KQ2M9] Reset link\r\nMessage-ID: <m1@example.org>\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    b"Le lien a expir\xe9.\r\n"
)


def test_body_mime_is_handed_over_byte_for_byte_from_a_urlencoded_post() -> None:
    # Given a route ending in "mime": body-mime, urlencoded, with 8-bit Latin-1 in it
    body = urlencode({**SIGNED, "recipient": "support@example.com", "body-mime": MIME}).encode()
    request = WebhookRequest(
        method="POST",
        path=mailgun.PATH,
        query="",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=body,
    )
    # When the MIME is taken
    raw = mailgun.raw_mime(request)
    # Then it is the message as received
    assert raw == MIME
    assert text_of(read(raw), "plain").rstrip() == "Le lien a expiré."


def test_body_mime_is_handed_over_byte_for_byte_from_a_multipart_post() -> None:
    request = form_data([("token", TOKEN.encode()), ("body-mime", MIME)], [])
    assert mailgun.raw_mime(request) == MIME


def test_a_message_with_no_sender_at_all_is_permanently_unacceptable() -> None:
    # Given a MIME message without From, and no sender field
    request = form({**SIGNED, "body-mime": "To: support@example.com\r\nSubject: ?\r\n\r\nhello\r\n"})
    # When the MIME is taken
    # Then Mailgun is to be told 406, never to retry
    with pytest.raises(mailgun.PermanentlyUnacceptableError):
        mailgun.raw_mime(request)


def test_a_mime_message_without_from_but_with_an_envelope_sender_is_kept() -> None:
    request = form({"sender": "bounce@example.org", "body-mime": "To: support@example.com\r\n\r\nhello\r\n"})
    assert mailgun.raw_mime(request).startswith(b"To: support@example.com")


# ------------------------------------------------------------------------------------ parsed mode


def test_parsed_fields_are_rebuilt_with_headers_bodies_and_attachments() -> None:
    # Given a parsed post: message-headers, both bodies, a photo shown inline and a PDF
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n%%EOF\n"
    request = form_data(
        [
            *((name, value.encode()) for name, value in SIGNED.items()),
            ("message-headers", json.dumps(MESSAGE_HEADERS).encode()),
            ("body-plain", "El pedido llegó roto.\n".encode()),
            ("body-html", "<p>El pedido llegó <b>roto</b>.</p>".encode()),
            ("stripped-text", "El pedido llegó roto.".encode()),
            ("attachment-count", b"2"),
            ("content-id-map", b'{"<foto1@example.com>": "attachment-1"}'),
        ],
        [("attachment-1", "foto.png", "image/png", PNG), ("attachment-2", "albarán.pdf", "application/pdf", pdf)],
    )
    # When the message is rebuilt and read back with the stdlib's modern policy
    message = read(mailgun.raw_mime(request))
    # Then it is the customer's email, files intact, the original's structural headers replaced
    assert message["From"] == "Lucía Fernández <lucia.fernandez@example.com>"
    assert message["To"] == "support@example.com"
    assert message["Subject"] == "Pantalla rota"
    assert message["Message-ID"] == "<3b9f6c2e@example.com>"
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_param("boundary") != "old"
    assert text_of(message, "plain") == "El pedido llegó roto.\n"
    assert text_of(message, "html").startswith("<p>El pedido llegó <b>roto</b>.</p>")
    files = [
        (p.get_filename(), p.get_content_type(), p.get_content(), p["Content-ID"]) for p in message.iter_attachments()
    ]
    assert files == [
        ("foto.png", "image/png", PNG, "<foto1@example.com>"),
        ("albarán.pdf", "application/pdf", pdf, None),
    ]


def test_parsed_fields_without_message_headers_fall_back_to_the_posted_fields() -> None:
    request = form(
        {
            **SIGNED,
            "from": "Kai Lindqvist <kai@example.se>",
            "To": "support@example.com",
            "subject": "Hej",
            "body-plain": "Hej!",
        }
    )
    message = read(mailgun.raw_mime(request))
    assert message["From"] == "Kai Lindqvist <kai@example.se>"
    assert message["To"] == "support@example.com"
    assert message["Subject"] == "Hej"
    assert text_of(message, "plain").rstrip() == "Hej!"


def test_parsed_fields_without_any_sender_are_permanently_unacceptable() -> None:
    request = form({**SIGNED, "message-headers": json.dumps([["Subject", "no one"]]), "body-plain": "?"})
    with pytest.raises(mailgun.PermanentlyUnacceptableError):
        mailgun.raw_mime(request)


def test_a_declared_attachment_that_did_not_arrive_is_named_not_lost() -> None:
    request = form({**SIGNED, "from": "a@example.org", "body-plain": "see attached", "attachment-count": "1"})
    message = read(mailgun.raw_mime(request))
    assert message.get_all("X-Intake-Missing-Attachment") == ["attachment-1"]


# ---------------------------------------------------------------------------------------- samples


@pytest.mark.parametrize("name", ["mailgun-mime", "mailgun-parsed"])
def test_each_sample_is_signed_accepted_and_reads_back_as_an_email(name: str, policy: Policy) -> None:
    # Given a sample prepared as `intake demo` sends it, signed with INTAKE_MAILGUN_SIGNING_KEY now
    now = 1_795_000_000.0
    secrets = Secrets(environ={f"INTAKE_{mailgun.SIGNING_KEY}": KEY})
    prepared = samples.prepare(samples.load(EVENTS / f"{name}.json"), policy, secrets, now)
    request = WebhookRequest(method="POST", path=prepared.path, query="", headers=prepared.headers, body=prepared.body)
    # When the receiver reads its fields, checks the signature and takes its MIME
    fields = mailgun.fields(request)
    token = mailgun.verify(fields, KEY, now)
    message = read(mailgun.raw_mime(request))
    # Then the token is fresh, and the message is from a customer to support, with a body
    assert token == fields["token"] and len(token) == 32
    assert fields["timestamp"] == str(int(now))
    assert "@" in message["From"] and message["To"].addresses[0].addr_spec == "support@example.com"
    assert message["Message-ID"] and message["Subject"]
    assert text_of(message, "plain").strip()
    if name == "mailgun-parsed":
        assert [(p.get_filename(), p.get_content_type()) for p in message.iter_attachments()] == [
            ("pantalla.png", "image/png")
        ]


def test_a_mailgun_sample_without_a_signing_key_names_the_variable(policy: Policy) -> None:
    with pytest.raises(LookupError, match=f"INTAKE_{mailgun.SIGNING_KEY}"):
        samples.prepare(samples.load(EVENTS / "mailgun-mime.json"), policy, Secrets(environ={}))
