"""What SES's events say, as `intake.suppression.parse_feedback` reads them (the samples of `events/ses/`): which
addresses to suppress, and what a bounce or a delivery says of the message (an agent's reply: its state)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from intake.model import DeliveryState
from intake.records import SuppressionReason
from intake.suppression import parse_feedback

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "ses"


def detail(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text())
    return dict(event["detail"])


@pytest.mark.parametrize(
    ("name", "reason", "delivery"),
    [
        ("bounce-permanent", SuppressionReason.BOUNCE, DeliveryState.FAILED),
        ("bounce-transient", None, DeliveryState.FAILED),  # SES gave up retrying: the message never arrived
        ("complaint", SuppressionReason.COMPLAINT, None),  # it arrived; the customer did not want it
        ("delivery", None, DeliveryState.DELIVERED),
    ],
)
def test_each_event_says_what_to_suppress_and_what_became_of_the_message(
    name: str, reason: SuppressionReason | None, delivery: DeliveryState | None
) -> None:
    feedback = parse_feedback(detail(name))

    assert feedback is not None
    assert (feedback.reason, feedback.delivery) == (reason, delivery)
    assert feedback.ses_message_id == detail(name)["mail"]["messageId"]


def test_a_bounce_says_its_type_and_the_servers_words_and_a_delivery_its_recipients() -> None:
    bounced, delivered = parse_feedback(detail("bounce-permanent")), parse_feedback(detail("delivery"))

    assert bounced is not None and bounced.error == "bounced (Permanent, General): smtp; 550 5.1.1 user unknown"
    assert delivered is not None and delivered.addresses == ("ana.silva@example.org",) and delivered.error is None


def test_a_bounce_without_a_diagnostic_or_a_type_still_says_it_bounced() -> None:
    bare = detail("bounce-transient")
    bare["bounce"] = {k: v for k, v in bare["bounce"].items() if k not in ("bounceType", "bounceSubType")}
    bare["bounce"]["bouncedRecipients"] = [{"emailAddress": "thomas.martin@example.org"}]

    feedback = parse_feedback(bare)

    assert feedback is not None and feedback.error == "bounced (no type given)"


def test_an_event_of_another_kind_is_none() -> None:
    other = detail("delivery") | {"eventType": "Open"}

    assert parse_feedback(other) is None
