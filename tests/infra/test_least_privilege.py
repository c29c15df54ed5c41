"""Each function's table access as the template grants it is exactly what its construct declares, item by item
(`ItemGrant`s); `tests/aws/test_least_privilege.py` holds every call the functions make on moto to those same
declarations (issue 15)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.synthesis import Synthesized


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _table_grants(synthesized: Synthesized, function: str) -> set[tuple[str, str, str | None]]:
    """(action, leading key, attributes) for each DynamoDB action the function's role has on the table, statements
    CDK merged taken apart; "(any)" where no leading key is named."""
    table, _ = synthesized.one("AWS::DynamoDB::Table", "TicketStore/Tickets")
    _, policy = synthesized.one("AWS::IAM::Policy", f"Functions/{function}Role/DefaultPolicy")
    found = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        actions = [a for a in _as_list(statement["Action"]) if a.startswith("dynamodb:")]
        if not actions:
            continue
        assert statement["Resource"] == {"Fn::GetAtt": [table, "Arn"]}, statement  # the table: no index
        condition = statement.get("Condition", {})
        keys = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys", ["(any)"])
        attributes = condition.get("ForAllValues:StringEquals", {}).get("dynamodb:Attributes")
        found |= {(a, k, json.dumps(attributes)) for a in actions for k in keys}
    return found


def _declared(grants: Any) -> set[tuple[str, str, str | None]]:
    from intake.resources import TABLE

    return {
        (
            action,
            key,
            json.dumps(None if g.attributes is None else [TABLE.partition_key, TABLE.sort_key, *g.attributes]),
        )
        for g in grants
        for action in g.actions
        for key in g.leading_keys
    }


@pytest.mark.parametrize("function", ["Receiver", "Notifier", "Feedback"])
def test_the_table_grants_are_the_declared_item_grants(synthesized: Synthesized, function: str) -> None:
    from infra.constructs.functions import RECEIVER_ITEMS
    from infra.constructs.mail_feedback import FEEDBACK_ITEMS
    from infra.constructs.notifications import NOTIFIER_ITEMS

    declared = {"Receiver": RECEIVER_ITEMS, "Notifier": NOTIFIER_ITEMS, "Feedback": FEEDBACK_ITEMS}[function]

    assert _table_grants(synthesized, function) == _declared(declared)


def test_no_public_or_notifying_function_may_write_any_ticket_item_it_does_not_record() -> None:
    from infra.constructs.functions import RECEIVER_ITEMS
    from infra.constructs.notifications import NOTIFIER_ITEMS

    receiver = _declared(RECEIVER_ITEMS)
    # the receiver, open to the internet: no ticket item written, two attributes of one read
    assert not {g for g in receiver if g[1] == "TICKET#*" and g[0] != "dynamodb:GetItem"}
    assert {g for g in receiver if g[1] == "TICKET#*"} == {
        ("dynamodb:GetItem", "TICKET#*", json.dumps(["PK", "SK", "team", "reference"]))
    }
    # the notifier: no index, no identity, thread, contact or quarantine item written; nothing deleted but its claims
    notifier = _declared(NOTIFIER_ITEMS)
    written = {key for action, key, _ in notifier if action != "dynamodb:GetItem" and action != "dynamodb:Query"}
    assert not {k for k in written if k.startswith(("ID#", "THREAD#", "CONTACT#", "QUARANTINE", "SEEN#", "REF#"))}
    assert {key for action, key, _ in notifier if action == "dynamodb:DeleteItem"} == {
        "TOKEN#notify#*",
        "TOKEN#survey#*",
    }
