"""The one rebuild of a form-posted email (`channels.posted_mime`), on a layout of its own: what a provider's field
names change and what they do not. tests/unit/test_sendgrid.py and test_mailgun.py run it through each provider."""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage

from intake.channels import email_mime
from intake.channels.formdata import Part
from intake.channels.posted_mime import Layout, rebuilt

LAYOUT = Layout(
    fallback_headers=(("From", "sender"), ("Subject", "title")),
    text="plain",
    html="rich",
    attachment_prefix="file-",
    attachment_count="files",
    content_ids="cids",
)


def field(name: str, value: str, charset: str | None = None) -> Part:
    return Part(name, None, "text/plain", charset, value.encode(charset or "utf-8"))


def file(name: str, filename: str, content: bytes = b"%PDF-1.7") -> Part:
    return Part(name, filename, "application/pdf", None, content)


def test_the_original_headers_win_over_the_posted_fields_and_structural_ones_are_replaced() -> None:
    parts = [field("sender", "Someone <someone@example.org>"), field("title", "Posted subject"), field("plain", "Hi")]
    headers = [("From", "Jane <jane@example.org>"), ("Content-Type", "multipart/mixed; boundary=x")]

    message = rebuilt(parts, LAYOUT, headers)

    assert message["From"] == "Jane <jane@example.org>"
    assert message["Subject"] == "Posted subject"
    assert message.get_content_type() == "text/plain"


def test_the_bodies_become_alternatives_and_files_keep_their_numbered_order() -> None:
    parts = [
        field("plain", "Hello"),
        field("rich", "<p>Hello</p>"),
        field("cids", '{"logo@x": "file-10"}'),
        file("file-10", "ten.png"),
        file("file-2", "two.pdf"),
    ]

    parsed = email_mime.parse(rebuilt(parts, LAYOUT, [("From", "jane@example.org")]).as_bytes())

    assert parsed.text.strip() == "Hello"
    assert [a.filename for a in parsed.attachments] == ["two.pdf", "ten.png"]
    assert parsed.attachments[1].content_id == "logo@x"


def test_a_declared_file_that_did_not_arrive_is_named_in_the_message() -> None:
    parts = [field("plain", "See attached"), field("files", "3"), file("file-2", "two.pdf")]

    message: EmailMessage = rebuilt(parts, LAYOUT, [("From", "jane@example.org")])

    assert message.get_all("X-Intake-Missing-Attachment") == ["file-1", "file-3"]


def test_a_text_field_is_read_in_the_charset_the_charsets_field_names() -> None:
    layout = replace(LAYOUT, charsets="charsets")
    parts = [
        field("charsets", '{"plain": "iso-8859-1"}'),
        Part("plain", None, "text/plain", None, "Café".encode("latin-1")),
    ]

    message = rebuilt(parts, layout, [("From", "jane@example.org")])

    assert email_mime.parse(message.as_bytes()).text.strip() == "Café"
