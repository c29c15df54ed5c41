"""End to end: `intake serve` as a real process on a free port, spoken to over real HTTP.

One server for the whole session (`server`): every test makes its own, uniquely marked requests
and finds what they made by receipt or subject. Scenarios that need their own process (a restart,
the demo) start one with `launch`. Every server must exit within 30 s of SIGTERM, having saved its data.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .client import Server, environment


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


SMTP_PORT = _free_port()  # the session server also takes mail over SMTP, as SES would


@pytest.fixture(scope="session")
def bytecode_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture(scope="session")
def env(bytecode_cache: Path) -> dict[str, str]:
    """The environment of every child process: TZ=UTC, the form secrets, Powertools at WARNING."""
    return environment(bytecode_cache)


@pytest.fixture(scope="session")
def launch(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[Callable[[Path], Server]]:
    """`launch(data_dir)` starts `intake serve` on it (`settings`: more INTAKE_* variables), with one HTTP process
    unless `http_processes` says more (each costs ~1 CPU-s to start: the tests of concurrency and crashes ask for the
    default two, the others need one); whatever a failed test left running is killed."""
    started: list[Server] = []
    logs = tmp_path_factory.mktemp("serve-logs")

    def start(
        data_dir: Path,
        smtp_port: int | None = None,
        config: Path | None = None,
        settings: dict[str, str] | None = None,
        http_processes: int = 1,
    ) -> Server:
        server = Server.start(
            data_dir,
            logs,
            {**env, **(settings or {})},
            smtp_port=smtp_port,
            http_processes=http_processes,
            **({"config": config} if config else {}),
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def server(launch: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = launch(tmp_path_factory.mktemp("data"), smtp_port=SMTP_PORT, http_processes=2)  # concurrent clients
    yield running
    running.stop()
