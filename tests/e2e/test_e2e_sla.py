"""SLA clocks, agent actions and quarantine through `intake serve` as a real process, over real HTTP and the CLI."""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest

from .client import CONFIG, Server, form_headers, run

FAST_SLA = """sla:
  policies:
    - name: fast
      first_response: {within: 3s, time: calendar}
      resolution: {within: 1h, time: calendar}
      warnings: ["50%"]
      escalation:
        - {after: 0s, to: [lead@example.com]}

"""


def _intake(*args: str, env: dict[str, str]) -> str:
    done = run([sys.executable, "-m", "intake.cli", *args], env)
    assert done.returncode == 0, f"intake {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _open_ticket(server: Server, subject: str) -> dict[str, Any]:
    fields = {"name": "Noor Haddad", "email": "noor@example.net", "subject": subject, "message": "Where is my order?"}
    body = json.dumps(fields).encode()
    answer = server.post("/webhooks/forms/contact", body, form_headers(body))
    assert answer.status == 202, answer.body
    receipt = answer.json()["receipt"]
    return server.wait_for_receipts([receipt])[receipt]


@pytest.fixture(scope="module")
def fast_server(launch: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    folder = tmp_path_factory.mktemp("fast-sla")
    policy = re.sub(r"(?ms)^sla:\n.*?(?=^# A new ticket's priority)", FAST_SLA, CONFIG.read_text())
    (folder / "intake.yaml").write_text(policy)
    return launch(folder / "data", config=folder / "intake.yaml")


def _notices(server: Server) -> list[str]:
    found = []
    for path in sorted((server.data_dir / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=email_policy.default)
        if message["X-Intake-Notice"]:
            found.append(str(message["X-Intake-Notice"]).split(";")[0] + " " + str(message["To"]))
    return found


def test_an_unanswered_ticket_warns_breaches_and_escalates_into_the_outbox(fast_server: Server) -> None:
    ticket = _open_ticket(fast_server, f"late {uuid.uuid4().hex[:6]}")

    deadline = time.monotonic() + 30
    while len(_notices(fast_server)) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)

    assert _notices(fast_server) == [
        "warning support@example.com",
        "breach support@example.com",
        "escalation lead@example.com",
    ]
    assert fast_server.detail(ticket["id"])["breached"] is True


def test_cli_respond_pend_resolve_and_explain(fast_server: Server, env: dict[str, str]) -> None:
    ticket = _open_ticket(fast_server, f"answered {uuid.uuid4().hex[:6]}")

    responded = _intake("tickets", "respond", ticket["id"], "--by", "ana", "--url", fast_server.url, env=env)
    pended = _intake("tickets", "pend", ticket["id"], "--url", fast_server.url, env=env)
    explained = _intake("sla", "explain", ticket["id"], "--url", fast_server.url, env=env)
    resolved = _intake("tickets", "resolve", ticket["id"], "--note", "refunded", "--url", fast_server.url, env=env)
    again = run([sys.executable, "-m", "intake.cli", "tickets", "resolve", ticket["id"], "--url", fast_server.url], env)

    assert f"#{ticket['reference']} is open" in responded and "first_response met" in responded
    assert "is pending" in pended and "resolution paused" in pended
    assert ("fast" in explained and "Europe/Paris" in explained) or "CET" in explained
    assert "is resolved" in resolved and "resolution met" in resolved
    assert again.returncode == 1 and "does not allow" in again.stderr
    kinds = [e["kind"] for e in fast_server.detail(ticket["id"])["events"]]
    assert {"responded", "pending", "resolved"} <= set(kinds)


def test_quarantined_email_is_listed_and_released_with_the_cli(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    subject = f"Prize {uuid.uuid4().hex[:6]}"
    eml = tmp_path / "spam.eml"
    eml.write_bytes(
        (
            f"From: winner@lottery.example\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@lottery.example>\r\nX-SES-Spam-Verdict: FAIL\r\n"
            "Content-Type: text/plain\r\n\r\nYou won.\r\n"
        ).encode()
    )
    _intake("inject-email", str(eml), "--url", server.url, env=env)

    deadline = time.monotonic() + 20
    listed = ""
    while subject not in listed and time.monotonic() < deadline:
        listed = _intake("quarantine", "list", "--url", server.url, env=env)
        time.sleep(0.3)
    [line] = [row for row in listed.splitlines() if subject in row]
    quarantine_id = line.split()[0]
    assert "spam" in line and not [t for t in server.tickets() if t["subject"] == subject]

    released = _intake("quarantine", "release", quarantine_id, "--url", server.url, env=env)

    [ticket] = [t for t in server.tickets() if t["subject"] == subject]
    assert f"ticket {ticket['id']}" in released
    assert subject not in _intake("quarantine", "list", "--url", server.url, env=env)
