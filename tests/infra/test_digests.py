"""Digests and satisfaction surveys as the synthesized template builds them (issue 9): the schedules, the digest
function and what it may do, the api's digest routes, Intake's event bus, the deliver-later machine, the survey routes
and who records answers.

The session's policy (conftest, `tested_policy`) gives `support` (Europe/Paris) a daily digest at 08:30, a weekly
one on Monday at 09:00 and surveys, and `billing` (America/New_York) a weekly digest on Friday at 16:45 only."""

from __future__ import annotations

import json
import re
from typing import Any

from intake.resources import DIGESTS_PREFIX, LATER_MACHINE, NOTIFICATIONS_QUEUE
from tests.infra.synthesis import BILLING, BILLING_TIMEZONE, ROOT, Synthesized

LATER_DEFINITION = ROOT / "functions" / "intake" / "notify" / "deliver_later.asl.json"
VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(synthesized: Synthesized, path: str) -> list[dict[str, Any]]:
    _, policy = synthesized.one("AWS::IAM::Policy", path)
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _function_statements(synthesized: Synthesized, function: str) -> list[dict[str, Any]]:
    return _statements(synthesized, f"Functions/{function}Role/DefaultPolicy")


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in _as_list(s["Action"])}


def _with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in _as_list(s["Action"])]


def _environment(synthesized: Synthesized, function: str) -> dict[str, Any]:
    _, resource = synthesized.one("AWS::Lambda::Function", f"Functions/{function}")
    return dict(resource["Properties"]["Environment"]["Variables"])


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


# ------------------------------------------------------------------ schedules


def test_each_enabled_team_and_period_has_a_schedule_at_its_local_time(synthesized: Synthesized) -> None:
    digest, _ = synthesized.one("AWS::Lambda::Function", "Functions/Digest")
    role, _ = synthesized.one("AWS::IAM::Role", "Digests/SchedulerRole")
    dead_letters, _ = synthesized.one("AWS::SQS::Queue", "Digests/DeadLetters")
    schedules = [s["Properties"] for s in synthesized.resources("AWS::Scheduler::Schedule").values()]

    by_input = {
        (json.loads(s["Target"]["Input"])["team"], json.loads(s["Target"]["Input"])["period"]): s for s in schedules
    }
    assert {key: (s["ScheduleExpression"], s["ScheduleExpressionTimezone"]) for key, s in by_input.items()} == {
        ("support", "daily"): ("cron(30 8 * * ? *)", "Europe/Paris"),
        ("support", "weekly"): ("cron(0 9 ? * MON *)", "Europe/Paris"),
        (BILLING, "weekly"): ("cron(45 16 ? * FRI *)", BILLING_TIMEZONE),  # no daily: billing did not ask
    }
    for schedule in schedules:
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}  # at the minute, not within a window
        assert schedule["State"] == "ENABLED"
        target = schedule["Target"]
        assert target["Arn"] == _arn(digest)
        assert target["RoleArn"] == _arn(role)
        assert set(json.loads(target["Input"])) == {"team", "period"}
        assert target["DeadLetterConfig"] == {"Arn": _arn(dead_letters)}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400


def test_the_schedules_follow_the_policy_file() -> None:
    from infra.constructs.digests import digest_schedules
    from intake.config import Digests, DigestSchedule, Team, WeeklyDigestSchedule
    from intake.policy import parse_policy

    teams = {
        "quiet": Team(name="Quiet"),  # no digest asked: no schedule
        "night": Team(
            name="Night",
            timezone="Asia/Tokyo",
            digests=Digests(daily=DigestSchedule(at="23:05"), weekly=WeeklyDigestSchedule(at="07:00", day="sun")),
        ),
    }
    policy = parse_policy({"version": 1, "teams": {k: v.model_dump() for k, v in teams.items()}})

    found = [(s.team, s.period, s.expression, s.timezone, s.input) for s in digest_schedules(policy)]

    assert found == [
        ("night", "daily", "cron(5 23 * * ? *)", "Asia/Tokyo", {"team": "night", "period": "daily"}),
        ("night", "weekly", "cron(0 7 ? * SUN *)", "Asia/Tokyo", {"team": "night", "period": "weekly"}),
    ]


