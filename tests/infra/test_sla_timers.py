"""The SLA timer state machine and the notifier, as the synthesized template builds them (issue 8)."""

from __future__ import annotations

import json
import re
from typing import Any

from infra.naming import pascal_case
from intake.notify.notifier import CLAIM_SCOPE
from intake.resources import NOTIFICATIONS_QUEUE, SLA_MACHINE
from tests.infra.synthesis import ROOT, Synthesized

NOTIFICATIONS = pascal_case(NOTIFICATIONS_QUEUE.name)
DEFINITION = ROOT / "functions" / "intake" / "sla" / "state_machine.asl.json"
VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# CloudWatch Logs' log delivery and X-Ray, which CDK adds for logging and tracing: none names a resource.
SERVICE_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def vended_log_group_name(log_group: dict[str, Any]) -> str:
    """A machine's log group name with the stack id's UUID (`Fn::Select 2` of the stack id split on `/`) written
    `<stack uuid>`: the only part of it that is not text."""
    (separator, parts) = log_group["Properties"]["LogGroupName"]["Fn::Join"]
    uuid = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    assert separator == "" and all(isinstance(p, str) or p == uuid for p in parts), parts
    return "".join(p if isinstance(p, str) else "<stack uuid>" for p in parts)


def _statements(synthesized: Synthesized, path: str) -> list[dict[str, Any]]:
    _, policy = synthesized.one("AWS::IAM::Policy", path)
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _machine(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    return synthesized.one("AWS::StepFunctions::StateMachine", "SlaTimers/StateMachine")


def _environment(synthesized: Synthesized, function: str) -> dict[str, Any]:
    _, resource = synthesized.one("AWS::Lambda::Function", f"Functions/{function}")
    return dict(resource["Properties"]["Environment"]["Variables"])


def test_the_sla_timer_is_a_standard_machine_logging_every_event_with_tracing(synthesized: Synthesized) -> None:
    _, machine = _machine(synthesized)
    logs, log_group = synthesized.one("AWS::Logs::LogGroup", "SlaTimers/Logs")
    role, _ = synthesized.one("AWS::IAM::Role", "SlaTimers/Role")
    props = machine["Properties"]

    assert props["StateMachineType"] == "STANDARD"
    assert "StateMachineName" not in props  # CloudFormation names it (test_stack_template: no fixed names)
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [logs, "Arn"]}}}
    ]
    assert log_group["Properties"]["RetentionInDays"] == 14  # dev
    assert vended_log_group_name(log_group) == f"/aws/vendedlogs/states/IntakeDev-{SLA_MACHINE}-<stack uuid>"
    assert props["RoleArn"] == {"Fn::GetAtt": [role, "Arn"]}


def test_the_definition_is_the_asl_file_with_the_table_and_queue_filled_in(synthesized: Synthesized) -> None:
    table, _ = synthesized.one("AWS::DynamoDB::Table", "TicketStore/Tickets")
    queue, _ = synthesized.one("AWS::SQS::Queue", f"InboundQueues/{NOTIFICATIONS}")
    _, machine = _machine(synthesized)
    props = machine["Properties"]
    staged = synthesized.outdir / f"asset.{props['DefinitionS3Location']['Key']}"
    source = DEFINITION.read_text(encoding="utf-8")

    # Given the file CDK uploaded, and the values CloudFormation substitutes into it
    assert staged.read_text(encoding="utf-8") == source
    substitutions = props["DefinitionSubstitutions"]
    assert substitutions == {"TableName": {"Ref": table}, "NotificationsQueueUrl": {"Ref": queue}}
    # When CloudFormation substitutes them (here: each reference written as its logical id)
    filled = VARIABLE.sub(lambda match: "<" + substitutions[match.group(1)]["Ref"] + ">", source)

    # Then no variable is left, and every task names our table or our notifications queue
    assert set(VARIABLE.findall(source)) == set(substitutions)
    assert not VARIABLE.search(filled)
    tasks = [state for state in _states(json.loads(filled)) if state["Type"] == "Task"]
    assert tasks
    for task in tasks:
        parameters = task["Parameters"]
        if task["Resource"].startswith("arn:aws:states:::dynamodb:"):
            assert parameters["TableName"] == f"<{table}>"
        else:
            assert task["Resource"] == "arn:aws:states:::sqs:sendMessage"
            assert parameters["QueueUrl"] == f"<{queue}>"


