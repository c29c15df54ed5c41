"""`make bench`: Intake's costs as ratios to a baseline measured in the same run, on the same machine.

1. Cold import of each Lambda handler module against `import boto3` (fresh interpreters).
2. The receiver's requests/s against the bare `put_object` + `send_message` it cannot avoid.
3. The ingest handler's messages/s against the bare `transact_write_items` and SLA `start_execution`s (one per
   target the ticket's policy sets) it cannot avoid.
4. Email parsing (bench/email_parse.py) against `email.message_from_bytes`.
5. The real-world email corpus end to end over SMTP into `intake serve` (bench/email_corpus.py) against
   django-helpdesk and a bare parse of the same files; one poison message among 200.

It prints; it never fails on timing. See bench/README.md for how to read the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import gc
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.moto_stack: the stack's resources in moto
HANDLERS = (
    "intake.handlers.receiver",
    "intake.handlers.ingest",
    "intake.handlers.api",
    "intake.handlers.notifier",
    "intake.handlers.digest",
    "intake.handlers.feedback",
)
BASELINE_MODULE = "boto3"
IMPORT_TARGET = 1.3  # handler import <= 1.3 x `import boto3`
# boto3 + pydantic's model machinery + Powertools' resolver: the stack DESIGN.md prescribes, before our own code
FLOOR = "(stack floor)"
FLOOR_MODULES = "boto3, pydantic.main, aws_lambda_powertools.event_handler"
SECRETS = {"INTAKE_FORM_CONTACT_SECRET": "bench-contact-secret"}
FORM_PATH = "/webhooks/forms/contact"
BARE = "bare-"  # marks what the baselines write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--import-rounds", type=int, default=9, help="fresh interpreters per module (median; >= 7)")
    parser.add_argument("--requests", type=int, default=100, help="receiver requests per round")
    parser.add_argument(
        "--messages", type=int, default=30, help="ingested messages per round (each starts on an empty table)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds, each alternating with its baseline")
    parser.add_argument(
        "--skip-email-corpus", action="store_true", help="leave out bench/email_corpus.py (4 to 10 minutes)"
    )
    args = parser.parse_args(argv)

    print_machine()
    with tempfile.TemporaryDirectory(prefix="intake-bench-") as scratch:
        imports(Path(scratch), max(args.import_rounds, 7))
    throughput(args.requests, args.messages, args.rounds)
    import email_parse  # bench/email_parse.py: messages parsed per second vs email.message_from_bytes

    email_parse.main([])
    if not args.skip_email_corpus:
        import email_corpus  # bench/email_corpus.py: the real-world corpus over SMTP vs django-helpdesk; a poison

        email_corpus.main([])
    return 0


# ------------------------------------------------------------------- machine


def print_machine() -> None:
    versions = []
    for package in ("boto3", "botocore", "aws-lambda-powertools", "pydantic", "moto"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    print("== machine")
    print(f"python   {platform.python_implementation()} {platform.python_version()} ({sys.executable})")
    print(f"system   {platform.system()} {platform.release()} {platform.machine()}")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"cpus     {os.cpu_count()} (usable by this process: {usable})")
    print(f"packages {', '.join(versions)}")
    print()


# ------------------------------------------------------------------- imports


def _import_env(pycache: Path) -> dict[str, str]:
    """Fresh interpreters that read compiled bytecode from a private cache (written by a warm-up run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "POWERTOOLS_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _run_python(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done


def _wall(statement: str, env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    _run_python(["-c", statement], env, cwd)
    return time.perf_counter() - started


@dataclass(frozen=True)
class ImportEntry:
    module: str
    level: int
    self_us: int
    cumulative_us: int


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)$")


def _import_profile(module: str, env: dict[str, str], cwd: Path) -> list[ImportEntry]:
    stderr = _run_python(["-X", "importtime", "-c", f"import {module}"], env, cwd).stderr
    entries = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            level = (len(match[3]) - 1) // 2
            entries.append(ImportEntry(match[4], level, int(match[1]), int(match[2])))
    return entries


def imports(scratch: Path, rounds: int) -> None:
    pycache = scratch / "pycache"
    env = _import_env(pycache)
    statements = {
        "(interpreter)": "pass",
        BASELINE_MODULE: f"import {BASELINE_MODULE}",
        FLOOR: f"import {FLOOR_MODULES}",
        **{m: f"import {m}" for m in HANDLERS},
    }
    for statement in statements.values():  # warm-up: bytecode compiled once, files in the page cache
        _run_python(["-c", statement], env, scratch)
        _run_python(["-c", statement], env, scratch)

    names = list(statements)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for n in range(rounds):  # rotate the order every round: no module always runs first or last
        order = names[n % len(names) :] + names[: n % len(names)]
        for name in order if n % 2 == 0 else list(reversed(order)):
            samples[name].append(_wall(statements[name], env, scratch))
    interpreter = samples["(interpreter)"]
    net = {name: [t - i for t, i in zip(samples[name], interpreter, strict=True)] for name in names[1:]}
    baseline = statistics.median(net[BASELINE_MODULE])

    print(f"== cold import: a fresh interpreter per run, median of {rounds} alternating runs,")
    start = _ms(statistics.median(interpreter))
    print(f"   minus `python -c pass` ({start} ms); bytecode cached, as in a Lambda layer")
    floor = statistics.median(net[FLOOR])
    header = f"{'module':<28} {'median ms':>10} {'min':>8} {'max':>8} {'x boto3':>8} {'x floor':>8}"
    print(f"   {header}  target <= {IMPORT_TARGET}x boto3")
    for name in names[1:]:
        median = statistics.median(net[name])
        ratio = median / baseline
        verdict = "" if name in (BASELINE_MODULE, FLOOR) else ("PASS" if ratio <= IMPORT_TARGET else "OVER")
        low, high = _ms(min(net[name])), _ms(max(net[name]))
        print(f"   {name:<28} {_ms(median):>10} {low:>8} {high:>8} {ratio:>7.2f}x {median / floor:>7.2f}x  {verdict}")
    print(f"   {FLOOR} = `import {FLOOR_MODULES}`: what any handler on this stack loads before our code")
    print()

    in_boto3 = {entry.module for entry in _import_profile(BASELINE_MODULE, env, scratch)}
    for handler in HANDLERS:
        entries = _import_profile(handler, env, scratch)
        beyond = _beyond(entries, in_boto3)
        total = next(e.cumulative_us for e in entries if e.module == handler)
        print(f"== top 10 cumulative import costs of {handler}")
        print(f"   (python -X importtime, one run: {_ms(total / 1e6)} ms,")
        print(f"   of which {_ms(beyond[handler] / 1e6)} ms in modules that `import boto3` does not load)")
        print(f"   {'cumul ms':>9} {'beyond boto3':>12}  module (indented by nesting)")
        for entry in sorted(entries, key=lambda e: e.cumulative_us, reverse=True)[:10]:
            note = "  (boto3 loads it too)" if entry.module in in_boto3 else ""
            print(
                f"   {_ms(entry.cumulative_us / 1e6):>9} {_ms(beyond[entry.module] / 1e6):>12}  "
                f"{'  ' * entry.level}{entry.module}{note}"
            )
        by_package = _by_package(entries, in_boto3)
        shares = ", ".join(f"{name} {_ms(us / 1e6)}" for name, us in by_package[:6])
        print(f"   beyond boto3, by package (self ms): {shares}")
        print()


def _by_package(entries: list[ImportEntry], shared: set[str]) -> list[tuple[str, int]]:
    """Self time of the modules `shared` does not hold, summed per top-level package, largest first (µs)."""
    totals: dict[str, int] = {}
    for entry in entries:
        if entry.module not in shared:
            top = entry.module.split(".")[0]
            name = "(stdlib)" if top in sys.stdlib_module_names else top
            totals[name] = totals.get(name, 0) + entry.self_us
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)


