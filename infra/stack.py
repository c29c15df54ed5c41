"""The one Intake stack: it composes the capabilities of DESIGN.md's diagram and names the outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra.constructs.deliver_later import DeliverLater
from infra.constructs.digests import Digests
from infra.constructs.email_receiving import EmailReceiving
from infra.constructs.functions import Functions
from infra.constructs.inbound_queues import InboundQueues
from infra.constructs.intake_events import IntakeEvents
from infra.constructs.mail_feedback import MailFeedback
from infra.constructs.notifications import Notifications
from infra.constructs.observability import Observability
from infra.constructs.raw_archive import RawArchive
from infra.constructs.replies import Replies
from infra.constructs.secrets import ProviderSecrets
from infra.constructs.sla_timers import SlaTimers
from infra.constructs.ticket_store import TicketStore
from infra.constructs.webhook_api import WebhookApi
from infra.policy_file import PolicyFile
from infra.stage import Stage
from intake.channels import registry
from intake.channels.forms import PublicAuth
from intake.config import Policy


def public_form_origins(policy: Policy) -> list[str]:
    """Where browsers post public forms from: the only origins the API answers CORS preflights for."""
    return sorted(
        {origin for form in policy.forms.values() if isinstance(form.auth, PublicAuth) for origin in form.auth.origins}
    )


def acknowledgment_senders(policy: Policy) -> list[str]:
    """The addresses new email tickets are acknowledged from: each team's that has acknowledgments on."""
    return sorted({team.email for team in policy.teams.values() if team.email and team.acknowledgment.enabled})


def reply_senders(policy: Policy) -> list[str]:
    """The addresses agents' email replies are sent from: each team's, and the notifications sender for the others."""
    return sorted({team.email or policy.notifications.sender for team in policy.teams.values()})


def survey_senders(policy: Policy) -> list[str]:
    """The addresses satisfaction surveys are sent from: each team's that asks for them (others: the sender's)."""
    return sorted({team.email for team in policy.teams.values() if team.email and team.satisfaction.enabled})


class IntakeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        policy_file: PolicyFile,
        project_root: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Intake ({stage.name}): customer messages from every channel become DynamoDB tickets",
            termination_protection=stage.is_prod,
            **kwargs,
        )
        Tags.of(self).add("project", "intake")
        Tags.of(self).add("stage", stage.name)

        secrets = ProviderSecrets(self, "ProviderSecrets", stage=stage, policy=policy_file.policy)
        store = TicketStore(self, "TicketStore", stage=stage)
        archive = RawArchive(self, "RawArchive", stage=stage)
        queues = InboundQueues(self, "InboundQueues", stage=stage)
        functions = Functions(
            self,
            "Functions",
            stage=stage,
            project_root=project_root,
            policy_file=policy_file.path,
            store=store,
            archive=archive,
            queues=queues,
            secrets=secrets,
        )
        policy = policy_file.policy
        timers = SlaTimers(self, "SlaTimers", stage=stage, project_root=project_root, store=store, queues=queues)
        functions.control_sla_timers(timers)
        functions.grant_acknowledgments(acknowledgment_senders(policy), store)
        later = DeliverLater(self, "DeliverLater", stage=stage, project_root=project_root, queues=queues)
        functions.schedule_surveys(later, store)
        events = IntakeEvents(self, "Events", stage=stage)
        notifications = Notifications(
            self,
            "Notifications",
            functions=functions,
            store=store,
            queues=queues,
            events=events,
            secrets=secrets,
            sender=policy.notifications.sender,
            survey_senders=survey_senders(policy),
        )
        replies = Replies(
            self,
            "Replies",
            functions=functions,
            store=store,
            archive=archive,
            queues=queues,
            secrets=secrets,
            timers=timers,
            senders=reply_senders(policy),
        )
        digests = Digests(
            self,
            "Digests",
            stage=stage,
            policy=policy,
            functions=functions,
            store=store,
            archive=archive,
            queues=queues,
            events=events,
        )
        digests.publish_on_demand(functions.api)
        feedback = MailFeedback(self, "MailFeedback", stage=stage, functions=functions, store=store, queues=queues)
        # everything that sends email: acknowledgments (ingest, email, api), notices and surveys, digests
        feedback.send_with(
            [
                functions.ingest,
                functions.email,
                functions.api,
                notifications.notifier,
                digests.function,
                replies.sender,
            ]
        )
        api = WebhookApi(
            self,
            "WebhookApi",
            stage=stage,
            receiver=functions.receiver,
            api=functions.api,
            browser_origins=public_form_origins(policy_file.policy),
            jwt=policy_file.policy.api.jwt,
        )
        functions.set_public_base_url(api.url)
        if api.serves_console:  # api.jwt.console: the console's routes, the api signing people in (WebhookApi)
            functions.serve_console(archive, secrets)
        if policy_file.policy.email is not None:
            EmailReceiving(
                self,
                "EmailReceiving",
                archive=archive,
                queues=queues,
                recipients=sorted(policy_file.policy.email.addresses),
            )
        Observability(
            self,
            "Observability",
            stage=stage,
            functions=functions.all,
            queues=queues,
            api=api,
            timers=timers,
            later=later,
            digests=digests,
            feedback=feedback,
            alert_emails=policy_file.alert_emails,
        )
        self._build_outputs(policy_file, api, secrets)
        CfnOutput(
            self,
            "EventBusName",
            value=events.bus.event_bus_name,
            description="Intake's EventBridge bus (source intake): DigestPublished, SurveyRequested; add rules to it",
        )

    def _build_outputs(self, policy_file: PolicyFile, api: WebhookApi, secrets: ProviderSecrets) -> None:
        CfnOutput(
            self,
            "ApiUrl",
            value=api.url,
            description="Base URL: /tickets, /contacts, /quarantine, /digests and /failures (IAM, SigV4), and /healthz",
        )
        for channel in registry.channels():  # where each configured channel's provider is pointed
            section = policy_file.policy.section(channel.section)
            for name, path, how in channel.setup(section) if section is not None else []:
                CfnOutput(self, name, value=api.url + path, description=how)
        CfnOutput(
            self,
            "ProviderSecretsArn",
            value=secrets.secret.secret_arn,
            description="Put the webhook signing secrets here as one JSON object: "
            + (", ".join(secrets.keys) or "none yet"),
        )
        if secrets.survey_links is not None:
            CfnOutput(
                self,
                "SurveyLinkSecretArn",
                value=secrets.survey_links.secret_arn,
                description='Put the survey link secret here: {"CSAT_SECRET": "<a long random string>"}',
            )
        for channel in registry.channels():
            secret = secrets.channel_apis.get(channel.name)
            if secret is not None:
                keys = ", ".join(f'"{key}": "..."' for key in channel.api_secrets)
                CfnOutput(
                    self,
                    f"{secret.node.id}SecretArn",
                    value=secret.secret_arn,
                    description=f"Put the {channel.title} API credentials here: {{{keys}}}",
                )
        if secrets.console_client is not None:
            CfnOutput(
                self,
                "ConsoleSignInCallbackUrl",
                value=api.console_callback_url,
                description="Register this as the redirect (callback) URL of the console's OIDC client at the provider",
            )
            CfnOutput(
                self,
                "ConsoleClientSecretArn",
                value=secrets.console_client.secret_arn,
                description="The console's OIDC client secret, if the provider gave one: "
                '{"CONSOLE_CLIENT_SECRET": "<secret>"} (a public client leaves it {})',
            )
