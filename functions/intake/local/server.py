"""`intake serve`: every route on one port, the queue consumers and the timer scheduler, on the local adapters.

Several processes, as Lambda runs its functions in environments of their own: this one and `HTTP_PROCESSES - 1`
others (`http_main`) serve HTTP on the same port (SO_REUSEPORT; the receiver, the API, SES receiving; waitress),
this one SMTP too; a worker process (`workers_main`) runs the queue consumers (ingest, notifier, sender), the timer
scheduler and the teams' digest schedules. They share nothing but the data folder (`intake.local.adapters`),
whose SQLite files and fsynced archive are safe for all. What was answered 2xx is already there, so a `kill -9`
of any of them at any moment loses nothing: a restart picks up the queues (messages in flight come back after
their visibility timeout) and the running timers where they were. The others exit when this process is gone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import multiprocessing
import os
import signal
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from intake.console import CONSOLE_PREFIX
from intake.local.gateway import CONSOLE, Handler, listening_socket, make_server
from intake.observability import logger
from intake.policy import load_policy
from intake.resources import SENDER_QUEUE

READY_WITHIN_S = 60
HTTP_PROCESSES = 2  # HTTP environments (each resolves one request at a time): I/O waits overlap across them
SWEEP_EVERY_S = 3600  # what expires (TTL items, old dead letters and executions) is deleted this often
ORPHAN_CHECK_S = 0.5


class HostUnprotectedError(Exception):
    """A non-loopback host without `--agent-token`: the agent routes would be open to the network."""


def _route(path: str) -> tuple[str, Handler]:
    if path.startswith("/_local/media"):
        from intake import runtime
        from intake.local import links

        # a provider fetching a reply's attachment: the signed link is its key
        return "media-links", lambda event, context: links.answer(event, runtime.local())
    if path.startswith("/_local/"):
        from intake.local import ses

        return "ses-receiving", ses.handler
    if path.startswith(("/webhooks/", "/csat/")):
        from intake.handlers import receiver

        return "receiver", receiver.handler
    from intake.handlers import api

    if path == "/" or path.startswith(CONSOLE_PREFIX):
        return CONSOLE, api.handler  # the api function's pages, behind the console's sign-in
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
    http_processes: int = HTTP_PROCESSES,
) -> int:
    """Run until SIGINT or SIGTERM (0), or until one of its processes died (1: a supervisor should restart it)."""
    if not is_loopback(host) and not agent_token:
        raise HostUnprotectedError(
            f"--host {host} would open the agent routes (tickets, contacts, digests) to the network; "
            "give --agent-token (or INTAKE_AGENT_TOKEN) so that they need it, or serve on 127.0.0.1"
        )
    load_policy(config)  # fail fast, with each error's path, before anything starts
    says = _keep_stdout_for_our_lines()
    data_dir = data_dir.resolve()
    _environment(data_dir, config)

    from intake import runtime

    runtime.reset()
    local = runtime.local()  # creates the data folder's files before the other processes open them
    assert local is not None  # INTAKE_DATA_DIR is set above
    sock = listening_socket(host, port)
    port = sock.getsockname()[1]
    url = f"http://{host}:{port}"
    os.environ.setdefault("INTAKE_PUBLIC_BASE_URL", url)
    runtime.settings.cache_clear()
    # Nothing is shared with the other processes but pipes and signals: a lock they could die holding (a killed
    # process inside a multiprocessing.Event) would hang this one.
    spawn = multiprocessing.get_context("spawn")
    up = threading.Event()  # /healthz answers 200 in this process (each other HTTP process has its own)
    worker_says, worker_end = spawn.Pipe(duplex=False)
    worker = spawn.Process(target=workers_main, args=(worker_end, os.getpid()), name="intake-workers")
    tell_others, ears, others = [], [], []
    for n in range(1, http_processes):
        hears, tell = spawn.Pipe(duplex=False)
        tell_others.append(tell)
        ears.append(hears)
        others.append(
            spawn.Process(target=http_main, args=(host, port, agent_token, hears, os.getpid()), name=f"intake-http-{n}")
        )
    processes = [worker, *others]
    smtp: list[Any] = []  # the SMTP controller, once started
    server = make_server(sock, _route, healthy=up.is_set, agent_token=agent_token)
    _build_before_threads()
    stop = threading.Event()

    def shutdown(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    for process in processes:
        process.start()
    worker_end.close()  # theirs now: a worker that dies before it is ready ends the wait below at once
    for hears in ears:
        hears.close()
    threading.Thread(target=server.run, name="gateway", daemon=True).start()
    if smtp_port is not None:
        from intake.local import smtp as smtp_server

        smtp.append(smtp_server.start(host, smtp_port))
    # The first line says it is serving once every worker has started; /healthz answers 200 from then on, in
    # every HTTP process. A process that died meanwhile is found by the loop below.
    with contextlib.suppress(EOFError, OSError):
        if worker_says.poll(READY_WITHIN_S) and worker_says.recv():
            up.set()
            for tell in tell_others:
                tell.send(True)
    queued, dead = local.inbound.depth() + local.notifications.depth(), local.dead_letters()
    print(f"intake serving {url} (data in {data_dir}; {queued} messages queued, {dead} dead letters)", file=says)
    if smtp:
        print(f"intake receiving email on smtp://{host}:{smtp_port}", file=says)
    ready(url)
    status = 0
    while not stop.wait(1):
        gone = [p for p in processes if not p.is_alive()]
        if gone:  # they should never exit: say so, and stop (a supervisor restarts us)
            print(f"intake: {gone[0].name} exited ({gone[0].exitcode}); stopping", file=says)
            status = 1
            break
    up.clear()
    server.close()
    for controller in smtp:
        controller.stop()
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: each finishes what it holds and exits
    for process in processes:
        process.join(timeout=20)
    print("intake stopped", file=says)
    return status


def _keep_stdout_for_our_lines() -> TextIO:
    """serve's stdout carries only its own lines (serving, stopped), which supervisors and scripts read; logs and
    metrics, of this process and of the ones it starts (they inherit the descriptors), go to stderr. Powertools
    prints a full metric set to stdout even with metrics disabled."""
    sys.stdout.flush()
    says = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return says


def http_main(host: str, port: int, agent_token: str | None, hears: Connection, parent: int) -> None:
    """Another HTTP process on the same port (SO_REUSEPORT): one more environment for the receiver and the API."""
    stop = _child_signals()
    up = threading.Event()

    def listen() -> None:  # the first process says when everything is up; end of pipe: it is gone
        try:
            while True:
                if hears.recv():
                    up.set()
                else:
                    up.clear()
        except (EOFError, OSError):
            up.clear()
            stop.set()

    server = make_server(listening_socket(host, port), _route, healthy=up.is_set, agent_token=agent_token)
    _build_before_threads()
    threading.Thread(target=listen, name="first-process", daemon=True).start()
    threading.Thread(target=server.run, name="gateway", daemon=True).start()
    while not stop.wait(ORPHAN_CHECK_S) and os.getppid() == parent:
        pass
    server.close()


def _build_before_threads() -> None:
    """What the HTTP handlers use, built once before the server's threads could race to build it."""
    from intake import runtime

    runtime.store(), runtime.inbox(), runtime.policy(), runtime.timers()


