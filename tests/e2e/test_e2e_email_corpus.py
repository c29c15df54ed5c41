"""The real-world email corpus over a real SMTP socket into its own `intake serve --smtp-port`, then what became
of every message, read over HTTP (tickets, dead letters) and from the data folder (the inbound queue).

The corpus (tests/email_corpus_realworld, SOURCES.md) is public test mail: bounces, auto-replies, list mail,
broken MIME, unusual senders, thousands of parts, deep nesting, long lines. Its manifest labels each message
`ticket` or `auto` (a bounce, auto-reply, list or bulk mail, a machine report: it must open no ticket).

A message the worker cannot take would reach the dead letters only after five visibility timeouts (15 minutes),
holding back its conversation meanwhile. So the test waits until the queue is empty, or holds only what the
worker logged an error for, or stops shrinking, and counts what is left on it as failed, with the logged error.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import corpus
from .client import Server

DRAIN_TIMEOUT_S = 180.0  # the whole corpus end to end takes 10 to 40 s on 2 busy cores
STALL_S = 60.0  # the queue not shrinking this long: stuck (a failing message ends the wait once logged)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _opener(ticket: dict[str, Any]) -> dict[str, Any]:
    """The message that opened the ticket: its earliest inbound one."""
    return min(ticket["messages"], key=lambda m: (m["received_at"], m["receipt_id"]))


def test_every_corpus_email_is_accepted_and_becomes_a_ticket_or_nothing(
    launch: Callable[..., Server], tmp_path: Path
) -> None:
    # Given a server of its own, and the corpus
    messages = corpus.load()
    assert len(messages) >= 300, "the corpus shrank"
    port = _free_port()
    server = launch(tmp_path / "data", smtp_port=port)

    # When every message is sent over SMTP, then the worker drains the inbound queue
    deliveries = {d.file: d for d in corpus.send(messages, port)}
    left, waited = corpus.drain(server.data_dir, DRAIN_TIMEOUT_S, STALL_S, server.stderr_path)

    # Then: what SMTP answered
    by_file = {m.file: m for m in messages}
    problems: list[str] = []
    for message in messages:
        delivery = deliveries[message.file]
        if message.smtp == "accept" and not delivery.accepted:
            problems.append(f"{message.file}: SMTP refused it: {delivery.code} {delivery.reply}")
        if message.smtp != "accept" and delivery.accepted:
            problems.append(f"{message.file}: SMTP accepted what it should refuse ({message.smtp})")
    file_of = {d.receipt: f for f, d in deliveries.items() if d.receipt}

    # ... what the worker could not take (left on the queue), and why it said so
    errors = corpus.worker_errors(server.stderr_path.read_text())
    for queued in left:
        name = file_of.get(queued.receipt or "", f"receipt {queued.receipt}")
        why = errors.get(queued.receipt or "")
        if why is None and queued.receive_count == 0:
            why = "never received: held back behind a failing message (one FIFO group for all email)"
        problems.append(f"{name}: still queued after {waited:.0f} s, received {queued.receive_count}x: {why}")

    # ... the dead letters (none may be there): GET /failures, else (it failing) the queue file's count
    failures = server.get("/failures")
    if failures.status == 200:
        dead_items = failures.json()["items"]
        dead_count = sum(failures.json()["dead_letters"].values())
    else:
        problems.append(f"GET /failures answered {failures.status}: {failures.body[:300]!r}")
        dead_items, dead_count = [], corpus.dead_letter_count(server.data_dir)
        problems += [f"{dead_count} dead letters (read from queues.db)"] if dead_count else []
    for item in dead_items:
        name = file_of.get(item.get("receipt_id") or "", item.get("id"))
        problems.append(f"{name}: dead letter: {item.get('error_type')}: {item.get('error_message')}")

    # ... no ticket opened by auto mail, and every ticket-labeled message on a ticket
    details = [server.detail(t["id"]) for t in server.tickets()]
    on_ticket = {m["receipt_id"]: d for d in details for m in d["messages"]}
    by_message_id = {(m.get("metadata") or {}).get("message_id"): d for d in details for m in d["messages"]}
    for detail in details:
        opener = file_of.get(_opener(detail)["receipt_id"])
        if opener is not None and by_file[opener].expected == "auto":
            entry = by_file[opener].entry
            problems.append(f"{opener}: opened ticket {detail['id']}, but it is {entry['kind']} ({entry['why']})")
    for message in messages:
        delivery = deliveries[message.file]
        if message.expected != "ticket" or not delivery.accepted:
            continue
        found = on_ticket.get(delivery.receipt or "") or by_message_id.get(message.message_id)
        if found is None and delivery.receipt not in {q.receipt for q in left}:
            problems.append(f"{message.file}: labeled ticket, but on no ticket ({message.entry['why']})")

    tickets = sum(1 for m in messages if m.expected == "ticket")
    summary = (
        f"{len(messages)} messages ({tickets} ticket, {len(messages) - tickets} auto), "
        f"{sum(d.accepted for d in deliveries.values())} accepted over SMTP, {len(details)} tickets, "
        f"{len(left)} left on the queue after {waited:.0f} s, {dead_count} dead letters"
    )
    assert not problems, f"{summary}; {len(problems)} problems:\n" + "\n".join(problems)
