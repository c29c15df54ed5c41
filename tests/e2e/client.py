"""What the end-to-end tests drive: `intake serve` as a child process, spoken to over real HTTP.

Nothing here imports the code under test except `intake.local.samples` (to build the sample
requests, as `intake demo` does); signatures for hand-made requests are computed independently.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "intake.yaml"
SAMPLES = sorted((REPO / "events" / "forms").glob("*.json"))
CONTACT_SECRET = "e2e-contact-secret"
SECRETS = {
    "INTAKE_FORM_CONTACT_SECRET": CONTACT_SECRET,
    "INTAKE_FORM_FEEDBACK_SECRET": "e2e-typeform-secret",
    "INTAKE_WHATSAPP_APP_SECRET": "e2e-whatsapp-secret",
    "INTAKE_CSAT_SECRET": "e2e-csat-secret",
}
FIRST_LINE = re.compile(r"^intake serving (?P<url>http://127\.0\.0\.1:\d+) \(data in (?P<dir>.+); (?P<restored>.*)\)$")
STOPPED_LINE = "intake stopped"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
TICKET_TIMEOUT_S = 15.0


def environment(bytecode_cache: Path | None = None, *, secrets: bool = True) -> dict[str, str]:
    """This process's environment without any Intake, AWS or Powertools setting, plus the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "AWS_", "POWERTOOLS_"))}
    env.update(TZ="UTC", POWERTOOLS_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    if secrets:
        env.update(SECRETS)
    if bytecode_cache is not None:  # children share compiled bytecode: later starts are faster
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("PYTHONPYCACHEPREFIX", str(bytecode_cache))  # the run's own (the Makefile's), if it has one
    return env


def post_contact_with_files(
    server: Server, fields: dict[str, str], files: list[tuple[str, str, str, bytes]]
) -> dict[str, Any]:
    """A signed multipart post to the `contact` form with `files` (field name, file name, media type, content);
    the ticket it made, once listed."""
    boundary = "e2e-" + uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    for name, filename, media_type, content in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        parts.append(f"{head}Content-Type: {media_type}\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    media_type = f"multipart/form-data; boundary={boundary}"
    answer = server.post("/webhooks/forms/contact", body, form_headers(body, media_type=media_type))
    assert answer.status == 202, answer.body
    receipt = answer.json()["receipt"]
    return server.wait_for_receipts([receipt])[receipt]


def form_headers(
    body: bytes,
    *,
    secret: str = CONTACT_SECRET,
    timestamp: int | None = None,
    media_type: str = "application/json",
) -> dict[str, str]:
    """`X-Intake-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`, computed here."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"content-type": media_type, "x-intake-timestamp": stamp, "x-intake-signature": f"sha256={mac}"}


def contact_body(subject: str, **fields: str) -> bytes:
    values = {
        "name": "Erin Test",
        "email": "erin@example.com",
        "subject": subject,
        "message": f"About: {subject}",
    }
    return json.dumps({**values, **fields}).encode()


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip()


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> Response:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


@dataclass
class Server:
    """One `intake serve` process: its URL, its data folder, and what it printed."""

    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    first_line: str
    stderr_path: Path
    lines: list[str] = field(default_factory=list)  # stdout after the first line
    _details: dict[str, dict[str, Any]] = field(default_factory=dict)

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def start(
        cls,
        data_dir: Path,
        log_dir: Path,
        env: dict[str, str],
        smtp_port: int | None = None,
        config: Path = CONFIG,
        http_processes: int = 1,
    ) -> Server:
        log_dir.mkdir(parents=True, exist_ok=True)
        stderr_path = log_dir / f"serve-{time.monotonic_ns()}.stderr"
        command = [
            sys.executable,
            "-m",
            "intake.cli",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--config",
            str(config),
            "--http-processes",
            str(http_processes),
            *(["--smtp-port", str(smtp_port)] if smtp_port else []),
        ]
        with stderr_path.open("w") as stderr:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        lines: list[str] = []
        first = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                first.set()
            first.set()

        threading.Thread(target=read, name="serve-stdout", daemon=True).start()
        if not first.wait(START_TIMEOUT_S) or not lines:
            process.kill()
            process.wait()
            raise AssertionError(f"intake serve printed nothing within {START_TIMEOUT_S} s:\n{stderr_path.read_text()}")
        match = FIRST_LINE.match(lines[0])
        if match is None:
            process.kill()
            process.wait()
            raise AssertionError(f"unexpected first line {lines[0]!r}:\n{stderr_path.read_text()}")
        server = cls(process, match["url"], data_dir, lines.pop(0), stderr_path, lines)
        server._wait_healthy()
        return server

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if http("GET", self.url + "/healthz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.kill()
                raise AssertionError(f"{self.url}/healthz never answered 200:\n{self.stderr()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, then it must save and exit 0 within STOP_TIMEOUT_S."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"intake serve did not exit within {STOP_TIMEOUT_S} s of SIGTERM:\n{self.stderr()}"
            ) from None
        deadline = time.monotonic() + 5  # the reader thread drains what is left in the pipe
        while STOPPED_LINE not in self.lines and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.process.returncode == 0, f"intake serve exited {self.process.returncode}:\n{self.stderr()}"
        assert STOPPED_LINE in self.lines, f"no {STOPPED_LINE!r} in {self.lines}:\n{self.stderr()}"
        # stdout is serve's own lines only (logs and metrics go to stderr): scripts and supervisors read it
        assert all(line.startswith("intake ") for line in self.lines), self.lines

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stderr(self) -> str:
        return self.stderr_path.read_text()[-4000:]

    # ------------------------------------------------------------------ HTTP

    def get(self, path: str) -> Response:
        return http("GET", self.url + path)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        return http("POST", self.url + path, body, headers)

    def tickets(self, **filters: str) -> list[dict[str, Any]]:
        """Every ticket, newest first, following the cursor."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**filters, "limit": "100", **({"cursor": cursor} if cursor else {})}
            answer = self.get("/tickets?" + urlencode(query))
            assert answer.status == 200, answer.body
            page = answer.json()
            items += page["items"]
            cursor = page["next"]
            if cursor is None:
                return items

    def detail(self, ticket_id: str) -> dict[str, Any]:
        answer = self.get(f"/tickets/{ticket_id}")
        assert answer.status == 200, answer.body
        detail: dict[str, Any] = answer.json()
        return detail

    def by_receipt(self) -> dict[str, dict[str, Any]]:
        """receipt id → the ticket (with contact, messages, events) one of whose messages it is."""
        found: dict[str, dict[str, Any]] = {}
        for ticket in self.tickets():
            known = self._details.get(ticket["id"])
            if known is None or known["message_count"] != ticket["message_count"]:
                known = self._details[ticket["id"]] = self.detail(ticket["id"])
            for message in known["messages"]:
                found[message["receipt_id"]] = known
        return found

    def wait_for_receipts(self, receipts: list[str], timeout: float = TICKET_TIMEOUT_S) -> dict[str, dict[str, Any]]:
        """Poll until every receipt is a message of some ticket; fails after `timeout` seconds."""
        found = wait_until(lambda: _covering(self.by_receipt(), receipts), timeout, f"tickets for receipts {receipts}")
        return {receipt: found[receipt] for receipt in receipts}


def _covering(found: dict[str, dict[str, Any]], receipts: list[str]) -> dict[str, dict[str, Any]] | None:
    return found if all(r in found for r in receipts) else None


def wait_until(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.1)


def run(command: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
