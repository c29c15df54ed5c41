"""The AWS adapters' test double: moto in-process, with the resources the stack declares.

`create_resources` builds the table, queues, bucket, state machines and event bus from `intake.resources` (the
description the CDK stack builds from too) and the ASL files the stack deploys. moto tests the AWS adapters and
the ASL; it never runs Intake (`intake serve` runs on `intake.local.adapters`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import boto3

from intake.resources import (
    EMAIL_QUEUE,
    LATER_MACHINE,
    NOTIFICATIONS_QUEUE,
    QUEUES,
    SES_PREFIX,
    SLA_MACHINE,
    TABLE,
    QueueSpec,
    bucket_name,
    event_bus_name,
    table_name,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
PREFIX = "intake-local"


def fake_credentials() -> None:
    """moto accepts any credentials; these make sure no real ones are ever used."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "TZ": "UTC",
    }.items():
        os.environ[name] = value
    os.environ.pop("AWS_PROFILE", None)


@contextmanager
def emulated(execute_state_machines: bool = True) -> Iterator[None]:
    """moto for every boto3 client made inside, Step Functions executing its ASL (or, if not, recording starts)."""
    from moto import mock_aws

    fake_credentials()
    share_botocore_loader()
    _roll_back_items_not_tables()  # first, so that the lock below wraps it: its copies and restores are locked too
    _serialize_moto_dynamodb()
    _parse_each_definition_once()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": execute_state_machines}}):
        try:
            yield
        finally:
            _stop_running_executions()


def _stop_running_executions() -> None:
    """moto runs each execution in threads of its own, which outlive the moto context they started in: a Wait that
    ended after its test wrote into the next test's queue or table of the same name (a notice the next test did not
    send). Each execution still running is stopped, as StopExecution would, before moto forgets it."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends  # the one that executes

    for machine in stepfunctions_parser_backends[ACCOUNT][REGION].state_machines:
        for execution in machine.executions:
            worker = execution.exec_worker
            if worker is None or execution.status != "RUNNING":
                continue
            deadline = time.monotonic() + 1  # a thread that has not begun has nothing to stop yet
            while worker.env is None and time.monotonic() < deadline:
                time.sleep(0.01)
            if worker.env is not None:
                execution.stop(stop_date=datetime.now(UTC), error="", cause="the test is over")


def share_botocore_loader() -> None:
    """Every botocore session made in this process reads the service models through one loader.

    A session reads and decodes its JSON (endpoints, partitions, each service's model and rules) the first time it
    needs them, and the tests make several sessions per test: `create_resources`, the `stack` fixture, and
    `intake.runtime` after each `runtime.reset()`. That decoding was a third of the moto tests' CPU time. The files
    never change while the tests run, and one session's clients already share what its loader read: sharing the
    loader across sessions changes nothing else."""
    import botocore.loaders
    import botocore.session

    if getattr(botocore.session.Session._register_data_loader, "_shared", False):
        return
    loader = botocore.loaders.create_loader()

    def register_shared(session: botocore.session.Session) -> None:
        session._components.lazy_register_component("data_loader", lambda: loader)

    register_shared._shared = True  # type: ignore[attr-defined]
    botocore.session.Session._register_data_loader = register_shared  # type: ignore[method-assign]


_MOTO_TABLES = threading.RLock()


def _serialize_moto_dynamodb() -> None:
    """moto runs each Step Functions execution in threads of its own, which read and write the table while the test's
    thread does; its TransactWriteItems deep-copies the table and fails with "dictionary changed size during
    iteration" when another thread writes meanwhile (DynamoDB itself has no such failure). One lock around moto's
    item calls makes them atomic, as they are in DynamoDB."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "get_item", "query", "scan", "update_item", "delete_item", "transact_write_items"):
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_serialized", False):
            continue

        def locked(*args: Any, __method: Any = method, **kwargs: Any) -> Any:
            with _MOTO_TABLES:
                return __method(*args, **kwargs)

        locked._serialized = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, locked)


