"""`intake serve` under faults: `kill -9` in the middle of a burst, concurrent clients, SLA clocks across a crash.

Every request answered 2xx must end as exactly one message on one ticket, whatever moment the process died at.
"""

from __future__ import annotations

import base64
import json
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from email import policy as email_policy
from http.client import HTTPException
from pathlib import Path
from typing import Any

import pytest

from intake.local import samples
from intake.policy import load_policy
from intake.secrets import Secrets

from .client import CONFIG, REPO, SECRETS, Server, contact_body, form_headers, http, wait_until
from .test_e2e_sla import FAST_SLA

WHATSAPP = samples.load(REPO / "events" / "whatsapp" / "01-text.json")


def _messages(server: Server) -> list[dict[str, Any]]:
    """Every message of every ticket (with its ticket id)."""
    return [
        {**message, "ticket": ticket["id"]}
        for ticket in server.tickets()
        for message in server.detail(ticket["id"])["messages"]
    ]


class Burst:
    """Clients posting forms, emails and WhatsApp messages as fast as they are answered; what got a 2xx is kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acknowledged: list[tuple[str, str]] = []  # (kind, receipt or provider message id)
        self._stop = threading.Event()
        self._policy, self._secrets = load_policy(CONFIG), Secrets(environ=SECRETS)

    def _form(self, n: str) -> tuple[str, bytes, dict[str, str], str | None]:
        body = contact_body(f"crash form {n}", email=f"form-{n}@example.com")
        return "/webhooks/forms/contact", body, form_headers(body), None

    def _email(self, n: str) -> tuple[str, bytes, dict[str, str], str | None]:
        raw = (
            f"From: Mail {n} <mail-{n}@example.org>\r\nTo: support@example.com\r\nSubject: crash mail {n}\r\n"
            f"Message-ID: <{n}@example.org>\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n\r\nHello {n}\r\n"
        ).encode()
        return "/_local/email?to=support@example.com", raw, {"content-type": "message/rfc822"}, None

    def _whatsapp(self, n: str) -> tuple[str, bytes, dict[str, str], str | None]:
        sample = json.loads(json.dumps(WHATSAPP))
        value = sample["json"]["entry"][0]["changes"][0]["value"]
        phone = "336" + str(int(n, 16) % 10**8).zfill(8)
        wamid = f"wamid.crash-{n}"
        value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = phone
        value["messages"][0]["id"] = wamid
        value["messages"][0]["timestamp"] = str(int(time.time()))
        prepared = samples.prepare(sample, self._policy, self._secrets)
        return prepared.path, prepared.body, prepared.headers, wamid

    def run(self, kind: str) -> None:
        make = {"form": self._form, "email": self._email, "whatsapp": self._whatsapp}[kind]
        while not self._stop.is_set():
            path, body, headers, provider_id = make(uuid.uuid4().hex[:12])
            try:
                answer = http("POST", self.url + path, body, headers, timeout=5)
            except (OSError, HTTPException):  # IncompleteRead: killed between the head and the body
                continue  # the server died under this request: not acknowledged, nothing is owed
            if 200 <= answer.status < 300:
                self.acknowledged.append((kind, provider_id or answer.json()["receipt"]))

    def stop(self) -> None:
        self._stop.set()


def test_kill_9_during_a_burst_loses_and_doubles_nothing_that_was_answered_2xx(
    launch: Callable[..., Server], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    # Given a server taking a burst of forms, emails and WhatsApp messages from three clients
    first = launch(data_dir, http_processes=2)
    burst = Burst(first.url)
    clients = [threading.Thread(target=burst.run, args=(kind,)) for kind in ("form", "email", "whatsapp") * 2]
    for client in clients:
        client.start()
    # When it is killed with SIGKILL at a random moment, and started again on the same folder
    time.sleep(random.uniform(1.5, 3.0))
    first.kill()
    burst.stop()
    for client in clients:
        client.join()
    second = launch(data_dir, http_processes=2)
    acknowledged = burst.acknowledged
    assert len({kind for kind, _ in acknowledged}) == 3, acknowledged

    # Then every acknowledged request is exactly one message, on exactly one ticket
    def all_there() -> list[dict[str, Any]] | None:
        messages = _messages(second)
        seen = {m["receipt_id"] for m in messages} | {m["provider_message_id"] for m in messages}
        return messages if all(ident in seen for _, ident in acknowledged) else None

    messages = wait_until(all_there, 60, f"{len(acknowledged)} acknowledged requests as messages")
    counts = Counter(m["receipt_id"] for m in messages) + Counter(
        m["provider_message_id"] for m in messages if m["provider"] == "whatsapp"
    )
    doubled = {ident: counts[ident] for _, ident in acknowledged if counts[ident] != 1}
    assert doubled == {}
    second.stop()


def test_64_concurrent_distinct_posts_each_archive_their_own_body_and_make_their_own_ticket(server: Server) -> None:
    marker = uuid.uuid4().hex[:8]
    bodies = [contact_body(f"concurrent {marker} {n}", email=f"c{n}-{marker}@example.com") for n in range(64)]

    # When 64 clients post at once
    def post(body: bytes) -> tuple[bytes, Any]:
        return body, http("POST", server.url + "/webhooks/forms/contact", body, form_headers(body), timeout=30)

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(post, bodies))

    # Then each was answered 202, archived with its own body, and made its own ticket with its own subject
    assert [a.status for _, a in answers] == [202] * 64
    receipts = {a.json()["receipt"]: body for body, a in answers}
    found = server.wait_for_receipts(list(receipts), timeout=60)
    assert len({ticket["id"] for ticket in found.values()}) == 64
    for receipt, body in receipts.items():
        assert found[receipt]["subject"] == json.loads(body)["subject"]
        [message] = [m for m in found[receipt]["messages"] if m["receipt_id"] == receipt]
        envelope = json.loads((server.data_dir / "archive" / message["raw_archive_key"]).read_bytes())
        assert base64.b64decode(envelope["body_base64"]) == body


def test_40_concurrent_agent_actions_on_one_ticket_are_each_recorded(server: Server) -> None:
    body = contact_body(f"busy ticket {uuid.uuid4().hex[:8]}")
    receipt = server.post("/webhooks/forms/contact", body, form_headers(body)).json()["receipt"]
    ticket = server.wait_for_receipts([receipt])[receipt]

    # When 40 agents assign it at once, each to themselves
    def assign(n: int) -> Any:
        action = json.dumps({"type": "assigned", "by": f"agent{n}@example.com", "assignee": f"agent{n}"}).encode()
        headers = {"content-type": "application/json"}
        return http("POST", f"{server.url}/tickets/{ticket['id']}/events", action, headers, timeout=30)

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(assign, range(40)))

    # Then none failed, each is in the ticket's history, and the ticket has one of those assignees
    assert sorted({a.status for a in answers}) == [200], [a.body for a in answers if a.status != 200][:3]
    detail = server.detail(ticket["id"])
    assigned = [e for e in detail["events"] if e["kind"] == "assigned"]
    assert sorted(e["detail"]["assignee"] for e in assigned) == sorted(f"agent{n}" for n in range(40))
    assert detail["assignee"] in {f"agent{n}" for n in range(40)}


def _notices(data_dir: Path) -> list[str]:
    found = []
    for path in sorted((data_dir / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=email_policy.default)
        if message["X-Intake-Notice"]:
            found.append(str(message["X-Intake-Notice"]).split(";")[0])
    return found


def test_sla_clocks_survive_kill_9_and_each_notice_fires_once(launch: Callable[..., Server], tmp_path: Path) -> None:
    policy = re.sub(r"(?ms)^sla:\n.*?(?=^# A new ticket's priority)", FAST_SLA, CONFIG.read_text())
    (tmp_path / "intake.yaml").write_text(policy)
    data_dir = tmp_path / "data"
    # Given a ticket whose first response is due in 3 s (a warning at 50 %, an escalation at the breach)
    first = launch(data_dir, config=tmp_path / "intake.yaml", http_processes=2)
    body = contact_body(f"crash sla {uuid.uuid4().hex[:8]}")
    receipt = first.post("/webhooks/forms/contact", body, form_headers(body)).json()["receipt"]
    ticket = first.wait_for_receipts([receipt])[receipt]
    # When the server is killed before any of them, and comes back after all their instants
    first.kill()
    time.sleep(4)
    second = launch(data_dir, config=tmp_path / "intake.yaml", http_processes=2)

    # Then the breach and the escalation each fire once, and the clock says breached; the warning fires at most once
    # (when the second server runs all three steps at once, the notifier may read the timer already breached and skip
    # the warning as stale: a warning after the breach is noise)
    # (60 s: the second server's timers catch up after its start, which a busy machine slows)
    wait_until(lambda: {"breach", "escalation"} <= set(_notices(data_dir)), 60, "the breach and the escalation")
    time.sleep(1)  # anything sent twice would be here by now
    notices = sorted(_notices(data_dir))
    assert notices in (["breach", "escalation"], ["breach", "escalation", "warning"]), notices
    clocks = second.get(f"/tickets/{ticket['id']}/sla").json()
    assert any(c["state"] == "breached" for c in clocks["timers"]), clocks
    second.stop()


def _exchange(server: Server, head: bytes, body: bytes = b"") -> bytes:
    """Send raw bytes, as much of `body` as the server takes, then read its answer."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=20) as connection:
        connection.sendall(head)
        try:
            for start in range(0, len(body), 1 << 16):
                connection.sendall(body[start : start + (1 << 16)])
        except OSError:
            pass  # the server answered and closed before taking it all: what is being tested
        answer = b""
        try:
            while chunk := connection.recv(65536):  # it closes the connection after an error
                answer += chunk
        except ConnectionResetError:
            pass  # closed with our unread bytes still in its buffer: what it answered before is what counts
        return answer


