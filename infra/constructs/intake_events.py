"""IntakeEvents: Intake's own EventBridge bus, where it announces what other systems may act on.

`DigestPublished` (a team's digest figures, from the digest function) and `SurveyRequested` (a survey for a
contact without email, from the notifier, for an outbound channel integration); source `intake`. Named from
`intake.resources.event_bus_name` (`IntakeDev-events`); consumers add their own rules to it.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.stage import Stage
from intake.resources import event_bus_name


class IntakeEvents(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(
            self,
            "Bus",
            event_bus_name=event_bus_name(Stack.of(self).stack_name),
            description=f"Intake {stage.name}: DigestPublished and SurveyRequested events (source intake)",
        )

    def grant_put(self, grantee: iam.IGrantable) -> None:
        """`events:PutEvents` on this bus only."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["events:PutEvents"], resource_arns=[self.bus.event_bus_arn]
        )
