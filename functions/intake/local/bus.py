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
        with self._lock, self.path.open("a", encoding="utf-8") as file:
            fcntl.flock(file, fcntl.LOCK_EX)  # both processes of `intake serve` publish: whole lines only
            file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())

    def events(self) -> list[dict[str, Any]]:
        """Every event published so far, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]
