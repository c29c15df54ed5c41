"""Failures through `intake serve` as real processes: a message the worker keeps failing on is dead-lettered, listed
by `intake failures list` and `GET /failures` with its error, and once its cause is fixed `intake failures replay
--all` makes it exactly one ticket (replaying again doubles nothing); a request lost between the archive and the
queue is found and queued again by `intake failures reconcile`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .client import CONFIG, Server, contact_body, form_headers, run, wait_until

FAST_RETRIES = {"INTAKE_VISIBILITY_TIMEOUT_S": "1"}  # a failed message comes back after 1 s, not 3 minutes
# The contact form routed to a team of its own; the policy without it is the shipped one
BILLING = "teams:\n  billing:\n    name: Billing\n    timezone: Europe/Paris\n    default_region: FR\n"


def _intake(env: dict[str, str], *args: str) -> str:
    done = run([sys.executable, "-m", "intake.cli", *args], env)
    assert done.returncode == 0, f"intake {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _with_billing(folder: Path) -> Path:
    policy = folder / "with-billing.yaml"
    shipped = CONFIG.read_text()
    routed = shipped.replace("teams:\n", BILLING, 1).replace(
        "  contact:\n    team: support\n", "  contact:\n    team: billing\n", 1
    )
    assert routed.count("team: billing") == 1
    policy.write_text(routed)
    return policy


def _tickets_of(server: Server, receipt: str) -> list[dict[str, Any]]:
    """The tickets (as they are now) one of whose messages came in with this receipt."""
    ids = {t["id"] for t in server.by_receipt().values() if any(m["receipt_id"] == receipt for m in t["messages"])}
    return [server.detail(ticket_id) for ticket_id in sorted(ids)]


def _post_while_the_worker_is_stopped(server: Server, subject: str) -> str:
    """A form accepted (archived and queued) that the worker has not taken yet; the worker stays stopped."""
    os.kill(int((server.data_dir / "worker.pid").read_text()), signal.SIGSTOP)
    body = contact_body(subject)
    answer = server.post("/webhooks/forms/contact", body, form_headers(body))
    assert answer.status == 202, answer.body
    receipt: str = answer.json()["receipt"]
    return receipt


def test_a_dead_lettered_message_is_listed_then_replayed_into_exactly_one_ticket(
    launch: Callable[..., Server], tmp_path: Path, env: dict[str, str]
) -> None:
    # Given a form accepted for the billing team, queued (the worker stopped, then killed)
    data, with_billing = tmp_path / "data", _with_billing(tmp_path)
    first = launch(data, config=with_billing)
    receipt = _post_while_the_worker_is_stopped(first, f"invoice twice {uuid.uuid4().hex[:6]}")
    os.kill(int((data / "worker.pid").read_text()), signal.SIGKILL)
    assert first.process.wait(timeout=30) == 1

    # When Intake runs again on a policy without that team: its worker fails on the message until it is dead-lettered
    broken = launch(data, config=CONFIG, settings=FAST_RETRIES)

    def dead() -> list[dict[str, Any]]:
        answer = broken.get("/failures")
        assert answer.status == 200, answer.body
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    [failure] = wait_until(dead, 30, "the message in the dead letters")

    # Then GET /failures says which message, why, how often and when, and `intake failures list` prints it
    assert (failure["queue"], failure["channel"], failure["receipt_id"]) == ("inbound", "form", receipt)
    assert (failure["error_type"], failure["error_message"], failure["attempts"]) == ("KeyError", "'billing'", 5)
    assert failure["first_try"] < failure["last_try"]
    assert "erin@example.com" not in json.dumps(failure)  # ids and the error, never the customer's data
    listed = _intake(env, "failures", "list", "--url", broken.url)
    assert failure["id"] in listed and receipt in listed and "KeyError: 'billing'" in listed
    assert listed.rstrip().endswith("1 dead-lettered")
    broken.stop()

    # When the cause is fixed (Intake restarted with the team) and every dead letter is replayed
    fixed = launch(data, config=with_billing, settings=FAST_RETRIES)
    assert "1 dead letters" in fixed.first_line
    replayed = _intake(env, "failures", "replay", "--all", "--url", fixed.url)
    assert f"replayed {failure['id']} onto inbound" in replayed and replayed.rstrip().endswith("1 replayed")

    # Then it is exactly one ticket, of the billing team, with its SLA clocks running
    [ticket] = wait_until(lambda: [t for t in _tickets_of(fixed, receipt) if t["sla"]], 30, "the ticket's clocks")
    assert ticket["team"] == "billing" and ticket["message_count"] == 1
    assert fixed.get("/failures").json()["items"] == []

    # And replaying again, one by id or all, doubles nothing
    again = run([sys.executable, "-m", "intake.cli", "failures", "replay", failure["id"], "--url", fixed.url], env)
    assert again.returncode == 1 and "No such dead-lettered message" in again.stderr
    assert _intake(env, "failures", "replay", "--all", "--url", fixed.url).rstrip().endswith("0 replayed")
    assert [t["message_count"] for t in _tickets_of(fixed, receipt)] == [1]
    fixed.stop()


def test_a_request_lost_between_the_archive_and_the_queue_is_found_by_reconcile(
    launch: Callable[..., Server], tmp_path: Path, env: dict[str, str]
) -> None:
    # Given a form archived and answered 202, whose queued message is then lost: gone unread, as when it expires
    # (and with it, long before, its deduplication id)
    data = tmp_path / "data"
    server = launch(data)
    receipt = _post_while_the_worker_is_stopped(server, f"lost at sea {uuid.uuid4().hex[:6]}")
    with sqlite3.connect(data / "queues.db") as db:
        [(seq, dedupe)] = db.execute("SELECT seq, dedupe FROM queue_messages WHERE body LIKE ?", (f"%{receipt}%",))
        db.execute("DELETE FROM queue_messages WHERE seq = ?", (seq,))
        assert db.execute("DELETE FROM queue_dedupe WHERE dedupe = ?", (dedupe,)).rowcount == 1
    os.kill(int((data / "worker.pid").read_text()), signal.SIGCONT)
    delivered = _post_while_the_worker_is_stopped(server, f"arrived {uuid.uuid4().hex[:6]}")
    os.kill(int((data / "worker.pid").read_text()), signal.SIGCONT)
    server.wait_for_receipts([delivered])

    # When the archive of the last hour is reconciled
    done = _intake(env, "failures", "reconcile", "--since", "1h", "--data-dir", str(data), "--config", str(CONFIG))

    # Then the lost one is queued again and becomes a ticket; the other is left alone
    assert "2 requests archived" in done and "1 queued again" in done
    server.wait_for_receipts([receipt])
    # And a second pass queues nothing
    again = _intake(env, "failures", "reconcile", "--since", "1h", "--data-dir", str(data), "--config", str(CONFIG))
    assert "0 queued again" in again
    assert [t["message_count"] for t in _tickets_of(server, receipt)] == [1]
    server.stop()


@pytest.mark.parametrize("since", ["8d", "2026-01-01", "soon"])
def test_reconcile_refuses_a_window_it_cannot_keep_from_doubling(
    env: dict[str, str], tmp_path: Path, since: str
) -> None:
    done = run(
        [sys.executable, "-m", "intake.cli", "failures", "reconcile", "--since", since, "--data-dir", str(tmp_path)],
        env,
    )
    assert done.returncode == 2 and "intake failures reconcile" in done.stderr
    assert not any(tmp_path.iterdir())  # nothing opened