def _beyond(entries: list[ImportEntry], shared: set[str]) -> dict[str, int]:
    """Per module, the self time of its import subtree that is not in `shared` (µs).

    `-X importtime` prints a module after everything it imported (one level deeper), so a stack
    rebuilds the tree. That is what making the module lazy would save, given boto3 is loaded anyway.
    """
    stack: list[tuple[int, int]] = []  # (level, subtree time beyond shared)
    found: dict[str, int] = {}
    for entry in entries:
        total = 0 if entry.module in shared else entry.self_us
        while stack and stack[-1][0] > entry.level:
            total += stack.pop()[1]
        stack.append((entry.level, total))
        found[entry.module] = total
    return found


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


# ---------------------------------------------------------------- throughput


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Logs and EMF metrics go to stdout as in Lambda; here, to /dev/null (at the descriptor)."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def _captured(client: Any, operation: str) -> Iterator[list[dict[str, Any]]]:
    """The parameters of every `operation` call `client` makes inside, as its caller passed them."""
    calls: list[dict[str, Any]] = []
    event = f"provide-client-params.{client.meta.service_model.service_name}.{operation}"

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(copy.deepcopy(params))

    client.meta.events.register(event, record)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, record)


def _timed(work: Callable[[], None]) -> float:
    gc.collect()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def throughput(count: int, ingest_count: int, rounds: int) -> None:
    os.environ.update(SECRETS)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "intake")
    for name in [k for k in os.environ if k.startswith("INTAKE_") and k not in SECRETS]:
        del os.environ[name]

    from tests.moto_stack import create_resources, emulated

    with emulated():
        resources = create_resources(prefix="intake-bench")
        os.environ.update(resources.environment())
        os.environ["INTAKE_CONFIG"] = str(REPO / "intake.yaml")

        from intake import runtime
        from intake.config import load_policy
        from intake.handlers import ingest, receiver
        from intake.local import samples
        from intake.local.gateway import LocalContext, api_event
        from intake.local.workers import sqs_event
        from intake.queues import SqsQueue
        from intake.secrets import Secrets

        runtime.reset()
        policy, secrets = load_policy(REPO / "intake.yaml"), Secrets(environ=SECRETS)
        s3, sqs, dynamodb = runtime.client("s3"), runtime.client("sqs"), runtime.client("dynamodb")
        sfn = runtime.client("stepfunctions")
        queue_url = resources.queue_urls["inbound"]
        inbound = SqsQueue(sqs, queue_url)
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        serial = iter(range(10**9))

        def form_events(n: int) -> list[dict[str, Any]]:
            """`n` distinct signed posts of the `contact` form, as API Gateway hands them to the receiver."""
            events = []
            for _ in range(n):
                i = next(serial)
                sample = {
                    "path": FORM_PATH,
                    "json": {
                        "name": f"Bench Customer {i}",
                        "email": f"customer{i}@example.com",
                        "subject": f"Order {i} arrived damaged",
                        "message": "The vase in my order arrived broken. Could you send a replacement?",
                        "priority": "high",
                        "order_number": str(i),
                    },
                }
                prepared = samples.prepare(sample, policy, secrets)
                events.append(api_event("POST", prepared.path, prepared.headers, prepared.body, "198.51.100.7"))
            return events

        def receive(events: list[dict[str, Any]]) -> None:
            for event in events:
                answer = receiver.handler(event, LocalContext("receiver", event["requestContext"]["requestId"]))
                if answer["statusCode"] != 202:
                    raise RuntimeError(f"receiver answered {answer['statusCode']}: {answer.get('body')}")

        def take_queue() -> list[Any]:
            """Everything on the inbound queue, received and deleted (the receiver's: for the ingest runs)."""
            taken: list[Any] = []
            while messages := inbound.receive(max_messages=10):
                taken += messages
                inbound.delete([m.receipt for m in messages])
            return taken

        def ingest_all(messages: list[Any]) -> None:
            for start in range(0, len(messages), 10):  # Lambda's SQS batch size
                event = sqs_event(messages[start : start + 10], queue_arn)
                result = ingest.handler(event, LocalContext("ingest", uuid.uuid4().hex))
                if result.get("batchItemFailures"):
                    raise RuntimeError(f"ingest failed: {result}")

        # Warm-up (cold-start work out of the way) while recording the calls each handler makes.
        with _quiet_stdout(), _captured(s3, "PutObject") as puts, _captured(sqs, "SendMessage") as sends:
            receive(form_events(20))
        warm = take_queue()
        with (
            _quiet_stdout(),
            _captured(dynamodb, "TransactWriteItems") as transactions,
            _captured(sfn, "StartExecution") as starts,
        ):
            ingest_all(warm)
        put, send, transaction = puts[-1], sends[-1], transactions[-1]
        per_ticket = len(starts) // len(warm)
        timers = starts[-per_ticket:] if per_ticket else []
        if len(puts) != 20 or len(sends) != 20 or len(transactions) != len(warm) or len(starts) % len(warm):
            raise RuntimeError(
                f"unexpected calls: {len(puts)} puts, {len(sends)} sends, {len(transactions)} transactions, "
                f"{len(starts)} executions"
            )

        def bare_receive(n: int) -> Callable[[], None]:
            """The floor of storage-first work: the same archive object and the same message, n times."""
            ids = [f"{BARE}{next(serial)}" for _ in range(n)]

            def work() -> None:
                for bare in ids:
                    s3.put_object(**{**put, "Key": f"{put['Key']}-{bare}"})
                    sqs.send_message(**{**send, "MessageGroupId": bare, "MessageDeduplicationId": bare})

            return work

        def bare_ingest(n: int) -> Callable[[], None]:
            """The floor of ingesting: the same transaction (items, conditions) and the same SLA executions
            started (one per target), n times, re-keyed and renamed."""
            batches = []
            for _ in range(n):
                suffix = f"#bare{next(serial)}"
                items = copy.deepcopy(transaction["TransactItems"])
                for item in items:
                    if set(item) != {"Put"}:
                        raise RuntimeError(f"the bare ingest replays puts only, got {sorted(item)}")
                    item["Put"]["Item"]["PK"]["S"] += suffix
                executions = [{**start, "name": f"{BARE}{next(serial)}"} for start in timers]
                batches.append((items, executions))

            def work() -> None:
                for items, executions in batches:
                    dynamodb.transact_write_items(TransactItems=items)
                    for execution in executions:
                        sfn.start_execution(**execution)

            return work

        def empty_table() -> None:
            """moto copies the whole table for every item of a transaction, so a transaction's cost grows
            with the table: each ingest run, ours and the baseline's, starts on an empty table."""
            pages = dynamodb.get_paginator("scan").paginate(TableName=resources.table, ProjectionExpression="PK, SK")
            keys = [item for page in pages for item in page["Items"]]
            for start in range(0, len(keys), 25):
                dynamodb.batch_write_item(
                    RequestItems={
                        resources.table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
                    }
                )

        def emptied_then(work: Callable[[], None]) -> Callable[[], float]:
            def run() -> float:
                empty_table()
                return _timed(work)

            return run

        rates: dict[str, list[float]] = {
            "receiver": [],
            "bare put+send": [],
            "ingest": [],
            "bare transact": [],
        }
        for n in range(rounds):
            events = form_events(count)
            receiver_floor = bare_receive(count)
            messages: list[dict[str, Any]] = []
            with _quiet_stdout():
                for name, work in _alternate(
                    n, ("receiver", functools.partial(receive, events)), ("bare put+send", receiver_floor)
                ):
                    rates[name].append(count / _timed(work))
                    # moto's send_message slows as its queue grows: each run starts on an empty queue
                    taken = take_queue()
                    messages = taken if name == "receiver" else messages
            if len(messages) != count:
                raise RuntimeError(f"the receiver enqueued {len(messages)} of {count} messages")
            batch = messages[:ingest_count]
            ingest_floor = bare_ingest(len(batch))
            with _quiet_stdout():
                runs = _alternate(
                    n,
                    ("ingest", emptied_then(functools.partial(ingest_all, batch))),
                    ("bare transact", emptied_then(ingest_floor)),
                )
                for name, timed in runs:
                    rates[name].append(len(batch) / timed())

    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"== throughput in-process on moto: median of {rounds} rounds, each alternating with its baseline "
        f"({count} requests, {ingest_count} messages per round)"
    )
    print(f"   {'work':<44} {'per s':>8} {'min':>8} {'max':>8}   {'ms each':>8}")
    labels = {
        "receiver": "receiver.handler, signed JSON form post",
        "bare put+send": "baseline: s3.put_object + sqs.send_message",
        "ingest": "ingest.handler, SQS batches of 10, new ticket",
        "bare transact": f"baseline: transact ({len(transaction['TransactItems'])} items) + {len(timers)} executions",
    }
    for name, values in rates.items():
        print(
            f"   {labels[name]:<44} {medians[name]:>8.1f} {min(values):>8.1f} {max(values):>8.1f}   "
            f"{1000 / medians[name]:>8.2f}"
        )
    print()
    for work, floor in (("receiver", "bare put+send"), ("ingest", "bare transact")):
        print(
            f"   {work:<9} {medians[floor] / medians[work]:.2f}x the baseline's time per request "
            f"({medians[work] / medians[floor]:.0%} of its rate)"
        )
    print()


def _alternate(n: int, first: tuple[str, Any], second: tuple[str, Any]) -> list[tuple[str, Any]]:
    """Round n's order: the two alternate who goes first, so neither always meets a warmer system."""
    return [first, second] if n % 2 == 0 else [second, first]


if __name__ == "__main__":
    sys.exit(main())
