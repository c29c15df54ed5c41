"""cdk-nag (AWS Solutions) finds nothing unacknowledged, every acknowledgment says why; cfn-lint: no errors."""

from __future__ import annotations

import json
from typing import Any

from intake.channels import registry
from tests.infra.synthesis import Synthesized

# Every acknowledgment, by rule, and where: a new one is a decision to review, so it changes this list.
EXPECTED_ACKNOWLEDGMENTS = {
    ("AwsSolutions-APIG4", "WebhookApi/HttpApi/GET--healthz"),
    # every channel's webhook routes are open at API Gateway, each for the reason its channel gives
    *(
        ("AwsSolutions-APIG4", f"WebhookApi/HttpApi/{route.method}{route.path.replace('/', '--')}")
        for _, route in registry.routes()
    ),
    ("AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/attachments/*]", "Functions/IngestRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "Functions/IngestRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Functions/IngestRole/DefaultPolicy"),
    (
        "AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/attachments/*]",
        "Functions/ReceiverRole/DefaultPolicy",
    ),
    # the receiver writes each provider's raw requests under their date and provider only (issue 15); never raw/ses/
    *(
        (
            f"AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/raw/????/??/??/{provider}/*]",
            "Functions/ReceiverRole/DefaultPolicy",
        )
        for provider in (channel.name for channel in registry.channels() if channel.routes)
    ),
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "Functions/EmailRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Functions/EmailRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/attachments/*]", "Functions/EmailRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/raw/ses/*]", "Functions/EmailRole/DefaultPolicy"),
    ("AwsSolutions-L1", "Functions/Email"),
    (
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "BucketNotificationsHandler050a0587b7544547bf325f094a3db834/Role",
    ),
    ("AwsSolutions-L1", "Functions/Api"),
    ("AwsSolutions-L1", "Functions/Ingest"),
    ("AwsSolutions-L1", "Functions/Receiver"),
    ("AwsSolutions-S1", "RawArchive/AccessLogs"),
    ("AwsSolutions-L1", "Functions/Notifier"),
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "Functions/NotifierRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Functions/NotifierRole/DefaultPolicy"),
    # the SLA timer (issue 8): the role's table-key writes, CDK's logging/tracing grants, executions by pattern
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "SlaTimers/Role/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "SlaTimers/Role/DefaultPolicy"),
    ("AwsSolutions-IAM5[Resource::*]", "SlaTimers/Role/DefaultPolicy"),
    *(
        (
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
            "<SlaTimersStateMachineB0640E90.Name>:*]",
            f"Functions/{function}Role/DefaultPolicy",
        )
        for function in ("Ingest", "Email", "Api")
    ),
    ("AwsSolutions-SMG4", "ProviderSecrets/Secret"),
    # email in and out (issue 7): ingest reads the receiver's .eml copies of SendGrid/Mailgun mail; the api writes
    # tickets (the table key's write actions), reads either path's MIME and stores attachments to release quarantine
    ("AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/raw/*.eml]", "Functions/IngestRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "Functions/ApiRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Functions/ApiRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/raw/ses/*]", "Functions/ApiRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/raw/*.eml]", "Functions/ApiRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/attachments/*]", "Functions/ApiRole/DefaultPolicy"),
    # digests and satisfaction (issue 9): customers answer survey links without credentials (the token is signed
    # and expires); the receiver writes the answer (the table key's write actions); the digest function claims its
    # window (the same), archives under digests/, runs on the one runtime; CDK's logging/tracing grants on the
    # deliver-later machine; the digests' dead-letter queue is fed by Scheduler and a Lambda destination
    ("AwsSolutions-APIG4", "WebhookApi/HttpApi/GET--csat--{token}"),
    ("AwsSolutions-APIG4", "WebhookApi/HttpApi/POST--csat--{token}"),
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "Functions/ReceiverRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Functions/ReceiverRole/DefaultPolicy"),
    ("AwsSolutions-L1", "Functions/Digest"),
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "Functions/DigestRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Functions/DigestRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/digests/*]", "Functions/DigestRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Resource::*]", "DeliverLater/Role/DefaultPolicy"),
    ("AwsSolutions-SQS3", "Digests/DeadLetters"),
    # issue 15: every function traces (X-Ray's actions name no resource); the feedback function records suppressed
    # addresses (the table key's write actions), runs on the one runtime, and dead-letters what it failed on; the
    # survey link secret and the WhatsApp token are secrets of their own
    *(
        ("AwsSolutions-IAM5[Resource::*]", f"Functions/{function}Role/DefaultPolicy")
        for function in ("Receiver", "Ingest", "Email", "Api", "Notifier", "Digest", "Feedback", "Sender")
    ),
    # replies (issue 18): the sender runs on the one runtime, writes the reply and the response (the table key's write
    # actions), links attachments/ for the providers, stops the response clocks' executions (by pattern); its
    # Twilio account and API key are a secret of their own
    ("AwsSolutions-L1", "Functions/Sender"),
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "Functions/SenderRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Functions/SenderRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Resource::<RawArchiveBucket3CBB4637.Arn>/attachments/*]", "Functions/SenderRole/DefaultPolicy"),
    (
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
        "<SlaTimersStateMachineB0640E90.Name>:*]",
        "Functions/SenderRole/DefaultPolicy",
    ),
    ("AwsSolutions-L1", "Functions/Feedback"),
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "Functions/FeedbackRole/DefaultPolicy"),
    ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Functions/FeedbackRole/DefaultPolicy"),
    ("AwsSolutions-SQS3", "MailFeedback/DeadLetters"),
    ("AwsSolutions-SMG4", "ProviderSecrets/SurveyLinks"),
    # each channel's API credentials (Channel.api_secrets): shared with the provider, rotated there first
    *(
        ("AwsSolutions-SMG4", f"ProviderSecrets/{channel.api_secret_id}")
        for channel in registry.channels()
        if channel.api_secrets
    ),
}


def _acknowledgments(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for resource in template["Resources"].values():
        metadata = resource.get("Metadata", {})
        path = metadata.get("aws:cdk:path", "").split("/", 1)[-1].removesuffix("/Resource")
        for rule in metadata.get("cdk_nag", {}).get("rules_to_suppress", []):
            found.append((rule["id"], path, rule["reason"]))
    return found


def test_cdk_nag_reports_no_finding(synthesized: Synthesized) -> None:
    # A finding would have failed the synth itself; the report says so explicitly too.
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())

    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []


def test_every_acknowledgment_is_expected_and_gives_a_reason(synthesized: Synthesized) -> None:
    acknowledgments = _acknowledgments(synthesized.template)

    assert {(rule, path) for rule, path, _ in acknowledgments} == EXPECTED_ACKNOWLEDGMENTS
    for rule, path, reason in acknowledgments:
        assert len(reason) >= 60, f"{rule} on {path}: say why, specifically"


def test_cfn_lint_finds_no_error(synthesized: Synthesized) -> None:
    from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]

    matches = lint(json.dumps(synthesized.template), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))

    errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []
