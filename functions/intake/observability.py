"""The one place Logger and Metrics live; handlers import them from here, never from each other."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="intake")
metrics = Metrics(namespace="Intake", service="intake")


def count(name: str) -> None:
    """One business event: `TicketCreated`, `DuplicateDropped`, `SignatureRejected`, ..."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
