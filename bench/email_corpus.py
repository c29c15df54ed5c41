"""The real-world email corpus end to end, beside django-helpdesk and a bare parse, and one poison message.

    uv run python bench/email_corpus.py [--passes 3] [--helpdesk-repeat 3] [--poison-rounds 2]

1. End to end: every message of tests/email_corpus_realworld sent over SMTP to a fresh `intake serve
   --smtp-port` (one connection, one transaction each, as a sending MTA would), timed from the first MAIL FROM
   until the worker has drained the inbound queue and the last ticket is listed by `GET /tickets` (polled). In
   the same run: django-helpdesk's own bench (shared/peers/django_helpdesk/bench.py: `extract_email_metadata`
   per message, in process) on the same files, and a bare `email.message_from_bytes(raw, policy=default)` over
   them. Targets: >= 3x helpdesk's messages/s, and within 10x of the bare parse.
2. One poison message among 200: 199 messages that become tickets, alone and after one message the worker fails
   on every time (a corpus message it fails on, else one whose archived MIME was removed); the time until the
   199 are tickets. Target: within 1.2x.

It prints ratios beside their targets (PASS/OVER); it never fails on timing. Messages the worker cannot take
are named (with the error it logged) and left out of the rates' "done" condition: the queue holds them for its
visibility timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import gc
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from http.client import HTTPException
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.e2e: the corpus, its SMTP replay and the HTTP client

from tests.e2e import corpus  # noqa: E402
from tests.e2e.client import environment, http  # noqa: E402

HELPDESK = Path(os.environ.get("INTAKE_BENCH_HELPDESK", REPO.parent / "shared" / "peers" / "django_helpdesk"))
TARGET_HELPDESK = 3.0  # intake's messages/s >= 3x helpdesk's
TARGET_BARE = 10.0  # the bare parse's messages/s <= 10x intake's
TARGET_POISON = 1.2  # the 199 with a poison message among them: within 1.2x of the time without it
STALL_S = 60.0  # nothing changing this long ends a run (a safety net: a failing message ends it once logged)
POLL_S = 0.2  # GET /tickets (every page) this often: the HTTP processes share the cores with the worker


# ------------------------------------------------------------------ one intake serve


class Serve:
    """`intake serve --smtp-port` on a data folder of its own; stderr (its JSON logs) kept in a file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True)
        self.smtp_port = _free_port()
        self.stderr_path = data_dir.parent / f"{data_dir.name}.stderr"
        command = [sys.executable, "-m", "intake.cli", "serve", "--port", "0", "--data-dir", str(data_dir)]
        command += ["--smtp-port", str(self.smtp_port)]
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=environment(), stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if found is None:
            self.process.kill()
            raise RuntimeError(f"intake serve did not start: {line!r}\n{self.stderr_path.read_text()[-2000:]}")
        self.url = found.group(1)
        self.dropped: list[str] = []  # requests the server closed without an answer
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def get(self, path: str) -> Any:
        """GET path's JSON; a dropped connection is counted in `dropped` and tried again (five times at most)."""
        for attempt in range(5):
            try:
                answer = http("GET", self.url + path)
                break
            except (OSError, HTTPException) as error:
                self.dropped.append(f"GET {path.split('?')[0]}: {type(error).__name__}")
                if attempt == 4:
                    raise
                time.sleep(0.2)
        if answer.status != 200:
            raise RuntimeError(f"GET {path} answered {answer.status}: {answer.body[:300]!r}")
        return answer.json()

    def messages_on_tickets(self) -> int:
        """Inbound messages on the listed tickets (the sum of their message counts), every page."""
        total, cursor = 0, None
        while True:
            page = self.get("/tickets?limit=100" + (f"&cursor={cursor}" if cursor else ""))
            total += sum(int(t["message_count"]) for t in page["items"])
            cursor = page["next"]
            if cursor is None:
                return total

    def worker(self) -> int:
        """The worker process (queue consumers), as it wrote itself in the data folder."""
        return int((self.data_dir / "worker.pid").read_text())

    def receipts_on_tickets(self) -> set[str]:
        """The receipt of every message on a ticket (one GET per ticket: after the clock)."""
        found: set[str] = set()
        cursor = None
        while True:
            page = self.get("/tickets?limit=100" + (f"&cursor={cursor}" if cursor else ""))
            for ticket in page["items"]:
                detail = self.get(f"/tickets/{ticket['id']}")
                found |= {m["receipt_id"] for m in detail["messages"]}
            cursor = page["next"]
            if cursor is None:
                return found

    def errors(self) -> dict[str, str]:
        return corpus.worker_errors(self.stderr_path.read_text())

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Run:
    sent: int
    accepted: int
    seconds: float  # first MAIL FROM → the last ticket listed and the queue drained (or stalled)
    smtp_seconds: float
    on_tickets: int  # inbound messages on tickets at the end
    left: list[corpus.Queued]  # still on the queue: failing
    receipts: dict[str, str]  # receipt → file
    errors: dict[str, str]  # receipt → the worker's error
    on_ticket: set[str]  # receipts on a ticket at the end (with `details` only)
    dropped: list[str]  # polls the server closed without an answer (tried again)