@pytest.mark.parametrize(
    "head",
    [
        b"POST /webhooks/forms/contact HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /webhooks/forms/contact HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["bad-content-length", "bad-chunk-size"],
)
def test_framing_errors_are_answered_400_not_dropped(server: Server, head: bytes) -> None:
    answer = _exchange(server, head)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"application/problem+json" in answer and b"urn:intake:problem:request-malformed" in answer


def test_a_300_mb_chunk_is_refused_413_once_the_limit_is_read_not_after_buffering_it(server: Server) -> None:
    head = b"POST /webhooks/forms/contact HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    head += b"%x\r\n" % (300 * 1024 * 1024)
    answer = _exchange(server, head, b"x" * (48 * 1024 * 1024))  # over the 40 MiB read limit, then the answer
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"urn:intake:problem:payload-too-large" in answer


def test_healthz_answers_only_when_every_listener_and_worker_is_up(server: Server) -> None:
    answer = server.get("/healthz")
    assert (answer.status, answer.json()) == (200, {"status": "ok"})


def test_serving_beyond_loopback_without_an_agent_token_is_refused(tmp_path: Path) -> None:
    from .client import environment, run

    command = [sys.executable, "-m", "intake.cli", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]
    done = run(command, environment(), timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--agent-token" in done.stderr and "0.0.0.0" in done.stderr


@pytest.mark.parametrize("count", ["0", "two"])
def test_serving_with_fewer_than_one_http_process_is_refused_naming_the_option(tmp_path: Path, count: str) -> None:
    from .client import environment, run

    command = [sys.executable, "-m", "intake.cli", "serve", "--http-processes", count, "--data-dir", str(tmp_path)]
    done = run(command, environment(), timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--http-processes: '{count}' is not a whole number of processes, 1 or more" in done.stderr
    assert not any(tmp_path.iterdir())  # nothing was started or written


def test_with_an_agent_token_the_agent_routes_need_it_and_the_webhooks_do_not(
    tmp_path: Path, env: dict[str, str]
) -> None:
    from .client import START_TIMEOUT_S, run

    command = [sys.executable, "-m", "intake.cli", "serve", "--port", "0", "--data-dir", str(tmp_path)]
    command += ["--agent-token", "s3cret"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
        assert url is not None
        # When agents and a provider call it
        without = http("GET", url[0] + "/tickets")
        wrong = http("GET", url[0] + "/tickets", headers={"authorization": "Bearer nope"})
        right = http("GET", url[0] + "/tickets", headers={"authorization": "Bearer s3cret"})
        body = contact_body("token")
        webhook = http("POST", url[0] + "/webhooks/forms/contact", body, form_headers(body))
        # Then the agent routes answer 401 problem+json without the token, and the webhook needs none
        assert (without.status, wrong.status, right.status, webhook.status) == (401, 401, 200, 202)
        assert without.json()["type"] == "urn:intake:problem:agent-token-required"
        # And the CLI sends INTAKE_AGENT_TOKEN
        listed = run(
            [sys.executable, "-m", "intake.cli", "tickets", "list", "--url", url[0]],
            {**env, "INTAKE_AGENT_TOKEN": "s3cret"},
            timeout=START_TIMEOUT_S,
        )
        assert listed.returncode == 0, listed.stderr
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_kill_9_of_the_worker_stops_serve_with_status_1_and_a_restart_ingests_what_it_held(
    launch: Callable[..., Server], tmp_path: Path
) -> None:
    import os
    import signal

    data_dir = tmp_path / "data"
    first = launch(data_dir, http_processes=2)
    worker = int((data_dir / "worker.pid").read_text())
    # Given posts accepted while the worker is stopped (queued, not yet tickets)
    os.kill(worker, signal.SIGSTOP)
    receipts = []
    for n in range(5):
        body = contact_body(f"held {n} {uuid.uuid4().hex[:6]}")
        answer = first.post("/webhooks/forms/contact", body, form_headers(body))
        assert answer.status == 202, answer.body
        receipts.append(answer.json()["receipt"])
    # When the worker is killed
    os.kill(worker, signal.SIGKILL)
    # Then serve stops on its own, saying why, with status 1 (for a supervisor to restart it)
    assert first.process.wait(timeout=30) == 1
    assert any("intake-workers exited" in line for line in first.lines), first.lines
    # And after a restart every accepted post is a ticket
    second = launch(data_dir, http_processes=2)
    second.wait_for_receipts(receipts, timeout=30)
    second.stop()
