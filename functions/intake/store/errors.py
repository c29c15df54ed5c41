"""The store's errors, and how a DynamoDB error becomes one: callers never see boto3's."""

from __future__ import annotations

from collections.abc import Sequence

from botocore.exceptions import ClientError

# The errors themselves live in `intake.errors`: the handlers' problem mapping names them without importing the store
from intake.errors import ContactNotFoundError as ContactNotFoundError
from intake.errors import CursorInvalidError as CursorInvalidError
from intake.errors import StoreError as StoreError
from intake.errors import StoreUnavailableError as StoreUnavailableError
from intake.errors import TicketNotFoundError as TicketNotFoundError
from intake.errors import WriteConflictError as WriteConflictError

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