def test_the_scheduler_role_may_only_invoke_the_digest_function(synthesized: Synthesized) -> None:
    digest, _ = synthesized.one("AWS::Lambda::Function", "Functions/Digest")
    dead_letters, _ = synthesized.one("AWS::SQS::Queue", "Digests/DeadLetters")
    queue_key, _ = synthesized.one("AWS::KMS::Key", "InboundQueues/Key")
    _, role = synthesized.one("AWS::IAM::Role", "Digests/SchedulerRole")
    statements = _statements(synthesized, "Digests/SchedulerRole/DefaultPolicy")

    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert "ManagedPolicyArns" not in role["Properties"]
    assert {json.dumps(s["Resource"]): set(_as_list(s["Action"])) for s in statements} == {
        json.dumps(_arn(digest)): {"lambda:InvokeFunction"},  # the function itself: no version, no alias, no other
        json.dumps(_arn(dead_letters)): {"sqs:SendMessage"},  # an invocation it could not deliver
        json.dumps(_arn(queue_key)): {"kms:GenerateDataKey", "kms:Decrypt"},  # that queue's encryption
    }
    invokers = [
        name
        for name, policy in synthesized.resources("AWS::IAM::Policy").items()
        if "lambda:InvokeFunction" in _actions(list(policy["Properties"]["PolicyDocument"]["Statement"]))
    ]
    # the scheduler's role, and the api's, which hands a digest published on demand to it (below)
    assert sorted(name[: name.index("Role")] for name in invokers) == ["DigestsScheduler", "FunctionsApi"]


def test_a_digest_that_failed_after_its_retries_lands_in_the_alarmed_dead_letter_queue(
    synthesized: Synthesized,
) -> None:
    digest, _ = synthesized.one("AWS::Lambda::Function", "Functions/Digest")
    dead_letters, queue = synthesized.one("AWS::SQS::Queue", "Digests/DeadLetters")
    queue_key, _ = synthesized.one("AWS::KMS::Key", "InboundQueues/Key")
    topic, _ = synthesized.one("AWS::SNS::Topic", "Observability/AlarmTopic")
    (config,) = [
        c
        for c in synthesized.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": digest}
    ]

    assert config["Properties"]["FunctionName"] == {"Ref": digest}
    assert config["Properties"]["DestinationConfig"] == {"OnFailure": {"Destination": _arn(dead_letters)}}
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    assert queue["Properties"]["KmsMasterKeyId"] == _arn(queue_key)
    (alarm,) = [
        a["Properties"]
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letters, "QueueName"]}}]
    ]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 0
    assert alarm["AlarmActions"] == [{"Ref": topic}]


# ------------------------------------------------------------------ the digest function


