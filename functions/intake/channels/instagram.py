"""Instagram Direct: customers writing to one of our Instagram professional accounts, and our replies.

A plug-in over Meta's Messenger Platform (`intake.channels.meta_messaging`, given this module's `PLATFORM`), like
Messenger: the handshake, the signature (`intake.channels.meta`), the `object: "instagram"` webhook (with story
replies, story mentions, deleted and unsupported messages), `send`, `named`. Media stay at Meta: Meta's terms forbid
storing what Instagram users send, so a message keeps the media's CDN link, which stops working once the customer
deletes it or it expires.

Secrets: `INSTAGRAM_APP_SECRET` (signatures), `INSTAGRAM_VERIFY_TOKEN` (the handshake), `INSTAGRAM_ACCESS_TOKEN`
(replies and names: the access token of the Facebook Page linked to the account, in the channel's own secret in AWS,
read by the sender and ingest; one token, so one account answers through Intake). Replies go to
`POST {graph}/me/messages` on the Graph API root every sender shares (graph.facebook.com): with a Page token, `me` is
the Page linked to the account, as Meta's Instagram Messaging guide sends them; webhooks name the account, never
that Page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import Field

from intake.channels import meta_messaging
from intake.channels.meta_messaging import Platform
from intake.channels.sending import OutboundReply, SendContext, Sent
from intake.model import InboundMessage

PROVIDER = "instagram"
PATH = "/webhooks/instagram"
APP_SECRET = "INSTAGRAM_APP_SECRET"  # noqa: S105 - a secret's name: signs every POST
VERIFY_TOKEN = "INSTAGRAM_VERIFY_TOKEN"  # noqa: S105 - a secret's name: the subscription handshake
ACCESS_TOKEN = "INSTAGRAM_ACCESS_TOKEN"  # noqa: S105 - a secret's name: replies (and names)


class Instagram(meta_messaging.MessagingSection):
    """The `instagram:` section of intake.yaml: which account goes to which team, and how replies may go out."""

    accounts: dict[str, meta_messaging.Account] = Field(default_factory=dict, description="our accounts by their IG id")

    LISTED: ClassVar[str] = "accounts"


PLATFORM = Platform(
    provider=PROVIDER,
    label="Instagram",
    object="instagram",
    user_kind="igsid",
    accounts="instagram.accounts",
    max_text_bytes=1000,  # Instagram's limit: 1,000 bytes of UTF-8
    sends_from="me",  # the Page the token speaks for
    app_secret=APP_SECRET,
    verify_token=VERIFY_TOKEN,
    section_type=Instagram,
)


def send(reply: OutboundReply, ctx: SendContext) -> Sent:
    """The Send API, with the account's access token (`meta_messaging.send`)."""
    return meta_messaging.send(PLATFORM, reply, ctx, ACCESS_TOKEN)


def named(message: InboundMessage, fetch: Callable[[str], Mapping[str, Any]]) -> InboundMessage:
    """The message with its sender's name (`GET /{igsid}?fields=name,username`: their name, else @username), when
    it has none; as it was when Meta gives none or the call fails."""

    def name(profile: Mapping[str, Any]) -> str | None:
        full, handle = profile.get("name"), profile.get("username")
        if isinstance(full, str) and full.strip():
            return full.strip()
        return f"@{handle.strip()}" if isinstance(handle, str) and handle.strip() else None

    return meta_messaging.named(message, fetch, "name,username", name)


# ------------------------------------------------------------------------------------------- the channel


# Declared as `meta_messaging.channel` declares a Messenger Platform channel: the handshake and the webhook at
# PATH (the stack's `InstagramWebhookUrl` output), the `instagram:` section, the samples in events/instagram/, and
# ACCESS_TOKEN in the channel's own secret (`InstagramToken`), read by the sender and ingest
CHANNEL = meta_messaging.channel(
    PLATFORM, title="Instagram Direct", path=PATH, access_token=ACCESS_TOKEN, named=named, send=send
)
