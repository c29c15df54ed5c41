"""Phone calls (`CALL#<sid>`): their state, folded from the provider's callbacks in any order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from intake.model import CallEvent
from intake.records import CallState
from intake.resources import TABLE
from intake.store import keys
from intake.store.errors import mapped
from intake.store.items import epoch, expression_values, from_item, item_key
from intake.store.keys import iso
from intake.store.table import Table

_CALL_TTL_S = 30 * 86400


class CallsStore(Table):
    def merge_call(self, event: CallEvent) -> CallState:
        """Fold one callback into the call's state; every field is set idempotently, in any order."""
        sets = ["started_at = if_not_exists(started_at, :at)", f"{TABLE.ttl_attribute} = :expires"]
        values: dict[str, Any] = {"at": iso(event.received_at), "expires": epoch(event.received_at) + _CALL_TTL_S}
        names: dict[str, str] = {}
        first_known: dict[str, str | int | None] = {
            "team": event.team,
            "caller": event.caller,
            "caller_name": event.caller_name,
            "called": event.called,
        }
        if event.recording is not None:
            first_known |= {"recording_sid": event.recording.sid, "recording_url": event.recording.url}
            if event.recording.s3_key is not None:
                first_known |= {"recording_key": event.recording.s3_key, "recording_size": event.recording.size}
            if event.recording.duration_s is not None:
                sets.append("recording_duration_s = :recording_duration_s")
                values["recording_duration_s"] = event.recording.duration_s
        if event.transcript is not None and event.transcript.text:
            # a transcript with text wins over a failed attempt, whatever the order they came in
            sets += ["transcript_text = :transcript_text", "transcript_status = :transcript_status"]
            values |= {"transcript_text": event.transcript.text, "transcript_status": "completed"}
        elif event.transcript is not None:
            sets.append("transcript_status = if_not_exists(transcript_status, :transcript_status)")
            values["transcript_status"] = event.transcript.status
        if event.duration_s is not None:
            sets.append("duration_s = :duration_s")
            values["duration_s"] = event.duration_s
        for name, value in first_known.items():
            if value is not None:
                sets.append(f"#{name} = if_not_exists(#{name}, :{name})")
                names[f"#{name}"] = name
                values[name] = value
        expression = "SET " + ", ".join(sets)
        if event.call_status:
            expression += " ADD statuses :status"
            values["status"] = {event.call_status}
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": item_key(keys.call_pk(event.call_sid), keys.CALL_SK),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": expression_values(**values),
            "ReturnValues": "ALL_NEW",
        }
        if names:
            update["ExpressionAttributeNames"] = names
        try:
            response = self._db.update_item(**update)
        except ClientError as error:
            raise mapped(error) from None
        state = from_item(response["Attributes"])
        return CallState(
            call_sid=event.call_sid,
            started_at=datetime.fromisoformat(state["started_at"]),
            team=state.get("team"),
            caller=state.get("caller"),
            caller_name=state.get("caller_name"),
            called=state.get("called"),
            recording_sid=state.get("recording_sid"),
            recording_url=state.get("recording_url"),
            recording_duration_s=state.get("recording_duration_s"),
            transcript_text=state.get("transcript_text"),
            transcript_status=state.get("transcript_status"),
            statuses=frozenset(state.get("statuses", ())),
            duration_s=state.get("duration_s"),
            recording_key=state.get("recording_key"),
            recording_size=state.get("recording_size"),
        )
