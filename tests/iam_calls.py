"""Every AWS call a function makes in the moto tests, held to that function's role as synthesized.

A call belongs to the function whose handler is running (`attributed`: each handler module a function of the template
runs is wrapped for the test, so whatever invokes it, a queue poller or a test, is covered; `running` names one for a
test that calls a function's domain code directly). At the botocore boundary (`before-parameter-build`, registered
for every client botocore creates, as moto registers its own) each call becomes the requests IAM would authorize:
one per item for DynamoDB's batches and transactions, with `dynamodb:LeadingKeys`, `dynamodb:Attributes` and
`dynamodb:Select`; S3's object or bucket (`s3:prefix`); the queue, state machine or execution, event bus, function,
secret; SES's identity (the sender's address or its domain) and configuration set. `tests.iam_policy` decides each;
a request the role does not allow is answered as AWS answers it (AccessDenied, before moto sees it) and recorded, and
the test fails naming the function, the action and the resource (`Enforcer.failures`).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from typing import Any

from botocore.handlers import BUILTIN_HANDLERS

from tests.iam_policy import Decision, Request, Statement, decide
from tests.iam_roles import PSEUDO, Roles
from tests.infra.synthesis import STACK
from tests.moto_stack import Resources, queue_arn

ACCOUNT = PSEUDO["AWS::AccountId"]
_running: ContextVar[str | None] = ContextVar("running_function", default=None)


@dataclass(frozen=True)
class Call:
    function: str
    operation: str  # the API call: `dynamodb.TransactWriteItems`
    request: Request
    decision: Decision

    def __str__(self) -> str:
        return f"{self.function}: {self.request} ({self.operation}): {self.decision.reason}"


@dataclass
class Enforcer:
    """The functions' statements (by function name), and each call made while it is active."""

    statements: Mapping[str, list[Statement]]
    calls: list[Call] = field(default_factory=list)

    def authorize(self, function: str, operation: str, requests: list[Request]) -> list[Call]:
        made = [Call(function, operation, r, decide(self.statements[function], r)) for r in requests]
        self.calls += made
        return [c for c in made if not c.decision.allowed]

    @property
    def denied(self) -> list[Call]:
        return [c for c in self.calls if not c.decision.allowed]

    def failures(self) -> str | None:
        """What the test fails with: each call IAM would refuse, once."""
        lines = list(dict.fromkeys(str(c) for c in self.denied))
        return "IAM would refuse what the functions did:\n  " + "\n  ".join(lines) if lines else None


_active: list[Enforcer] = []


@contextmanager
def enforced(roles: Roles, resources: Resources) -> Iterator[Enforcer]:
    """The roles' statements resolved to `resources` (moto's), enforced on every call a function makes inside."""
    arn_of = stand_ins(resources)
    statements = {role.name: role.statements(arn_of, roles.referenced) for role in roles.functions.values()}
    enforcer = Enforcer(statements)
    _active.append(enforcer)
    try:
        yield enforcer
    finally:
        _active.remove(enforcer)


def attributed(roles: Roles) -> Iterator[tuple[Any, str, Callable[..., Any]]]:
    """(module, name, wrapped handler) for each function's handler: the calls made while it runs are that function's.
    A function added to the stack is covered as soon as a test runs its handler."""
    for path, role in roles.functions.items():
        module_name, _, name = path.rpartition(".")
        module = importlib.import_module(module_name)
        yield module, name, _attributing(role.name, getattr(module, name))


