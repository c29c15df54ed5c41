"""The one place Logger, Metrics and tracing live; handlers import them from here, never from each other."""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.util import find_spec
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

# The stack sets POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE; these are the defaults elsewhere
_service = os.environ.get("POWERTOOLS_SERVICE_NAME", "intake")
logger = Logger(service=_service)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Intake"), service=_service)

# A queue message that failed in its batch (the consumer reports it; the queue retries it, then dead-letters it)
RECORD_FAILED = "RecordFailed"

Handler = TypeVar("Handler", bound=Callable[..., Any])


def count(name: str, value: int = 1) -> None:
    """One business event: `TicketCreated`, `DuplicateDropped`, `SignatureRejected`, ...

    Not even collected where metrics are off (`intake serve`): Powertools still prints a set that reaches 100 values,
    flushed or not, and a long-running process would write one every 100 forms."""
    if is_metrics_disabled():
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_failed_record(queue: str) -> None:
    """`RecordFailed` for `queue` (a dimension beside `service`), written at once rather than with the batch's
    metrics: a batch that then times out still counts the failures it had."""
    if is_metrics_disabled():
        return
    dimensions = {"service": _service, "queue": queue}
    with single_metric(RECORD_FAILED, MetricUnit.Count, 1, namespace=metrics.namespace, default_dimensions=dimensions):
        pass


def tracing_enabled() -> bool:
    """Active tracing, as Powertools' Tracer decides it (in Lambda, not turned off by POWERTOOLS_TRACE_DISABLED, not
    in SAM local or Chalice), and only where the X-Ray SDK is installed: `intake serve`, the CLI and the tests
    never import it, and a layer built without it loses the traces, not the function."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true", "yes", "on"):
        return False
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT"))
    emulated = bool(os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"))
    return in_lambda and not emulated and find_spec("aws_xray_sdk") is not None


def traced(handler: Handler) -> Handler:
    """The Lambda handler inside a `## handler` subsegment with its AWS SDK calls (botocore patched), where tracing
    is on; elsewhere the handler itself, and `aws_xray_sdk` stays unimported. Neither the response nor the error is
    added to the trace as metadata: they can hold customers' data (the logs have the error, without it)."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=_service, patch_modules=["botocore"])
    return cast("Handler", tracer.capture_lambda_handler(handler, capture_response=False, capture_error=False))