def _child_signals() -> threading.Event:
    """SIGTERM sets the returned event; Ctrl-C is the first process's to handle."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    warnings.filterwarnings("ignore", "No application metrics to publish")
    return stop


def workers_main(ready: Connection, parent: int) -> None:
    """The worker process: the ingest, notifier and sender consumers, the timer scheduler and the digest schedule, until
    SIGTERM or the parent is gone."""
    stop = _child_signals()
    # At the HTTP processes' priority: a lower one (nice 10, SCHED_IDLE) answered a burst up to 15 % faster, but
    # any other busy process on the machine then starved the worker (form-to-ticket p50 13 s and 20 s at 50 forms/s
    # beside two test runs, against 136 ms), and SLA notices with it.
    from intake import runtime
    from intake.handlers import digest, ingest, notifier, sender
    from intake.local.digests import DigestClock
    from intake.local.workers import Consumer

    local = runtime.local()
    assert local is not None
    (local.data_dir / "worker.pid").write_text(f"{os.getpid()}\n")  # which process this is, for operators
    DigestClock(local.data_dir / "timers.db", runtime.policy(), digest.handler, local.stop).start()
    consumers = [
        Consumer("ingest", local.inbound, ingest.handler, local.stop),
        Consumer("notifier", local.notifications, notifier.handler, local.stop),
        Consumer("sender", local.queues[SENDER_QUEUE.name], sender.handler, local.stop),
    ]
    for consumer in consumers:
        consumer.start()
    local.scheduler.start()
    while not all(c.polling.is_set() for c in consumers) or not local.scheduler.ticking.is_set():
        time.sleep(0.02)
    ready.send("ready")
    swept = -float(SWEEP_EVERY_S)  # at start, then every SWEEP_EVERY_S
    while not stop.wait(ORPHAN_CHECK_S) and os.getppid() == parent:
        if time.monotonic() - swept > SWEEP_EVERY_S:
            swept = time.monotonic()
            try:
                local.sweep(time.time())
            except (sqlite3.Error, OSError):  # busy, full, or a file moved meanwhile: the next sweep
                logger.exception("sweep failed")
    local.stop.set()
    local.scheduler.wake()
    for consumer in consumers:
        consumer.join(timeout=10)
    local.scheduler.join(timeout=10)
