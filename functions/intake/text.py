"""What a person reads first of a customer's message: the emails' excerpts, the queue's snippet. No Jinja2 here: the
ingest path uses it."""

from __future__ import annotations

EXCERPT_LINES = 4
EXCERPT_LINE_CHARS = 160
EXCERPT_CHARS = 400
SNIPPET_CHARS = 120


def excerpt(
    text: str | None, lines: int = EXCERPT_LINES, line_chars: int = EXCERPT_LINE_CHARS, chars: int = EXCERPT_CHARS
) -> list[str]:
    """The first few lines of a message (blank runs collapsed, long lines cut); `…` ends a cut excerpt."""
    kept: list[str] = []
    total, cut = 0, False
    for raw in (text or "").strip().splitlines():
        line = " ".join(raw.split())  # tabs, control spacing and runs of blanks → one space
        if not line and (not kept or not kept[-1]):
            continue
        if len(kept) == lines or total >= chars:
            cut = True
            break
        room = min(line_chars, chars - total)
        if len(line) > room:
            line, cut = line[: max(room - 1, 0)].rstrip() + "…", True
        kept.append(line)
        total += len(line)
        if cut:
            break
    while kept and not kept[-1]:
        kept.pop()
    if cut and kept and not kept[-1].endswith("…"):
        kept[-1] += " …"
    return kept


def snippet(text: str | None) -> str | None:
    """A message's first line, as a list shows it beside a ticket without a subject (None: nothing to show)."""
    lines = excerpt(text, lines=1, line_chars=SNIPPET_CHARS, chars=SNIPPET_CHARS)
    return lines[0] if lines else None