def _roll_back_items_not_tables() -> None:
    """moto's TransactWriteItems deep-copies the whole table before each operation of a transaction, to put it back if
    one fails: a ticket's transaction cost grew with the table (a fifth of the digest tests' CPU time). Here the items
    a transaction names are copied instead, and put back if it fails; what it writes, returns and raises is moto's."""
    import copy

    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    if models.copy is not copy:
        return

    class TablesNotCopied:  # moto's `copy` in that module: its other deep copies (an item's) are made as before
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    transact = models.DynamoDBBackend.transact_write_items

    def restoring(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        before = []
        for entry in transact_items:
            for kind, op in entry.items():
                try:
                    table = backend.get_table(op["TableName"])
                    names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
                    key = {n: op["Item"][n] for n in names} if kind == "Put" else dict(op["Key"])
                    before.append((table.name, key, copy.deepcopy(backend.get_item(table.name, key))))
                except Exception:  # an operation moto refuses writes nothing: nothing to put back
                    continue
        try:
            transact(backend, transact_items)
        except Exception:
            for table_name, key, item in reversed(before):  # the first copy of a key named twice is put back last
                if item is None:
                    backend.delete_item(table_name, key)
                else:
                    backend.put_item(table_name, item.to_json()["Attributes"])
            raise

    models.copy = TablesNotCopied  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = restoring  # type: ignore[method-assign]


def _parse_each_definition_once() -> None:
    """moto parses a state machine's ASL (ANTLR, in pure Python) to validate it when it is created and again to run
    each execution: a tenth of the moto tests' CPU time, for the same few definitions. The parse tree of a definition
    is kept and read again (nothing changes it); the components an execution runs are still built from it for each
    execution (moto's Preprocessor), as before, so executions share no state. A definition that parsed once is valid:
    creating a machine from it again builds no components (another tenth: each moto test creates the machines)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    parse = AmazonStateLanguageParser.__dict__["parse"].__func__
    if getattr(parse, "_remembering", False):
        return
    trees: dict[str, Any] = {}

    def remembering(definition: str) -> tuple[Any, Any]:
        tree = trees.get(definition)
        if tree is None:
            program, trees[definition] = parse(definition)  # a definition that does not parse raises, as before
            return program, trees[definition]
        return Preprocessor().visit(tree), tree

    validate = StepFunctionsParserBackend.__dict__["_validate_definition"].__func__

    def validating_once(definition: str) -> None:
        if definition not in trees:
            validate(definition)  # its parse keeps the tree; one that fails raises InvalidDefinition, as before

    remembering._remembering = True  # type: ignore[attr-defined]
    AmazonStateLanguageParser.parse = staticmethod(remembering)  # type: ignore[method-assign]
    StepFunctionsParserBackend._validate_definition = staticmethod(validating_once)  # type: ignore[method-assign]


@dataclass(frozen=True)
class Resources:
    table: str
    bucket: str
    queue_urls: dict[str, str]  # spec name → url, dead-letter queues included
    state_machine_arn: str
    event_bus: str
    later_machine_arn: str = ""  # the deliver-later machine (delayed satisfaction surveys)

    def environment(self) -> dict[str, str]:
        """The `INTAKE_*` variables the functions read, as the stack sets them in AWS."""
        return {
            "INTAKE_TABLE_NAME": self.table,
            "INTAKE_BUCKET_NAME": self.bucket,
            "INTAKE_INBOUND_QUEUE_URL": self.queue_urls["inbound"],
            "INTAKE_NOTIFICATIONS_QUEUE_URL": self.queue_urls[NOTIFICATIONS_QUEUE.name],
            "INTAKE_STATE_MACHINE_ARN": self.state_machine_arn,
            "INTAKE_EVENT_BUS_NAME": self.event_bus,
            "INTAKE_LATER_MACHINE_ARN": self.later_machine_arn,
            # the API's /failures: every queue and its dead-letter queue
            **{f"INTAKE_{spec.name.upper()}_QUEUE_URL": self.queue_urls[spec.name] for spec in QUEUES},
            **{f"INTAKE_{spec.name.upper()}_DLQ_URL": self.queue_urls[spec.dead_letter] for spec in QUEUES},
        }


def create_resources(prefix: str = PREFIX, visibility_timeout_s: int | None = None) -> Resources:
    """The stack's stateful resources; `visibility_timeout_s` shortens redelivery for local use."""
    create_table(prefix)
    _client("s3").create_bucket(Bucket=bucket_name(prefix))
    urls = create_queues(prefix, visibility_timeout_s)
    # SES receiving writes each message under SES_PREFIX; the bucket tells the email queue
    _client("s3").put_bucket_notification_configuration(
        Bucket=bucket_name(prefix),
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn(urls[EMAIL_QUEUE.name]),
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": SES_PREFIX}]}},
                }
            ]
        },
    )
    _client("sqs").purge_queue(QueueUrl=urls[EMAIL_QUEUE.name])  # S3's "s3:TestEvent" on configuring: nothing to keep
    machine = _create_state_machine(prefix, urls[NOTIFICATIONS_QUEUE.name])
    _client("events").create_event_bus(Name=event_bus_name(prefix))
    later = _create_later_machine(prefix, urls[NOTIFICATIONS_QUEUE.name])
    return Resources(table_name(prefix), bucket_name(prefix), urls, machine, event_bus_name(prefix), later)