def test_the_digest_function_reads_the_window_claims_it_once_archives_announces_and_mails(
    synthesized: Synthesized,
) -> None:
    from intake.digest.publish import CLAIM_SCOPE

    table, _ = synthesized.one("AWS::DynamoDB::Table", "TicketStore/Tickets")
    bucket, _ = synthesized.one("AWS::S3::Bucket", "RawArchive/Bucket")
    bus, _ = synthesized.one("AWS::Events::EventBus", "Events/Bus")
    _, function = synthesized.one("AWS::Lambda::Function", "Functions/Digest")
    statements = _function_statements(synthesized, "Digest")
    sender = synthesized.policy_file.policy.notifications.sender

    assert function["Properties"]["Handler"] == "intake.handlers.digest.handler"
    # reads: items by key and queries on the table, the by_day, open_by_due and open_by_wait indexes, no other index
    (reads,) = _with(statements, "dynamodb:Query")
    assert set(_as_list(reads["Action"])) == {"dynamodb:GetItem", "dynamodb:Query"}
    indexes = ("by_day", "open_by_due", "open_by_wait")
    assert json.dumps(reads["Resource"], sort_keys=True) == json.dumps(
        [_arn(table), *({"Fn::Join": ["", [_arn(table), f"/index/{index}"]]} for index in indexes)],
        sort_keys=True,
    )
    # writes: its own claim, and its release; the backlog counters' `complete` mark; nothing else
    (claims,) = _with(statements, "dynamodb:PutItem")
    assert set(_as_list(claims["Action"])) == {"dynamodb:PutItem", "dynamodb:DeleteItem"}
    assert claims["Resource"] == _arn(table)
    assert claims["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"TOKEN#{CLAIM_SCOPE}#*"]}}
    (counters,) = _with(statements, "dynamodb:UpdateItem")
    assert (_as_list(counters["Action"]), counters["Resource"]) == (["dynamodb:UpdateItem"], _arn(table))
    assert counters["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["BACKLOG#*"]}}
    assert {a for a in _actions(statements) if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
    }
    # the archive: PutObject under digests/ only
    (put,) = _with(statements, "s3:PutObject")
    assert _as_list(put["Resource"]) == [{"Fn::Join": ["", [_arn(bucket), f"/{DIGESTS_PREFIX}*"]]}]
    assert {a for a in _actions(statements) if a.startswith("s3:")} == {"s3:PutObject"}
    # DigestPublished on Intake's bus only
    (events,) = _with(statements, "events:PutEvents")
    assert _as_list(events["Action"]) == ["events:PutEvents"] and events["Resource"] == _arn(bus)
    # SES as the notifications sender only
    (send,) = _with(statements, "ses:SendRawEmail")
    # (and the configuration set it sends with, test_mail_feedback)
    identities = sorted(
        r["Fn::Join"][1][-1] for r in _as_list(send["Resource"]) if r["Fn::Join"][1][-2] != ":configuration-set/"
    )
    assert identities == sorted([f":identity/{sender}", f":identity/{sender.rpartition('@')[2]}"])
    assert not any(a.startswith(("secretsmanager:", "states:", "sqs:Receive")) for a in _actions(statements))


def test_the_digest_function_is_given_the_table_bucket_bus_and_links(synthesized: Synthesized) -> None:
    table, _ = synthesized.one("AWS::DynamoDB::Table", "TicketStore/Tickets")
    bucket, _ = synthesized.one("AWS::S3::Bucket", "RawArchive/Bucket")
    bus, _ = synthesized.one("AWS::Events::EventBus", "Events/Bus")

    variables = _environment(synthesized, "Digest")

    assert variables["INTAKE_TABLE_NAME"] == {"Ref": table}
    assert variables["INTAKE_BUCKET_NAME"] == {"Ref": bucket}
    assert variables["INTAKE_EVENT_BUS_NAME"] == {"Ref": bus}
    assert variables["INTAKE_CONFIG"] == "/var/task/intake.yaml"
    assert "INTAKE_PUBLIC_BASE_URL" in variables  # the ticket links in the digest


# ------------------------------------------------------------------ digests on demand (the api)


def _routes(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["RouteKey"]: r["Properties"] for r in synthesized.resources("AWS::ApiGatewayV2::Route").values()
    }


def test_agents_preview_and_publish_digests_through_the_api_behind_the_agent_authorizer(
    synthesized: Synthesized,
) -> None:
    api, _ = synthesized.one("AWS::Lambda::Function", "Functions/Api")
    integrations = {
        name: r["Properties"]["IntegrationUri"]
        for name, r in synthesized.resources("AWS::ApiGatewayV2::Integration").items()
    }
    routes = _routes(synthesized)

    for key in ("GET /digests/{team}/{period}", "POST /digests/{team}/{period}"):
        route = routes[key]
        # IAM as the session's policy sets no api.jwt (the JWT authorizer in its place: test_agent_auth)
        assert route["AuthorizationType"] == routes["GET /tickets"]["AuthorizationType"] == "AWS_IAM", key
        (integration,) = [part["Ref"] for part in route["Target"]["Fn::Join"][1] if isinstance(part, dict)]
        assert integrations[integration] == _arn(api), key


def _grants(statements: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(action, resource, condition) for each action on each resource: statements CDK merged, taken apart."""
    return {
        (action, json.dumps(resource, sort_keys=True), json.dumps(s.get("Condition"), sort_keys=True))
        for s in statements
        for action in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    }


def test_the_api_hands_a_digest_published_on_demand_to_the_digest_function(synthesized: Synthesized) -> None:
    digest, _ = synthesized.one("AWS::Lambda::Function", "Functions/Digest")
    api = _function_statements(synthesized, "Api")
    variables = _environment(synthesized, "Api")

    # it may invoke the digest function (asynchronously: intake.digest.requests), that function only, and knows it
    (invoke,) = _with(api, "lambda:InvokeFunction")
    assert _as_list(invoke["Action"]) == ["lambda:InvokeFunction"] and invoke["Resource"] == _arn(digest)
    assert variables["INTAKE_DIGEST_FUNCTION_NAME"] == {"Ref": digest}
    # and does none of the publishing itself: no claim on a window, no digests/ object, no event, no digest mail
    claims = [s for s in api if "TOKEN#digest#*" in json.dumps(s.get("Condition"))]
    assert claims == [] and "INTAKE_EVENT_BUS_NAME" not in variables
    assert not _with(api, "events:PutEvents")
    assert not any(f"/{DIGESTS_PREFIX}" in json.dumps(s["Resource"]) for s in _with(api, "s3:PutObject"))
    # the digest function has more time than the api's 10 s (and its retries and dead-letter queue, above)
    _, api_function = synthesized.one("AWS::Lambda::Function", "Functions/Api")
    _, digest_function = synthesized.one("AWS::Lambda::Function", "Functions/Digest")
    assert api_function["Properties"]["Timeout"] == 10 < digest_function["Properties"]["Timeout"]


# ------------------------------------------------------------------ Intake's event bus


def test_intakes_bus_exists_and_only_the_digests_and_notifier_put_events_on_it(synthesized: Synthesized) -> None:
    bus, resource = synthesized.one("AWS::Events::EventBus", "Events/Bus")

    assert resource["Properties"]["Name"] == "IntakeDev-events"
    putters = {}
    for name, policy in synthesized.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if any(a.startswith("events:") for a in _as_list(statement["Action"])):
                putters[name[: name.index("Role")]] = (_as_list(statement["Action"]), statement["Resource"])
    assert putters == {
        "FunctionsDigest": (["events:PutEvents"], _arn(bus)),  # DigestPublished (scheduled, and on demand)
        "FunctionsNotifier": (["events:PutEvents"], _arn(bus)),  # SurveyRequested
    }
    assert _environment(synthesized, "Notifier")["INTAKE_EVENT_BUS_NAME"] == {"Ref": bus}
    assert synthesized.template["Outputs"]["EventBusName"]["Value"] == {"Ref": bus}


# ------------------------------------------------------------------ deliver-later


def test_the_deliver_later_machine_is_the_asl_file_with_the_notifications_queue(synthesized: Synthesized) -> None:
    from tests.infra.test_sla_timers import vended_log_group_name

    queue, _ = synthesized.one("AWS::SQS::Queue", "InboundQueues/Notifications")
    role, _ = synthesized.one("AWS::IAM::Role", "DeliverLater/Role")
    logs, log_group = synthesized.one("AWS::Logs::LogGroup", "DeliverLater/Logs")
    _, machine = synthesized.one("AWS::StepFunctions::StateMachine", "DeliverLater/StateMachine")
    props = machine["Properties"]
    staged = synthesized.outdir / f"asset.{props['DefinitionS3Location']['Key']}"
    source = LATER_DEFINITION.read_text(encoding="utf-8")

    assert "StateMachineName" not in props  # CloudFormation names it (test_stack_template: no fixed names)
    assert props["StateMachineType"] == "STANDARD"
    assert props["RoleArn"] == _arn(role)
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["Destinations"] == [{"CloudWatchLogsLogGroup": {"LogGroupArn": _arn(logs)}}]
    assert vended_log_group_name(log_group) == f"/aws/vendedlogs/states/IntakeDev-{LATER_MACHINE}-<stack uuid>"
    assert staged.read_text(encoding="utf-8") == source
    assert props["DefinitionSubstitutions"] == {"NotificationsQueueUrl": {"Ref": queue}}
    assert set(VARIABLE.findall(source)) == set(props["DefinitionSubstitutions"])
    tasks = [state for state in json.loads(source)["States"].values() if state["Type"] == "Task"]
    assert [task["Resource"] for task in tasks] == ["arn:aws:states:::sqs:sendMessage"]


def test_the_deliver_later_role_may_only_send_to_the_notifications_queue(synthesized: Synthesized) -> None:
    from tests.infra.test_sla_timers import SERVICE_ACTIONS

    queue, _ = synthesized.one("AWS::SQS::Queue", f"InboundQueues/{NOTIFICATIONS_QUEUE.name.capitalize()}")
    queue_key, _ = synthesized.one("AWS::KMS::Key", "InboundQueues/Key")
    _, role = synthesized.one("AWS::IAM::Role", "DeliverLater/Role")
    statements = _statements(synthesized, "DeliverLater/Role/DefaultPolicy")

    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "states.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]
    assert {json.dumps(s["Resource"]): set(_as_list(s["Action"])) for s in statements} == {
        json.dumps(_arn(queue)): {"sqs:SendMessage"},
        json.dumps(_arn(queue_key)): {"kms:Decrypt", "kms:GenerateDataKey"},
        json.dumps("*"): SERVICE_ACTIONS,  # CDK's logging and tracing (acknowledged, test_checks)
    }


def _starts(synthesized: Synthesized, function: str, machine: str) -> list[dict[str, Any]]:
    return [
        s
        for s in _with(_function_statements(synthesized, function), "states:StartExecution")
        if {"Ref": machine} in _as_list(s["Resource"])
    ]


def test_only_the_api_which_resolves_tickets_may_start_deliveries(synthesized: Synthesized) -> None:
    later, _ = synthesized.one("AWS::StepFunctions::StateMachine", "DeliverLater/StateMachine")

    # an agent's resolution (Tracker.act, POST /tickets/{ticket_id}/events) is what schedules a survey
    assert _environment(synthesized, "Api")["INTAKE_LATER_MACHINE_ARN"] == {"Ref": later}
    (start,) = _starts(synthesized, "Api", later)
    assert _as_list(start["Action"]) == ["states:StartExecution"]
    # ingest and email start SLA timers (test_sla_timers), never a delivery; the others nothing at all
    for function in ("Ingest", "Email", "Receiver", "Notifier", "Digest"):
        assert "INTAKE_LATER_MACHINE_ARN" not in _environment(synthesized, function), function
        assert _starts(synthesized, function, later) == [], function
    for function in ("Receiver", "Notifier", "Digest"):
        assert not any(a.startswith("states:") for a in _actions(_function_statements(synthesized, function)))


def test_failed_deliveries_alarm_and_the_dashboard_shows_digests_and_surveys(synthesized: Synthesized) -> None:
    from tests.infra.test_sla_timers import _dashboard, _metrics

    later, _ = synthesized.one("AWS::StepFunctions::StateMachine", "DeliverLater/StateMachine")
    alarms = [
        a["Properties"]["MetricName"]
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions") == [{"Name": "StateMachineArn", "Value": {"Ref": later}}]
    ]
    widgets = {w["properties"].get("title"): w for w in _dashboard(synthesized)["widgets"]}

    assert sorted(alarms) == ["ExecutionsFailed", "ExecutionsTimedOut"]
    counted = {m[1] for m in _metrics(widgets["Digests and satisfaction surveys"])}
    assert counted >= {"DigestSent", "SurveySent", "SurveyAnswered"}
    assert {m[1] for m in _metrics(widgets["Deliver-later executions"])} >= {"ExecutionsStarted", "ExecutionsFailed"}
    assert "Digest dead letters" in widgets


# ------------------------------------------------------------------ survey links and answers


def test_survey_links_are_open_receiver_routes_because_the_token_is_signed(synthesized: Synthesized) -> None:
    receiver, _ = synthesized.one("AWS::Lambda::Function", "Functions/Receiver")
    integrations = {
        name: r["Properties"]["IntegrationUri"]
        for name, r in synthesized.resources("AWS::ApiGatewayV2::Integration").items()
    }
    routes = {
        r["Properties"]["RouteKey"]: (r["Properties"], r.get("Metadata", {}))
        for r in synthesized.resources("AWS::ApiGatewayV2::Route").values()
    }

    for key in ("GET /csat/{token}", "POST /csat/{token}"):
        route, metadata = routes[key]
        assert route["AuthorizationType"] == "NONE", key
        (integration,) = [part["Ref"] for part in route["Target"]["Fn::Join"][1] if isinstance(part, dict)]
        assert integrations[integration] == _arn(receiver), key
        (reason,) = [r["reason"] for r in metadata["cdk_nag"]["rules_to_suppress"] if r["id"] == "AwsSolutions-APIG4"]
        assert "HMAC" in reason and "expir" in reason, key


def test_the_receiver_records_answers_apart_from_tickets_and_reads_two_attributes_of_them(
    synthesized: Synthesized,
) -> None:
    table, _ = synthesized.one("AWS::DynamoDB::Table", "TicketStore/Tickets")
    statements = _function_statements(synthesized, "Receiver")
    items = [s for s in statements if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))]

    assert all(s["Resource"] == _arn(table) for s in items)  # no index, no Query, no DeleteItem
    writes = {
        key
        for s in items
        if {"dynamodb:PutItem", "dynamodb:UpdateItem"} & set(_as_list(s["Action"]))
        for key in s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    }
    assert "TICKET#*" not in writes and {"CSAT#*", "CSATDAY#*"} <= writes  # and Mailgun's tokens (test_least_privilege)
    (tickets,) = [s for s in items if s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["TICKET#*"]]
    assert _as_list(tickets["Action"]) == ["dynamodb:GetItem"]
    assert tickets["Condition"]["ForAllValues:StringEquals"] == {
        "dynamodb:Attributes": ["PK", "SK", "team", "reference"]
    }
    assert tickets["Condition"]["StringEqualsIfExists"] == {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}
    assert _environment(synthesized, "Receiver")["INTAKE_TABLE_NAME"] == {"Ref": table}


def test_the_survey_secret_is_a_secret_of_its_own_when_a_team_asks_for_surveys(synthesized: Synthesized) -> None:
    from infra.constructs.secrets import secret_keys
    from intake.satisfaction import SECRET_NAME

    policy = synthesized.policy_file.policy
    _, webhooks = synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/Secret")
    survey_id, survey = synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/SurveyLinks")

    assert SECRET_NAME == "CSAT_SECRET"
    assert (
        SECRET_NAME in survey["Properties"]["Description"] and SECRET_NAME not in webhooks["Properties"]["Description"]
    )
    assert SECRET_NAME not in secret_keys(policy)
    for function in ("Notifier", "Receiver"):  # signs the links; checks them
        assert _environment(synthesized, function)["INTAKE_SURVEY_SECRET_ARN"] == {"Ref": survey_id}, function
    assert "INTAKE_SECRETS_ARN" not in _environment(synthesized, "Notifier")
