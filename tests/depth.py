"""How hard the slowest checks try: `make test` (everyday) or `make test DEPTH=deep`.

Every test runs at either depth and asserts the same things; a few of the costliest do less of the same work every
day: the property tests that take seconds run a quarter of their examples (each run draws new ones; the
derandomized ones run the first of theirs), schemathesis generates fewer requests per operation, the digest's
backlog test adds 100 old open tickets rather than 10,000 (to 5 window tickets a day rather than 10) and its
window test puts 100 tickets outside the window rather than 2,000. The deep run (CI's nightly job, a release, a change
to what those tests cover) is the suite as it was before it had an everyday depth.

`INTAKE_TEST_DEPTH` picks it (`everyday`, the default, or `deep`); the Makefile's `DEPTH` sets it.
"""

from __future__ import annotations

import os

DEPTHS = ("everyday", "deep")


class TestDepthInvalidError(ValueError):
    __test__ = False  # not a test class, whatever its name says


def _depth() -> str:
    depth = os.environ.get("INTAKE_TEST_DEPTH") or "everyday"
    if depth not in DEPTHS:
        raise TestDepthInvalidError(f"INTAKE_TEST_DEPTH={depth!r}: it is one of {', '.join(DEPTHS)}")
    return depth


DEPTH = _depth()
DEEP = DEPTH == "deep"


def examples(deep: int) -> int:
    """A property test's example count: `deep` in the deep run, a quarter of it (at least 5) every day."""
    return deep if DEEP else max(5, deep // 4)


def everyday_or_deep(everyday: int, deep: int) -> int:
    """A size that is `everyday` in `make test` and `deep` in the deep run."""
    return deep if DEEP else everyday
