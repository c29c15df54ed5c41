"""Raw MIME → ParsedEmail: the hand-written corpus in tests/email_corpus, then the rules one by one."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.channels import email_mime
from intake.channels.email_mime import ParsedEmail, decode_bytes, decode_words, first_address, new_part, parse

CORPUS = Path(__file__).resolve().parents[1] / "email_corpus"
MESSAGES = sorted(CORPUS.glob("*.eml"))
LISTS = ("in_reply_to", "references", "to", "cc")


def _parsed(path: Path) -> tuple[ParsedEmail, dict[str, Any]]:
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    limit = expected.get("max_attachment_bytes", email_mime.DEFAULT_MAX_ATTACHMENT_BYTES)
    return parse(path.read_bytes(), max_attachment_bytes=limit), expected


def test_the_corpus_has_at_least_30_messages_each_with_its_expectations() -> None:
    assert len(MESSAGES) >= 30
    assert all(path.with_suffix(".expected.json").is_file() for path in MESSAGES)


@pytest.mark.parametrize("path", MESSAGES, ids=[p.stem for p in MESSAGES])
def test_corpus_message_parses_as_expected(path: Path) -> None:
    # Given a message as a mail client or server wrote it, When it is parsed
    parsed, expected = _parsed(path)

    # Then every field its expectations name is what they say
    for field in ("message_id", "from_name", "from_address", "reply_to", "subject", "text", "auto", "list_id"):
        if field in expected:
            assert getattr(parsed, field) == expected[field], field
    for field in LISTS:
        if field in expected:
            assert list(getattr(parsed, field)) == expected[field], field
    if "date" in expected:
        assert (parsed.date.isoformat() if parsed.date else None) == expected["date"]
    if "text_startswith" in expected:
        assert parsed.text.startswith(expected["text_startswith"])
    if "subject_startswith" in expected:
        assert parsed.subject.startswith(expected["subject_startswith"])
    for key, value in (("text", parsed.text), ("full_text", parsed.full_text), ("subject", parsed.subject)):
        for needle in expected.get(f"{key}_contains", []):
            assert needle in value, (key, needle)
        for needle in expected.get(f"{key}_not_contains", []):
            assert needle not in value, (key, needle)
    if "attachments" in expected:
        got = [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": len(a.content),
                "content_id": a.content_id,
                "inline": a.inline,
            }
            for a in parsed.attachments
        ]
        wanted = [
            {**a, "size": a.get("size", got[n]["size"] if n < len(got) else -1)}
            for n, a in enumerate(expected["attachments"])
        ]
        assert got == wanted
    for filename, needle in expected.get("attachment_contains", {}).items():
        content = next(a.content for a in parsed.attachments if a.filename == filename)
        assert needle.encode() in content
    if "dropped" in expected:
        assert [list(d) for d in parsed.dropped] == expected["dropped"]


@pytest.mark.parametrize("path", MESSAGES, ids=[p.stem for p in MESSAGES])
def test_corpus_message_keeps_its_invariants(path: Path) -> None:
    parsed, expected = _parsed(path)
    limit = expected.get("max_attachment_bytes", email_mime.DEFAULT_MAX_ATTACHMENT_BYTES)

    assert parsed.date is None or parsed.date.tzinfo == UTC
    assert all(len(a.content) <= limit for a in parsed.attachments)
    assert parsed.text in parsed.full_text or not parsed.text or "\n" in parsed.full_text
    for value in (*([parsed.message_id] if parsed.message_id else []), *parsed.in_reply_to, *parsed.references):
        assert value and "<" not in value and ">" not in value
    for address in (parsed.from_address, parsed.reply_to, *parsed.to, *parsed.cc):
        assert address is None or (address == address.lower() and "@" in address)
    assert "\ufffd" not in parsed.full_text and "Ã" not in parsed.full_text  # no mojibake
    assert " " * 2 not in parsed.subject and parsed.subject == parsed.subject.strip()


# ------------------------------------------------------------------------------ charsets and headers


@pytest.mark.parametrize(
    ("data", "charset", "text"),
    [
        ("café".encode(), "us-ascii", "café"),  # labelled ASCII, sent as UTF-8
        ("café".encode(), "iso-8859-1", "café"),  # labelled Latin-1, sent as UTF-8
        ("€5 “quoted”".encode("cp1252"), "utf-8", "€5 “quoted”"),  # labelled UTF-8, sent as Windows-1252
        ("été".encode("latin-1"), "iso-8859-1", "été"),
        ("été".encode("latin-1"), "x-no-such-charset", "été"),
        ("Ωmega".encode("iso-8859-7"), "iso-8859-7", "Ωmega"),
        (b"\x81\x8d", "utf-8", "\x81\x8d"),  # bytes Windows-1252 leaves undefined: Latin-1 takes them all
        ("注文".encode("iso2022_jp"), "ISO-2022-JP", "注文"),  # 7-bit and stateful: decoded as declared
        ("注文".encode("shift_jis"), "shift_jis", "注文"),
        (b"plain", None, "plain"),
    ],
)
def test_bytes_are_decoded_in_the_charset_they_really_use(data: bytes, charset: str | None, text: str) -> None:
    assert decode_bytes(data, charset) == text


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("=?utf-8?Q?Caf=C3=A9_cr=C3=A8me?=", "Café crème"),
        ("=?UTF-8?B?w6l0w6k=?= =?UTF-8?B?IDIwMjU=?=", "été 2025"),  # adjacent words: the space between dropped
        ("Re: =?iso-8859-1?q?r=E9ponse?= ok", "Re: réponse ok"),
        ("=?utf-8*fr?Q?langue?=", "langue"),  # RFC 2231 language tag
        ("=?utf-8?B?not base64?=", "=?utf-8?B?not base64?="),  # not an encoded word: kept as written
        ("=?utf-8?B?w6l0w6k?=", "été"),  # missing padding
        ("", ""),
    ],
)
def test_encoded_words_are_decoded(value: str, decoded: str) -> None:
    assert decode_words(value) == decoded


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ('"Doe, Jane" <Jane.Doe+Orders@Example.COM>', "jane.doe+orders@example.com"),
        ("JANE@EXAMPLE.COM (Jane)", "jane@example.com"),
        ("undisclosed-recipients:;", None),
        ("Team: a@example.com, b@example.com;", "a@example.com"),
        ('"Broken <broken@example.com', "broken@example.com"),
        ("", None),
        (None, None),
    ],
)
def test_first_address_is_lower_cased_and_keeps_plus_tags(value: str | None, address: str | None) -> None:
    assert first_address(value) == address


def _message(headers: str, body: str = "Hello\n") -> bytes:
    return (headers.strip("\n") + "\nContent-Type: text/plain; charset=utf-8\n\n" + body).encode()


def test_a_date_without_zone_is_utc_and_a_bad_date_is_none() -> None:
    assert parse(_message("Date: Tue, 4 Mar 2025 10:00:00 -0000")).date == datetime(2025, 3, 4, 10, tzinfo=UTC)
    assert parse(_message("Date: Tue, 4 Mar 2025 10:00:00")).date == datetime(2025, 3, 4, 10, tzinfo=UTC)
    assert parse(_message("Date: yesterday-ish")).date is None


def test_ids_without_brackets_are_still_read() -> None:
    parsed = parse(_message("Message-ID: abc@example.com\nIn-Reply-To: x@example.com\nReferences: <a@x> <a@x> <b@x>"))
    assert (parsed.message_id, parsed.in_reply_to, parsed.references) == (
        "abc@example.com",
        ("x@example.com",),
        ("a@x", "b@x"),
    )


def test_raw_utf8_in_headers_is_decoded() -> None:
    parsed = parse("From: Zoë Ünal <zoe@example.com>\nSubject: Größe falsch\n\nx\n".encode())
    assert (parsed.from_name, parsed.subject) == ("Zoë Ünal", "Größe falsch")


# ------------------------------------------------------------------------------ loops and junk


@pytest.mark.parametrize(
    ("headers", "auto"),
    [
        ("Auto-Submitted: auto-replied", "auto-reply"),
        ("Auto-Submitted: auto-generated; owner-email=x@example.com", "auto-reply"),
        ("Auto-Submitted: no", None),
        ("X-Autoreply: yes", "auto-reply"),
        ("X-Autorespond: vacation", "auto-reply"),
        ("Precedence: bulk", "auto-reply"),
        ("Precedence: junk", "auto-reply"),
        ("Precedence: auto_reply", "auto-reply"),
        ("Precedence: list", "auto-reply"),  # list precedence without list headers
        ("Precedence: list\nList-Id: <dev.lists.example.org>", "list"),
        ("Precedence: list\nList-Unsubscribe: <mailto:leave@lists.example.org>", "list"),
        ("List-Id: <support.example.com>", None),  # a group that forwards customers' mail is no list mail
        ("List-Id: <news.example.com>\nList-Unsubscribe-Post: List-Unsubscribe=One-Click", "list"),  # RFC 8058
        ("X-MLServer: fml [fml 4.0.3 release]", "list"),
        ("Subject: Undeliverable: Your order", "bounce"),
        ("Subject: Delivery Status Notification (Failure)", "bounce"),
        ("Subject: Fwd: Undeliverable: Your order", None),  # a customer forwarding a bounce
        ("Subject: Automatic reply: Your order", "auto-reply"),
        ("Subject: Out of Office: back Monday", "auto-reply"),
        ("Subject: Report Domain: example.com Submitter: google.com", "report"),
        ("Subject: Where is my order out of office hours?", None),
        ("X-Auto-Response-Suppress: OOF, DR", "auto-reply"),
        ("X-Auto-Response-Suppress: All", "auto-reply"),
        ("X-Auto-Response-Suppress: DR, RN, NRN", None),
        ("Return-Path: <>", "auto-reply"),
        ("Return-Path: <customer@example.com>", None),
        ("Precedence: normal", None),
    ],
)
def test_auto_replies_and_lists_are_recognised(headers: str, auto: str | None) -> None:
    assert parse(_message("From: a@example.com\n" + headers)).auto == auto


def test_a_delivery_status_report_is_a_bounce_even_without_null_return_path() -> None:
    raw = (
        b'From: postmaster@example.com\nContent-Type: multipart/report; report-type="Delivery-Status"; boundary=b\n\n'
        b"--b\nContent-Type: text/plain\n\nFailed.\n--b\nContent-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; x@example.com\nAction: failed\n--b--\n"
    )
    assert parse(raw).auto == "bounce"


# ------------------------------------------------------------------------------ parts


def test_an_attachment_at_the_limit_is_kept_and_one_byte_over_is_dropped() -> None:
    def with_attachment(size: int) -> bytes:
        import base64

        body = base64.b64encode(b"x" * size).decode()
        return (
            "From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nSee.\n"
            f'--b\nContent-Type: application/zip\nContent-Disposition: attachment; filename="a.zip"\n'
            f"Content-Transfer-Encoding: base64\n\n{body}\n--b--\n"
        ).encode()

    kept = parse(with_attachment(100), max_attachment_bytes=100)
    assert [(a.filename, len(a.content)) for a in kept.attachments] == [("a.zip", 100)] and kept.dropped == ()
    dropped = parse(with_attachment(101), max_attachment_bytes=100)
    assert dropped.attachments == () and dropped.dropped == (("a.zip", "101 bytes is over the limit of 100"),)


def test_a_text_part_with_a_filename_is_an_attachment_not_body() -> None:
    raw = (
        b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nBody.\n"
        b'--b\nContent-Type: text/plain; name="log.txt"\nContent-Disposition: attachment; filename="log.txt"\n\n'
        b"error 42\n--b--\n"
    )
    parsed = parse(raw)
    assert parsed.full_text == "Body." and [a.filename for a in parsed.attachments] == ["log.txt"]


def test_html_is_converted_to_readable_text() -> None:
    html = (
        "<html><head><style>p{}</style></head><body><h1>Title</h1><p>One&nbsp;<b>bold</b>\n word.</p>"
        "<ol><li>first</li><li>second</li></ol><pre>  kept\n  as is</pre><script>x()</script></body></html>"
    )
    assert email_mime.html_to_text(html) == "Title\n\nOne bold word.\n\n- first\n\n- second\n\nkept\nas is"


def _many_parts(n: int) -> bytes:
    parts = "".join(
        f'--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="f{i}.txt"\r\n\r\nfile {i}\r\n'
        for i in range(n)
    )
    head = "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    return f"{head}--b\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n{parts}--b--\r\n".encode()


def _nested(depth: int) -> bytes:
    opening = "".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n" for i in range(depth))
    closing = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))
    return (
        "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
        f"{opening}--b{depth}\r\nContent-Type: text/plain\r\n\r\ndeep down\r\n--b{depth}--{closing}"
    ).encode()


def test_parts_past_the_limit_are_not_read_and_listed_as_dropped_once() -> None:
    started = time.monotonic()
    parsed = parse(_many_parts(5000))

    assert time.monotonic() - started < 5
    assert parsed.full_text == "See the files."
    # the root and the text are parts too: the first MAX_PARTS - 2 files are kept
    assert [a.filename for a in parsed.attachments] == [f"f{i}.txt" for i in range(email_mime.MAX_PARTS - 2)]
    assert parsed.dropped == (("the rest of the message", f"over the limit of {email_mime.MAX_PARTS} MIME parts"),)


def test_a_message_within_the_part_limit_loses_nothing() -> None:
    parsed = parse(_many_parts(email_mime.MAX_PARTS - 2))
    assert len(parsed.attachments) == email_mime.MAX_PARTS - 2 and parsed.dropped == ()


def test_nesting_past_the_limit_is_not_read_and_listed_as_dropped() -> None:
    started = time.monotonic()
    parsed = parse(_nested(2000))

    assert time.monotonic() - started < 5
    assert parsed.full_text == "" and parsed.attachments == ()
    assert parsed.dropped == (("part-1", f"nested more than {email_mime.MAX_DEPTH} levels deep"),)
    assert parse(_nested(email_mime.MAX_DEPTH - 1)).full_text == "deep down"


def test_a_content_type_nested_past_what_the_header_parser_reads_is_no_crash() -> None:
    comment = "(" * 3000 + ")" * 3000
    raw = f"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8 {comment}\r\n\r\nHello\r\n".encode()
    assert isinstance(parse(raw), ParsedEmail)


def test_long_file_names_and_content_ids_are_bounded() -> None:
    name = "é" * 300 + ".pdf"
    raw = (
        "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        f"Content-Type: application/pdf\r\nContent-ID: <{'c' * 300}@example.com>\r\n"
        f"Content-Disposition: attachment; filename*=utf-8''{quote(name)}\r\n\r\n%PDF\r\n--b--\r\n"
    ).encode()
    [attachment] = parse(raw).attachments
    assert len(attachment.filename.encode()) <= email_mime.MAX_NAME_BYTES and name.startswith(attachment.filename)
    assert attachment.content_id is None


def test_html_with_many_paragraphs_converts_in_linear_time() -> None:
    def converted(paragraphs: int) -> tuple[str, float]:
        html = "<html><body>" + "<p>Hello <b>world</b>.</p>\n" * paragraphs + "</body></html>"
        started = time.process_time()  # CPU time: what a busy machine changes least
        text = email_mime.html_to_text(html)
        return text, time.process_time() - started

    _, small = min((converted(2_000) for _ in range(3)), key=lambda run: run[1])
    text, large = converted(20_000)

    # 10 times the paragraphs: about 10 times the time; a quadratic conversion takes 100 times
    assert large < 30 * max(small, 0.005)
    assert text.startswith("Hello world.\n\nHello world.") and text.count("Hello world.") == 20_000


# ------------------------------------------------------------------------------ the new part of a reply


THANKS_SENTENCE = "Hello,\nThanks, but the refund never came.\nOrder 5."
HYPHEN_LIST = "Steps:\n- open the box\n- plug it in\nNothing happens."


@pytest.mark.parametrize(
    ("text", "new"),
    [
        ("Yes.\n\nOn Mon, Mar 3, 2025 at 9:00 AM Acme <s@acme.example> wrote:\n> Question?", "Yes."),
        ("Oui.\n\nLe lun. 3 mars 2025 à 09:00, Acme <s@acme.example> a écrit :\n> Question ?", "Oui."),
        ("Ja.\n\nAm Mo., 3. März 2025 um 09:00 Uhr schrieb Acme <s@acme.example>:\n> Frage?", "Ja."),
        ("Sure.\n\n-----Original Message-----\nFrom: Acme\nSent: Monday\nSubject: Q\n\nQuestion?", "Sure."),
        ("Sure.\n\nFrom: Acme <s@acme.example>\nSent: Monday, March 3, 2025 9:00 AM\nTo: me\n\nQ?", "Sure."),
        ("Done.\n\n-- \nJane Doe\nACME Corp", "Done."),
        ("Done.\n\nSent from my iPhone", "Done."),
        ("Answer below.\n> earlier text\n> more", "Answer below."),
        (
            "Hello,\nThanks, but the refund never came.\nOrder 5.",
            "Hello,\nThanks, but the refund never came.\nOrder 5.",
        ),
        (
            "Steps:\n- open the box\n- plug it in\nNothing happens.",
            "Steps:\n- open the box\n- plug it in\nNothing happens.",
        ),
        ("On Mon, Mar 3, 2025 at 9:00 AM Acme <s@acme.example> wrote:\n> only quoted", ""),
        ("", ""),
    ],
)
def test_the_new_part_leaves_out_quoted_history_and_signature(text: str, new: str) -> None:
    assert new_part(text) == new


def test_a_forwarded_message_is_content_not_history() -> None:
    text = "FYI, see below.\n\n-------- Forwarded Message --------\nSubject: Order\nFrom: shop\nDate: today\n\nShipped."
    assert new_part(text) == text


# ------------------------------------------------------------------------------ never raises


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_raising(raw: bytes) -> None:
    assert isinstance(parse(raw), ParsedEmail)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(MESSAGES),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=20),
    st.integers(min_value=0),
)
def test_damaged_corpus_messages_parse_without_raising(path: Path, flips: list[tuple[int, int]], cut: int) -> None:
    raw = bytearray(path.read_bytes())
    for position, value in flips:
        raw[position % len(raw)] = value
    parsed = parse(bytes(raw[: max(1, cut % (len(raw) + 1))]), max_attachment_bytes=500)
    assert all(len(a.content) <= 500 for a in parsed.attachments)
