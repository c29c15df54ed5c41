"""SendGrid Inbound Parse: basic auth, raw mode and parsed mode rebuilt into MIME the email path reads."""

from __future__ import annotations

import base64
import email
import email.policy
import json
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

import pytest

from intake.channels import sendgrid, signatures
from intake.config import Policy
from intake.errors import FieldInvalidError, SignatureInvalidError, UnsupportedMediaTypeError
from intake.local import samples
from intake.model import WebhookRequest
from intake.secrets import Secrets

USER, PASSWORD = "sendgrid-parse", "pä55:word"
BOUNDARY = "xYzZY"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
HEADERS = (
    b"Received: from mail.example.org by mx.sendgrid.net; Mon, 23 Nov 2026 09:14:07 +0000\n"
    b"From: =?UTF-8?Q?Ren=C3=A9e_Dubois?= <renee.dubois@example.org>\n"
    b"To: Support <support@example.com>\n"
    b"Subject: =?UTF-8?Q?Facture_impay=C3=A9e?=\n"
    b"Message-ID: <a1b2c3@mail.example.org>\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="original-boundary"\n'
)
EVENTS = Path(__file__).resolve().parents[2] / "events" / "email"


def form_data(
    fields: list[tuple[str, bytes]],
    files: Sequence[tuple[str, str, str, bytes]] = (),
    **headers: str,
) -> WebhookRequest:
    """multipart/form-data as SendGrid posts it: field values are bytes in whatever charset they came in."""
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
    named = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    named |= {k.replace("_", "-"): v for k, v in headers.items()}
    return WebhookRequest(method="POST", path=sendgrid.PATH, query="", headers=named, body=body)


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


def attachments_of(message: EmailMessage) -> list[tuple[str | None, str, bytes]]:
    return [(part.get_filename(), part.get_content_type(), part.get_content()) for part in message.iter_attachments()]


def accepts(authorization: str | None, user: str | None = USER, password: str | None = PASSWORD) -> bool:
    headers = {} if authorization is None else {"authorization": authorization}
    request = WebhookRequest(method="POST", path=sendgrid.PATH, query="", headers=headers, body=b"")
    try:
        sendgrid.verify(request, user, password)
    except SignatureInvalidError:
        return False
    return True


def basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


# ------------------------------------------------------------------------------------- basic auth


