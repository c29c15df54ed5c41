"""What the moto tests hold each function's calls to (`tests.iam_calls`) is read from this template: every Intake
function, with its handler and its role's statements, and each resource those statements name stood for by a moto
resource, or one the functions' code never calls (issue 15)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.iam_calls import stand_ins
from tests.iam_roles import roles_of
from tests.infra.synthesis import Synthesized
from tests.moto_stack import Resources

# What a role names that no handler calls through boto3: Lambda's own writes (logs), what AWS uses on the function's
# behalf (keys; Lambda's on-failure destinations), what the moto tests leave unset (the SES configuration set).
NOT_IN_MOTO = {"AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::SES::ConfigurationSet"}
DESTINATIONS = {"Digests/DeadLetters", "MailFeedback/DeadLetters"}


def test_every_intake_function_is_read_with_its_handler_and_its_roles_statements(synthesized: Synthesized) -> None:
    roles = roles_of(synthesized.template)

    functions = {
        r["Properties"]["Handler"]
        for r in synthesized.resources("AWS::Lambda::Function").values()
        if r["Properties"]["Handler"].startswith("intake.")
    }
    assert {f["handler"] for f in roles["functions"]} == functions
    for function in roles["functions"]:
        module, _, name = function["handler"].rpartition(".")
        spec = importlib.util.find_spec(module)  # what the moto tests wrap (not imported here: no settings read)
        assert spec is not None and spec.origin is not None and f"def {name}(" in Path(spec.origin).read_text()
        assert any(s["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"] for s in function["documents"])


def test_each_resource_a_role_names_has_a_moto_stand_in_or_is_never_called_by_a_handler(
    synthesized: Synthesized,
) -> None:
    from intake.resources import QUEUES

    roles = roles_of(synthesized.template)
    names = [n for spec in QUEUES for n in (spec.name, spec.dead_letter)]
    resources = Resources(
        table="intake-test-tickets",
        bucket="intake-test-raw",
        queue_urls={n: f"https://sqs.us-east-1.amazonaws.com/123456789012/intake-test-{n}" for n in names},
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:intake-test-sla",
        event_bus="intake-test-events",
        later_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:intake-test-later",
    )
    arn_of = stand_ins(resources)

    unmapped = {
        r["path"]: r["type"] for r in roles["referenced"].values() if arn_of(r["path"]).startswith("arn:aws:unmapped:")
    }

    # a resource added to a role and called in the moto tests needs its stand-in (tests.iam_calls.stand_ins)
    assert {p for p, kind in unmapped.items() if kind not in NOT_IN_MOTO} == DESTINATIONS
    assert arn_of("TicketStore/Tickets") == "arn:aws:dynamodb:us-east-1:123456789012:table/intake-test-tickets"
    assert arn_of("InboundQueues/EmailDlq") == "arn:aws:sqs:us-east-1:123456789012:intake-test-email-dlq"
    assert arn_of("Functions/Digest") == "arn:aws:lambda:us-east-1:123456789012:function:IntakeDev-Digest"
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:intake-console-client-??????"
    assert arn_of("ProviderSecrets/ConsoleClient") == secret
