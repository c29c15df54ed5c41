"""What `intake serve` deletes as it goes (expired items, old dead letters, stray temporary files) and what a
crash may leave half written (the last line of the event file)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from intake.local.adapters import open_adapters
from intake.local.bus import FileBus
from intake.queues import Outgoing


def test_a_sweep_deletes_expired_items_old_dead_letters_and_stray_temporary_files(tmp_path: Path) -> None:
    local = open_adapters(tmp_path, "t", visibility_timeout_s=0)
    now = time.time()
    # Given an item whose TTL passed and one whose TTL has not
    for pk, expires in (("TOKEN#a", now - 10), ("TOKEN#b", now + 3600)):
        item = {"PK": {"S": pk}, "SK": {"S": "TOKEN"}, "expires_at": {"N": str(int(expires))}}
        local.table.put_item(TableName="t", Item=item)
    # and a dead letter (received past the limit), and a crashed write's temporary file, old and new
    local.notifications.send([Outgoing(body="{}")])
    for _ in range(6):
        local.notifications.receive(wait_s=0)
    assert local.dead_letters() == 1
    old, fresh = tmp_path / "archive" / "raw" / ".x.1-1.tmp", tmp_path / "archive" / "raw" / ".y.1-1.tmp"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"half"), fresh.write_bytes(b"half")
    os.utime(old, (now - 7200, now - 7200))

    # When it sweeps now: the expired item and the old temporary file go
    local.sweep(now)
    assert [i["PK"]["S"] for i in local.table.scan(TableName="t")["Items"]] == ["TOKEN#b"]
    assert (old.exists(), fresh.exists(), local.dead_letters()) == (False, True, 1)
    # And 15 days later: the dead letter too (an SQS dead-letter queue keeps a message 14 days)
    local.sweep(now + 15 * 86400)
    assert local.dead_letters() == 0


def test_a_line_cut_short_by_a_crash_does_not_hide_the_events_before_it(tmp_path: Path) -> None:
    bus = FileBus(tmp_path / "events.jsonl")
    bus.publish("DigestPublished", {"digest_id": "support#daily#2026-12-04"})
    with (tmp_path / "events.jsonl").open("a") as file:
        file.write('{"source": "intake", "detail-ty')  # kill -9 in the middle of a write
    bus.publish("SurveyRequested", {"ticket_id": "01M92VB10KAFPXCGZKB9EB3AFM"})
    assert [e["detail-type"] for e in bus.events()] == ["DigestPublished", "SurveyRequested"]


def test_a_sweep_while_archive_writes_finish_never_fails(tmp_path: Path) -> None:
    # The worker's sweep lists temporary files while the HTTP and SMTP processes write: a listed one is often
    # renamed into place before the sweep looks at it (it crashed the worker, and with it `intake serve`).
    from intake.local.archive import FileArchive

    archive = FileArchive(tmp_path / "archive")
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            archive.put(f"raw/2026/12/05/smtp/{n}.eml", b"x" * 4096, "message/rfc822")
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(300):
            assert archive.sweep_temporary(time.time() - 3600) == 0  # as serve sweeps: only stale ones
    finally:
        stop.set()
        writer.join()
