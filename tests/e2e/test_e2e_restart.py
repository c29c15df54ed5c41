"""A restart (SIGTERM) loses nothing: tickets, their attachments, and what was still queued; `kill -9` is in
test_e2e_faults."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from intake.local import samples
from intake.policy import load_policy
from intake.secrets import Secrets

from .client import CONFIG, SAMPLES, SECRETS, Server, contact_body, form_headers

BURST = 8  # posts sent right before SIGTERM: some are likely still queued when it arrives


@dataclass(frozen=True)
class Restart:
    before: dict[str, dict[str, Any]]  # ticket id → detail, read from the first process
    burst_receipts: list[str]
    files_after_stop: set[str]  # paths under the data dir once the first process exited
    second: Server


def _sample(name: str) -> dict[str, Any]:
    return samples.load(next(p for p in SAMPLES if p.name == name))


@pytest.fixture(scope="module")
def restart(launch: Callable[[Path], Server], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restart]:
    data_dir = tmp_path_factory.mktemp("restart-data")
    policy, secrets = load_policy(CONFIG), Secrets(environ=SECRETS)
    # Given a server that has made tickets, one with an attachment
    first = launch(data_dir)
    receipts = []
    for name in ("contact-json.json", "website-multipart.json"):
        prepared = samples.prepare(_sample(name), policy, secrets)
        answer = first.post(prepared.path, prepared.body, prepared.headers)
        assert answer.status == 202, answer.body
        receipts.append(answer.json()["receipt"])
    made = first.wait_for_receipts(receipts)
    before = {t["id"]: first.detail(t["id"]) for t in made.values()}
    # and has just accepted a burst of posts
    burst = []
    for n in range(BURST):
        body = contact_body(f"burst {n}", email=f"burst{n}@example.com")
        answer = first.post("/webhooks/forms/contact", body, form_headers(body))
        assert answer.status == 202, answer.body
        burst.append(answer.json()["receipt"])
    # When it is stopped with SIGTERM and started again on the same data folder
    first.stop()
    files = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()}
    second = launch(data_dir)
    yield Restart(before, burst, files, second)
    second.stop()


def test_tickets_made_before_a_restart_are_still_there(restart: Restart) -> None:
    listed = {t["id"] for t in restart.second.tickets()}
    assert set(restart.before) <= listed
    for ticket_id, detail in restart.before.items():
        assert restart.second.detail(ticket_id) == detail


def test_attachment_is_still_listed_after_a_restart(restart: Restart) -> None:
    [with_file] = [d for d in restart.before.values() if d["messages"][0]["attachments"]]
    [attachment] = restart.second.detail(with_file["id"])["messages"][0]["attachments"]
    assert attachment["filename"] == "invoice.png"


def test_attachment_and_raw_requests_are_saved_in_the_data_folder(restart: Restart) -> None:
    [with_file] = [d for d in restart.before.values() if d["messages"][0]["attachments"]]
    message = with_file["messages"][0]
    key = message["attachments"][0]["s3_key"]
    assert f"archive/{key}" in restart.files_after_stop
    content = (restart.second.data_dir / "archive" / key).read_bytes()
    spec = _sample("website-multipart.json")["multipart"]["files"][0]
    assert content == base64.b64decode(spec["base64"])
    raw = json.loads((restart.second.data_dir / "archive" / message["raw_archive_key"]).read_text())
    assert raw["receipt_id"] == message["receipt_id"]
    assert raw["path"] == "/webhooks/forms/website"
    for detail in restart.before.values():
        assert f"archive/{detail['messages'][0]['raw_archive_key']}" in restart.files_after_stop


def test_posts_accepted_just_before_sigterm_become_tickets_after_the_restart(restart: Restart) -> None:
    found = restart.second.wait_for_receipts(restart.burst_receipts)
    assert sorted(d["subject"] for d in found.values()) == sorted(f"burst {n}" for n in range(BURST))
    assert len({d["id"] for d in found.values()}) == BURST
