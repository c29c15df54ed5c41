"""`intake serve`: every route on one port, the queue consumers and the timer scheduler, on the local adapters.

Two processes, as Lambda runs its functions in environments of their own: this one serves HTTP (the receiver,
the API, SES receiving; waitress) and SMTP; a worker process (`workers_main`) runs the queue consumers (ingest,
notifier), the timer scheduler and the teams' digest schedules. They share nothing but the data folder
(`intake.local.adapters`), whose SQLite files and fsynced archive are safe for both. What was answered 2xx is
already there, so a `kill -9` of either at any moment loses nothing: a restart picks up the queues (messages in
flight come back after their visibility timeout) and the running timers where they were. The worker exits when
this process is gone.
"""

from __future__ import annotations

import ipaddress
import multiprocessing
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType
from typing import Any

from intake.config import load_policy
from intake.local.gateway import Handler, make_server

READY_WITHIN_S = 60
SWEEP_EVERY_S = 3600  # expired items (TTL) are deleted this often, as DynamoDB's TTL does lazily
ORPHAN_CHECK_S = 0.5  # how soon the worker notices that `intake serve` is gone


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


def _environment(data_dir: Path, config: Path) -> None:
    """The settings both processes read (the worker inherits them)."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["INTAKE_DATA_DIR"] = str(data_dir)
    os.environ["INTAKE_CONFIG"] = str(config.resolve())
    os.environ.setdefault("INTAKE_OUTBOX", str(data_dir / "outbox"))
    warnings.filterwarnings("ignore", "No application metrics to publish")


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
    _environment(data_dir, config)

    from intake import runtime

    runtime.reset()
    local = runtime.local()  # creates the data folder's files before the worker opens them
    assert local is not None  # INTAKE_DATA_DIR is set above
    smtp: list[Any] = []  # the SMTP controller, once started
    spawn = multiprocessing.get_context("spawn")
    worker_ready, worker_stop = spawn.Event(), spawn.Event()
    server = make_server(
        host,
        port,
        _route,
        healthy=lambda: worker.is_alive() and worker_ready.is_set() and (smtp_port is None or bool(smtp)),
        agent_token=agent_token,
    )
    url = f"http://{host}:{server.effective_port}"
    os.environ.setdefault("INTAKE_PUBLIC_BASE_URL", url)
    runtime.settings.cache_clear()
    runtime.store(), runtime.inbox(), runtime.policy(), runtime.timers()  # built before any thread uses them
    stop = threading.Event()

    def shutdown(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    worker = spawn.Process(target=workers_main, args=(worker_ready, worker_stop, os.getpid()), name="intake-workers")
    worker.start()
    threading.Thread(target=server.run, name="gateway", daemon=True).start()
    if smtp_port is not None:
        from intake.local import smtp as smtp_server

        smtp.append(smtp_server.start(host, smtp_port))
    worker_ready.wait(READY_WITHIN_S)  # the first line says it is serving: every worker has started by then
    queued = local.inbound.depth() + local.notifications.depth()
    print(f"intake serving {url} (data in {data_dir}; {queued} messages queued)", flush=True)
    if smtp:
        print(f"intake receiving email on smtp://{host}:{smtp_port}", flush=True)
    ready(url)
    while not stop.wait(1):
        if not worker.is_alive():  # it should never die: say so, and stop (a supervisor restarts us)
            print(f"intake: the worker process exited ({worker.exitcode}); stopping", flush=True)
            break
    server.close()
    for controller in smtp:
        controller.stop()
    worker_stop.set()
    worker.join(timeout=20)
    print("intake stopped", flush=True)


def workers_main(ready: Event, stop: Event, parent: int) -> None:
    """The worker process: the ingest and notifier consumers, the timer scheduler and the digest schedule, until
    `stop` is set or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    warnings.filterwarnings("ignore", "No application metrics to publish")
    from intake import runtime
    from intake.handlers import digest, ingest, notifier
    from intake.local.digests import DigestClock
    from intake.local.workers import Consumer

    local = runtime.local()
    assert local is not None
    DigestClock(local.data_dir / "timers.db", runtime.policy(), digest.handler, local.stop).start()
    consumers = [
        Consumer("ingest", local.inbound, ingest.handler, local.stop),
        Consumer("notifier", local.notifications, notifier.handler, local.stop),
    ]
    for consumer in consumers:
        consumer.start()
    local.scheduler.start()
    while not all(c.polling.is_set() for c in consumers) or not local.scheduler.ticking.is_set():
        time.sleep(0.02)
    ready.set()
    swept = time.monotonic()
    while not stop.wait(ORPHAN_CHECK_S) and os.getppid() == parent:
        if time.monotonic() - swept > SWEEP_EVERY_S:
            local.table.sweep_expired(int(time.time()))
            swept = time.monotonic()
    local.stop.set()
    local.scheduler.wake()
    for consumer in consumers:
        consumer.join(timeout=10)
    local.scheduler.join(timeout=10)
