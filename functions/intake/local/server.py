"""`intake serve`: every route on one port, the queue consumers and the timer scheduler, on the local adapters.

Everything lives in `<data-dir>` (`intake.local.adapters`): what was answered 2xx is already in SQLite or a
fsynced file, so a `kill -9` at any moment loses nothing; a restart picks up the queues (messages in flight come
back after their visibility timeout) and the running timers where they were.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from intake.config import load_policy
from intake.local.gateway import Handler, make_server
from intake.local.workers import Consumer

if TYPE_CHECKING:
    from intake.local.adapters import LocalAdapters

VISIBILITY_S = 5  # a failed message comes back after 5 s here (60-180 s in AWS, above the function timeout)
READY_WITHIN_S = 30
SWEEP_EVERY_S = 3600  # expired items (TTL) are deleted this often, as DynamoDB's TTL does lazily


class HostUnprotectedError(Exception):
    """A non-loopback host without `--agent-token`: the agent routes would be open to the network."""


def _route(path: str) -> tuple[str, Handler]:
    if path.startswith("/_local/"):
        from intake.local import ses

        return "ses-receiving", ses.handler
    if path.startswith(("/webhooks/", "/csat/")):
        from intake.handlers import receiver

        return "receiver", receiver.handler
    from intake.handlers import api

    return "api", api.handler


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str,
    port: int,
    data_dir: Path,
    config: Path,
    ready: Callable[[str], None] = lambda url: None,
    smtp_port: int | None = None,
    agent_token: str | None = None,
) -> None:
    """Run until SIGINT or SIGTERM."""
    if not is_loopback(host) and not agent_token:
        raise HostUnprotectedError(
            f"--host {host} would open the agent routes (tickets, contacts, digests) to the network; "
            "give --agent-token (or INTAKE_AGENT_TOKEN) so that they need it, or serve on 127.0.0.1"
        )
    load_policy(config)  # fail fast, with each error's path, before anything starts
    data_dir = data_dir.resolve()
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore", "No application metrics to publish")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["INTAKE_DATA_DIR"] = str(data_dir)
    os.environ["INTAKE_CONFIG"] = str(config.resolve())
    os.environ.setdefault("INTAKE_OUTBOX", str(data_dir / "outbox"))

    from intake import runtime

    runtime.reset()
    local = runtime.local()
    assert local is not None  # INTAKE_DATA_DIR is set above
    stop = local.stop
    consumers = _consumers(local)
    smtp: list[Any] = []  # the SMTP controller, once started
    server = make_server(
        host, port, _route, healthy=lambda: _healthy(consumers, local, smtp_port, smtp), agent_token=agent_token
    )
    url = f"http://{host}:{server.effective_port}"
    os.environ.setdefault("INTAKE_PUBLIC_BASE_URL", url)
    runtime.settings.cache_clear()
    runtime.store(), runtime.inbox(), runtime.policy(), runtime.timers()  # built before any thread uses them

    def shutdown(signum: int, frame: FrameType | None) -> None:
        stop.set()
        local.scheduler.wake()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    for consumer in consumers:
        consumer.start()
    local.scheduler.start()
    threading.Thread(target=server.run, name="gateway", daemon=True).start()
    if smtp_port is not None:
        from intake.local import smtp as smtp_server

        smtp.append(smtp_server.start(host, smtp_port))
    ready_by = time.monotonic() + READY_WITHIN_S
    while not _healthy(consumers, local, smtp_port, smtp) and time.monotonic() < ready_by:
        time.sleep(0.02)  # the first line says it is serving: every worker has started by then
    queued = local.inbound.depth() + local.notifications.depth()
    print(f"intake serving {url} (data in {data_dir}; {queued} messages queued)", flush=True)
    if smtp:
        print(f"intake receiving email on smtp://{host}:{smtp_port}", flush=True)
    ready(url)
    while not stop.wait(SWEEP_EVERY_S):
        local.table.sweep_expired(int(runtime.utc_now().timestamp()))
    server.close()
    for controller in smtp:
        controller.stop()
    for consumer in consumers:
        consumer.join(timeout=10)
    local.scheduler.join(timeout=10)
    print("intake stopped", flush=True)


def _consumers(local: LocalAdapters) -> list[Consumer]:
    from intake.handlers import ingest, notifier

    return [
        Consumer("ingest", local.inbound, ingest.handler, local.stop),
        Consumer("notifier", local.notifications, notifier.handler, local.stop),
    ]


def _healthy(consumers: list[Consumer], local: LocalAdapters, smtp_port: int | None, smtp: list[Any]) -> bool:
    """Ready: every consumer has polled once, the scheduler has run a round, the SMTP listener (if asked) is up."""
    workers = all(c.is_alive() and c.polling.is_set() for c in consumers)
    timers = local.scheduler.is_alive() and local.scheduler.ticking.is_set()
    return workers and timers and (smtp_port is None or bool(smtp))
