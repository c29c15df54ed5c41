"""Addresses we no longer send to: SES reported a hard bounce or a complaint for them.

Every email Intake sends goes through SES with its configuration set, whose event destination (EventBridge) hands
each bounce and complaint to the feedback function. A permanent ("hard") bounce or a complaint makes the address
suppressed (`SUPPRESSED#<address>`); a transient bounce (a full mailbox, a greylisting server) does not, as SES
itself retried it already and the next message may well arrive. Nothing is sent to a suppressed address again: an
acknowledgment's claim checks its recipient in the write it makes (`Store.claim_acknowledgment`), and the mailer
(`intake.notify.mailer.SuppressingMailer`) leaves suppressed recipients out of everything else: a satisfaction
survey to that customer is not sent, and a notice or digest goes to the recipients that remain.

SES reports on each message too: a bounce means it never arrived, a delivery that it did. When the message is an
agent's email reply, its state on the ticket moves to `failed` (with the bounce's type and SES's words) or
`delivered`, as a text's does from Twilio's status callbacks (`record_delivery`); the message is found by the
Message-ID SES gave it, which the sender recorded (`Store.reply_sent`). A report on any other mail (an
acknowledgment, a notice) finds no reply and changes nothing.

Pure: the event is parsed here, the store is given. Addresses are kept lower-cased, as contact identities are;
logs name SES's message and feedback ids, never an address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any, Protocol

from intake.model import DeliveryState
from intake.observability import logger
from intake.records import SuppressionReason

# The longest address kept (RFC 5321's path): a longer one cannot have been one SES delivered to.
_MAX_ADDRESS_CHARS = 254


@dataclass(frozen=True)
class Feedback:
    """One SES bounce, complaint or delivery notification, as much of it as Intake keeps."""

    reason: SuppressionReason | None  # None: a transient bounce or a delivery, which suppress nothing
    addresses: tuple[str, ...]  # normalized (`address_key`)
    ses_message_id: str  # the message it is about (SES's id, what `SendRawEmail` answered)
    feedback_id: str  # a delivery has none: its SES message id
    at: datetime
    delivery: DeliveryState | None = None  # what it says of the message: failed (a bounce), delivered; a complaint none
    error: str | None = None  # a bounce's type and SES's words for it, shown on an agent's reply


class SuppressionStore(Protocol):
    def suppress(self, address: str, reason: SuppressionReason, at: datetime, feedback_id: str) -> None: ...


class DeliveryStore(Protocol):
    def advance_delivery(
        self, provider: str, provider_message_id: str, state: DeliveryState, at: datetime, error: str | None
    ) -> str | None: ...


def address_key(address: str) -> str | None:
    """`Ana.Silva@Example.org` and `"Ana" <ana.silva@example.org>` → `ana.silva@example.org`; None for what is no
    address. What suppressions are keyed and looked up by."""
    _, bare = parseaddr(address)
    bare = bare.strip().lower().rstrip(".")
    if "@" not in bare or len(bare) > _MAX_ADDRESS_CHARS:
        return None
    return bare


def parse_feedback(detail: Mapping[str, Any]) -> Feedback | None:
    """The `detail` of an SES event (EventBridge: `Email Bounced`, `Email Complaint Received`, `Email Delivered`) as
    feedback; None for any other event type. A malformed event is a KeyError or ValueError: the invocation fails and
    is retried."""
    kind = detail.get("eventType") or detail.get("notificationType")
    mail = detail["mail"]
    delivery, error = None, None
    if kind == "Bounce":
        bounce = detail["bounce"]
        permanent = bounce.get("bounceType") == "Permanent"
        reason = SuppressionReason.BOUNCE if permanent else None
        recipients, feedback_id, at = bounce["bouncedRecipients"], bounce["feedbackId"], bounce["timestamp"]
        delivery, error = DeliveryState.FAILED, _bounce_error(bounce)
    elif kind == "Complaint":
        complaint = detail["complaint"]
        reason = SuppressionReason.COMPLAINT
        recipients, feedback_id, at = complaint["complainedRecipients"], complaint["feedbackId"], complaint["timestamp"]
    elif kind == "Delivery":
        reported = detail["delivery"]
        reason, delivery = None, DeliveryState.DELIVERED
        recipients = [{"emailAddress": address} for address in reported["recipients"]]
        feedback_id, at = mail["messageId"], reported["timestamp"]
    else:
        return None
    addresses = (address_key(str(recipient.get("emailAddress", ""))) for recipient in recipients)
    return Feedback(
        reason=reason,
        addresses=tuple(dict.fromkeys(a for a in addresses if a is not None)),
        ses_message_id=str(mail["messageId"]),
        feedback_id=str(feedback_id),
        at=datetime.fromisoformat(str(at).replace("Z", "+00:00")),
        delivery=delivery,
        error=error,
    )


def _bounce_error(bounce: Mapping[str, Any]) -> str:
    """`bounced (Permanent, General): smtp; 550 5.1.1 user unknown`: the type SES gives and the receiving server's
    words (the first recipient's diagnostic), what an agent needs to choose another way to answer."""
    kinds = ", ".join(str(bounce[k]) for k in ("bounceType", "bounceSubType") if bounce.get(k))
    said = next((str(r["diagnosticCode"]) for r in bounce["bouncedRecipients"] if r.get("diagnosticCode")), None)
    return f"bounced ({kinds or 'no type given'})" + (f": {said}" if said else "")


def record_feedback(store: SuppressionStore, feedback: Feedback) -> int:
    """Suppress the addresses a hard bounce or a complaint names; returns how many (0 for a transient bounce or a
    delivery)."""
    ids = {"ses_message_id": feedback.ses_message_id, "feedback_id": feedback.feedback_id}
    if feedback.delivery == DeliveryState.DELIVERED:
        return 0
    if feedback.reason is None:
        logger.info("transient bounce: nothing suppressed", extra={**ids, "recipients": len(feedback.addresses)})
        return 0
    for address in feedback.addresses:
        store.suppress(address, feedback.reason, feedback.at, feedback.feedback_id)
    logger.info(
        "addresses suppressed", extra={**ids, "reason": feedback.reason.value, "recipients": len(feedback.addresses)}
    )
    return len(feedback.addresses)


def record_delivery(store: DeliveryStore, feedback: Feedback, message_id: str) -> str | None:
    """What a bounce or a delivery says of an agent's email reply (`message_id`: the Message-ID SES gave it,
    `intake.notify.mailer.ses_message_id`): its state moves to `failed` or `delivered` (never back). The ticket it is
    on; None when the message was no reply (or its state had moved past this already)."""
    if feedback.delivery is None:
        return None
    # Not held when no reply has the id yet, as a text's early status report is (`advance_delivery`'s `hold_until`):
    # SES publishes its events seconds after it took the message, and the sender records the send the moment SES
    # answers; every acknowledgment and notice would leave a held report behind
    ticket_id = store.advance_delivery("email", message_id, feedback.delivery, feedback.at, feedback.error)
    if ticket_id is not None:
        logger.info(
            "email reply state reported by SES",
            extra={"ses_message_id": feedback.ses_message_id, "ticket_id": ticket_id, "state": feedback.delivery},
        )
    return ticket_id