def _states(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every state, those inside Map processors included."""
    found = []
    for state in definition["States"].values():
        found.append(state)
        for processor in ("ItemProcessor", "Iterator"):
            if processor in state:
                found += _states(state[processor])
    return found


def test_the_machine_may_only_read_and_mark_timer_items_and_queue_notifications(synthesized: Synthesized) -> None:
    table, _ = synthesized.one("AWS::DynamoDB::Table", "TicketStore/Tickets")
    table_key, _ = synthesized.one("AWS::KMS::Key", "TicketStore/Key")
    queue, _ = synthesized.one("AWS::SQS::Queue", f"InboundQueues/{NOTIFICATIONS}")
    queue_key, _ = synthesized.one("AWS::KMS::Key", "InboundQueues/Key")
    statements = _statements(synthesized, "SlaTimers/Role/DefaultPolicy")
    by_resource: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for resource in _as_list(statement["Resource"]):
            by_resource.setdefault(json.dumps(resource), set()).update(_as_list(statement["Action"]))

    def arn(logical_id: str) -> str:
        return json.dumps({"Fn::GetAtt": [logical_id, "Arn"]})

    assert by_resource == {
        arn(table): {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        arn(queue): {"sqs:SendMessage"},
        arn(table_key): {
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:Encrypt",
            "kms:GenerateDataKey*",
            "kms:ReEncrypt*",
        },
        arn(queue_key): {"kms:Decrypt", "kms:GenerateDataKey"},
        json.dumps("*"): SERVICE_ACTIONS,
    }
    _, role = synthesized.one("AWS::IAM::Role", "SlaTimers/Role")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "states.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]


def _timer_alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """The alarms on the SLA timer machine (the deliver-later machine has its own)."""
    machine, _ = _machine(synthesized)
    return {
        name: alarm["Properties"]
        for name, alarm in synthesized.resources("AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("Namespace") == "AWS/States"
        and alarm["Properties"]["Dimensions"][0]["Value"] == {"Ref": machine}
    }


def test_timers_alarm_when_an_execution_fails_or_times_out(synthesized: Synthesized) -> None:
    machine, _ = _machine(synthesized)
    topic, _ = synthesized.one("AWS::SNS::Topic", "Observability/AlarmTopic")
    alarms = list(_timer_alarms(synthesized).values())

    assert sorted(a["MetricName"] for a in alarms) == ["ExecutionsFailed", "ExecutionsTimedOut"]
    for alarm in alarms:
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine}}]
        assert alarm["AlarmActions"] == [{"Ref": topic}]


# ------------------------------------------------------------------ who starts and stops timers


def _states_actions(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Step Functions actions by resource (statements CDK merged across resources taken apart)."""
    by_resource: dict[str, set[str]] = {}
    for statement in statements:
        actions = {a for a in _as_list(statement["Action"]) if a.startswith("states:")}
        for resource in _as_list(statement["Resource"]) if actions else []:
            by_resource.setdefault(json.dumps(resource), set()).update(actions)
    return by_resource


def test_the_functions_that_create_tickets_or_record_responses_control_the_timers(synthesized: Synthesized) -> None:
    machine, _ = _machine(synthesized)
    later, _ = synthesized.one("AWS::StepFunctions::StateMachine", "DeliverLater/StateMachine")
    name = {"Fn::GetAtt": [machine, "Name"]}

    for function in ("Ingest", "Email", "Api"):
        assert _environment(synthesized, function)["INTAKE_STATE_MACHINE_ARN"] == {"Ref": machine}
        statements = _statements(synthesized, f"Functions/{function}Role/DefaultPolicy")
        # the api resolves tickets, which schedules their satisfaction surveys (test_digests)
        surveys = {json.dumps({"Ref": later}): {"states:StartExecution"}} if function == "Api" else {}
        assert _states_actions(statements) == {
            json.dumps({"Ref": machine}): {"states:StartExecution"},
            **surveys,
            json.dumps(
                {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":states:",
                            {"Ref": "AWS::Region"},
                            ":",
                            {"Ref": "AWS::AccountId"},
                            ":execution:",
                            name,
                            ":*",
                        ],
                    ]
                }
            ): {"states:StopExecution", "states:DescribeExecution"},
        }, function
    for function in ("Receiver", "Notifier"):
        assert "INTAKE_STATE_MACHINE_ARN" not in _environment(synthesized, function)
        actions = {a for s in _statements(synthesized, f"Functions/{function}Role/DefaultPolicy") for a in s["Action"]}
        assert not any(a.startswith("states:") for a in actions), function


def test_agents_post_ticket_events_with_iam(synthesized: Synthesized) -> None:
    synthesized.assertions.has_resource_properties(
        "AWS::ApiGatewayV2::Route",
        {"RouteKey": "POST /tickets/{ticket_id}/events", "AuthorizationType": "AWS_IAM"},
    )


def _dashboard(synthesized: Synthesized) -> dict[str, Any]:
    """The dashboard body as JSON, each CloudFormation reference written as `<logical id>` or `<logical id.attr>`."""
    (dashboard,) = synthesized.resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]

    def text(part: Any) -> str:
        if isinstance(part, str):
            return part
        if "Ref" in part:
            return f"<{part['Ref']}>"
        return "<" + ".".join(part["Fn::GetAtt"]) + ">"

    return dict(json.loads("".join(text(part) for part in parts)))


def _metrics(widget: dict[str, Any]) -> list[list[Any]]:
    return list(widget["properties"].get("metrics", []))


