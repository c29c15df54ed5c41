"""New ids: ULIDs (https://github.com/ulid/spec), made with the standard library.

python-ulid makes the same ids, but its import reads its own version from the installed packages' metadata, which
every handler's cold start paid for; this is the little of it that a handler needs. Parsing stays python-ulid's.
"""

from __future__ import annotations

import os
import threading
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, randomness) of the previous id: ids made in one millisecond count up from it


def new_id() -> str:
    """A ULID: 48 bits of Unix milliseconds, then 80 random bits, in 26 characters of Crockford's base32.

    Monotonic in a process, as python-ulid's: an id made in the same millisecond as the one before (or with the
    clock set back) is that one plus 1, so ids sort in the order they were made."""
    global _last
    with _lock:
        now = time.time_ns() // 1_000_000
        last_ms, last_random = _last
        if now > last_ms:
            ms, randomness = now, int.from_bytes(os.urandom(_RANDOM_BITS // 8), "big")
        elif last_random + 1 < 1 << _RANDOM_BITS:
            ms, randomness = last_ms, last_random + 1
        else:  # 2**80 ids in one millisecond: borrow the next one
            ms, randomness = last_ms + 1, int.from_bytes(os.urandom(_RANDOM_BITS // 8), "big")
        _last = (ms, randomness)
    value = ms << _RANDOM_BITS | randomness
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))
