"""Email in and out, as the synthesized template allows it: acknowledgments from the team's address, the MIME each
email path reads back, and the release of a quarantined email through the api (issue 7)."""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from infra.constructs.raw_archive import PROVIDER_MAIL, SES_MAIL
from intake.inbox import Inbox, QueuedItem
from intake.resources import ARCHIVE
from tests.infra.synthesis import Synthesized

RECEIPT = "01JQ0000000000000000000000"  # a ULID
EMAIL_TICKET_MAKERS = ("Ingest", "Email", "Api")  # SendGrid/Mailgun, SES receiving, a released quarantined email


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(synthesized: Synthesized, function: str) -> list[dict[str, Any]]:
    _, policy = synthesized.one("AWS::IAM::Policy", f"Functions/{function}Role/DefaultPolicy")
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in _as_list(s["Action"])]


def _object_patterns(synthesized: Synthesized, statements: list[dict[str, Any]], action: str) -> set[str]:
    """The archive key patterns `action` is granted on (every resource must be an object ARN of the archive)."""
    bucket, _ = synthesized.one("AWS::S3::Bucket", "RawArchive/Bucket")
    patterns = set()
    for statement in _with(statements, action):
        assert _as_list(statement["Action"]) == [action], statement
        for resource in _as_list(statement["Resource"]):
            head, suffix = resource["Fn::Join"][1]
            assert head == {"Fn::GetAtt": [bucket, "Arn"]}
            patterns.add(suffix.removeprefix("/"))
    return patterns


def _identities(statement: dict[str, Any]) -> list[str]:
    """`support@example.com` from `arn:<partition>:ses:<region>:<account>:identity/support@example.com`; the
    stack's configuration set, which every sender also sends with (test_mail_feedback), is not an identity."""
    found = []
    for resource in _as_list(statement["Resource"]):
        parts = resource["Fn::Join"][1]
        if parts[-2] == ":configuration-set/":
            continue
        assert parts[2] == ":ses:" and parts[-1].startswith(":identity/"), resource
        found.append(parts[-1].removeprefix(":identity/"))
    return sorted(found)


# ------------------------------------------------------------------ acknowledgments


def test_functions_that_turn_email_into_tickets_acknowledge_only_as_the_team_addresses(
    synthesized: Synthesized,
) -> None:
    teams = synthesized.policy_file.policy.teams.values()
    senders = {team.email for team in teams if team.email and team.acknowledgment.enabled}
    assert senders  # the example policy acknowledges: support@example.com
    expected = sorted(senders | {sender.rpartition("@")[2] for sender in senders})

    for function in EMAIL_TICKET_MAKERS:
        (send,) = _with(_statements(synthesized, function), "ses:SendRawEmail")
        assert _as_list(send["Action"]) == ["ses:SendRawEmail"], function
        assert "Condition" not in send
        # (the api no longer mails a digest published on demand: the digest function does, test_digests)
        assert _identities(send) == expected, function
    actions = {a for s in _statements(synthesized, "Receiver") for a in _as_list(s["Action"])}
    assert not any(a.startswith("ses:") for a in actions)


def test_the_notifier_sends_only_as_the_notifications_sender_and_the_teams_asking_surveys(
    synthesized: Synthesized,
) -> None:
    policy = synthesized.policy_file.policy
    senders = {policy.notifications.sender} | {
        t.email for t in policy.teams.values() if t.email and t.satisfaction.enabled
    }

    (send,) = _with(_statements(synthesized, "Notifier"), "ses:SendRawEmail")
    assert _identities(send) == sorted(senders | {sender.rpartition("@")[2] for sender in senders})


# ------------------------------------------------------------------ reading received mail back


def test_each_email_path_reads_only_the_mime_it_parses(synthesized: Synthesized) -> None:
    # SES receiving's MIME (raw/ses/) for the email function; the receiver's .eml copies of SendGrid and Mailgun
    # mail for ingest; both for the api, which releases quarantined email from either path. No webhook envelope.
    assert (SES_MAIL, PROVIDER_MAIL) == ("raw/ses/*", "raw/*.eml")
    readers = {
        "Email": {SES_MAIL},
        "Ingest": {PROVIDER_MAIL},
        "Api": {SES_MAIL, PROVIDER_MAIL},
    }
    for function, patterns in readers.items():
        assert _object_patterns(synthesized, _statements(synthesized, function), "s3:GetObject") == patterns, function
    for function in ("Receiver", "Notifier"):
        assert not _with(_statements(synthesized, function), "s3:GetObject"), function