def test_request_with_the_configured_basic_auth_is_accepted() -> None:
    # Given the credentials configured in SendGrid's Parse URL (UTF-8, with a colon in the password)
    # When SendGrid sends them as basic auth
    # Then the request is accepted, whatever the scheme's case
    assert accepts(basic(f"{USER}:{PASSWORD}".encode()))
    assert accepts("basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
    assert accepts(signatures.basic_auth(USER, PASSWORD))


@pytest.mark.parametrize(
    "authorization",
    [
        basic(f"{USER}:wrong".encode()),
        basic(f"other:{PASSWORD}".encode()),
        basic(f"{USER}:{PASSWORD}x".encode()),
        basic(f"{USER}{PASSWORD}".encode()),
        basic(b""),
        "Basic !!!not-base64!!!",
        "Bearer " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "Basic",
        "",
    ],
    ids=[
        "wrong-password",
        "wrong-user",
        "longer-password",
        "no-colon",
        "empty",
        "not-base64",
        "bearer",
        "bare",
        "blank",
    ],
)
def test_request_with_other_credentials_is_refused(authorization: str) -> None:
    assert not accepts(authorization)


def test_request_without_authorization_is_refused() -> None:
    assert not accepts(None)


@pytest.mark.parametrize(("user", "password"), [(None, PASSWORD), (USER, None), ("", ""), (None, None)])
def test_request_is_refused_when_no_credentials_are_configured(user: str | None, password: str | None) -> None:
    # Given a deployment without the SendGrid secrets
    # When anyone posts, even with what would be "empty" credentials
    # Then nothing is accepted
    assert not accepts(basic(b":"), user, password)
    assert not accepts(basic(f"{USER}:{PASSWORD}".encode()), user, password)


# --------------------------------------------------------------------------------------- raw mode


def test_raw_mode_hands_over_the_email_field_byte_for_byte() -> None:
    # Given a raw-mode post whose `email` field holds 8-bit Latin-1 text and CRLF line ends
    raw = (
        b"From: Ren\xe9e <renee.dubois@example.org>\r\nTo: support@example.com\r\nSubject: Re: facture\r\n"
        b"Message-ID: <r1@example.org>\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nD\xe9j\xe0 pay\xe9e.\r\n"
    )
    request = form_data([("to", b"support@example.com"), ("email", raw), ("charsets", b'{"to":"UTF-8"}')])
    # When the MIME is taken from it
    # Then it is exactly what SendGrid received
    assert sendgrid.raw_mime(request) == raw
    assert text_of(read(sendgrid.raw_mime(request)), "plain").rstrip() == "Déjà payée."


def test_a_body_that_is_not_form_data_is_refused() -> None:
    request = WebhookRequest(
        method="POST", path=sendgrid.PATH, query="", headers={"content-type": "application/json"}, body=b"{}"
    )
    with pytest.raises(UnsupportedMediaTypeError):
        sendgrid.raw_mime(request)


def test_a_post_with_neither_email_nor_headers_names_the_email_field() -> None:
    # Given form data with only envelope fields
    request = form_data([("to", b"support@example.com"), ("subject", b"hello")])
    # When the MIME is asked for
    # Then the error names the field a raw-mode post would have carried
    with pytest.raises(FieldInvalidError) as refused:
        sendgrid.raw_mime(request)
    assert refused.value.field == "email"


def test_form_data_without_a_boundary_is_invalid() -> None:
    request = WebhookRequest(
        method="POST", path=sendgrid.PATH, query="", headers={"content-type": "multipart/form-data"}, body=b"x"
    )
    with pytest.raises(FieldInvalidError):
        sendgrid.raw_mime(request)


# ------------------------------------------------------------------------------------ parsed mode


def test_parsed_mode_is_rebuilt_with_headers_bodies_and_attachments() -> None:
    # Given a parsed-mode post: the original headers, text, html, a PDF and an inline image
    request = form_data(
        [
            ("headers", HEADERS),
            ("text", "Bonjour, la facture 2026-118 est réglée.\n".encode()),
            ("html", "<p>Bonjour, la facture <b>2026-118</b> est réglée.</p>".encode()),
            ("from", "Renée Dubois <renee.dubois@example.org>".encode()),
            ("attachments", b"2"),
            (
                "attachment-info",
                json.dumps(
                    {
                        "attachment1": {"filename": "facture-2026-118.pdf", "type": "application/pdf"},
                        "attachment2": {"filename": "logo.png", "type": "image/png", "content-id": "ii_logo1"},
                    }
                ).encode(),
            ),
            ("content-ids", b'{"ii_logo1": "attachment2"}'),
            ("charsets", b'{"text":"UTF-8","html":"UTF-8","from":"UTF-8","subject":"UTF-8"}'),
        ],
        [
            ("attachment1", "facture-2026-118.pdf", "application/pdf", PDF),
            ("attachment2", "logo.png", "image/png", PNG),
        ],
    )
    # When the message is rebuilt and read back with the stdlib's modern policy
    message = read(sendgrid.raw_mime(request))
    # Then it carries the original's identity, both bodies and both files, bytes intact
    assert message["From"] == "Renée Dubois <renee.dubois@example.org>"
    assert message["To"] == "Support <support@example.com>"
    assert message["Subject"] == "Facture impayée"
    assert message["Message-ID"] == "<a1b2c3@mail.example.org>"
    assert message["Received"].strip().startswith("from mail.example.org by mx.sendgrid.net")
    assert text_of(message, "plain") == "Bonjour, la facture 2026-118 est réglée.\n"
    assert text_of(message, "html").startswith("<p>Bonjour, la facture <b>2026-118</b> est réglée.</p>")
    assert attachments_of(message) == [
        ("facture-2026-118.pdf", "application/pdf", PDF),
        ("logo.png", "image/png", PNG),
    ]
    inline = next(part for part in message.iter_attachments() if part.get_filename() == "logo.png")
    assert inline["Content-ID"] == "<ii_logo1>"
    assert inline.get_content_disposition() == "inline"
    assert "X-Intake-Missing-Attachment" not in message


def test_parsed_mode_decodes_each_field_with_its_charset() -> None:
    # Given bodies in ISO-8859-1 and Windows-1252 and a Shift_JIS subject field, named so by `charsets`
    request = form_data(
        [
            ("headers", b"From: kenji.sato@example.jp\nTo: support@example.com\nMessage-ID: <sj1@example.jp>\n"),
            ("subject", "注文の確認".encode("shift_jis")),
            ("text", "Reçu la pièce, merci. Coût : 12 €".encode("windows-1252")),
            ("html", "<p>Re\xe7u la pi\xe8ce</p>".encode("iso-8859-1")),
            ("charsets", b'{"subject":"Shift_JIS","text":"windows-1252","html":"iso-8859-1","from":"UTF-8"}'),
        ]
    )
    # When the message is rebuilt
    message = read(sendgrid.raw_mime(request))
    # Then every text reads as written, re-encoded as UTF-8
    assert message["Subject"] == "注文の確認"
    assert text_of(message, "plain").rstrip("\n") == "Reçu la pièce, merci. Coût : 12 €"
    assert text_of(message, "html").rstrip("\n") == "<p>Reçu la pièce</p>"
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None and plain.get_content_charset() == "utf-8"


def test_a_mislabeled_charset_falls_back_instead_of_failing() -> None:
    # Given a text field said to be ASCII (it is UTF-8) and an html field in an unknown charset (it is Latin-1)
    request = form_data(
        [
            ("headers", b"From: a@example.org\nSubject: x\n"),
            ("text", "naïve café".encode()),
            ("html", "<p>d\xe9j\xe0</p>".encode("latin-1")),
            ("charsets", b'{"text":"us-ascii","html":"x-unknown-charset"}'),
        ]
    )
    message = read(sendgrid.raw_mime(request))
    # Then UTF-8 is tried, then Windows-1252: nothing is lost
    assert text_of(message, "plain").rstrip("\n") == "naïve café"
    assert text_of(message, "html").rstrip("\n") == "<p>déjà</p>"


def test_an_html_only_message_is_rebuilt_as_html() -> None:
    request = form_data([("headers", b"From: a@example.org\nSubject: html only\n"), ("html", b"<p>Only HTML</p>")])
    message = read(sendgrid.raw_mime(request))
    assert message.get_content_type() == "text/html"
    assert text_of(message, "html").rstrip("\n") == "<p>Only HTML</p>"


def test_fields_fill_in_headers_the_header_block_lacks_and_duplicates_are_dropped() -> None:
    # Given a header block without From and with a second Subject (the modern policy allows one)
    request = form_data(
        [
            ("headers", b"Subject: first\nSubject: second\nMessage-ID: <d@example.org>\n"),
            ("from", b"Maya Cohen <maya.cohen@example.org>"),
            ("to", b"support@example.com"),
            ("text", b"hello"),
        ]
    )
    message = read(sendgrid.raw_mime(request))
    # Then From and To come from the fields, and the first Subject is kept
    assert message["From"] == "Maya Cohen <maya.cohen@example.org>"
    assert message["To"] == "support@example.com"
    assert message.get_all("Subject") == ["first"]


def test_a_declared_attachment_that_did_not_arrive_is_named_not_lost() -> None:
    request = form_data(
        [
            ("headers", b"From: a@example.org\nSubject: two files\n"),
            ("text", b"see attached"),
            ("attachments", b"2"),
            ("attachment-info", b'{"attachment2": {"filename": "scan.pdf", "type": "application/pdf"}}'),
        ],
        [("attachment1", "photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0jpeg")],
    )
    message = read(sendgrid.raw_mime(request))
    assert attachments_of(message) == [("photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0jpeg")]
    assert message.get_all("X-Intake-Missing-Attachment") == ["attachment2 (scan.pdf)"]


def test_attachment_types_and_names_fall_back_to_the_file_part() -> None:
    # Given no attachment-info and a file part with a UTF-8 name and a meaningless type
    request = form_data(
        [("headers", b"From: a@example.org\n"), ("text", b"x"), ("attachments", b"1")],
        [("attachment1", "relevé.csv", "garbage", b"a;b\n1;2\n")],
    )
    message = read(sendgrid.raw_mime(request))
    assert attachments_of(message) == [("relevé.csv", "application/octet-stream", b"a;b\n1;2\n")]


# ---------------------------------------------------------------------------------------- samples


@pytest.mark.parametrize("name", ["sendgrid-raw", "sendgrid-parsed"])
def test_each_sample_is_accepted_and_reads_back_as_an_email(name: str, policy: Policy) -> None:
    # Given a sample prepared as `intake demo` sends it, with the credentials from INTAKE_*
    secrets = Secrets(environ={f"INTAKE_{sendgrid.USER}": USER, f"INTAKE_{sendgrid.PASSWORD}": PASSWORD})
    prepared = samples.prepare(samples.load(EVENTS / f"{name}.json"), policy, secrets)
    request = WebhookRequest(method="POST", path=prepared.path, query="", headers=prepared.headers, body=prepared.body)
    # When the receiver checks it and takes its MIME
    sendgrid.verify(request, USER, PASSWORD)
    message = read(sendgrid.raw_mime(request))
    # Then it is an email from a customer to support, with a body
    assert prepared.path == sendgrid.PATH
    assert "@" in message["From"] and message["To"].addresses[0].addr_spec == "support@example.com"
    assert message["Message-ID"] and message["Subject"]
    assert text_of(message, "plain").strip()
    if name == "sendgrid-parsed":
        assert [(n, t) for n, t, _ in attachments_of(message)] == [("INV-2026-0917.pdf", "application/pdf")]
        assert attachments_of(message)[0][2].startswith(b"%PDF-1.4")


def test_a_sendgrid_sample_without_credentials_names_the_missing_variables(policy: Policy) -> None:
    sample = samples.load(EVENTS / "sendgrid-raw.json")
    with pytest.raises(LookupError, match=f"INTAKE_{sendgrid.PASSWORD}"):
        samples.prepare(sample, policy, Secrets(environ={f"INTAKE_{sendgrid.USER}": USER}))