@cache
def session() -> boto3.session.Session:
    """One boto3 session for the process's moto clients (~20 ms each; moto answers any client once it is on)."""
    return boto3.session.Session(region_name=REGION)


@cache
def _client(service: str) -> Any:
    """One client per service for making resources, in every moto context of the process: each moto test makes the
    resources anew, and a session with its clients cost ~50 ms."""
    return session().client(service)  # type: ignore[call-overload]


def queue_arn(url: str, region: str = REGION) -> str:
    """`https://sqs.us-east-1.amazonaws.com/123456789012/intake-test-inbound` → its ARN (no call needed)."""
    account, name = urlsplit(url).path.strip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def create_table(prefix: str = PREFIX) -> str:
    """The stack's table alone (its key schema, indexes and time to live, as `create_resources` makes it), for the
    tests of what only the table does; its name."""
    dynamodb = _client("dynamodb")
    attributes = {TABLE.partition_key, TABLE.sort_key}
    for index in TABLE.indexes:
        attributes |= {index.partition_key, index.sort_key}
    dynamodb.create_table(
        TableName=table_name(prefix),
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)],
        KeySchema=[
            {"AttributeName": TABLE.partition_key, "KeyType": "HASH"},
            {"AttributeName": TABLE.sort_key, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in TABLE.indexes
        ],
    )
    dynamodb.update_time_to_live(
        TableName=table_name(prefix),
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TABLE.ttl_attribute},
    )
    return table_name(prefix)


def create_queues(prefix: str = PREFIX, visibility_timeout_s: int | None = None) -> dict[str, str]:
    """The stack's queues alone, each with its dead-letter queue (as `create_resources` makes them), for the tests of
    what only the queues do; their URLs by name (`intake.resources.QUEUES`)."""
    sqs = _client("sqs")
    urls: dict[str, str] = {}
    for spec in QUEUES:
        visibility = spec.visibility_timeout_s if visibility_timeout_s is None else visibility_timeout_s
        urls[spec.dead_letter] = _create_queue(sqs, spec.dead_letter_name(prefix), spec, visibility, None)
        redrive = {
            "deadLetterTargetArn": queue_arn(urls[spec.dead_letter]),
            "maxReceiveCount": spec.max_receive_count,
        }
        urls[spec.name] = _create_queue(sqs, spec.physical_name(prefix), spec, visibility, redrive)
    return urls


def _create_later_machine(prefix: str, notifications_url: str) -> str:
    """The deliver-later machine (wait, then one SQS message), from the ASL file the stack deploys."""
    from intake.satisfaction import deliver_later_definition

    created = _client("stepfunctions").create_state_machine(
        name=f"{prefix}-{LATER_MACHINE}",
        definition=deliver_later_definition(notifications_url),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{prefix}-{LATER_MACHINE}",
        type="STANDARD",
    )
    return str(created["stateMachineArn"])


def _create_state_machine(prefix: str, notifications_url: str) -> str:
    """The SLA timer, from the same ASL file the stack deploys; moto executes it (no Lambda inside)."""
    from intake.sla.timers import definition

    created = _client("stepfunctions").create_state_machine(
        name=f"{prefix}-{SLA_MACHINE}",
        definition=definition(table_name(prefix), notifications_url),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{prefix}-sla-timer",
        type="STANDARD",
    )
    return str(created["stateMachineArn"])


def _create_queue(sqs: Any, name: str, spec: QueueSpec, visibility_s: int, redrive: dict[str, Any] | None) -> str:
    attributes = {
        "VisibilityTimeout": str(visibility_s),
        "MessageRetentionPeriod": str(spec.retention_s),
    }
    if spec.fifo:
        attributes["FifoQueue"] = "true"
    if redrive:
        attributes["RedrivePolicy"] = json.dumps(redrive)
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
