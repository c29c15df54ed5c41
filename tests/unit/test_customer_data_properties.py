"""Customer data never fails the worker: whatever bytes an email holds, the email path makes a ticket, a message on
one, a recorded auto-reply or a quarantined email of it; whatever a provider posts, its parser maps it or refuses
the request with an error the receiver answers 4xx, and what it maps is queued and ingested.

Property tests, derandomized and bounded, on a real Store: `SqliteTable` refuses what DynamoDB refuses (items over
400 KB, keys over their limits, strings that are not UTF-8). The only exceptions allowed out are the request
rejections of `handlers/problems.py`; a store or queue fault would be infrastructure's, and none is injected here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ulid import ULID

from intake.channels import email_mime, forms, mailgun, sendgrid, twilio, whatsapp
from intake.channels.mailgun import PermanentlyUnacceptableError
from intake.config import Policy
from intake.emails import EmailStores, ingest_email
from intake.errors import RequestRejectedError
from intake.inbox import decode_message
from intake.ingest import IngestResult, ingest
from intake.local.table import SqliteTable
from intake.model import (
    Attachment,
    CallEvent,
    CallEventKind,
    EmailArrived,
    InboundMessage,
    Message,
    QuarantineStatus,
    Reaction,
    WebhookRequest,
)
from intake.notify.mailer import OutboxMailer
from intake.store import Store
from tests.depth import examples

T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
REJECTED = (RequestRejectedError, PermanentlyUnacceptableError)  # answered 4xx before anything is stored
PROPERTY = settings(
    max_examples=examples(120),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


class World:
    """A real store on SQLite, an archive in memory, an outbox: what the worker writes to."""

    def __init__(self, folder: Path, policy: Policy) -> None:
        self.table = SqliteTable(folder / "tickets.db")
        self.store = Store(self.table, "tickets")  # type: ignore[arg-type]
        self.archive: dict[str, bytes] = {}
        self.policy = policy
        self.stores = EmailStores(
            read=self.archive.__getitem__,
            put_attachment=self.put,
            mailer=OutboxMailer(folder / "outbox"),
            clock=lambda: T0,
        )
        self.received = 0

    def put(self, attachment: Attachment, content: bytes) -> None:
        assert attachment.s3_key is not None
        self.archive[attachment.s3_key] = content

    def arrived(self, raw: bytes) -> EmailArrived:
        self.received += 1
        receipt_id = str(ULID())
        key = f"raw/2026/11/23/smtp/{receipt_id}.eml"
        self.archive[key] = raw
        at = T0 + timedelta(seconds=self.received)
        return EmailArrived(provider="smtp", receipt_id=receipt_id, received_at=at, raw_archive_key=key)


@pytest.fixture
def world(tmp_path: Path, policy: Policy) -> Iterator[World]:
    made = World(tmp_path, policy)
    yield made
    made.table.close()


def ingested(world: World, raw: bytes) -> Message | None:
    """The email path end to end; then what it made, read back as agents read it (None: nothing to read)."""
    arrived = world.arrived(raw)
    result = ingest_email(world.store, world.stores, arrived, world.policy, lambda: str(ULID()))
    if result is None:  # auto mail that belongs to no thread (archived), or held back
        held = world.store.quarantined(arrived.receipt_id)
        assert held is None or held.status == QuarantineStatus.HELD
        return None
    detail = world.store.ticket_detail(result.ticket_id)
    [message] = [m for m in detail.messages if m.receipt_id == arrived.receipt_id] or [detail.messages[0]]
    assert len(message.text.encode()) <= 64 * 1024
    cut = message.metadata.get("full_text_key")
    assert cut is None or cut in world.archive
    return message


# ------------------------------------------------------------------------------ raw email

SENDERS = [
    "guest@localhost",
    "Guest <guest@localhost>",
    "jane@corp",
    "jane@exa",
    "jane@example.",
    "user@[192.0.2.1]",
    "Jo <user@[IPv6:2001:db8::1]>",
    "用户@例子.广告",
    "José <josé@exämple.com>",
    '"john doe"@example.com',
    '"John Doe" <"john.doe"@example.com>',
    "Team: ann@example.com, bob@example.org;",
    "undisclosed-recipients:;",
    "ann@example.com, bob@example.org",
    "root@localhost.localdomain",
    "=?utf-8?q?J=C3=B6rg?= <jorg@example.de>",
    "Ann <>",
    "<>",
    "",
    "support@example.com",
]
HEADER_NAMES = [
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Date",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Content-ID",
    "MIME-Version",
    "Auto-Submitted",
    "Precedence",
    "List-Id",
    "Return-Path",
    "X-SES-Spam-Verdict",
    "Authentication-Results",
]
CONTENT_TYPES = [
    b"text/plain; charset=utf-8",
    b"text/plain; charset=utf-7",
    b"text/plain; charset=iso-2022-jp",
    b"text/plain; charset=bogus",
    b"text/html",
    b"text/plain; format=flowed; delsp=yes",
    b"application/pdf; name=a.pdf",
    b"message/rfc822",
    b"message/delivery-status",
    b"multipart/report; report-type=delivery-status; boundary=b",
    b"multipart/alternative; boundary=b",
    b"multipart/mixed",
    b"image/png",
]
ENCODINGS = [b"base64", b"quoted-printable", b"7bit", b"8bit", b"x-uuencode", b"bogus"]

short_bytes = st.binary(max_size=120)
# a value repeated up to ~400 kB: long headers, long bodies, long lists
repeated: st.SearchStrategy[bytes] = st.builds(
    lambda unit, times: unit * times, st.binary(min_size=1, max_size=12), st.integers(1, 6_000)
)
texts = st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass"))
header_value = st.one_of(
    short_bytes,
    texts,
    repeated,
    st.sampled_from(SENDERS).map(str.encode),
    st.sampled_from(CONTENT_TYPES),
    st.sampled_from(ENCODINGS),
    st.builds(lambda ids: b" ".join(b"<%d@example.org>" % n for n in range(ids)), st.integers(0, 20_000)),
    st.builds(lambda n: ", ".join(f"user{i}@example.org" for i in range(n)).encode(), st.integers(0, 20_000)),
)
header_name = st.one_of(st.sampled_from(HEADER_NAMES), st.text("abcXYZ-:", min_size=1, max_size=12))
headers = st.lists(st.tuples(header_name.map(str.encode), header_value), max_size=12)
line_end = st.sampled_from([b"\r\n", b"\n", b"\r"])


@st.composite
def bodies(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A body: bytes, a long text, or a multipart of such bodies (the boundary sometimes wrong or missing)."""
    kind = draw(st.integers(0, 3 if depth < 3 else 1))
    if kind == 0:
        return draw(short_bytes)
    if kind == 1:
        return draw(repeated)
    boundary = draw(st.sampled_from([b"b", b"b2", b"=_x", b""]))
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        part_headers = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES[9:13]), header_value), max_size=3))
        head = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in part_headers)
        parts.append(b"--" + boundary + b"\r\n" + head + b"\r\n" + draw(bodies(depth + 1)) + b"\r\n")
    closing = b"--" + boundary + b"--\r\n" if draw(st.booleans()) else b""
    return draw(short_bytes) + b"\r\n" + b"".join(parts) + closing + draw(short_bytes)