def _attributing(function: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(handler, "__wrapped_for_iam__", None) is not None:
        handler = handler.__wrapped_for_iam__

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        with running(function):
            return handler(*args, **kwargs)

    run.__wrapped_for_iam__ = handler  # type: ignore[attr-defined]
    return run


@contextmanager
def running(function: str) -> Iterator[None]:
    """The calls made inside are `function`'s (a handler run inside another keeps the outer one's)."""
    outer = _running.get()
    token = _running.set(function if outer is None else outer)
    try:
        yield
    finally:
        _running.reset(token)


@contextmanager
def unchecked(reason: str) -> Iterator[None]:
    """The calls made inside are no function's: for a test of a configuration the stack does not deploy (`reason`
    says which), whose calls no synthesized role is meant to allow."""
    assert reason
    token = _running.set(_UNCHECKED)
    try:
        yield
    finally:
        _running.reset(token)


_UNCHECKED = ""  # what `running` keeps: a handler run inside `unchecked` stays unchecked


def stand_ins(resources: Resources) -> Callable[[str], str]:
    """The ARN of the moto resource standing for the one built at a construct path (a secret: the one a test creates
    named `intake-<construct id in kebab case>`); what moto has no copy of (keys, log groups, dead-letter queues of
    Lambda destinations) gets an ARN no request names."""
    from infra.naming import pascal_case
    from intake.resources import QUEUES

    region = PSEUDO["AWS::Region"]
    arns = {
        "TicketStore/Tickets": f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{resources.table}",
        "RawArchive/Bucket": f"arn:aws:s3:::{resources.bucket}",
        "SlaTimers/StateMachine": resources.state_machine_arn,
        "DeliverLater/StateMachine": resources.later_machine_arn,
        "Events/Bus": f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{resources.event_bus}",
    }
    for spec in QUEUES:
        for name in (spec.name, spec.dead_letter):
            arns[f"InboundQueues/{pascal_case(name)}"] = queue_arn(resources.queue_urls[name], region)

    def arn_of(path: str) -> str:
        if path in arns:
            return arns[path]
        construct_id = path.split("/")[-1]
        if path.startswith("Functions/"):  # tests name a function as the stack would: IntakeDev-Digest
            return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{STACK}-{construct_id}"
        if path.startswith("ProviderSecrets/"):  # a test's secret: intake-console-client (Secrets Manager's suffix)
            name = re.sub(r"(?<!^)(?=[A-Z])", "-", construct_id).lower()
            return f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:intake-{name}-??????"
        return f"arn:aws:unmapped:{region}:{ACCOUNT}:{path}"

    return arn_of


# ---------------------------------------------------------------------- the botocore boundary


def _before_parameter_build(params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    function = _running.get()
    if not function or not _active:  # no function's handler runs, or `unchecked`
        return
    service = model.service_model
    operation = f"{service.service_name}.{model.name}"
    region = context.get("client_region") or PSEUDO["AWS::Region"]
    requests = _requests(service.signing_name, model.name, params, region)
    denied = _active[-1].authorize(function, operation, requests)
    if denied:
        code = "AccessDenied" if service.protocol in ("query", "rest-xml") else "AccessDeniedException"
        context["iam_denied"] = (code, f"{function} is not authorized to perform {denied[0].request}")


def _before_call(context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
    if "iam_denied" not in context:
        return None
    code, message = context["iam_denied"]
    error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
    return _Denied(), error


class _Denied:
    status_code = 400
    headers: dict[str, str] = {}  # noqa: RUF012
    content = b""
    text = ""


# every botocore session made from now on (boto3's clients included) runs these, as moto's stubber is registered
BUILTIN_HANDLERS.append(("before-parameter-build", _before_parameter_build))
BUILTIN_HANDLERS.append(("before-call", _before_call))


# ---------------------------------------------------------------------- what IAM authorizes, call by call


def _requests(prefix: str, operation: str, params: Mapping[str, Any], region: str) -> list[Request]:
    def arn(service: str, kind: str, name: str) -> str:  # a name, or already an ARN
        return name if name.startswith("arn:") else f"arn:aws:{service}:{region}:{ACCOUNT}:{kind}{name}"

    if prefix == "dynamodb":
        return _dynamodb(operation, params, lambda table: arn("dynamodb", "table/", table))
    if prefix == "s3":
        return _s3(operation, params)
    if prefix == "sqs":
        queue = queue_arn(params["QueueUrl"], region) if "QueueUrl" in params else arn("sqs", "", params["QueueName"])
        return [Request(f"sqs:{operation.removesuffix('Batch')}", queue)]
    if prefix == "ses" and operation in ("SendRawEmail", "SendEmail"):
        return _ses(operation, params, region)
    if prefix == "events" and operation == "PutEvents":
        buses = sorted({e.get("EventBusName", "default") for e in params["Entries"]})
        return [Request("events:PutEvents", arn("events", "event-bus/", bus)) for bus in buses]
    if prefix == "lambda" and operation in ("Invoke", "InvokeAsync"):
        return [Request("lambda:InvokeFunction", arn("lambda", "function:", params["FunctionName"]))]
    if prefix == "secretsmanager" and "SecretId" in params:
        return [Request(f"{prefix}:{operation}", arn(prefix, "secret:", params["SecretId"]))]
    # Step Functions and the rest: the machine or execution the call names, else the account
    named = [v for k, v in params.items() if k.lower().endswith("arn") and isinstance(v, str)]
    return [Request(f"{prefix}:{operation}", named[0] if named else "*")]


_TRANSACTED = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


def _dynamodb(operation: str, params: Mapping[str, Any], table_arn: Callable[[str], str]) -> list[Request]:
    if operation == "TransactWriteItems":
        return [
            _item(_TRANSACTED[kind], r, table_arn(r["TableName"]))
            for item in params["TransactItems"]
            for kind, r in item.items()
        ]
    if operation == "TransactGetItems":
        return [_item("GetItem", i["Get"], table_arn(i["Get"]["TableName"])) for i in params["TransactItems"]]
    if operation == "BatchGetItem":
        return [
            _item("BatchGetItem", {**asked, "Key": key}, table_arn(table))
            for table, asked in params["RequestItems"].items()
            for key in asked["Keys"]
        ]
    if operation == "BatchWriteItem":
        return [
            _item("BatchWriteItem", w.get("PutRequest") or w["DeleteRequest"], table_arn(table))
            for table, writes in params["RequestItems"].items()
            for w in writes
        ]
    resource = table_arn(params["TableName"])
    if operation in ("Query", "Scan"):
        index = params.get("IndexName")
        resource = f"{resource}/index/{index}" if index else resource
        context = {**_reads(params), **({"dynamodb:LeadingKeys": _queried_key(params)} if operation == "Query" else {})}
        return [Request(f"dynamodb:{operation}", resource, context)]
    if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
        return [_item(operation, params, resource)]
    return [Request(f"dynamodb:{operation}", resource)]


def _item(operation: str, params: Mapping[str, Any], table: str) -> Request:
    """An item request: its partition key (`dynamodb:LeadingKeys`), the attributes it names, what it returns."""
    from intake.resources import TABLE

    key = params.get("Item") or params["Key"]
    context: dict[str, tuple[str, ...]] = {"dynamodb:LeadingKeys": (_value(key[TABLE.partition_key]),)}
    if operation in ("GetItem", "BatchGetItem"):
        context |= _reads(params)
    elif operation == "PutItem" or "Item" in params:
        context["dynamodb:Attributes"] = tuple(sorted(params["Item"]))
    elif operation == "UpdateItem":
        updated = _names(params.get("UpdateExpression", ""), params.get("ExpressionAttributeNames", {}))
        context["dynamodb:Attributes"] = tuple(sorted(set(key) | updated))
    if "ReturnValues" in params:
        context["dynamodb:ReturnValues"] = (params["ReturnValues"],)
    return Request(f"dynamodb:{operation}", table, context)


def _reads(params: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    projection = params.get("ProjectionExpression")
    if projection is None:
        return {"dynamodb:Select": (params.get("Select", "ALL_ATTRIBUTES"),)}
    names = _names(projection, params.get("ExpressionAttributeNames", {}))
    return {"dynamodb:Select": ("SPECIFIC_ATTRIBUTES",), "dynamodb:Attributes": tuple(sorted(names))}


_KEYWORDS = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN"}


def _names(expression: str, aliases: Mapping[str, str]) -> set[str]:
    """The top-level attribute names an expression names (`#n` through its alias), functions and keywords apart."""
    found = re.findall(r"(?<![:.\w#])(#?[A-Za-z_]\w*)(?!\w*\s*\()", expression)
    return {aliases.get(n, n) for n in found if n.upper() not in _KEYWORDS}


def _queried_key(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The partition key value a Query names (`<key> = :value`), of the table or of the index queried."""
    from intake.resources import TABLE

    index = next((i for i in TABLE.indexes if i.name == params.get("IndexName")), None)
    key = index.partition_key if index else TABLE.partition_key
    aliases = params.get("ExpressionAttributeNames", {})
    for name, value in re.findall(r"(#?\w+)\s*=\s*(:\w+)", params.get("KeyConditionExpression", "")):
        if aliases.get(name, name) == key:
            return (_value(params["ExpressionAttributeValues"][value]),)
    return ()


def _value(typed: Any) -> str:
    if isinstance(typed, dict) and len(typed) == 1 and next(iter(typed)) in ("S", "N", "B"):
        return str(next(iter(typed.values())))
    return str(typed)


_S3_ACTIONS = {
    "HeadObject": "GetObject",
    "GetObjectAttributes": "GetObject",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "ListObjectsV2": "ListBucket",
    "ListObjects": "ListBucket",
    "HeadBucket": "ListBucket",
}


def _s3(operation: str, params: Mapping[str, Any]) -> list[Request]:
    bucket = f"arn:aws:s3:::{params['Bucket']}"
    action = f"s3:{_S3_ACTIONS.get(operation, operation)}"
    if operation == "CopyObject":
        source = params["CopySource"]
        source = source if isinstance(source, str) else f"{source['Bucket']}/{source['Key']}"
        return [Request("s3:PutObject", f"{bucket}/{params['Key']}"), Request("s3:GetObject", f"arn:aws:s3:::{source}")]
    if operation == "DeleteObjects":
        return [Request("s3:DeleteObject", f"{bucket}/{o['Key']}") for o in params["Delete"]["Objects"]]
    if "Key" in params:
        return [Request(action, f"{bucket}/{params['Key']}")]
    return [Request(action, bucket, {"s3:prefix": (params.get("Prefix", ""),)} if action == "s3:ListBucket" else {})]


def _ses(operation: str, params: Mapping[str, Any], region: str) -> list[Request]:
    """SES authorizes the sending identity (the From address, or its domain when that is the verified one: either
    granted is enough here) and the configuration set the message names."""
    sender = params.get("Source")
    if sender is None and "RawMessage" in params:
        sender = BytesHeaderParser().parsebytes(params["RawMessage"]["Data"]).get("From", "")
    address = parseaddr(str(sender or ""))[1]
    identity = f"arn:aws:ses:{region}:{ACCOUNT}:identity/"
    named = params.get("FromArn") or params.get("SourceArn")
    requests = [
        Request(f"ses:{operation}", named)
        if named
        else Request(f"ses:{operation}", identity + address, alternatives=(identity + address.rpartition("@")[2],))
    ]
    if "ConfigurationSetName" in params:
        name = params["ConfigurationSetName"]
        requests.append(Request(f"ses:{operation}", f"arn:aws:ses:{region}:{ACCOUNT}:configuration-set/{name}"))
    return requests
