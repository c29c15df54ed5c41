"""Provider secrets: `INTAKE_<NAME>` locally; in AWS, JSON documents in Secrets Manager (each read once).

A function reads only the secret values it uses. The receiver's webhook signing secrets (forms, Twilio, WhatsApp's
app secret and verify token, SendGrid, Mailgun) are one secret (`secrets_arn`); the values another function uses
are secrets of their own (`HELD_APART`): the survey link secret, which the notifier signs links with and the
receiver checks them with; the WhatsApp access token, which ingest downloads media with and the sender sends
replies with; the sender's Twilio account SID and API key (never the auth token, the receiver's alone); and the
console's OIDC client secret, which only the api function exchanges sign-in codes with. A name is looked up in its
own secret only: the same name left in another document is never read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

# Names kept in a secret of their own, and the setting (`intake.config.Settings`) holding that secret's ARN.
HELD_APART = {
    "CSAT_SECRET": "survey_secret_arn",  # intake.satisfaction.SECRET_NAME
    "WHATSAPP_ACCESS_TOKEN": "whatsapp_token_arn",  # intake.channels.whatsapp.ACCESS_TOKEN
    "CONSOLE_CLIENT_SECRET": "console_secret_arn",  # intake.console.CLIENT_SECRET
    # the sender's Twilio credentials (intake.channels.twilio): the account, and an API key to send with
    "TWILIO_ACCOUNT_SID": "twilio_sending_arn",
    "TWILIO_API_KEY_SID": "twilio_sending_arn",
    "TWILIO_API_KEY_SECRET": "twilio_sending_arn",
}


class Secrets:
    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        secrets_arn: str | None = None,
        fetch: Callable[[str], str] | None = None,
        *,
        apart: Mapping[str, str | None] | None = None,
    ) -> None:
        """`secrets_arn`: the webhook signing secrets; `apart`: each `HELD_APART` name's secret ARN, where this
        function has it."""
        self._env = os.environ if environ is None else environ
        self._arn = secrets_arn
        self._apart = dict(apart or {})
        self._fetch = fetch or _secrets_manager_value

    def get(self, name: str) -> str | None:
        local = self._env.get(f"INTAKE_{name}")
        if local:
            return local
        arn = self._apart.get(name) if name in HELD_APART else self._arn
        if not arn:
            return None
        value = _parsed(self._fetch, arn).get(name)
        return str(value) if value else None


@cache
def _parsed(fetch: Callable[[str], str], arn: str) -> dict[str, Any]:
    document = json.loads(fetch(arn))
    return document if isinstance(document, dict) else {}


def _secrets_manager_value(arn: str) -> str:
    import boto3  # only when secrets live in AWS

    response = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
    return str(response["SecretString"])
