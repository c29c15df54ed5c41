"""The event bus port: Intake's events (`DigestPublished`, `SurveyRequested`) for whoever listens.

`EventBridgeBus` is the AWS adapter (Intake's EventBridge bus, source `intake`); `intake.local.bus.FileBus`
appends the same events to a file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

EVENT_SOURCE = "intake"


class EventBusUnavailableError(Exception):
    """The bus did not take the event (throttled, too large): the work that published it is retried."""


class EventBus(Protocol):
    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...


class EventBridgeBus:
    def __init__(self, events: Any, bus_name: str) -> None:
        self._events = events
        self.bus_name = bus_name

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        answer = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self.bus_name,
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, sort_keys=True),
                }
            ]
        )
        if answer.get("FailedEntryCount", 0):
            code = answer["Entries"][0].get("ErrorCode", "Unknown")
            raise EventBusUnavailableError(f"PutEvents: {code}")
