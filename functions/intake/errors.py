"""Typed errors: the request edge's and the store's. None carries HTTP: `handlers/problems.py` maps them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from pydantic import ValidationError


class RequestRejectedError(Exception):
    """Base: the request cannot be accepted as sent; nothing of it was stored."""


class FormNotFoundError(RequestRejectedError):
    def __init__(self, form_id: str) -> None:
        self.form_id = form_id
        super().__init__(f"no form {form_id!r} in the policy file")


class PayloadTooLargeError(RequestRejectedError):
    def __init__(self, what: str, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(f"{what} is {size} bytes; the limit is {limit}")


class UnsupportedMediaTypeError(RequestRejectedError):
    def __init__(self, what: str, media_type: str, accepted: list[str]) -> None:
        self.media_type, self.accepted = media_type, accepted
        super().__init__(f"{what} {media_type or '(none)'} is not accepted; use one of: {', '.join(accepted)}")


class SignatureInvalidError(RequestRejectedError):
    """Missing, malformed, stale or forged signature."""


class WebhookSignatureInvalidError(RequestRejectedError):
    """A provider's webhook (Twilio, Meta, Mailgun) whose signature is missing or forged: answered 403."""


class OriginForbiddenError(RequestRejectedError):
    def __init__(self, origin: str | None) -> None:
        self.origin = origin
        super().__init__(f"origin {origin or '(none)'} may not post to this form")


class FieldInvalidError(RequestRejectedError):
    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


class SurveyLinkInvalidError(RequestRejectedError):
    """A satisfaction survey link we did not sign (forged, tampered with, cut short): answered 403."""

    def __init__(self) -> None:
        super().__init__("this survey link is not valid")


class SurveyLinkExpiredError(RequestRejectedError):
    """A survey link we signed whose validity has run out: answered 410."""

    def __init__(self, expired_at: datetime) -> None:
        self.expired_at = expired_at
        super().__init__(f"this survey link expired at {expired_at.isoformat()}")


class PermanentlyUnacceptableError(Exception):
    """A message Intake will never accept, however often Mailgun retries it (answered 406)."""


class SurveySecretMissingError(Exception):
    """No `CSAT_SECRET` (`INTAKE_CSAT_SECRET` locally): links cannot be signed or checked."""

    def __init__(self) -> None:
        super().__init__("the secret CSAT_SECRET is not set (INTAKE_CSAT_SECRET locally)")


class FailureNotFoundError(Exception):
    """No dead letter with this id in any queue (replayed already, or never dead-lettered)."""

    def __init__(self, failure_id: str) -> None:
        self.failure_id = failure_id
        super().__init__(f"no dead-lettered message {failure_id}; `intake failures list` shows those there are")


Built = TypeVar("Built")


class QuarantineNotFoundError(Exception):
    def __init__(self, quarantine_id: str) -> None:
        self.quarantine_id = quarantine_id
        super().__init__(f"no quarantined email {quarantine_id}")


class EmailUnroutableError(Exception):
    """No team takes mail for any of its recipients and the policy names no default team."""


class QuarantineReleasedError(Exception):
    """Releasing an email that was already released."""

    def __init__(self, quarantine_id: str) -> None:
        self.quarantine_id = quarantine_id
        super().__init__(f"email {quarantine_id} was already released")


class TransitionInvalidError(Exception):
    """An action that makes no sense for the ticket as it is (resolving a resolved ticket)."""

    def __init__(self, ticket_id: str, action: str, status: str) -> None:
        self.ticket_id, self.action, self.status = ticket_id, action, status
        super().__init__(f"ticket {ticket_id} is {status}: cannot apply `{action}`")


# The store's errors (`intake.store.errors` maps DynamoDB's to them) and a reply's reused Idempotency-Key
# (`intake.replies`): here, so that the handlers' problem mapping names them without importing the store or the
# replies


class StoreError(Exception):
    """Base of the store's errors."""


class WriteConflictError(StoreError):
    """A conditional write lost: `failed` names the roles of the items whose condition failed."""

    def __init__(self, failed: Sequence[str]) -> None:
        self.failed = tuple(failed)
        super().__init__("condition failed: " + ", ".join(self.failed))


class StoreUnavailableError(StoreError):
    """Throttled or conflicting with another transaction: try again later."""


class TicketNotFoundError(StoreError):
    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"no ticket {ticket_id}")


class ContactNotFoundError(StoreError):
    def __init__(self, contact_id: str) -> None:
        self.contact_id = contact_id
        super().__init__(f"no contact {contact_id}")


class CursorInvalidError(StoreError):
    """A pagination cursor that we did not hand out."""


class IdempotencyKeyReusedError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used for another reply on this ticket")


def built_or_field_error(build: Callable[[], Built], theirs: Mapping[str, str]) -> Built:
    """Build one of our models from a provider's values; a value it refuses is a `FieldInvalidError`
    named as the provider names the field (`theirs`: our field → theirs)."""
    try:
        return build()
    except ValidationError as error:
        first = error.errors()[0]
        ours = str(first["loc"][-1]) if first["loc"] else "(body)"
        raise FieldInvalidError(theirs.get(ours) or ours, first["msg"]) from None
