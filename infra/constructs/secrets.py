"""ProviderSecrets: the one Secrets Manager secret holding every provider's signing secret (JSON).

`intake.secrets` reads it once per cold start, keyed like the local `INTAKE_<NAME>` variables
(`FORM_CONTACT_SECRET`, ...). Operators set the values (see the README); the stack only creates it.
"""

from __future__ import annotations

from aws_cdk import SecretValue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.acknowledgments import acknowledge
from infra.stage import Stage
from intake.channels import forms, mailgun, sendgrid, twilio, whatsapp
from intake.config import Policy, PublicAuth
from intake.satisfaction import SECRET_NAME as CSAT_SECRET


def secret_keys(policy: Policy) -> list[str]:
    """The keys the secret must hold for this policy file: one per form that checks a signature, each
    channel's own (Twilio, WhatsApp, SendGrid/Mailgun) when the file has it, and CSAT_SECRET when a team
    asks for satisfaction surveys."""
    keys = [
        forms.secret_name(form_id) for form_id, form in policy.forms.items() if not isinstance(form.auth, PublicAuth)
    ]
    keys += [twilio.TOKEN_SECRET] if policy.twilio is not None else []
    whatsapp_keys = [whatsapp.APP_SECRET, whatsapp.VERIFY_TOKEN, whatsapp.ACCESS_TOKEN]
    keys += whatsapp_keys if policy.whatsapp is not None else []
    # email through SendGrid or Mailgun (SES receiving needs no secret)
    keys += [sendgrid.USER, sendgrid.PASSWORD, mailgun.SIGNING_KEY] if policy.email is not None else []
    # satisfaction survey links, signed by the notifier and checked by the receiver, when a team asks for surveys
    return keys + ([CSAT_SECRET] if asks_surveys(policy) else [])


def asks_surveys(policy: Policy) -> bool:
    return any(team.satisfaction.enabled for team in policy.teams.values())


class ProviderSecrets(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage, policy: Policy) -> None:
        super().__init__(scope, construct_id)
        self.keys = secret_keys(policy)
        self.secret = self._build_secret(stage)

    def _build_secret(self, stage: Stage) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            "Secret",
            description=f"Intake {stage.name}: provider signing secrets, one JSON key each: {', '.join(self.keys)}",
            # A constant placeholder: an empty document is "not configured", so signed requests are
            # refused until an operator sets the values; and a later deploy never overwrites them.
            secret_string_value=SecretValue.unsafe_plain_text("{}"),
            removal_policy=stage.removal_policy,
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "The values are shared with providers (Typeform, a site's backend) and must change there "
            "first; rotating them is an operator procedure (README), not a rotation Lambda.",
        )
        return secret

    def grant_read(self, grantee: iam.IGrantable) -> None:
        self.secret.grant_read(grantee)
