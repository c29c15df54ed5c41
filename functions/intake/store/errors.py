"""The store's errors, and how a DynamoDB error becomes one: callers never see boto3's."""

from __future__ import annotations

from collections.abc import Sequence

from botocore.exceptions import ClientError


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


_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "InternalServerError",
    "ServiceUnavailable",
}


def transaction_error(error: ClientError, roles: Sequence[str]) -> StoreError:
    """A failed TransactWriteItems as our error: the roles whose condition failed, or unavailable."""
    if error.response["Error"]["Code"] != "TransactionCanceledException":
        return mapped(error)
    reasons = [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]
    if "ConditionalCheckFailed" in reasons:
        return WriteConflictError(
            [role for role, r in zip(roles, reasons, strict=False) if r == "ConditionalCheckFailed"]
        )
    return StoreUnavailableError(",".join(reasons))


def conflicted_only(error: ClientError) -> bool:
    """Cancelled because another transaction held one of its items, and for no other reason."""
    if error.response["Error"]["Code"] != "TransactionCanceledException":
        return False
    reasons = {r.get("Code", "None") for r in error.response.get("CancellationReasons", [])}
    return "TransactionConflict" in reasons and reasons <= {"TransactionConflict", "None"}


def mapped(error: ClientError) -> StoreError:
    code = error.response["Error"]["Code"]
    if code in _RETRYABLE:
        return StoreUnavailableError(code)
    if code == "ConditionalCheckFailedException":
        return WriteConflictError(["item"])
    return StoreError(code)
