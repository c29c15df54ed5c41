"""`make bench`: Intake's costs as ratios to a baseline measured in the same run, on the same machine.

1. Cold import of each Lambda handler module against `import boto3` (fresh interpreters).
1b. Cold start of the receiver and ingest (import + one first event, AWS answered from a recording) against
   importing boto3 and making the same AWS calls (bench/cold_start.py).
2. The receiver's requests/s against the bare `put_object` + `send_message` it cannot avoid.
3. The ingest handler's messages/s, on a table grown to thousands of items, against the bare calls it cannot
   avoid: the transaction it wrote and the SLA `start_execution`s it made.
4. The receiver over HTTP (`intake serve`, bench/serve.py) against a bare HTTP server answering 202.
5. Email parsing (bench/email_parse.py) against `email.message_from_bytes`.
6. The real-world email corpus end to end over SMTP into `intake serve` (bench/email_corpus.py) against
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
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "functions"), str(REPO)]  # this checkout's intake; tests.moto_stack (moto's resources)
HANDLERS = tuple(
    f"intake.handlers.{name}"
    for name in ("receiver", "ingest", "api", "console", "notifier", "digest", "email", "feedback", "sender")
)
BASELINE_MODULE = "boto3"
IMPORT_TARGET = 1.3  # handler import <= 1.3 x `import boto3`
# Not baselines: what the libraries every handler builds on cost by themselves, to read the handlers' rows against
REFERENCES = {
    "(boto3 + pydantic)": "import boto3, pydantic.main",
    "(+ Powertools resolver)": "import boto3, pydantic.main, aws_lambda_powertools.event_handler",
    "(+ Powertools batch)": "import boto3, aws_lambda_powertools.utilities.batch, pydantic.main",
}
SECTIONS = ("imports", "cold", "throughput", "http", "email")
COLD_HANDLERS = ("intake.handlers.receiver", "intake.handlers.ingest")  # those with a first event below
SECRETS = {"INTAKE_FORM_CONTACT_SECRET": "bench-contact-secret"}
FORM_PATH = "/webhooks/forms/contact"
BARE = "bare-"  # marks what the baselines write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--import-rounds", type=int, default=9, help="fresh interpreters per module (median; >= 7)")
    parser.add_argument("--requests", type=int, default=100, help="receiver requests per round")
    parser.add_argument("--messages", type=int, default=20, help="ingested messages per round")
    parser.add_argument(
        "--table-items", type=int, default=5000, help="items in the table before ingest is measured (it grows)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds, each alternating with its baseline")
    parser.add_argument("--http-requests", type=int, default=1000, help="receiver posts over HTTP per server")
    parser.add_argument(
        "--skip-email-corpus", action="store_true", help="leave out bench/email_corpus.py (4 to 10 minutes)"
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"which to run, comma-separated: {', '.join(SECTIONS)}"
    )
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))
    if not sections <= set(SECTIONS):
        parser.error(f"--sections: one or more of {', '.join(SECTIONS)}")

    print_machine()
    if "imports" in sections:
        with tempfile.TemporaryDirectory(prefix="intake-bench-") as scratch:
            imports(Path(scratch), max(args.import_rounds, 7))
    if "cold" in sections:
        with tempfile.TemporaryDirectory(prefix="intake-bench-") as scratch:
            cold_starts(Path(scratch), max(args.import_rounds, 7))
    if "throughput" in sections:
        throughput(args.requests, args.messages, args.rounds, args.table_items)
    if "http" in sections:
        import serve  # bench/serve.py: `intake serve` over HTTP vs a bare server answering 202

        with tempfile.TemporaryDirectory(prefix="intake-bench-") as scratch:
            print("== the receiver over HTTP: `intake serve` (bench/serve.py, section 1), SQLite and files, no AWS")
            serve.receiver(args.http_requests, Path(scratch))
            print()
    if "email" not in sections:
        return 0
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
    print(f"load     {_load()} (1, 5, 15 minutes: other processes compete with every figure)")
    print(f"packages {', '.join(versions)}")
    print()


# ------------------------------------------------------------------- imports


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def _import_env(pycache: Path) -> dict[str, str]:
    """Fresh interpreters that read compiled bytecode from a private cache (written by a warm-up run), with the
    environment the stack gives the functions where it changes what an import does (infra/constructs/functions.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "POWERTOOLS_", "PYDANTIC_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    env["AWS_LAMBDA_FUNCTION_NAME"] = "intake-bench"  # Lambda's: a handler's import runs without the collector
    # this checkout's modules, whichever `intake` the environment has installed (they run in a scratch folder)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "functions"), *filter(None, [env.get("PYTHONPATH")])])
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
        **REFERENCES,
        **{m: f"import {m}" for m in HANDLERS},
    }
    load_before = _load()
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
    print(f"   load average {load_before} before, {_load()} after")
    header = f"{'module':<28} {'median ms':>10} {'min':>8} {'max':>8} {'beyond boto3':>13} {'x boto3':>8}"
    print(f"   {header}  target <= {IMPORT_TARGET}x boto3")
    for name in names[1:]:
        median = statistics.median(net[name])
        ratio = median / baseline
        verdict = "PASS" if ratio <= IMPORT_TARGET else "OVER"
        verdict = verdict if name in HANDLERS else ""
        low, high = _ms(min(net[name])), _ms(max(net[name]))
        beyond = "" if name == BASELINE_MODULE else _ms(median - baseline)
        print(f"   {name:<28} {_ms(median):>10} {low:>8} {high:>8} {beyond:>13} {ratio:>7.2f}x  {verdict}")
    print("   (parenthesized rows are not handlers: what the libraries every handler builds on cost by themselves)")
    for name, statement in REFERENCES.items():
        print(f"   {name} = `{statement}`")
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


