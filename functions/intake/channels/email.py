"""Email replies: from the team's address, in the customer's thread, through the mailer (SES in AWS, the outbox
locally).

The reply answers the customer's latest email (`In-Reply-To`, and `References` with the thread's Message-IDs), carries
the ticket's `[#<reference>]` token in its subject, quotes the thread below the answer and attaches the agent's
files. Its Message-IDs (ours, and the one SES gives it) are recorded against the ticket by the caller, so that the
customer's answer threads onto it (`intake.emails.thread_of`). Receiving email is `email_mime` and the transports'
modules; this is the channel's `address` (also a form's, when the customer gave an email) and `send`.
"""

from __future__ import annotations

import re
from email.utils import format_datetime, formataddr, parseaddr
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from intake import identity
from intake.channels import contract
from intake.channels.contract import ReplyContext
from intake.channels.sending import (
    OutboundReply,
    ReplyUndeliverableError,
    ReplyWay,
    SendContext,
    SendFailedError,
    Sent,
)
from intake.config import Name, Strict
from intake.model import EMAIL_PATTERN, Channel, DeliveryState, Direction, Message

PROVIDER = "email"
_QUOTE_CHARS = 20_000  # of the quoted thread, at most
MAX_REFERENCES = 20  # Message-IDs a reply carries in References: the thread's latest


# ------------------------------------------------------------------------- its intake.yaml section


class EmailChannel(Strict):
    """Inbound email (SES, SendGrid, Mailgun, local SMTP): which address goes to which team, and limits."""

    addresses: dict[Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, to_lower=True)], Name] = Field(
        default_factory=dict
    )
    default_team: Name | None = None
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_message_bytes: int = Field(
        default=25 * 1024 * 1024, gt=0, description="attachments beyond this total are recorded as dropped"
    )


def address(ctx: ReplyContext) -> ReplyWay:
    """The customer's latest email answered: to its sender (else the contact's address), in its thread."""
    sender = str(ctx.latest.metadata.get("from") or "")
    return answer_by_email(ctx, _usable(parseaddr(sender)[1]) or contact_email(ctx))


def contact_email(ctx: ReplyContext) -> str | None:
    """The first of the customer's known addresses a reply can be sent to."""
    emails = ctx.detail.contact.emails if ctx.detail.contact is not None else ()
    return next((usable for e in emails if (usable := _usable(e))), None)


def answer_by_email(ctx: ReplyContext, to: str | None) -> ReplyWay:
    """A reply by email to `to`, from the team's address, with the ticket's token in its subject and, when the
    latest message was an email, `In-Reply-To` it and `References` to the thread (ours included)."""
    if to is None:
        raise ReplyUndeliverableError("the customer's email gave no usable address to answer at")
    detail, latest = ctx.detail, ctx.latest
    team = ctx.policy.teams[detail.team]
    thread: dict[str, Any] = {}
    message_id = latest.metadata.get("message_id")
    if message_id:
        references = [str(r) for r in latest.metadata.get("references") or []]
        ours = [m.provider_message_id for m in detail.messages if _sent_email(m)]
        chain = list(dict.fromkeys([*references, *ours, str(message_id)]))
        thread = {"in_reply_to": str(message_id), "references": chain[-MAX_REFERENCES:]}
    subject = reply_subject(detail.subject or latest.subject or "", detail.reference)
    sender = team.email or ctx.policy.notifications.sender
    return ReplyWay(PROVIDER, Channel.EMAIL, to, sender, team.name, subject, thread)


def reply_subject(subject: str, reference: str) -> str:
    """`Re: <subject> [#<ref>]`, without a second `Re:` or a second token; customers' answers thread by the token."""
    if not subject:
        return f"Your request [#{reference}]"
    replied = subject if re.match(r"(?i)^\s*(re|aw|sv|antw)\s*:", subject) else f"Re: {subject}"
    return replied if f"[#{reference}]" in replied else f"{replied} [#{reference}]"


def _sent_email(message: Message) -> bool:
    taken = (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.READ)
    return message.direction == Direction.OUTBOUND and message.channel == Channel.EMAIL and message.state in taken


def _usable(raw: str | None) -> str | None:
    """An address a reply can be sent to: well formed, its domain in IDNA's ASCII form, its local part ASCII (SES
    takes no internationalized local part)."""
    found = identity.email(raw)
    if found is None:
        return None
    local, _, domain = found.rpartition("@")
    return f"{local}@{identity.ascii_domain(domain)}" if local.isascii() else None


def send(reply: OutboundReply, ctx: SendContext) -> Sent:
    from intake.notify.mailer import MailRejectedError, compose

    if ctx.mailer is None:
        raise SendFailedError("no mailer is configured", retryable=False)
    headers: dict[str, str] = {}
    if reply.in_reply_to:
        headers["In-Reply-To"] = f"<{reply.in_reply_to}>"
    if reply.references:
        headers["References"] = " ".join(f"<{i}>" for i in reply.references)
    message = compose(
        sender=formataddr((reply.sender_name, reply.sender)) if reply.sender_name else reply.sender,
        to=[reply.to],
        subject=reply.subject or f"Your request [#{reply.reference}]",
        text=body(reply),
        at=ctx.clock(),
        headers=headers,
    )
    for attachment in reply.attachments:
        if attachment.s3_key is None or ctx.read is None:
            continue
        maintype, _, subtype = attachment.content_type.partition("/")
        content = ctx.read(attachment.s3_key)
        subtype = subtype or "octet-stream"
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=attachment.filename)
    try:
        sent = ctx.mailer.send(message)
    except MailRejectedError as error:
        raise SendFailedError(f"the mail service refused it: {error}", retryable=False) from None
    except Exception as error:  # throttled, unreachable: the next try may pass
        raise SendFailedError(f"the mail service failed: {type(error).__name__}", retryable=True) from None
    ids = tuple(i.strip().strip("<>") for i in sent)
    return Sent(PROVIDER, ids[0], ids[1:])


def body(reply: OutboundReply) -> str:
    """The answer, then the thread quoted below it, the latest message first."""
    parts = [reply.text.rstrip()]
    used = 0
    for quoted in reply.quoted:
        lines = quoted.text.strip().splitlines() or [""]
        block = f"On {format_datetime(quoted.at)}, {quoted.author} wrote:\n" + "\n".join(f"> {line}" for line in lines)
        used += len(block)
        if used > _QUOTE_CHARS:
            break
        parts.append(block)
    return "\n\n".join(parts) + "\n"


def _teams(email: EmailChannel) -> list[tuple[str, str]]:
    addresses = ((f"addresses.{address}", team) for address, team in email.addresses.items())
    return contract.named_teams(addresses, email.default_team)


# SES receiving (a receipt rule writes the MIME to S3, which tells the email queue) and `intake serve`'s SMTP take
# no webhook: the routes of email are SendGrid's and Mailgun's (`intake.channels.sendgrid`, `.mailgun`).
CHANNEL = contract.Channel(
    name=PROVIDER,
    title="Email (SES receiving, SMTP locally)",
    section="email",
    section_type=EmailChannel,
    kinds={"email": "email"},
    routes=(),
    receive=contract.no_webhook,
    operation=contract.no_webhook,
    sign=contract.no_webhook,
    replay=contract.no_webhook,
    webhook_secrets=lambda email: [],
    teams=_teams,
    address=address,
    send=send,
)
