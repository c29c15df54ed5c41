"""Failures that page someone within minutes, and traces (issue 15): what never reaches Lambda's Errors metric is
alarmed on (answers 500 and over and slow answers per route group of the API, queue messages failed in their
batch), and every function traces."""

from __future__ import annotations

import json
from typing import Any

from infra.naming import pascal_case
from intake.resources import QUEUES
from tests.infra.synthesis import Synthesized


def _alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Each alarm's properties, by its construct id (`Observability/InboundRecordsFailed` → `InboundRecordsFailed`)."""
    found = {}
    for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values():
        path = alarm["Metadata"]["aws:cdk:path"].removesuffix("/Resource")
        found[path.rsplit("/", 1)[-1]] = alarm["Properties"]
    return found


def test_every_function_traces_actively(synthesized: Synthesized) -> None:
    functions = [
        f
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if "/Functions/" in f["Metadata"]["aws:cdk:path"]
    ]

    assert len(functions) == 8
    for function in functions:
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, function["Metadata"]["aws:cdk:path"]


def test_the_layer_has_the_xray_sdk_the_tracer_imports_where_tracing_is_on() -> None:
    from infra.bundling import runtime_requirements
    from tests.infra.synthesis import ROOT

    requirements = dict(line.split("==") for line in runtime_requirements(ROOT / "pyproject.toml", ROOT / "uv.lock"))

    assert {"aws-xray-sdk", "wrapt"} <= set(requirements)  # aws-lambda-powertools[tracer]


def test_a_server_error_on_any_route_group_alarms_within_a_minute(synthesized: Synthesized) -> None:
    from infra.constructs.webhook_api import ROUTE_GROUPS, ROUTES

    alarms = _alarms(synthesized)
    topic, _ = synthesized.one("AWS::SNS::Topic", "Observability/AlarmTopic")
    access_logs, _ = synthesized.one("AWS::Logs::LogGroup", "WebhookApi/AccessLogs")

    for group in ROUTE_GROUPS:
        _, errors = synthesized.one("AWS::Logs::MetricFilter", f"WebhookApi/{group.name}ServerErrors")
        props = errors["Properties"]
        (transformation,) = props["MetricTransformations"]
        pattern = props["FilterPattern"]
        # the access log's 5xx lines of this group's routes, and of no other route
        assert props["LogGroupName"] == {"Ref": access_logs}
        assert pattern.startswith("{ ($.status >= 500) && (") and len(pattern) <= 1024
        keys = {route.key for route in ROUTES if route.group is group}
        assert {key for route in ROUTES if f'$.routeKey = "{(key := route.key)}"' in pattern} == keys, group.name
        assert (transformation["MetricName"], transformation["MetricValue"]) == (f"{group.name}ServerErrors", "1")
        alarm = alarms[f"{group.name}ServerErrors"]
        assert (alarm["MetricName"], alarm["Namespace"]) == (f"{group.name}ServerErrors", "Intake")
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == (
            "Sum",
            60,
            1,
            0,
        )
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_slow_answers_alarm_per_route_group(synthesized: Synthesized) -> None:
    from infra.constructs.webhook_api import ROUTE_GROUPS

    alarms = _alarms(synthesized)

    for group in ROUTE_GROUPS:
        _, latency = synthesized.one("AWS::Logs::MetricFilter", f"WebhookApi/{group.name}Latency")
        (transformation,) = latency["Properties"]["MetricTransformations"]
        assert transformation["MetricValue"] == "$.responseLatency" and transformation["Unit"] == "Milliseconds"
        assert latency["Properties"]["FilterPattern"].startswith("{ ($.responseLatency >= 0) && (")
        alarm = alarms[f"{group.name}Latency"]
        assert (alarm["MetricName"], alarm["ExtendedStatistic"], alarm["Period"]) == (
            f"{group.name}Latency",
            "p90",
            300,
        )
        assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (group.latency_ms, 3, 2)
    assert [g.latency_ms for g in ROUTE_GROUPS] == [2000, 3000, 5000]  # providers', anyone's, agents'


def test_a_message_that_failed_in_its_batch_alarms_per_queue(synthesized: Synthesized) -> None:
    from intake.observability import RECORD_FAILED

    alarms = _alarms(synthesized)

    for spec in QUEUES:
        alarm = alarms[f"{pascal_case(spec.name)}RecordsFailed"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("Intake", RECORD_FAILED)
        # the dimensions `intake.observability.count_failed_record` writes
        assert alarm["Dimensions"] == [{"Name": "queue", "Value": spec.name}, {"Name": "service", "Value": "intake"}]
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == (
            "Sum",
            60,
            1,
            0,
        )
        assert "intake failures list" in alarm["AlarmDescription"]


def test_the_dashboard_shows_each_route_group_and_failed_records(synthesized: Synthesized) -> None:
    from tests.infra.test_sla_timers import _dashboard, _metrics

    widgets = {w["properties"].get("title"): w for w in _dashboard(synthesized)["widgets"]}

    errors = {m[1] for m in _metrics(widgets["API answers 500 and over, by route group"])}
    assert errors == {"ProviderWebhooksServerErrors", "PublicServerErrors", "AgentsServerErrors"}
    assert {m[1] for m in _metrics(widgets["inbound queue"])} >= {"RecordFailed"}


def test_resources_prod_keeps_have_no_fixed_name(synthesized: Synthesized) -> None:
    # dev writes `DeletionPolicy: Delete` exactly on what the stage's removal policy governs; prod retains those (the
    # table, archive, queues, keys, secrets, log groups, state machines): a stack deleted and created again beside them
    # must not collide with them (AlreadyExists), so none may carry a name that is not its own stack's
    governed = {n: r for n, r in synthesized.template["Resources"].items() if r.get("DeletionPolicy") == "Delete"}
    kinds = {r["Type"] for r in governed.values()}
    assert {"AWS::StepFunctions::StateMachine", "AWS::Logs::LogGroup", "AWS::DynamoDB::Table"} <= kinds

    for name, resource in governed.items():
        for prop, value in resource.get("Properties", {}).items():
            if prop.endswith("Name") or prop == "Name":
                assert not isinstance(value, str), (name, prop, value)
                assert "AWS::StackId" in json.dumps(value), (name, prop, value)  # made the stack's own
