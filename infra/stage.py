"""What differs between `dev` and `prod` (`cdk deploy -c stage=prod`), and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs

STAGES = ("dev", "prod")


class StageUnknownError(Exception):
    def __init__(self, stage: object) -> None:
        super().__init__(f"-c stage={stage}: unknown stage; use one of {', '.join(STAGES)}")


@dataclass(frozen=True)
class Stage:
    name: str
    # prod keeps customers' data when the stack goes (table, archive, queues, keys, logs).
    removal_policy: RemovalPolicy
    deletion_protection: bool
    log_level: str
    log_retention: logs.RetentionDays
    key_pending_window: Duration

    @property
    def is_prod(self) -> bool:
        return self.name == "prod"


def stage_named(name: object) -> Stage:
    if name == "prod":
        return Stage(
            name="prod",
            removal_policy=RemovalPolicy.RETAIN,
            deletion_protection=True,
            log_level="INFO",
            log_retention=logs.RetentionDays.THREE_MONTHS,
            key_pending_window=Duration.days(30),
        )
    if name == "dev":
        return Stage(
            name="dev",
            removal_policy=RemovalPolicy.DESTROY,
            deletion_protection=False,
            log_level="DEBUG",
            log_retention=logs.RetentionDays.TWO_WEEKS,
            key_pending_window=Duration.days(7),
        )
    raise StageUnknownError(name)