# ---------------------------------------------------------------- cold start


def _bench_environment() -> None:
    """The functions' environment, as the throughput section and the cold starts use it: no stray INTAKE_*."""
    os.environ.update(SECRETS)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "intake")
    for name in [k for k in os.environ if k.startswith("INTAKE_") and k not in SECRETS]:
        del os.environ[name]


def _form_event(n: int) -> dict[str, Any]:
    """The `n`th signed post of the `contact` form, as API Gateway (HTTP API, v2) hands it to the receiver."""
    from intake.local import samples
    from intake.local.gateway import api_event
    from intake.policy import load_policy
    from intake.secrets import Secrets

    sample = {
        "path": FORM_PATH,
        "json": {
            "name": f"Bench Customer {n}",
            "email": f"customer{n}@example.com",
            "subject": f"Order {n} arrived damaged",
            "message": "The vase in my order arrived broken. Could you send a replacement?",
            "priority": "high",
            "order_number": str(n),
        },
    }
    prepared = samples.prepare(sample, load_policy(REPO / "intake.yaml"), Secrets(environ=SECRETS))
    return api_event("POST", prepared.path, prepared.headers, prepared.body, "198.51.100.7")


def _record_first_events(scratch: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """On moto, in this process: the receiver's first event (a signed form post) and ingest's (the SQS record
    the receiver queued, a new ticket), each after `runtime.reset()` (a new process, in effect), with every AWS
    call each made and moto's answers. Returns the functions' environment and each handler's payload file."""
    import cold_start

    _bench_environment()
    from tests.moto_stack import create_resources, emulated

    recorder = cold_start.Recorder()
    recorder.install()
    with emulated(execute_state_machines=False):
        resources = create_resources(prefix="intake-cold")
        environment = {**resources.environment(), "INTAKE_CONFIG": str(REPO / "intake.yaml"), **SECRETS}
        os.environ.update(environment)

        from intake import runtime
        from intake.handlers import ingest, receiver
        from intake.local.gateway import LocalContext
        from intake.local.workers import sqs_event
        from intake.queues import SqsQueue

        payloads = {}
        runtime.reset()
        event = _form_event(0)
        with _quiet_stdout():
            recorder.on = True
            answer = receiver.handler(event, LocalContext("receiver", "cold"))
            recorder.on = False
        if answer["statusCode"] != 202:
            raise RuntimeError(f"receiver answered {answer['statusCode']}: {answer.get('body')}")
        payloads[receiver.__name__] = recorder.payload(receiver.__name__, event)

        sqs = runtime.client("sqs")
        url = resources.queue_urls["inbound"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        messages = SqsQueue(sqs, url).receive(max_messages=10)
        if len(messages) != 1:
            raise RuntimeError(f"the receiver queued {len(messages)} messages, not 1")
        runtime.reset()
        recorder.calls, recorder.responses = [], {}
        event = sqs_event(messages, arn)
        with _quiet_stdout():
            recorder.on = True
            result = ingest.handler(event, LocalContext("ingest", "cold"))
            recorder.on = False
        if result.get("batchItemFailures"):
            raise RuntimeError(f"ingest failed: {result}")
        payloads[ingest.__name__] = recorder.payload(ingest.__name__, event)
        runtime.reset()

    environment |= {
        name: os.environ[name]
        for name in os.environ
        if name.startswith(("AWS_", "POWERTOOLS_")) and name not in ("AWS_PROFILE",)
    }
    files = {}
    for handler, payload in payloads.items():
        files[handler] = scratch / f"{handler}.pickle"
        cold_start.write_payload(files[handler], payload)
        files[f"{BARE}{handler}"] = scratch / f"{BARE}{handler}.pickle"
        cold_start.write_payload(files[f"{BARE}{handler}"], {**payload, "handler": None})
    return environment, files


def cold_starts(scratch: Path, rounds: int) -> None:
    """Each handler's import and first event in a fresh interpreter, against boto3's import and the same calls."""
    environment, files = _record_first_events(scratch)
    env = _import_env(scratch / "pycache") | environment
    script = str(REPO / "bench" / "cold_start.py")
    result = scratch / "result.json"

    def run(name: str) -> float:
        """One cold start; its answer checked every time (a refused post would be quicker than the real work: the
        form's signature allows 300 s, which the section must finish within)."""
        import json

        _run_python([script, str(files[name]), str(result)], env, scratch)
        outcome: dict[str, Any] = json.loads(result.read_text())
        answer = outcome["answer"]
        if name == "intake.handlers.receiver" and answer["statusCode"] != 202:
            raise RuntimeError(f"receiver answered {answer['statusCode']} in its cold start: {answer.get('body')}")
        if name == "intake.handlers.ingest" and answer.get("batchItemFailures"):
            raise RuntimeError(f"ingest failed in its cold start: {answer}")
        seconds: float = outcome["seconds"]
        return seconds

    load_before = _load()
    names = list(files)
    for name in names:  # warm-up: bytecode compiled once, files in the page cache
        run(name)
        run(name)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for n in range(rounds):
        order = names[n % len(names) :] + names[: n % len(names)]
        for name in order if n % 2 == 0 else list(reversed(order)):
            samples[name].append(run(name))

    print(f"== cold start: a fresh interpreter imports the handler and handles one event; median of {rounds}")
    print("   alternating runs, timed in the process from before anything of botocore is imported. AWS answers from")
    print("   a recording of the same event on moto (botocore builds, signs and parses as in Lambda; no network).")
    print("   Baseline: a fresh interpreter imports boto3 and makes the very calls the handler made (same clients,")
    print(f"   operations, parameters, answers). Load average {load_before} before, {_load()} after")
    print(f"   {'first event':<44} {'median ms':>10} {'min':>8} {'max':>8} {'baseline ms':>12} {'x baseline':>11}")
    labels = {
        "intake.handlers.receiver": "receiver: signed JSON form post (HTTP API v2)",
        "intake.handlers.ingest": "ingest: that post's SQS record, a new ticket",
    }
    for handler in COLD_HANDLERS:
        calls = Counter(f"{service}.{operation}" for service, operation, _ in _payload_calls(files[handler]))
        median, floor = statistics.median(samples[handler]), statistics.median(samples[f"{BARE}{handler}"])
        low, high = _ms(min(samples[handler])), _ms(max(samples[handler]))
        print(
            f"   {labels[handler]:<44} {_ms(median):>10} {low:>8} {high:>8} {_ms(floor):>12} {median / floor:>10.2f}x"
        )
        print(f"      its calls: {', '.join(f'{name} {n}' for name, n in sorted(calls.items()))}")
    print()


def _payload_calls(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    import pickle

    with path.open("rb") as file:
        calls: list[tuple[str, str, dict[str, Any]]] = pickle.load(file)["calls"]
    return calls


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


@contextlib.contextmanager
def _calls(*clients: Any) -> Iterator[Counter[str]]:
    """How many calls of each operation `clients` make inside, as `service.Operation`."""
    made: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        made[f"{model.service_model.service_name}.{model.name}"] += 1

    for client in clients:
        client.meta.events.register("before-call", record)
    try:
        yield made
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", record)


def _rekeyed(item: dict[str, Any], suffix: str) -> dict[str, Any]:
    """An item as another ticket's: its key and its contact made unique; team, status and dates kept (the team's
    indexes grow as a backlog would)."""
    copied = copy.deepcopy(item)
    for name in ("PK", "contact_id"):
        if name in copied and "S" in copied[name]:
            copied[name]["S"] += suffix
    return copied


def throughput(count: int, ingest_count: int, rounds: int, table_items: int) -> None:
    _bench_environment()

    from tests.moto_stack import create_resources, emulated

    # Step Functions executions are started, not run: moto would run each one's ASL in threads of this process
    with emulated(execute_state_machines=False):  # a failed transaction rolls back its items, not the table
        resources = create_resources(prefix="intake-bench")
        os.environ.update(resources.environment())
        os.environ["INTAKE_CONFIG"] = str(REPO / "intake.yaml")

        from intake import runtime
        from intake.handlers import ingest, receiver
        from intake.local import samples
        from intake.local.gateway import LocalContext, api_event
        from intake.local.workers import sqs_event
        from intake.policy import load_policy
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
            """Everything on the inbound queue, received and deleted."""
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
        warm_count = 20
        with (
            _quiet_stdout(),
            _captured(s3, "PutObject") as puts,
            _captured(sqs, "SendMessageBatch") as sends,
            _calls(s3, sqs) as receiver_calls,
        ):
            receive(form_events(warm_count))
        warm = take_queue()
        with (
            _quiet_stdout(),
            _captured(dynamodb, "BatchGetItem") as reads,
            _captured(dynamodb, "TransactWriteItems") as transactions,
            _captured(sfn, "StartExecution") as starts,
            _calls(dynamodb, sfn, sqs, s3) as ingest_calls,
        ):
            ingest_all(warm)
        put, send, transaction = puts[-1], sends[-1], transactions[-1]
        read = reads[-1] if len(reads) == len(warm) else None  # one read per new ticket, else none replayed
        per_ticket = len(starts) // len(warm)
        timers = starts[-per_ticket:] if per_ticket else []
        if len(puts) != warm_count or len(sends) != warm_count or len(transactions) != len(warm):
            raise RuntimeError(
                f"unexpected calls: {len(puts)} puts, {len(sends)} sends, {len(transactions)} transactions "
                f"for {warm_count} requests"
            )
        if len(starts) % len(warm):
            raise RuntimeError(f"{len(starts)} executions for {len(warm)} tickets")

        def per_call(made: Counter[str], n: int) -> str:
            return ", ".join(f"{name} {calls / n:g}" for name, calls in sorted(made.items()))

        def bare_receive(n: int) -> Callable[[], None]:
            """The floor of storage-first work: the same archive object and the same message, n times."""
            ids = [f"{BARE}{next(serial)}" for _ in range(n)]

            def work() -> None:
                for bare in ids:
                    s3.put_object(**{**put, "Key": f"{put['Key']}-{bare}"})
                    entries = [{**e, "MessageGroupId": bare, "MessageDeduplicationId": bare} for e in send["Entries"]]
                    sqs.send_message_batch(**{**send, "Entries": entries})

            return work

        def bare_ingest(n: int, everything: bool) -> Callable[[], None]:
            """The floor of ingesting, n times, re-keyed: the transaction ingest wrote (same items, same conditions)
            and, if `everything`, the read before it (same keys) and the SLA executions it started (renamed)."""
            batches = []
            for _ in range(n):
                suffix = f"#bare{next(serial)}"
                items = copy.deepcopy(transaction["TransactItems"])
                for item in items:
                    operation = next(iter(item.values()))
                    (operation.get("Item") or operation["Key"])["PK"]["S"] += suffix
                asked = copy.deepcopy(read) if everything and read else None
                for wanted in (asked or {}).get("RequestItems", {}).values():
                    for key in wanted["Keys"]:
                        key["PK"]["S"] += suffix
                executions = [{**start, "name": f"{BARE}{next(serial)}"} for start in timers if everything]
                batches.append((asked, items, executions))

            def work() -> None:
                for asked, items, executions in batches:
                    if asked is not None:
                        dynamodb.batch_get_item(**asked)
                    dynamodb.transact_write_items(TransactItems=items)
                    for execution in executions:
                        sfn.start_execution(**execution)

            return work

        def grow_table(items: int) -> int:
            """Copies of the warm-up's tickets (every item of each: ticket, messages, clocks, contact...) under
            new keys, until the table holds `items`: what ingest and its baseline write into."""
            pages = dynamodb.get_paginator("scan").paginate(TableName=resources.table)
            model = [item for page in pages for item in page["Items"]]
            have = len(model)
            while have < items:
                suffix = f"#grown{next(serial)}"
                batch = [_rekeyed(item, suffix) for item in model[: items - have]]
                for start in range(0, len(batch), 25):
                    chunk = batch[start : start + 25]
                    dynamodb.batch_write_item(
                        RequestItems={resources.table: [{"PutRequest": {"Item": i}} for i in chunk]}
                    )
                have += len(batch)
            return have

        with _quiet_stdout():
            grown = grow_table(table_items)

        rates: dict[str, list[float]] = {
            name: [] for name in ("receiver", "bare put+send", "ingest", "bare calls", "bare transact")
        }
        for n in range(rounds):
            events = form_events(count)
            receiver_floor = bare_receive(count)
            with _quiet_stdout():  # both sides send to the same queue, drained after both: neither meets a shorter one
                for name, work in _alternate(
                    n, ("receiver", functools.partial(receive, events)), ("bare put+send", receiver_floor)
                ):
                    rates[name].append(count / _timed(work))
                taken = take_queue()
            copies = {entry["MessageBody"] for entry in send["Entries"]}
            messages = [m for m in taken if m.body not in copies]  # the receiver's, not the baseline's copies
            if len(messages) != count:
                raise RuntimeError(f"the receiver enqueued {len(messages)} of {count} messages")
            batch = messages[:ingest_count]
            sides = [
                ("ingest", functools.partial(ingest_all, batch)),
                ("bare calls", bare_ingest(len(batch), everything=True)),
                ("bare transact", bare_ingest(len(batch), everything=False)),
            ]
            with _quiet_stdout():  # the three rotate who goes first; the table keeps what each wrote
                for name, work in sides[n % 3 :] + sides[: n % 3]:
                    rates[name].append(len(batch) / _timed(work))
        pages = dynamodb.get_paginator("scan").paginate(TableName=resources.table, Select="COUNT")
        final = sum(page["Count"] for page in pages)

    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"== throughput in-process on moto: median of {rounds} rounds, each alternating with its baselines "
        f"({count} requests, {ingest_count} messages per round); load average {_load()}"
    )
    print(f"   receiver per request: {per_call(receiver_calls, warm_count)}")
    print(f"   ingest per new ticket: {per_call(ingest_calls, len(warm))}")
    print(f"   the table held {grown} items before the first round and {final} after the last")
    print(f"   {'work':<56} {'per s':>8} {'min':>8} {'max':>8}   {'ms each':>8}")
    items = len(transaction["TransactItems"])
    labels = {
        "receiver": "receiver.handler, signed JSON form post",
        "bare put+send": "baseline: s3.put_object + sqs.send_message_batch",
        "ingest": "ingest.handler, SQS batches of 10, new ticket",
        "bare calls": f"baseline: {'its read, ' if read else ''}its write ({items} items), {len(timers)} executions",
        "bare transact": f"baseline: its write ({items} items) alone",
    }
    for name, values in rates.items():
        print(
            f"   {labels[name]:<56} {medians[name]:>8.1f} {min(values):>8.1f} {max(values):>8.1f}   "
            f"{1000 / medians[name]:>8.2f}"
        )
    print()
    for work, floor in (("receiver", "bare put+send"), ("ingest", "bare calls"), ("ingest", "bare transact")):
        baseline = labels[floor].removeprefix("baseline: ")
        ratio, share = medians[floor] / medians[work], medians[work] / medians[floor]
        print(f"   {work:<9} {ratio:.2f}x the time of `{baseline}` ({share:.0%} of its rate)")
    print()


def _alternate(n: int, first: tuple[str, Any], second: tuple[str, Any]) -> list[tuple[str, Any]]:
    """Round n's order: the two alternate who goes first, so neither always meets a warmer system."""
    return [first, second] if n % 2 == 0 else [second, first]


if __name__ == "__main__":
    sys.exit(main())
