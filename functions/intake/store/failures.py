"""Queue messages' failed tries (`FAIL#<queue>`/`<message id>`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from intake.records import FailureRecord
from intake.resources import TABLE
from intake.store import keys
from intake.store.errors import mapped
from intake.store.items import epoch, expression_values, item_key
from intake.store.keys import iso
from intake.store.table import Table


class FailuresStore(Table):
    def record_failure(
        self, queue: str, message_id: str, error_type: str, error_message: str, at: datetime, keep: timedelta
    ) -> None:
        """One more failed try of a queue's message (`FAIL#<queue>`, `<message id>`), kept `keep` after it."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=item_key(keys.failure_pk(queue), message_id),
                UpdateExpression="SET error_type = :type, error_message = :message, last_try = :at,"
                " first_try = if_not_exists(first_try, :at), #expires = :until ADD attempts :one",
                ExpressionAttributeNames={"#expires": TABLE.ttl_attribute},
                ExpressionAttributeValues=expression_values(
                    type=error_type, message=error_message, at=iso(at), until=epoch(at + keep), one=1
                ),
            )
        except ClientError as error:
            raise mapped(error) from None

    def failure_records(self, queue: str) -> dict[str, FailureRecord]:
        """The failed tries recorded for a queue's messages, by message id."""
        items = self._query(
            KeyConditionExpression="PK = :pk", ExpressionAttributeValues=expression_values(pk=keys.failure_pk(queue))
        )
        return {
            item["SK"]: FailureRecord(
                queue=queue,
                message_id=item["SK"],
                error_type=item["error_type"],
                error_message=item["error_message"],
                attempts=item["attempts"],
                first_try=datetime.fromisoformat(item["first_try"]),
                last_try=datetime.fromisoformat(item["last_try"]),
            )
            for item in items
        }
