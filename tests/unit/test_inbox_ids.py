"""`inbox._group`: the SQS FIFO MessageGroupId and MessageDeduplicationId made from our keys."""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.inbox import _group
from intake.reception import conversation

# What SQS accepts in both ids: 1 to 128 of a-z, A-Z, 0-9 and ASCII punctuation.
SQS_ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + string.punctuation)


def is_valid_sqs_id(value: str) -> bool:
    return 1 <= len(value) <= 128 and set(value) <= SQS_ID_CHARACTERS


@given(key=st.text(min_size=1))
def test_any_key_becomes_a_valid_sqs_id(key: str) -> None:
    # Given any thread key or provider id (Message-IDs, names, non-Latin text, very long keys)
    # When it becomes a FIFO group or deduplication id, Then SQS accepts it
    assert is_valid_sqs_id(_group(key)), _group(key)


@given(key=st.text(min_size=1))
def test_sqs_id_is_deterministic(key: str) -> None:
    # The id is the key itself or its sha256, so every receiver, on every retry and in every
    # process, sends the same id for the same key (no salt, no hash randomization)
    assert _group(key) == _group(key)
    assert _group(key) in {key, hashlib.sha256(key.encode()).hexdigest()}


@given(first=st.text(min_size=1), second=st.text(min_size=1))
def test_different_keys_get_different_sqs_ids(first: str, second: str) -> None:
    if first != second:
        assert _group(first) != _group(second)


@pytest.mark.parametrize(
    "key",
    [
        "form#contact#sha256-884e34618259c559f837f6074e39eda6965a8ad26bb9208d3424f453c069b9fb",
        "forms#typeform-a3a12ec67a1365927098a606107fac15",
        "<CAF=x+y@mail.example.com>",
        "a" * 128,
    ],
)
def test_short_keys_of_allowed_characters_are_kept_readable(key: str) -> None:
    assert _group(key) == key


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # printf '%s' "$(printf 'a%.0s' $(seq 129))" | openssl dgst -sha256
        ("a" * 129, "c12cb024a2e5551cca0e08fce8f1c5e314555cc3fef6329ee994a3db752166ae"),
        # printf '%s' 'email#café@example.org' | openssl dgst -sha256   (UTF-8 locale)
        ("email#café@example.org", "be85fa411cb34440747e9b1a3e9caf8df7b72b1e6a4e434c8e2354710319cfee"),
    ],
    ids=["too-long", "non-ascii-letter"],
)
def test_long_or_unusual_keys_are_hashed_to_their_sha256(key: str, expected: str) -> None:
    assert _group(key) == expected


# ---------------------------------------------------------------- an email's FIFO group: its conversation


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"Message-ID: <new@x.example>\r\n", "new@x.example"),
        (b"In-Reply-To: <parent@x.example>\r\nMessage-ID: <me@x.example>\r\n", "parent@x.example"),
        (
            b"References: <root@x.example>\r\n <parent@x.example>\r\nIn-Reply-To: <parent@x.example>\r\n",
            "root@x.example",
        ),
        (b"references:\n\t<root@x.example> <parent@x.example>\nmessage-id: <me@x.example>\n", "root@x.example"),
        (b"Subject: no ids at all\r\n", None),
    ],
)
def test_an_email_is_grouped_by_the_message_that_started_its_thread(head: bytes, expected: str | None) -> None:
    assert conversation(head + b"\r\nMessage-ID: <in-the-body@x.example>\r\n") == expected


@given(raw=st.binary(max_size=2000))
def test_any_bytes_give_a_conversation_or_none_never_an_error(raw: bytes) -> None:
    found = conversation(raw)
    assert found is None or 0 < len(found) <= 250
