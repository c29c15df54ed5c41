"""A digest asked for now (`POST /digests/{team}/{period}`): the api answers at once, the digest function publishes.

Publishing reads the window's tickets, renders, archives, announces and mails: more than an API answer may take
(the api function has 10 s; the digest function 2 minutes, Lambda's retries and a dead-letter queue). So the api
settles which window is meant (the one containing the date asked for, else the last complete one, by the team's
clock now: a request that waits past midnight still publishes the window it named) and hands it to the digest
function as the event its schedules send, with the date made explicit; it answers 202 with where the digest will
be. Locally (`intake serve`), where there is no digest function, the digest is published in the request itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from intake.config import Policy
from intake.digest.publish import EVENT_TYPE, Published, team_of, window_keys
from intake.digest.window import window
from intake.observability import logger


@dataclass(frozen=True)
class Requested:
    """A team's digest of one window, asked for: what the digest function is given and where the digest will be."""

    team: str
    period: str
    start: date
    end: date

    @property
    def event(self) -> dict[str, str]:
        """The digest function's event (`intake.handlers.digest.DigestRequest`), the window named by its date."""
        return {"team": self.team, "period": self.period, "date": self.start.isoformat()}

    @property
    def preview_path(self) -> str:
        return f"/digests/{self.team}/{self.period}?date={self.start.isoformat()}"

    def answer(self) -> dict[str, Any]:
        """The 202's body: the window, its archive keys (written when it is published, also when it is not mailed),
        and the event that announces it."""
        return {
            "accepted": True,
            "team": self.team,
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "digest_id": f"{self.team}#{self.period}#{self.start.isoformat()}",
            "archive": list(window_keys(self.team, self.period, self.start).values()),
            "announced_as": EVENT_TYPE,
            "preview": self.preview_path,
        }


def requested(policy: Policy, team_id: str, period: str, at: date | None, now: datetime) -> Requested:
    """The window a request means: the one containing local date `at`, else the last complete one before `now`."""
    span = window(team_of(policy, team_id), period, at, now)
    return Requested(team_id, span.period, span.start, span.end)


class DigestRequests(Protocol):
    def request(self, requested: Requested) -> None: ...


class LambdaDigestRequests:
    """AWS: the digest function, invoked asynchronously (`InvocationType=Event`): Lambda queues the event and answers
    at once; the function's retries and dead-letter queue are the scheduled digests' own."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function = function_name

    def request(self, requested: Requested) -> None:
        payload = json.dumps(requested.event, sort_keys=True).encode()
        self._client.invoke(FunctionName=self._function, InvocationType="Event", Payload=payload)


class PublishHere:
    """Where there is no digest function (`intake serve`): publish in this process, before the answer."""

    def __init__(self, publish: Callable[[Requested], Published]) -> None:
        self._publish = publish

    def request(self, requested: Requested) -> None:
        result = self._publish(requested)
        logger.info("digest published here", extra={"team": requested.team, "reason": result.reason})
