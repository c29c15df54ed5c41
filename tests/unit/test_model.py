"""The domain models: ULID ids, aware timestamps, frozen values, JSON round trips, safe file names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from ulid import ULID

from intake.model import (
    Attachment,
    Channel,
    EventKind,
    InboundMessage,
    Priority,
    Sender,
    Status,
    Ticket,
    TicketEvent,
    reference_for,
    safe_filename,
)

TICKET_ID = "01JDQ8Z1W3C9G7T2M4K6P8R0SX"
CONTACT_ID = "01JDQ8Z1W3C9G7T2M4K6P8R0SY"
AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def ticket(**changes: Any) -> Ticket:
    values: dict[str, Any] = {
        "id": TICKET_ID,
        "reference": reference_for(TICKET_ID),
        "channel": Channel.FORM,
        "team": "support",
        "priority": Priority.NORMAL,
        "status": Status.OPEN,
        "contact_id": CONTACT_ID,
        "subject": "Order 1042",
        "thread_key": "form#contact#sha256-abc",
        "created_at": AT,
        "updated_at": AT,
        "last_inbound_at": AT,
        "message_count": 1,
    }
    return Ticket(**(values | changes))


# ----------------------------------------------------------------------------------------- ids


@given(raw=st.binary(min_size=16, max_size=16))
def test_every_ulid_is_accepted_as_an_id(raw: bytes) -> None:
    ulid = str(ULID.from_bytes(raw))
    assert ticket(id=ulid, contact_id=ulid).id == ulid


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-ulid",
        TICKET_ID[:-1],  # 25 characters
        TICKET_ID + "0",  # 27 characters
        TICKET_ID[:-1] + "U",  # U, I, L, O are not in Crockford's base32
        TICKET_ID[:-1] + "I",
        TICKET_ID[:-1] + "O",
        TICKET_ID[:-1] + "L",
        f" {TICKET_ID}",
        "",
        "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",  # over 128 bits: a ULID's first character is at most 7
    ],
    ids=["text", "short", "long", "U", "I", "O", "L", "padded", "empty", "overflow"],
)
def test_id_that_is_not_a_ulid_is_rejected(bad: str) -> None:
    with pytest.raises(ValidationError):
        ticket(id=bad)
    with pytest.raises(ValidationError):
        ticket(contact_id=bad)


def test_reference_is_the_ids_last_eight_characters() -> None:
    assert reference_for(TICKET_ID) == "M4K6P8R0SX"[-8:] == TICKET_ID[-8:]


# ---------------------------------------------------------------------------------- timestamps


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        ticket(created_at=datetime(2026, 11, 23, 9, 30))


def test_aware_timestamp_is_stored_in_utc() -> None:
    paris_winter = timezone(timedelta(hours=1))
    created = ticket(created_at=datetime(2026, 11, 23, 10, 30, tzinfo=paris_winter)).created_at
    assert created == AT
    assert created.tzinfo is UTC


def test_timestamp_given_as_iso_text_without_offset_is_rejected() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        TicketEvent.model_validate({"ticket_id": TICKET_ID, "kind": "created", "at": "2026-11-23T09:30:00"})
    event = TicketEvent.model_validate({"ticket_id": TICKET_ID, "kind": "created", "at": "2026-11-23T09:30:00Z"})
    assert (event.at, event.kind) == (AT, EventKind.CREATED)


# -------------------------------------------------------------------------------- frozen, strict


def test_models_are_frozen() -> None:
    opened = ticket()
    with pytest.raises(ValidationError, match="frozen"):
        opened.status = Status.RESOLVED  # type: ignore[misc]
    assert opened.status is Status.OPEN
    assert opened.model_copy(update={"status": Status.RESOLVED}).status is Status.RESOLVED


def test_models_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ticket(owner="ana")


def test_sender_identities_are_phone_then_email() -> None:
    sender = Sender(name="Ana", email="Ana@Example.org", phone="+33612345678")
    assert sender.identities() == [("phone", "+33612345678"), ("email", "ana@example.org")]
    assert Sender(email="a@example.org").identities() == [("email", "a@example.org")]


# ------------------------------------------------------------------------------- JSON round trip

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
_ULIDS = st.binary(min_size=16, max_size=16).map(lambda raw: str(ULID.from_bytes(raw)))
_ATTACHMENTS = st.builds(
    Attachment,
    filename=st.text(max_size=255),
    content_type=st.sampled_from(["image/png", "application/pdf", "text/plain"]),
    size=st.integers(min_value=0, max_value=10**9),
    sha256=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    s3_key=st.text(min_size=1, max_size=80),
)
_MESSAGES = st.builds(
    InboundMessage,
    channel=st.sampled_from(Channel),
    provider=st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True),
    provider_message_id=st.text(min_size=1, max_size=200),
    receipt_id=_ULIDS,
    received_at=st.datetimes(timezones=st.just(UTC)),
    team=st.text(max_size=20),
    sender=st.builds(
        Sender,
        name=st.none() | st.text(max_size=200),
        email=st.none() | st.from_regex(r"[a-z0-9.+]{1,10}@[a-z]{1,10}\.[a-z]{2,4}", fullmatch=True),
        phone=st.none() | st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
    ),
    subject=st.none() | st.text(max_size=998),
    text=st.text(max_size=500),
    priority=st.sampled_from(Priority),
    attachments=st.lists(_ATTACHMENTS, max_size=3).map(tuple),
    raw_archive_key=st.text(max_size=80),
    thread_key=st.text(min_size=1, max_size=512),
    dedupe_window_s=st.integers(min_value=1, max_value=10**7),
    metadata=st.dictionaries(st.text(max_size=10), _JSON, max_size=4),
)


@given(message=_MESSAGES)
def test_inbound_message_round_trips_through_json(message: InboundMessage) -> None:
    # Given any message a channel adapter builds, When it crosses the queue as JSON
    # Then the ingest worker reads back the same message
    assert InboundMessage.model_validate_json(message.model_dump_json()) == message


# -------------------------------------------------------------------------------- safe_filename

_SAFE = re.compile(r"^[A-Za-z0-9-][A-Za-z0-9._-]{0,119}$")  # never hidden (no leading dot)


@given(name=st.text())
def test_safe_filename_is_never_empty_and_never_a_path(name: str) -> None:
    safe = safe_filename(name)
    assert safe
    assert "/" not in safe and "\\" not in safe
    assert safe not in {".", ".."}
    assert len(safe) <= 120
    assert _SAFE.match(safe), safe


@given(name=st.text())
def test_safe_filename_is_idempotent(name: str) -> None:
    safe = safe_filename(name)
    assert safe_filename(safe) == safe


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("invoice.png", "invoice.png"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ana\\Desktop\\report final.pdf", "report_final.pdf"),
        ("résumé.pdf", "r_sum_.pdf"),
        (".htaccess", "htaccess"),
        ("..", "file"),
        ("", "file"),
        ("folder/", "file"),
        ("a" * 300 + ".png", "a" * 120),
    ],
)
def test_safe_filename_examples(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_a_validation_error_names_the_field_never_the_customers_data() -> None:
    # its text is what a worker's log carries with the traceback
    with pytest.raises(ValidationError) as raised:
        Sender(name="Ana Silva " * 30, phone="+33 6 12")
    text = str(raised.value)
    assert "phone" in text and "name" in text
    assert "Ana" not in text and "+33" not in text
