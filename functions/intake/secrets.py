"""Provider secrets: `INTAKE_<NAME>` locally, one JSON secret in Secrets Manager in AWS (read once)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any


class Secrets:
    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        secrets_arn: str | None = None,
        fetch: Callable[[str], str] | None = None,
    ) -> None:
        self._env = os.environ if environ is None else environ
        self._arn = secrets_arn
        self._fetch = fetch or _secrets_manager_value

    def get(self, name: str) -> str | None:
        local = self._env.get(f"INTAKE_{name}")
        if local:
            return local
        if not self._arn:
            return None
        value = self._document().get(name)
        return str(value) if value else None

    def _document(self) -> dict[str, Any]:
        return _parsed(self._fetch, self._arn or "")


@cache
def _parsed(fetch: Callable[[str], str], arn: str) -> dict[str, Any]:
    document = json.loads(fetch(arn))
    return document if isinstance(document, dict) else {}


def _secrets_manager_value(arn: str) -> str:
    import boto3  # only when secrets live in AWS

    response = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
    return str(response["SecretString"])