def test_the_mime_the_receiver_stores_for_providers_is_what_ingest_may_read(synthesized: Synthesized) -> None:
    from intake.reception import receive_email

    # Given the receiver storing a SendGrid and a Mailgun email (as `receive_sendgrid`/`receive_mailgun` do)
    inbox = _RecordingInbox()
    at = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    arrivals = [
        receive_email(provider, b"From: a@example.org\r\n\r\nhi", inbox=inbox, received_at=at, receipt_id=RECEIPT)
        for provider in ("sendgrid", "mailgun")
    ]

    # Then each key is one ingest's grant covers, and no webhook envelope key is
    assert [a.raw_archive_key for a in arrivals] == inbox.archived
    for key in inbox.archived:
        assert fnmatchcase(key, PROVIDER_MAIL), key
    assert not fnmatchcase(f"{ARCHIVE.raw_prefix}2026/03/29/sendgrid/{RECEIPT}", PROVIDER_MAIL)
    assert _object_patterns(synthesized, _statements(synthesized, "Ingest"), "s3:GetObject") == {PROVIDER_MAIL}


class _RecordingInbox(Inbox):
    def __init__(self) -> None:
        self.archived: list[str] = []

    def archive_email(self, key: str, raw: bytes) -> None:
        self.archived.append(key)

    def enqueue(self, item: QueuedItem) -> None:
        pass


# ------------------------------------------------------------------ releasing a quarantined email


def test_the_api_may_run_the_email_ingest_again_for_a_released_email(synthesized: Synthesized) -> None:
    bucket, _ = synthesized.one("AWS::S3::Bucket", "RawArchive/Bucket")
    archive_key, _ = synthesized.one("AWS::KMS::Key", "RawArchive/Key")
    _, api = synthesized.one("AWS::Lambda::Function", "Functions/Api")
    statements = _statements(synthesized, "Api")

    # the archive it reads the MIME from and stores the attachments in
    assert api["Properties"]["Environment"]["Variables"]["INTAKE_BUCKET_NAME"] == {"Ref": bucket}
    # (a digest published on demand is archived by the digest function, test_digests)
    assert _object_patterns(synthesized, statements, "s3:PutObject") == {f"{ARCHIVE.attachments_prefix}*"}
    key_actions = {
        a
        for s in statements
        if {"Fn::GetAtt": [archive_key, "Arn"]} in _as_list(s["Resource"])
        for a in _as_list(s["Action"])
    }
    assert key_actions == {"kms:Decrypt", "kms:GenerateDataKey"}
    actions = {a for s in statements for a in _as_list(s["Action"])}
    # (its sqs: actions are /failures' dead letters, test_stack_template)
    assert not any(a.startswith(("s3:Delete", "s3:List", "secretsmanager:")) for a in actions)


def test_quarantine_and_sla_explanations_are_api_routes_behind_iam(synthesized: Synthesized) -> None:
    api_function, _ = synthesized.one("AWS::Lambda::Function", "Functions/Api")
    integrations = {
        name: r["Properties"]["IntegrationUri"]
        for name, r in synthesized.resources("AWS::ApiGatewayV2::Integration").items()
    }
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"] for r in synthesized.resources("AWS::ApiGatewayV2::Route").values()
    }

    for key in ("GET /quarantine", "POST /quarantine/{quarantine_id}/release", "GET /tickets/{ticket_id}/sla"):
        route = routes[key]
        assert route["AuthorizationType"] == "AWS_IAM", key
        (integration,) = [part["Ref"] for part in route["Target"]["Fn::Join"][1] if isinstance(part, dict)]
        assert integrations[integration] == {"Fn::GetAtt": [api_function, "Arn"]}, key


def test_the_console_may_read_customers_files_and_nothing_else_of_the_archive() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Template

    from infra.constructs.raw_archive import RawArchive
    from infra.stage import stage_named
    from tests.infra.synthesis import cdk_context

    # Given the api function's role, as the stack grants it when the policy file routes the console (api.jwt)
    stack = Stack(App(context=cdk_context()), "Console")
    archive = RawArchive(stack, "RawArchive", stage=stage_named("dev"))
    role = iam.Role(stack, "ApiRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    archive.grant_read_attachments(role)
    [policy] = Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]

    # Then it may read attachments/ (the pictures and files the console shows) and decrypt them, nothing more
    (read,) = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert read["Resource"]["Fn::Join"][1][-1] == f"/{ARCHIVE.attachments_prefix}*"
    assert {a for s in statements for a in _as_list(s["Action"])} == {"s3:GetObject", "kms:Decrypt"}
