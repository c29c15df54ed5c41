"""Email parsing: messages per second over tests/email_corpus, as a ratio to the stdlib parse alone.

`uv run python bench/email_parse.py`. The floor is `email.message_from_bytes(raw, policy=default)` over
the same messages in the same run: what any MIME parse costs before headers are decoded, charsets
guessed, HTML converted and replies separated. Rounds alternate which side goes first. It prints;
it never fails on timing.
"""

from __future__ import annotations

import argparse
import email
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from email import policy
from pathlib import Path

from intake.channels import email_mime

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "email_corpus"


def load_corpus() -> list[tuple[str, bytes, int]]:
    """(name, raw bytes, max_attachment_bytes) of every corpus message."""
    found = []
    for path in sorted(CORPUS.glob("*.eml")):
        expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
        limit = int(expected.get("max_attachment_bytes", email_mime.DEFAULT_MAX_ATTACHMENT_BYTES))
        found.append((path.stem, path.read_bytes(), limit))
    return found


def _timed(work: Callable[[], None]) -> float:
    gc.collect()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="rounds, each timing both sides (median)")
    parser.add_argument("--repeat", type=int, default=10, help="passes over the corpus per timing")
    args = parser.parse_args(argv)
    corpus = load_corpus()
    count = len(corpus) * args.repeat
    size = sum(len(raw) for _, raw, _ in corpus)

    def ours() -> None:
        for _ in range(args.repeat):
            for _, raw, limit in corpus:
                email_mime.parse(raw, max_attachment_bytes=limit)

    def floor() -> None:
        for _ in range(args.repeat):
            for _, raw, _ in corpus:
                email.message_from_bytes(raw, policy=policy.default)

    ours()  # warm-up: imports (bs4 on the first HTML body), regex compilation
    floor()
    rates: dict[str, list[float]] = {"parse": [], "floor": []}
    for n in range(args.rounds):
        sides = [("parse", ours), ("floor", floor)]
        for name, work in sides if n % 2 == 0 else reversed(sides):
            rates[name].append(count / _timed(work))

    slowest = []
    for name, raw, limit in corpus:
        elapsed = min(
            _timed(lambda raw=raw, limit=limit: email_mime.parse(raw, max_attachment_bytes=limit)) for _ in range(5)
        )
        slowest.append((elapsed, name))
    slowest.sort(reverse=True)

    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"== email parsing: {len(corpus)} corpus messages ({size / 1024:.0f} KiB), {args.repeat} passes per timing, "
        f"median of {args.rounds} alternating rounds"
    )
    print(f"   {'work':<52} {'msg/s':>8} {'min':>8} {'max':>8}   {'ms each':>8}")
    labels = {
        "parse": "email_mime.parse",
        "floor": "baseline: email.message_from_bytes(policy=default)",
    }
    for name, values in rates.items():
        print(
            f"   {labels[name]:<52} {medians[name]:>8.0f} {min(values):>8.0f} {max(values):>8.0f}   "
            f"{1000 / medians[name]:>8.3f}"
        )
    print(
        f"   parse = {medians['floor'] / medians['parse']:.2f}x the baseline's time per message "
        f"({medians['parse'] / medians['floor']:.0%} of its rate)"
    )
    print("   slowest messages (best of 5): " + ", ".join(f"{name} {t * 1000:.2f} ms" for t, name in slowest[:3]))
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
