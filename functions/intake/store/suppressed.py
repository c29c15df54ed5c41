"""Suppressed addresses (`SUPPRESSED#<address>`, see `intake.suppression`): no more mail to them."""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from intake.records import SuppressionReason
from intake.store import keys
from intake.store.errors import mapped
from intake.store.items import to_item
from intake.store.keys import iso
from intake.store.table import Table


class SuppressedStore(Table):
    # `SUPPRESSED#<address>`/`SUPPRESSED` (intake.suppression): SES reported a hard bounce or a complaint for it; the
    # mailer sends nothing more to it. Kept until removed by hand (an operator who knows the address works again).

    def suppress(self, address: str, reason: SuppressionReason, at: datetime, feedback_id: str) -> None:
        """Keep `address` (normalized: `suppression.address_key`) from any further mail; the latest report wins."""
        item = {
            "PK": keys.suppressed_pk(address),
            "SK": keys.SUPPRESSED_SK,
            "reason": reason.value,
            "at": iso(at),
            "feedback_id": feedback_id,
        }
        try:
            self._db.put_item(TableName=self._table, Item=to_item(item))
        except ClientError as error:
            raise mapped(error) from None

    def is_suppressed(self, address: str) -> bool:
        return self._get(keys.suppressed_pk(address), keys.SUPPRESSED_SK) is not None
