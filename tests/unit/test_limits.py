"""What one message's item may hold: `fitted` cuts what is past its share and names it, and leaves the rest alone."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from intake.limits import ATTACHMENTS_BYTES, METADATA_BYTES, TEXT_BYTES, clipped, fitted, stored_size
from intake.model import Attachment
from tests.unit.builders import RECEIPT_ID, RECEIVED_AT, form_message


def test_a_message_within_its_shares_is_left_as_it_is() -> None:
    message = form_message(RECEIVED_AT, RECEIPT_ID, metadata={"form_id": "contact"})
    assert fitted(message) is message


def test_a_long_text_keeps_its_head_between_characters() -> None:
    message = fitted(form_message(RECEIVED_AT, RECEIPT_ID, text="é" * TEXT_BYTES))
    assert message.text == "é" * (TEXT_BYTES // 2) and message.metadata["cut"] == ["text"]


def test_a_metadata_value_past_the_share_gives_way_to_a_note_of_its_size_and_the_others_stay() -> None:
    big = {"answer": "😀" * (METADATA_BYTES // 4)}
    message = fitted(form_message(RECEIVED_AT, RECEIPT_ID, metadata={"form_id": "contact", "fields": big}))
    assert message.metadata == {"form_id": "contact", "fields": {"cut_bytes": stored_size(big)}, "cut": ["metadata"]}


def test_attachments_past_the_share_are_left_off_and_a_long_caption_is_cut() -> None:
    files = tuple(
        Attachment(filename=f"{n}.jpg", content_type="image/jpeg", url="https://x.example/" + "m" * 2000)
        for n in range(100)
    )
    captioned = Attachment(filename="a.jpg", content_type="image/jpeg", media_id="1", caption="c" * 50_000)
    message = fitted(form_message(RECEIVED_AT, RECEIPT_ID, attachments=(captioned, *files)))

    assert message.attachments[0].caption == "c" * 1024
    assert 1 < len(message.attachments) < 101 and message.metadata["cut"] == ["attachments"]
    described = [json.dumps(a.model_dump(mode="json"), ensure_ascii=False) for a in message.attachments]
    assert sum(len(d.encode()) for d in described) <= ATTACHMENTS_BYTES


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.text(), st.integers(0, 64))
def test_clipped_is_the_longest_head_within_the_limit(text: str, limit: int) -> None:
    head = clipped(text, limit)
    assert text.startswith(head) and len(head.encode()) <= limit
    assert head == text or len(text[: len(head) + 1].encode()) > limit
