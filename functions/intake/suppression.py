"""Addresses we no longer send to: SES reported a hard bounce or a complaint for them.

Every email Intake sends goes through SES with its configuration set, whose event destination (EventBridge) hands
each bounce and complaint to the feedback function. A permanent ("hard") bounce or a complaint makes the address
suppressed (`SUPPRESSED#<address>`); a transient bounce (a full mailbox, a greylisting server) does not, as SES
itself retried it already and the next message may well arrive. Nothing is sent to a suppressed address again: an
acknowledgment's claim checks its recipient in the write it makes (`Store.claim_acknowledgment`), and the mailer
(`intake.notify.mailer.SuppressingMailer`) leaves suppressed recipients out of everything else: a satisfaction
survey to that customer is not sent, and a notice or digest goes to the recipients that remain.

Pure: the event is parsed here, the store is given. Addresses are kept lower-cased, as contact identities are;
logs name SES's message and feedback ids, never an address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any, Protocol

from intake.observability import logger
from intake.records import SuppressionReason

# The longest address kept (RFC 5321's path): a longer one cannot have been one SES delivered to.
_MAX_ADDRESS_CHARS = 254


@dataclass(frozen=True)
class Feedback:
    """One SES bounce or complaint notification, as much of it as Intake keeps."""

    reason: SuppressionReason | None  # None: a transient bounce, which suppresses nothing
    addresses: tuple[str, ...]  # normalized (`address_key`)
    ses_message_id: str  # the message it is about (SES's id, what `SendRawEmail` answered)
    feedback_id: str
    at: datetime


class SuppressionStore(Protocol):
    def suppress(self, address: str, reason: SuppressionReason, at: datetime, feedback_id: str) -> None: ...


def address_key(address: str) -> str | None:
    """`Ana.Silva@Example.org` and `"Ana" <ana.silva@example.org>` → `ana.silva@example.org`; None for what is no
    address. What suppressions are keyed and looked up by."""
    _, bare = parseaddr(address)
    bare = bare.strip().lower().rstrip(".")
    if "@" not in bare or len(bare) > _MAX_ADDRESS_CHARS:
        return None
    return bare


def parse_feedback(detail: Mapping[str, Any]) -> Feedback | None:
    """The `detail` of an SES event (EventBridge: `Email Bounced`, `Email Complaint Received`) as feedback; None for
    any other event type. A malformed event is a KeyError or ValueError: the invocation fails and is retried."""
    kind = detail.get("eventType") or detail.get("notificationType")
    mail = detail["mail"]
    if kind == "Bounce":
        bounce = detail["bounce"]
        permanent = bounce.get("bounceType") == "Permanent"
        reason = SuppressionReason.BOUNCE if permanent else None
        recipients, feedback_id, at = bounce["bouncedRecipients"], bounce["feedbackId"], bounce["timestamp"]
    elif kind == "Complaint":
        complaint = detail["complaint"]
        reason = SuppressionReason.COMPLAINT
        recipients, feedback_id, at = complaint["complainedRecipients"], complaint["feedbackId"], complaint["timestamp"]
    else:
        return None
    addresses = (address_key(str(recipient.get("emailAddress", ""))) for recipient in recipients)
    return Feedback(
        reason=reason,
        addresses=tuple(dict.fromkeys(a for a in addresses if a is not None)),
        ses_message_id=str(mail["messageId"]),
        feedback_id=str(feedback_id),
        at=datetime.fromisoformat(str(at).replace("Z", "+00:00")),
    )


def record_feedback(store: SuppressionStore, feedback: Feedback) -> int:
    """Suppress the addresses a hard bounce or a complaint names; returns how many (0 for a transient bounce)."""
    ids = {"ses_message_id": feedback.ses_message_id, "feedback_id": feedback.feedback_id}
    if feedback.reason is None:
        logger.info("transient bounce: nothing suppressed", extra={**ids, "recipients": len(feedback.addresses)})
        return 0
    for address in feedback.addresses:
        store.suppress(address, feedback.reason, feedback.at, feedback.feedback_id)
    logger.info(
        "addresses suppressed", extra={**ids, "reason": feedback.reason.value, "recipients": len(feedback.addresses)}
    )
    return len(feedback.addresses)
