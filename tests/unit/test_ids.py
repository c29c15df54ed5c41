"""`intake.ids.new_id`: ULIDs as the spec and python-ulid read them, in the order they were made."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from ulid import ULID

from intake.ids import new_id
from intake.model import _ULID


def test_a_new_id_is_a_ulid_of_now() -> None:
    # Given the clock, When an id is made, Then python-ulid reads it back, with this millisecond as its time
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000

    assert re.fullmatch(_ULID, made)
    parsed = ULID.from_str(made)
    assert str(parsed) == made
    assert before <= parsed.milliseconds <= after
    assert parsed.datetime <= datetime.now(UTC)


def test_ids_made_one_after_another_sort_in_that_order_and_never_repeat() -> None:
    # Many ids share a millisecond: within it they count up from a random start, as python-ulid's do
    made = [new_id() for _ in range(20_000)]

    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert len({ULID.from_str(i).milliseconds for i in made}) < len(made)  # some did share one


def test_the_random_part_is_random_across_milliseconds() -> None:
    first = new_id()
    time.sleep(0.002)
    second = new_id()

    assert ULID.from_str(first).milliseconds < ULID.from_str(second).milliseconds
    assert first[10:] != second[10:]
