"""Provider secrets: `INTAKE_<NAME>` locally; in AWS, JSON documents in Secrets Manager (each read once).

A function reads only the secret values it uses. The receiver's webhook signing secrets (forms, Twilio, WhatsApp's
app secret and verify token, SendGrid, Mailgun) are one secret (`secrets_arn`); the values another function uses
are secrets of their own (`HELD_APART`): the survey link secret, which the notifier signs links with and the
receiver checks them with; the console's OIDC client secret, which only the api function exchanges sign-in codes
with; and each channel's API credentials (`Channel.api_secrets`: the WhatsApp access token, the sender's Twilio
account SID and API key, never the auth token, the receiver's alone), given by name (`channel_secrets`) to the
functions that call that API. A name is looked up in its own secret only: the same name left in another document is
never read.
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
    "CONSOLE_CLIENT_SECRET": "console_secret_arn",  # intake.console.CLIENT_SECRET
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

    def get(self, name: str, account: str | None = None) -> str | None:
        """`name`'s value; with `account`, that account's own first (`<name>_<account>`, kept beside `name`: a
        Facebook Page's access token where each Page has its own), then `name`'s, which serves every other."""
        if account is not None and (own := self._value(f"{name}_{account}", name)):
            return own
        return self._value(name, name)

    def _value(self, key: str, name: str) -> str | None:
        """`key`, from the environment or from the secret `name` is kept in."""
        local = self._env.get(f"INTAKE_{key}")
        if local:
            return local
        arn = self._apart.get(name) if name in HELD_APART or name in self._apart else self._arn
        if not arn:
            return None
        value = _parsed(self._fetch, arn).get(key)
        return str(value) if value else None


@cache
def _parsed(fetch: Callable[[str], str], arn: str) -> dict[str, Any]:
    document = json.loads(fetch(arn))
    return document if isinstance(document, dict) else {}


def _secrets_manager_value(arn: str) -> str:
    import boto3  # only when secrets live in AWS

    response = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
    return str(response["SecretString"])
