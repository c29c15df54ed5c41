"""ProviderSecrets: the Secrets Manager secrets the functions check signatures, sign survey links and call Meta with.

Each function reads only the secret values it uses (`intake.secrets`):

- `Secret`: the webhook signing secrets, one JSON key each (`FORM_CONTACT_SECRET`, `TWILIO_AUTH_TOKEN`, ...): the
  receiver's alone.
- `SurveyLinks` (when a team asks for satisfaction surveys): `CSAT_SECRET`, which the notifier signs survey links
  with and the receiver checks them with.
- one per configured channel that calls its provider's API (`Channel.api_secrets`, `api_readers`): `WhatsAppToken`
  (`WHATSAPP_ACCESS_TOKEN`: ingest downloads media with it, the sender sends replies), `TwilioSending`
  (`TWILIO_ACCOUNT_SID`, `TWILIO_API_KEY_SID`, `TWILIO_API_KEY_SECRET`: the sender's alone; the auth token, which
  signs Twilio's webhooks, stays in `Secret`, the receiver's), and so on for each channel.
- `ConsoleClient` (when the policy file has `api.jwt.console`): `CONSOLE_CLIENT_SECRET`, the console's OIDC client
  secret if the provider gave one (left `{}` for a public client), which only the api function uses (the sign-in's
  code exchange).

Each is a JSON object keyed like the local `INTAKE_<NAME>` variables. Operators set the values (see the README);
the stack only creates them, holding `{}`.
"""

from __future__ import annotations

from aws_cdk import SecretValue, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.acknowledgments import acknowledge
from infra.stage import Stage
from intake.channels import registry
from intake.config import ENV_PREFIX, Policy
from intake.console import CLIENT_SECRET as CONSOLE_CLIENT_SECRET
from intake.satisfaction import SECRET_NAME as CSAT_SECRET
from intake.secrets import HELD_APART

_NOT_ROTATED = (
    "The values are shared with providers (Typeform, a site's backend, Twilio, Meta) and must change there first; "
    "rotating them is an operator procedure (README), not a rotation Lambda."
)


def secret_keys(policy: Policy) -> list[str]:
    """The keys the webhook signing secret must hold for this policy file: each channel's whose section the file has
    (a form's per form that checks a signature; SendGrid's and Mailgun's with `email`)."""
    keys: list[str] = []
    for channel in registry.channels():
        section = policy.section(channel.section)
        keys += channel.webhook_secrets(section) if section is not None else []
    return keys


def asks_surveys(policy: Policy) -> bool:
    return any(team.satisfaction.enabled for team in policy.teams.values())


def _setting(field: str) -> str:
    return ENV_PREFIX + field.upper()


class ProviderSecrets(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage, policy: Policy) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        self.keys = secret_keys(policy)
        self.secret = self._build_secret("Secret", "webhook signing secrets", self.keys)
        # held apart (intake.secrets.HELD_APART): each where the policy file needs it
        self.survey_links = (
            self._build_secret("SurveyLinks", "the survey link secret", [CSAT_SECRET]) if asks_surveys(policy) else None
        )
        # each configured channel's API credentials, in a secret of the channel's own (`Channel.api_secrets`)
        self.channel_apis = {
            channel.name: self._build_secret(
                channel.api_secret_id,
                f"the {channel.title} API credentials",
                list(channel.api_secrets),
            )
            for channel in registry.channels()
            if channel.api_secrets and policy.section(channel.section) is not None
        }
        signs_in = policy.api.jwt is not None and policy.api.jwt.console is not None
        self.console_client = (
            self._build_secret("ConsoleClient", "the console's OIDC client secret", [CONSOLE_CLIENT_SECRET])
            if signs_in
            else None
        )

    def _build_secret(self, construct_id: str, what: str, keys: list[str]) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            construct_id,
            description=f"Intake {self._stage.name}: {what}, one JSON key each: {', '.join(keys) or 'none yet'}",
            # A constant placeholder: an empty document is "not configured", so signed requests are
            # refused until an operator sets the values; and a later deploy never overwrites them.
            secret_string_value=SecretValue.unsafe_plain_text("{}"),
            removal_policy=self._stage.removal_policy,
        )
        acknowledge(secret, "AwsSolutions-SMG4", _NOT_ROTATED)
        return secret

    # ------------------------------------------------------------------ grants

    def grant_webhook_secrets(self, function: lambda_.Function) -> None:
        """The receiver checks every provider's signature: the webhook signing secret, named by `secrets_arn`."""
        self.secret.grant_read(function)
        function.add_environment(_setting("secrets_arn"), self.secret.secret_arn)

    def grant_survey_links(self, function: lambda_.Function) -> None:
        """`CSAT_SECRET` alone, when a team asks for surveys (the notifier signs links; the receiver checks them)."""
        self._grant_apart(function, self.survey_links, CSAT_SECRET)

    def grant_channel_apis(self, function: lambda_.Function, reader: str) -> None:
        """Each configured channel's API credentials to the function `reader` names when the channel lists it
        (`Channel.api_readers`): read access to that secret alone, and its keys' ARN in `INTAKE_CHANNEL_SECRETS`."""
        given: dict[str, str] = {}
        for channel in registry.channels():
            secret = self.channel_apis.get(channel.name)
            if secret is not None and reader in channel.api_readers:
                secret.grant_read(function)
                given |= {key: secret.secret_arn for key in channel.api_secrets}
        if given:
            function.add_environment(_setting("channel_secrets"), Stack.of(function).to_json_string(given))

    def grant_console_client(self, function: lambda_.Function) -> None:
        """`CONSOLE_CLIENT_SECRET` alone, when the policy has `api.jwt.console` (the api signs people in with it)."""
        self._grant_apart(function, self.console_client, CONSOLE_CLIENT_SECRET)

    @staticmethod
    def _grant_apart(function: lambda_.Function, secret: secretsmanager.Secret | None, name: str) -> None:
        if secret is None:
            return
        secret.grant_read(function)
        function.add_environment(_setting(HELD_APART[name]), secret.secret_arn)