def replay(
    messages: list[corpus.CorpusMessage],
    scratch: Path,
    name: str,
    *,
    until_on_tickets: int | None = None,
    before: Callable[[Serve], dict[str, str]] | None = None,
    details: bool = False,
) -> Run:
    """Send `messages` to a fresh server, then poll until the queue is drained and the count of messages on
    tickets has stopped growing (or, with `until_on_tickets`, until that many are on tickets); stalls end it.
    `before` runs first, untimed, and returns the receipts of what it sent (receipt → name)."""
    serve = Serve(scratch / name)
    try:
        earlier = before(serve) if before else {}
        started = time.perf_counter()
        deliveries = corpus.send(messages, serve.smtp_port)
        smtp_seconds = time.perf_counter() - started
        done_at, last_change = started, time.monotonic()
        on_tickets, depth = -1, -1
        while True:
            now_left = corpus.inbound(serve.data_dir)
            now_on = serve.messages_on_tickets()
            stamp = time.perf_counter()
            if now_on != on_tickets or len(now_left) != depth:
                on_tickets, depth = now_on, len(now_left)
                done_at, last_change = stamp, time.monotonic()
            if until_on_tickets is not None and on_tickets >= until_on_tickets:
                break
            if until_on_tickets is None and not now_left:
                break
            if time.monotonic() - last_change > STALL_S:
                break
            if now_left and time.monotonic() - last_change > 1 and _all_failed(now_left, serve):
                break  # what is left is what the worker failed on: it stays in flight for minutes
            time.sleep(POLL_S)
        return Run(
            sent=len(messages),
            accepted=sum(d.accepted for d in deliveries),
            seconds=done_at - started,
            smtp_seconds=smtp_seconds,
            on_tickets=on_tickets,
            left=now_left,
            receipts={**earlier, **{d.receipt: d.file for d in deliveries if d.receipt}},
            errors=serve.errors(),
            on_ticket=serve.receipts_on_tickets() if details else set(),
            dropped=serve.dropped,
        )
    finally:
        serve.stop()


def _all_failed(left: list[corpus.Queued], serve: Serve) -> bool:
    errors = serve.errors()
    return all(queued.receipt in errors for queued in left)


# ------------------------------------------------------------------ the two baselines


def bare_parse(messages: list[corpus.CorpusMessage], rounds: int) -> tuple[list[float], int, list[tuple[float, str]]]:
    """messages/s of `email.message_from_bytes(raw, policy=default)` over the files, how many raise, and the
    slowest messages (seconds, file)."""
    raised = 0
    each = []
    for message in messages:  # warm-up, the count of what the stdlib cannot parse, and each one's time
        started = time.perf_counter()
        try:
            email.message_from_bytes(message.raw, policy=policy.default)
        except RecursionError:
            raised += 1
        each.append((time.perf_counter() - started, message.file))
    rates = []
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        for message in messages:
            with contextlib.suppress(RecursionError):
                email.message_from_bytes(message.raw, policy=policy.default)
        rates.append(len(messages) / (time.perf_counter() - started))
    return rates, raised, sorted(each, reverse=True)


@dataclass
class Helpdesk:
    rate: float | None
    summary: str  # what its run said besides the rate (or why there is none)