@st.composite
def raw_emails(draw: st.DrawFn) -> bytes:
    eol = draw(line_end)
    lines = [name + b": " + value.replace(b"\r\n", eol) for name, value in draw(headers)]
    if draw(st.booleans()):
        lines.append(b"Content-Type: multipart/mixed; boundary=" + draw(st.sampled_from([b"b", b"b2", b'"=_x"'])))
    body = draw(bodies())
    return eol.join(lines) + eol + eol + body


@PROPERTY
@given(raw=raw_emails())
def test_any_email_becomes_a_ticket_a_recorded_auto_reply_or_a_quarantined_email(world: World, raw: bytes) -> None:
    ingested(world, raw)


@PROPERTY
@given(raw=st.binary(max_size=4000))
def test_any_bytes_at_all_go_through_the_email_path(world: World, raw: bytes) -> None:
    ingested(world, raw)


@settings(PROPERTY, max_examples=examples(40))
@given(name=st.text(max_size=300), local=st.text(min_size=1, max_size=80), domain=st.text(min_size=1, max_size=80))
def test_any_sender_address_becomes_a_ticket(world: World, name: str, local: str, domain: str) -> None:
    header = f"{name} <{local}@{domain}>".replace("\r", " ").replace("\n", " ")
    raw = f"From: {header}\r\nTo: support@example.com\r\nSubject: hello\r\n\r\nMy order is late.\r\n"
    ingested(world, raw.encode("utf-8", "surrogatepass"))


