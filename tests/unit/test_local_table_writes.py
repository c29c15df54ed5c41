"""The local table's single-item writes answer as DynamoDB's do: PutItem and DeleteItem return the item they replaced
or removed when asked (`ReturnValues=ALL_OLD`) and refuse any other return; an expression naming a function its
clause does not know is refused, in a condition and in an update alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from intake.local.table import SqliteTable

KEY = {"PK": {"S": "TICKET#1"}, "SK": {"S": "META"}}
ITEM = {**KEY, "status": {"S": "open"}}


@pytest.fixture
def table(tmp_path: Path) -> Iterator[SqliteTable]:
    table = SqliteTable(tmp_path / "t.db")
    yield table
    table.close()


def _error(call: Any, **request: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(TableName="t", **request)
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def test_put_and_delete_return_the_item_they_replaced_only_when_asked(table: SqliteTable) -> None:
    # Given an item
    assert table.put_item(TableName="t", Item=ITEM, ReturnValues="ALL_OLD") == {}

    # When it is put again, then deleted
    replaced = table.put_item(TableName="t", Item={**KEY, "status": {"S": "resolved"}}, ReturnValues="ALL_OLD")
    quiet = table.put_item(TableName="t", Item=ITEM)
    removed = table.delete_item(TableName="t", Key=KEY, ReturnValues="ALL_OLD")

    # Then each write answers with the item as it was before it, and only when asked
    assert replaced == {"Attributes": ITEM}
    assert quiet == {}
    assert removed == {"Attributes": ITEM}
    assert table.delete_item(TableName="t", Key=KEY, ReturnValues="ALL_OLD") == {}
    assert table.get_item(TableName="t", Key=KEY) == {}


@pytest.mark.parametrize(("method", "operation"), [("put_item", "PutItem"), ("delete_item", "DeleteItem")])
def test_put_and_delete_refuse_any_other_return(table: SqliteTable, method: str, operation: str) -> None:
    request = {"Item": ITEM} if method == "put_item" else {"Key": KEY}

    code, message = _error(getattr(table, method), ReturnValues="ALL_NEW", **request)

    assert code == "ValidationException"
    assert message == f"ReturnValues can only be NONE or ALL_OLD for {operation}"


def test_a_failed_condition_leaves_the_item_and_says_so(table: SqliteTable) -> None:
    table.put_item(TableName="t", Item=ITEM)

    code, _ = _error(
        table.delete_item,
        Key=KEY,
        ConditionExpression="#s = :closed",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":closed": {"S": "closed"}},
    )

    assert code == "ConditionalCheckFailedException"
    assert table.get_item(TableName="t", Key=KEY) == {"Item": ITEM}


@pytest.mark.parametrize(
    ("request_", "label"),
    [
        ({"ConditionExpression": "if_not_exists(#s, :x) = :x"}, "ConditionExpression"),
        ({"UpdateExpression": "SET #s = size(#s)"}, "UpdateExpression"),
    ],
)
def test_a_function_the_clause_does_not_know_is_refused(
    table: SqliteTable, request_: dict[str, str], label: str
) -> None:
    values = {":x": {"S": "x"}} if "ConditionExpression" in request_ else None

    code, message = _error(
        table.update_item,
        Key=KEY,
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=values,
        **request_,
    )

    assert code == "ValidationException"
    assert message.startswith(f"Invalid {label}: Invalid function name; function: ")