def helpdesk(repeat: int, scratch: Path) -> Helpdesk:
    """shared/peers/django_helpdesk/bench.py on the corpus folder; its venv made by its setup.sh if missing."""
    bench = HELPDESK / "bench.py"
    if not bench.exists():
        return Helpdesk(None, f"not found: {bench} (set INTAKE_BENCH_HELPDESK)")
    venv = Path(os.environ.get("PEER_VENV", "/tmp/peer-venv-helpdesk"))
    if not (venv / "bin" / "python").exists():
        done = subprocess.run(["bash", str(HELPDESK / "setup.sh")], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return Helpdesk(None, f"setup.sh failed: {done.stderr[-500:]}")
    work = Path(tempfile.mkdtemp(prefix="intake-bench-helpdesk-", dir="/tmp"))
    env = {**os.environ, "HELPDESK_BENCH_DIR": str(work)}
    try:
        done = subprocess.run(
            [sys.executable, str(bench), str(corpus.CORPUS), "--repeat", str(repeat)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=1800,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    found = re.search(r"^helpdesk_msgs_per_s=([\d.]+)\s*$", done.stdout, re.MULTILINE)
    if found is None:
        return Helpdesk(None, f"no rate printed (exit {done.returncode}): {(done.stdout + done.stderr)[-800:]}")
    lines = dict(re.findall(r"^(\w+):\s+(.*)$", done.stdout, re.MULTILINE))
    keys = ("tickets_created", "followups_created", "failures", "passes")
    said = ", ".join(f"{key} {lines[key]}" for key in keys if key in lines)
    return Helpdesk(float(found.group(1)), said)


# ------------------------------------------------------------------ measurements


def end_to_end(messages: list[corpus.CorpusMessage], passes: int, repeat: int, scratch: Path) -> Run:
    print(
        f"== email corpus end to end: {len(messages)} messages ({corpus.CORPUS.relative_to(REPO)}, "
        f"{sum(len(m.raw) for m in messages) / 1e6:.1f} MB), {passes} passes each on a fresh intake serve"
    )
    runs = [replay(messages, scratch, f"e2e-{n}", details=n == passes - 1) for n in range(passes)]
    rates = [r.sent / r.seconds for r in runs]
    peer = helpdesk(repeat, scratch)
    bare, raised, slowest = bare_parse(messages, 3)
    ours = statistics.median(rates)
    last = runs[-1]
    rows: list[tuple[str, float | None, str]] = [
        ("intake serve: SMTP in, worker, ticket listed", ours, f"min {min(rates):.1f}, max {max(rates):.1f}"),
        ("django-helpdesk 2.6.1: extract_email_metadata", peer.rate, f"median of {repeat} passes, SQLite autocommit"),
        ("baseline: email.message_from_bytes(default)", statistics.median(bare), f"{raised} raise RecursionError"),
    ]
    print(f"   {'work':<48} {'msg/s':>9}")
    for label, rate, note in rows:
        shown = f"{rate:9.1f}" if rate is not None else f"{'-':>9}"
        print(f"   {label:<48} {shown}   {note}")
    print(
        f"   intake: SMTP took {last.smtp_seconds:.1f} s of {last.seconds:.1f} s (last pass); "
        f"{last.accepted} of {last.sent} accepted; {last.on_tickets} messages on tickets"
    )
    if peer.rate is not None:
        ratio = ours / peer.rate
        verdict = "PASS" if ratio >= TARGET_HELPDESK else "OVER"
        print(f"   intake = {ratio:.2f}x helpdesk's messages/s (target >= {TARGET_HELPDESK:.0f}x): {verdict}")
    print(f"   helpdesk: {peer.summary}")
    share = sum(t for t, _ in slowest[:2]) / sum(t for t, _ in slowest)
    print(
        "   the bare parse's slowest: "
        + ", ".join(f"{file} {t * 1000:.0f} ms" for t, file in slowest[:2])
        + f" ({share:.0%} of its time)"
    )
    bare_ratio = statistics.median(bare) / ours
    verdict = "PASS" if bare_ratio <= TARGET_BARE else "OVER"
    print(f"   bare parse = {bare_ratio:.1f}x intake's messages/s (target <= {TARGET_BARE:.0f}x): {verdict}")
    _name_failures(last)
    _name_dropped(runs)
    print()
    return last


def _name_dropped(runs: list[Run]) -> None:
    dropped = [what for run in runs for what in run.dropped]
    if dropped:
        print(f"   {len(dropped)} polls closed by the server without an answer (tried again): {sorted(set(dropped))}")


def _name_failures(run: Run) -> None:
    if not run.left:
        return
    print(f"   {len(run.left)} messages the worker did not take (left on the queue, not in the rate's end):")
    for queued in run.left:
        receipt = queued.receipt or ""
        print(f"     {run.receipts.get(receipt, receipt)}: {run.errors.get(receipt, '(no error logged)')}")


def _copy(message: corpus.CorpusMessage, n: int) -> corpus.CorpusMessage:
    """The message again as a new one: its Message-ID changed (or one added), so it is not a duplicate."""
    new_id = f"copy{n}.{message.message_id or 'none'}"
    raw = (
        message.raw.replace(f"<{message.message_id}>".encode(), f"<{new_id}>".encode(), 1)
        if message.message_id
        else f"Message-ID: <{new_id}>\r\n".encode() + message.raw
    )
    return corpus.CorpusMessage(
        file=f"{message.file} (copy {n})",
        raw=raw,
        expected=message.expected,
        kind=message.kind,
        envelope_from=message.envelope_from,
        smtp=message.smtp,
        message_id=new_id,
        entry=message.entry,
    )


def _failed(run: Run) -> list[str]:
    """The files the worker logged an error for."""
    return [run.receipts.get(receipt, receipt) for receipt in run.errors]


def _poisoning(bad: corpus.CorpusMessage, remove_archive: bool) -> Callable[[Serve], dict[str, str]]:
    """Untimed, before the clock: the worker paused (SIGSTOP), `bad` sent, its archived MIME removed if asked
    (the worker then fails to read it on every try), the worker resumed. Returns {receipt: file}."""

    def before(serve: Serve) -> dict[str, str]:
        worker = serve.worker()
        os.kill(worker, signal.SIGSTOP)
        try:
            (delivery,) = corpus.send([bad], serve.smtp_port)
            if not delivery.receipt:
                raise RuntimeError(f"the poison message was refused: {delivery.code} {delivery.reply}")
            if remove_archive:
                for archived in (serve.data_dir / "archive").rglob(f"{delivery.receipt}*"):
                    archived.unlink()
        finally:
            os.kill(worker, signal.SIGCONT)
        return {delivery.receipt: bad.file}

    return before


def _paused(serve: Serve) -> dict[str, str]:
    """The clean run's counterpart of `_poisoning`: the worker paused and resumed, nothing sent."""
    worker = serve.worker()
    os.kill(worker, signal.SIGSTOP)
    os.kill(worker, signal.SIGCONT)
    return {}


def poison(messages: list[corpus.CorpusMessage], reference: Run, rounds: int, scratch: Path) -> None:
    """199 messages that became tickets in `reference`, alone and after one message the worker fails on."""
    became = {file for receipt, file in reference.receipts.items() if receipt in reference.on_ticket}
    good = [m for m in messages if m.expected == "ticket" and m.file in became][:199]
    good += [_copy(m, n) for n, m in enumerate(good[: 199 - len(good)], start=1)]
    failed = {reference.receipts.get(q.receipt or "") for q in reference.left if q.receive_count}
    candidates = [m for m in messages if m.file in failed]
    if candidates:
        bad, remove_archive = candidates[0], False
        why = reference.errors.get(next(r for r, f in reference.receipts.items() if f == bad.file), "")
    else:
        bad, remove_archive = _copy(good[0], 0), True
        why = "its archived MIME removed before the worker reads it (no corpus message fails in the worker)"
    print(f"== one poison message among {len(good) + 1}: {len(good)} that become tickets, after {bad.file}")
    print(f"   poison: {why}")
    clean_runs: list[float] = []
    poisoned_runs: list[float] = []
    runs: list[Run] = []
    target: int | None = None  # how many messages on tickets the clean run made
    for n in range(rounds):
        order = [("clean", _paused), ("poisoned", _poisoning(bad, remove_archive))]
        for label, before in order if n % 2 == 0 else list(reversed(order)):
            run = replay(good, scratch, f"poison-{label}-{n}", until_on_tickets=target, before=before)
            if label == "clean" and target is None:
                target = run.on_tickets
            if target is not None and run.on_tickets < target:
                print(f"   ({label}, round {n + 1}: {run.on_tickets} of {target} on tickets when it stalled)")
            (clean_runs if label == "clean" else poisoned_runs).append(run.seconds)
            runs.append(run)
            if label == "poisoned" and bad.file not in _failed(run):
                print(f"   (round {n + 1}: {bad.file} did not fail in the worker: this pair measures nothing)")
    clean, poisoned = statistics.median(clean_runs), statistics.median(poisoned_runs)
    ratio = poisoned / clean
    print(f"   {'without it':<12} {clean:6.2f} s  (min {min(clean_runs):.2f}, max {max(clean_runs):.2f})")
    print(f"   {'with it':<12} {poisoned:6.2f} s  (min {min(poisoned_runs):.2f}, max {max(poisoned_runs):.2f})")
    verdict = "PASS" if ratio <= TARGET_POISON else "OVER"
    print(
        f"   with = {ratio:.2f}x the time without it, until {target} messages are on tickets "
        f"(target <= {TARGET_POISON}x): {verdict}"
    )
    _name_dropped(runs)
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=3, help="end-to-end passes over the corpus (median)")
    parser.add_argument(
        "--helpdesk-repeat",
        type=int,
        default=3,
        help="helpdesk's timed passes (its median; odd: an even count prints the upper middle pass)",
    )
    parser.add_argument("--poison-rounds", type=int, default=2, help="rounds of the poison pair (median)")
    args = parser.parse_args(argv)
    messages = corpus.load()
    with tempfile.TemporaryDirectory(prefix="intake-bench-email-") as scratch:
        reference = end_to_end(messages, max(args.passes, 1), max(args.helpdesk_repeat, 1), Path(scratch))
        poison(messages, reference, max(args.poison_rounds, 1), Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
