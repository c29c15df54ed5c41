"""`intake serve`: every route on one port, the queue consumers, and the data kept in a folder."""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from intake.config import load_policy
from intake.local import aws
from intake.local.gateway import Handler, make_server

SAVE_EVERY_S = 5.0
VISIBILITY_S = 5  # a failed message comes back after 5 s here (60 s in AWS, above the function timeout)


def _route(path: str) -> tuple[str, Handler]:
    if path.startswith("/_local/"):
        from intake.local import ses

        return "ses-receiving", ses.handler
    if path.startswith(("/webhooks/", "/csat/")):
        from intake.handlers import receiver

        return "receiver", receiver.handler
    from intake.handlers import api

    return "api", api.handler


def serve(
    host: str,
    port: int,
    data_dir: Path,
    config: Path,
    ready: Callable[[str], None] = lambda url: None,
    smtp_port: int | None = None,
) -> None:
    """Run until SIGINT or SIGTERM; everything is saved to `data_dir` before returning."""
    load_policy(config)  # fail fast, with each error's path, before anything starts
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "outbox").mkdir(exist_ok=True)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore", "No application metrics to publish")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with aws.emulated():
        resources = aws.create_resources(visibility_timeout_s=VISIBILITY_S)
        restored = aws.load(data_dir, resources)
        os.environ.update(resources.environment())
        os.environ["INTAKE_CONFIG"] = str(config.resolve())
        os.environ.setdefault("INTAKE_OUTBOX", str((data_dir / "outbox").resolve()))
        server = make_server(host, port, _route)
        url = f"http://{host}:{server.server_address[1]}"
        os.environ.setdefault("INTAKE_PUBLIC_BASE_URL", url)
        from intake import runtime
        from intake.handlers import email, ingest, notifier
        from intake.local.workers import Consumer

        runtime.reset()
        runtime.store(), runtime.inbox(), runtime.policy(), runtime.timers()  # built before any thread uses them
        aws.restart_timers(resources)
        stop = threading.Event()
        consumers = [
            Consumer("ingest", resources.queue_urls["inbound"], ingest.handler, stop),
            Consumer("email", resources.queue_urls["email"], email.handler, stop),
            Consumer("notifier", resources.queue_urls["notifications"], notifier.handler, stop),
        ]

        def shutdown(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        for consumer in consumers:
            consumer.start()
        threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
        smtp = None
        if smtp_port is not None:
            from intake.local import smtp as smtp_server

            smtp = smtp_server.start(host, smtp_port)
        print(f"intake serving {url} (data in {data_dir}; restored {_counts(restored)})", flush=True)
        if smtp is not None:
            print(f"intake receiving email on smtp://{host}:{smtp_port}", flush=True)
        ready(url)
        while not stop.wait(SAVE_EVERY_S):
            _save(data_dir, resources, include_queues=False)
        server.shutdown()
        if smtp is not None:
            smtp.stop()
        for consumer in consumers:
            consumer.join(timeout=5)
        _save(data_dir, resources, include_queues=True, patience_s=VISIBILITY_S + 1)
        print("intake stopped; data saved", flush=True)


def _save(data_dir: Path, resources: aws.Resources, *, include_queues: bool, patience_s: float = 0) -> None:
    try:
        aws.save(data_dir, resources, include_queues=include_queues, patience_s=patience_s)
    except RuntimeError as error:  # moto's dicts changed under the scan: the next round saves
        print(f"intake: save postponed ({error})", file=sys.stderr, flush=True)


def _counts(restored: dict[str, Any]) -> str:
    return ", ".join(f"{v} {k}" for k, v in restored.items())
