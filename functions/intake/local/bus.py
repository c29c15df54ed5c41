"""The event bus on one machine: each event a JSON line appended to `events.jsonl`, fsynced before `publish`
returns (what EventBridge would deliver: source, detail-type, time, detail); safe from several processes."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intake.bus import EVENT_SOURCE


class FileBus:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        line = json.dumps(
            {
                "source": EVENT_SOURCE,
                "detail-type": detail_type,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "detail": detail,
            },
            sort_keys=True,
        )
        data = (line + "\n").encode()
        with self._lock:
            descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)  # every process of `intake serve` publishes: whole lines
                size = os.fstat(descriptor).st_size
                if size and os.pread(descriptor, 1, size - 1) != b"\n":
                    data = b"\n" + data  # after a line a crash cut short: start a line of our own
                written = 0
                while written < len(data):
                    written += os.write(descriptor, data[written:])
                os.fsync(descriptor)
            finally:
                os.close(descriptor)

    def events(self) -> list[dict[str, Any]]:
        """Every event published so far, oldest first."""
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:  # the end of a line a crash cut short
                continue
        return found
