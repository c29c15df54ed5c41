"""The table's calls, each with our errors: reads (one item, a batch, a query, a count), a conditional write,
a transaction. Each aggregate's store is built on it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from intake.resources import TABLE
from intake.store.errors import StoreUnavailableError, conflicted_only, mapped, transaction_error
from intake.store.items import from_item, item_key, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_BATCH_GET_KEYS = 100  # BatchGetItem's limit
_BATCH_GET_ATTEMPTS = 5
_CONFLICT_RETRIES = 3  # a transaction with a team's counter item, cancelled by a concurrent one: sent again


class Table:
    """One DynamoDB table, as the store's aggregates call it."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def _put(
        self, attributes: dict[str, Any], condition: str | None = None, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self._table, "Item": to_item(attributes)}
        if condition:
            put["ConditionExpression"] = condition
        if values:
            put["ExpressionAttributeValues"] = values
        return put

    def _conditional(self, write: Callable[..., Any], **request: Any) -> bool:
        """One conditional write (put, update or delete): True when it was made, False when its condition did not
        hold; any other failure becomes our error."""
        try:
            write(TableName=self._table, **request)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise mapped(error) from None
        return True

    def _transact(self, operations: list[tuple[str, dict[str, Any]]], *, retry_conflicts: bool = False) -> None:
        """All the operations or none. `retry_conflicts`: a transaction cancelled only because another one held one
        of its items (`TransactionConflict`, on the team's counter item that each of its queue changes updates) is
        sent again a few milliseconds later, a few times: it wrote nothing, and its conditions are judged again."""
        attempts = 1 + (_CONFLICT_RETRIES if retry_conflicts else 0)
        for attempt in range(attempts):
            try:
                self._db.transact_write_items(TransactItems=[op for _, op in operations])  # type: ignore[misc]
                return
            except ClientError as error:
                if attempt + 1 < attempts and conflicted_only(error):
                    time.sleep(random.uniform(0.01, 0.05) * 2**attempt)  # noqa: S311 - jitter, not a secret
                    continue
                raise transaction_error(error, [role for role, _ in operations]) from None

    def _batch_get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The items found among `keys` (pk, sk), read consistently with as few BatchGetItem calls as DynamoDB takes
        (100 keys each). The keys it leaves unprocessed (throttled, or past 16 MB of items) are asked for again."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(wanted), _BATCH_GET_KEYS):
            pending = [item_key(pk, sk) for pk, sk in wanted[start : start + _BATCH_GET_KEYS]]
            for attempt in range(_BATCH_GET_ATTEMPTS):
                request: dict[str, Any] = {self._table: {"Keys": pending, "ConsistentRead": True}}
                try:
                    response = self._db.batch_get_item(RequestItems=request)
                except ClientError as error:
                    raise mapped(error) from None
                items = response.get("Responses", {}).get(self._table, [])
                for item in items:
                    plain = from_item(item)
                    found[(plain[TABLE.partition_key], plain[TABLE.sort_key])] = plain
                unprocessed = response.get("UnprocessedKeys", {}).get(self._table)
                pending = [dict(key) for key in unprocessed["Keys"]] if unprocessed else []
                if not pending:
                    break
                if not items:  # throttled: nothing was read this time
                    time.sleep(0.05 * 2**attempt)
            else:
                raise StoreUnavailableError("UnprocessedKeys")
        return found

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            response = self._db.get_item(TableName=self._table, Key=item_key(pk, sk), ConsistentRead=True)
        except ClientError as error:
            raise mapped(error) from None
        item = response.get("Item")
        return None if item is None else from_item(item)

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        while True:
            try:
                response = self._db.query(TableName=self._table, **kwargs)
            except ClientError as error:
                raise mapped(error) from None
            for item in response.get("Items", []):
                yield from_item(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _count(self, **kwargs: Any) -> int:
        total = 0
        while True:
            try:
                response = self._db.query(TableName=self._table, Select="COUNT", **kwargs)
            except ClientError as error:
                raise mapped(error) from None
            total += response.get("Count", 0)
            if "LastEvaluatedKey" not in response:
                return total
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
