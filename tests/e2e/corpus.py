"""The real-world email corpus (tests/email_corpus_realworld) as the SMTP test and bench/email_corpus.py use it:
its manifest, each message replayed over SMTP as a sending MTA would, and what the data folder says about the
inbound queue while the worker drains it.

Nothing here imports the code under test: the queue is read with plain SQL from `<data-dir>/queues.db`, as
bench/serve.py does, and the worker's errors from the JSON log lines `intake serve` writes to stderr.
"""

from __future__ import annotations

import json
import re
import smtplib
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "email_corpus_realworld"
RECIPIENT = "support@example.com"  # intake.yaml: email.addresses routes it to the support team
_RECEIPT = re.compile(r"\bas (\S+)")
_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class CorpusMessage:
    file: str
    raw: bytes
    expected: str  # "ticket" | "auto"
    kind: str
    envelope_from: str
    smtp: str  # "accept", or why the listener is right to refuse it
    message_id: str | None  # as the manifest's sources wrote it, without angle brackets
    entry: dict[str, Any]


def load(corpus: Path = CORPUS) -> list[CorpusMessage]:
    """Every message of the manifest, in file-name order (a reply after what it answers)."""
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    found = []
    for entry in sorted(manifest["messages"], key=lambda e: e["file"]):
        raw = (corpus / entry["file"]).read_bytes()
        found.append(
            CorpusMessage(
                file=entry["file"],
                raw=raw,
                expected=entry["expected"],
                kind=entry["kind"],
                envelope_from=entry["envelope_from"],
                smtp=entry["smtp"],
                message_id=_message_id(raw),
                entry=entry,
            )
        )
    return found


def _message_id(raw: bytes) -> str | None:
    head = _LINE_END.split(raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0])
    for n, line in enumerate(head):
        if line[:11].lower() == b"message-id:":
            value = line[11:] + b"".join(following for following in head[n + 1 :] if following[:1] in (b" ", b"\t"))
            found = re.search(rb"<([^<>\s]+)>", value)
            return found.group(1).decode("latin-1") if found else None
    return None


def wire(raw: bytes) -> bytes:
    """The message as it travels in SMTP DATA: every line ending CRLF (a sending MTA converts bare LF and CR)."""
    return _LINE_END.sub(b"\r\n", raw)


@dataclass(frozen=True)
class Delivery:
    file: str
    code: int  # the final reply to DATA (or to the command that failed); 0: the connection failed
    reply: str
    receipt: str | None  # the receipt id from "250 ... as <id>"
    seconds: float

    @property
    def accepted(self) -> bool:
        return self.code == 250


def send(messages: Iterable[CorpusMessage], port: int, host: str = "127.0.0.1") -> list[Delivery]:
    """One transaction per message over one connection (a new one after the server drops it): MAIL FROM the
    manifest's envelope sender (BODY=8BITMIME when the server offers it), RCPT TO the support address, DATA."""
    deliveries: list[Delivery] = []
    smtp: smtplib.SMTP | None = None
    for message in messages:
        started = time.perf_counter()
        try:
            if smtp is None:
                smtp = smtplib.SMTP(host, port, timeout=30)
                smtp.ehlo("corpus.example")
            code, reply = _transaction(smtp, message)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            code, reply = 0, f"{type(error).__name__}: {error}"
            smtp = None
        receipt = _RECEIPT.search(reply) if code == 250 else None
        deliveries.append(
            Delivery(message.file, code, reply, receipt.group(1) if receipt else None, time.perf_counter() - started)
        )
    if smtp is not None:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
    return deliveries


def _transaction(smtp: smtplib.SMTP, message: CorpusMessage) -> tuple[int, str]:
    options = ["BODY=8BITMIME"] if smtp.has_extn("8bitmime") and not message.raw.isascii() else []
    code, reply = smtp.mail(message.envelope_from, options)
    if code == 250:
        code, reply = smtp.rcpt(RECIPIENT)
    if code not in (250, 251):
        smtp.rset()
        return code, reply.decode("utf-8", "replace")
    code, reply = smtp.data(wire(message.raw))
    if code != 250:
        smtp.rset()
    return code, reply.decode("utf-8", "replace")


# ------------------------------------------------------------------ the data folder, read from outside


@dataclass(frozen=True)
class Queued:
    receipt: str | None
    receive_count: int


def inbound(data_dir: Path) -> list[Queued]:
    """What is still on the inbound queue (waiting or in flight), oldest first."""
    path = data_dir / "queues.db"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute(
            "SELECT body, receive_count FROM queue_messages WHERE queue = 'inbound' ORDER BY seq"
        ).fetchall()
    found = []
    for body, count in rows:
        try:
            receipt = json.loads(body).get("receipt_id")
        except (ValueError, AttributeError):
            receipt = None
        found.append(Queued(receipt, int(count)))
    return found


def dead_letter_count(data_dir: Path) -> int:
    path = data_dir / "queues.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        return int(db.execute("SELECT COUNT(*) FROM queue_dead_letters").fetchone()[0])


def drain(data_dir: Path, timeout: float, stall: float, stderr_path: Path | None = None) -> tuple[list[Queued], float]:
    """Wait until the inbound queue is empty, or what is left on it is only what the worker logged an error for
    (read from `stderr_path`), or it has not shrunk for `stall` seconds, or `timeout` passed; returns (what is
    left, seconds waited). A message the worker fails stays in flight for the queue's visibility timeout
    (minutes) before it is tried again, and reaches the dead letters only after five tries."""
    started = time.monotonic()
    last, last_change = -1, started
    while True:
        left = inbound(data_dir)
        now = time.monotonic()
        if len(left) != last:
            last, last_change = len(left), now
        if not left or now - last_change > stall or now - started > timeout:
            return left, now - started
        if stderr_path is not None and now - last_change > 1:
            errors = worker_errors(stderr_path.read_text())
            if all(queued.receipt in errors for queued in left):
                return left, now - started
        time.sleep(0.1)


def worker_errors(stderr: str) -> dict[str, str]:
    """receipt id → the error the worker logged for it ("message not ingested"): the exception's type and message,
    for a validation error its field and complaint too, without the value (which may be an address)."""
    found: dict[str, str] = {}
    for line in stderr.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        receipt = record.get("receipt_id")
        exception = record.get("exception")
        if receipt and exception and "not ingested" in str(record.get("message", "")):
            found[str(receipt)] = _summary(str(exception), str(record.get("exception_name") or ""))
    return found


def _summary(exception: str, name: str) -> str:
    lines = [line for line in exception.strip().splitlines() if not line.strip().startswith("For further information")]
    heads = [n for n, line in enumerate(lines) if name and re.match(rf"^[\w.]*{re.escape(name)}\b", line)]
    start = heads[-1] if heads else len(lines) - 1
    tail = lines[start : start + (3 if name == "ValidationError" else 1)]
    text = " | ".join(line.strip() for line in tail)
    return re.sub(r",? ?input_value=.*?, input_type=\w+", "", text)[:300]
