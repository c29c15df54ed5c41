"""SES bounces and complaints come back and stop further mail (issue 15): the configuration set every sender uses,
its EventBridge destination, the rule that hands them to the feedback function, and the alarms on the account's
bounce and complaint rates."""

from __future__ import annotations

from typing import Any

from tests.infra.synthesis import Synthesized

SENDERS = ("Ingest", "Email", "Api", "Notifier", "Digest")  # acknowledgments, notices and surveys, digests


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_sender_sends_with_the_configuration_set(synthesized: Synthesized) -> None:
    configuration_set, _ = synthesized.one("AWS::SES::ConfigurationSet", "MailFeedback/ConfigurationSet")

    for function in SENDERS:
        _, resource = synthesized.one("AWS::Lambda::Function", f"Functions/{function}")
        variables = resource["Properties"]["Environment"]["Variables"]
        assert variables["INTAKE_SES_CONFIGURATION_SET"] == {"Ref": configuration_set}, function
        _, policy = synthesized.one("AWS::IAM::Policy", f"Functions/{function}Role/DefaultPolicy")
        (send,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "ses:SendRawEmail"]
        sets = [r for r in _as_list(send["Resource"]) if r["Fn::Join"][1][-2] == ":configuration-set/"]
        assert [r["Fn::Join"][1][-1] for r in sets] == [{"Ref": configuration_set}], function
    for function in ("Receiver", "Feedback"):
        _, resource = synthesized.one("AWS::Lambda::Function", f"Functions/{function}")
        assert "INTAKE_SES_CONFIGURATION_SET" not in resource["Properties"]["Environment"]["Variables"]


def test_bounces_and_complaints_go_to_eventbridge_and_only_this_stacks_reach_the_feedback_function(
    synthesized: Synthesized,
) -> None:
    from infra.constructs.mail_feedback import DETAIL_TYPES

    configuration_set, resource = synthesized.one("AWS::SES::ConfigurationSet", "MailFeedback/ConfigurationSet")
    _, destination = synthesized.one(
        "AWS::SES::ConfigurationSetEventDestination", "MailFeedback/ConfigurationSet/ToEventBridge"
    )
    _, rule = synthesized.one("AWS::Events::Rule", "MailFeedback/Rule")
    feedback, function = synthesized.one("AWS::Lambda::Function", "Functions/Feedback")

    assert "Name" not in resource["Properties"]  # CloudFormation names it
    props = destination["Properties"]
    assert props["ConfigurationSetName"] == {"Ref": configuration_set}
    target = props["EventDestination"]
    assert target["Enabled"] is True and sorted(target["MatchingEventTypes"]) == ["bounce", "complaint", "delivery"]
    assert ":event-bus/default" in str(target["EventBridgeDestination"]["EventBusArn"])
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.ses"] and pattern["detail-type"] == list(DETAIL_TYPES)
    assert pattern["detail"] == {"mail": {"tags": {"ses:configuration-set": [{"Ref": configuration_set}]}}}
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Fn::GetAtt": [feedback, "Arn"]}]
    assert function["Properties"]["Handler"] == "intake.handlers.feedback.handler"


def test_the_feedback_function_records_suppressed_addresses_and_reply_states_and_dead_letters_what_it_failed_on(
    synthesized: Synthesized,
) -> None:
    from tests.infra.test_least_privilege import _table_grants

    feedback, _ = synthesized.one("AWS::Lambda::Function", "Functions/Feedback")
    dead_letters, queue = synthesized.one("AWS::SQS::Queue", "MailFeedback/DeadLetters")
    queue_key, _ = synthesized.one("AWS::KMS::Key", "InboundQueues/Key")
    (config,) = [
        c
        for c in synthesized.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": feedback}
    ]

    assert _table_grants(synthesized, "Feedback") == {
        ("dynamodb:PutItem", "SUPPRESSED#*", "null"),
        ("dynamodb:GetItem", "OUT#email#*", "null"),  # the email reply a bounce or a delivery is about
        ("dynamodb:UpdateItem", "TICKET#*", "null"),  # its state
    }
    assert config["Properties"]["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [dead_letters, "Arn"]}}
    }
    assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [queue_key, "Arn"]}


def test_bounce_and_complaint_rates_alarm_at_ses_review_thresholds(synthesized: Synthesized) -> None:
    topic, _ = synthesized.one("AWS::SNS::Topic", "Observability/AlarmTopic")
    rule, _ = synthesized.one("AWS::Events::Rule", "MailFeedback/Rule")
    dead_letters, _ = synthesized.one("AWS::SQS::Queue", "MailFeedback/DeadLetters")
    alarms = {
        a["Metadata"]["aws:cdk:path"].removesuffix("/Resource").rsplit("/", 1)[-1]: a["Properties"]
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if "/MailFeedback/" in a["Metadata"]["aws:cdk:path"]
    }

    assert (alarms["BounceRate"]["Namespace"], alarms["BounceRate"]["MetricName"]) == (
        "AWS/SES",
        "Reputation.BounceRate",
    )
    assert alarms["BounceRate"]["Threshold"] == 0.05
    assert alarms["ComplaintRate"]["MetricName"] == "Reputation.ComplaintRate"
    assert alarms["ComplaintRate"]["Threshold"] == 0.001
    assert alarms["FeedbackUndelivered"]["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule}}]
    assert alarms["FeedbackDeadLetters"]["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letters, "QueueName"]}}
    ]
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic}] and alarm["ComparisonOperator"] == "GreaterThanThreshold"
