"""Email replies: from the team's address, in the customer's thread, through the mailer (SES in AWS, the outbox
locally).

The reply answers the customer's latest email (`In-Reply-To`, and `References` with the thread's Message-IDs), carries
the ticket's `[#<reference>]` token in its subject, quotes the thread below the answer and attaches the agent's
files. Its Message-IDs (ours, and the one SES gives it) are recorded against the ticket by the caller, so that the
customer's answer threads onto it (`intake.emails.thread_of`). Receiving email is `email_mime` and the transports'
modules; this is the channel's `send`.
"""

from __future__ import annotations

from email.utils import format_datetime, formataddr

from intake.channels import contract
from intake.channels.sending import OutboundReply, SendContext, SendFailedError, Sent
from intake.config import EmailChannel

PROVIDER = "email"
_QUOTE_CHARS = 20_000  # of the quoted thread, at most


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
    named = [(f"addresses.{address}", team) for address, team in email.addresses.items()]
    return named + ([("default_team", email.default_team)] if email.default_team else [])


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
    send=send,
)
