"""Secret values by name (`intake.secrets.Secrets`): `INTAKE_<NAME>` locally, else the JSON document of the secret
the name is kept in; with an account, that account's own value first (`<NAME>_<account>`, beside the name), then
the name's, which serves every account without one."""

from __future__ import annotations

import json

from intake.secrets import Secrets

SHARED = "MESSENGER_PAGE_TOKEN"
TOKENS_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:MessengerToken"
WEBHOOKS_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:Webhooks"


def test_locally_an_accounts_own_value_comes_first_then_the_shared_one() -> None:
    environ = {f"INTAKE_{SHARED}": "shared", f"INTAKE_{SHARED}_111": "page-111"}
    secrets = Secrets(environ=environ)

    assert secrets.get(SHARED, "111") == "page-111"
    assert secrets.get(SHARED, "222") == "shared"
    assert secrets.get(SHARED) == "shared"
    assert Secrets(environ={}).get(SHARED, "111") is None


def test_in_aws_an_accounts_own_value_is_read_from_the_names_secret_and_no_other() -> None:
    documents = {
        TOKENS_ARN: json.dumps({SHARED: "shared", f"{SHARED}_111": "page-111"}),
        # the same key left in the webhook signing secret is never read for a name kept apart
        WEBHOOKS_ARN: json.dumps({f"{SHARED}_222": "not-here", "FORM_SECRET": "form"}),
    }
    read: list[str] = []

    def fetch(arn: str) -> str:
        read.append(arn)
        return documents[arn]

    secrets = Secrets(environ={}, secrets_arn=WEBHOOKS_ARN, fetch=fetch, apart={SHARED: TOKENS_ARN})

    assert secrets.get(SHARED, "111") == "page-111"
    assert secrets.get(SHARED, "222") == "shared"
    assert secrets.get("FORM_SECRET") == "form"
    assert set(read) == {TOKENS_ARN, WEBHOOKS_ARN}
