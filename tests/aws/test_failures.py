"""Failed messages on the AWS adapters (moto): each failed try recorded as it happens, the message dead-lettered by
the queue's redrive policy, listed by `GET /failures` and replayed by `POST /failures/{id}/replay`, real handlers."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake import runtime
from intake.policy import load_policy
from intake.resources import INBOUND_QUEUE
from tests.aws.conftest import ROOT, Stack

MAX_RECEIVES = INBOUND_QUEUE.max_receive_count
# A contact form routed to a team the worker's policy does not have yet: the ticket's SLA clocks cannot start
BILLING_TEAM = "teams:\n  billing:\n    name: Billing\n    timezone: Europe/Paris\n    default_region: FR\n"


@pytest.fixture
def policies(tmp_path: Path) -> tuple[Path, Path]:
    """(with the billing team, the contact form routed to it; without it), both valid."""
    shipped = (ROOT / "intake.yaml").read_text()
    with_billing = tmp_path / "with-billing.yaml"
    with_billing.write_text(
        shipped.replace("teams:\n", BILLING_TEAM, 1).replace(
            "  contact:\n    team: support\n", "  contact:\n    team: billing\n", 1
        )
    )
    assert load_policy(with_billing).forms["contact"].team == "billing"
    return with_billing, ROOT / "intake.yaml"


def use(policy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new cold start on this policy file (the functions read it once)."""
    monkeypatch.setenv("INTAKE_CONFIG", str(policy))
    runtime.reset()


def test_a_dead_lettered_message_is_listed_with_its_error_and_replayed_into_one_ticket(
    stack: Stack, policies: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a form accepted for the billing team, ingested by workers whose policy has no billing team yet
    with_billing, without = policies
    use(with_billing, monkeypatch)
    status, body = stack.post_sample("contact-json.json")
    assert status == 202, body
    receipt = body["receipt"]
    use(without, monkeypatch)
    inbound = stack.resources.queue_urls["inbound"]
    stack.sqs.set_queue_attributes(QueueUrl=inbound, Attributes={"VisibilityTimeout": "0"})  # retries come at once

    # When every try fails, until SQS moves it to the dead-letter queue
    assert stack.work(rounds=MAX_RECEIVES + 1) == 0
    assert stack.queued() == 0 and stack.queued("inbound-dlq") == 1

    # Then GET /failures lists it: its channel and receipt, the error's type, five tries, the first and the last
    status, listed = stack.get("/failures")
    assert status == 200
    [failure] = listed["items"]
    assert (failure["queue"], failure["channel"], failure["receipt_id"]) == ("inbound", "form", receipt)
    assert (failure["error_type"], failure["error_message"], failure["attempts"]) == ("KeyError", "'billing'", 5)
    assert failure["first_try"] <= failure["last_try"]
    assert listed["dead_letters"] == {"inbound": 1, "email": 0, "notifications": 0, "sender": 0}
    # And listing it left it in the dead-letter queue, visible
    assert stack.get("/failures")[1]["items"] == [failure]
    # What was written before it failed, if anything, is a ticket without clocks
    written = [t["PK"]["S"].removeprefix("TICKET#") for t in stack.tickets()]
    assert len(written) <= 1 and all(stack.get(f"/tickets/{t}")[1]["sla"] == [] for t in written)

    # When the cause is fixed (the billing team is added) and the message is replayed
    use(with_billing, monkeypatch)
    status, replayed = stack.post_api(f"/failures/{failure['id']}/replay")
    assert (status, replayed) == (200, {"id": failure["id"], "queue": "inbound"})
    assert stack.work() == 1

    # Then it is one ticket (the same one, if it was written), now with its SLA clocks, and nothing is left to replay
    [ticket_id] = [t["PK"]["S"].removeprefix("TICKET#") for t in stack.tickets()]
    assert written in ([], [ticket_id])
    assert {t["target"] for t in stack.get(f"/tickets/{ticket_id}")[1]["sla"]} == {"first_response", "resolution"}
    assert stack.get("/failures")[1]["items"] == []
    status, problem = stack.post_api(f"/failures/{failure['id']}/replay")
    assert (status, problem["type"]) == (404, "urn:intake:problem:failure-not-found")


def test_a_failure_is_recorded_without_customer_data(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a queued message whose body the worker cannot read (poison: a field of the wrong type)
    import json

    from intake.queues import Outgoing, SqsQueue

    inbound = stack.resources.queue_urls["inbound"]
    stack.sqs.set_queue_attributes(QueueUrl=inbound, Attributes={"VisibilityTimeout": "0"})
    poison = {"type": "message", "channel": "form", "sender": {"email": "lena@example.com"}, "text": ["+33612345678"]}
    SqsQueue(stack.sqs, inbound).send([Outgoing(json.dumps(poison), group="g", dedupe="d")])

    # When it fails until dead-lettered
    stack.work(rounds=MAX_RECEIVES + 1)

    # Then its error names the fields that are wrong, never their values
    [failure] = stack.get("/failures")[1]["items"]
    assert failure["error_type"] == "ValidationError"
    assert "text" in failure["error_message"] and "provider" in failure["error_message"]
    assert "example.com" not in json.dumps(failure) and "612345678" not in json.dumps(failure)
    assert (failure["channel"], failure["receipt_id"]) == (None, None)


def test_each_message_that_fails_in_its_batch_is_counted_by_its_queue_at_once(
    stack: Stack, policies: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    # Given a form the worker cannot ingest (its team is not in the worker's policy), and metrics on, as in Lambda
    with_billing, without = policies
    use(with_billing, monkeypatch)
    assert stack.post_sample("contact-json.json")[0] == 202
    use(without, monkeypatch)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    capsys.readouterr()

    # When the ingest function's batch has it fail (the function itself succeeds: the failure is reported)
    assert stack.work(rounds=1) == 0

    # Then one RecordFailed for the inbound queue was written (EMF on stdout, what CloudWatch turns into the metric
    # the queue's RecordsFailed alarm watches), beside the batch's own metrics
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    failed = [m for m in emitted if m.get("RecordFailed") == [1.0]]
    assert len(failed) == 1
    [directive] = failed[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Intake" and directive["Metrics"] == [{"Name": "RecordFailed", "Unit": "Count"}]
    assert sorted(directive["Dimensions"][0]) == ["queue", "service"]
    assert (failed[0]["queue"], failed[0]["service"]) == (INBOUND_QUEUE.name, "intake")
