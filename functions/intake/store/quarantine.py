"""Emails held back (`QUARANTINE`/`<id>`), and their release."""

from __future__ import annotations

from botocore.exceptions import ClientError

from intake.model import QuarantinedEmail, QuarantineStatus
from intake.store import keys
from intake.store.errors import mapped
from intake.store.items import expression_values, to_item
from intake.store.table import Table


class QuarantineStore(Table):
    def quarantine(self, held: QuarantinedEmail) -> None:
        """Hold an email back (again, harmlessly, on a redelivery: the first record stays)."""
        item = {"PK": keys.QUARANTINE, "SK": held.id, "document": held.model_dump_json()}
        self._conditional(self._db.put_item, Item=to_item(item), ConditionExpression="attribute_not_exists(PK)")

    def quarantined(self, quarantine_id: str) -> QuarantinedEmail | None:
        item = self._get(keys.QUARANTINE, quarantine_id)
        return None if item is None else QuarantinedEmail.model_validate_json(item["document"])

    def list_quarantine(self, status: QuarantineStatus | None = QuarantineStatus.HELD) -> list[QuarantinedEmail]:
        """Newest first (ids are ULIDs)."""
        items = self._query(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=expression_values(pk=keys.QUARANTINE),
            ScanIndexForward=False,
        )
        held = [QuarantinedEmail.model_validate_json(item["document"]) for item in items]
        return [h for h in held if status is None or h.status == status]

    def release(self, released: QuarantinedEmail) -> None:
        """Record a release; only a held email can be released (else WriteConflictError)."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=to_item({"PK": keys.QUARANTINE, "SK": released.id, "document": released.model_dump_json()}),
                ConditionExpression="contains(document, :held)",
                ExpressionAttributeValues=expression_values(held='"status":"held"'),
            )
        except ClientError as error:
            raise mapped(error) from None