# characters that take the most room as UTF-8 on the item (4 bytes) or as escaped JSON in the metadata (12, 6)
wide = st.sampled_from(["😀", "字", "é", "\x01", "a"])
huge = st.builds(lambda unit, times: (unit * times).encode(), wide, st.integers(50_000, 150_000))


@st.composite
def huge_emails(draw: st.DrawFn) -> bytes:
    """A plain-text email whose body, recipients, references, names or subject run to hundreds of kilobytes."""
    fill = draw(huge)
    field = draw(st.sampled_from(["body", "to", "cc", "references", "from", "subject", "message-id"]))
    values = {
        "from": b'"' + fill + b'" <ana@example.org>',
        "to": b", ".join(b"%s%d@example.org" % (fill[:400], n) for n in range(len(fill) // 400)),
        "cc": b", ".join(b"%d@%s.example.org" % (n, fill[:200]) for n in range(len(fill) // 200)),
        "references": b" ".join(b"<%d.%s@example.org>" % (n, fill[:300]) for n in range(len(fill) // 300)),
        "subject": fill,
        "message-id": b"<" + fill + b"@example.org>",
    }
    headers = {"from": b"Ana <ana@example.org>", "to": b"support@example.com", "subject": b"Help"}
    if field in values:
        headers[field] = values[field]
    head = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers.items())
    body = fill if field == "body" else b"My order is late."
    return head + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + b"\r\n"


@settings(PROPERTY, max_examples=25)
@given(raw=huge_emails())
def test_an_email_of_any_size_fits_its_items(world: World, raw: bytes) -> None:
    ingested(world, raw)


def test_a_message_at_every_bound_at_once_fits_its_item(world: World) -> None:
    # Given an email that fills every field to its bound with the widest characters there are (its new part and
    # the quoted history too: the text and the full text are both cut)
    emoji = "😀"
    name = f"{emoji * 70}.bin"
    files = "".join(
        f"--b\r\nContent-Type: application/{'x' * 240}\r\nContent-ID: <{'i' * 240}{n}@x>\r\n"
        f"Content-Disposition: attachment; filename*=utf-8''{quote(name)}\r\n\r\nfile {n}\r\n"
        for n in range(email_mime.MAX_PARTS)
    )
    many = ", ".join(f"{'é' * 60}{n}@example.org" for n in range(2000))
    raw = (
        f'From: "{emoji * 300}" <{"é" * 60}@example.org>, {many}\r\nTo: {many}\r\nCc: {many}\r\n'
        f"Subject: {emoji * 2000}\r\nMessage-ID: <{emoji * 3000}@example.org>\r\n"
        f"In-Reply-To: {' '.join(f'<{n}{emoji * 50}@x>' for n in range(500))}\r\n"
        f"References: {' '.join(f'<{n}{emoji * 50}@x>' for n in range(5000))}\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{emoji * 50_000}\r\n\r\n"
        f"On Mon, Mar 3, 2025 at 9:00 AM Acme <s@acme.example> wrote:\r\n> {emoji * 50_000}\r\n{files}--b--\r\n"
    ).encode()

    # When it goes through the email path, Then its items fit (SqliteTable refuses an item over 400 KB)
    message = ingested(world, raw)

    # And the text on the item is the head of what is in the archive
    assert message is not None and message.metadata["full_text_key"] in world.archive
    assert len(message.attachments) == email_mime.MAX_PARTS - 2  # the root and the text are parts too


# ------------------------------------------------------------------------------ providers' requests


def accepted(parse: Any) -> Any:
    """What a parser makes of a request, or None when it refuses it as the receiver answers 4xx."""
    try:
        return parse()
    except REJECTED:
        return None


def worked(world: World, item: InboundMessage | CallEvent | Reaction) -> IngestResult | None:
    """Queued as the receiver queues it, then taken by the worker."""
    from intake.calls import fold_call_event
    from intake.ingest import annotate

    taken = decode_message(item.model_dump_json())
    if isinstance(taken, InboundMessage):
        return ingest(world.store, taken, lambda: str(ULID()), world.policy)
    if isinstance(taken, CallEvent):
        return fold_call_event(world.store, taken, lambda: str(ULID()), world.policy)
    if isinstance(taken, Reaction):
        return annotate(world.store, taken)
    return None


def posted(body: bytes, content_type: str, path: str = "/webhooks/x") -> WebhookRequest:
    return WebhookRequest(method="POST", path=path, query="", headers={"content-type": content_type}, body=body)


# JSON may escape a lone surrogate ("\\ud83d": an emoji cut in half by a browser's script), which is no UTF-8
json_texts = st.text(max_size=30) | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=2)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | json_texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
phones = st.sampled_from(["+33612345678", "+14155550123", "33612345678", "+1", "client:ana", "anonymous", ""])
wide_text = st.builds(lambda unit, times: unit * times, wide, st.integers(1, 120_000))
field_values = st.one_of(
    st.text(max_size=60),
    phones,
    wide_text,
    repeated.map(lambda b: b.decode("latin-1")),
    st.integers().map(str),
)


def mutated(draw: st.DrawFn, valid: dict[str, Any], garbage: st.SearchStrategy[Any]) -> dict[str, Any]:
    """A valid request's fields, each sometimes replaced, dropped or joined by another: mostly still mapped."""
    fields = dict(valid)
    for name in list(fields):
        roll = draw(st.integers(0, 19))
        if roll == 0:
            fields[name] = draw(garbage)
        elif roll == 1:
            del fields[name]
    return fields | draw(st.dictionaries(st.text(max_size=8), garbage, max_size=2))


TWILIO_MESSAGE = {
    "From": "+33612345678",
    "To": "+33186950000",
    "MessageSid": "SM" + "a" * 32,
    "Body": "My parcel is late",
    "NumMedia": "1",
    "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/SM1/Media/ME1",
    "MediaContentType0": "image/jpeg",
    "Latitude": "48.85",
    "Longitude": "2.35",
    "ProfileName": "Ana",
}
TWILIO_CALL = {
    "CallSid": "CA" + "b" * 32,
    "From": "+33612345678",
    "To": "+33186950000",
    "CallStatus": "completed",
    "CallDuration": "42",
    "CallerName": "Ana",
    "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "c" * 32,
    "RecordingDuration": "12",
    "TranscriptionSid": "TR" + "d" * 32,
    "TranscriptionText": "Hello, my parcel is late",
    "TranscriptionStatus": "completed",
}


@st.composite
def twilio_requests(draw: st.DrawFn, valid: dict[str, str]) -> WebhookRequest:
    prefix = draw(st.sampled_from(["", "whatsapp:", "rcs:"]))
    sender = prefix + draw(st.sampled_from(["+33612345678", "+14155550123"]) | phones)
    fields = mutated(draw, {**valid, "From": sender}, field_values)
    kind = draw(st.integers(0, 9))
    if kind < 7:
        return posted(urlencode(fields).encode(), twilio.FORM)
    if kind < 9:
        document = mutated(draw, fields, json_values)
        return posted(json.dumps(document).encode(), twilio.JSON)
    return posted(draw(short_bytes), draw(st.sampled_from([twilio.FORM, twilio.JSON, "text/plain"])))


@PROPERTY
@given(data=st.data(), kind=st.sampled_from([None, *CallEventKind]))
def test_any_twilio_request_is_mapped_or_refused_and_what_is_mapped_is_worked(
    world: World, data: st.DataObject, kind: CallEventKind | None
) -> None:
    request = data.draw(twilio_requests(TWILIO_MESSAGE if kind is None else TWILIO_CALL))
    form = accepted(lambda: dict(twilio.params(request)))
    if form is None:
        return
    where: dict[str, Any] = {
        "policy": world.policy,
        "receipt_id": str(ULID()),
        "received_at": T0,
        "raw_archive_key": "raw/x",
    }
    if kind is None:
        item = accepted(lambda: twilio.message(form, **where))
    else:
        item = accepted(lambda: twilio.call_event(kind, form, **where))
        twilio.answer_call(form, world.policy, T0, "https://intake.example.com", is_open=True)
        twilio.after_recording(form, world.policy)
    if isinstance(item, InboundMessage | CallEvent):
        worked(world, item)


WHATSAPP_KINDS = ["text", "image", "audio", "document", "sticker", "video", "location", "contacts", "interactive",
                  "button", "order", "system", "reaction", "unsupported", "ephemeral"]  # fmt: skip
WHATSAPP_MEMBERS = ["body", "id", "mime_type", "sha256", "caption", "filename", "emoji", "message_id", "type",
                    "latitude", "longitude", "name", "product_items", "wa_id", "voice"]  # fmt: skip


@st.composite
def whatsapp_bodies(draw: st.DrawFn) -> bytes:
    """Meta's envelope around messages and statuses of any type; now and then a member of any JSON value."""

    def maybe(value: Any) -> Any:
        return draw(json_values) if draw(st.integers(0, 59)) == 0 else value

    messages = []
    for n in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(WHATSAPP_KINDS))
        members = st.dictionaries(st.sampled_from(WHATSAPP_MEMBERS), field_values | json_values, max_size=6)
        message = {
            "id": maybe(f"wamid.{n}.{draw(st.text(max_size=8))}"),
            "from": maybe(draw(st.sampled_from(["33612345678", "14155550123"]) | phones).lstrip("+")),
            "timestamp": maybe(str(draw(st.integers(0, 2**40)))),
            "type": maybe(kind),
            kind: maybe(draw(members)),
        }
        messages.append(maybe(message))
    value = {
        "metadata": maybe({"phone_number_id": maybe("106540352242922")}),
        "contacts": maybe([{"wa_id": maybe("33612345678"), "profile": maybe({"name": maybe(draw(field_values))})}]),
        "messages": maybe(messages),
        "statuses": maybe([{"id": maybe("wamid.s"), "status": maybe("read"), "timestamp": maybe("1")}]),
    }
    change = {"field": maybe("messages"), "value": maybe(value)}
    document = {"object": maybe("whatsapp_business_account"), "entry": maybe([{"changes": maybe([change])}])}
    return json.dumps(maybe(document)).encode() if draw(st.integers(0, 19)) else draw(short_bytes)


@PROPERTY
@given(body=whatsapp_bodies())
def test_any_whatsapp_request_is_mapped_or_refused_and_what_is_mapped_is_worked(world: World, body: bytes) -> None:
    where: dict[str, Any] = {
        "policy": world.policy,
        "receipt_id": str(ULID()),
        "received_at": T0,
        "raw_archive_key": "raw/x",
    }
    items = accepted(lambda: whatsapp.parse(body, **where)) or []
    for item in items:
        if isinstance(item, InboundMessage | Reaction):
            worked(world, item)


FORM_FIELDS = {
    "contact": {
        "name": "Ana",
        "email": "ana@example.com",
        "phone": "+33612345678",
        "subject": "Parcel",
        "message": "Late",
    },
    "website": {"full_name": "Ana", "email": "ana@example.com", "topic": "Parcel", "message": "Late", "website": ""},
    "feedback": {"customer_name": "Ana", "customer_email": "ana@example.com", "feedback": "Late"},
}


@st.composite
def form_requests(draw: st.DrawFn, form_id: str) -> WebhookRequest:
    from tests.unit.builders import multipart

    fields = mutated(draw, FORM_FIELDS[form_id], field_values)
    kind = draw(st.integers(0, 9))
    if form_id == "feedback":
        answers: list[Any] = [{"field": {"ref": ref}, "type": "text", "text": value} for ref, value in fields.items()]
        answers += draw(st.lists(json_values, max_size=2))
        hidden = draw(st.dictionaries(st.text(max_size=5), json_values, max_size=2))
        document = {"form_response": {"answers": answers, "hidden": hidden, "token": draw(st.text(max_size=8))}}
        return posted(json.dumps(document if kind else draw(json_values)).encode(), "application/json")
    if kind < 4:
        return posted(json.dumps(mutated(draw, fields, json_values)).encode(), "application/json")
    if kind < 7:
        return posted(urlencode(fields).encode(), "application/x-www-form-urlencoded")
    if kind < 9:
        types = st.sampled_from(["image/png", "text/plain", "application/x-evil"])
        files = draw(st.lists(st.tuples(st.just("file"), st.text(max_size=300), types, short_bytes), max_size=4))
        return multipart(list(fields.items()), files)
    return posted(draw(short_bytes), draw(st.sampled_from([*forms.MEDIA_TYPES, "multipart/form-data; boundary=b"])))


@PROPERTY
@given(data=st.data(), form_id=st.sampled_from(["contact", "website", "feedback"]))
def test_any_form_post_is_mapped_or_refused_and_what_is_mapped_is_worked(
    world: World, data: st.DataObject, form_id: str
) -> None:
    from intake.inbox import attachment_of

    form = world.policy.forms[form_id]
    request = data.draw(form_requests(form_id))
    submission = accepted(lambda: forms.parse(form, request))
    if submission is None or forms.is_spam(form, submission):
        return
    receipt_id = str(ULID())
    attachments = tuple(
        attachment_of(receipt_id, T0, n, upload.filename, upload.content_type, upload.content)
        for n, upload in enumerate(submission.files, start=1)
    )
    message = accepted(
        lambda: forms.to_inbound(
            form_id,
            form,
            submission,
            default_region=world.policy.teams[form.team].default_region,
            receipt_id=receipt_id,
            received_at=T0,
            raw_archive_key="raw/x",
            attachments=attachments,
        )
    )
    if message is not None:
        worked(world, message)


@st.composite
def email_posts(draw: st.DrawFn, valid: dict[str, str], files: str) -> WebhookRequest:
    """A SendGrid or Mailgun post: a valid one's fields, mutated; some files; urlencoded or multipart."""
    from tests.unit.builders import multipart

    emails = raw_emails().map(lambda raw: b"From: ana@example.org\r\n" + raw).map(lambda b: b.decode("latin-1"))
    values = st.one_of(
        field_values,
        emails,
        st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(json.dumps),
        st.lists(st.lists(st.text(max_size=12), min_size=2, max_size=2), max_size=4).map(json.dumps),
        st.integers(-5, 10**12).map(str),
    )
    chosen = mutated(
        draw, {name: draw(emails) if value == "<email>" else value for name, value in valid.items()}, values
    )
    names = st.sampled_from([f"{files}1", f"{files}2", "x"])
    types = st.sampled_from(["image/png", "bogus", ""])
    attached = draw(st.lists(st.tuples(names, st.text(max_size=300), types, short_bytes), max_size=3))
    if draw(st.booleans()):
        return posted(urlencode(chosen).encode(), "application/x-www-form-urlencoded")
    return multipart(list(chosen.items()), attached)


SENDGRID_RAW = {"email": "<email>"}
SENDGRID_PARSED = {
    "headers": "From: Ana <ana@example.org>\nTo: support@example.com\nSubject: Parcel\nMessage-ID: <p1@example.org>",
    "text": "My parcel is late",
    "html": "<p>My parcel is late</p>",
    "from": "Ana <ana@example.org>",
    "charsets": '{"text": "utf-8", "headers": "utf-8"}',
    "attachment-info": '{"attachment1": {"filename": "a.png", "type": "image/png"}}',
    "content-ids": '{"c1": "attachment1"}',
    "attachments": "1",
}
MAILGUN_MIME = {"body-mime": "<email>", "recipient": "support@example.com"}
MAILGUN_PARSED = {
    "message-headers": '[["From", "Ana <ana@example.org>"], ["Subject", "Parcel"], ["Message-Id", "<m1@example.org>"]]',
    "body-plain": "My parcel is late",
    "body-html": "<p>My parcel is late</p>",
    "from": "Ana <ana@example.org>",
    "recipient": "support@example.com",
    "attachment-count": "1",
    "content-id-map": '{"<c1>": "attachment-1"}',
}


@PROPERTY
@given(data=st.data(), valid=st.sampled_from([SENDGRID_RAW, SENDGRID_PARSED]))
def test_any_sendgrid_post_is_made_an_email_or_refused_and_the_email_is_worked(
    world: World, data: st.DataObject, valid: dict[str, str]
) -> None:
    raw = accepted(lambda: sendgrid.raw_mime(data.draw(email_posts(valid, "attachment"))))
    if raw is not None:
        ingested(world, raw)


@PROPERTY
@given(data=st.data(), valid=st.sampled_from([MAILGUN_MIME, MAILGUN_PARSED]))
def test_any_mailgun_post_is_made_an_email_or_refused_and_the_email_is_worked(
    world: World, data: st.DataObject, valid: dict[str, str]
) -> None:
    request = data.draw(email_posts(valid, "attachment-"))
    if accepted(lambda: mailgun.fields(request)) is None:
        return
    raw = accepted(lambda: mailgun.raw_mime(request))
    if raw is not None:
        ingested(world, raw)


# ------------------------------------------------------------------------------ JSON that is valid and still no text


@pytest.mark.parametrize("content_type", ["application/json"])
def test_json_with_a_number_past_what_python_reads_is_refused_as_a_bad_request(world: World, content_type: str) -> None:
    body = b'{"message": "hi", "email": "ana@example.com", "n": 1' + b"0" * 5000 + b"}"
    where: dict[str, Any] = {
        "policy": world.policy,
        "receipt_id": str(ULID()),
        "received_at": T0,
        "raw_archive_key": "raw/x",
    }

    for parse in (
        lambda: forms.parse(world.policy.forms["contact"], posted(body, content_type)),
        lambda: forms.parse(world.policy.forms["feedback"], posted(body, content_type)),
        lambda: twilio.params(posted(body, twilio.JSON)),
        lambda: whatsapp.parse(body, **where),
    ):
        with pytest.raises(RequestRejectedError):
            parse()


def test_half_an_emoji_in_json_is_read_as_a_replacement_character_and_queued(world: World) -> None:
    # Given a form post whose script cut an emoji in half (JSON.stringify escapes the lone surrogate)
    body = b'{"name": "Ana \\ud83d", "email": "ana@example.com", "message": "Late \\ud83d\\ude00 \\ude00"}'
    form = world.policy.forms["contact"]

    # When it is parsed and mapped
    submission = forms.parse(form, posted(body, "application/json"))
    message = forms.to_inbound(
        "contact",
        form,
        submission,
        default_region="FR",
        receipt_id=str(ULID()),
        received_at=T0,
        raw_archive_key="raw/x",
        attachments=(),
    )

    # Then the halves are U+FFFD, a whole emoji stays whole, and the message is queued and ingested
    assert (message.sender.name, message.text) == ("Ana \ufffd", "Late 😀 \ufffd")
    worked(world, message)


def test_a_form_whose_fields_run_to_hundreds_of_kilobytes_is_a_ticket_cut_to_fit(world: World) -> None:
    # Given a form post within the form's size limit whose message and an extra field are mostly emoji
    fields = {"name": "Ana", "email": "ana@example.com", "message": "😀" * 99_000, "order_notes": "😀" * 200_000}
    form = world.policy.forms["contact"]
    submission = forms.parse(form, posted(json.dumps(fields).encode(), "application/json"))
    message = forms.to_inbound(
        "contact",
        form,
        submission,
        default_region="FR",
        receipt_id=str(ULID()),
        received_at=T0,
        raw_archive_key="raw/x",
        attachments=(),
    )

    # When the worker takes it
    result = worked(world, message)

    # Then it is a ticket whose message keeps the head of what fits, and says what was cut
    assert result is not None
    [stored] = world.store.ticket_detail(result.ticket_id).messages
    assert stored.text == "😀" * (64 * 1024 // 4)
    assert stored.metadata["cut"] == ["text", "metadata"]
    assert stored.metadata["fields"] == {"cut_bytes": len(json.dumps({"order_notes": "😀" * 200_000}))}