def test_the_dashboard_shows_sla_timer_executions_and_the_notifications_sent(synthesized: Synthesized) -> None:
    machine, _ = _machine(synthesized)
    widgets = {w["properties"].get("title"): w for w in _dashboard(synthesized)["widgets"]}

    executions = _metrics(widgets["SLA timer executions"])
    assert {m[1] for m in executions} >= {"ExecutionsStarted", "ExecutionsFailed", "ExecutionsTimedOut"}
    for metric in executions:
        assert metric[:3] == ["AWS/States", metric[1], "StateMachineArn"]
        assert metric[3] == f"<{machine}>"
    sent = {m[1] for m in _metrics(widgets["SLA notifications"])}
    assert sent >= {"SlaWarningSent", "SlaBreachSent", "SlaEscalationSent"}


def test_the_dashboard_shows_the_notifications_queue_and_every_timer_alarm(synthesized: Synthesized) -> None:
    queue, _ = synthesized.one("AWS::SQS::Queue", f"InboundQueues/{NOTIFICATIONS}")
    widgets = {w["properties"].get("title"): w for w in _dashboard(synthesized)["widgets"]}
    timer_alarms = list(_timer_alarms(synthesized))

    queue_metrics = _metrics(widgets[f"{NOTIFICATIONS_QUEUE.name} queue"])
    # the queue's own metrics, and the messages that failed in the notifier's batches (RecordFailed, by queue)
    sqs = [m for m in queue_metrics if m[0] == "AWS/SQS"]
    assert sqs and all(m[2:4] == ["QueueName", f"<{queue}.QueueName>"] for m in sqs)
    (failed,) = [m for m in queue_metrics if m[0] != "AWS/SQS"]
    assert failed[:2] == ["Intake", "RecordFailed"]
    assert dict(zip(failed[2:6:2], failed[3:7:2], strict=True)) == {
        "queue": NOTIFICATIONS_QUEUE.name,
        "service": "intake",
    }
    assert f"{NOTIFICATIONS_QUEUE.name} dead letters" in widgets
    shown = widgets["Alarms"]["properties"]["alarms"]
    assert len(timer_alarms) == 2
    assert all(f"<{alarm}.Arn>" in shown for alarm in timer_alarms)


# ------------------------------------------------------------------ the notifier


def test_the_notifier_consumes_notifications_reporting_partial_batch_failures(synthesized: Synthesized) -> None:
    queue, _ = synthesized.one("AWS::SQS::Queue", f"InboundQueues/{NOTIFICATIONS}")
    notifier, function = synthesized.one("AWS::Lambda::Function", "Functions/Notifier")
    table, _ = synthesized.one("AWS::DynamoDB::Table", "TicketStore/Tickets")
    (mapping,) = [
        m
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": notifier}
    ]

    assert function["Properties"]["Handler"] == "intake.handlers.notifier.handler"
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert function["Properties"]["Timeout"] * 6 <= NOTIFICATIONS_QUEUE.visibility_timeout_s
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["INTAKE_TABLE_NAME"] == {"Ref": table}
    assert "INTAKE_PUBLIC_BASE_URL" in variables  # the link in every email


def test_the_notifier_claims_notices_and_sends_email_only_as_the_policy_sender(synthesized: Synthesized) -> None:
    from intake.satisfaction import CLAIM_SCOPE as SURVEY_CLAIM_SCOPE

    sender = synthesized.policy_file.policy.notifications.sender
    asking = sorted(
        t.email for t in synthesized.policy_file.policy.teams.values() if t.satisfaction.enabled and t.email
    )
    assert asking == ["support@example.com"]  # the tested policy: support asks for surveys (conftest)
    statements = _statements(synthesized, "Functions/NotifierRole/DefaultPolicy")
    actions = {a for s in statements for a in _as_list(s["Action"])}

    assert {a for a in actions if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",  # the claim of each notice, the event it records
        "dynamodb:UpdateItem",  # the ticket's breached flag
        "dynamodb:DeleteItem",  # a claim given back when sending failed
    }
    (delete,) = [s for s in statements if "dynamodb:DeleteItem" in _as_list(s["Action"])]
    assert set(_as_list(delete["Action"])) == {"dynamodb:PutItem", "dynamodb:DeleteItem"}  # claimed, given back
    assert delete["Condition"] == {
        "ForAllValues:StringLike": {
            "dynamodb:LeadingKeys": [f"TOKEN#{CLAIM_SCOPE}#*", f"TOKEN#{SURVEY_CLAIM_SCOPE}#*"]  # SLA notices, surveys
        }
    }
    # secretsmanager: the survey links' CSAT_SECRET, as some team asks for surveys (test_digests)
    assert not any(a.startswith(("s3:", "states:", "sqs:SendMessage")) for a in actions)
    (send,) = [s for s in statements if "ses:SendRawEmail" in _as_list(s["Action"])]
    assert _as_list(send["Action"]) == ["ses:SendRawEmail"]
    identities = sorted(
        resource["Fn::Join"][1][-1]
        for resource in _as_list(send["Resource"])
        if resource["Fn::Join"][1][-2] != ":configuration-set/"  # what it sends with (test_mail_feedback)
    )
    addresses = {sender, *asking}  # notices from the sender; surveys from the address of the team that asks
    expected = addresses | {address.rpartition("@")[2] for address in addresses}
    assert identities == sorted(f":identity/{identity}" for identity in expected)
