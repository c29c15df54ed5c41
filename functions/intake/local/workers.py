"""Queue consumers, as Lambda's SQS event source mapping runs them: batches in, failures left behind."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import boto3

from intake.local.aws import REGION
from intake.local.gateway import LocalContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def poll_once(sqs: Any, queue_url: str, queue_arn: str, name: str, handler: Handler, wait_s: int = 1) -> int:
    """One receive → handler → delete round; returns how many messages the handler took."""
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_s,
        MessageSystemAttributeNames=["All"],
    )
    messages = response.get("Messages", [])
    if not messages:
        return 0
    try:
        result = handler(sqs_event(messages, queue_arn), LocalContext(name, uuid.uuid4().hex))
    except Exception:  # as in Lambda: a failed invocation deletes nothing; the queue redelivers
        return 0
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed]
    for start in range(0, len(done), 10):
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ],
        )
    return len(done)


class Consumer(threading.Thread):
    def __init__(self, name: str, queue_url: str, handler: Handler, stop: threading.Event) -> None:
        super().__init__(name=f"consumer-{name}", daemon=True)
        self._sqs = boto3.session.Session(region_name=REGION).client("sqs")
        self._url, self._handler, self._stopping = queue_url, handler, stop
        arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self._arn = arn["Attributes"]["QueueArn"]
        self.function_name = name

    def run(self) -> None:
        while not self._stopping.is_set():
            poll_once(self._sqs, self._url, self._arn, self.function_name, self._handler)
