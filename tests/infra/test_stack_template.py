"""What the synthesized template promises: runtimes, least privilege, encryption, DLQs, outputs."""

from __future__ import annotations

import json
from typing import Any

from infra.naming import pascal_case
from intake.resources import INBOUND_QUEUE, QUEUES, TABLE
from tests.infra.synthesis import ALERT_EMAILS, Synthesized

INBOUND = pascal_case(INBOUND_QUEUE.name)

# Actions that read or write customers' data, or the keys protecting it: never on Resource "*".
DATA_SERVICES = ("dynamodb:", "s3:", "sqs:", "kms:", "secretsmanager:", "sns:")


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_policy(synthesized: Synthesized, function: str) -> list[dict[str, Any]]:
    _, policy = synthesized.one("AWS::IAM::Policy", f"Functions/{function}Role/DefaultPolicy")
    return _statements(policy)


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for s in statements for action in _as_list(s["Action"])}


def _refs(value: Any) -> str:
    """A resource reference, flattened to text, to see which logical ids and suffixes it names."""
    return json.dumps(value, sort_keys=True)


# ------------------------------------------------------------------ functions


OUR_FUNCTIONS = 8  # receiver, ingest, email, api, notifier, digest, feedback, sender


def _ours(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Intake's functions (not CDK's own deploy-time custom-resource handler)."""
    return {
        name: function
        for name, function in synthesized.resources("AWS::Lambda::Function").items()
        if "/Functions/" in function.get("Metadata", {}).get("aws:cdk:path", "")
    }


def test_every_function_runs_python_3_13_on_arm64_with_the_one_layer(synthesized: Synthesized) -> None:
    from infra import lambda_platform

    functions = _ours(synthesized)
    (layer_id,) = synthesized.resources("AWS::Lambda::LayerVersion")

    assert len(functions) == OUR_FUNCTIONS
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == lambda_platform.RUNTIME.name == "python3.13"
        assert props["Architectures"] == [lambda_platform.ARCHITECTURE.name] == ["arm64"]
        assert props["Layers"] == [{"Ref": layer_id}]
    synthesized.assertions.has_resource_properties(
        "AWS::Lambda::LayerVersion", {"CompatibleRuntimes": ["python3.13"], "CompatibleArchitectures": ["arm64"]}
    )


def test_each_function_has_a_role_of_its_own(synthesized: Synthesized) -> None:
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in _ours(synthesized).values()]

    assert len(set(roles)) == OUR_FUNCTIONS
    for name in roles:
        assert "ManagedPolicyArns" not in synthesized.template["Resources"][name]["Properties"]


def test_functions_are_configured_for_powertools_and_find_the_policy_file(synthesized: Synthesized) -> None:
    for function in _ours(synthesized).values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == "intake"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Intake"
        assert variables["POWERTOOLS_LOG_LEVEL"] == "DEBUG"  # dev; prod says INFO
        assert variables["INTAKE_CONFIG"] == "/var/task/intake.yaml"


def test_each_function_is_given_only_the_settings_it_reads(synthesized: Synthesized) -> None:
    from intake.config import ENV_PREFIX, Settings

    common = {"CONFIG", "PUBLIC_BASE_URL"}  # the policy file; links in what it answers or sends
    mail = {"SES_CONFIGURATION_SET"}  # what sends bounces and complaints back (test_mail_feedback)
    expected = {
        # the table: survey answers (/csat/{token}), Mailgun's tokens; the webhook secrets and the survey link secret
        "Receiver": common | {"BUCKET_NAME", "INBOUND_QUEUE_URL", "SECRETS_ARN", "SURVEY_SECRET_ARN", "TABLE_NAME"},
        # the SLA timers they start; ingest: the channel API credentials its worker steps read
        "Ingest": common | mail | {"TABLE_NAME", "BUCKET_NAME", "CHANNEL_SECRETS", "STATE_MACHINE_ARN"},
        "Email": common | mail | {"TABLE_NAME", "BUCKET_NAME", "STATE_MACHINE_ARN"},
        # the SLA timers; the deliver-later machine (a resolution's survey); the digest function (a digest published
        # on demand); and /failures: each queue and its dead-letter queue
        "Api": common
        | mail
        | {"TABLE_NAME", "BUCKET_NAME", "STATE_MACHINE_ARN", "LATER_MACHINE_ARN", "DIGEST_FUNCTION_NAME"}
        | {f"{spec.name.upper()}_{kind}_URL" for spec in QUEUES for kind in ("QUEUE", "DLQ")},
        # SurveyRequested on the bus; CSAT_SECRET alone, as the tested policy asks for surveys
        "Notifier": common | mail | {"TABLE_NAME", "EVENT_BUS_NAME", "SURVEY_SECRET_ARN"},
        "Digest": common | mail | {"TABLE_NAME", "BUCKET_NAME", "EVENT_BUS_NAME"},
        "Feedback": common | {"TABLE_NAME"},
    }

    for function, names in expected.items():
        _, resource = synthesized.one("AWS::Lambda::Function", f"Functions/{function}")
        variables = resource["Properties"]["Environment"]["Variables"]
        ours = {name.removeprefix(ENV_PREFIX) for name in variables if name.startswith(ENV_PREFIX)}
        assert ours == names, function
        assert {name.lower() for name in ours} <= set(Settings.model_fields), function


def test_ingest_consumes_inbound_reporting_partial_batch_failures(synthesized: Synthesized) -> None:
    inbound, _ = synthesized.one("AWS::SQS::Queue", f"InboundQueues/{INBOUND}")
    ingest, function = synthesized.one("AWS::Lambda::Function", "Functions/Ingest")
    (mapping,) = [
        m
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": ingest}
    ]

    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [inbound, "Arn"]}
    assert mapping["Properties"]["FunctionName"] == {"Ref": ingest}
    assert function["Properties"]["Timeout"] * 6 <= INBOUND_QUEUE.visibility_timeout_s


# ------------------------------------------------------------------ least privilege


def test_no_data_action_is_granted_on_every_resource(synthesized: Synthesized) -> None:
    for name, policy in synthesized.resources("AWS::IAM::Policy").items():
        for statement in _statements(policy):
            data_actions = [a for a in _as_list(statement["Action"]) if a.startswith(DATA_SERVICES)]
            assert not data_actions or "*" not in _as_list(statement["Resource"]), (name, statement)


def test_the_receiver_may_only_put_its_own_archive_objects_send_inbound_read_its_secrets_and_record_answers(
    synthesized: Synthesized,
) -> None:
    from infra.constructs.functions import WEBHOOK_PROVIDERS

    statements = _role_policy(synthesized, "Receiver")
    bucket, _ = synthesized.one("AWS::S3::Bucket", "RawArchive/Bucket")
    inbound, _ = synthesized.one("AWS::SQS::Queue", f"InboundQueues/{INBOUND}")
    webhooks, _ = synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/Secret")
    survey_links, _ = synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/SurveyLinks")

    assert _actions(statements) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "s3:PutObject",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "sqs:SendMessage",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        # survey answers (/csat/{token}) and Mailgun's tokens, item by item (test_least_privilege), under the table key
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
    }
    (put,) = [s for s in statements if s["Action"] == "s3:PutObject" and s["Effect"] == "Allow"]
    patterns = set()
    for resource in put["Resource"]:
        head, suffix = resource["Fn::Join"][1]
        assert head == {"Fn::GetAtt": [bucket, "Arn"]}
        patterns.add(suffix)
    assert patterns == {f"/raw/????/??/??/{provider}/*" for provider in WEBHOOK_PROVIDERS} | {"/attachments/*"}
    # SES receiving's prefix, whose objects the email function trusts, is denied outright
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Action"] == "s3:PutObject"
    assert deny["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/raw/ses/*"]]}
    (send,) = [s for s in statements if s["Action"] == "sqs:SendMessage"]
    assert send["Resource"] == {"Fn::GetAtt": [inbound, "Arn"]}
    (read,) = [s for s in statements if "secretsmanager:GetSecretValue" in _as_list(s["Action"])]
    assert sorted(r["Ref"] for r in read["Resource"]) == sorted([webhooks, survey_links])


def test_the_keys_the_receiver_writes_are_its_grants_and_never_ses_receivings() -> None:
    from datetime import UTC, datetime
    from fnmatch import fnmatchcase

    from infra.constructs.functions import WEBHOOK_PROVIDERS
    from infra.constructs.raw_archive import SES_MAIL, received_prefix
    from intake.inbox import raw_key

    allowed = [f"{received_prefix(provider)}*" for provider in WEBHOOK_PROVIDERS]
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    for provider in WEBHOOK_PROVIDERS:
        for key in (raw_key(provider, "01JQ0000000000000000000000", at), raw_key(provider, "R", at) + ".eml"):
            assert [p for p in allowed if fnmatchcase(key, p)] == [f"{received_prefix(provider)}*"], key
    # SES's own keys match no pattern of a provider's; a key made to look like one is what the deny stops
    assert not any(fnmatchcase("raw/ses/0102019a5c7f0a11", p) for p in allowed)
    forged = "raw/ses//01/02/forms/x"
    assert fnmatchcase(forged, f"{received_prefix('forms')}*") and fnmatchcase(forged, SES_MAIL)


def test_each_function_reads_only_the_secrets_it_uses(synthesized: Synthesized) -> None:
    # the receiver checks every webhook signature and the survey links; ingest downloads WhatsApp media with the
    # Graph API token; the notifier signs survey links (the tested policy's support asks for surveys); no other
    names = {
        "Secret": synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/Secret")[0],
        "SurveyLinks": synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/SurveyLinks")[0],
        "WhatsAppToken": synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/WhatsAppToken")[0],
        "TwilioSending": synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/TwilioSending")[0],
        "MessengerToken": synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/MessengerToken")[0],
        "InstagramToken": synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/InstagramToken")[0],
    }
    by_id = {logical_id: name for name, logical_id in names.items()}
    readers: dict[str, set[str]] = {}
    for name, policy in synthesized.resources("AWS::IAM::Policy").items():
        for statement in _statements(policy):
            if "secretsmanager:GetSecretValue" in _as_list(statement["Action"]):
                secrets = {by_id[r["Ref"]] for r in _as_list(statement["Resource"])}
                readers.setdefault(name[: name.index("Role")], set()).update(secrets)
    assert readers == {
        "FunctionsReceiver": {"Secret", "SurveyLinks"},
        # media downloads (WhatsApp), voicemail recordings (Twilio) and customers' names (Messenger, Instagram, when
        # `fetch_names` asks)
        "FunctionsIngest": {"TwilioSending", "WhatsAppToken", "MessengerToken", "InstagramToken"},
        "FunctionsNotifier": {"SurveyLinks"},
        # replies: never the webhook secrets
        "FunctionsSender": {"TwilioSending", "WhatsAppToken", "MessengerToken", "InstagramToken"},
    }
    _, survey = synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/SurveyLinks")
    _, token = synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/WhatsAppToken")
    _, webhooks = synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/Secret")
    assert survey["Properties"]["Description"].endswith(": CSAT_SECRET")
    assert token["Properties"]["Description"].endswith(": WHATSAPP_ACCESS_TOKEN")
    assert "CSAT_SECRET" not in webhooks["Properties"]["Description"]
    assert "WHATSAPP_ACCESS_TOKEN" not in webhooks["Properties"]["Description"]
    outputs = synthesized.template["Outputs"]
    assert outputs["SurveyLinkSecretArn"]["Value"] == {"Ref": names["SurveyLinks"]}
    assert outputs["WhatsAppTokenSecretArn"]["Value"] == {"Ref": names["WhatsAppToken"]}


def test_runtime_secrets_read_each_name_from_its_own_secret_only() -> None:
    from intake.secrets import HELD_APART, Secrets

    documents = {
        "arn:webhooks": '{"FORM_CONTACT_SECRET": "f", "CSAT_SECRET": "left over"}',
        "arn:survey": '{"CSAT_SECRET": "s"}',
    }
    secrets = Secrets(
        environ={}, secrets_arn="arn:webhooks", fetch=documents.__getitem__, apart={"CSAT_SECRET": "arn:survey"}
    )

    assert (secrets.get("FORM_CONTACT_SECRET"), secrets.get("CSAT_SECRET")) == ("f", "s")
    assert secrets.get("WHATSAPP_ACCESS_TOKEN") is None  # a channel's API credential this function was not given
    assert set(HELD_APART.values()) <= {"survey_secret_arn", "console_secret_arn"}
    # a channel API credential given to the function is read from its channel's secret, not from another document
    channel_documents = {
        "arn:webhooks-2": '{"WHATSAPP_ACCESS_TOKEN": "left over"}',
        "arn:whatsapp": '{"WHATSAPP_ACCESS_TOKEN": "t"}',
    }
    given = Secrets(
        environ={},
        secrets_arn="arn:webhooks-2",
        fetch=channel_documents.__getitem__,
        apart={"WHATSAPP_ACCESS_TOKEN": "arn:whatsapp"},
    )
    assert given.get("WHATSAPP_ACCESS_TOKEN") == "t"


def test_ingest_reads_and_writes_tickets_on_the_table_and_its_named_indexes(synthesized: Synthesized) -> None:
    statements = _role_policy(synthesized, "Ingest")
    table, _ = synthesized.one("AWS::DynamoDB::Table", "TicketStore/Tickets")

    assert {a for a in _actions(statements) if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",  # what the ingest core reads before it writes, in one call (Store.lookup)
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",  # an acknowledgment's recipient is not suppressed (Store.claim_acknowledgment)
        "dynamodb:DeleteItem",  # an acknowledgment's claim given back when sending failed: TOKEN#ack#* only
    }
    (reads,) = [s for s in statements if "dynamodb:Query" in _as_list(s["Action"])]
    named = _refs(reads["Resource"])
    assert all(f'"/index/{index.name}"' in named for index in TABLE.indexes)
    assert "/index/*" not in named
    (writes,) = [s for s in statements if "dynamodb:PutItem" in _as_list(s["Action"])]
    assert writes["Resource"] == {"Fn::GetAtt": [table, "Arn"]}
    assert set(_as_list(writes["Action"])) >= {"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"}


def test_the_api_writes_tickets_like_the_email_function_deletes_only_its_claims_and_reads_no_secret(
    synthesized: Synthesized,
) -> None:
    # agents' actions (ticket, timer items, events), released quarantined email (the email ingest again) and digests
    # published on demand (test_digests)
    statements = _role_policy(synthesized, "Api")
    actions = _actions(statements)
    table, _ = synthesized.one("AWS::DynamoDB::Table", "TicketStore/Tickets")

    dynamodb = {a for a in actions if a.startswith("dynamodb:")}
    assert dynamodb == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",  # claims given back: a contact's survey, an acknowledgment
    }
    assert dynamodb == {a for a in _actions(_role_policy(synthesized, "Email")) if a.startswith("dynamodb:")}
    (writes,) = [s for s in statements if "dynamodb:UpdateItem" in _as_list(s["Action"])]
    assert set(_as_list(writes["Action"])) == {
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    }
    assert writes["Resource"] == {"Fn::GetAtt": [table, "Arn"]}  # the table, not its indexes
    deletes = [s for s in statements if "dynamodb:DeleteItem" in _as_list(s["Action"])]
    assert all(s["Resource"] == {"Fn::GetAtt": [table, "Arn"]} for s in deletes)
    # a digest published on demand is the digest function's work now (test_digests): no TOKEN#digest# claim here
    assert sorted(s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] for s in deletes) == [
        ["SURVEY#*"],
        ["TOKEN#ack#*"],
    ]
    assert {a for a in actions if a.startswith("s3:")} == {"s3:GetObject", "s3:PutObject"}
    assert not any(
        a.startswith("secretsmanager:") or ("Delete" in a and a not in ("dynamodb:DeleteItem", "sqs:DeleteMessage"))
        for a in actions
    )


def test_the_api_reads_and_deletes_only_dead_letters_and_sends_only_to_their_queues(synthesized: Synthesized) -> None:
    # /failures: dead letters are received (held, then released) and deleted once sent back to their own queue
    statements = [
        s for s in _role_policy(synthesized, "Api") if any(a.startswith("sqs:") for a in _as_list(s["Action"]))
    ]
    dead_letters = {
        synthesized.one("AWS::SQS::Queue", f"InboundQueues/{pascal_case(spec.dead_letter)}")[0] for spec in QUEUES
    }
    sources = {synthesized.one("AWS::SQS::Queue", f"InboundQueues/{pascal_case(spec.name)}")[0] for spec in QUEUES}

    by_actions = {
        frozenset(_as_list(s["Action"])): {r["Fn::GetAtt"][0] for r in _as_list(s["Resource"])} for s in statements
    }
    assert by_actions == {
        frozenset(
            {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
        ): dead_letters,
        frozenset({"sqs:SendMessage"}): sources,
    }


# ------------------------------------------------------------------ data at rest


def test_the_table_is_built_from_the_resource_description(synthesized: Synthesized) -> None:
    _, table = synthesized.one("AWS::DynamoDB::Table", "TicketStore/Tickets")
    key, _ = synthesized.one("AWS::KMS::Key", "TicketStore/Key")
    props = table["Properties"]

    assert props["KeySchema"] == [
        {"AttributeName": TABLE.partition_key, "KeyType": "HASH"},
        {"AttributeName": TABLE.sort_key, "KeyType": "RANGE"},
    ]
    assert {i["IndexName"]: i["KeySchema"] for i in props["GlobalSecondaryIndexes"]} == {
        index.name: [
            {"AttributeName": index.partition_key, "KeyType": "HASH"},
            {"AttributeName": index.sort_key, "KeyType": "RANGE"},
        ]
        for index in TABLE.indexes
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": TABLE.ttl_attribute, "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {
        "KMSMasterKeyId": {"Fn::GetAtt": [key, "Arn"]},
        "SSEEnabled": True,
        "SSEType": "KMS",
    }


def test_every_kms_key_rotates(synthesized: Synthesized) -> None:
    keys = synthesized.resources("AWS::KMS::Key")

    assert len(keys) == 4  # tickets, archive, queues, alarm topic
    assert all(k["Properties"]["EnableKeyRotation"] is True for k in keys.values())


def test_the_archive_is_private_encrypted_versioned_logged_and_cools_after_90_days(
    synthesized: Synthesized,
) -> None:
    _, bucket = synthesized.one("AWS::S3::Bucket", "RawArchive/Bucket")
    logs, _ = synthesized.one("AWS::S3::Bucket", "RawArchive/AccessLogs")
    key, _ = synthesized.one("AWS::KMS::Key", "RawArchive/Key")
    props = bucket["Properties"]

    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption == {
        "BucketKeyEnabled": True,
        "ServerSideEncryptionByDefault": {"KMSMasterKeyID": {"Fn::GetAtt": [key, "Arn"]}, "SSEAlgorithm": "aws:kms"},
    }
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs}
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Transitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": 90}]


def test_every_bucket_and_queue_refuses_requests_without_tls(synthesized: Synthesized) -> None:
    policies = [
        *synthesized.resources("AWS::S3::BucketPolicy").values(),
        *synthesized.resources("AWS::SQS::QueuePolicy").values(),
        *synthesized.resources("AWS::SNS::TopicPolicy").values(),
    ]
    denied: set[str] = set()
    for policy in policies:
        for statement in _statements(policy):
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                targets = (
                    policy["Properties"].get("Bucket")
                    or policy["Properties"].get("Queues")
                    or policy["Properties"].get("Topics")
                )
                denied.update(_refs(t) for t in _as_list(targets))
    protected = {
        *synthesized.resources("AWS::S3::Bucket"),
        *synthesized.resources("AWS::SQS::Queue"),
        *synthesized.resources("AWS::SNS::Topic"),
    }
    for name in protected:
        assert any(f'"{name}"' in d for d in denied), name


def test_every_queue_is_kms_encrypted_and_has_a_dead_letter_queue_from_its_spec(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    key, _ = synthesized.one("AWS::KMS::Key", "InboundQueues/Key")

    assert len(queues) == 2 * len(QUEUES) + 2  # and the digests' and the mail feedback's dead-letter queues
    for queue in queues.values():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    for spec in QUEUES:
        _, queue = synthesized.one("AWS::SQS::Queue", f"InboundQueues/{pascal_case(spec.name)}")
        dlq, dead_letter = synthesized.one("AWS::SQS::Queue", f"InboundQueues/{pascal_case(spec.dead_letter)}")
        assert queue["Properties"].get("FifoQueue", False) is spec.fifo
        assert dead_letter["Properties"].get("FifoQueue", False) is spec.fifo
        assert queue["Properties"]["VisibilityTimeout"] == spec.visibility_timeout_s
        assert queue["Properties"]["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
            "maxReceiveCount": spec.max_receive_count,
        }
        assert dead_letter["Properties"]["RedriveAllowPolicy"] == {"redrivePermission": "allowAll"}


def test_the_provider_secrets_start_empty_so_signed_forms_fail_closed(synthesized: Synthesized) -> None:
    _, secret = synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/Secret")

    assert secret["Properties"]["SecretString"] == "{}"
    assert "FORM_CONTACT_SECRET" in secret["Properties"]["Description"]
    for other in synthesized.resources("AWS::SecretsManager::Secret").values():
        assert other["Properties"]["SecretString"] == "{}"


# ------------------------------------------------------------------ the API


def test_tickets_need_iam_and_webhooks_are_open_to_providers(synthesized: Synthesized) -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]["AuthorizationType"]
        for r in synthesized.resources("AWS::ApiGatewayV2::Route").values()
    }

    assert routes == {
        "POST /webhooks/forms/{form_id}": "NONE",
        "POST /webhooks/twilio/voice": "NONE",
        "POST /webhooks/twilio/voice/status": "NONE",
        "POST /webhooks/twilio/voice/recording": "NONE",
        "POST /webhooks/twilio/voice/transcription": "NONE",
        "POST /webhooks/twilio/messaging": "NONE",
        "GET /healthz": "NONE",
        "GET /tickets": "AWS_IAM",
        "GET /tickets/{ticket_id}": "AWS_IAM",
        "GET /contacts/{contact_id}": "AWS_IAM",
        "POST /tickets/{ticket_id}/events": "AWS_IAM",
        "POST /tickets/{ticket_id}/replies": "AWS_IAM",
        "GET /tickets/{ticket_id}/sla": "AWS_IAM",
        "GET /quarantine": "AWS_IAM",
        "POST /quarantine/{quarantine_id}/release": "AWS_IAM",
        "GET /digests/{team}/{period}": "AWS_IAM",
        "POST /digests/{team}/{period}": "AWS_IAM",
        "GET /failures": "AWS_IAM",
        "POST /failures/{failure_id}/replay": "AWS_IAM",
        "GET /webhooks/whatsapp": "NONE",
        "POST /webhooks/email/sendgrid": "NONE",
        "POST /webhooks/email/mailgun": "NONE",
        "POST /webhooks/whatsapp": "NONE",
        "GET /webhooks/messenger": "NONE",
        "POST /webhooks/messenger": "NONE",
        "GET /webhooks/instagram": "NONE",
        "POST /webhooks/instagram": "NONE",
        "GET /csat/{token}": "NONE",
        "POST /csat/{token}": "NONE",
    }


def test_browsers_may_post_only_from_the_public_forms_origins(synthesized: Synthesized) -> None:
    from intake.channels.forms import PublicAuth

    _, api = synthesized.one("AWS::ApiGatewayV2::Api", "WebhookApi/HttpApi")
    origins = {
        origin
        for form in synthesized.policy_file.policy.forms.values()
        if isinstance(form.auth, PublicAuth)
        for origin in form.auth.origins
    }

    cors = api["Properties"]["CorsConfiguration"]
    assert set(cors["AllowOrigins"]) == origins and origins
    assert cors["AllowMethods"] == ["POST"]


def test_the_stage_writes_access_logs_with_numbers_metric_filters_can_compare(synthesized: Synthesized) -> None:
    _, stage = synthesized.one("AWS::ApiGatewayV2::Stage", "WebhookApi/DefaultStage")
    logs, _ = synthesized.one("AWS::Logs::LogGroup", "WebhookApi/AccessLogs")
    props = stage["Properties"]

    assert props["StageName"] == "$default"
    assert props["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": [logs, "Arn"]}
    line = props["AccessLogSettings"]["Format"]
    example = json.loads(line.replace("$context.status", "502").replace("$context.responseLatency", "37"))
    assert (example["status"], example["responseLatency"], example["requestId"]) == (502, 37, "$context.requestId")


def test_each_route_group_has_its_own_throttle(synthesized: Synthesized) -> None:
    from infra.constructs.webhook_api import AGENTS, PROVIDER_WEBHOOKS, PUBLIC, ROUTES

    stage_id, stage = synthesized.one("AWS::ApiGatewayV2::Stage", "WebhookApi/DefaultStage")
    props = stage["Properties"]
    route_ids = {
        r["Properties"]["RouteKey"]: name for name, r in synthesized.resources("AWS::ApiGatewayV2::Route").items()
    }
    settings = props["RouteSettings"]

    # every route is throttled, and by its group: providers' webhooks, what anyone may call, agents' tools
    assert set(settings) == set(route_ids) == {route.key for route in ROUTES}
    limits = {key: (v["ThrottlingRateLimit"], v["ThrottlingBurstLimit"]) for key, v in settings.items()}
    assert limits["POST /webhooks/whatsapp"] == limits["POST /webhooks/twilio/messaging"] == (50, 100)
    assert limits["POST /webhooks/forms/{form_id}"] == limits["POST /csat/{token}"] == (10, 20)
    assert limits["GET /tickets"] == limits["POST /digests/{team}/{period}"] == (25, 50)
    for route in ROUTES:
        assert limits[route.key] == (route.group.rate, route.group.burst), route.key
    assert {route.group.name for route in ROUTES} == {g.name for g in (PROVIDER_WEBHOOKS, PUBLIC, AGENTS)}
    assert all(route.group is AGENTS for route in ROUTES if route.open_because is None)  # IAM or JWT: agents'
    # what no route matches keeps the stage's default
    assert props["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50}
    # route settings name routes: CloudFormation creates every route before the stage
    assert set(route_ids.values()) <= set(synthesized.template["Resources"][stage_id]["DependsOn"])


def test_outputs_give_the_api_url_and_every_form_webhook_url(synthesized: Synthesized) -> None:
    outputs = synthesized.template["Outputs"]
    form_ids = list(synthesized.policy_file.policy.forms)

    assert "ApiUrl" in outputs and "ProviderSecretsArn" in outputs
    for form_id in form_ids:
        (url,) = [o for o in outputs.values() if f"'{form_id}'" in o["Description"]]
        assert url["Value"]["Fn::Join"][1][-1] == f"/webhooks/forms/{form_id}"
    assert len([name for name in outputs if name.startswith("FormWebhookUrl")]) == len(form_ids)


# ------------------------------------------------------------------ observability


def test_alarms_watch_dead_letters_errors_throttles_and_message_age(synthesized: Synthesized) -> None:
    alarms = synthesized.resources("AWS::CloudWatch::Alarm")
    topic, _ = synthesized.one("AWS::SNS::Topic", "Observability/AlarmTopic")
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms.values():
        by_metric.setdefault(alarm["Properties"]["MetricName"], []).append(alarm["Properties"])

    # the queues', the digests' and the mail feedback's dead-letter queues
    assert len(by_metric["ApproximateNumberOfMessagesVisible"]) == len(QUEUES) + 2
    assert all(a["Threshold"] == 0 for a in by_metric["ApproximateNumberOfMessagesVisible"])
    assert len(by_metric["ApproximateAgeOfOldestMessage"]) == len(QUEUES)
    assert len(by_metric["Errors"]) == OUR_FUNCTIONS and len(by_metric["Throttles"]) == OUR_FUNCTIONS
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}]


def test_alarms_go_to_a_kms_encrypted_topic_mailing_the_policy_file_addresses(synthesized: Synthesized) -> None:
    _, topic = synthesized.one("AWS::SNS::Topic", "Observability/AlarmTopic")
    key, _ = synthesized.one("AWS::KMS::Key", "Observability/AlarmTopicKey")
    subscriptions = synthesized.resources("AWS::SNS::Subscription").values()

    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == sorted(ALERT_EMAILS)
    assert all(s["Properties"]["Protocol"] == "email" for s in subscriptions)


def test_there_is_one_dashboard(synthesized: Synthesized) -> None:
    synthesized.assertions.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_twilio_numbers_have_their_urls_and_the_token_has_its_key(synthesized: Synthesized) -> None:
    outputs = synthesized.template["Outputs"]
    urls = [name for name in outputs if name.startswith("Twilio") and name.endswith("Url")]
    paths = {name: outputs[name]["Value"]["Fn::Join"][1][-1] for name in urls}
    assert paths == {
        "TwilioVoiceUrl": "/webhooks/twilio/voice",
        "TwilioMessagingUrl": "/webhooks/twilio/messaging",
        "TwilioStatusCallbackUrl": "/webhooks/twilio/voice/status",
    }
    _, secret = synthesized.one("AWS::SecretsManager::Secret", "ProviderSecrets/Secret")
    assert "TWILIO_AUTH_TOKEN" in secret["Properties"]["Description"]


def test_ses_receives_mail_for_the_policy_addresses_into_the_archive_and_queues_it(synthesized: Synthesized) -> None:
    from intake.resources import SES_PREFIX

    _, rule = synthesized.one("AWS::SES::ReceiptRule", "EmailReceiving/RuleSet/Rule0")
    properties = rule["Rule"] if "Rule" in rule else rule["Properties"]["Rule"]
    assert properties["Recipients"] == sorted(synthesized.policy_file.policy.email.addresses)
    assert properties["ScanEnabled"] is True and properties["TlsPolicy"] == "Require"
    [action] = properties["Actions"]
    assert action["S3Action"]["ObjectKeyPrefix"] == SES_PREFIX
    email, _ = synthesized.one("AWS::Lambda::Function", "Functions/Email")
    queue, _ = synthesized.one("AWS::SQS::Queue", "InboundQueues/Email")
    [mapping] = [
        m
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": email}
    ]
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
    [notification] = synthesized.resources("Custom::S3BucketNotifications").values()
    [configuration] = notification["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert configuration["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": SES_PREFIX}]
