"""`intake serve` keeps its data across restarts: table, archive and every queued message."""

from __future__ import annotations

import json
from pathlib import Path

from intake.local import aws
from tests.aws.conftest import Stack


def test_save_then_load_restores_tickets_archive_and_queued_messages(stack: Stack, tmp_path: Path) -> None:
    # Given a ticket, its archive, and queued messages: 12 in one conversation, 1 in another, 1 in flight
    stack.post_sample("contact-json.json")
    stack.work()
    url = stack.resources.queue_urls["inbound"]
    stack.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    for n in range(12):
        stack.sqs.send_message(QueueUrl=url, MessageBody=f"a{n}", MessageGroupId="a", MessageDeduplicationId=f"a{n}")
    stack.sqs.send_message(QueueUrl=url, MessageBody="b0", MessageGroupId="b", MessageDeduplicationId="b0")
    stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)  # a consumer took one and stopped

    # When saved at shutdown and loaded into a fresh set of resources (a new process, in effect)
    aws.save(tmp_path, stack.resources, include_queues=True, patience_s=3)
    restarted = aws.create_resources("intake-restarted")
    counts = aws.load(tmp_path, restarted)

    # Then everything is back
    assert counts == {"items": len(stack.items()), "objects": len(stack.objects()), "messages": 13}
    restored = stack.dynamodb.scan(TableName=restarted.table)["Items"]
    assert sorted(json.dumps(i, sort_keys=True) for i in restored) == sorted(
        json.dumps(i, sort_keys=True) for i in stack.items()
    )
    bodies = []
    while batch := stack.sqs.receive_message(QueueUrl=restarted.queue_urls["inbound"], MaxNumberOfMessages=10).get(
        "Messages"
    ):
        bodies += [m["Body"] for m in batch]
        stack.sqs.delete_message_batch(
            QueueUrl=restarted.queue_urls["inbound"],
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)],
        )
    assert sorted(bodies) == sorted([f"a{n}" for n in range(12)] + ["b0"])
    assert not (tmp_path / "queues.json").exists()  # loaded once, never twice
