"""Sending email: Amazon SES in AWS, an outbox folder of `.eml` files locally. One `Mailer` port, two adapters, and
`SuppressingMailer` in front of either: no mail goes to an address that bounced for good or complained."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from pathlib import Path
from typing import Any, Protocol

from intake.mail_policy import DEFAULT


class MailRejectedError(Exception):
    """The mail service refused the message for good (an unverified sender, a suppressed address)."""


class RecipientSuppressedError(MailRejectedError):
    """Every recipient of the message is suppressed (`intake.suppression`): nothing was sent. Its text names no
    address."""

    def __init__(self) -> None:
        super().__init__("RecipientSuppressed")


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> tuple[str, ...]:
        """Send; return every Message-ID the message may be known by (ours, and the one SES gives it)."""


def compose(
    *,
    sender: str,
    to: Iterable[str],
    subject: str,
    text: str,
    html: str | None = None,
    at: datetime,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A UTF-8 message with a text part (and an HTML alternative), its own Message-ID and Date."""
    message = EmailMessage(policy=DEFAULT)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "intake.local")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


class SuppressingMailer:
    """Sends through `mailer` to the recipients that are not suppressed (`is_suppressed`, by `address_key`): the
    others are left out of the To header; when none remains, `RecipientSuppressedError` and nothing is sent. An
    acknowledgment or a survey (one customer) is then not sent at all; a notice or a digest goes to the rest."""

    def __init__(self, mailer: Mailer, is_suppressed: Callable[[str], bool]) -> None:
        self._mailer = mailer
        self._is_suppressed = is_suppressed

    def send(self, message: EmailMessage) -> tuple[str, ...]:
        from intake.suppression import address_key

        recipients = getaddresses(message.get_all("To") or [])
        kept = [(name, address) for name, address in recipients if not self._suppressed(address_key(address))]
        if not kept:
            raise RecipientSuppressedError()
        if len(kept) < len(recipients):
            del message["To"]
            message["To"] = ", ".join(formataddr(recipient) for recipient in kept)
        return self._mailer.send(message)

    def _suppressed(self, key: str | None) -> bool:
        return key is not None and self._is_suppressed(key)


class SesMailer:
    """Amazon SES (`SendRawEmail`), with the stack's configuration set (its bounces and complaints come back to the
    feedback function). SES replaces the Message-ID with its own; replies quote that one, so both are returned for
    threading."""

    def __init__(self, ses: Any, region: str, configuration_set: str | None = None) -> None:
        self._ses = ses
        self._region = region
        self._configuration = {"ConfigurationSetName": configuration_set} if configuration_set else {}

    def send(self, message: EmailMessage) -> tuple[str, ...]:
        from botocore.exceptions import ClientError

        try:
            answer = self._ses.send_raw_email(RawMessage={"Data": message.as_bytes()}, **self._configuration)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in ("MessageRejected", "MailFromDomainNotVerifiedException", "AccountSendingPausedException"):
                raise MailRejectedError(code) from None
            raise  # throttling and the like: the caller's queue retries
        return (str(message["Message-ID"]), f"<{ses_message_id(answer['MessageId'], self._region)}>")


def ses_message_id(ses_id: str, region: str) -> str:
    """The Message-ID SES gives a message it sends (its id at the region's SES domain), without angle brackets: what
    a customer's answer quotes, and what SES's reports on it are matched by (`intake.handlers.feedback`)."""
    domain = "email.amazonses.com" if region == "us-east-1" else f"{region}.amazonses.com"
    return f"{ses_id}@{domain}"


class OutboxMailer:
    """Locally: each message becomes `<outbox>/<timestamp>-<message id>.eml`, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> tuple[str, ...]:
        self.folder.mkdir(parents=True, exist_ok=True)
        message_id = str(message["Message-ID"])
        name = "".join(c if c.isalnum() or c in "-." else "_" for c in message_id.strip("<>"))
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")  # file order only; the message carries its Date
        descriptor, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(descriptor, "wb") as file:
            file.write(message.as_bytes())
        os.replace(temporary, self.folder / f"{stamp}-{name}.eml")
        return (message_id,)
