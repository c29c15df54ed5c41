"""Facebook Messenger: customers writing to one of our Facebook Pages, and our replies.

A plug-in over Meta's Messenger Platform (`intake.channels.meta_messaging`, given this module's `PLATFORM`): it
answers Meta's subscription `GET`, checks each `POST`'s `X-Hub-Signature-256` (`intake.channels.meta`, shared with
WhatsApp), maps the `object: "page"` webhook and answers on the conversation (`send`); `named` fills in a customer's
name from the Graph API (in the worker, when the policy allows it).

Secrets (`INTAKE_<name>` locally): `MESSENGER_APP_SECRET` (signatures) and `MESSENGER_VERIFY_TOKEN` (the
handshake), in the receiver's webhook secret in AWS; `MESSENGER_PAGE_TOKEN` (replies and names), the Page access
token, in the channel's own secret (`Channel.api_secrets`), read by the sender and ingest. One token: one Page
answers through Intake (several Pages would need a token per Page, which the contract's static `api_secrets` cannot
name yet).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import Field

from intake.channels import meta_messaging
from intake.channels.meta_messaging import Platform
from intake.channels.sending import OutboundReply, SendContext, Sent
from intake.model import InboundMessage

PROVIDER = "messenger"
PATH = "/webhooks/messenger"
APP_SECRET = "MESSENGER_APP_SECRET"  # noqa: S105 - a secret's name: signs every POST
VERIFY_TOKEN = "MESSENGER_VERIFY_TOKEN"  # noqa: S105 - a secret's name: the subscription handshake
PAGE_TOKEN = "MESSENGER_PAGE_TOKEN"  # noqa: S105 - a secret's name: replies (and names)


class Messenger(meta_messaging.MessagingSection):
    """The `messenger:` section of intake.yaml: which Page goes to which team, and how replies may go out."""

    pages: dict[str, meta_messaging.Account] = Field(default_factory=dict, description="our Pages by their id")

    LISTED: ClassVar[str] = "pages"


PLATFORM = Platform(
    provider=PROVIDER,
    label="Messenger",
    object="page",
    user_kind="psid",
    accounts="messenger.pages",
    max_text_bytes=2000,  # the Send API takes 2,000 characters: as bytes, never too many
    sends_from="{account}",  # the Page written to
    app_secret=APP_SECRET,
    verify_token=VERIFY_TOKEN,
    section_type=Messenger,
)


def send(reply: OutboundReply, ctx: SendContext) -> Sent:
    """The Send API, with the Page's access token (`meta_messaging.send`)."""
    return meta_messaging.send(PLATFORM, reply, ctx, PAGE_TOKEN)


def named(message: InboundMessage, fetch: Callable[[str], Mapping[str, Any]]) -> InboundMessage:
    """The message with its sender's name from the User Profile API (`GET /{psid}?fields=first_name,last_name`),
    when it has none; as it was when Meta gives none or the call fails (a name never holds a message back)."""

    def name(profile: Mapping[str, Any]) -> str | None:
        parts = [profile.get("first_name"), profile.get("last_name")]
        return " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip()) or None

    return meta_messaging.named(message, fetch, "first_name,last_name", name)


# ------------------------------------------------------------------------------------------- the channel


# Declared as `meta_messaging.channel` declares a Messenger Platform channel: the handshake and the webhook at
# PATH (the stack's `MessengerWebhookUrl` output), the `messenger:` section, the samples in events/messenger/, and
# PAGE_TOKEN in the channel's own secret (`MessengerToken`), read by the sender and ingest
CHANNEL = meta_messaging.channel(
    PLATFORM, title="Facebook Messenger", path=PATH, access_token=PAGE_TOKEN, named=named, send=send
)
