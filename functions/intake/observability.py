"""The one place Logger and Metrics live; handlers import them from here, never from each other."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

# The stack sets POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE; these are the defaults elsewhere
_service = os.environ.get("POWERTOOLS_SERVICE_NAME", "intake")
logger = Logger(service=_service)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Intake"), service=_service)


def count(name: str) -> None:
    """One business event: `TicketCreated`, `DuplicateDropped`, `SignatureRejected`, ..."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
